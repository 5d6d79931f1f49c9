"""Cached calls into ``bench``: the pages never parse a file or compute a metric.

Every loader takes the files it reads (``DatasetFiles``, ``MethodFiles``, :class:`GprSpec`,
a ``Path``) and Streamlit hashes them with :data:`HASH_FUNCS`, whose functions return
each file's stamp ``(absolute path, size, mtime_ns)``: the stamp is part of the cache key,
so an edited file is re-read, with no separate key argument to forget.

- ``st.cache_data`` (a copy per call, so only for results made of numbers): metric
  results, the methods table's per-method summary, discovery.
- ``st.cache_resource`` (one shared, read-only object per process) for loaded inputs
  that are used whole and are small or needed by every page: the ground truth, the
  rank scan (positions of the labelled images only: numbers, never the ranks file),
  the pixel labels and predictions, the GPR1200 embeddings.
- A ranks file (an R1M one is 281 MB) is never cached: :func:`ranks` memory-maps it for
  the run that reads its top rows, and the mapping goes when the run ends. Summaries of
  the other methods (the Overview's methods table) are numbers computed once per file
  stamp; no method's ranks stay mapped.

Results also persist on disk (``bench.resultcache``): the loaders of computed numbers
(the scan, the metric results, the pixel inputs, the methods table's rows, the triage,
the comparison, GPR1200) go through :func:`_kept`, whose key is the same file stamps
(plus, for what reads labelme files, the stamp of every label file the pair labels
name, :func:`_labels_key`) and the code's version. So the first visit after the files
change computes them once; every later visit, in any session and on any later server,
reads them back in milliseconds (``BENCH_RESULTS_CACHE=0``: off).

Adding a loader: a function whose parameters are these types (or plain values),
decorated with ``@st.cache_data(hash_funcs=HASH_FUNCS, ...)``. Do not name a parameter
with a leading underscore: Streamlit leaves such parameters out of the key.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from bench import inspect as bi
from bench import render, resultcache, thumbs
from bench import triage as bt
from bench.app import roots
from bench.errors import BenchError
from bench.evaluate import PixelInputs, load_pixel_inputs
from bench.formats.distractors import distractor_entry
from bench.formats.revisited import Gnd, load_gnd, load_ranks
from bench.metrics.gpr1200 import GprResult, evaluate_gpr1200
from bench.metrics.pixel import PIXEL_SETUPS, PixelResult, evaluate_pixel
from bench.metrics.revisited import RankScan, RevisitedSetupResult, evaluate_revisited, scan_ranks
from bench.protocol import LABELS, SETUPS
from bench.uploads import discover_with_uploads
from bench.workspace import DatasetFiles, MethodFiles
from bench.workspace import discover as _discover

if TYPE_CHECKING:  # bench.compare imports scipy.stats (1 s): only the Compare page needs it
    from bench.compare import Comparison


@dataclass(frozen=True)
class GprSpec:
    """The GPR1200 input chosen in the sidebar (all paths already checked against roots)."""

    images: Path
    embeddings: Path | None
    indices: Path | None
    metric: str
    order: Path | None
    protocol: str = "official"  # scores of embeddings (docs/PROTOCOLS.md §3)

    @property
    def input_file(self) -> Path | None:
        return self.embeddings or self.indices


# ---------------------------------------------------------------- cache keys

def stamp(path: str | os.PathLike | None) -> tuple | None:
    """``(path, size, mtime_ns)`` of a file, ``(path, mtime_ns)`` of a folder, ``None``
    for no path; a path that cannot be read still gets a key (its absolute path)."""
    if path is None:
        return None
    key = thumbs.file_key(path)
    if key is not None:
        return key
    try:
        return (os.path.abspath(path), os.stat(path).st_mtime_ns)
    except OSError:
        return (os.path.abspath(path), None)


def _files_key(obj: DatasetFiles | MethodFiles) -> tuple:
    """Every field of a discovered dataset or method, each file as its stamp (a dataset's
    methods are left out: each method is keyed by its own files)."""
    return tuple((f.name, stamp(v) if isinstance(v, Path) else v)
                 for f in fields(obj) if f.name != "methods"
                 for v in (getattr(obj, f.name),))


def _spec_key(s: GprSpec) -> tuple:
    return (stamp(s.images), stamp(s.embeddings), stamp(s.indices), s.metric,
            stamp(s.order), s.protocol)


HASH_FUNCS = {DatasetFiles: _files_key, MethodFiles: _files_key, GprSpec: _spec_key,
              type(Path()): stamp}


@functools.lru_cache(maxsize=32)
def _label_files(pair_labels: tuple | None, labels_root: tuple | None) -> tuple[str, ...]:
    """The label files the pair-labels file names (read once per stamp of that file and
    of its folder)."""
    from bench.formats.pixel import load_pair_labels

    if pair_labels is None:
        return ()
    root = labels_root[0] if labels_root else None
    paths, _ = load_pair_labels(pair_labels[0], root)
    return tuple(sorted(str(v) for v in paths.values()))


def _labels_key(ds: DatasetFiles) -> tuple:
    """The stamp of every labelme file of *ds* (an edit inside the labels folder changes
    no folder stamp), as one digest; ``()`` without pair labels."""
    import hashlib

    if ds.pair_labels is None:
        return ()
    files = _label_files(stamp(ds.pair_labels), stamp(ds.labels_root))
    h = hashlib.sha256()
    for f in files:
        h.update(repr(stamp(f)).encode())
    return (len(files), h.hexdigest())


def _key(value: object) -> object:
    """A results-cache key part: files as stamps (``HASH_FUNCS``), containers item by item."""
    for cls, fn in HASH_FUNCS.items():
        if isinstance(value, cls):
            return fn(value)
    if isinstance(value, (tuple, list)):
        return tuple(_key(v) for v in value)
    return value


def _kept(kind: str, parts: tuple, compute: Callable, *, labels: DatasetFiles | None = None):
    """``compute()``, kept on disk under (*kind*, the stamps of *parts*, and the label
    files' stamps of *labels* when it reads them): ``bench.resultcache.cached``. A
    :class:`BenchError` is raised again on every call (never kept)."""
    key = (_key(parts), _labels_key(labels) if labels is not None else None)
    return resultcache.cached(kind, key, compute)


# ---------------------------------------------------------------- discovery

@st.cache_data(show_spinner=False, ttl=120, max_entries=32, hash_funcs=HASH_FUNCS)
def discover(root: Path, images: Path | None = None, uploads: Path | None = None
             ) -> list[DatasetFiles]:
    """The datasets and methods under *root* (``bench.workspace.discover``), plus those
    uploaded into the results folder *uploads* (``bench.uploads``; the demo's uploads);
    cached for 2 minutes per folder stamp (:func:`rescan` forgets it)."""
    if uploads is not None:
        return discover_with_uploads(root, uploads, images_dir=images)
    return _discover(root, images_dir=images)


def rescan() -> None:
    discover.clear()


# ---------------------------------------------------------------- Revisited

@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs=HASH_FUNCS)
def gnd(ds: DatasetFiles) -> Gnd:
    """The dataset's ground truth."""
    return load_gnd(ds.gnd)


def ranks(ds: DatasetFiles, m: MethodFiles) -> np.ndarray:
    """The method's ranks ``(n_rows, n_queries)``, memory-mapped for this run only."""
    return load_ranks(m.ranks, gnd(ds))


@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs=HASH_FUNCS)
def scan(ds: DatasetFiles, m: MethodFiles) -> RankScan:
    """Where each query's labelled images sit in the method's ranking (one pass over the
    ranks file; the mapping is released when the pass ends)."""
    def compute() -> RankScan:
        g = gnd(ds)
        return scan_ranks(load_ranks(m.ranks, g), g, path=m.ranks)

    return _kept("scan", (ds.gnd, m.ranks), compute)


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs=HASH_FUNCS)
def revisited(ds: DatasetFiles, m: MethodFiles, protocol: str
              ) -> dict[str, RevisitedSetupResult]:
    """mAP and mP@k per setup (``bench.metrics.revisited``)."""
    return _kept("revisited", (ds.gnd, m.ranks, protocol),
                 lambda: evaluate_revisited(scan(ds, m), gnd(ds), protocol=protocol))


@st.cache_data(show_spinner=False, max_entries=256, hash_funcs=HASH_FUNCS)
def rank_of(ds: DatasetFiles, m: MethodFiles, q: int, i: int) -> int | None:
    """1-based rank of database image *i* in query *q*'s ranking, ``None`` if the
    ranking does not list it. Labelled images come from the scan; any other image (a
    negative, a distractor) is looked up in row chunks, the top 1,000 rows first."""
    sc = scan(ds, m)
    for label in LABELS:
        hit = np.flatnonzero(sc.ids[label][q] == i)
        if hit.size:
            return int(sc.pos[label][q][hit[0]]) + 1
    r = ranks(ds, m)
    n = r.shape[0]
    start, step = 0, 1000
    while start < n:
        col = np.asarray(r[start:start + step, q])
        hit = np.flatnonzero(col == i)
        if hit.size:
            return start + int(hit[0]) + 1
        start += step
        step = max(step, 1 << 18)
    return None


def ranked_at(ds: DatasetFiles, m: MethodFiles, q: int, rank: int) -> int | None:
    """The database index at 1-based *rank* of query *q* (``None`` past the ranking)."""
    r = ranks(ds, m)
    return int(r[rank - 1, q]) if 1 <= rank <= r.shape[0] else None


def n_ranked(ds: DatasetFiles, m: MethodFiles) -> int:
    """Rows of the method's ranking (database images + distractors, or fewer)."""
    return int(ranks(ds, m).shape[0])


# ---------------------------------------------------------------- pixel level

def has_pixel(ds: DatasetFiles | None, m: MethodFiles | None) -> bool:
    """Whether pixel-level results exist for this dataset and method."""
    return bool(ds and m and ds.pair_labels and m.matches)


@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs=HASH_FUNCS)
def pixel_inputs(ds: DatasetFiles, m: MethodFiles) -> PixelInputs:
    """Ground-truth regions, predictions and image sizes of every labelled pair."""
    return _kept("pixel_inputs", (ds.gnd, ds.pair_labels, ds.labels_root, m.matches),
                 lambda: load_pixel_inputs(gnd(ds), pair_labels=ds.pair_labels,
                                           labels_root=ds.labels_root, matches=m.matches),
                 labels=ds)


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs=HASH_FUNCS)
def pixel(ds: DatasetFiles, m: MethodFiles, protocol: str) -> PixelResult:
    """mIoU, mAP@k and per-pair IoU (``bench.metrics.pixel``); mAP@k with ranks only."""
    def compute() -> PixelResult:
        inputs = pixel_inputs(ds, m)
        sc = scan(ds, m) if m.ranks else None
        return evaluate_pixel(gnd(ds), inputs.gt, inputs.preds, ranks=sc, protocol=protocol,
                              image_sizes=inputs.sizes, warnings=inputs.warnings)

    return _kept("pixel", (ds, m, protocol), compute, labels=ds)


# ---------------------------------------------------------------- comparison

@st.cache_data(show_spinner=False, max_entries=16, hash_funcs=HASH_FUNCS)
def comparison(ds: DatasetFiles, methods: tuple[MethodFiles, ...], protocol: str
               ) -> Comparison:
    """Per-query values and paired statistics of *methods* on *ds*
    (``bench.compare.compare_methods``, docs/PROTOCOLS.md §6), built from the cached
    metric results exactly as ``python -m bench compare`` builds them; about a second of
    scipy per call, cached per file stamps."""
    def compute() -> Comparison:
        from bench.compare import MethodResult, compare_methods

        g = gnd(ds)
        results = []
        for mf in methods:
            rev = revisited(ds, mf, protocol) if mf.ranks else None
            pix = pixel(ds, mf, protocol) if has_pixel(ds, mf) else None
            if rev is None and pix is None:
                raise BenchError(f"no usable results for method {mf.name!r}",
                                 mf.matches or ds.gnd, f"it has a pixel result but {ds.name} "
                                 "has no <short>_pair2labelpath.npy")
            results.append(MethodResult.from_results(mf.name, revisited=rev, pixel=pix, gnd=g,
                                                     protocol=protocol))
        return compare_methods(results, dataset=ds.name, query_names=g.qimlist)

    return _kept("comparison", (ds, tuple(methods), protocol), compute, labels=ds)


# ---------------------------------------------------------------- methods table

@st.cache_data(show_spinner=False, max_entries=64, hash_funcs=HASH_FUNCS)
def method_summary(ds: DatasetFiles, m: MethodFiles, protocol: str
                   ) -> dict[str, float | None]:
    """One row of the methods table: numbers only (mAP per setup; mIoU bbox / seg and
    mAP@k for medium and hard), computed once per file stamp."""
    def compute() -> dict[str, float | None]:
        row: dict[str, float | None] = {}
        if m.ranks:
            rr = revisited(ds, m, protocol)
            row |= {f"mAP {s[0].upper()}": rr[s].mAP for s in SETUPS}
        if has_pixel(ds, m):
            pp = pixel(ds, m, protocol)
            for s in PIXEL_SETUPS:
                ss = pp.setups[s]
                row[f"mIoU bbox {s[0].upper()}"] = ss.miou_bbox
                row[f"mIoU seg {s[0].upper()}"] = ss.miou_seg
                if ss.map_at_k is not None:
                    row[f"mAP@k {s[0].upper()}"] = ss.map_at_k
        return row

    return _kept("method_summary", (ds, m, protocol), compute, labels=ds)


# ---------------------------------------------------------------- GPR1200

@st.cache_resource(show_spinner=False, max_entries=4, hash_funcs=HASH_FUNCS)
def gpr_inputs(spec: GprSpec) -> bi.GprInputs:
    """The GPR1200 images (names, categories) and embeddings or neighbour indices."""
    return bi.load_gpr_inputs(spec.images, embeddings=spec.embeddings, indices=spec.indices,
                              metric=spec.metric, order=spec.order)


@st.cache_data(show_spinner=False, max_entries=8, hash_funcs=HASH_FUNCS)
def gpr_result(spec: GprSpec) -> GprResult:
    """GPR1200 mAP, the six subsets and every image's AP (``bench.metrics.gpr1200``)."""
    def compute() -> GprResult:
        inp = gpr_inputs(spec)
        if inp.embeddings is not None:
            return evaluate_gpr1200(inp.images.categories, embeddings=inp.embeddings,
                                    metric=spec.metric, path=spec.embeddings,
                                    input_rows=inp.images.rows, protocol=spec.protocol)
        return evaluate_gpr1200(inp.images.categories, indices=inp.indices)

    return _kept("gpr_result", (spec,), compute)


# ---------------------------------------------------------------- images

def image_path(ds: DatasetFiles, name: str) -> Path | None:
    """The file of image *name* in the dataset's images folder; ``None`` when missing or
    when the name leads outside that folder (``../``, an absolute name, a symlink out)."""
    path = thumbs.resolve_image(ds.images, name)
    if path is None or not roots.is_inside(path, ds.images):
        return None
    return path


def db_image(ds: DatasetFiles, g: Gnd, i: int) -> tuple[str, Path | None]:
    """Name and image file of database index *i*: an ``imlist`` image, or past it an R1M
    distractor (named from ``revisitop1m.txt`` when the dataset has it). The file is
    ``None`` when missing or outside its images folder."""
    if i < g.n_db:
        return g.imlist[i], image_path(ds, g.imlist[i])
    listing = getattr(ds, "distractor_list", None)
    try:
        lst = listing() if listing is not None else None
        name, path = distractor_entry(g.n_db, i, lst)
    except (BenchError, OSError) as e:  # an unreadable list: the index still names it
        return f"distractor {i - g.n_db} ({e})", None
    folder = getattr(lst, "images", None)
    if path is None or folder is None or not path.is_file() or not roots.is_inside(path, folder):
        return name, None
    return name, path


# ---------------------------------------------------------------- error analysis

@st.cache_data(hash_funcs=HASH_FUNCS, show_spinner=False, max_entries=64)
def triage(ds: DatasetFiles, m: MethodFiles, setup: str, k: int, iou: float, protocol: str,
           iou_kind: str = "bbox") -> bt.TriageResult:
    """Failure type of every easy and hard pair, and mAP@k with each type fixed
    (``bench.triage.triage``, docs/PROTOCOLS.md §5), cached per (files, setup, k, t,
    protocol, IoU kind). The pair IoUs are :func:`pixel`'s; the ranks file is mapped only
    while this runs (for the top-ranked negatives)."""
    def compute() -> bt.TriageResult:
        res = pixel(ds, m, protocol)
        return bt.triage(gnd(ds), ranks(ds, m), res.pairs, scan=scan(ds, m), setup=setup,
                         k=int(k), iou=float(iou), iou_kind=iou_kind, protocol=protocol,
                         warnings=list(res.warnings))

    return _kept("triage", (ds, m, setup, int(k), float(iou), protocol, iou_kind), compute,
                 labels=ds)


# ---------------------------------------------------------------- tiles with regions

@st.cache_data(hash_funcs=HASH_FUNCS, show_spinner=False, max_entries=4096)
def mask_tile(path: Path | None, name: str, color: tuple[int, int, int], badge: str | None,
              gt: list[np.ndarray] | None, pred: np.ndarray | None,
              image_size: tuple[int, int] | None, mode: str,
              size: int = thumbs.TILE_PX) -> bytes:
    """JPEG bytes of a framed grid tile of a pair with its regions drawn as *mode*
    (``bench.render.mask_tile``): on the image's cached thumbnail, or, when the image is
    missing, on a blank canvas of *image_size* (the label's) so the regions still show.
    An image that exists but is refused (above the pixel caps, or unreadable:
    docs/PROTOCOLS.md §8 rule 9) gives the placeholder tile saying why and its size.
    Cached by the image file's stamp, the shapes and the look; no caption is burned in
    (names are text on the page)."""
    shapes = [*(gt or []), *([pred] if pred is not None and len(pred) else [])]
    try:
        img, full = thumbs.load_thumbnail(path)
        scale = img.width / max(full[0], 1)
    except BenchError:
        if thumbs.file_key(path) is not None or not shapes or mode == "none":
            return thumbs.tile_jpeg(path, name, color, badge=badge, size=size)
        img, scale = render.blank_canvas(image_size, shapes, max_side=thumbs.THUMB_PX)
    tile = render.mask_tile(img, gt, pred, color, scale=scale, mode=mode, size=size,
                            badge=badge)
    return render.jpeg_bytes(tile, quality=88)

