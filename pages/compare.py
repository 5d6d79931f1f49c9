"""Compare: two or more methods per query and per pair, with paired significance tests
(``bench.compare``, docs/PROTOCOLS.md §6), and methods added from uploaded files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from bench import compare as bc
from bench import compare_report as br
from bench import render
from bench.app import context, deferred, loaders, routing, state, upload, widgets
from bench.app.format import md, md_message, pct, svg_text
from bench.errors import BenchError

routing.ensure_routed()

TEST_NAMES = {"t": "paired t", "wilcoxon": "Wilcoxon signed-rank", "permutation": "permutation"}
TIE_COLOR = (150, 152, 160)
_LAST_A = "_cmp_last_a"  # A (the sidebar's method) in the previous run of this page
CHART = dict(height=520, margin=dict(l=10, r=10, t=40, b=10),
             legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0))


def metric_label(key: str) -> str:
    """``"mIoU-seg/hard"`` -> ``"mIoU seg · hard"``; ``"IoU-bbox/pairs"`` -> ``"IoU bbox ·
    per pair"``."""
    measure, setup = key.split("/", 1)
    measure = measure.replace("-", " ")
    return f"{measure} · {'per pair' if setup == 'pairs' else setup}"


def unit_of(key: str) -> str:
    """What one percentage point of the metric is called in a sentence."""
    measure = key.split("/", 1)[0]
    return {"mAP": "AP", "mIoU-bbox": "mIoU (bbox)", "mIoU-seg": "mIoU (seg)",
            "mAP@k": "mAP@k", "mAP@k-seg": "mAP@k (seg)", "IoU-bbox": "IoU (bbox)",
            "IoU-seg": "IoU (seg)"}.get(measure, measure)


def fmt_p(p: float | None) -> str:
    """A p-value: three decimals, or two significant digits below 0.001; ``—`` for none."""
    if p is None or not math.isfinite(p):
        return "—"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def fmt_pp(x: float | None, nd: int = 2) -> str:
    """A difference of fractions in percentage points, signed."""
    if x is None or not math.isfinite(x):
        return "—"
    return f"{100 * x:+.{nd}f}"


def fmt_num(x: float) -> str:
    """A signed effect size with two decimals; ``—`` for NaN, ``±∞`` for infinities."""
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "+∞" if x > 0 else "−∞"
    return f"{x:+.2f}"


def selected(event, what: str) -> list:
    """The selected ``points`` of a chart or ``rows`` of a table from a widget's event
    (an attribute dict from the browser, a plain dict when set through the session
    state); ``[]`` for none."""
    sel = event.get("selection") if isinstance(event, dict) else getattr(event, "selection",
                                                                           None)
    out = sel.get(what) if isinstance(sel, dict) else getattr(sel, what, None)
    return list(out or [])


def sentence(s: bc.PairStats, key: str, *, holm: int = 0, tol: float = bc.DEFAULT_TOL) -> str:
    """The result in words: who beats whom on how many entries, by how much, and the
    paired t-test's p (Holm-corrected when *holm* > 1 pairs were compared)."""
    things = "pairs" if key.endswith("/pairs") else "queries"
    if s.n == 0:
        return f"No {things[:-1] if things == 'pairs' else 'query'} has a value for both methods."
    if s.wins == 0 and s.losses == 0:
        return (f"**{md(s.a)}** and **{md(s.b)}** tie on all {s.n} {things} (|Δ| < {tol:g}): "
                "no difference to test.")
    p = s.p_holm.get("t") if holm > 1 else s.p.get("t")
    test = f"paired t, Holm-corrected over {holm} pairs" if holm > 1 else "paired t"
    verdict = ("significant at the 5% level" if p is not None and p < 0.05
               else "not significant at the 5% level")
    if s.mean_delta == 0:
        return (f"Neither is better on average: **{md(s.a)}** wins {s.wins}, **{md(s.b)}** wins "
                f"{s.losses} of {s.n} {things}, mean ±0.0 {unit_of(key)}, p = {fmt_p(p)} "
                f"({test}).")
    w, lo, wins, d = ((s.a, s.b, s.wins, s.mean_delta) if s.mean_delta > 0
                      else (s.b, s.a, s.losses, -s.mean_delta))
    ties = f" ({s.ties} tie{'s' if s.ties != 1 else ''})" if s.ties else ""
    return (f"**{md(w)}** beats **{md(lo)}** on {wins} of {s.n} {things}{ties}, mean "
            f"{100 * d:+.1f} {unit_of(key)}, p = {fmt_p(p)} ({test}; {verdict}).")


c = context.ctx()
st.title("Compare")
ds, _m = context.require_dataset()
context.synthetic_note()

methods = list(ds.methods)
if len(methods) < 2:
    st.info(f"Comparing needs two or more methods with results for {md(ds.name)}; "
            f"{'only ' + md(methods[0]) + ' has them' if methods else 'none has'}. Add one "
            "from its result files below.", icon=":material/info:")
    upload.panel(c, ds, expanded=True)
    st.stop()

# ---------------------------------------------------------------- methods and metric
a0 = state.get("m") if state.get("m") in methods else methods[0]
m2 = state.get("m2")
b0 = (m2 if m2 in methods and m2 != a0
      else methods[(methods.index(a0) + 1) % len(methods)])
chosen = [v for v in str(state.get("cmp") or "").split(",") if v in methods]
if chosen and a0 not in chosen and a0 != st.session_state.get(_LAST_A):
    # the sidebar's method changed to one not compared: it joins (A is the sidebar's
    # method); removed from the list here, A becomes the first one left
    chosen = [a0, *chosen]
    state.put("cmp", ",".join(chosen))
st.session_state["w_cmp"] = chosen or [a0, b0]


def _cmp_changed() -> None:
    state.put("cmp", ",".join(st.session_state["w_cmp"]))


top = st.columns([4, 2, 2, 3], vertical_alignment="bottom")
chosen = top[0].multiselect(
    "Methods", methods, key="w_cmp", on_change=_cmp_changed,
    help="Two or more methods of this dataset. With more than two, the p-values are also "
         "given after Holm's correction across the pairs of methods.")
if len(chosen) < 2:
    st.warning("Choose two or more methods.", icon=":material/rule:")
    upload.panel(c, ds)
    st.stop()
with top[1]:
    A = widgets.select("A", chosen, "m", wkey="w_m_cmp", help="x axis; Δ = A − B; the "
                       "sidebar's method")
st.session_state[_LAST_A] = A
with top[2]:
    B = widgets.select("B", [n for n in chosen if n != A], "m2", wkey="w_m2_cmp",
                       help="y axis")

try:
    with st.spinner("Comparing (paired tests, bootstrap intervals)…"):
        comp = loaders.comparison(ds, tuple(ds.methods[n] for n in sorted(chosen)),
                                  c.protocol)
except BenchError as e:  # one method's file: say which, and offer to replace it
    st.error(md_message(e), icon=":material/error:")
    st.caption(context.FIX_FILES + " Or leave that method out above, or upload it again.")
    upload.panel(c, ds)
    st.stop()


def _has(key: str, name: str) -> bool:
    src = comp.per_pair if key in comp.per_pair else comp.per_query
    return name in src.get(key, {})


metrics = [k for k in comp.metrics if _has(k, A) and _has(k, B)]
if not metrics:
    st.warning(f"{md(A)} and {md(B)} have no metric in common (one has ranks only, the other a "
               "pixel result only).")
    upload.panel(c, ds)
    st.stop()
if state.get("cmetric") not in metrics:
    want = [f"mAP/{c.setup}", f"mIoU-seg/{'hard' if c.setup == 'hard' else 'medium'}"]
    state.put("cmetric", next((k for k in want if k in metrics), metrics[0]))
with top[3]:
    metric = widgets.select("Metric", metrics, "cmetric", format_func=metric_label,
                            help="Per query: AP, mIoU and mAP@k (mean of the query's AP_t) "
                                 "of each setup; per pair: the pair's IoU (docs/PROTOCOLS.md "
                                 "§6).")

per_pair = metric in comp.per_pair
things = "pairs" if per_pair else "queries"
g = loaders.gnd(ds)
s = comp.stats(A, B, metric)
n_pairs_of_methods = len(chosen) * (len(chosen) - 1) // 2
holm = n_pairs_of_methods if n_pairs_of_methods > 1 else 0

# ---------------------------------------------------------------- statistics
st.subheader(f"{md(A)} vs {md(B)} · {metric_label(metric)}",
             help="Paired over the entries where both methods have a value; Δ = A − B in "
                  "percentage points; |Δ| below the tolerance is a tie (docs/PROTOCOLS.md §6).")
st.markdown(sentence(s, metric, holm=holm, tol=comp.settings.get("tol", bc.DEFAULT_TOL)))
cols = st.columns([2, 3, 2, 2, 2])
cols[0].metric("Mean Δ (A − B)", fmt_pp(s.mean_delta),
               help="Percentage points: mean over the entries of A's value minus B's.")
conf = comp.settings.get("confidence", 0.95)
cols[1].metric(f"{conf:.0%} CI of mean Δ", f"{fmt_pp(s.ci[0], 1)} … {fmt_pp(s.ci[1], 1)}",
               help=f"Bootstrap ({comp.settings.get('bootstrap')}, "
                    f"{comp.settings.get('n_bootstrap'):,} resamples, seed "
                    f"{comp.settings.get('seed')}).")
cols[2].metric("Wins / ties / losses (A)", f"{s.wins} / {s.ties} / {s.losses}",
               help=f"Of {s.n} {things}: A better, equal within the tolerance, B better.")
cols[3].metric("Effect size d_z", fmt_num(s.d_z),
               help="Mean Δ / standard deviation of Δ (Cohen's d_z; ±∞ when every Δ is the "
                    "same non-zero value).")
cols[4].metric("Rank-biserial r", fmt_num(s.rank_biserial),
               help="Matched-pairs rank-biserial correlation of the non-zero Δ (−1 … +1).")
perm = (f"exact: all 2^{s.n} sign flips" if s.permutation_exact else
        f"{comp.settings.get('n_permutations'):,} random sign flips, seed "
        f"{comp.settings.get('seed')}")
ptab = []
for t, label in TEST_NAMES.items():
    row = {"test (two-sided)": label + (f" ({perm})" if t == "permutation" else ""),
           "p": fmt_p(s.p.get(t))}
    if holm:
        row[f"p, Holm ({holm} pairs)"] = fmt_p(s.p_holm.get(t))
    ptab.append(row)
st.table(ptab, hide_index=True)
if s.n_missing:
    st.caption(f"{s.n_missing} {things} left out: no value for one of the methods (a query "
               "without positives, an ignored query, or an official mIoU that is NaN).")

if len(chosen) > 2:
    with st.expander(f"Every pair of the {len(chosen)} methods on {metric_label(metric)}"):
        st.dataframe(pd.DataFrame([{
            "A": p.a, "B": p.b, "n": p.n, "mean Δ": fmt_pp(p.mean_delta),
            "CI": f"{fmt_pp(p.ci[0])} … {fmt_pp(p.ci[1])}",
            "W/T/L": f"{p.wins}/{p.ties}/{p.losses}",
            **{f"p {t}": fmt_p(p.p[t]) for t in bc.TESTS},
            **{f"Holm {t}": fmt_p(p.p_holm.get(t)) for t in bc.TESTS},
        } for p in comp.pairs if p.metric == metric]), hide_index=True, width="stretch")

# ---------------------------------------------------------------- scatter
rows = br.per_query_table(comp, metric, A, B)


def pair_name(r: dict) -> str:
    q = r["query"]
    base = f"{q} · {g.qimlist[q]}"
    if "db" in r:
        base += f" × {loaders.db_image(ds, g, r['db'])[0]}"
    return base


col_a, col_b = render.hex_color(render.PRED_A_COLOR), render.hex_color(render.PRED_B_COLOR)
DELTA = "Δ (A − B)"


def _pct_cols(names: list[str]) -> dict:
    return {n: st.column_config.NumberColumn(n, format="%.2f") for n in names}


def scatter() -> None:
    """A against B, one point per entry, coloured by who wins; a click opens the entry."""
    if not deferred.charts_now():
        st.caption(":material/hourglass_top: Loading charts…")
        return
    fig = go.Figure()
    fig.add_shape(type="line", x0=0, y0=0, x1=100, y1=100,
                  line=dict(color="#888", dash="dash", width=1))
    groups = ((A, f"{svg_text(A)} better", col_a), (B, f"{svg_text(B)} better", col_b),
              ("tie", "tie", render.hex_color(TIE_COLOR)))
    for who, name, color in groups:
        sel = [r for r in rows if r["winner"] == who]
        fig.add_trace(go.Scatter(
            x=[100 * r[A] for r in sel], y=[100 * r[B] for r in sel], mode="markers",
            name=f"{name} ({len(sel)})",
            customdata=[[r["query"], r.get("db", -1)] for r in sel],
            hovertext=[svg_text(pair_name(r)) for r in sel],
            text=[fmt_pp(r["delta"], 1) for r in sel],
            hovertemplate=(f"%{{hovertext}}<br>{svg_text(A)} %{{x:.1f}}% · "
                           f"{svg_text(B)} %{{y:.1f}}%"
                           "<br>Δ %{text}<extra>click to open</extra>"),
            marker=dict(color=color, size=11, opacity=0.85,
                        line=dict(color="white", width=1))))
    fig.update_layout(
        title=f"{metric_label(metric)} · click a point to open its "
              f"{'pair' if per_pair else 'query'}",
        xaxis_title=f"A: {svg_text(A)} (%)", yaxis_title=f"B: {svg_text(B)} (%)",
        clickmode="event+select",
        **CHART)
    fig.update_xaxes(range=[-3, 103], constrain="domain")
    fig.update_yaxes(range=[-3, 103], scaleanchor="x", scaleratio=1, constrain="domain")
    ev = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="cmp_scatter",
                         width="stretch")
    points = selected(ev, "points")
    if points and points[0].get("customdata"):
        q_sel, db_sel = (int(v) for v in points[0]["customdata"][:2])
        if db_sel >= 0:
            routing.go(routing.PAIR, q=q_sel, i=db_sel, m=A, m2=B)
        else:
            routing.go(routing.QUERY, q=q_sel, m=A, m2=B)
    missing = sum(r["winner"] is None for r in rows)
    if missing:
        st.caption(f"{missing} {things} not shown: no value for one of the methods.")


def query_table() -> None:
    """Queries sorted by the delta (the chosen metric, or the setup's AP for a pair
    metric); a selected row opens the query with both rankings."""
    qkey = metric if not per_pair else next(
        (k for k in (f"mAP/{c.setup}", "mAP/medium", f"mIoU-seg/{c.setup}", "mIoU-seg/medium")
         if k in comp.per_query and _has(k, A) and _has(k, B)), None)
    if qkey is None:
        st.caption("No per-query metric shared by both methods.")
        return
    st.markdown(f"**Queries** · {metric_label(qkey)} · select a row to open the query "
                "with both rankings")
    qrows = br.per_query_table(comp, qkey, A, B)
    qdf = pd.DataFrame({
        "query": [r["query"] for r in qrows], "name": [r.get("name", "") for r in qrows],
        A: [100 * r[A] for r in qrows], B: [100 * r[B] for r in qrows],
        DELTA: [100 * r["delta"] for r in qrows],
        "winner": [r["winner"] or "—" for r in qrows]})
    qdf = qdf.sort_values(DELTA, ascending=False, na_position="last",
                          kind="stable").reset_index(drop=True)
    ev = st.dataframe(qdf, hide_index=True, width="stretch", key="cmp_queries",
                      on_select="rerun", selection_mode="single-row",
                      column_config=_pct_cols([A, B, DELTA]),
                      height=min(38 + 35 * len(qdf), 460))
    sel = selected(ev, "rows")
    if sel:
        routing.go(routing.QUERY, q=int(qdf.loc[sel[0], "query"]), m=A, m2=B)


def pair_table() -> None:
    """Every easy / hard pair either method predicted, sorted by the seg IoU delta; a
    selected row opens the pair with both predictions."""
    if not ("IoU-seg/pairs" in comp.per_pair and _has("IoU-seg/pairs", A)
            and _has("IoU-seg/pairs", B)):
        st.caption("Pair IoUs need pixel-level results of both methods.")
        return
    st.markdown("IoU of each easy / hard pair that either method predicted (no prediction: "
                "0) · select a row to see both predictions on the image")
    seg = br.per_query_table(comp, "IoU-seg/pairs", A, B)
    bbox = br.per_query_table(comp, "IoU-bbox/pairs", A, B)
    easy = [set(e.tolist()) for e in g.easy]
    pdf = pd.DataFrame({
        "query": [r["query"] for r in seg], "name": [r.get("name", "") for r in seg],
        "db": [r["db"] for r in seg],
        "image": [loaders.db_image(ds, g, r["db"])[0] for r in seg],
        "label": ["easy" if r["db"] in easy[r["query"]] else "hard" for r in seg],
        f"{A} bbox": [100 * r[A] for r in bbox], f"{B} bbox": [100 * r[B] for r in bbox],
        f"{A} seg": [100 * r[A] for r in seg], f"{B} seg": [100 * r[B] for r in seg],
        "Δ seg": [100 * r["delta"] for r in seg]})
    pdf = pdf.sort_values("Δ seg", ascending=False, kind="stable").reset_index(drop=True)
    ev = st.dataframe(pdf, hide_index=True, width="stretch", key="cmp_pairs",
                      on_select="rerun", selection_mode="single-row",
                      column_config=_pct_cols([n for n in pdf.columns
                                               if n.endswith(("bbox", "seg"))]),
                      height=min(38 + 35 * len(pdf), 420))
    sel = selected(ev, "rows")
    if sel:
        r = pdf.loc[sel[0]]
        routing.go(routing.PAIR, q=int(r["query"]), i=int(r["db"]), m=A, m2=B)


st.subheader(f"Per {'pair' if per_pair else 'query'}",
             help="One point per entry; above the diagonal B is better, below it A.")
left, right = st.columns(2, gap="medium")
with left:
    scatter()
with right:
    query_table()
st.subheader("Per pair", help="Pixel level: both methods' IoU of every pair.")
pair_table()

# open a pair without the table (keyboard, links)
if comp.pair_keys and _has("IoU-seg/pairs", A) and _has("IoU-seg/pairs", B):
    seg = br.per_query_table(comp, "IoU-seg/pairs", A, B)
    order = sorted(range(len(seg)), key=lambda j: -abs(np.nan_to_num(seg[j]["delta"])))
    fa, fb = st.columns([4, 1], vertical_alignment="bottom")
    j = fa.selectbox("Both predictions on one pair (largest |Δ seg| first)", order,
                     format_func=lambda j: f"{pair_name(seg[j])} · Δ seg "
                                           f"{fmt_pp(seg[j]['delta'], 1)}",
                     key="cmp_pair_pick")
    widgets.nav_button("Open pair", routing.PAIR, key="cmp_pair_open", where=fb,
                       q=int(seg[j]["query"]), i=int(seg[j]["db"]), m=A, m2=B)

# ---------------------------------------------------------------- downloads
st.subheader("Export", help="The same files as `python -m bench compare --csv / "
             "--csv-per-query / --latex`.")
d = st.columns([2, 2, 3, 2], vertical_alignment="bottom")
stem = f"compare_{ds.name}_{c.protocol}".replace("+", "_")
d[0].download_button("Statistics CSV", br.to_csv(comp, "pairs"), file_name=f"{stem}.csv",
                     mime="text/csv", icon=":material/download:", width="stretch")
d[1].download_button("Per-query CSV", br.to_csv(comp, "per_query"),
                     file_name=f"{stem}_per_query.csv", mime="text/csv",
                     icon=":material/download:", width="stretch")
test = d[2].selectbox("Superscripts of the LaTeX table: test (Holm, α = 0.05)",
                      list(TEST_NAMES), format_func=TEST_NAMES.get, key="cmp_latex_test")
try:
    latex = br.to_latex(comp, test=test, alpha=0.05, correction="holm")
except ValueError as e:  # no mIoU, mAP@k or mAP column
    latex = None
    d[3].caption(f"No LaTeX table: {e}.")
if latex is not None:
    d[3].download_button("LaTeX table", latex, file_name=f"{stem}.tex", mime="text/x-tex",
                         icon=":material/download:", width="stretch")
    with st.expander("LaTeX table (the PROxford/PRParis paper's layout)"):
        st.code(latex, language="latex")
st.caption(f"{comp.n_queries} queries, {len(comp.pair_keys)} pairs with a prediction of at "
           f"least one method, {c.protocol} protocol. Reported numbers: "
           + " · ".join(f"{md(n)} {pct(comp.reported.get(metric, {}).get(n))}" for n in chosen
                        if n in comp.reported.get(metric, {}))
           + f" ({metric_label(metric)}).")

upload.panel(c, ds)
