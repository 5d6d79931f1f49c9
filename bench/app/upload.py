"""The upload panel: a ranks and / or matching-result ``.npy`` for the current dataset
becomes a named method (checked and stored by :mod:`bench.uploads`).

Where the files go (:func:`destination`): for a folder in the released layout, the
results folder discovery reads for the dataset (when it lies inside the data roots and
can be written to); for the embedded demo, the uploads folder (``$BENCH_UPLOAD_DIR``,
else ``./uploads``) whose methods the sidebar's discovery merges into the demo's. After
a file is stored the discovery cache is cleared, so the method is in every method list
on the next run (this one: the panel's button callback runs before the sidebar).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from bench import uploads
from bench.app import loaders, roots, state
from bench.app.context import Ctx
from bench.app.format import md, md_message
from bench.errors import BenchError
from bench.workspace import DatasetFiles, MethodFiles

_MSG = "_upload_msg"
_NONCE = "_upload_nonce"  # part of the uploaders' keys: a new value empties them


@dataclass(frozen=True)
class Destination:
    """Where an upload for this dataset is stored (``results_root``), the names it may
    not take (``protected``: the source's own methods when uploads live elsewhere), the
    source folder the uploads folder links to (demo), or why uploads are not possible."""

    results_root: Path | None
    protected: frozenset[str] = field(default_factory=frozenset)
    link_source: Path | None = None
    why_not: str | None = None


def _under(mf: MethodFiles, folder: Path) -> bool:
    files = [p for p in (mf.ranks, mf.matches) if p is not None]
    return bool(files) and all(roots.is_inside(p, folder) for p in files)


def destination(c: Ctx, ds: DatasetFiles) -> Destination:
    """Where uploads for *ds* go under the sidebar's source (see the module docstring)."""
    if c.source == "demo":
        rr = uploads.demo_results_root()
        protected = frozenset(n for n, mf in ds.methods.items() if not _under(mf, rr))
        if not uploads.writable_folder(rr):
            return Destination(None, why_not=f"The uploads folder `{rr.parent}` cannot be "
                               f"written to; set `{uploads.ENV_DIR}` to a writable folder.")
        return Destination(rr, protected, link_source=c.root)
    if c.source == "folder" and c.root is not None:
        rr = uploads.results_root_for(c.root, ds)
        try:
            roots.check(str(rr), "Results folder")
        except roots.RootRefused as e:
            return Destination(None, why_not=str(e))
        if not uploads.writable_folder(rr):
            return Destination(None, why_not=f"The results folder `{rr}` cannot be written "
                               "to, so uploads cannot be stored there.")
        return Destination(rr)
    return Destination(None, why_not="Uploads need a Revisited / pixel dataset (the demo or "
                       "a folder in the released layout).")


def _submit(ds: DatasetFiles, dest: Destination) -> None:
    """The button's callback: store the upload, or keep the reader's message."""
    nonce = st.session_state.get(_NONCE, 0)
    name = str(st.session_state.get("up_name") or "")
    files = {}
    for kind in uploads.KINDS:
        f = st.session_state.get(f"up_{kind}_{nonce}")
        if f is not None:
            files[kind] = (f.name, f)
    try:
        stored = uploads.store_method(
            name, ds, dest.results_root, ranks=files.get("ranks"),
            matches=files.get("matches"), replace=bool(st.session_state.get("up_replace")),
            protected=dest.protected, gnd=loaders.gnd(ds) if files else None)
    except BenchError as e:
        st.session_state[_MSG] = ("error", md_message(e), ["Nothing was stored."])
        return
    if dest.link_source is not None:  # the uploads folder readable by `bench discover`
        uploads.link_benchmark(dest.results_root.parent, dest.link_source)
    loaders.rescan()
    what = " and ".join({"ranks": "ranks", "matches": "matching result"}[k]
                        for k in stored.files)
    verb = "Replaced" if stored.replaced else "Added"
    lines = [f"`{p}`" for p in stored.files.values()] + stored.notes
    if stored.warnings:
        lines.append(f"{len(stored.warnings)} reader warning(s) (those pairs count as "
                     f"unpredicted): " + "; ".join(stored.warnings[:5]))
    st.session_state[_MSG] = ("success", f"{verb} method **{md(stored.method)}** ({what}) "
                              f"for {md(ds.name)}.", lines)
    # the new method is B of the comparison, and among the methods compared
    chosen = [v for v in str(state.get("cmp") or "").split(",") if v]
    if chosen and stored.method not in chosen:
        state.put("cmp", ",".join([*chosen, stored.method]))
    if state.get("m") != stored.method:
        state.put("m2", stored.method)
    st.session_state[_NONCE] = nonce + 1
    st.session_state["up_name"] = ""
    st.session_state["up_replace"] = False


def panel(c: Ctx, ds: DatasetFiles, *, expanded: bool = False) -> None:
    """The "Add a method from result files" expander for dataset *ds*."""
    msg = st.session_state.pop(_MSG, None)
    with st.expander("Add a method from result files", icon=":material/upload_file:",
                     expanded=expanded or msg is not None):
        if msg is not None:
            kind, text, lines = msg
            (st.success if kind == "success" else st.error)(
                text, icon=":material/check_circle:" if kind == "success"
                else ":material/error:")
            for line in lines:
                st.caption(md_message(line))
        dest = destination(c, ds)
        if dest.why_not:
            st.info(dest.why_not, icon=":material/block:")
            return
        try:
            cap = uploads.max_upload_bytes()
        except BenchError as e:
            st.error(md_message(e), icon=":material/error:")
            return
        rname = uploads.target_path(dest.results_root, ds, "<name>", "ranks")
        mname = uploads.target_path(dest.results_root, ds, "<name>", "matches")
        g = loaders.gnd(ds)
        st.caption(
            f"For **{ds.title}** ({g.n_queries} queries, {g.n_db} database images). Stored "
            f"under `{dest.results_root}` as `{rname.relative_to(dest.results_root)}` and "
            f"`{mname.relative_to(dest.results_root)}`, the released layout, so it stays "
            "after a restart and `python -m bench discover` / `compare` read it. Each file "
            "is checked with the command line's readers first; a file that fails is not "
            f"stored. At most {cap / 2**20:.0f} MB per file ({uploads.ENV_MAX_MB}).")
        nonce = st.session_state.get(_NONCE, 0)
        a, b = st.columns([3, 2], vertical_alignment="bottom")
        a.text_input("Method name", key="up_name", max_chars=64,
                     placeholder="my-method", help=uploads.NAME_HELP)
        b.checkbox("Replace a method of this name", key="up_replace",
                   help="Overwrite the files of the kinds uploaded (the other kind is kept)."
                   + (f" The source's own methods ({', '.join(sorted(dest.protected))}) "
                      "are never replaced." if dest.protected else ""))
        a, b = st.columns(2)
        mb = max(1, round(cap / 2**20))
        a.file_uploader(f"Ranks .npy: integers, ({g.n_db}, {g.n_queries})", type=["npy"],
                        key=f"up_ranks_{nonce}", max_upload_size=mb,
                        help="Column q = database indices best first, as for "
                        "`python -m bench revisited --ranks`.")
        b.file_uploader("Matching result .npy: dict `qimlist_<q>_imlist_<i>` → (n, 2) "
                        "[x, y]", type=["npy"], key=f"up_matches_{nonce}",
                        max_upload_size=mb,
                        help="As for `python -m bench pixel --matches`.")
        st.button("Add method", key="up_add", icon=":material/add:", on_click=_submit,
                  args=(ds, dest))
