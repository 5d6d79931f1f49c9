"""Pair: one query-database pair, ground-truth region vs predicted polygon."""

from __future__ import annotations

import numpy as np
import streamlit as st

from bench import inspect as bi
from bench import render, thumbs
from bench.app import context, loaders, routing, state, widgets
from bench.app.format import md, md_message, pct, query_label
from bench.app.state import PAIR_MODES
from bench.errors import BenchError
from bench.protocol import PROTOCOLS, Protocol

routing.ensure_routed()

MODES = dict(zip(PAIR_MODES, ("Overlay", "Error map", "Side by side"), strict=True))
MAX_SIDE = 1600  # rendered view: longer side at most this (keeps big images quick)

c = context.ctx()
st.title("Pair")
ds, m = context.require_dataset()
context.synthetic_note()

with st.spinner("Loading…"), context.guard(context.FIX_FILES):
    g = loaders.gnd(ds)
    ranked = m is not None and m.ranks is not None
    scan = loaders.scan(ds, m) if ranked else None
    n_rows = loaders.n_ranked(ds, m) if ranked else 0
    has_pix = loaders.has_pixel(ds, m)
    pix = {p: loaders.pixel(ds, m, p) for p in PROTOCOLS} if has_pix else None
    inputs = loaders.pixel_inputs(ds, m) if has_pix else None

# the second method of the two-method view ("Compare with", URL key m2)
others = [n for n in ds.methods if m is None or n != m.name]
mb = ds.methods.get(state.get("m2")) if state.get("m2") in others else None
pix_b = inputs_b = None
b_error = None
try:  # a bad file of the second method leaves the first one's view
    if has_pix and loaders.has_pixel(ds, mb):
        pix_b = loaders.pixel(ds, mb, c.protocol)
        inputs_b = loaders.pixel_inputs(ds, mb)
except BenchError as e:
    pix_b = inputs_b = None
    b_error = str(e)

q = min(max(int(state.get("q")), 0), g.n_queries - 1)
state.put("q", q)
labels = bi.labels_of(g, q)
rl = bi.rank_lookup(scan, q) if scan is not None else {}
rows = bi.query_pairs(g, q, result=pix[c.protocol] if pix else None,
                      gt=inputs.gt if inputs else {}, preds=inputs.preds if inputs else {},
                      ranks=rl)
pairs = [r.db for r in rows]  # the query's easy and hard pairs, best ranked first
n_images = max(g.n_db, n_rows)  # database images, then any distractors of the ranking

i = int(state.get("i"))
if not 0 <= i < n_images:
    i = pairs[0] if pairs else (loaders.ranked_at(ds, m, q, 1) if ranked else -1)
if i < 0:
    st.info("This query has no easy or hard pair, and the method has no ranking to "
            "browse.")
    st.stop()
state.put("i", i)
options = pairs if i in pairs else [i] + pairs  # opened from a junk / negative / distractor


def label_of(db: int) -> str:
    lab = labels.get(db, "negative")
    return lab + " (distractor)" if db >= g.n_db else lab


def rank_of(db: int) -> int | None:
    if db in rl:
        return rl[db]
    return loaders.rank_of(ds, m, q, db) if ranked else None


def pair_label(db: int) -> str:
    s = f"{loaders.db_image(ds, g, db)[0]} · {label_of(db)}"
    rank = rank_of(db)
    s += f" · rank {rank}" if rank else ""
    r = next((r for r in rows if r.db == db), None)
    if r is not None and r.seg is not None:
        s += f" · seg IoU {pct(r.seg, 1)}"
    elif r is not None and inputs is not None:
        s += " · no prediction"
    return s


# Prev / Next: through the labelled pairs from a labelled pair; through the ranking from
# any other image (a negative, a junk image, a distractor opened from the Query page).
rank = rank_of(i)
if i in pairs:
    pos = pairs.index(i)
    prev_i = pairs[pos - 1] if pos > 0 else None
    next_i = pairs[pos + 1] if pos + 1 < len(pairs) else None
    step_help = "Previous / next labelled pair of this query (by rank)"
elif rank is not None:
    prev_i = loaders.ranked_at(ds, m, q, rank - 1) if rank > 1 else None
    next_i = loaders.ranked_at(ds, m, q, rank + 1)
    step_help = f"Previous / next image in the ranking (#{rank - 1} / #{rank + 1})"
else:
    prev_i = next_i = None
    step_help = "Not in the ranking: choose a pair in the list"


def _go_to(db: int) -> None:
    state.put("i", db)


# ---------------------------------------------------------------- choose the pair
top = st.columns([4, 5, 3.2], vertical_alignment="bottom")
with top[0]:
    widgets.select("Query", list(range(g.n_queries)), "q", wkey="w_q_pair",
                   format_func=lambda j: query_label(g, j))
with top[1]:
    widgets.select("Database image", options, "i", format_func=pair_label)
with top[2]:
    steps = st.container(horizontal=True, gap="small", vertical_alignment="bottom")
    widgets.step_buttons(lambda: _go_to(prev_i), lambda: _go_to(next_i), key="pair",
                         where=steps, what="pair (" + step_help.lower() + ")",
                         prev_disabled=prev_i is None, next_disabled=next_i is None)
    widgets.back_key("Query", routing.QUERY, key="pair_back", where=steps, visible=True)
widgets.keys_hint("← → or k j: " + step_help.lower() + " · Esc: back to the query's grid")

ctl = st.columns([3, 2, 2], vertical_alignment="bottom")
with ctl[0]:
    mode = widgets.radio("View", list(MODES), "mode", horizontal=True, format_func=MODES.get)
with ctl[1]:
    opacity = widgets.slider("Opacity", 0.0, 1.0, "opacity", step=0.05)
with ctl[2]:
    if others:
        widgets.select("Compare with", ["", *others], "m2", wkey="w_m2_pair",
                       format_func=lambda n: n or "— no second method —",
                       help="Draw a second method's predicted region (dashed) beside this "
                            "one's, with both IoUs; the Compare page compares them on every "
                            "query.")

# ---------------------------------------------------------------- inputs of this pair
key = (q, i)
gt = inputs.gt.get(key) if inputs else None
pred = inputs.preds.get(key) if inputs else None
size = inputs.sizes.get(key) if inputs else None
name, path = loaders.db_image(ds, g, i)
problem = None  # why the image is not shown (missing, unreadable, above the pixel caps)
try:  # decoded at most MAX_SIDE on its longer side, within the caps (PROTOCOLS §8 rule 9)
    base, full = thumbs.load_scaled(path, max_side=MAX_SIDE)
    scale = base.width / max(full[0], 1)
except BenchError as exc:  # a blank canvas of the image's size (or the shapes' extent)
    problem = "image not available" if path is None else str(exc)
    pts = [p for p in (gt or [])] + ([pred] if pred is not None else [])
    if size is None and pts:
        allp = np.concatenate(pts)
        size = (int(allp[:, 0].max()) + 10, int(allp[:, 1].max()) + 10)
    base, scale = render.blank_canvas(size, max_side=MAX_SIDE)
missing_image = problem is not None


def scaled(arr: np.ndarray) -> np.ndarray:
    return np.asarray(arr, dtype=np.float64) * scale


pred_b = inputs_b.preds.get(key) if inputs_b is not None else None
if pix_b is not None:  # two methods: A solid, B dashed
    view = render.overlay_two(base, [scaled(s) for s in gt or []],
                              scaled(pred) if pred is not None else None,
                              scaled(pred_b) if pred_b is not None else None, opacity=opacity)
    legend = [("ground truth (filled)", render.GT_COLOR),
              (f"A: {m.name} (solid){'' if pred is not None else ' · no prediction'}",
               render.PRED_A_COLOR),
              (f"B: {mb.name} (dashed){'' if pred_b is not None else ' · no prediction'}",
               render.PRED_B_COLOR)]
else:
    view = render.overlay(base, [scaled(s) for s in gt or []],
                          scaled(pred) if pred is not None else None, opacity=opacity)
    legend = [("ground truth (filled)", render.GT_COLOR),
              ("prediction (outline)", render.PRED_COLOR)]
counts = None
note = ""
if mode == "errors":
    if gt and pred is not None:
        masks = bi.pair_error_masks(pred, gt, protocol=c.protocol, image_size=size)
        counts = render.error_counts(masks)
        view = render.error_map(base, masks, opacity=max(opacity, 0.05), scale=scale)
        if pix_b is not None:
            note = f"The error map shows A ({m.name}) only; the overlay shows both methods."
        legend = [(f"true positive · {counts['tp']:,} px", render.ERROR_COLORS["tp"]),
                  (f"false positive · {counts['fp']:,} px", render.ERROR_COLORS["fp"]),
                  (f"false negative · {counts['fn']:,} px", render.ERROR_COLORS["fn"])]
    else:
        note = ("No error map: the pair has no ground-truth region." if not gt
                else "No error map: the method predicted nothing for this pair.")
elif mode == "side":
    qname = g.qimlist[q]
    qimg = thumbs.open_image(loaders.image_path(ds, qname), max_side=MAX_SIDE)
    box = g.bbx[q] if q < len(g.bbx) else None
    if qimg is None:
        crop = render.placeholder(qname, size=240, note="query image not available")
    else:
        qsize = thumbs.image_size(loaders.image_path(ds, qname)) or qimg.size
        qs = qimg.width / max(qsize[0], 1)
        crop = render.crop_box(qimg, [v * qs for v in box] if box else None, pad=4)
    view = render.side_by_side(crop, view, height=max(360, min(560, view.height)),
                               titles=(f"query crop · {qname}", f"database · {name}"))

# ---------------------------------------------------------------- show
def unscored(protocol: str) -> str:
    """How a labelled pair without an IoU (no prediction, or no ground-truth region)
    enters mIoU (docs/PROTOCOLS.md §2): as 0, except an easy pair under the official
    protocol, which is skipped."""
    if labels.get(i) == "easy" and Protocol.of(protocol).unpredicted_easy == "skip":
        return "skipped (no IoU)"
    return f"{pct(0.0)} (no IoU: counts as 0)"


is_pair = labels.get(i) in ("easy", "hard")
where = f"rank {rank}" if rank else ("not in the ranking" if ranked else "no ranks file")
show, panel = st.columns([3, 2], gap="medium")
with show:
    widgets.legend(legend)
    st.image(render.jpeg_bytes(view, quality=92), width="stretch")
    cap = f"{name} · {label_of(i)} · {where}"
    if missing_image:
        cap += f" · {problem}: shapes drawn on a blank canvas"
    st.caption(md(cap))
with panel:
    st.markdown(f"**{md(name)}** for query **{md(g.qimlist[q])}**")
    facts = [f"label **{label_of(i)}**", f"rank **{rank}**" if rank else where]
    if gt:
        facts.append(f"{len(gt)} ground-truth shape{'s' if len(gt) > 1 else ''}")
    if pred is not None:
        facts.append(f"prediction: {len(pred)}-point polygon")
    st.markdown(" · ".join(facts))
    if note:
        st.info(md_message(note))
    if not is_pair:
        st.caption(f"A {label_of(i)} image: only easy and hard pairs have a ground-truth "
                   "region and are scored, so there is no ground-truth region and no IoU.")
    elif not gt:
        st.caption("No ground-truth region was read for this pair (see the input "
                   "warnings on the Overview).")
    if is_pair and inputs is not None and pred is None:
        st.caption(f"The method predicted no region for this {labels[i]} pair: "
                   + ("the official mIoU skips it, the strict one counts it as 0."
                      if labels[i] == "easy" else "it counts as IoU 0 in mIoU (both "
                      "protocols) and fails every mAP@k threshold."))
    if pix is not None and is_pair:
        rows_iou = []
        for kind, col in (("bbox", 0), ("seg", 1)):
            row = {"IoU": kind}
            for p in PROTOCOLS:
                v = pix[p].pairs.get(key)
                row[p] = pct(v[col]) if v is not None else unscored(p)
            rows_iou.append(row)
        st.table(rows_iou, hide_index=True)
        if counts is not None:
            tot = counts["tp"] + counts["fp"] + counts["fn"]
            st.caption(f"Error map on the {c.protocol} canvas: TP / (TP + FP + FN) = "
                       f"{pct(counts['tp'] / tot if tot else 0.0)}, the {c.protocol} "
                       "seg IoU. Pixels outside the image (official square canvas) are "
                       "counted but not drawn.")
        else:
            st.caption("Official: square canvas of side S (largest coordinate); strict: the "
                       "image. Seg IoU fills polygons with their boundary.")
    elif pix is None:
        st.caption("No pixel-level result for this method: IoU not available.")
    if pix_b is not None and is_pair:
        st.markdown(f"**A: {md(m.name)}** vs **B: {md(mb.name)}** ({c.protocol})")
        va, vb = pix[c.protocol].pairs.get(key), pix_b.pairs.get(key)
        rows_ab = []
        for kind, col in (("bbox", 0), ("seg", 1)):
            x = va[col] if va is not None else None
            y = vb[col] if vb is not None else None
            rows_ab.append({"IoU": kind, "A": pct(x) if x is not None else "—",
                            "B": pct(y) if y is not None else "—",
                            "Δ (A − B)": (f"{100 * (x - y):+.2f}" if x is not None
                                          and y is not None else "—")})
        st.table(rows_ab, hide_index=True)
        st.caption("— : no prediction for this pair (how it counts: see above). "
                   + (f"B ranks it #{rk_b}." if (rk_b := (loaders.rank_of(ds, mb, q, i)
                                                          if mb.ranks else None)) else ""))
    elif b_error is not None:
        st.error(md_message(b_error), icon=":material/error:")
    elif mb is not None and is_pair and has_pix:
        st.caption(f"{md(mb.name)} has no pixel-level result: only A's region is drawn.")
    st.download_button("Download PNG", render.png_bytes(view),
                       file_name=f"pair_q{q}_{name}_{mode}.png", mime="image/png",
                       icon=":material/download:")
