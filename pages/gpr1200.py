"""GPR1200: subset mAPs, one query's neighbours framed by category, the worst categories."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from bench import inspect as bi
from bench import render, thumbs
from bench.app import context, deferred, loaders, routing, state, views, widgets
from bench.app.format import md, pct
from bench.metrics.gpr1200 import SUBSETS

routing.ensure_routed()

N_COLS = 5

st.title("GPR1200")
spec = context.require_gpr()
context.synthetic_note()

with st.spinner("Evaluating GPR1200…"), context.guard(context.FIX_FILES):
    inputs = loaders.gpr_inputs(spec)
    res = loaders.gpr_result(spec)
imgs = inputs.images
cats = imgs.categories

views.gpr_summary(spec, title="Summary")
fig = go.Figure(go.Bar(x=list(SUBSETS), y=[100 * res.subsets[s] for s in SUBSETS],
                       text=[pct(res.subsets[s]) for s in SUBSETS], textposition="outside",
                       marker_color="#1f6feb"))
fig.add_hline(y=100 * res.mAP, line_dash="dot")
fig.update_layout(title=f"mAP per subset · dotted: mAP {pct(res.mAP)}", yaxis_title="mAP (%)", yaxis_range=[0, 105],
                  height=300, margin=dict(l=10, r=10, t=40, b=10))



left, right = st.columns([2, 3])
with left:
    if deferred.charts_now():
        st.plotly_chart(fig, width="stretch", key="subset_bars")
    else:
        st.caption(":material/hourglass_top: Loading chart…")
with right:
    crow = bi.category_rows(imgs, res)
    st.caption(f"**Mean AP per category** · all {len(crow)} · worst first · click a bar to "
               "see the category's first image below")
    if deferred.charts_now():
        views.ranked_bars(
            np.array([r.mean_ap for r in crow]), [bi.category_label(imgs, r.category)
                                                  for r in crow],
            [r.category for r in crow], chart_key="cat_bars", what="mean AP", box_height=300,
            on_pick=lambda cat: state.put("gq", int(np.flatnonzero(cats == int(cat))[0])),
            hover=[f"{bi.category_label(imgs, r.category)} · {r.subset} · min AP "
                   f"{pct(r.min_ap)} · {r.n_images} images" for r in crow])
    else:
        st.caption(":material/hourglass_top: Loading chart…")

# ---------------------------------------------------------------- one query
st.subheader("Query")
gq = min(max(int(state.get("gq")), 0), imgs.n - 1)
state.put("gq", gq)
cat_list = np.unique(cats).tolist()
members = {cc: np.flatnonzero(cats == cc).tolist() for cc in (int(cats[gq]),)}


def _cat_changed() -> None:
    cat = st.session_state["w_gcat"]
    state.put("gq", int(np.flatnonzero(cats == cat)[0]))


row = st.columns([3, 3, 2], vertical_alignment="bottom")
st.session_state["w_gcat"] = int(cats[gq])
row[0].selectbox("Category", cat_list, key="w_gcat", on_change=_cat_changed,
                 format_func=lambda cc: bi.category_label(imgs, cc))
same = members[int(cats[gq])]
with row[1]:
    gq = widgets.select("Image", same, "gq",
                   format_func=lambda j: f"{imgs.names[j]}  (AP {pct(res.ap[j])})")
with row[2]:
    k = widgets.slider("Top k", 5, 50, "gk", step=5)

idx, scores, same_flags = bi.gpr_neighbours(inputs, gq, k)
left, right = st.columns([1, 3])
with left:
    path = imgs.folder / imgs.names[gq]
    st.image(thumbs.tile_jpeg(path, imgs.names[gq], render.QUERY_COLOR, size=240),
             caption=md(imgs.names[gq]), width="stretch")
with right:
    m1, m2, m3 = st.columns(3)
    m1.metric("AP of this image", pct(res.ap[gq]))
    cat_row = next(r for r in bi.category_rows(imgs, res) if r.category == int(cats[gq]))
    m2.metric("Category mean AP", pct(cat_row.mean_ap))
    m3.metric(f"Same category in top {k}", f"{int(same_flags.sum())} of {len(same)}")
    st.caption(f"Category {md(bi.category_label(imgs, int(cats[gq])))} · subset "
               f"{SUBSETS[int(res.subset_of[gq])]}. The image itself is a positive and "
               "normally comes first.")
    widgets.legend([("same category", render.SAME_COLOR), ("other category", render.OTHER_COLOR)])

score_name = {"cosine": "cos", "dot": "dot", "l2": "dist"}.get(inputs.metric, "")
for r, j in enumerate(idx.tolist(), start=1):
    if (r - 1) % N_COLS == 0:  # row by row: the reading order is the rank
        cols = st.columns(N_COLS)
    ok = bool(same_flags[r - 1])
    line2 = f"{score_name} {scores[r - 1]:.3f}" if scores is not None else ""
    if not ok:
        line2 = (line2 + " · " if line2 else "") + md(bi.category_label(imgs, int(cats[j])))
    tile = thumbs.tile_jpeg(imgs.folder / imgs.names[j], imgs.names[j],
                            render.SAME_COLOR if ok else render.OTHER_COLOR, badge=f"#{r}")
    col = cols[(r - 1) % N_COLS]
    col.image(tile, width="stretch")
    col.caption(f"**{md(imgs.names[j])}**" + (f"  \n{line2}" if line2 else ""))
