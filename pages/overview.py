"""Overview: the benchmark's official numbers, official vs strict, methods, charts."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from bench import inspect as bi
from bench.app import context, deferred, loaders, routing, views, widgets
from bench.app.format import pct, query_label
from bench.errors import BenchError
from bench.protocol import PIXEL_SETUPS, PROTOCOLS, SETUPS, THRESHOLDS, threshold_key

routing.ensure_routed()

CHART = dict(height=360, margin=dict(l=10, r=10, t=40, b=10),
             legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0))
SETUP_COLORS = {"easy": "#2ea043", "medium": "#1f6feb", "hard": "#f08800"}


c = context.ctx()
st.title("Overview")

if c.dataset is None and c.source == "gpr":
    views.gpr_summary(context.require_gpr(), title="GPR1200")
    st.stop()

ds, m = context.require_dataset()
st.markdown(f"**{getattr(ds, 'title', ds.name)}** · method **{m.name if m else '—'}** · "
            f"**{c.protocol}** protocol · {c.setup} setup for per-query views")
context.synthetic_note()
if m is None:
    st.stop()

# the chosen protocol first (the cards); the other one below, for the comparison
with st.spinner("Computing metrics…"), context.guard(context.FIX_FILES):
    g = loaders.gnd(ds)
    rev = {c.protocol: loaders.revisited(ds, m, c.protocol)} if m.ranks else None
    pix = ({c.protocol: loaders.pixel(ds, m, c.protocol)} if loaders.has_pixel(ds, m)
           else None)

if pix and pix[c.protocol].warnings:
    w = pix[c.protocol].warnings
    with st.expander(f":material/warning: {len(w)} input warnings (those pairs count as "
                     "unpredicted)"):
        st.code("\n".join(str(x) for x in w[:200]), language=None)

# ---------------------------------------------------------------- metric cards
if rev:
    st.subheader("Image level", help="Revisited Oxford/Paris protocol (docs/PROTOCOLS.md §1).")
    r = rev[c.protocol]
    cols = st.columns(3)
    for col, setup in zip(cols, SETUPS, strict=True):
        s = r[setup]
        with col.container(border=True):
            st.metric(f"mAP · {setup}", pct(s.mAP))
            st.caption(" · ".join(f"mP@{k} **{pct(v)}**" for k, v in s.mP.items()))

if pix:
    st.subheader("Pixel level", help="PROxford/PRParis protocol (docs/PROTOCOLS.md §2). mAP@k "
                 "averages mAP over IoU thresholds 0.50…0.95; image mAP is the "
                 "image-level mAP of the same setup.")
    p = pix[c.protocol]
    for setup in PIXEL_SETUPS:
        s = p.setups[setup]
        items = [("mIoU bbox", s.miou_bbox), ("mIoU seg", s.miou_seg)]
        if s.map_at_k is not None:
            items.append(("mAP@k" + (" bbox" if s.map_at_k_seg is not None else ""),
                          s.map_at_k))
        if s.map_at_k_seg is not None:
            items.append(("mAP@k seg", s.map_at_k_seg))
        if s.image_map is not None:
            items.append(("image mAP", s.image_map))
        with st.container(border=True):
            cols = st.columns([1] + [2] * 5, vertical_alignment="center")
            cols[0].markdown(f"**{setup.capitalize()}**")
            for mc, (label, v) in zip(cols[1:], items, strict=False):
                mc.metric(label, pct(v))
    if p.setups["medium"].map_at_k is None:
        st.caption("mAP@k needs the method's image-level ranks file.")

# ---------------------------------------------------------------- official vs strict
with st.spinner("Computing the other protocol…"), context.guard(context.FIX_FILES):
    for p in PROTOCOLS:
        if rev is not None and p not in rev:
            rev[p] = loaders.revisited(ds, m, p)
        if pix is not None and p not in pix:
            pix[p] = loaders.pixel(ds, m, p)
off: dict = {}
strict: dict = {}
if rev:
    off |= bi.revisited_numbers(rev["official"])
    strict |= bi.revisited_numbers(rev["strict"])
if pix:
    off |= bi.pixel_numbers(pix["official"])
    strict |= bi.pixel_numbers(pix["strict"])
rows = bi.metric_table(off, strict)
diff = [r for r in rows if r.differs]
st.subheader("Official vs strict", help="Official: the released code's numbers, quirks "
             "included. Strict: the project's clean variant. Both are computed by bench.")
if diff:
    st.markdown(f"**{len(diff)} of {len(rows)} numbers differ** between the protocols on this "
                "data; the rule responsible is given for each.")
    st.table([{"metric": r.metric, "official": pct(r.official), "strict": pct(r.strict),
               "why they differ": r.why} for r in diff], hide_index=True)
else:
    st.markdown(f"Official and strict give **the same** {len(rows)} numbers on this data.")
with st.expander("All numbers, both protocols"):
    st.table([{"metric": r.metric, "official": pct(r.official),
               "strict": pct(r.strict), "differs": "≠" if r.differs else ""}
              for r in rows], hide_index=True)

# ---------------------------------------------------------------- charts
st.subheader("Per query")
if not deferred.charts_now():
    st.caption(":material/hourglass_top: Loading charts…")
    if c.gpr is not None:
        st.divider()
        views.gpr_summary(c.gpr, title="GPR1200 (demo)" if c.synthetic else "GPR1200", link=True)
    st.stop()
left, right = st.columns(2)

with left:
    choices = {"ap": "AP"}
    if pix:
        choices |= {"miou_bbox": "mIoU bbox", "miou_seg": "mIoU seg"}
    qv = widgets.radio("Value", list(choices), "qv", horizontal=True, format_func=choices.get,
                  label_visibility="collapsed")
    setup = c.setup
    note = ""
    if qv == "ap":
        if rev is None:
            values = np.full(g.n_queries, np.nan)
            note = "No ranks file: no AP."
        else:
            values = rev[c.protocol][setup].ap
    else:
        if setup == "easy":
            setup, note = "medium", "mIoU exists for medium and hard; showing medium."
        ps = pix[c.protocol].setups[setup]
        values = ps.per_query_bbox if qv == "miou_bbox" else ps.per_query_seg
    order = views.worst_first(values)  # worst first, queries without positives last
    names = views.query_names(g)
    vals = np.nan_to_num(values, nan=0.0)
    fig = go.Figure(go.Bar(
        x=[names[q] for q in order], y=(vals[order] * 100).tolist(),
        customdata=order.tolist(),
        text=[pct(values[q]) for q in order],
        hovertext=[f"query {q} · {g.qimlist[q]}" for q in order],
        hovertemplate="%{hovertext}<br>%{text}<extra>click to open</extra>",
        marker=dict(color=vals[order], colorscale="RdYlGn", cmin=0, cmax=1),
        textposition="none"))
    fig.update_layout(title=f"{choices[qv]} per query · {setup} · worst first · click a bar "
                            "to open it",
                      xaxis_title=None, yaxis_title="%", yaxis_range=[0, 100],
                      clickmode="event+select", **CHART)
    fig.update_xaxes(type="category", tickangle=-60, tickfont=dict(size=9), automargin=True)
    ev = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="ap_bars",
                         width="stretch")
    q_sel = views.picked(ev)
    if q_sel is not None:
        routing.go(routing.QUERY, q=int(q_sel))
    if note:
        st.caption(note)
    fa, fb = st.columns([3, 1], vertical_alignment="bottom")
    with fa:
        ap_arr = rev[c.protocol][c.setup].ap if rev else None
        q_open = widgets.select("Open a query", list(range(g.n_queries)), "q", wkey="w_q_open",
                           format_func=lambda q: query_label(g, q, ap_arr))
    widgets.nav_button("Open", routing.QUERY, key="open_query", where=fb, q=q_open)

with right:
    if pix and pix[c.protocol].setups["medium"].map_t is not None:
        fig = go.Figure()
        for proto, dash in (("official", "solid"), ("strict", "dot")):
            for setup, ps in pix[proto].setups.items():
                series = [("bbox", ps.map_t)]
                if ps.map_t_seg is not None:
                    series.append(("seg", ps.map_t_seg))
                for kind, mt in series:
                    y = [None if math.isnan(v) else 100 * v
                         for v in (mt[threshold_key(t)] for t in THRESHOLDS)]
                    fig.add_trace(go.Scatter(
                        x=list(THRESHOLDS), y=y, mode="lines+markers",
                        name=f"{setup} {kind} ({proto})",
                        line=dict(color=SETUP_COLORS[setup], dash=dash,
                                  width=3 if proto == c.protocol else 1.5),
                        marker=dict(symbol="circle" if kind == "bbox" else "diamond")))
        fig.update_layout(title="mAP_t against the IoU threshold t", xaxis_title="t",
                          yaxis_title="mAP_t (%)", yaxis_range=[0, 101], **CHART)
        st.plotly_chart(fig, width="stretch", key="map_t")
        st.caption("A positive counts at threshold t when its bbox IoU (seg too, strict) is "
                   "above t. Solid: official; dotted: strict.")
    elif rev:
        st.info("No pixel-level result for this method: no mAP_t chart.")

left, right = st.columns(2)
with left:
    if pix:
        hs = c.setup
        b, s, missing = bi.setup_iou_values(g, pix[c.protocol], hs)
        fig = go.Figure()
        for arr, name, color in ((b, "bbox", "#1f6feb"), (s, "seg", "#f08800")):
            edges, counts = views.iou_bins(arr)
            fig.add_trace(go.Bar(
                x=[100 * (lo + hi) / 2 for lo, hi in edges], y=counts.tolist(), width=5,
                name=f"{name} IoU", opacity=0.6, marker_color=color,
                customdata=[[lo, hi, name] for lo, hi in edges],
                hovertemplate=f"{name} IoU %{{customdata[0]:.2f}}–%{{customdata[1]:.2f}}: "
                              "%{y} pairs<extra>click: these pairs on the Errors page"
                              "</extra>"))
        fig.update_layout(barmode="overlay", title=f"Pair IoU · {hs} positives · click a bin "
                          "to list its pairs", xaxis_title="IoU (%)", yaxis_title="pairs",
                          xaxis_range=[0, 100], clickmode="event+select", **CHART)
        ev = st.plotly_chart(fig, width="stretch", key="iou_hist", on_select="rerun",
                             selection_mode="points")
        hit = views.picked(ev)
        if hit is not None:
            lo, hi, kind = hit
            # the Errors page's setups are medium and hard; easy pairs = medium, label easy
            routing.go(routing.ERRORS, eset="hard" if hs == "hard" else "medium",
                       elab={"easy": "easy", "hard": "hard"}.get(hs, "all"), efcol=kind,
                       elo=float(lo), ehi=float(hi), efail="", ermax=0, esort="worst",
                       epage=0)
        st.caption(f"{b.size} pairs with a prediction; {missing} without one (not shown: "
                   "the official mIoU skips easy ones and counts hard ones as 0).")
with right:
    if rev:
        q_pr = widgets.select(
            "PR curve of query", list(range(g.n_queries)), "q", wkey="w_q_pr",
            format_func=lambda q: query_label(g, q, rev[c.protocol][c.setup].ap))
        with context.guard(context.FIX_FILES):
            rec, prec = bi.pr_points(loaders.scan(ds, m), g, c.setup, q_pr)
        ap_q = rev[c.protocol][c.setup].ap[q_pr]
        fig = go.Figure(go.Scatter(x=np.r_[0.0, rec] * 100,
                                   y=np.r_[prec[:1] if prec.size else [1.0], prec] * 100,
                                   mode="lines+markers",
                                   hovertemplate="recall %{x:.1f}%<br>precision %{y:.1f}%"
                                                 "<extra></extra>"))
        fig.update_layout(title=f"PR curve · query {q_pr} · {c.setup} · AP {pct(ap_q)}",
                          xaxis_title="recall (%)", yaxis_title="precision (%)",
                          xaxis_range=[0, 101], yaxis_range=[0, 101], **CHART)
        st.plotly_chart(fig, width="stretch", key="pr_curve")
        st.caption("One point per retrieved positive, junk removed; AP is the trapezoid "
                   "area under these points (docs/PROTOCOLS.md §1).")

# ---------------------------------------------------------------- methods
# (after the charts: on a tab's first run, which leaves the charts out, the methods of
# a big folder are computed in the rerun that draws the charts, not before the cards)
if len(ds.methods) > 1:
    table = []
    for name, mf in ds.methods.items():
        row: dict = {"method": name}
        try:
            row |= {k: pct(v) for k, v in loaders.method_summary(ds, mf, c.protocol).items()}
        except BenchError as e:
            row["error"] = str(e)
        table.append(row)
    st.subheader("Methods", help=f"All methods found for {ds.name}, {c.protocol} protocol. "
                 "E/M/H = easy/medium/hard.")
    st.table(table, hide_index=True)

if c.gpr is not None:
    st.divider()
    views.gpr_summary(c.gpr, title="GPR1200 (demo)" if c.synthetic else "GPR1200", link=True)
