"""Shared helpers of the pages (not a page itself: app.py lists the pages explicitly).

- view state that lives in ``st.session_state`` and is mirrored into ``st.query_params``,
  so a link reopens the same view;
- widgets bound to that state (they survive page switches);
- cached wrappers around ``bench`` (the pages never parse a file or compute a metric);
- the data source chosen in the sidebar, as a :class:`Ctx` the pages read.

Caching: every wrapper is keyed by the files' identity ``(path, size, mtime_ns)``, so an
edited file is re-read. Loaded inputs that are large and read-only (ground truth, ranks,
label shapes, embeddings) are kept once per process with ``st.cache_resource`` (no copy
per rerun); the metric results are small and use ``st.cache_data``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from bench import inspect as bi
from bench import render, thumbs
from bench.demo import build_demo, default_demo_dir, demo_is_built, demo_paths
from bench.errors import BenchError
from bench.evaluate import PixelInputs, load_pixel_inputs
from bench.formats.revisited import Gnd, load_gnd, load_ranks
from bench.metrics.gpr1200 import SUBSETS, GprResult, evaluate_gpr1200
from bench.metrics.pixel import PixelResult, evaluate_pixel
from bench.metrics.revisited import RankScan, RevisitedSetupResult, evaluate_revisited, scan_ranks
from bench.workspace import DatasetFiles, MethodFiles, discover

OVERVIEW = "pages/overview.py"
QUERY = "pages/query.py"
PAIR = "pages/pair.py"
GPR = "pages/gpr.py"
DATA = "pages/data.py"

SOURCES = {"demo": "Demo (synthetic)", "folder": "Folder in released layout",
           "gpr": "GPR1200 folder"}
PROTOCOLS = ("official", "strict")
SETUPS = ("easy", "medium", "hard")
METRICS = ("cosine", "dot", "l2")

# view state: key -> default. Everything here is mirrored into the URL when not default.
DEFAULTS: dict[str, Any] = {
    "src": "demo", "root": "", "images": "",
    "gimages": "", "gmode": "embeddings", "gfile": "", "metric": "cosine", "order": "",
    "ds": "", "m": "", "proto": "official", "setup": "medium",
    "q": 0, "i": -1, "k": 20, "mode": "overlay", "opacity": 0.45,
    "gq": 0, "gk": 10, "qv": "ap",
}
_INT = {"q", "i", "k", "gq", "gk"}
_FLOAT = {"opacity"}
_CHOICES = {"src": tuple(SOURCES), "gmode": ("embeddings", "indices"), "metric": METRICS,
            "proto": PROTOCOLS, "setup": SETUPS, "mode": ("overlay", "errors", "side"),
            "qv": ("ap", "miou_bbox", "miou_seg")}


# ---------------------------------------------------------------- routing

_ROUTED = threading.local()


def run_page(page: Any) -> None:
    """Run the page chosen by ``st.navigation`` (app.py), marked as routed."""
    _ROUTED.on = True
    try:
        page.run()
    finally:
        _ROUTED.on = False


def page_setup() -> None:
    """First call of every page. Streamlit has a legacy mode for apps with a ``pages/``
    folder: until some run calls ``st.navigation`` (a fresh server's first request for a
    page URL; every ``AppTest`` run), it runs a page file directly, without app.py and so
    without the sidebar. Then leave that mode and rerun through the router."""
    if getattr(_ROUTED, "on", False):
        return
    try:
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False
    except (ImportError, AttributeError):  # pragma: no cover - other Streamlit versions
        pass
    st.rerun()


def mark_painted() -> None:
    """Called by the router at the end of every run."""
    st.session_state["_painted"] = True


def charts_now() -> bool:
    """Whether to draw Plotly charts in this run.

    A browser tab's first page is not shown until every element type on it has loaded its
    code, and Plotly's is by far the largest (seconds on a slow machine). So on a
    session's first run the pages leave the charts out, and a fragment's timer (which
    starts only once that run is on screen) reruns the app with them a moment later.
    """
    if st.session_state.get("_painted"):
        return True

    @st.fragment(run_every=0.25)
    def _then_charts() -> None:
        if st.session_state.get("_charts_armed"):
            st.session_state["_painted"] = True
            st.rerun(scope="app")
        st.session_state["_charts_armed"] = True

    _then_charts()
    return False


# ---------------------------------------------------------------- state and URL

def _parse(key: str, raw: str) -> Any:
    if key in _INT:
        return int(raw)
    if key in _FLOAT:
        v = float(raw)
        if not math.isfinite(v):
            raise ValueError(raw)
        return min(max(v, 0.0), 1.0)
    if key in _CHOICES and raw not in _CHOICES[key]:
        raise ValueError(raw)
    return raw


def init_state() -> None:
    """On a session's first run, read the view from the URL (bad values fall back to the
    defaults); later runs keep what the widgets set."""
    if st.session_state.get("_init"):
        return
    qp = st.query_params
    for key, default in DEFAULTS.items():
        value = default
        if key in qp:
            try:
                value = _parse(key, qp[key])
            except ValueError:
                value = default
        st.session_state[f"s_{key}"] = value
    st.session_state["_init"] = True


def get(key: str) -> Any:
    return st.session_state.get(f"s_{key}", DEFAULTS[key])


def put(key: str, value: Any) -> None:
    st.session_state[f"s_{key}"] = value


def url_params() -> dict[str, str]:
    """The state that differs from the defaults, as URL query parameters."""
    out = {}
    for key, default in DEFAULTS.items():
        v = get(key)
        if v != default and v is not None:
            out[key] = f"{v:.2f}" if key in _FLOAT else str(v)
    return out


def sync_url() -> None:
    """Write the state into ``st.query_params`` (only when it changed)."""
    want = url_params()
    if st.query_params.to_dict() != want:
        st.query_params.from_dict(want)


def go(page: str, **state: Any) -> None:
    """Set state and open *page* (the URL keeps the view)."""
    if "q" in state:
        set_query(state.pop("q"))
    for k, v in state.items():
        put(k, v)
    st.switch_page(page, query_params=url_params())


def request(page: str, **state: Any) -> None:
    """Widget callback: set state and ask the router to open *page* (see :func:`follow`).
    Callbacks run before the script, so the request survives any rerun in between."""
    if "q" in state:
        set_query(state.pop("q"))
    for k, v in state.items():
        put(k, v)
    st.session_state["_goto"] = page


def follow() -> None:
    """Called by the router before the page runs: open a page a callback asked for."""
    page = st.session_state.pop("_goto", None)
    if page:
        st.switch_page(page, query_params=url_params())


def nav_button(label: str, page: str, *, key: str, where: Any = st, **state: Any) -> None:
    """A button that opens *page* with *state* (e.g. ``q=3`` or ``i=17``)."""
    where.button(label, key=key, on_click=request, args=(page,), kwargs=state,
                 icon=":material/open_in_new:" if page != PAIR else ":material/compare:",
                 width="stretch")


def _bind(key: str, wkey: str | None, after: Callable[[], None] | None = None
          ) -> tuple[str, Callable[[], None]]:
    wkey = wkey or f"w_{key}"

    def changed() -> None:
        old = get(key)
        put(key, st.session_state[wkey])
        if key == "q" and old != get(key):
            put("i", -1)  # a pair belongs to its query
        if after is not None:
            after()

    return wkey, changed


def set_query(q: int) -> None:
    """Select query q (and forget the pair of the previous query)."""
    if q != get("q"):
        put("i", -1)
    put("q", q)


def select(label: str, options: Sequence[Any], key: str, *, wkey: str | None = None,
           where: Any = st, format_func: Callable[[Any], str] = str, **kw: Any) -> Any:
    """A selectbox bound to state *key*; a state value not among *options* becomes the
    first option."""
    options = list(options)
    if not options:
        return None
    if get(key) not in options:
        put(key, options[0])
    wkey, changed = _bind(key, wkey)
    st.session_state[wkey] = get(key)
    return where.selectbox(label, options, key=wkey, on_change=changed,
                           format_func=format_func, **kw)


def radio(label: str, options: Sequence[Any], key: str, *, wkey: str | None = None,
          where: Any = st, format_func: Callable[[Any], str] = str, **kw: Any) -> Any:
    options = list(options)
    if get(key) not in options:
        put(key, options[0])
    wkey, changed = _bind(key, wkey)
    st.session_state[wkey] = get(key)
    return where.radio(label, options, key=wkey, on_change=changed, format_func=format_func,
                       **kw)


def slider(label: str, lo: Any, hi: Any, key: str, *, wkey: str | None = None,
           where: Any = st, **kw: Any) -> Any:
    v = get(key)
    try:
        v = min(max(type(lo)(v), lo), hi)
    except (TypeError, ValueError):
        v = DEFAULTS[key]
    put(key, v)
    wkey, changed = _bind(key, wkey)
    st.session_state[wkey] = v
    return where.slider(label, lo, hi, key=wkey, on_change=changed, **kw)


def text(label: str, key: str, *, wkey: str | None = None, where: Any = st, **kw: Any) -> str:
    wkey, changed = _bind(key, wkey)
    st.session_state[wkey] = get(key)
    return where.text_input(label, key=wkey, on_change=changed, **kw)


# ---------------------------------------------------------------- formatting

def pct(x: float | None, nd: int = 2) -> str:
    """A fraction as a percentage with two decimals; ``—`` for none / NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{100 * float(x):.{nd}f}%"


def legend(items: Sequence[tuple[str, render.RGB]]) -> None:
    chips = " ".join(
        f"<span style='display:inline-flex;align-items:center;margin-right:14px'>"
        f"<span style='width:14px;height:14px;border-radius:3px;background:"
        f"{render.hex_color(c)};display:inline-block;margin-right:6px'></span>{name}</span>"
        for name, c in items)
    st.markdown(f"<div style='font-size:0.9rem'>{chips}</div>", unsafe_allow_html=True)


LABEL_LEGEND = [(name, render.LABEL_COLORS[name]) for name in ("easy", "hard", "junk",
                                                              "negative")]


# ---------------------------------------------------------------- file identity

def fid(path: str | os.PathLike | None) -> tuple | None:
    """``(path, size, mtime_ns)`` of a file, ``(path, mtime_ns)`` of a folder, else None."""
    if path is None:
        return None
    key = thumbs.file_key(path)
    if key is not None:
        return key
    try:
        return (os.path.abspath(path), os.stat(path).st_mtime_ns)
    except OSError:
        return (os.path.abspath(path), None)


# ---------------------------------------------------------------- cached bench calls

@st.cache_data(show_spinner=False, ttl=120, max_entries=32)
def _discover(root: str, images: str | None, root_key: tuple | None) -> list[DatasetFiles]:
    return discover(root, images_dir=images or None)


def discover_cached(root: str | Path, images: str | None = None) -> list[DatasetFiles]:
    return _discover(str(root), images or None, fid(root))


@st.cache_resource(show_spinner=False, max_entries=16)
def _gnd(path: str, key: tuple | None) -> Gnd:
    return load_gnd(path)


def gnd(ds: DatasetFiles) -> Gnd:
    return _gnd(str(ds.gnd), fid(ds.gnd))


@st.cache_resource(show_spinner=False, max_entries=16)
def _ranks(gnd_path: str, gkey: tuple | None, path: str, key: tuple | None) -> np.ndarray:
    return load_ranks(path, _gnd(gnd_path, gkey))


def ranks(ds: DatasetFiles, m: MethodFiles) -> np.ndarray:
    return _ranks(str(ds.gnd), fid(ds.gnd), str(m.ranks), fid(m.ranks))


@st.cache_resource(show_spinner=False, max_entries=16)
def _scan(gnd_path: str, gkey: tuple | None, path: str, key: tuple | None) -> RankScan:
    g = _gnd(gnd_path, gkey)
    return scan_ranks(_ranks(gnd_path, gkey, path, key), g, path=path)


def scan(ds: DatasetFiles, m: MethodFiles) -> RankScan:
    return _scan(str(ds.gnd), fid(ds.gnd), str(m.ranks), fid(m.ranks))


@st.cache_data(show_spinner=False, max_entries=64)
def _revisited(gnd_path: str, gkey: tuple | None, path: str, key: tuple | None,
               protocol: str) -> dict[str, RevisitedSetupResult]:
    return evaluate_revisited(_scan(gnd_path, gkey, path, key), _gnd(gnd_path, gkey),
                              protocol=protocol)


def revisited(ds: DatasetFiles, m: MethodFiles, protocol: str) -> dict[str, RevisitedSetupResult]:
    return _revisited(str(ds.gnd), fid(ds.gnd), str(m.ranks), fid(m.ranks), protocol)


@st.cache_resource(show_spinner=False, max_entries=16)
def _pixel_inputs(gnd_path: str, gkey: tuple | None, labels: str, lkey: tuple | None,
                  labels_root: str | None, matches: str, mkey: tuple | None) -> PixelInputs:
    return load_pixel_inputs(_gnd(gnd_path, gkey), pair_labels=labels,
                             labels_root=labels_root, matches=matches)


def pixel_inputs(ds: DatasetFiles, m: MethodFiles) -> PixelInputs:
    return _pixel_inputs(str(ds.gnd), fid(ds.gnd), str(ds.pair_labels), fid(ds.pair_labels),
                         str(ds.labels_root) if ds.labels_root else None, str(m.matches),
                         fid(m.matches))


@st.cache_data(show_spinner=False, max_entries=64)
def _pixel(gnd_path: str, gkey: tuple | None, labels: str, lkey: tuple | None,
           labels_root: str | None, matches: str, mkey: tuple | None, ranks_path: str | None,
           rkey: tuple | None, protocol: str) -> PixelResult:
    g = _gnd(gnd_path, gkey)
    inputs = _pixel_inputs(gnd_path, gkey, labels, lkey, labels_root, matches, mkey)
    sc = _scan(gnd_path, gkey, ranks_path, rkey) if ranks_path else None
    return evaluate_pixel(g, inputs.gt, inputs.preds, ranks=sc, protocol=protocol,
                          image_sizes=inputs.sizes, warnings=inputs.warnings)


def pixel(ds: DatasetFiles, m: MethodFiles, protocol: str) -> PixelResult:
    return _pixel(str(ds.gnd), fid(ds.gnd), str(ds.pair_labels), fid(ds.pair_labels),
                  str(ds.labels_root) if ds.labels_root else None, str(m.matches),
                  fid(m.matches), str(m.ranks) if m.ranks else None, fid(m.ranks), protocol)


def has_pixel(ds: DatasetFiles | None, m: MethodFiles | None) -> bool:
    return bool(ds and m and ds.pair_labels and m.matches)


@dataclass(frozen=True)
class GprSpec:
    images: str
    embeddings: str | None
    indices: str | None
    metric: str
    order: str | None

    @property
    def input_file(self) -> str:
        return self.embeddings or self.indices or ""


def _spec_args(spec: GprSpec) -> tuple:
    return (spec.images, spec.embeddings, spec.indices, spec.metric, spec.order,
            fid(spec.images), fid(spec.input_file), fid(spec.order))


@st.cache_resource(show_spinner=False, max_entries=4)
def _gpr_inputs(images: str, embeddings: str | None, indices: str | None, metric: str,
                order: str | None, ikey: tuple | None, fkey: tuple | None,
                okey: tuple | None) -> bi.GprInputs:
    return bi.load_gpr_inputs(images, embeddings=embeddings, indices=indices, metric=metric,
                              order=order)


def gpr_inputs(spec: GprSpec) -> bi.GprInputs:
    return _gpr_inputs(*_spec_args(spec))


@st.cache_data(show_spinner=False, max_entries=8)
def _gpr_result(images: str, embeddings: str | None, indices: str | None, metric: str,
                order: str | None, ikey: tuple | None, fkey: tuple | None,
                okey: tuple | None) -> GprResult:
    inp = _gpr_inputs(images, embeddings, indices, metric, order, ikey, fkey, okey)
    if inp.embeddings is not None:
        return evaluate_gpr1200(inp.images.categories, embeddings=inp.embeddings, metric=metric)
    return evaluate_gpr1200(inp.images.categories, indices=inp.indices)


def gpr_result(spec: GprSpec) -> GprResult:
    return _gpr_result(*_spec_args(spec))


# ---------------------------------------------------------------- demo

_BUILD_LOCK = threading.Lock()


def ensure_demo() -> Path:
    """The demo folder; built on first start with a progress bar (about a minute)."""
    root = default_demo_dir()
    if demo_is_built(root):
        return root
    with _BUILD_LOCK:
        if demo_is_built(root):
            return root
        st.info("First start: building the synthetic demo benchmark into "
                f"`{root}` (about a minute, once).")
        bar = st.progress(0.0, text="Building the demo…")

        def progress(frac: float, msg: str) -> None:
            bar.progress(min(max(float(frac), 0.0), 1.0), text=msg)

        scale = os.environ.get("BENCH_DEMO_SCALE", "full")  # "small": tests
        build_demo(root, scale=scale if scale in ("full", "small") else "full",
                   progress=progress)
        bar.empty()
    return root


# ---------------------------------------------------------------- the chosen data

@dataclass
class Ctx:
    """What the sidebar chose; the pages read it with :func:`ctx`."""

    source: str
    root: Path | None = None
    datasets: list[DatasetFiles] | None = None
    dataset: DatasetFiles | None = None
    method: MethodFiles | None = None
    protocol: str = "official"
    setup: str = "medium"
    gpr: GprSpec | None = None
    error: str | None = None
    gpr_error: str | None = None

    @property
    def synthetic(self) -> bool:
        return self.source == "demo"

    @property
    def images(self) -> Path | None:
        return self.dataset.images if self.dataset else None


def _none_if_blank(s: str) -> str | None:
    s = (s or "").strip()
    return os.path.expanduser(s) if s else None


def sidebar() -> Ctx:
    """The data-source sidebar; returns (and stores) the :class:`Ctx` of this run."""
    sb = st.sidebar
    sb.markdown("### Data")
    src = radio("Source", list(SOURCES), "src", where=sb, format_func=SOURCES.get,
                label_visibility="collapsed")
    c = Ctx(source=src, protocol=get("proto"), setup=get("setup"))
    if src == "demo":
        root = ensure_demo()
        c.root = root
        p = demo_paths(root)
        c.gpr = GprSpec(str(p.gpr_images), str(p.gpr_embeddings), None, "cosine", None)
        sb.caption("Synthetic data made from scikit-image photos: not a real benchmark.")
    elif src == "folder":
        text("Folder", "root", where=sb, placeholder="/data/prbench",
             help="Holds pixel_retrieval_benchmarks/ (gnd, pair labels, labelme files) "
                  "and results/ (image-level/<method>/r<short>.npy, "
                  "pixel-level/<method>/matching_result/pr<short>.npy).")
        text("Images folder (optional)", "images", where=sb, placeholder="…/jpg",
             help="Folder with the database and query .jpg files; default: jpg/ beside "
                  "the gnd file. Without images, metrics and charts still work.")
        root = _none_if_blank(get("root"))
        images = _none_if_blank(get("images"))
        if images is not None and not Path(images).is_dir():
            sb.warning(f"No such images folder: {images}. Metrics work without images.")
        if root is None:
            c.error = "Enter the folder that holds pixel_retrieval_benchmarks/ and results/."
        else:
            c.root = Path(root)
    else:
        text("Images folder", "gimages", where=sb, placeholder="…/GPR1200/images",
             help="The GPR1200 images/ folder ({category}_{name}.jpg).")
        radio("Results", ["embeddings", "indices"], "gmode", where=sb, horizontal=True,
              format_func=lambda v: {"embeddings": "Embeddings (n×d)",
                                     "indices": "Indices (n×k)"}[v])
        text(".npy file", "gfile", where=sb, placeholder="embeddings.npy")
        if get("gmode") == "embeddings":
            select("Similarity", METRICS, "metric", where=sb,
                   help="cosine: L2-normalised dot product; dot: as given; l2: Euclidean.")
        text("Order file (optional)", "order", where=sb,
             help="One image name per line, when the rows were saved in another order.")
        images, f = _none_if_blank(get("gimages")), _none_if_blank(get("gfile"))
        if images is None or f is None:
            c.gpr_error = "Enter the GPR1200 images folder and an embeddings or indices file."
        else:
            emb = f if get("gmode") == "embeddings" else None
            c.gpr = GprSpec(images, emb, None if emb else f, get("metric"),
                            _none_if_blank(get("order")))
        c.error = "The GPR1200 source has no Revisited / pixel data: see the GPR1200 page."

    if c.root is not None and c.error is None:
        try:
            c.datasets = discover_cached(c.root, _none_if_blank(get("images")))
        except BenchError as e:
            c.error = str(e)
        if src == "folder" and sb.button("Rescan folder",
                                         help="Look again for datasets and methods"):
            _discover.clear()
            st.rerun()

    if c.datasets:
        sb.markdown("### Benchmark")
        names = [d.name for d in c.datasets]
        name = select("Dataset", names, "ds", where=sb)
        c.dataset = next(d for d in c.datasets if d.name == name)
        methods = list(c.dataset.methods)
        if methods:
            mname = select("Method", methods, "m", where=sb)
            c.method = c.dataset.methods[mname]
        else:
            sb.warning("No results found for this dataset under results/.")
        radio("Protocol", PROTOCOLS, "proto", where=sb, horizontal=True,
              format_func=str.capitalize,
              help="Official: the released code's numbers, quirks included. "
                   "Strict: the project's clean variant (see the Data & help page).")
        radio("Setup", SETUPS, "setup", where=sb, horizontal=True, format_func=str.capitalize,
              help="Easy: positives = easy. Medium: easy + hard. Hard: hard "
                   "(the others count as junk).")
        c.protocol, c.setup = get("proto"), get("setup")
    elif c.error and src != "gpr":
        sb.error(c.error)
    st.session_state["_ctx"] = c
    return c


def ctx() -> Ctx:
    return st.session_state["_ctx"]


@contextmanager
def guard(fix: str = "") -> Iterator[None]:
    """Show a :class:`BenchError` as an ``st.error`` (plus what to do) and stop this page;
    the sidebar and the other pages keep working."""
    try:
        yield
    except BenchError as e:
        st.error(str(e), icon=":material/error:")
        if fix:
            st.caption(fix)
        st.stop()


FIX_FILES = ("Check the file named above (the Data & help page lists the expected layout "
             "and formats), then press Rescan folder or edit the path in the sidebar.")


def require_dataset(*, need_ranks: bool = False, need_pixel: bool = False
                    ) -> tuple[DatasetFiles, MethodFiles | None]:
    """The chosen dataset (and method), or an explanation and a stop."""
    c = ctx()
    if c.dataset is None:
        if c.source == "gpr":
            st.info("The GPR1200 source holds no Revisited / pixel data: open the "
                    "**GPR1200** page, or choose another source in the sidebar.")
        else:
            st.error(c.error or "No dataset found.", icon=":material/error:")
            st.caption(FIX_FILES)
        st.stop()
    m = c.method
    if need_ranks and (m is None or m.ranks is None):
        st.warning("This method has no image-level ranks file "
                   f"(results/image-level/<method>/r{c.dataset.short}.npy).")
        st.stop()
    if need_pixel and not has_pixel(c.dataset, m):
        st.warning("Pixel-level inspection needs the pair labels "
                   f"({c.dataset.short}_pair2labelpath.npy) and the method's "
                   f"matching_result/pr{c.dataset.short}.npy.")
        st.stop()
    return c.dataset, m


def synthetic_note() -> None:
    if ctx().synthetic:
        st.caption(":material/science: Demo data: synthetic images and two baseline methods "
                   "made by this project; the numbers are not Revisited Oxford/Paris, "
                   "PROxford/PRParis or GPR1200 results.")


def image_path(ds: DatasetFiles, name: str) -> Path | None:
    return thumbs.resolve_image(ds.images, name)


def query_label(g: Gnd, q: int, ap: np.ndarray | None = None) -> str:
    s = f"{q} · {g.qimlist[q]}"
    if ap is not None and not math.isnan(ap[q]):
        s += f"  (AP {pct(ap[q])})"
    return s


def clamp_query(g: Gnd) -> int:
    q = get("q")
    q = min(max(int(q), 0), g.n_queries - 1)
    put("q", q)
    return q


def query_view(ds: DatasetFiles, g: Gnd, q: int, *, px: int = 640) -> tuple[Any, str]:
    """The query image (from the thumbnail cache, at most *px* wide) with its box drawn,
    and a caption; a placeholder tile when the image is missing."""
    name = g.qimlist[q]
    path = image_path(ds, name)
    box = g.bbx[q] if q < len(g.bbx) else None
    size = thumbs.image_size(path)
    if size is None:
        why = "no images folder" if ds.images is None else "image not found"
        return render.placeholder(name, size=min(px, 320), note=why), f"{name} · {why}"
    img = thumbs.thumbnail(path, name, px=px)
    scale = img.width / max(size[0], 1)
    cap = f"{name} · {size[0]}×{size[1]}"
    if box is not None:
        img = render.draw_box(img, [v * scale for v in box], dim_outside=0.35)
        cap += " · box (" + ", ".join(f"{v:.0f}" for v in box) + ")"
    return img, cap


def gpr_summary(spec: GprSpec, *, title: str, link: bool = False) -> None:
    """GPR1200 mAP and the six subset mAPs as metric cards."""
    st.subheader(title, help="GPR1200 protocol (PROTOCOLS §3).")
    with st.spinner("Evaluating GPR1200…"), guard(FIX_FILES):
        inputs = gpr_inputs(spec)
        res = gpr_result(spec)
    cols = st.columns(len(SUBSETS) + 1)
    cols[0].metric("mAP", pct(res.mAP))
    for col, name in zip(cols[1:], SUBSETS, strict=True):
        col.metric(name, pct(res.subsets[name]))
    n_cat = int(np.unique(inputs.images.categories).size)
    note = ("" if inputs.images.n == 12_000 else
            " Not 12,000 images: the subsets are six equal blocks of categories.")
    what = (f"embeddings, {spec.metric} similarity" if spec.embeddings
            else "neighbour indices")
    st.caption(f"{inputs.images.n} images, {n_cat} categories, {what}; every image queries "
               f"all images, itself included.{note}")
    if link:
        st.page_link(GPR, label="Browse GPR1200 queries", icon=":material/arrow_forward:")
