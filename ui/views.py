"""Pieces of page content shown by more than one page."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from bench import render, thumbs
from bench.formats.revisited import Gnd
from bench.metrics.gpr1200 import SUBSETS
from bench.workspace import DatasetFiles
from ui import loaders, routing
from ui.context import FIX_FILES, guard
from ui.format import pct
from ui.loaders import GprSpec


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
