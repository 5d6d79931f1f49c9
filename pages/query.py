"""Query: the ranked results of one query as a grid of tiles (the page is the grid), framed
by label (or pass / fail), the predicted and ground-truth regions drawn on them; a tile
opens its pair on a click or Enter and enlarges in a lightbox; a second method's ranking
sits beside the first as tiles, with every image's exact rank in the other ranking.

Keys: ← / → (k / j) previous / next query, Tab to a tile and Enter to open it, Esc back
to the Overview; in the lightbox ← / → step through the ranked list and Esc closes it."""

from __future__ import annotations

import math

import streamlit as st

from bench import inspect as bi
from bench import render, thumbs
from bench.app import context, loaders, rankings, routing, state, views, widgets
from bench.app.format import md, md_message, pct, query_label
from bench.errors import BenchError
from bench.protocol import Protocol

routing.ensure_routed()

K_CHOICES = (5, 10, 15, 20, 30, 50, 100)
LB = "_query_lightbox"  # (side "a" / "b", index in that side's list) of the enlarged tile
REGIONS = {"none": "None", "pred": "Prediction", "both": "Both", "errors": "Error colours"}
FRAMES = {"label": "Label", "pass": "Pass / fail at t"}

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
    inputs = loaders.pixel_inputs(ds, m) if pix is not None else None

q = min(max(int(state.get("q")), 0), g.n_queries - 1)
state.put("q", q)
res = rev[c.setup]
lightbox_open = st.session_state.get(LB) is not None


def _step(delta: int) -> None:
    state.set_query(min(max(state.get("q") + delta, 0), g.n_queries - 1))
    st.session_state[LB] = None


def _close_lightbox() -> None:
    st.session_state[LB] = None


def _open_lightbox(side: str, idx: int) -> None:
    st.session_state[LB] = (side, idx)


def _open_pair(db: int) -> None:
    st.session_state[LB] = None
    routing.request(routing.PAIR, i=db)


# ---------------------------------------------------------------- the query, its numbers
others = [n for n, mf in ds.methods.items() if n != m.name and mf.ranks is not None]
crop_col, ctl = st.columns([1, 4.4], gap="small")
with ctl:
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    widgets.step_buttons(lambda: _step(-1), lambda: _step(1), key="q", where=row,
                         prev_disabled=q == 0, next_disabled=q >= g.n_queries - 1,
                         keys=not lightbox_open)
    widgets.select("Query", list(range(g.n_queries)), "q", where=row, width="stretch",
                   format_func=lambda i: query_label(g, i, res.ap))
    state.put("k", min(K_CHOICES, key=lambda v: abs(v - int(state.get("k")))))
    k = widgets.select("Top k", list(K_CHOICES), "k", where=row, width=90)
    name_b = ""
    if others:
        name_b = widgets.select("Beside it", ["", *others], "m2", wkey="w_m2_query",
                                where=row, width=170,
                                format_func=lambda n: n or "— one method —",
                                help="A second method's ranking beside this one's, as "
                                     "tiles, with each image's rank in the other ranking.")
    q = state.get("q")
    stats = bi.query_stats(res, scan, g, q, setup=c.setup, ks=(k,))
    cards = st.container(horizontal=True, gap="medium", key="cards_q")
    cards.metric(f"AP · {c.setup}", pct(stats.ap), width="content")
    official_pk = Protocol.of(c.protocol).pk_rule == "official_kq"
    for kk, v in stats.pk.items():
        cards.metric(f"P@{kk}", pct(v), width="content",
                     help="Official P@k: kq = min(largest adjusted rank, k)." if official_pk
                     else "Strict P@k: hits in the top k / k.")
    found = stats.found_in_top[k]
    cards.metric(f"positives in top {k}", f"{found} of {stats.n_pos}", width="content")
    if pix is not None:
        pset = "hard" if c.setup == "hard" else "medium"
        pq = pix.setups[pset]
        cards.metric(f"mIoU bbox / seg · {pset}", f"{pct(pq.per_query_bbox[q])} / "
                     f"{pct(pq.per_query_seg[q])}", width="content")
    if math.isnan(stats.ap):
        st.caption(f"No positives under the {c.setup} setup: this query is left out of "
                   "the mean.")
    missed = bi.missed_positives(scan, g, q, k, setup=c.setup)
    if missed:
        with st.expander(f"Missed: {len(missed)} positive{'s' if len(missed) > 1 else ''} "
                         f"ranked below {k}"):
            shown = missed[:60]
            st.markdown(" · ".join(f"{md(it.name)} {it.label} **{rankings.rank_text(it.rank)}**"
                                   for it in shown)
                        + (f" · … {len(missed) - len(shown)} more"
                           if len(missed) > len(shown) else ""))
            ma, mb = st.columns([3, 1], vertical_alignment="bottom")
            pick = ma.selectbox("Open a missed positive", [it.db for it in missed],
                                format_func=lambda i: bi.image_name(g, i), key="missed_pick")
            widgets.nav_button("Open pair", routing.PAIR, key="missed_open", where=mb,
                               i=int(pick))
with crop_col:
    img, cap = views.query_crop(ds, g, q, px=320)
    st.image(render.jpeg_bytes(img, quality=88), width="stretch")
    st.caption(md(cap))

# ---------------------------------------------------------------- how the tiles look
legend_row = st.container(horizontal=True, vertical_alignment="center", gap="medium")
with legend_row.popover("Tiles", icon=":material/tune:", help="Regions drawn, frame colours, "
                 "tiles per row"):
    if inputs is not None:
        regions = widgets.radio(
            "Regions", list(REGIONS), "qmask", horizontal=True, format_func=REGIONS.get,
            help="Both: ground truth filled, prediction outlined (as on the Pair page). "
                 "Error colours: prediction and ground truth (TP), prediction only (FP), "
                 "ground truth only (FN), drawn at the tile's scale.")
        frames = widgets.radio("Frames", list(FRAMES), "qframe", horizontal=True,
                               format_func=FRAMES.get)
        t = widgets.slider("IoU threshold t", 0.0, 1.0, "qt", step=0.05,
                           disabled=frames != "pass",
                           help="Pass: the pair's bbox IoU is above t (the rule of mAP@k "
                                "at threshold t). Used by the pass / fail frames.")
    else:
        regions, frames, t = "none", "label", 0.5
        st.caption("No pixel-level result for this method: tiles show the images only.")
    n_cols = widgets.select("Tiles per row", list(widgets.DENSITIES), "qcols",
                            help="Density of the grid (with a second method: per side, "
                                 "at least 2).")
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
widgets.legend(legend, where=legend_row)
role_note = {"easy": "easy setup: hard images count as junk",
             "medium": "medium setup: easy and hard are positives",
             "hard": "hard setup: easy images count as junk"}[c.setup]
widgets.keys_hint("← → k j · Tab · Enter · Esc", where=legend_row,
                  help="← → or k j: previous / next query. Tab to a tile, Enter opens its "
                       "pair; :material/zoom_in: enlarges it (then ← → step through the list, "
                       "Esc closes). Esc: back to the Overview.  \n"
                       f"Frame = {'label' if frames == 'label' else 'pass / fail'}; "
                       f"{role_note}. Caption: pair IoU (bbox / seg, {c.protocol}) where the "
                       "method predicted a region."
                       + ("" if ds.images is not None else
                          " No images folder: regions on a blank canvas, or names only."))
if ds.images is None:
    st.caption(":material/image_not_supported: No images folder: tiles show the regions on a "
               "blank canvas, or names only.")
if not lightbox_open:  # Esc closes the lightbox first
    widgets.back_key("Back to the Overview", routing.OVERVIEW, key="q_back")


# ---------------------------------------------------------------- the ranked results
def tile_look(it: bi.RankedItem, p_res, p_inp) -> tuple[render.RGB, str, list | None,
                                                        object, tuple | None]:
    """Frame colour, IoU caption, ground truth, prediction and label size of a tile."""
    key = (q, it.db)
    is_pair = it.label in ("easy", "hard")
    iou = p_res.pairs.get(key) if p_res is not None and is_pair else None
    if frames == "pass":
        color = (render.NO_PAIR_COLOR if not is_pair else render.PASS_COLOR
                 if iou is not None and iou[0] > t else render.FAIL_COLOR)
    else:
        color = render.LABEL_COLORS[it.label]
    cap = it.label
    if p_res is not None and is_pair:
        cap += (f" · IoU {pct(iou[0], 1)} / {pct(iou[1], 1)}" if iou is not None
                else " · no prediction")
    gt = p_inp.gt.get(key) if p_inp is not None else None
    pred = p_inp.preds.get(key) if p_inp is not None else None
    return color, cap, gt, pred, p_inp.sizes.get(key) if p_inp is not None else None


def tile_bytes(it: bi.RankedItem, p_res, p_inp, *, size: int = thumbs.TILE_PX,
               mode: str | None = None) -> bytes:
    color, _, gt, pred, lsize = tile_look(it, p_res, p_inp)
    name, path = loaders.db_image(ds, g, it.db)
    mode = regions if mode is None else mode
    if mode != "none" and (gt or pred is not None):
        return loaders.mask_tile(path, name, color, f"#{it.rank}", gt, pred, lsize, mode,
                                 size=size)
    return thumbs.tile_jpeg(path, name, color, badge=f"#{it.rank}", size=size)


def grid(items: list[bi.RankedItem], side: str, ncol: int, p_res, p_inp,
         extra: dict[int, str] | None = None) -> None:
    """The tiles row by row (tile n is in row n // ncol: the reading and Tab order is the
    rank). A tile is a container (key ``qtile_<rank>``, B: ``qtile_b<rank>``) whose whole
    area is its open button (``pair_<rank>`` / ``pairb_<rank>``, bench.app.widgets.APP_CSS)."""
    suffix = "" if side == "a" else "b"
    for start in range(0, len(items), ncol):
        cols = st.columns(ncol, gap="small")
        for j, (col, it) in enumerate(zip(cols, items[start:start + ncol], strict=False)):
            _, cap, *_ = tile_look(it, p_res, p_inp)
            name = loaders.db_image(ds, g, it.db)[0]
            with col.container(key=f"qtile_{side}{it.rank}" if side == "b" else f"qtile_{it.rank}"):
                st.image(tile_bytes(it, p_res, p_inp), width="stretch")
                st.caption(f"**{md(name)}**  \n{cap}"
                           + (f"  \n{extra[it.db]}" if extra and it.db in extra else ""))
                st.button(f"Open pair #{it.rank}", key=f"pair{suffix}_{it.rank}",
                          on_click=_open_pair, args=(it.db,), width="stretch")
                st.button("", icon=":material/zoom_in:", key=f"zoom_{side}_{it.rank}",
                          on_click=_open_lightbox, args=(side, start + j),
                          help="Enlarge (← → step through the list, Esc closes)")


items = bi.top_k(ranks, g, q, k, setup=c.setup)
lists: dict[str, tuple[list[bi.RankedItem], object, object, dict[int, str]]] = {}
if not name_b:
    lists["a"] = (items, pix, inputs, {})
    grid(items, "a", int(n_cols), pix, inputs)
else:
    mb = ds.methods[name_b]
    try:  # a bad file of the second method does not stop the page
        ranks_b = loaders.ranks(ds, mb)
        ap_b = loaders.revisited(ds, mb, c.protocol)[c.setup].ap[q]
        pix_b = loaders.pixel(ds, mb, c.protocol) if loaders.has_pixel(ds, mb) else None
        inputs_b = loaders.pixel_inputs(ds, mb) if pix_b is not None else None
        items_b = bi.top_k(ranks_b, g, q, k, setup=c.setup)
        in_b = rankings.other_ranks(ds, mb, q, tuple(it.db for it in items))
        in_a = rankings.other_ranks(ds, m, q, tuple(it.db for it in items_b))
    except BenchError as e:
        st.error(md_message(e), icon=":material/error:")
        st.caption(context.FIX_FILES)
        lists["a"] = (items, pix, inputs, {})
        grid(items, "a", int(n_cols), pix, inputs)
    else:
        top_a = {it.db for it in items}
        new = sum(it.db not in top_a for it in items_b)
        head = st.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"Top {k}: **{len(items_b) - new}** in both, B brings **{new}** new · "
                      f"AP ({c.setup}) A {pct(res.ap[q])}, B {pct(ap_b)}",
                      help="▲ / ▼: how many places higher / lower B ranks an image than A; "
                           "new: not in A's top k. Every rank is exact, read from the ranks "
                           "file.", width="content")
        head.button("Compare on every query", key="q_compare_open",
                    icon=":material/open_in_new:", on_click=routing.request,
                    args=(routing.COMPARE,), kwargs={"m": m.name, "m2": name_b})
        extra_a = {it.db: f"in B {rankings.rank_text(in_b[it.db])}" for it in items}
        extra_b = {}
        for it in items_b:
            ch = rankings.rank_change(in_a[it.db], it.rank, k)
            extra_b[it.db] = f"{ch} · in A {rankings.rank_text(in_a[it.db])}"
        lists["a"] = (items, pix, inputs, extra_a)
        lists["b"] = (items_b, pix_b, inputs_b, extra_b)
        per_side = max(2, (int(n_cols) + 2) // 2)  # 6 per row: 4 on each side
        left, right = st.columns(2, gap="large")
        with left.container(key="q_rank_a"):
            st.markdown(f"**A · {md(m.name)}**")
            grid(items, "a", per_side, pix, inputs, extra_a)
        with right.container(key="q_rank_b"):
            st.markdown(f"**B · {md(name_b)}**")
            grid(items_b, "b", per_side, pix_b, inputs_b, extra_b)


# ---------------------------------------------------------------- the lightbox
def _lb_step(delta: int, n: int) -> None:
    side, idx = st.session_state[LB]
    st.session_state[LB] = (side, min(max(idx + delta, 0), n - 1))


@st.dialog("Result", width="large", on_dismiss=_close_lightbox)
def lightbox() -> None:
    """One tile enlarged: the pair's regions, label, IoU and rank(s); ← / → (k / j) step
    through the ranked list it belongs to, Esc closes."""
    side, idx = st.session_state[LB]
    its, p_res, p_inp, extra = lists.get(side, lists["a"])
    idx = min(max(idx, 0), len(its) - 1)
    it = its[idx]
    name = loaders.db_image(ds, g, it.db)[0]
    _, cap, gt, pred, _ = tile_look(it, p_res, p_inp)
    left, right = st.columns([3, 2], gap="medium")
    left.image(tile_bytes(it, p_res, p_inp, size=520,
                          mode="both" if regions == "none" else None), width=520)
    with right:
        who = (f"{'A' if side == 'a' else 'B'} · {md(m.name if side == 'a' else name_b)}"
               if name_b else md(m.name))
        st.markdown(f"**{md(name)}**  \nrank **#{it.rank}** of {who} for query "
                    f"{q} · {md(g.qimlist[q])}")
        st.markdown(f"label **{it.label}** ({bi.role(it.label, c.setup)}, {c.setup} setup)")
        if p_res is not None and it.label in ("easy", "hard"):
            st.markdown(f"IoU bbox / seg ({c.protocol}): **{cap.split('IoU ')[-1]}**"
                        if "IoU " in cap else "IoU: no prediction for this pair")
        if extra.get(it.db):
            st.markdown(extra[it.db])
        steps = st.container(horizontal=True, gap="small")
        widgets.step_buttons(lambda: _lb_step(-1, len(its)), lambda: _lb_step(1, len(its)),
                             key="lb", where=steps, what="result",
                             prev_disabled=idx == 0, next_disabled=idx >= len(its) - 1)
        st.button("Open pair", key="lb_open", icon=":material/compare:", shortcut="O",
                  on_click=_open_pair, args=(it.db,))
        widgets.keys_hint(f"{idx + 1} of {len(its)} · ← → or k j step · O opens the pair · "
                          "Esc closes")


if lightbox_open:
    lightbox()
