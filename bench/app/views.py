"""Pieces of page content shown by more than one page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from bench import render, thumbs
from bench.app import loaders, routing
from bench.app.context import FIX_FILES, guard
from bench.app.format import pct, svg_text
from bench.app.loaders import GprSpec
from bench.errors import BenchError
from bench.formats.revisited import Gnd
from bench.metrics.gpr1200 import SUBSETS
from bench.workspace import DatasetFiles


def query_view(ds: DatasetFiles, g: Gnd, q: int, *, px: int = 640) -> tuple[Any, str]:
    """The query image (from the thumbnail cache, at most *px* wide) with its box drawn,
    and a caption; a placeholder tile saying why when the image is missing, unreadable or
    above the pixel caps (docs/PROTOCOLS.md §8 rule 9; the caption then gives the message,
    with the file and its size)."""
    name = g.qimlist[q]
    path = loaders.image_path(ds, name)
    box = g.bbx[q] if q < len(g.bbx) else None
    try:
        img, size = thumbs.load_thumbnail(path, px=px)
    except BenchError as exc:
        if ds.images is None or path is None:
            why = "no images folder" if ds.images is None else "image not found"
            return render.placeholder(name, size=min(px, 320), note=why), f"{name} · {why}"
        return (render.placeholder(name, size=min(px, 320), note=thumbs.problem_note(exc)),
                f"{name} · {exc}")
    scale = img.width / max(size[0], 1)
    cap = f"{name} · {size[0]}×{size[1]}"
    if box is not None:
        img = render.draw_box(img, [v * scale for v in box], dim_outside=0.35)
        cap += " · box (" + ", ".join(f"{v:.0f}" for v in box) + ")"
    return img, cap


def query_crop(ds: DatasetFiles, g: Gnd, q: int, *, px: int = 320) -> tuple[Any, str]:
    """The query's box cut from its image (the whole image without a box; a placeholder
    when the image is missing), at most *px* on the longer side, and a plain-text caption
    (``format.md`` it for Markdown)."""
    name = g.qimlist[q]
    path = loaders.image_path(ds, name)
    try:  # bounded decoding (docs/PROTOCOLS.md §8 rule 9), as query_view
        img, size = thumbs.load_thumbnail(path, px=640)
    except BenchError as exc:
        if ds.images is None or path is None:
            why = "no images folder" if ds.images is None else "image not found"
            return render.placeholder(name, size=min(px, 240), note=why), f"{name} · {why}"
        return (render.placeholder(name, size=min(px, 240), note=thumbs.problem_note(exc)),
                f"{name} · {exc}")
    scale = img.width / max(size[0], 1)
    box = g.bbx[q] if q < len(g.bbx) else None
    crop = render.crop_box(img, [v * scale for v in box] if box is not None else None, pad=2)
    return render.fit(crop, px), f"{name} · {size[0]}×{size[1]}" + (
        " · query box" if box is not None else "")


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
    what = (f"embeddings, {spec.metric} similarity, {spec.protocol} scores" if spec.embeddings
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



# ---------------------------------------------------------------- per-query / per-category bars

BAR_PX = 20  # height of one bar of a ranked bar chart, in pixels: every name readable


def ranked_bars(values: np.ndarray, labels: list[str], keys: list[Any], *, chart_key: str,
                what: str, on_pick: Callable[[Any], None], box_height: int = 380,
                hover: list[str] | None = None) -> None:
    """One horizontal bar per entry, worst first (NaN last, drawn as 0 and marked
    "no value"), every bar :data:`BAR_PX` high with its name on the axis, in a container
    that scrolls when the entries need more than *box_height* pixels: readable and
    clickable at 70 queries and at 1,200 GPR1200 categories. *values* are fractions,
    *labels* plain names (escaped here for Plotly), *keys* what a click returns
    to *on_pick* (a selection callback: it runs once per click, before the rerun)."""
    order = worst_first(values)
    v = np.asarray(values, dtype=np.float64)
    shown = np.nan_to_num(v, nan=0.0)
    names = [svg_text(labels[j]) for j in order.tolist()]
    hov = [svg_text((hover or labels)[j]) for j in order.tolist()]
    keyed = [keys[j] for j in order.tolist()]
    text = [pct(v[j]) if not np.isnan(v[j]) else "no value" for j in order.tolist()]
    hovertemplate = "%{hovertext}<br>%{text}<extra>click to open</extra>"
    fig = go.Figure()
    # a faint full-width bar under every row: the whole row is the click target, so a
    # query with AP 0 (a bar one pixel wide) is as easy to click as any other
    fig.add_trace(go.Bar(y=names, x=[112] * len(names), orientation="h", customdata=keyed,
                         text=text, textposition="none", hovertext=hov,
                         hovertemplate=hovertemplate, marker_color="rgba(31,111,235,0.05)",
                         showlegend=False, name="row"))
    fig.add_trace(go.Bar(
        y=names, x=(shown[order] * 100).tolist(), orientation="h", customdata=keyed,
        text=text, textposition="outside", cliponaxis=False, hovertext=hov,
        hovertemplate=hovertemplate, name=what,
        marker=dict(color=shown[order], colorscale="RdYlGn", cmin=0, cmax=1)))
    n = len(order)
    fig.update_layout(height=max(160, BAR_PX * n + 70), margin=dict(l=10, r=30, t=40, b=10),
                      clickmode="event+select", bargap=0.2, showlegend=False,
                      barmode="overlay",
                      xaxis=dict(range=[0, 112], side="top", title=f"{what} (%)",
                                 fixedrange=True),
                      yaxis=dict(type="category", autorange="reversed", dtick=1,
                                 tickfont=dict(size=11), automargin=True, fixedrange=True))
    box = st.container(height=box_height if BAR_PX * n + 70 > box_height else "content",
                       key=f"{chart_key}_box", border=False)
    def _picked() -> None:
        hit = picked(st.session_state.get(chart_key))
        if hit is not None:
            on_pick(hit)

    box.plotly_chart(fig, on_select=_picked, selection_mode="points", key=chart_key,
                     width="stretch", config={"displayModeBar": False})
