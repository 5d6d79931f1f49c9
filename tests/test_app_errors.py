"""The Errors page, the Query page's region tiles and the GPR1200 worst-categories table,
run headless with AppTest on the small demo.

The expected failure types are recomputed here with a plain loop over the ranks file and
the engine's pair IoUs (docs/PROTOCOLS.md §5.2), not read back from bench.triage; the
oracle numbers (mAP@k with a fix) come from bench.triage, which tests/test_triage.py checks
against its own plain implementation.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from bench.app.format import md
from bench.evaluate import load_pixel_inputs
from bench.formats.revisited import load_gnd, load_ranks
from bench.metrics.pixel import evaluate_pixel
from bench.metrics.revisited import scan_ranks
from bench.triage import FAILURES, LOCALISATION_TYPES, triage
from tests.test_app import app, demo_env, ok, page, pct, small_demo  # noqa: F401 (fixtures)

pytest.importorskip("streamlit")

METHOD = "local-sp"


@pytest.fixture(scope="module")
def engine(small_demo):  # noqa: F811
    """Ground truth, ranks and pair IoUs of the demo's methods under both protocols."""
    g = load_gnd(small_demo.gnd)
    out = {"gnd": g}
    for name, files in small_demo.methods.items():
        ranks = np.asarray(load_ranks(files["ranks"], g))
        inputs = load_pixel_inputs(g, pair_labels=small_demo.pair_labels,
                                   labels_root=small_demo.labels_root,
                                   matches=files["matches"])
        out[name, "ranks"] = ranks
        for proto in ("official", "strict"):
            out[name, proto] = evaluate_pixel(g, inputs.gt, inputs.preds,
                                              ranks=scan_ranks(ranks, g), protocol=proto,
                                              image_sizes=inputs.sizes)
    return out


def plain_failures(g, ranks, pairs, *, setup="medium", k=100, t=0.5, col=0) -> dict:
    """``{(q, i): failure type or None}`` by the rules of §5.2, written out plainly."""
    out = {}
    for q in range(g.n_queries):
        easy, hard = set(g.easy[q].tolist()), set(g.hard[q].tolist())
        junk = set(g.junk[q].tolist()) | (easy if setup == "hard" else set())
        positives = (easy | hard) if setup == "medium" else hard - easy
        column = ranks[:, q].tolist()
        for i in sorted(easy | hard):
            if i not in positives:
                out[q, i] = None
                continue
            if i in column:
                pos = column.index(i)
                a = pos - sum(1 for x in column[:pos] if x in junk)
            else:
                a = None
            v = pairs.get((q, i))
            if a is None or a >= k:
                out[q, i] = "missed"
            elif v is None:
                out[q, i] = "no_region"
            elif v[col] > t:
                out[q, i] = "ok"
            elif v[col] <= 0.1:
                out[q, i] = "wrong_place"
            else:
                out[q, i] = "mislocalised"
    return out


def errors_page(**params):
    return page(app(m=METHOD, **params), "errors")


def table(at):
    return at.dataframe[0].value


def chart(at, title: str) -> dict:
    """The Plotly figure (JSON) whose title starts with *title*."""
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        if spec.get("layout", {}).get("title", {}).get("text", "").startswith(title):
            return spec
    raise AssertionError(f"no chart {title!r}")


def shown_failures(df) -> dict:
    return {(int(q), int(i)): (None if f.startswith("—") else f)
            for q, i, f in zip(df["q"], df["i"], df["failure"], strict=True)}


# ---------------------------------------------------------------- the taxonomy

def test_errors_page_shows_the_taxonomy_of_every_pair(engine):
    g, ranks = engine["gnd"], engine[METHOD, "ranks"]
    pairs = engine[METHOD, "official"].pairs
    at = errors_page()
    assert [t.value for t in at.title] == ["Errors"]
    want = plain_failures(g, ranks, pairs)
    df = table(at)
    # every easy and hard pair exactly once, with the failure type of the plain rules
    n_pairs = sum(len(set(g.easy[q].tolist()) | set(g.hard[q].tolist()))
                  for q in range(g.n_queries))
    assert len(df) == n_pairs == len(want)
    assert shown_failures(df) == want
    # the counts chart shows those counts, in the order of the types
    spec = chart(at, "Pairs per failure type")
    assert spec["data"][0]["x"] == list(FAILURES)
    assert spec["data"][0]["y"] == [sum(1 for f in want.values() if f == t) for t in FAILURES]
    # the cards: mAP@k is the pixel metric's, the fixes are bench.triage's
    res = triage(g, ranks, pairs, protocol="official")
    assert res.map_at_k == pytest.approx(engine[METHOD, "official"].setups["medium"].map_at_k)
    cards = {m.label: (m.value, m.delta) for m in at.metric}
    assert cards["mAP@k"][0] == pct(res.map_at_k)
    for label, fix in (("fix retrieval (missed)", "missed"),
                       ("fix localisation errors", LOCALISATION_TYPES),
                       ("perfect localiser", "localisation"), ("fix everything", "all")):
        assert cards[label] == (pct(res.recovered[fix]),
                                f"{100 * (res.recovered[fix] - res.map_at_k):+.2f} points")
    gains = chart(at, "mAP@k gained")
    assert gains["data"][0]["text"] == [f"{100 * res.gain[f]:+.2f}" for f in
                                        ("missed", "no_region", "wrong_place", "mislocalised",
                                         "ok", LOCALISATION_TYPES, "localisation", "all")]
    assert "A fix can lower mAP@k" in " ".join(c.value for c in at.caption)
    # hard negatives: one row per negative, 1-based ranks
    neg = at.dataframe[1].value
    assert len(neg) == len(res.hard_negatives) > 0
    assert neg["rank"].tolist() == [h.rank + 1 for h in res.hard_negatives]
    assert len(at.get("download_button")) == 1


def test_default_order_is_worst_iou_first(engine):
    df = table(errors_page())
    v = df["bbox IoU"].to_numpy(dtype=float)
    nan = np.isnan(v)
    n_nan = int(nan.sum())
    assert nan[:n_nan].all() and not nan[n_nan:].any()  # no IoU first (it counts 0)
    assert np.all(np.diff(v[n_nan:]) >= 0)
    pairs = engine[METHOD, "official"].pairs
    worst = sorted(b for b, _ in (pairs.get((int(q), int(i))) or (None, None)
                                  for q, i in zip(df["q"], df["i"], strict=True))
                   if b is not None)
    assert np.allclose(v[n_nan:] / 100, worst)


def test_filters_change_the_table(engine):
    g, ranks = engine["gnd"], engine[METHOD, "ranks"]
    pairs = engine[METHOD, "official"].pairs
    want = plain_failures(g, ranks, pairs)
    at = errors_page()
    at.multiselect(key="w_efail").select("ok").run()
    df = table(ok(at))
    assert set(df["failure"]) == {"ok"}
    assert len(df) == sum(1 for f in want.values() if f == "ok")
    at.multiselect(key="w_efail").select("no_region").run()
    df = table(ok(at))
    assert set(df["failure"]) <= {"ok", "no_region"}
    assert len(df) == sum(1 for f in want.values() if f in ("ok", "no_region"))
    at.selectbox(key="w_elab").select("easy").run()
    df = table(ok(at))
    easy = {(q, i) for q in range(g.n_queries) for i in g.easy[q].tolist()}
    assert {(int(q), int(i)) for q, i in zip(df["q"], df["i"], strict=True)} == {
        p for p, f in want.items() if f in ("ok", "no_region") and p in easy}
    # the filters are in the URL
    assert at.query_params["efail"] in ("ok,no_region", ["ok,no_region"])


def test_iou_range_and_rank_filters_from_the_url(engine):
    g, ranks = engine["gnd"], engine[METHOD, "ranks"]
    pairs = engine[METHOD, "official"].pairs
    at = errors_page(elo=0.25, ehi=0.95)
    df = table(at)
    want = {p for p, v in pairs.items() if 0.25 <= v[0] < 0.95
            and p[1] in set(np.concatenate([g.easy[p[0]], g.hard[p[0]]]).tolist())}
    assert {(int(q), int(i)) for q, i in zip(df["q"], df["i"], strict=True)} == want
    assert at.slider(key="w_elo_ehi").value == (0.25, 0.95)
    # the seg IoU instead
    df = table(errors_page(elo=0.25, ehi=0.95, efcol="seg"))
    want = {p for p, v in pairs.items() if 0.25 <= v[1] < 0.95
            and p[1] in set(np.concatenate([g.easy[p[0]], g.hard[p[0]]]).tolist())}
    assert {(int(q), int(i)) for q, i in zip(df["q"], df["i"], strict=True)} == want
    # rank at most 5 (1-based, junk included)
    at = errors_page(ermax=5)
    df = table(at)
    want = set()
    for q in range(g.n_queries):
        col = ranks[:, q].tolist()
        for i in set(g.easy[q].tolist()) | set(g.hard[q].tolist()):
            if i in col and col.index(i) < 5:
                want.add((q, i))
    assert {(int(q), int(i)) for q, i in zip(df["q"], df["i"], strict=True)} == want
    assert df["rank"].max() <= 5


def test_setup_k_and_threshold(engine):
    g, ranks = engine["gnd"], engine[METHOD, "ranks"]
    pairs = engine[METHOD, "official"].pairs
    at = errors_page(eset="hard", ek=5, et=0.8)
    want = plain_failures(g, ranks, pairs, setup="hard", k=5, t=0.8)
    assert shown_failures(table(at)) == want
    assert "— (junk here)" in at.multiselect(key="w_efail").options
    at.number_input(key="w_ek").set_value(3).run()
    assert shown_failures(table(ok(at))) == plain_failures(g, ranks, pairs, setup="hard", k=3,
                                                           t=0.8)


def test_strict_protocol_and_seg_iou(engine):
    g, ranks = engine["gnd"], engine[METHOD, "ranks"]
    pairs = engine[METHOD, "strict"].pairs
    at = errors_page(proto="strict")
    assert shown_failures(table(at)) == plain_failures(g, ranks, pairs)
    at.radio(key="w_ekind").set_value("seg").run()
    ok(at)
    want = plain_failures(g, ranks, pairs, col=1)
    assert shown_failures(table(at)) == want
    spec = chart(at, "Pairs per failure type")
    assert spec["data"][0]["y"] == [sum(1 for f in want.values() if f == t) for t in FAILURES]
    res = triage(g, ranks, pairs, protocol="strict", iou_kind="seg")
    assert {m.label: m.value for m in at.metric}["mAP@k"] == pct(res.map_at_k)
    # official has no seg taxonomy: the choice is not offered and falls back to bbox
    at.radio(key="w_proto").set_value("official").run()
    ok(at)
    assert not [r for r in at.radio if r.key == "w_ekind"]
    assert shown_failures(table(at)) == plain_failures(g, ranks, engine[METHOD, "official"]
                                                       .pairs)


def test_gallery_follows_the_table_and_pages(engine):
    at = errors_page()
    df = table(at)
    first = [k for k in (b.key for b in at.button) if k.startswith("gal_") and k[4].isdigit()]
    assert len(at.image) == min(12, len(df)) == len(first)
    assert first == [f"gal_{q}_{i}" for q, i in zip(df["q"][:12], df["i"][:12], strict=True)]
    at.button(key="next_gal").click().run()
    ok(at)
    second = [k for k in (b.key for b in at.button) if k.startswith("gal_") and k[4].isdigit()]
    assert second == [f"gal_{q}_{i}" for q, i in zip(df["q"][12:24], df["i"][12:24],
                                                     strict=True)]
    # a tile's button opens its pair
    q, i = int(df["q"][12]), int(df["i"][12])
    at.button(key=f"gal_{q}_{i}").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Pair"]
    assert (at.session_state["s_q"], at.session_state["s_i"]) == (q, i)


@pytest.fixture
def demo_copy(small_demo, tmp_path):  # noqa: F811
    root = tmp_path / "bench"
    shutil.copytree(small_demo.root, root)
    return root


def test_a_method_without_pixel_results(demo_copy):
    shutil.rmtree(demo_copy / "results" / "pixel-level" / "global-hist")
    at = page(app(src="folder", root=demo_copy, m="global-hist"), "errors")
    assert not at.error and not at.dataframe
    assert "no pixel-level results" in " ".join(i.value for i in at.info)
    at = page(at, "query")  # the Query page without regions: no region controls
    assert not at.error and not [r for r in at.radio if r.key == "w_qmask"]
    assert len(at.image) >= 2
    at.selectbox(key="w_m").select("local-sp").run()
    at = page(at, "errors")
    assert not at.info and len(at.dataframe) == 2


def test_a_method_without_ranks(demo_copy):
    shutil.rmtree(demo_copy / "results" / "image-level" / "global-hist")
    at = page(app(src="folder", root=demo_copy, m="global-hist"), "errors")
    assert not at.error and not at.dataframe
    assert "ranks file" in " ".join(i.value for i in at.info)


# ---------------------------------------------------------------- query tiles with regions

def _tiles(at) -> list[str]:
    return [im.proto.imgs[0].url for im in at.image[1:]]  # [0] is the query image


def test_query_tiles_show_regions_row_by_row(engine):
    g, ranks = engine["gnd"], engine[METHOD, "ranks"]
    pairs = engine[METHOD, "official"].pairs
    q = next(q for q in range(g.n_queries)
             if any((q, int(i)) in pairs for i in ranks[:10, q].tolist()))
    at = page(app(m=METHOD, q=q, k=10), "query")
    assert at.radio(key="w_qmask").value == "both"
    # tiles in rank order, row by row, each named in text
    keys = [b.key for b in at.button if b.key.startswith("pair_")]
    assert keys == [f"pair_{r}" for r in range(1, 11)]
    captions = " ".join(c.value for c in at.caption)
    for i in ranks[:10, q].tolist():  # names are text: Markdown-escaped (format.md)
        assert f"**{md(g.imlist[i])}**" in captions
    both = _tiles(at)
    at.radio(key="w_qmask").set_value("none").run()
    none = _tiles(ok(at))
    at.radio(key="w_qmask").set_value("errors").run()
    errs = _tiles(ok(at))
    assert len(both) == len(none) == len(errs) == 10
    for n, i in enumerate(ranks[:10, q].tolist()):
        drawn = (q, i) in pairs  # a labelled pair with a prediction (and a region)
        assert (both[n] != none[n]) == drawn, (n, i)
        assert (errs[n] != none[n]) == drawn
    # pass / fail frames: the threshold recolours exactly the pairs whose IoU it crosses
    at.radio(key="w_qmask").set_value("none").run()
    at.radio(key="w_qframe").set_value("pass").run()
    assert not ok(at).slider(key="w_qt").disabled
    at.slider(key="w_qt").set_value(0.0).run()
    low = _tiles(ok(at))
    at.slider(key="w_qt").set_value(1.0).run()
    high = _tiles(ok(at))
    for n, i in enumerate(ranks[:10, q].tolist()):
        v = pairs.get((q, i))
        assert (low[n] != high[n]) == (v is not None and v[0] > 0.0), (n, i)


# ---------------------------------------------------------------- charts and tables that lead

def test_iou_bins_agree_with_the_range_filter():
    from bench.app import views

    v = np.array([0.0, 0.049, 0.05, 0.35, 0.35000000000000003, 0.9999, 1.0, math.nan])
    edges, counts = views.iou_bins(v)
    assert len(edges) == 20 and edges[0] == (0.0, 0.05) and edges[-1] == (0.95, 1.0)
    assert counts.sum() == 7  # NaN in no bin
    assert counts[0] == 2 and counts[1] == 1 and counts[7] == 2 and counts[19] == 2
    assert views.iou_in_range(v, 0.35, 0.4).tolist() == [False] * 3 + [True, True] + [False] * 3


def test_picked_reads_the_customdata():
    from bench.app import views

    class Ev:
        selection = {"points": [{"point_index": 4, "customdata": 7}]}

    assert views.picked(Ev()) == 7
    Ev.selection = {"points": [{"customdata": [0.25, 0.3, "seg"]}]}
    assert views.picked(Ev()) == [0.25, 0.3, "seg"]
    Ev.selection = {"points": [{"customdata": [5]}]}
    assert views.picked(Ev()) == 5
    Ev.selection = {"points": []}
    assert views.picked(Ev()) is None and views.picked(None) is None


def axis_chart(at, title: str) -> tuple[dict, object]:
    """The Plotly figure (JSON) whose x axis title starts with *title*, and its element."""
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        xt = spec.get("layout", {}).get("xaxis", {}).get("title", {}).get("text", "")
        if xt.startswith(title):
            return spec, el
    raise AssertionError(f"no chart with x axis {title!r}")


def test_per_query_bars_are_sorted_and_named(engine):
    at = app(m=METHOD)
    spec, el = axis_chart(at, "AP · medium")
    rows, bars = spec["data"]  # a full-width click target under every row, the values
    assert rows["customdata"] == bars["customdata"] and rows["y"] == bars["y"]
    from bench.metrics.revisited import evaluate_revisited

    g = engine["gnd"]
    ap = evaluate_revisited(scan_ranks(engine[METHOD, "ranks"], g), g)["medium"].ap
    order = [int(q) for q in bars["customdata"]]
    assert sorted(order) == list(range(g.n_queries))
    vals = [ap[q] for q in order]
    finite = [v for v in vals if not math.isnan(v)]
    assert finite == sorted(finite) and vals[:len(finite)] == finite  # NaN last
    # horizontal bars, worst at the top, every one named and BAR_PX high; clickable
    assert bars["orientation"] == "h" and spec["layout"]["yaxis"]["autorange"] == "reversed"
    assert bars["y"] == [g.qimlist[q] for q in order]  # names, not 0..N
    assert spec["layout"]["height"] >= 20 * g.n_queries
    assert el.proto.selection_mode  # points can be selected


def test_gpr_category_bars_show_every_category_worst_first(small_demo):  # noqa: F811
    from bench.evaluate import run_gpr1200

    imgs, res = run_gpr1200(small_demo.gpr_images, embeddings=small_demo.gpr_embeddings)
    want = {int(c): 100 * float(np.mean(res.ap[imgs.categories == c]))
            for c in np.unique(imgs.categories).tolist()}
    at = page(app(), "gpr1200")
    spec, el = axis_chart(at, "mean AP")
    bars = spec["data"][1]
    cats = [int(c) for c in bars["customdata"]]
    assert sorted(cats) == sorted(want)  # every category once
    means = [float(v) for v in bars["x"]]
    assert means == pytest.approx([want[c] for c in cats])
    assert means == sorted(means)  # worst first
    assert spec["layout"]["height"] >= 20 * len(cats)
    assert el.proto.selection_mode
