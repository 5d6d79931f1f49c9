"""Pieces of page content shown by more than one page."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from bench import render, thumbs
from bench.app import loaders, routing
from bench.app.context import FIX_FILES, guard
from bench.app.format import pct
from bench.app.loaders import GprSpec
from bench.formats.revisited import Gnd
from bench.metrics.gpr1200 import SUBSETS
from bench.workspace import DatasetFiles


def query_view(ds: DatasetFiles, g: Gnd, q: int, *, px: int = 640) -> tuple[Any, str]:
    """The query image (from the thumbnail cache, at most *px* wide) with its box drawn,
    and a caption; a placeholder tile when the image is missing."""
    name = g.qimlist[q]
    path = loaders.image_path(ds, name)
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
    st.subheader(title, help="GPR1200 protocol (docs/PROTOCOLS.md §3).")
    with st.spinner("Evaluating GPR1200…"), guard(FIX_FILES):
        inputs = loaders.gpr_inputs(spec)
        res = loaders.gpr_result(spec)
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
        st.page_link(routing.GPR.path, label="Browse GPR1200 queries",
                     icon=":material/arrow_forward:")


# ---------------------------------------------------------------- charts that lead somewhere

def picked(event: Any) -> Any:
    """The ``customdata`` of the first point selected in a Plotly chart's event
    (``st.plotly_chart(..., on_select=...)``), or ``None`` when nothing is selected. A
    one-value ``customdata`` comes back as that value."""
    sel = getattr(event, "selection", None) if event is not None else None
    points = (sel.get("points") if isinstance(sel, dict) else getattr(sel, "points", None)) or []
    if not points:
        return None
    cd = points[0].get("customdata")
    if isinstance(cd, (list, tuple)) and len(cd) == 1:
        return cd[0]
    return cd


def query_names(g: Gnd) -> list[str]:
    """One axis label per query: its image name, or ``"q · name"`` when names repeat
    (a category axis merges equal labels)."""
    names = list(g.qimlist)
    if len(set(names)) == len(names):
        return names
    return [f"{q} · {n}" for q, n in enumerate(names)]


def worst_first(values: np.ndarray) -> np.ndarray:
    """Query order for a per-query bar chart: lowest value first, NaN (no positives)
    last, ties by query index."""
    v = np.asarray(values, dtype=np.float64)
    return np.lexsort((np.arange(v.size), np.where(np.isnan(v), np.inf, v)))


# ---------------------------------------------------------------- IoU ranges

IOU_BIN = 0.05  # the IoU histogram's bin width (a fraction)


def iou_in_range(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``lo <= IoU < hi`` (``hi`` included when it is 1), bounds read at 2 decimals as
    the URL keeps them: the histogram's bins and the Errors page's filter agree exactly.
    NaN (no IoU) is never inside."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = round(float(lo), 2), round(float(hi), 2)
    with np.errstate(invalid="ignore"):
        return (v >= lo) & ((v < hi) | ((hi >= 1.0) & (v <= hi)))


def iou_bins(values: np.ndarray, width: float = IOU_BIN) -> tuple[list[tuple[float, float]],
                                                                 np.ndarray]:
    """The histogram's bins ``[(lo, hi), ...]`` over [0, 1] and the count of *values* in
    each (:func:`iou_in_range`; NaN counted nowhere)."""
    n = round(1 / width)
    edges = [(round(b * width, 2), round((b + 1) * width, 2)) for b in range(n)]
    counts = np.array([int(iou_in_range(values, lo, hi).sum()) for lo, hi in edges])
    return edges, counts

