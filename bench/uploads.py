"""Methods added from uploaded result files: checked, then stored in the released layout.

A ranks ``.npy`` and/or a matching-result ``.npy`` for one dataset becomes a method named
by the user (:data:`NAME_RULE`). The files are stored where
:func:`bench.workspace.discover` looks for that dataset's results, under the names it
expects (``<results>/image-level/<name>/r<short>.npy``,
``<results>/pixel-level/<name>/matching_result/pr<short>.npy``; ``R1M<short>.npy`` /
``pR1M<short>.npy`` for a ``+R1M`` dataset), so the method survives a restart and
``python -m bench discover`` / ``compare`` read it like any other.

How a file is stored (:func:`store_method`): its bytes go to a temporary file *inside
the target folder* (``.upload-*.part``, a name discovery never reads), which is then
checked with the readers the command line uses, exactly as ``python -m bench
revisited`` / ``pixel`` would read it (:func:`bench.formats.safe_pickle.load_npy` through
:func:`~bench.formats.revisited.load_ranks` and
:func:`~bench.metrics.revisited.scan_ranks` for ranks,
:func:`~bench.formats.pixel.load_matches` for a matching result); only when every
uploaded file passes are they moved into place with ``os.replace``. On any error the
temporary files and any folder made for them are removed, nothing is stored, and the
reader's :class:`~bench.errors.BenchError` is raised with the uploaded file's name in
place of the temporary path (the folders written to get their modification times back,
so the tree is exactly as before).

Where (:func:`results_root_for`): for a folder in the released layout, the results
folder discovery uses for the dataset. The embedded demo (a cache the app builds) is
never written to: its uploads go to an uploads folder (:func:`upload_dir`,
``$BENCH_UPLOAD_DIR`` else ``./uploads``) whose ``results/`` :func:`discover_with_uploads`
merges into the demo's methods. :func:`link_benchmark` makes that folder a released-layout
root of its own (a link to the demo's ``pixel_retrieval_benchmarks``), so ``python -m
bench discover uploads`` lists the uploaded methods too.

No Streamlit here: the app's upload panel is ``bench/app/upload.py``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bench.errors import BenchError
from bench.formats.pixel import load_matches
from bench.formats.revisited import Gnd, load_gnd, load_ranks
from bench.metrics.revisited import scan_ranks
from bench.workspace import (
    DatasetFiles,
    Discovery,
    _is_results_root,
    _results_roots,
    _Slot,
    discover,
)

ENV_DIR = "BENCH_UPLOAD_DIR"
ENV_MAX_MB = "BENCH_UPLOAD_MAX_MB"
DEFAULT_MAX_MB = 512
KINDS = ("ranks", "matches")
#: A method name: a letter or digit, then letters, digits, ".", "_" or "-"; 64 at most.
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_HELP = ("1 to 64 characters: letters, digits, '.', '_' and '-', starting with a "
             "letter or digit")
_CHUNK = 1 << 20
_TMP_PREFIX = ".upload-"
_TMP_SUFFIX = ".part"

#: One uploaded file: the name the user gave it, and its bytes (or a binary file object).
Upload = tuple[str, "bytes | BinaryIO"]


# ---------------------------------------------------------------- settings

def max_upload_bytes() -> int:
    """The size cap of one uploaded file: ``$BENCH_UPLOAD_MAX_MB`` (default 512) MB."""
    raw = os.environ.get(ENV_MAX_MB, "").strip()
    if not raw:
        return DEFAULT_MAX_MB << 20
    try:
        mb = float(raw)
    except ValueError:
        raise BenchError("bad setting", f"${ENV_MAX_MB}", f"{raw[:40]!r} is not a number"
                         ) from None
    if not 0 < mb < float("inf"):
        raise BenchError("bad setting", f"${ENV_MAX_MB}", f"{raw[:40]!r} must be positive")
    return int(mb * (1 << 20))


def upload_dir() -> Path:
    """Where the demo's uploads go: ``$BENCH_UPLOAD_DIR``, else ``./uploads`` (absolute)."""
    raw = os.environ.get(ENV_DIR, "").strip()
    return Path(os.path.abspath(os.path.expanduser(raw or "uploads")))


def demo_results_root(upload_root: Path | None = None) -> Path:
    """The results folder of the demo's uploads (``<upload dir>/results``)."""
    return (upload_root or upload_dir()) / "results"


# ---------------------------------------------------------------- where and under what name

def check_name(name: str, *, existing: Iterable[str] = (), replace: bool = False,
               protected: Iterable[str] = ()) -> str:
    """*name* stripped, if it is a valid new method name (:data:`NAME_RULE`); a name in
    *existing* only with *replace*; a name in *protected* never. Else :class:`BenchError`."""
    name = (name or "").strip()
    if not NAME_RULE.match(name):
        shown = repr(name[:70]) if name else "an empty name"
        raise BenchError("bad method name", "upload", f"{shown}: use {NAME_HELP}")
    if name in set(protected):
        raise BenchError("method exists", "upload",
                         f"{name!r} is one of the source's own methods, which uploads do not "
                         "replace; choose another name")
    if name in set(existing) and not replace:
        raise BenchError("method exists", "upload",
                         f"a method named {name!r} already exists for this dataset; choose "
                         "another name or tick 'replace'")
    return name


def _slot(ds: DatasetFiles, kind: str) -> _Slot:
    return _Slot(ds.base, ds.short, ds.variant, kind)


def target_path(results_root: Path, ds: DatasetFiles, method: str, kind: str) -> Path:
    """Where discovery expects *method*'s file of *kind* (``ranks`` / ``matches``) for
    dataset *ds* under *results_root* (e.g. ``image-level/<method>/roxford.npy``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    slot = _slot(ds, kind)
    return slot.folder(Path(results_root), method) / slot.canonical


def results_root_for(root: str | os.PathLike, ds: DatasetFiles) -> Path:
    """The results folder :func:`bench.workspace.discover` reads for *ds* under *root*:
    that of its methods when it has some, else the first existing results folder of the
    places discovery looks at, else ``<root>/results``."""
    root = Path(root)
    for mf in ds.methods.values():
        if mf.ranks is not None:
            return mf.ranks.parents[2]  # <results>/image-level/<m>/<file>
        if mf.matches is not None:
            return mf.matches.parents[3]  # <results>/pixel-level/<m>/matching_result/<file>
    for cand in _results_roots(root, ds.gnd, None):
        if _is_results_root(cand):
            return cand
    return root / "results"


def writable_folder(path: Path) -> bool:
    """Whether *path*, or the nearest existing folder above it, can be written to."""
    p = Path(path)
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)


# ---------------------------------------------------------------- storing

@dataclass
class Stored:
    """What :func:`store_method` did: the files written (kind -> path), which of them
    replaced a file, and the reader's per-pair warnings (the CLI prints the same)."""

    method: str
    files: dict[str, Path] = field(default_factory=dict)
    replaced: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _make_dirs(folder: Path, made: list[Path]) -> None:
    """``mkdir -p`` *folder*, recording each folder created (outermost first)."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        made.append(d)


def _existing_ancestor(folder: Path) -> Path:
    p = folder
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def _size_of(data) -> int | None:
    if isinstance(data, bytes | bytearray | memoryview):
        return len(data)
    size = getattr(data, "size", None)
    return size if isinstance(size, int) else None


def _write_temp(folder: Path, data, shown: str, cap: int) -> Path:
    """The bytes of *data* in a new temporary file inside *folder* (removed again if
    writing fails or the size passes *cap*)."""
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=folder)
    path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, bytes | bytearray | memoryview):
                if len(data) > cap:
                    raise _TooBig()
                out.write(data)
            else:
                if hasattr(data, "seek"):
                    data.seek(0)
                n = 0
                while True:
                    chunk = data.read(_CHUNK)
                    if not chunk:
                        break
                    n += len(chunk)
                    if n > cap:
                        raise _TooBig()
                    out.write(chunk)
    except _TooBig:
        path.unlink(missing_ok=True)
        raise BenchError("upload too large", shown,
                         f"above the {cap / 2**20:.0f} MB cap for uploads; set "
                         f"{ENV_MAX_MB} to raise it") from None
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise BenchError("cannot store upload", folder, exc.strerror or str(exc)) from None
    return path


class _TooBig(Exception):
    pass


def _check_ranks(tmp: Path, gnd: Gnd) -> list[str]:
    """What ``python -m bench revisited`` does with a ranks file before any number:
    memory-mapped safe read, shape / dtype check, one validating pass (index range,
    duplicates)."""
    sc = scan_ranks(load_ranks(tmp, gnd), gnd, path=tmp)
    notes = []
    if sc.n_rows < gnd.n_db:
        notes.append(f"ranks list {sc.n_rows} of {gnd.n_db} database images per query "
                     "(a truncated ranking; positives below it count as not retrieved)")
    return notes


def _check_matches(tmp: Path, gnd: Gnd) -> tuple[list[str], list[str]]:
    preds, warns = load_matches(tmp, n_queries=gnd.n_queries, n_db=gnd.n_db)
    notes = []
    n_pred = sum(v is not None for v in preds.values())
    if n_pred == 0:
        notes.append("the matching result holds no prediction (every pair counts as "
                     "unpredicted)")
    return [str(w) for w in warns], notes


def _as_user_error(exc: BenchError, tmp: Path, shown: str) -> BenchError:
    """The reader's error, naming the uploaded file instead of the temporary one."""
    why = exc.why.replace(str(tmp), shown)
    file = shown if exc.file == str(tmp) else exc.file.replace(str(tmp), shown)
    return BenchError(exc.what, file, why)


def store_method(name: str, ds: DatasetFiles, results_root: str | os.PathLike, *,
                 ranks: Upload | None = None, matches: Upload | None = None,
                 replace: bool = False, existing: Iterable[str] | None = None,
                 protected: Iterable[str] = (), max_bytes: int | None = None,
                 gnd: Gnd | None = None) -> Stored:
    """Check the uploaded *ranks* and/or *matches* (``(file name, bytes or file)``) for
    dataset *ds* and store them as method *name* under *results_root* (see the module
    docstring). *existing* (default: ``ds.methods``) are names taken for this dataset
    (allowed with *replace*); *protected* are names never replaced. A file already at a
    target path also counts as taken. Raises :class:`BenchError`; then nothing is
    written (the folder is as before)."""
    rroot = Path(results_root)
    taken = set(ds.methods if existing is None else existing)
    uploads = {k: v for k, v in (("ranks", ranks), ("matches", matches)) if v is not None}
    if not uploads:
        raise BenchError("nothing uploaded", "upload",
                         "give a ranks .npy, a matching-result .npy, or both")
    name = check_name(name)  # the form first: the name becomes a folder
    targets = {k: target_path(rroot, ds, name, k) for k in uploads}
    if any(p.exists() or p.is_symlink() for p in targets.values()):
        taken.add(name)
    check_name(name, existing=taken, replace=replace, protected=protected)
    cap = max_upload_bytes() if max_bytes is None else int(max_bytes)
    for shown, data in uploads.values():
        size = _size_of(data)
        if size is not None and size > cap:
            raise BenchError("upload too large", shown,
                             f"{size / 2**20:.1f} MB is above the {cap / 2**20:.0f} MB cap "
                             f"for uploads; set {ENV_MAX_MB} to raise it")
    if not writable_folder(rroot):
        raise BenchError("cannot store upload", rroot, "this folder cannot be written to")
    if gnd is None:
        gnd = load_gnd(ds.gnd)

    out = Stored(method=name)
    made: list[Path] = []
    temps: dict[str, Path] = {}
    touched: dict[Path, tuple[int, int]] = {}  # existing folder -> (atime, mtime) before
    try:
        for kind, (shown, data) in uploads.items():
            folder = targets[kind].parent
            anchor = _existing_ancestor(folder)
            if anchor not in touched:
                st = anchor.stat()
                touched[anchor] = (st.st_atime_ns, st.st_mtime_ns)
            try:
                _make_dirs(folder, made)
            except OSError as exc:
                raise BenchError("cannot store upload", folder, exc.strerror or str(exc)
                                 ) from None
            tmp = _write_temp(folder, data, shown, cap)
            temps[kind] = tmp
            try:
                if kind == "ranks":
                    out.notes += _check_ranks(tmp, gnd)
                else:
                    warns, notes = _check_matches(tmp, gnd)
                    out.warnings += [w.replace(str(tmp), shown) for w in warns]
                    out.notes += notes
            except BenchError as exc:
                raise _as_user_error(exc, tmp, shown) from None
        for kind, tmp in temps.items():
            if targets[kind].exists():
                out.replaced.append(targets[kind])
            os.replace(tmp, targets[kind])
            out.files[kind] = targets[kind]
        temps.clear()
    except BaseException as exc:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        for d in reversed(made):  # innermost first; only the folders made here
            try:
                d.rmdir()
            except OSError:
                pass
        for d, times in touched.items():  # the folders as they were, times included
            try:
                os.utime(d, ns=times)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise BenchError("cannot store upload", rroot, exc.strerror or str(exc)) from None
        raise
    return out


# ---------------------------------------------------------------- the demo's uploads

def merge_discoveries(base: Discovery, extra: Discovery) -> Discovery:
    """*base* with the methods of *extra* added per dataset (a name *base* already has
    keeps *base*'s files, with a note); datasets only *extra* has are appended."""
    by_name = {d.name: d for d in extra}
    notes = list(base.notes)
    out = []
    for d in base:
        e = by_name.pop(d.name, None)
        if e is not None and e.methods:
            clash = sorted(set(e.methods) & set(d.methods))
            for n in clash:
                notes.append(f"ignored uploaded method {n!r} for {d.name}: the source has "
                             "a method of that name")
            add = {n: mf for n, mf in e.methods.items() if n not in d.methods}
            d = dataclasses.replace(d, methods={**d.methods, **add})
        out.append(d)
    out += [e for e in extra if e.name in by_name]
    notes += [n for n in extra.notes if n not in notes]
    unrec = list(base.unrecognised) + [u for u in extra.unrecognised
                                       if u not in base.unrecognised]
    return Discovery(out, root=base.root, unrecognised=unrec, notes=notes)


def discover_with_uploads(root: str | os.PathLike, uploads_results: str | os.PathLike | None,
                          *, images_dir: str | os.PathLike | None = None) -> Discovery:
    """:func:`bench.workspace.discover` of *root*, plus the methods stored under
    *uploads_results* (a results folder: ``image-level/``, ``pixel-level/``) for the
    same datasets."""
    base = discover(root, images_dir=images_dir)
    if uploads_results is None or not _is_results_root(Path(uploads_results)):
        return base
    extra = discover(root, images_dir=images_dir, results_root=uploads_results)
    return merge_discoveries(base, extra)


def link_benchmark(upload_root: str | os.PathLike, source_root: str | os.PathLike
                   ) -> Path | None:
    """Make *upload_root* a released-layout folder of its own: a link
    ``pixel_retrieval_benchmarks`` to the source's (ground truth and pixel labels), so
    ``python -m bench discover <upload_root>`` lists the uploaded methods. Returns the
    link (``None`` when the source has no such folder or the link cannot be made; an
    existing entry of that name is left alone)."""
    link = Path(upload_root) / "pixel_retrieval_benchmarks"
    src = Path(source_root) / "pixel_retrieval_benchmarks"
    if link.exists() or link.is_symlink():
        return link
    if not src.is_dir():
        return None
    try:
        link.symlink_to(src.resolve(), target_is_directory=True)
    except OSError:
        return None
    return link


__all__ = ["DEFAULT_MAX_MB", "ENV_DIR", "ENV_MAX_MB", "KINDS", "NAME_HELP", "NAME_RULE",
           "Stored", "check_name", "demo_results_root", "discover_with_uploads",
           "link_benchmark", "max_upload_bytes", "merge_discoveries", "results_root_for",
           "store_method", "target_path", "upload_dir", "writable_folder"]
