"""Pair: one query-database pair, ground-truth region vs predicted polygon."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from bench import inspect as bi
from bench import render, thumbs
from pages import _common as ui

ui.page_setup()

MODES = {"overlay": "Overlay", "errors": "Error map", "side": "Side by side"}
MAX_SIDE = 1600  # rendered view: longer side at most this (keeps big images quick)

c = ui.ctx()
st.title("Pair")
ds, m = ui.require_dataset()
ui.synthetic_note()

with st.spinner("Loading…"), ui.guard(ui.FIX_FILES):
    g = ui.gnd(ds)
    scan = ui.scan(ds, m) if m is not None and m.ranks else None
    has_pix = ui.has_pixel(ds, m)
    pix = {p: ui.pixel(ds, m, p) for p in ui.PROTOCOLS} if has_pix else None
    inputs = ui.pixel_inputs(ds, m) if has_pix else None

q = ui.clamp_query(g)
rl = bi.rank_lookup(scan, q) if scan is not None else {}
rows = bi.query_pairs(g, q, result=pix[c.protocol] if pix else None,
                      gt=inputs.gt if inputs else {}, preds=inputs.preds if inputs else {},
                      ranks=rl)
options = [r.db for r in rows]
i = ui.get("i")
if not (0 <= int(i) < g.n_db) and options:
    i = options[0]
if 0 <= int(i) < g.n_db and i not in options:  # opened from a junk or negative thumbnail
    options = [int(i)] + options
if not options:
    st.info("This query has no easy or hard pair.")
    st.stop()
ui.put("i", int(i))
labels = bi.labels_of(g, q)
by_db = {r.db: r for r in rows}


def pair_label(db: int) -> str:
    r = by_db.get(db)
    rank = rl.get(db)
    s = f"{bi.image_name(g, db)} · {labels.get(db, 'negative')}"
    s += f" · rank {rank}" if rank else ""
    if r is not None and r.seg is not None:
        s += f" · seg IoU {ui.pct(r.seg, 1)}"
    elif r is not None and inputs is not None:
        s += " · no prediction"
    return s


def _step(delta: int) -> None:
    cur = options.index(ui.get("i")) if ui.get("i") in options else 0
    ui.put("i", options[min(max(cur + delta, 0), len(options) - 1)])


# ---------------------------------------------------------------- choose the pair
top = st.columns([4, 5, 1, 1], vertical_alignment="bottom")
with top[0]:
    ui.select("Query", list(range(g.n_queries)), "q", wkey="w_q_pair",
              format_func=lambda j: ui.query_label(g, j))
with top[1]:
    i = ui.select("Database image", options, "i", format_func=pair_label)
pos = options.index(i)
top[2].button("Prev", icon=":material/chevron_left:", on_click=_step, args=(-1,),
              disabled=pos == 0, key="prev_pair", width="stretch")
top[3].button("Next", icon=":material/chevron_right:", on_click=_step, args=(1,),
              disabled=pos >= len(options) - 1, key="next_pair", width="stretch")

ctl = st.columns([3, 2, 2], vertical_alignment="bottom")
with ctl[0]:
    mode = ui.radio("View", list(MODES), "mode", horizontal=True, format_func=MODES.get)
with ctl[1]:
    opacity = ui.slider("Opacity", 0.0, 1.0, "opacity", step=0.05)

# ---------------------------------------------------------------- inputs of this pair
key = (q, i)
gt = inputs.gt.get(key) if inputs else None
pred = inputs.preds.get(key) if inputs else None
size = inputs.sizes.get(key) if inputs else None
name = bi.image_name(g, i)
path = ui.image_path(ds, name)
img = thumbs.open_image(path)
missing_image = img is None
if img is None:  # draw on a blank canvas of the image's size (or the shapes' extent)
    pts = [p for p in (gt or [])] + ([pred] if pred is not None else [])
    if size is None and pts:
        allp = np.concatenate(pts)
        size = (int(allp[:, 0].max()) + 10, int(allp[:, 1].max()) + 10)
    w, h = size or (480, 360)
    img = Image.new("RGB", (max(w, 1), max(h, 1)), (236, 238, 242))
scale = min(1.0, MAX_SIDE / max(img.size))


def scaled(arr: np.ndarray) -> np.ndarray:
    return np.asarray(arr, dtype=np.float64) * scale


base = render.fit(img, MAX_SIDE) if scale < 1 else img
view = render.overlay(base, [scaled(s) for s in gt or []],
                      scaled(pred) if pred is not None else None, opacity=opacity)
legend = [("ground truth (filled)", render.GT_COLOR), ("prediction (outline)", render.PRED_COLOR)]
counts = None
note = ""
if mode == "errors":
    if gt and pred is not None:
        masks = bi.pair_error_masks(pred, gt, protocol=c.protocol, image_size=size)
        counts = render.error_counts(masks)
        view = render.error_map(img, masks, opacity=max(opacity, 0.05))
        if scale < 1:
            view = render.fit(view, MAX_SIDE)
        legend = [(f"true positive · {counts['tp']:,} px", render.ERROR_COLORS["tp"]),
                  (f"false positive · {counts['fp']:,} px", render.ERROR_COLORS["fp"]),
                  (f"false negative · {counts['fn']:,} px", render.ERROR_COLORS["fn"])]
    else:
        note = ("No error map: the pair has no ground-truth region." if not gt
                else "No error map: the method predicted nothing for this pair.")
elif mode == "side":
    qname = g.qimlist[q]
    qimg = thumbs.open_image(ui.image_path(ds, qname), max_side=MAX_SIDE)
    box = g.bbx[q] if q < len(g.bbx) else None
    if qimg is None:
        crop = render.placeholder(qname, size=240, note="query image not available")
    else:
        qsize = thumbs.image_size(ui.image_path(ds, qname)) or qimg.size
        qs = qimg.width / max(qsize[0], 1)
        crop = render.crop_box(qimg, [v * qs for v in box] if box else None, pad=4)
    view = render.side_by_side(crop, view, height=max(360, min(560, view.height)),
                               titles=(f"query crop · {qname}", f"database · {name}"))

# ---------------------------------------------------------------- show
show, panel = st.columns([3, 2], gap="medium")
with show:
    ui.legend(legend)
    st.image(render.jpeg_bytes(view, quality=92), width="stretch")
    cap = f"{name} · {labels.get(i, 'negative')}"
    if rl.get(i):
        cap += f" · rank {rl[i]}"
    if missing_image:
        cap += " · image not available: shapes drawn on a blank canvas"
    st.caption(cap)
with panel:
    st.markdown(f"**{name}** for query **{g.qimlist[q]}**")
    facts = [f"label **{labels.get(i, 'negative')}**",
             f"rank **{rl[i]}**" if rl.get(i) else "not in the ranking's labelled items"]
    if gt:
        facts.append(f"{len(gt)} ground-truth shape{'s' if len(gt) > 1 else ''}")
    if pred is not None:
        facts.append(f"prediction: {len(pred)}-point polygon")
    st.markdown(" · ".join(facts))
    if note:
        st.info(note)
    if not gt:
        st.caption("No ground-truth region: only easy and hard pairs are labelled and scored.")
    if inputs is not None and pred is None:
        st.caption("The method predicted no region for this pair (official mIoU: skipped if "
                   "easy, 0 if hard; strict: 0).")
    if pix is not None:
        rows_iou = []
        for kind, col in (("bbox", 0), ("seg", 1)):
            row = {"IoU": kind}
            for p in ui.PROTOCOLS:
                v = pix[p].pairs.get(key)
                row[p] = ui.pct(v[col]) if v is not None else "not scored"
            rows_iou.append(row)
        st.table(rows_iou, hide_index=True)
        if counts is not None:
            tot = counts["tp"] + counts["fp"] + counts["fn"]
            st.caption(f"Error map on the {c.protocol} canvas: TP / (TP + FP + FN) = "
                       f"{ui.pct(counts['tp'] / tot if tot else 0.0)}, the {c.protocol} "
                       "seg IoU. Pixels outside the image (official square canvas) are "
                       "counted but not drawn.")
        else:
            st.caption("Official: square canvas of side S (largest coordinate); strict: the "
                       "image. Seg IoU fills polygons with their boundary.")
    else:
        st.caption("No pixel-level result for this method: IoU not available.")
    st.download_button("Download PNG", render.png_bytes(view),
                       file_name=f"pair_q{q}_{name}_{mode}.png", mime="image/png",
                       icon=":material/download:")
