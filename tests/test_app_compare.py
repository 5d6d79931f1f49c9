"""The Compare page, the two-method pair view and the Query page's second ranking, run
headless with AppTest on the small demo.

Expected numbers come from the engine called here (``bench.compare.compare_folder``,
``evaluate_revisited`` / ``evaluate_pixel``) and from scipy on deltas computed in the
test; the page's strings are re-made with this file's own formatting.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from bench import render
from bench.compare import compare_folder
from bench.compare_report import to_latex
from tests.test_app import app, ok, page, shown, stay_on, text_of
from tests.test_app import expected as expected  # noqa: F401 - a fixture
from tests.test_app import small_demo as small_demo  # noqa: F401 - a fixture

pytest.importorskip("streamlit")

A, B = "local-sp", "global-hist"


@pytest.fixture(autouse=True)
def compare_env(small_demo, tmp_path_factory, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("BENCH_DEMO_DIR", str(small_demo.root))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "app_cache"))
    monkeypatch.setenv("BENCH_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))
    monkeypatch.setenv("BENCH_UPLOAD_DIR", str(tmp_path / "uploads"))


def pp(x: float) -> str:
    return f"{100 * x:+.2f}"


def fp(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def metric_values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def p_table(at) -> dict[str, dict[str, str]]:
    """The p-value table: test name (first word) -> column -> value."""
    t = next(t.value for t in at.table if "test (two-sided)" in t.value.columns)
    return {row["test (two-sided)"].split()[0]: dict(row) for _, row in t.iterrows()}


@pytest.fixture
def twin_copy(small_demo, tmp_path):  # noqa: F811
    """A copy of the demo with a third method "twin" whose files are local-sp's."""
    root = tmp_path / "bench"
    shutil.copytree(small_demo.root, root)
    for rel in ("image-level/{}/rdemo.npy", "pixel-level/{}/matching_result/prdemo.npy"):
        dst = root / "results" / rel.format("twin")
        dst.parent.mkdir(parents=True)
        shutil.copy(root / "results" / rel.format(A), dst)
    return root


# ---------------------------------------------------------------- statistics panel

def test_stats_panel_equals_bench_compare_and_scipy(small_demo, expected):  # noqa: F811
    at = page(app(m=A, m2=B), "compare")
    assert [t.value for t in at.title] == ["Compare"]
    assert at.multiselect(key="w_cmp").value == [A, B]
    assert at.selectbox(key="w_m_cmp").value == A and at.selectbox(key="w_m2_cmp").value == B
    assert at.selectbox(key="w_cmetric").value == "mAP/medium"  # the sidebar's setup
    comp = compare_folder(small_demo.root, "rdemo", [A, B])
    s = comp.stats(A, B, "mAP/medium")
    shown = metric_values(at)
    assert shown["Mean Δ (A − B)"] == pp(s.mean_delta)
    assert shown["95% CI of mean Δ"] == f"{100 * s.ci[0]:+.1f} … {100 * s.ci[1]:+.1f}"
    assert shown["Wins / ties / losses (A)"] == f"{s.wins} / {s.ties} / {s.losses}"
    assert shown["Effect size d_z"] == f"{s.d_z:+.2f}"
    ptab = p_table(at)
    assert ptab["paired"]["p"] == fp(s.p["t"])
    assert ptab["Wilcoxon"]["p"] == fp(s.p["wilcoxon"])
    assert ptab["permutation"]["p"] == fp(s.p["permutation"])
    assert len(ptab["paired"]) == 2  # no Holm column with two methods

    # independently: the per-query APs of each method, their deltas, scipy
    a = expected[A, "official", "rev"]["medium"].ap
    b = expected[B, "official", "rev"]["medium"].ap
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    assert (s.wins, s.losses, s.ties) == (wins, losses, d.size - wins - losses)
    assert s.mean_delta == pytest.approx(d.mean(), abs=1e-12)
    assert s.p["t"] == pytest.approx(stats.ttest_rel(a[keep], b[keep]).pvalue, rel=1e-9)
    assert s.p["wilcoxon"] == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-9)
    lead, lag, n_win = (A, B, wins) if d.mean() > 0 else (B, A, losses)
    text = text_of(at)
    assert (f"**{lead}** beats **{lag}** on {n_win} of {d.size} queries" in text)
    assert f"mean {100 * abs(d.mean()):+.1f} AP, p = {fp(s.p['t'])} (paired t" in text


def test_pair_metric_and_its_table(small_demo, expected):  # noqa: F811
    at = page(app(m=A, m2=B), "compare")
    at.selectbox(key="w_cmetric").select("IoU-seg/pairs").run()
    ok(at)
    # independently: every easy / hard pair either method predicted, IoU 0 without one
    pa = expected[A, "official", "pix"].pairs
    pb = expected[B, "official", "pix"].pairs
    keys = sorted(set(pa) | set(pb))
    d = np.array([pa.get(k, (0.0, 0.0))[1] - pb.get(k, (0.0, 0.0))[1] for k in keys])
    d[np.abs(d) < 1e-9] = 0.0
    shown = metric_values(at)
    assert shown["Wins / ties / losses (A)"] == (
        f"{(d > 0).sum()} / {(d == 0).sum()} / {(d < 0).sum()}")
    assert shown["Mean Δ (A − B)"] == pp(d.mean())
    assert p_table(at)["paired"]["p"] == fp(stats.ttest_1samp(d, 0.0).pvalue)
    assert "pairs" in text_of(at)
    # the pairs table: one row per pair, sorted by the seg delta
    df = next(x.value for x in at.dataframe if "Δ seg" in x.value.columns)
    assert len(df) == len(keys)
    assert list(df["Δ seg"]) == sorted(df["Δ seg"], reverse=True)
    row = df.iloc[0]
    q, i = int(row["query"]), int(row["db"])
    assert row[f"{A} seg"] == pytest.approx(100 * pa.get((q, i), (0, 0))[1])
    assert row[f"{B} bbox"] == pytest.approx(100 * pb.get((q, i), (0, 0))[0])


def test_identical_methods_tie_everywhere(twin_copy):
    at = page(app(src="folder", root=twin_copy, m=A, m2="twin", cmp=f"{A},twin"), "compare")
    assert at.multiselect(key="w_cmp").value == [A, "twin"]
    for metric in at.selectbox(key="w_cmetric").options:
        at.selectbox(key="w_cmetric").select(metric).run()
        ok(at)
        shown = metric_values(at)
        wtl = shown["Wins / ties / losses (A)"].split(" / ")
        assert wtl[0] == "0" and wtl[2] == "0" and int(wtl[1]) > 0, metric
        assert shown["Mean Δ (A − B)"] == "+0.00", metric
        assert all(r["p"] == "1.000" for r in p_table(at).values()), metric
        assert "tie on all" in text_of(at), metric


def test_three_methods_get_holm(twin_copy):
    at = page(app(src="folder", root=twin_copy, m=A, m2=B, cmp=f"{A},{B},twin"), "compare")
    comp = compare_folder(twin_copy, "rdemo", sorted([A, B, "twin"]))
    s = comp.stats(A, B, "mAP/medium")
    ptab = p_table(at)
    for test, key in (("paired", "t"), ("Wilcoxon", "wilcoxon"), ("permutation", "permutation")):
        assert ptab[test]["p"] == fp(s.p[key])
        assert ptab[test]["p, Holm (3 pairs)"] == fp(s.p_holm[key])
    assert "Holm-corrected over 3 pairs" in text_of(at)
    every = next(x.value for x in at.dataframe if "Holm t" in x.value.columns)
    assert len(every) == 3


def test_a_is_the_sidebars_method(twin_copy):
    at = page(app(src="folder", root=twin_copy, m=A, m2="twin", cmp=f"{A},twin"), "compare")
    at.selectbox(key="w_m").select(B).run()  # the sidebar: a method not compared joins
    ok(at)
    assert at.multiselect(key="w_cmp").value == [B, A, "twin"]
    assert at.selectbox(key="w_m_cmp").value == B
    at.multiselect(key="w_cmp").unselect(B).run()  # removed here: A = the first left
    ok(at)
    assert at.multiselect(key="w_cmp").value == [A, "twin"]
    assert at.selectbox(key="w_m_cmp").value == A
    ok(at.run())
    assert at.selectbox(key="w_m").value == A
    assert at.multiselect(key="w_cmp").value == [A, "twin"]


def test_exports_are_the_engines(small_demo):  # noqa: F811
    at = page(app(m=A, m2=B), "compare")
    comp = compare_folder(small_demo.root, "rdemo", sorted([A, B]))
    code = [c.value for c in at.code]
    assert to_latex(comp, test="t", alpha=0.05, correction="holm").strip() in [
        c.strip() for c in code]
    labels = [b.label for b in at.get("download_button")]
    assert {"Statistics CSV", "Per-query CSV", "LaTeX table"} <= set(labels)


# ---------------------------------------------------------------- navigation

def test_a_scatter_point_opens_the_query_with_both_methods():
    at = page(app(m=A, m2=B), "compare")
    assert len(at.get("plotly_chart")) == 1
    at.session_state["cmp_scatter"] = {"selection": {
        "points": [{"customdata": [2, -1], "curve_number": 0, "point_index": 0}],
        "point_indices": [0], "box": [], "lasso": []}}
    ok(at.run())
    assert [t.value for t in at.title] == ["Query"]
    assert at.session_state["s_q"] == 2
    assert at.session_state["s_m"] == A and at.session_state["s_m2"] == B


def test_a_query_row_opens_the_query_page_with_both_rankings(expected):  # noqa: F811
    at = page(app(m=A, m2=B), "compare")
    df = next(x.value for x in at.dataframe if "winner" in x.value.columns)
    q = int(df.iloc[0]["query"])
    at.session_state["cmp_queries"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    ok(at.run())
    stay_on(at, "query")
    ok(at.run())
    assert [t.value for t in at.title] == ["Query"]
    assert at.session_state["s_q"] == q and at.selectbox(key="w_m2_query").value == B
    # the two lists, against the ranks files read here
    ra, rb = expected[A, "ranks"], expected[B, "ranks"]
    k = at.selectbox(key="w_k").value
    n = min(k, ra.shape[0])
    # the two rankings as tiles side by side (A: qtile_<r>, B: qtile_b<r>), each caption
    # with the image's exact rank in the other ranking (the whole column, no look-up depth)
    tiles_a = [b.key for b in at.button if (b.key or "").startswith("pair_")]
    tiles_b = [b.key for b in at.button if (b.key or "").startswith("pairb_")]
    assert tiles_a == [f"pair_{r}" for r in range(1, n + 1)]
    assert tiles_b == [f"pairb_{r}" for r in range(1, n + 1)]
    col_a, col_b = ra[:, q].tolist(), rb[:, q].tolist()
    text = shown(" ".join(el.value for el in at.get("caption")))
    for r in range(n):
        i = col_b[r]
        ra_i = col_a.index(i) + 1
        d = ra_i - (r + 1)
        want = "new" if ra_i > k else f"▲{d}" if d > 0 else f"▼{-d}" if d < 0 else "="
        name_b = expected["gnd"].imlist[i] if i < expected["gnd"].n_db else None
        assert f"{want} · in A #{ra_i}" in text, (r, want)
        if name_b:
            assert f"**{name_b}**" in text
        assert f"in B #{col_b.index(col_a[r]) + 1}" in text


def test_a_pair_row_opens_both_predictions(expected):  # noqa: F811
    at = page(app(m=A, m2=B), "compare")
    df = next(x.value for x in at.dataframe if "Δ seg" in x.value.columns)
    q, i = int(df.iloc[0]["query"]), int(df.iloc[0]["db"])
    at.session_state["cmp_pairs"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    ok(at.run())
    stay_on(at, "pair")
    ok(at.run())
    assert [t.value for t in at.title] == ["Pair"]
    assert (at.session_state["s_q"], at.session_state["s_i"]) == (q, i)
    assert at.selectbox(key="w_m2_pair").value == B
    both = next(t.value for t in at.table if "Δ (A − B)" in t.value.columns)
    va = expected[A, "official", "pix"].pairs.get((q, i))
    vb = expected[B, "official", "pix"].pairs.get((q, i))
    for n, kind in enumerate(("bbox", "seg")):
        row = both.iloc[n]
        assert row["IoU"] == kind
        assert row["A"] == (f"{100 * va[n]:.2f}%" if va else "—")
        assert row["B"] == (f"{100 * vb[n]:.2f}%" if vb else "—")
        if va and vb:
            assert row["Δ (A − B)"] == f"{100 * (va[n] - vb[n]):+.2f}"
    legend = shown(" ".join(m.value for m in at.markdown))
    assert f"A: {A} (solid)" in legend and f"B: {B} (dashed)" in legend
    # "Compare with" none: back to one method
    at.selectbox(key="w_m2_pair").select("").run()
    ok(at)
    assert not any("Δ (A − B)" in t.value.columns for t in at.table)
    assert "prediction (outline)" in " ".join(m.value for m in at.markdown)


def test_compare_with_on_the_pair_page(expected):  # noqa: F811
    q, i = min(expected[A, "official", "pix"].pairs)
    at = page(app(m=A, q=q, i=i), "pair")
    assert at.selectbox(key="w_m2_pair").value == ""
    at.selectbox(key="w_m2_pair").select(B).run()
    ok(at)
    assert at.query_params.get("m2") in (B, [B])
    assert any("Δ (A − B)" in t.value.columns for t in at.table)


def test_a_broken_second_method_does_not_stop_the_pages(twin_copy, expected):  # noqa: F811
    bad = twin_copy / "results" / "image-level" / "twin" / "rdemo.npy"
    np.save(bad, np.zeros((3, 7), dtype=np.int64))  # another dataset's shape
    badm = twin_copy / "results" / "pixel-level" / "twin" / "matching_result" / "prdemo.npy"
    badm.write_bytes(b"not a numpy file")
    at = page(app(src="folder", root=twin_copy, m=A, m2="twin", cmp=f"{A},twin"), "compare")
    assert str(bad) in shown("\n".join(e.value for e in at.error))
    assert len(at.get("file_uploader")) == 2  # the upload panel, to replace it
    at = page(at, "query")
    assert str(bad) in shown("\n".join(e.value for e in at.error))
    assert [b for b in at.button if (b.key or "").startswith("pair_")]  # A's tiles
    q, i = min(expected[A, "official", "pix"].pairs)
    at = ok(app(src="folder", root=twin_copy, m=A, m2="twin", q=q, i=i))
    at = page(at, "pair")
    assert str(badm) in shown("\n".join(e.value for e in at.error))
    assert at.table and len(at.image) >= 1  # A's IoU table and picture


def test_one_method_only_offers_the_upload(small_demo, tmp_path):  # noqa: F811
    root = tmp_path / "one"
    shutil.copytree(small_demo.root, root)
    for lvl in ("image-level", "pixel-level"):
        shutil.rmtree(root / "results" / lvl / B)
    at = page(app(src="folder", root=root), "compare")
    assert "needs two or more methods" in text_of(at)
    assert len(at.get("file_uploader")) == 2
    assert not at.get("plotly_chart")


# ---------------------------------------------------------------- the picture

def test_overlay_two_draws_both_outlines():
    img = Image.new("RGB", (200, 160), (128, 128, 128))
    gt = [np.array([[20, 20], [120, 20], [120, 120], [20, 120]], float)]
    pa = np.array([[30, 30], [110, 30], [110, 110], [30, 110]], float)
    pb = np.array([[60, 40], [180, 40], [180, 140], [60, 140]], float)
    out = np.asarray(render.overlay_two(img, gt, pa, pb, line_width=2))

    def count(color) -> int:
        return int(np.all(out == np.array(color, np.uint8), axis=-1).sum())

    assert count(render.PRED_A_COLOR) > 100 and count(render.PRED_B_COLOR) > 100
    # B is dashed: along its top edge (y = 40, x from 70 to 170) some pixels are B's
    # colour and some are not
    edge = np.all(out[40, 70:170] == np.array(render.PRED_B_COLOR, np.uint8), axis=-1)
    assert 0.3 < edge.mean() < 0.9
    # A is solid along its left edge away from B
    assert np.all(np.all(out[40:100, 30] == np.array(render.PRED_A_COLOR, np.uint8), axis=-1))
    # no B: the same picture as the one-method overlay with A's colour
    one = np.asarray(render.overlay(img, gt, pa, line_width=2, pred_color=render.PRED_A_COLOR))
    assert np.array_equal(np.asarray(render.overlay_two(img, gt, pa, None, line_width=2)), one)
    assert math.isclose(out.mean(), out.mean())  # a real picture, not NaN


def test_other_method_ranks_are_exact_past_any_lookup_depth():
    """bench.app.rankings.ranks_in: the rank of an image anywhere in a long ranking (a
    1,000-row look-up used to print "> #1000"), None only when a truncated ranking lacks it."""
    from bench.app.rankings import rank_text, ranks_in

    rng = np.random.default_rng(5)
    n = 300_000
    col = rng.permutation(n + 10)[:n]  # a truncated ranking: 10 indices never ranked
    ranks = np.stack([col, col[::-1]], axis=1)  # two queries
    absent = sorted(set(range(n + 10)) - set(col.tolist()))
    want = [int(col[0]), int(col[999]), int(col[1000]), int(col[2416]), int(col[-1])]
    got = ranks_in(ranks, 0, [*want, absent[0]])
    assert [got[d] for d in want] == [1, 1000, 1001, 2417, n]
    assert got[absent[0]] is None and rank_text(got[absent[0]]) == "not ranked"
    assert ranks_in(ranks, 1, [int(col[0])]) == {int(col[0]): n}
    dup = np.array([[3], [5], [3], [7]])  # a repeated index: its first position
    assert ranks_in(dup, 0, [3, 7]) == {3: 1, 7: 4}
