"""Overview: the benchmark's official numbers, official vs strict, methods, charts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from bench import inspect as bi
from bench.app import context, deferred, loaders, routing, views, widgets
from bench.app.format import md, md_message, pct, query_label
from bench.errors import BenchError
from bench.metrics.pixel import undefined_reasons
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
st.markdown(f"**{md(getattr(ds, 'title', ds.name))}** · method **{md(m.name) if m else '—'}** · "
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
# first screen: the cards (left) and the per-query chart (right); the methods table and
# the official-vs-strict comparison follow, the other charts after them
card_col, chart_col = st.columns([1, 1], gap="medium")
with card_col.container(key="cards_ov"):
    if rev:
        r = rev[c.protocol]
        with st.container(border=True):
            st.markdown("**Image level**", help="Revisited Oxford/Paris protocol "
                        "(docs/PROTOCOLS.md §1).")
            cols = st.columns(3)
            for col, setup in zip(cols, SETUPS, strict=True):
                s = r[setup]
                col.metric(f"mAP · {setup}", pct(s.mAP))
                col.caption(" · ".join(f"mP@{k} **{pct(v)}**" for k, v in s.mP.items()))
                if math.isnan(s.mAP):
                    col.caption(f"mAP —: no query has a positive in the {setup} setup.")

    if pix:
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
                st.markdown(f"**Pixel level · {setup}**", help="PROxford/PRParis protocol "
                            "(docs/PROTOCOLS.md §2). mAP@k averages mAP over IoU thresholds "
                            "0.50…0.95; image mAP is the image-level mAP of the same setup.")
                cols = st.columns(max(len(items), 4))
                for mc, (label, v) in zip(cols, items, strict=False):
                    mc.metric(label, pct(v))
                why = undefined_reasons(s, c.protocol, setup)
                keys = {"mIoU bbox": "miou_bbox", "mIoU seg": "miou_seg", "mAP@k": "map_at_k",
                        "mAP@k bbox": "map_at_k", "mAP@k seg": "map_at_k_seg",
                        "image mAP": "image_map"}
                for label, _ in items:
                    if keys[label] in why:
                        st.caption(f"{label} —: {why[keys[label]]}.")
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

# the methods table: its place, near the top; filled after the charts (on a tab's first
# run, which leaves the charts out, a big folder's methods are computed in the rerun
# that draws the charts, not before the cards)
methods_box = st.container(key="methods_box")

summary = (f"Official vs strict: **{len(diff)} of {len(rows)} numbers differ**"
           + (" (" + ", ".join(r.metric for r in diff[:3]) + (", …" if len(diff) > 3 else "")
              + ")" if diff else "") if diff else
           f"Official vs strict: **the same** {len(rows)} numbers on this data")
with st.expander(summary, icon=":material/balance:"):
    st.caption("Official: the released code's numbers, quirks included. Strict: the "
               "project's clean variant. Both are computed by bench; the rule responsible "
               "is given for each difference (docs/PROTOCOLS.md §4).")
    if diff:
        st.table([{"metric": r.metric, "official": pct(r.official), "strict": pct(r.strict),
                   "why they differ": r.why} for r in diff], hide_index=True)
    st.markdown("**All numbers, both protocols**")
    st.table([{"metric": r.metric, "official": pct(r.official),
               "strict": pct(r.strict), "differs": "≠" if r.differs else ""}
              for r in rows], hide_index=True)

# ---------------------------------------------------------------- per-query chart
if not deferred.charts_now():
    chart_col.caption(":material/hourglass_top: Loading charts…")
    if c.gpr is not None:
        st.divider()
        views.gpr_summary(c.gpr, title="GPR1200 (demo)" if c.synthetic else "GPR1200", link=True)
    st.stop()

with chart_col:
    choices = {"ap": "AP"}
    if pix:
        choices |= {"miou_bbox": "mIoU bbox", "miou_seg": "mIoU seg"}
    head = st.container(horizontal=True, vertical_alignment="center")
    qv = widgets.radio("Value", list(choices), "qv", horizontal=True, format_func=choices.get,
                       label_visibility="collapsed", where=head, width="content")
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
    head.caption(f"**{choices[qv]} per query** · {setup} · worst first · click a bar to "
                 "open the query")
    views.ranked_bars(values, [str(n) for n in g.qimlist], list(range(g.n_queries)),
                      chart_key="ap_bars", what=f"{choices[qv]} · {setup}", box_height=430,
                      on_pick=lambda q: routing.request(routing.QUERY, q=int(q)),
                      hover=[f"query {q} · {n}" for q, n in enumerate(g.qimlist)])
    if note:
        st.caption(note)

# ---------------------------------------------------------------- methods
if len(ds.methods) > 1:
    with methods_box:
        mrows = []
        errors = []
        for name, mf in ds.methods.items():
            try:
                mrows.append({"method": name}
                             | {k: (None if v is None else 100 * v) for k, v in
                                loaders.method_summary(ds, mf, c.protocol).items()})
            except BenchError as e:
                mrows.append({"method": name})
                errors.append(str(e))
        mdf = pd.DataFrame(mrows)
        num = [col for col in mdf.columns if col != "method"]
        st.markdown(f"**Methods** · {c.protocol} · best in bold · sort by a column name · "
                    f"select a row to compare it with **{md(m.name)}**", help=f"All methods found for {md(ds.name)}. E/M/H = "
                    "easy / medium / hard; percentages.")
        best = {col: mdf[col].max(skipna=True) for col in num}
        styled = mdf.style.apply(
            lambda col: ["font-weight: 700; background-color: #dafbe1"
                         if col.name in best and v == best[col.name] and not pd.isna(v) else ""
                         for v in col], subset=num).format(precision=2, na_rep="—",
                                                            subset=num)
        ev = st.dataframe(styled, key="methods_table", hide_index=True, width="stretch",
                          on_select="rerun", selection_mode="single-row",
                          column_config={col: st.column_config.NumberColumn(col, format="%.2f")
                                         for col in num})
        sel = (ev.selection.rows if hasattr(ev, "selection") else []) or []
        if sel:
            other = str(mdf.loc[sel[0], "method"])
            if other == m.name:
                routing.go(routing.COMPARE, m=m.name)
            else:
                routing.go(routing.COMPARE, m=m.name, m2=other,
                           cmp=",".join(dict.fromkeys([m.name, other])))
        for e in errors:
            st.error(md_message(e), icon=":material/error:")

# ---------------------------------------------------------------- the other charts
left, right = st.columns(2)
with left:
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
with right:
    if pix:
        hs = c.setup
        b, s, missing = bi.setup_iou_values(g, pix[c.protocol], hs)
        fig = go.Figure()
        for arr, name, color in ((b, "bbox", "#1f6feb"), (s, "seg", "#f08800")):
            edges, counts = views.iou_bins(arr)
            fig.add_trace(go.Bar(
                x=[100 * (lo + hi) / 2 for lo, hi in edges], y=counts.tolist(),
                name=f"{name} IoU", marker_color=color, offsetgroup=name,
                customdata=[[lo, hi, name] for lo, hi in edges],
                hovertemplate=f"{name} IoU %{{customdata[0]:.2f}}–%{{customdata[1]:.2f}}: "
                              "%{y} pairs<extra>click: these pairs on the Errors page"
                              "</extra>"))
        fig.update_layout(barmode="group", bargap=0.15, bargroupgap=0.05,
                          title=f"Pair IoU · {hs} positives · click a bar", xaxis_title="IoU (%)", yaxis_title="pairs",
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

left, right = st.columns(2)
with left:
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
with right:
    fa, fb = st.columns([3, 1], vertical_alignment="bottom")
    with fa:
        ap_arr = rev[c.protocol][c.setup].ap if rev else None
        q_open = widgets.select("Open a query", list(range(g.n_queries)), "q", wkey="w_q_open",
                                format_func=lambda q: query_label(g, q, ap_arr))
    widgets.nav_button("Open", routing.QUERY, key="open_query", where=fb, q=q_open)

if c.gpr is not None:
    st.divider()
    views.gpr_summary(c.gpr, title="GPR1200 (demo)" if c.synthetic else "GPR1200", link=True)
