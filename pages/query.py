"""Query: the query image, its ranked results framed by label (or pass / fail) with the
predicted and ground-truth regions drawn on them, and the positives it missed."""

from __future__ import annotations

import math

import streamlit as st

from bench import inspect as bi
from bench import render, thumbs
from bench.app import context, loaders, rankings, routing, state, views, widgets
from bench.app.format import pct, query_label
from bench.protocol import Protocol

routing.ensure_routed()

N_COLS = 5

c = context.ctx()
st.title("Query")
ds, m = context.require_dataset(need_ranks=True)
context.synthetic_note()

with st.spinner("Loading…"), context.guard(context.FIX_FILES):
    g = loaders.gnd(ds)
    ranks = loaders.ranks(ds, m)
    scan = loaders.scan(ds, m)
    rev = loaders.revisited(ds, m, c.protocol)
    pix = loaders.pixel(ds, m, c.protocol) if loaders.has_pixel(ds, m) else None

q = min(max(int(state.get("q")), 0), g.n_queries - 1)
state.put("q", q)
res = rev[c.setup]


def _step(delta: int) -> None:
    state.set_query(min(max(state.get("q") + delta, 0), g.n_queries - 1))


# ---------------------------------------------------------------- navigation
nav = st.columns([1, 6, 1, 3], vertical_alignment="bottom")
nav[0].button("Prev", icon=":material/chevron_left:", on_click=_step, args=(-1,),
              disabled=q == 0, key="prev_q", width="stretch")
with nav[1]:
    widgets.select("Query", list(range(g.n_queries)), "q",
                   format_func=lambda i: query_label(g, i, res.ap))
nav[2].button("Next", icon=":material/chevron_right:", on_click=_step, args=(1,),
              disabled=q >= g.n_queries - 1, key="next_q", width="stretch")
with nav[3]:
    k = widgets.slider("Top k", 5, 100, "k", step=5)
q = state.get("q")

# ---------------------------------------------------------------- query and its numbers
stats = bi.query_stats(res, scan, g, q, setup=c.setup, ks=(k,))
left, right = st.columns([2, 3])
with left:
    img, cap = views.query_view(ds, g, q)
    st.image(render.jpeg_bytes(img, quality=90), caption=cap, width="stretch")
with right:
    cols = st.columns(4)
    cols[0].metric(f"AP · {c.setup}", pct(stats.ap))
    for col, (kk, v) in zip(cols[1:], stats.pk.items(), strict=False):
        col.metric(f"P@{kk}", pct(v),
                   help="Official P@k: kq = min(largest adjusted rank, k)."
                   if Protocol.of(c.protocol).pk_rule == "official_kq"
                   else "Strict P@k: hits in the top k / k.")
    if math.isnan(stats.ap):
        st.info(f"No positives under the {c.setup} setup: this query is left out of the mean.")
    found = stats.found_in_top[k]
    st.markdown(f"**{found}** of **{stats.n_pos}** positives ({c.setup}) in the top {k}.")
    if pix is not None:
        pq = pix.setups["hard" if c.setup == "hard" else "medium"]
        st.markdown(f"Pixel ({'hard' if c.setup == 'hard' else 'medium'}): mIoU bbox "
                    f"**{pct(pq.per_query_bbox[q])}** · seg **{pct(pq.per_query_seg[q])}**")
    missed = bi.missed_positives(scan, g, q, k, setup=c.setup)
    if missed:
        st.markdown(f"**Missed**: {len(missed)} positive{'s' if len(missed) > 1 else ''} "
                    f"ranked below {k}")
        shown = missed[:40]
        st.markdown(" · ".join(
            f"`{it.name}` {it.label} **#{it.rank}**" if it.rank is not None
            else f"`{it.name}` {it.label} **not ranked**" for it in shown)
            + (f" · … {len(missed) - len(shown)} more" if len(missed) > len(shown) else ""))
        ma, mb = st.columns([3, 1], vertical_alignment="bottom")
        pick = ma.selectbox("Open a missed positive", [it.db for it in missed],
                            format_func=lambda i: f"{bi.image_name(g, i)}", key="missed_pick")
        widgets.nav_button("Open pair", routing.PAIR, key="missed_open", where=mb, i=int(pick))
    elif stats.n_pos:
        st.success(f"Every positive is in the top {k}.")

# a second method's top k beside this one's (URL key m2; bench/app/rankings.py)
rankings.second_ranking(ds, g, m, q, k, c.setup, c.protocol)

# ---------------------------------------------------------------- ranked results
st.subheader(f"Top {k}")
REGIONS = {"none": "None", "pred": "Prediction", "both": "Both", "errors": "Error colours"}
FRAMES = {"label": "Label", "pass": "Pass / fail at t"}
inputs = loaders.pixel_inputs(ds, m) if pix is not None else None
if inputs is not None:
    tc = st.columns([4, 3, 3], vertical_alignment="bottom")
    with tc[0]:
        regions = widgets.radio(
            "Regions", list(REGIONS), "qmask", horizontal=True, format_func=REGIONS.get,
            help="Both: ground truth filled, prediction outlined (as on the Pair page). "
                 "Error colours: prediction and ground truth (TP), prediction only (FP), "
                 "ground truth only (FN), drawn at the tile's scale.")
    with tc[1]:
        frames = widgets.radio("Frames", list(FRAMES), "qframe", horizontal=True,
                               format_func=FRAMES.get)
    with tc[2]:
        t = widgets.slider("IoU threshold t", 0.0, 1.0, "qt", step=0.05,
                           disabled=frames != "pass",
                           help="Pass: the pair's bbox IoU is above t (the rule of mAP@k at "
                                "threshold t). Used by the pass / fail frames.")
else:
    regions, frames, t = "none", "label", 0.5
legend = (widgets.LABEL_LEGEND if frames == "label" else
          [(f"pass: bbox IoU > {t:.2f}", render.PASS_COLOR),
           ("fail: IoU ≤ t or no prediction", render.FAIL_COLOR),
           ("not a pair (junk, negative)", render.NO_PAIR_COLOR)])
if regions == "both":
    legend = legend + [("ground truth (filled)", render.GT_COLOR),
                       ("prediction (outline)", render.PRED_COLOR)]
elif regions == "pred":
    legend = legend + [("prediction (outline)", render.PRED_COLOR)]
elif regions == "errors":
    legend = legend + [("TP", render.ERROR_COLORS["tp"]), ("FP", render.ERROR_COLORS["fp"]),
                       ("FN", render.ERROR_COLORS["fn"])]
widgets.legend(legend)
role_note = {"easy": "Easy setup: hard images count as junk.",
             "medium": "Medium setup: easy and hard are positives.",
             "hard": "Hard setup: easy images count as junk."}[c.setup]
st.caption(f"Frame = {'ground-truth label' if frames == 'label' else 'pass / fail'}. "
           f"{role_note} Caption: pair IoU (bbox / seg, {c.protocol}) where the method "
           "predicted a region.")
if ds.images is None:
    st.caption(":material/image_not_supported: No images folder: tiles show the regions "
               "on a blank canvas, or names only.")

items = bi.top_k(ranks, g, q, k, setup=c.setup)
# row by row (tile n is in row n // N_COLS): the reading and keyboard order is the rank
for start in range(0, len(items), N_COLS):
    cols = st.columns(N_COLS)
    for col, it in zip(cols, items[start:start + N_COLS], strict=False):
        key = (q, it.db)
        is_pair = it.label in ("easy", "hard")
        iou = pix.pairs.get(key) if pix is not None and is_pair else None
        if frames == "pass":
            color = (render.NO_PAIR_COLOR if not is_pair else render.PASS_COLOR
                     if iou is not None and iou[0] > t else render.FAIL_COLOR)
        else:
            color = render.LABEL_COLORS[it.label]
        cap = it.label
        if pix is not None and is_pair:
            cap += (f" · IoU {pct(iou[0], 1)} / {pct(iou[1], 1)}" if iou is not None
                    else " · no prediction")
        name, path = loaders.db_image(ds, g, it.db)
        gt = inputs.gt.get(key) if inputs is not None else None
        pred = inputs.preds.get(key) if inputs is not None else None
        if regions != "none" and (gt or pred is not None):
            tile = loaders.mask_tile(path, name, color, f"#{it.rank}", gt, pred,
                                     inputs.sizes.get(key), regions)
        else:
            tile = thumbs.tile_jpeg(path, name, color, badge=f"#{it.rank}")
        col.image(tile, width="stretch")
        col.caption(f"**{name}**  \n{cap}")
        widgets.nav_button("Pair", routing.PAIR, key=f"pair_{it.rank}", where=col, i=it.db)
