"""The data-source sidebar: source, folders and files (each checked against the data
roots), dataset, method, protocol and setup. :func:`sidebar` returns the run's
:class:`bench.app.context.Ctx`, which the pages read with ``context.ctx()``."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import streamlit as st

from bench.app import loaders, roots, routing, state
from bench.app.context import Ctx, store
from bench.app.loaders import GprSpec
from bench.app.state import SOURCES
from bench.app.widgets import app_style, radio, select, text
from bench.demo import build_demo, default_demo_dir, demo_is_built, demo_paths
from bench.errors import BenchError
from bench.protocol import METRICS, PROTOCOLS, SETUPS
from bench.uploads import demo_results_root

_BUILD_LOCK = threading.Lock()


def ensure_demo() -> Path:
    """The demo folder; built on first start with a progress bar (about half a minute)."""
    root = default_demo_dir()
    if demo_is_built(root):
        return root
    with _BUILD_LOCK:
        if demo_is_built(root):
            return root
        st.info("First start: building the synthetic demo benchmark into "
                f"`{root}` (about half a minute, once).")
        bar = st.progress(0.0, text="Building the demo…")

        def progress(frac: float, msg: str) -> None:
            bar.progress(min(max(float(frac), 0.0), 1.0), text=msg)

        scale = os.environ.get("BENCH_DEMO_SCALE", "full")  # "small": tests
        build_demo(root, scale=scale if scale in ("full", "small") else "full",
                   progress=progress)
        bar.empty()
    return root


def _path(c: Ctx, key: str, what: str, allowed: roots.Roots) -> Path | None:
    """State *key* as a checked path; ``None`` when blank or refused (refusal noted)."""
    raw = (state.get(key) or "").strip()
    if not raw:
        return None
    try:
        return roots.check(raw, what, allowed)
    except roots.RootRefused as e:
        c.refused.append(str(e))
        st.sidebar.error(e.short, icon=":material/block:")
        return None


@st.cache_data(ttl=30, show_spinner=False)
def _benchmark_folders(folders: tuple[Path, ...]) -> list[str]:
    """Benchmark folders under the data roots (``roots.find_benchmarks``), for 30 s."""
    return [str(p) for p in roots.find_benchmarks(roots.Roots(folders, True))]


def _folder_source(c: Ctx, sb, allowed: roots.Roots) -> None:
    found = _benchmark_folders(allowed.folders)
    current = (state.get("root") or "").strip()
    opts = ["", *found]
    st.session_state["w_root_pick"] = current if current in opts else ""

    def picked() -> None:
        state.put("root", st.session_state["w_root_pick"])

    sb.selectbox("Benchmark folder", opts, key="w_root_pick", on_change=picked,
                 format_func=lambda p: p or (f"— {len(found)} found under the data folders —"
                                             if found else "— none found: type one below —"),
                 help="Folders in the released layout (pixel_retrieval_benchmarks/, "
                      "results/) found up to three levels below the data folders: "
                      + ", ".join(str(r) for r in allowed.folders) + ".")
    text("…or type a folder", "root", where=sb,
         placeholder=str(allowed.folders[0] / "…"),
         help="Holds pixel_retrieval_benchmarks/ (gnd, pair labels, labelme files) "
              "and results/ (image-level/<method>/r<short>.npy, "
              "pixel-level/<method>/matching_result/pr<short>.npy); inside one of the data "
              "folders: " + ", ".join(str(r) for r in allowed.folders) + ".")
    text("Images folder (optional)", "images", where=sb, placeholder="…/jpg",
         help="Folder with the database and query .jpg files; default: jpg/ beside "
              "the gnd file. Without images, metrics and charts still work.")
    root = _path(c, "root", "Folder", allowed)
    images = _path(c, "images", "Images folder", allowed)
    if images is not None and not images.is_dir():
        sb.warning(f"No such images folder: {images}. Metrics work without images.")
        images = None
    if c.refused:
        c.error = c.refused[0]
    elif root is None:  # nothing chosen yet: an empty state on the page, no error
        listed = ", ".join(f"`{r}`" for r in allowed.folders)
        c.hint = ("**Choose a benchmark folder** in the sidebar: "
                  + (f"{len(found)} found under the data folders ({listed}); pick one, or "
                     "type another folder inside them." if found else
                     f"none was found under the data folders ({listed}); type the folder "
                     "that holds `pixel_retrieval_benchmarks/` and `results/`, or start the "
                     f"app with `{roots.FLAG} DIR` to search another folder.")
                  + " The **Data & help** page shows the layout.")
    else:
        c.root = root
        try:
            c.datasets = loaders.discover(root, images)
        except BenchError as e:
            c.error = str(e)
    if sb.button("Rescan folder", help="Look again for datasets and methods"):
        loaders.rescan()
        st.rerun()


def _gpr_source(c: Ctx, sb, allowed: roots.Roots) -> None:
    text("Images folder", "gimages", where=sb, placeholder="…/GPR1200/images",
         help="The GPR1200 images/ folder ({category}_{name}.jpg).")
    radio("Results", ["embeddings", "indices"], "gmode", where=sb, horizontal=True,
          format_func=lambda v: {"embeddings": "Embeddings (n×d)",
                                 "indices": "Indices (n×k)"}[v])
    text(".npy file", "gfile", where=sb, placeholder="embeddings.npy")
    if state.get("gmode") == "embeddings":
        select("Similarity", METRICS, "metric", where=sb,
               help="cosine: L2-normalised dot product; dot: as given; l2: Euclidean.")
    text("Order file (optional)", "order", where=sb,
         help="One image name per line, when the rows were saved in another order.")
    radio("Protocol", PROTOCOLS, "proto", where=sb, horizontal=True,
          format_func=str.capitalize,
          help="Official: the released code's scores, the product of the embeddings in "
               "their own dtype (float32 stays float32). Strict: exact float64 scores "
               "(docs/PROTOCOLS.md §3).")
    images = _path(c, "gimages", "Images folder", allowed)
    f = _path(c, "gfile", ".npy file", allowed)
    order = _path(c, "order", "Order file", allowed)
    if c.refused:
        c.gpr_error = c.refused[0]
    elif images is None or f is None:
        c.gpr_error = "Enter the GPR1200 images folder and an embeddings or indices file."
    else:
        emb = f if state.get("gmode") == "embeddings" else None
        c.gpr = GprSpec(images, emb, None if emb else f, state.get("metric"), order,
                        state.get("proto"))
    c.error = "The GPR1200 source has no Revisited / pixel data: see the GPR1200 page."


def _benchmark(c: Ctx, sb) -> None:
    sb.markdown("### Benchmark")
    titles = {d.name: getattr(d, "title", d.name) for d in c.datasets}
    name = select("Dataset", list(titles), "ds", where=sb, format_func=titles.get)
    c.dataset = next(d for d in c.datasets if d.name == name)
    methods = list(c.dataset.methods)
    if methods:
        c.method = c.dataset.methods[select("Method", methods, "m", where=sb)]
    else:
        sb.warning("No results found for this dataset under results/.")
    radio("Protocol", PROTOCOLS, "proto", where=sb, horizontal=True,
          format_func=str.capitalize,
          help="Official: the released code's numbers, quirks included. "
               "Strict: the project's clean variant (see the Data & help page).")
    radio("Setup", SETUPS, "setup", where=sb, horizontal=True, format_func=str.capitalize,
          help="Easy: positives = easy. Medium: easy + hard. Hard: hard "
               "(the others count as junk).")
    c.protocol, c.setup = state.get("proto"), state.get("setup")


def sidebar() -> Ctx:
    """Draw the sidebar; return (and store for the pages) this run's :class:`Ctx`."""
    app_style()
    sb = st.sidebar
    if routing.own_menu():
        routing.menu(sb)
    sb.markdown("### Data")
    src = radio("Source", list(SOURCES), "src", where=sb, format_func=SOURCES.get,
                label_visibility="collapsed")
    c = Ctx(source=src, protocol=state.get("proto"), setup=state.get("setup"))
    allowed = roots.allowed_roots()
    if src == "demo":
        c.root = ensure_demo()
        p = demo_paths(c.root)
        c.gpr = GprSpec(Path(p.gpr_images), Path(p.gpr_embeddings), None, "cosine", None,
                        state.get("proto"))
        sb.caption("Synthetic data made from scikit-image photos: not a real benchmark.")
        try:
            c.datasets = loaders.discover(c.root, None, demo_results_root())  # + uploads
        except BenchError as e:
            c.error = str(e)
    elif src == "folder":
        _folder_source(c, sb, allowed)
    else:
        _gpr_source(c, sb, allowed)

    if c.datasets:
        _benchmark(c, sb)
    # why there is no dataset is said once, on the page (bench.app.context.require_dataset)
    return store(c)
