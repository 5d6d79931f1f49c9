"""Errors: every pair of a method at once, why each one fails, and what fixing each kind
of failure would buy (the failure taxonomy of docs/PROTOCOLS.md §5, ``bench.triage``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from bench import render
from bench.app import context, deferred, loaders, routing, state, views, widgets
from bench.app.format import md, pct
from bench.protocol import PIXEL_SETUPS, Protocol
from bench.triage import FAILURES, LOCALISATION_TYPES

routing.ensure_routed()

PER_PAGE = 12  # gallery tiles per page
N_COLS = 6  # gallery tiles per row
TABLE_ROWS = 10  # pair table height, in rows: "the 10 worst pairs" in one screen
SORTS = {"worst": "IoU, worst first", "best": "IoU, best first", "rank": "rank",
         "query": "query"}
FAILURE_HELP = {
    "missed": "a positive not in the top k (junk-free positions), or not ranked at all",
    "no_region": "in the top k, no IoU: no prediction (or no ground-truth label)",
    "wrong_place": "in the top k, IoU <= 0.1",
    "mislocalised": "in the top k, 0.1 < IoU <= t",
    "ok": "in the top k, IoU > t",
}
FIX_LABELS = {"missed": "fix missed", "no_region": "fix no_region",
         "wrong_place": "fix wrong_place", "mislocalised": "fix mislocalised",
         "ok": "fix ok (IoU 1)", LOCALISATION_TYPES: "fix all three localisation types",
         "localisation": "perfect localiser", "all": "fix everything"}
NOT_POSITIVE = "— (junk here)"
ROWS_KEY = "_errors_rows"  # (q, i) of the pair table's rows, in the order shown
NEG_KEY = "_errors_negatives"

c = context.ctx()
st.title("Errors")
ds, m = context.require_dataset()
context.synthetic_note()
if m is None or m.ranks is None:
    st.info("The error analysis needs the method's image-level ranks file "
            f"(results/image-level/<method>/r{ds.short}.npy): a pair is *missed* when it is "
            "ranked below k.", icon=":material/info:")
    st.stop()
if not loaders.has_pixel(ds, m):
    st.info(f"**{md(m.name)}** has no pixel-level results for {md(ds.name)} (the pair labels "
            f"{ds.short}_pair2labelpath.npy and the method's matching_result/"
            f"pr{ds.short}.npy): the failure types need its predicted regions. The "
            "Overview and Query pages still show its image-level numbers.",
            icon=":material/info:")
    st.stop()


def _open_row(table_key: str, rows_key: str) -> None:
    """Table selection callback: open the Pair page of the selected row."""
    rows = st.session_state[table_key].selection.rows
    pairs = st.session_state.get(rows_key) or []
    if rows and rows[0] < len(pairs):
        q, i = pairs[rows[0]]
        routing.request(routing.PAIR, q=int(q), i=int(i))


def _filter_type(key: str) -> None:
    """Counts chart callback: a clicked bar filters the table to that failure type."""
    ev = st.session_state[key]
    kind = views.picked(ev)
    if kind in FAILURES:
        state.update(efail=kind, epage=0)


# ---------------------------------------------------------------- controls
strict = "seg" in Protocol.of(c.protocol).threshold_iou  # seg IoU thresholds offered
ctl = st.columns([2, 2, 3, 2] if strict else [2, 2, 3], vertical_alignment="bottom")
with ctl[0]:
    setup = widgets.radio("Setup", list(PIXEL_SETUPS), "eset", horizontal=True,
                          format_func=str.capitalize,
                          help="Medium: positives easy + hard. Hard: positives hard (easy "
                               "pairs are junk and get no failure type).")
with ctl[1]:
    k = widgets.number("k (top k)", 1, 1_000_000, "ek",
                       help="Cut-off of the taxonomy, in junk-free positions.")
with ctl[2]:
    t = widgets.slider("IoU threshold t", 0.0, 1.0, "et", step=0.05,
                       help="ok = IoU > t; mislocalised = 0.1 < IoU <= t.")
kind = "bbox"
if strict:
    with ctl[3]:
        kind = widgets.radio("IoU", ["bbox", "seg"], "ekind", horizontal=True,
                             help="Strict protocol: the taxonomy may use the seg IoU.")
else:
    state.put("ekind", "bbox")

with st.spinner("Sorting every pair into its failure type…"), context.guard(context.FIX_FILES):
    g = loaders.gnd(ds)
    res = loaders.triage(ds, m, setup, int(k), float(t), c.protocol, kind)
    inputs = loaders.pixel_inputs(ds, m)

n_pos = sum(res.counts.values())
st.caption(f"**{md(ds.name)}** · **{md(m.name)}** · {c.protocol} protocol · {setup} setup · "
           f"{n_pos} positive pairs · ok = {kind} IoU > {t:.2f} in the top {k} · "
           "definitions: docs/PROTOCOLS.md §5.")
if res.warnings:
    with st.expander(f":material/warning: {len(res.warnings)} input warnings (those pairs "
                     "have no IoU)"):
        st.code("\n".join(str(w) for w in res.warnings[:200]), language=None)

# ---------------------------------------------------------------- retrieval or localisation?
gain = res.gain
cards = [("mAP@k", res.map_at_k, None),
         ("fix retrieval (missed)", res.recovered["missed"], gain["missed"]),
         ("fix localisation errors", res.recovered[LOCALISATION_TYPES],
          gain[LOCALISATION_TYPES]),
         ("perfect localiser", res.recovered["localisation"], gain["localisation"]),
         ("fix everything", res.recovered["all"], gain["all"])]
helps = [f"mAP@k of this method ({c.protocol}, {kind} IoU, thresholds 0.50…0.95).",
         "The missed positives moved to the end of the top k, IoUs kept.",
         "no_region, wrong_place and mislocalised pairs given IoU 1.",
         "Every positive given IoU 1, same ranking.",
         "Missed positives moved and every positive at IoU 1."]
cols = st.columns(len(cards))
for col, (label, v, d), h in zip(cols, cards, helps, strict=True):
    col.metric(label, pct(v), delta=None if d is None or math.isnan(d)
               else f"{100 * d:+.2f} points", help=h)
g_ret, g_loc = gain["missed"], gain["localisation"]
if not (math.isnan(g_ret) or math.isnan(g_loc)):
    what = (f"A perfect localiser would change mAP@k by **{100 * g_loc:+.2f}** points; "
            f"retrieving every missed positive into the top {k}, by **{100 * g_ret:+.2f}**.")
    if max(g_ret, g_loc) <= 0:
        st.markdown(f"**Neither retrieval nor localisation would raise mAP@k here.** {what}")
    else:
        bigger = "localisation" if g_loc > g_ret else "retrieval"
        st.markdown(f"**Most points are lost on {bigger}.** {what}")

# a tab's first run leaves out the charts and the tables, whose code is the slowest to
# load in a browser (bench.app.deferred); they follow a moment later
drawn = deferred.charts_now()
if drawn:
    left, right = st.columns(2)
    with left:
        counts = [res.counts[f] for f in FAILURES]
        fig = go.Figure(go.Bar(
            x=list(FAILURES), y=counts, customdata=list(FAILURES),
            marker_color=[render.hex_color(render.FAILURE_COLORS[f]) for f in FAILURES],
            text=[f"{n} ({100 * n / n_pos:.0f}%)" if n_pos else str(n) for n in counts],
            textposition="outside", hovertext=[FAILURE_HELP[f] for f in FAILURES],
            hovertemplate="%{x}: %{y} pairs<br>%{hovertext}<extra>click: filter the "
                          "table</extra>"))
        fig.update_layout(title="Pairs per failure type · click a bar to filter the table",
                          yaxis_title="pairs", height=330, clickmode="event+select",
                          yaxis_range=[0, max(counts + [1]) * 1.2],
                          margin=dict(l=10, r=10, t=40, b=10))
        st.plotly_chart(fig, key="err_counts", on_select=lambda: _filter_type("err_counts"),
                        selection_mode="points", width="stretch")
    with right:
        fixes = list(FIX_LABELS)
        pts = [100 * gain[f] for f in fixes]
        fig = go.Figure(go.Bar(
            y=[FIX_LABELS[f] for f in fixes], x=[0 if math.isnan(v) else v for v in pts],
            orientation="h", text=["n/a" if math.isnan(v) else f"{v:+.2f}" for v in pts],
            textposition="outside",
            marker_color=["#2ea043" if v >= 0 else "#d62828" for v in pts],
            hovertemplate="%{y}: %{text} points of mAP@k<extra></extra>"))
        span = max([abs(v) for v in pts if not math.isnan(v)] + [1.0])
        fig.update_layout(title=f"mAP@k gained by each oracle fix (points; now "
                                f"{pct(res.map_at_k)})",
                          xaxis_range=[-span * 1.35 if min(pts) < 0 else 0, span * 1.35],
                          yaxis_autorange="reversed", height=330,
                          margin=dict(l=10, r=10, t=40, b=10))
        st.plotly_chart(fig, key="err_gains", width="stretch")
else:
    st.caption(":material/hourglass_top: Loading charts…")
st.caption("A fix can lower mAP@k: a positive whose IoU fails a threshold leaves the "
           "positives N there, so giving it IoU 1 turns it into a positive at its own, "
           "possibly low, rank and adds a low-precision term (docs/PROTOCOLS.md §5.3).")

# ---------------------------------------------------------------- the pair table
st.subheader("Pairs", help="Every easy and hard pair once. Select a row to open the pair.")
q_names = np.asarray(g.qimlist, dtype=object)
names = np.asarray(res.names, dtype=object)
failure = np.array([f if f is not None else NOT_POSITIVE for f in res.failure], dtype=object)
base = pd.DataFrame({
    "q": res.q, "query": q_names[res.q] if len(res) else [], "i": res.i, "image": names,
    "label": res.label, "failure": failure,
    "rank": pd.array(np.where(res.rank >= 0, res.rank + 1, 0), dtype="Int64"),
    "junk-free rank": pd.array(np.where(res.adj_rank >= 0, res.adj_rank + 1, 0),
                               dtype="Int64"),
    "bbox IoU": res.bbox, "seg IoU": res.seg, "ignored query": res.ignored,
})
base.loc[res.rank < 0, "rank"] = pd.NA
base.loc[res.adj_rank < 0, "junk-free rank"] = pd.NA

types = list(FAILURES) + ([NOT_POSITIVE] if setup == "hard" else [])
f1, f2, f3, f4, f5, f6 = st.columns([3, 1.3, 2.4, 1.2, 1.4, 1.8], vertical_alignment="bottom")
with f1:
    chosen = widgets.multi("Failure types", types, "efail", placeholder="all types")
with f2:
    lab = widgets.select("Label", ["all", "easy", "hard"], "elab")
with f3:
    lo, hi = widgets.range_slider("IoU range", 0.0, 1.0, "elo", "ehi", step=0.05,
                                  help="lo <= IoU < hi (hi = 1 included). The full range "
                                       "also keeps pairs without an IoU.")
with f4:
    fcol = widgets.select("IoU of", ["bbox", "seg"], "efcol")
with f5:
    rmax = widgets.number("Rank ≤ (0: any)", 0, 10_000_000, "ermax")
with f6:
    sort = widgets.select("Order", list(SORTS), "esort", format_func=SORTS.get)

keep = np.ones(len(base), dtype=bool)
if chosen:
    keep &= base["failure"].isin(chosen).to_numpy()
if lab != "all":
    keep &= (base["label"] == lab).to_numpy()
if lo > 0 or hi < 1:
    keep &= views.iou_in_range(base[f"{fcol} IoU"].to_numpy(), lo, hi)
if rmax > 0:
    keep &= (base["rank"].fillna(0).to_numpy() >= 1) & (base["rank"].fillna(0).to_numpy()
                                                         <= rmax)
table = base[keep]
iou_key = table[f"{kind} IoU"].to_numpy()
rank_key = table["rank"].fillna(np.iinfo(np.int64).max).to_numpy(dtype=np.int64)
if sort in ("worst", "best"):
    v = np.where(np.isnan(iou_key), -1.0, iou_key)  # no IoU = worst (it counts 0)
    order = np.lexsort((table["i"].to_numpy(), table["q"].to_numpy(), rank_key,
                        v if sort == "worst" else -v))
elif sort == "rank":
    order = np.lexsort((table["i"].to_numpy(), table["q"].to_numpy(), rank_key))
else:
    order = np.lexsort((table["i"].to_numpy(), table["q"].to_numpy()))
table = table.iloc[order].reset_index(drop=True)
st.session_state[ROWS_KEY] = list(zip(table["q"].tolist(), table["i"].tolist(), strict=True))

shown = table.copy()
shown["bbox IoU"] = shown["bbox IoU"] * 100
shown["seg IoU"] = shown["seg IoU"] * 100
PAIR_COLUMNS = {
    "q": st.column_config.NumberColumn("q", width="small"),
    "i": st.column_config.NumberColumn("i", width="small"),
    "rank": st.column_config.NumberColumn(
        "rank", help="1-based position in the ranking (junk included); blank: absent from "
                     "a truncated ranking"),
    "junk-free rank": st.column_config.NumberColumn(
        "junk-free rank", help="1-based position without the setup's junk: in the top k "
                               "when <= k"),
    "bbox IoU": st.column_config.NumberColumn("bbox IoU", format="%.1f%%",
                                              help="None: no IoU (no prediction)"),
    "seg IoU": st.column_config.NumberColumn("seg IoU", format="%.1f%%"),
    "ignored query": st.column_config.CheckboxColumn(
        "ignored", help="An ignored query of the benchmark: not in mAP@k"),
}
if drawn:
    st.dataframe(shown, key="err_table", on_select=lambda: _open_row("err_table", ROWS_KEY),
                 selection_mode="single-row", hide_index=True, width="stretch",
                 height=38 + 35 * TABLE_ROWS, column_config=PAIR_COLUMNS)
else:
    st.caption(":material/hourglass_top: Loading the table…")
ca, cb = st.columns([4, 1], vertical_alignment="center")
ca.caption(f"{len(table)} of {len(base)} pairs · ordered by {SORTS[sort]} ({kind} IoU; no "
           "IoU first) · select a row to open the pair.")
cb.download_button(
    "Download CSV", table.to_csv(index=False).encode(), icon=":material/download:",
    file_name=f"errors_{ds.name}_{m.name}_{setup}_k{k}_t{t:.2f}_{c.protocol}.csv",
    mime="text/csv", width="stretch", help="The filtered table in this order; IoU as "
    "fractions, ranks 1-based, blank = none.")

# ---------------------------------------------------------------- gallery
st.subheader("Gallery", help="The table's pairs in its order, ground truth filled, "
             "prediction outlined; the frame is the failure type.")
widgets.legend([(f, render.FAILURE_COLORS[f]) for f in FAILURES]
               + [("ground truth (filled)", render.GT_COLOR),
                  ("prediction (outline)", render.PRED_COLOR)])
n_pages = max(1, math.ceil(len(table) / PER_PAGE))
sig = (setup, k, t, kind, c.protocol, state.get("efail"), lab, lo, hi, fcol, rmax, sort)
if st.session_state.get("_errors_sig") != sig:  # new filters: back to the first page
    st.session_state["_errors_sig"] = sig
    if st.session_state.get("_errors_sig_seen"):
        state.put("epage", 0)
st.session_state["_errors_sig_seen"] = True
pg = min(max(int(state.get("epage")), 0), n_pages - 1)
state.put("epage", pg)


def _page(delta: int) -> None:
    state.put("epage", min(max(state.get("epage") + delta, 0), n_pages - 1))


nav = st.container(horizontal=True, vertical_alignment="center", gap="small")
widgets.step_buttons(lambda: _page(-1), lambda: _page(1), key="gal", where=nav,
                     what="gallery page", prev_disabled=pg == 0,
                     next_disabled=pg >= n_pages - 1)
nav.caption(f"Page {pg + 1} of {n_pages} · pairs {pg * PER_PAGE + 1 if len(table) else 0}"
            f"–{min((pg + 1) * PER_PAGE, len(table))} of {len(table)}")
widgets.keys_hint("← → or k j: previous / next page · Tab to a tile, Enter opens its pair · "
                  "Esc: Overview", where=nav)
widgets.back_key("Back to the Overview", routing.OVERVIEW, key="err_back")
if not len(table):
    st.info("No pair matches the filters.")
page_rows = table.iloc[pg * PER_PAGE:(pg + 1) * PER_PAGE]
recs = page_rows.to_dict("records")
for start in range(0, len(recs), N_COLS):
    row_cols = st.columns(N_COLS)
    for col, r in zip(row_cols, recs[start:start + N_COLS], strict=False):
        q, i = int(r["q"]), int(r["i"])
        key = (q, i)
        name, path = loaders.db_image(ds, g, i)
        fail = r["failure"]
        color = render.FAILURE_COLORS.get(fail, render.NO_PAIR_COLOR)
        rank = r["rank"]
        badge = f"#{int(rank)}" if not pd.isna(rank) else "—"
        tile = loaders.mask_tile(path, name, color, badge, inputs.gt.get(key),
                                 inputs.preds.get(key), inputs.sizes.get(key), "both")
        v = r[f"{kind} IoU"]
        iou = "no IoU" if pd.isna(v) else f"{kind} IoU {pct(v, 1)}"
        with col.container(key=f"etile_{q}_{i}"):  # the whole tile opens the pair
            st.image(tile, width="stretch")
            st.caption(f"**{fail}** · {r['label']} · {iou}  \n{md(name)} ← "
                       f"{md(g.qimlist[q])} (q {q})")
            st.button(f"Open pair q {q}, image {i}", key=f"gal_{q}_{i}",
                      on_click=routing.request, args=(routing.PAIR,),
                      kwargs={"q": q, "i": i}, width="stretch")


# ---------------------------------------------------------------- hard negatives
st.subheader("Top-ranked negatives", help="Negatives (not easy, hard or junk for the "
             "query) with the best junk-free ranks over all queries: the method's "
             "confusions (docs/PROTOCOLS.md §5.4). Select a row to open the pair.")
negs = res.hard_negatives
if negs:
    st.session_state[NEG_KEY] = [(h.q, h.i) for h in negs]
    neg_df = pd.DataFrame({
        "q": [h.q for h in negs], "query": [g.qimlist[h.q] for h in negs],
        "i": [h.i for h in negs], "image": [loaders.db_image(ds, g, h.i)[0] for h in negs],
        "rank": [h.rank + 1 for h in negs], "junk-free rank": [h.adj_rank + 1 for h in negs],
        "ignored query": [h.ignored for h in negs]})
    if drawn:
        st.dataframe(neg_df, key="neg_table", hide_index=True, width="stretch",
                     on_select=lambda: _open_row("neg_table", NEG_KEY),
                     selection_mode="single-row", height=38 + 35 * min(len(negs), TABLE_ROWS))
    else:
        st.caption(":material/hourglass_top: Loading the table…")
    st.caption(f"{len(negs)} negatives, best ranked first (ranks 1-based).")
else:
    st.caption("No negative in the rankings.")
