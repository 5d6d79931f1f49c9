"""The user study (bench.study; docs/PROTOCOLS.md §7): the Latin square and the design,
scoring, the append-only store (assignment, one answer per trial, sessions, concurrent
writers, torn writes, hostile lines), CSV neutralisation, the analysis against plain
formulas written here (scipy only where it is called separately as the reference), and
the `study` command line. A file of the first, two-condition format is refused with an
error naming it (the last test)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import pickle
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bench.errors import BenchError
from bench.formats.revisited import load_gnd
from bench.study import design as D
from bench.study import records as R
from bench.study import stats as T
from bench.study import store as ST
from bench.study.records import Answer

REPO = Path(__file__).resolve().parents[1]
SQUARE = np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]])
INSIDE, OUTSIDE = (15.0, 15.0), (50.0, 50.0)


# ---------------------------------------------------------------- a tiny dataset

@pytest.fixture
def tiny(tmp_path):
    """4 queries, 30 database images; per query 3 easy, 2 hard, 1 junk; every positive's
    region is SQUARE; method m1 predicts SQUARE + 1 on even positives and the whole image
    on a few negatives; IoUs of m1 and m2 given by hand."""
    rng = np.random.default_rng(5)
    g = []
    for _ in range(4):
        idx = rng.permutation(30)
        g.append({"easy": idx[:3].tolist(), "hard": idx[3:5].tolist(),
                  "junk": idx[5:6].tolist(), "bbx": [1.0, 2.0, 30.0, 40.0]})
    path = tmp_path / "gnd_rtiny.pkl"
    with open(path, "wb") as f:
        pickle.dump({"imlist": [f"db{k}" for k in range(30)],
                     "qimlist": [f"q{k}" for k in range(4)], "gnd": g}, f)
    gnd = load_gnd(path)
    pos = sorted((q, int(i)) for q in range(4) for i in g[q]["easy"] + g[q]["hard"])
    gt = {p: [SQUARE.copy()] for p in pos}
    m1 = {p: (SQUARE + 1 if k % 2 == 0 else None) for k, p in enumerate(pos)}
    for q in range(4):
        neg = [i for i in range(30) if i not in g[q]["easy"] + g[q]["hard"] + g[q]["junk"]]
        for i in neg[:5]:
            m1[(q, i)] = np.array([[0, 0], [99, 0], [99, 99], [0, 99]], dtype=float)
    ious = {"m1": {p: (0.3 + 0.05 * (k % 10), 0.2 + 0.07 * (k % 10)) for k, p in enumerate(pos)},
            "m2": {p: (0.6, 0.55 if k % 3 else 0.1) for k, p in enumerate(pos)}}
    return {"gnd": gnd, "g": g, "gt": gt, "preds": {"m1": m1}, "ious": ious, "pos": pos}


def _definition(tiny, **kw):
    args = {"study": "s1", "gnd": tiny["gnd"], "gt": tiny["gt"],
            "conditions": "none,ground_truth,method:m1", "n_trials": 12, "catch": 0.25,
            "seed": 7, "preds": tiny["preds"], "ious": tiny["ious"],
            "allow_repeats": True}  # 4 queries: a 12-trial study meets each 3 times
    args.update(kw)
    return D.make_definition(**args)


# ---------------------------------------------------------------- the Latin square

@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7])
def test_williams_square_is_balanced(k):
    rows = D.williams_square(k)
    assert len(rows) == (2 * k if k % 2 and k > 1 else k)
    for r in rows:
        assert sorted(r) == list(range(k))
    for col in range(k):  # every column holds every condition equally often
        assert set(Counter(r[col] for r in rows).values()) == {len(rows) // k}
    if k > 1:  # first-order carry-over: each ordered pair adjacent equally often
        adj = Counter((r[j], r[j + 1]) for r in rows for j in range(k - 1))
        assert set(adj) == {(a, b) for a in range(k) for b in range(k) if a != b}
        assert set(adj.values()) == {1 if k % 2 == 0 else 2}
    shuffled = D.square_rows(k, "shuffled")  # k rows, still a Latin square
    assert len(shuffled) == k
    for col in range(k):
        assert sorted(r[col] for r in shuffled) == list(range(k))


def test_parse_conditions():
    assert D.parse_conditions(" none, ground_truth ,method:a") == (
        "none", "ground_truth", "method:a")
    assert D.parse_conditions(["method:a", "method:b"], methods=["a", "b"]) == (
        "method:a", "method:b")
    for bad, why in (("none,none", "twice"), ("gt", "unknown"), ("", "unknown"),
                     ("method:", "method name"), ("method:c", "no pixel results")):
        with pytest.raises(ValueError, match=why):
            D.parse_conditions(bad, methods=["a"])


# ---------------------------------------------------------------- the design

def test_design_counts_pairs_and_balance(tiny):
    d = _definition(tiny)
    g, gnd = tiny["g"], tiny["gnd"]
    assert (d.n_trials, d.n_positive, d.n_catch, d.n_rows) == (12, 9, 3, 3)
    pos = [t for t in d.trials if t.kind == "positive"]
    cat = [t for t in d.trials if t.kind == "catch"]
    level = {(q, int(i)): "easy" for q in range(4) for i in g[q]["easy"]}
    level |= {(q, int(i)): "hard" for q in range(4) for i in g[q]["hard"]}
    assert all(level[t.pair] == t.difficulty and len(t.region) == 1 for t in pos)
    study_queries = {t.q for t in pos}
    for t in cat:  # catch trials are negatives of the study's queries, with no region
        assert t.q in study_queries and not t.region
        assert t.i not in g[t.q]["easy"] + g[t.q]["hard"] + g[t.q]["junk"]
    assert len({t.pair for t in d.trials}) == 12
    # blocks: 3 positives and 1 catch trial each; easy / hard spread evenly
    assert Counter(t.block for t in pos) == {0: 3, 1: 3, 2: 3}
    assert Counter(t.block for t in cat) == {0: 1, 1: 1, 2: 1}
    hard = Counter(t.block for t in pos if t.difficulty == "hard")
    assert max(hard.values()) - min(hard.get(b, 0) for b in range(3)) <= 1
    # practice: outside the study, one of them a negative, each with a condition
    assert len(d.practice) == 2 and not {t.pair for t in d.practice} & {t.pair for t in d.trials}
    assert sorted(t.kind for t in d.practice) == ["catch", "positive"]
    assert all(t.condition in d.conditions for t in d.practice)
    # each participant: every trial once, 3 positives and 1 catch trial per condition;
    # over the 3 rows every trial is shown once in every condition
    seen = Counter()
    for row in range(3):
        mine = d.trials_for(row, f"P{row}")
        assert sorted(t.id for t in mine) == sorted(t.id for t in d.trials)
        assert Counter(t.condition for t in mine if t.kind == "positive") == {
            c: 3 for c in d.conditions}
        assert Counter(t.condition for t in mine if t.kind == "catch") == {
            c: 1 for c in d.conditions}
        seen.update((t.id, t.condition) for t in mine)
    assert len(seen) == 12 * 3 and set(seen.values()) == {1}
    # what is drawn
    t = next(t for t in pos)
    assert t.annotation("none") == ("none", [])
    style, polys = t.annotation("ground_truth")
    assert style == "ground_truth" and np.array_equal(polys[0], SQUARE)
    style, polys = t.annotation("method:m1")
    expect = tiny["preds"]["m1"][t.pair]
    assert style == "prediction" and (polys == [] if expect is None
                                      else np.array_equal(polys[0], expect))
    assert t.iou["m2"] == tiny["ious"]["m2"][t.pair]
    assert gnd.name == d.dataset == "rtiny"


def test_participant_order_is_seeded_and_resumable(tiny):
    d = _definition(tiny)
    a = [t.id for t in d.trials_for(0, "P1")]
    assert a == [t.id for t in d.trials_for(0, " P1 ")]  # the same after a reload
    assert a == [t.id for t in _definition(tiny).trials_for(0, "P1")]  # same seed
    orders = {tuple(t.id for t in d.trials_for(0, f"P{k}")) for k in range(8)}
    assert len(orders) > 1
    other_seeds = {tuple(t.id for t in _definition(tiny, seed=s).trials_for(0, "P1"))
                   for s in range(8, 12)}
    assert other_seeds - {tuple(a)}  # the seed changes the sample or the order
    blocked = _definition(tiny, order="blocked")
    assert blocked.n_rows == 6  # odd k: the Williams design with its mirror
    blocks = [t.block for t in blocked.trials_for(4, "P1")]
    assert blocks == sorted(blocks)


def test_design_json_round_trip_and_checks(tiny):
    d = _definition(tiny)
    d2 = D.StudyDefinition.from_json(json.loads(json.dumps(d.to_json())))
    assert d2.to_json() == d.to_json()
    assert [t.id for t in d2.trials_for(2, "X")] == [t.id for t in d.trials_for(2, "X")]
    bad = d.to_json()
    bad["square"][0] = [0, 0, 1]
    with pytest.raises(ValueError, match="square"):
        D.StudyDefinition.from_json(bad)
    bad = d.to_json()
    bad["trials"][0]["region"] = [[[1e300, 0]]]
    with pytest.raises(ValueError, match="huge"):
        D.StudyDefinition.from_json(bad)
    bad = d.to_json()
    bad["n_trials"] = 13
    with pytest.raises(ValueError, match="n_trials"):
        D.StudyDefinition.from_json(bad)


def test_design_refuses_impossible_studies(tiny):
    with pytest.raises(ValueError, match="at least one positive"):
        _definition(tiny, n_trials=4, catch=0.5)
    with pytest.raises(ValueError, match="only 20 positive pairs"):
        _definition(tiny, n_trials=30, catch=0.1)
    with pytest.raises(ValueError, match="no pixel results"):
        _definition(tiny, conditions="none,method:zz")
    with pytest.raises(ValueError, match="catch share"):
        _definition(tiny, catch=1.0)
    with pytest.raises(ValueError, match="seed"):
        _definition(tiny, seed=-1)
    d = _definition(tiny, require_prediction=True)  # only pairs m1 predicted
    assert all(t.predictions["m1"] is not None for t in d.trials if t.kind == "positive")


# ---------------------------------------------------------------- scoring

@pytest.mark.parametrize(("x", "y", "inside"), [
    (15, 15, True), (10, 10, True), (20, 20, True),  # interior and corners
    (20.9, 15, True),  # pixel column 20: on the right edge (boundary counts)
    (21.0, 15, False), (9.99, 15, False), (15, 9.5, False), (15, 21.2, False),
    (-0.5, 15, False), (5, 5, False), (float("nan"), 15, False), (1e300, 15, False),
])
def test_click_inside_square(x, y, inside):
    assert R.click_in_region(x, y, [SQUARE]) is inside


def test_click_inside_union_and_concave():
    ell = np.array([[0, 0], [20, 0], [20, 10], [10, 10], [10, 20], [0, 20]], dtype=float)
    assert R.click_in_region(5, 15, [ell]) and R.click_in_region(15, 5, [ell])
    assert not R.click_in_region(15, 15, [ell])  # the notch
    assert R.click_in_region(115, 115, [ell, SQUARE + 100])
    assert not R.click_in_region(60, 60, [ell, SQUARE + 100])


def test_score_table():
    assert R.score("positive", "click", *INSIDE, [SQUARE]) == "hit"
    assert R.score("positive", "click", *OUTSIDE, [SQUARE]) == "miss"
    assert R.score("positive", "not_present") == "miss"
    assert R.score("positive", "timeout") == "miss"
    assert R.score("catch", "click", *INSIDE) == "false_alarm"
    assert R.score("catch", "not_present") == "correct_rejection"
    assert R.score("catch", "timeout") == "correct_rejection"
    with pytest.raises(ValueError):
        R.score("catch", "click")
    with pytest.raises(ValueError):
        R.score("positive", "found")


# ---------------------------------------------------------------- hostile lines, CSV

def test_parse_line_never_raises_anything_but_line_error():
    good = R.parse_line(b'{"kind": "x", "n": 1}')
    assert good == {"kind": "x", "n": 1}
    for raw, why in ((b'{"q": ' + b"9" * 5000 + b"}", "not a valid record"),
                     (b"[" * 100_000 + b"]" * 100_000, "nested"),
                     (b'{"x": NaN}', "not"), (b'{"x": Infinity}', "not"),
                     (b"\xff\xfe", "UTF-8"), (b"[1, 2]", "list"), (b'{"a": ', "JSON")):
        with pytest.raises(R.LineError, match=why):
            R.parse_line(raw)


def test_csv_neutralises_formulas():
    rows = [{"participant": v, "x": -3.5, "n": 4} for v in
            ("=HYPERLINK(\"http://x\",\"y\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "P07",
             "a=b", " =x")]
    text = R.to_csv(rows, ["participant", "x", "n"])
    got = list(csv.reader(io.StringIO(text, newline="")))
    assert got[0] == ["participant", "x", "n"]
    cells = [r[0] for r in got[1:]]
    assert cells == ["'=HYPERLINK(\"http://x\",\"y\")", "'+1", "'-2", "'@SUM(A1)", "'\tx",
                     "'\rx", "P07", "a=b", " =x"]
    assert all(r[1] == "-3.5" and r[2] == "4" for r in got[1:])  # numbers stay numbers
    # the answers export goes through the same cell rule
    a = _answer("=cmd|' /C calc'!A0", "q0-i1", "none", "positive", "hit")
    line = R.answers_csv([a]).splitlines()[1]
    assert line.split(",")[1] == "'=cmd|' /C calc'!A0"


# ---------------------------------------------------------------- the store
# (assignment, one answer per trial, sessions, concurrent writers, kill -9, the import of
# JSON Lines studies: tests/test_study_store.py)

@pytest.fixture
def store(tiny, tmp_path):
    return ST.StudyStore.create(_definition(tiny), tmp_path / "studies")


def _answer_all(st, pid, *, hit=True, ms=1000.0):
    st.assign(pid)
    while (nxt := st.next_trial(pid)) is not None:
        _, t = nxt
        if t.kind == "positive":
            st.record(pid, t.id, answer="click", x=INSIDE[0] if hit else OUTSIDE[0],
                      y=INSIDE[1] if hit else OUTSIDE[1], browser_ms=ms)
        else:
            st.record(pid, t.id, answer="not_present", browser_ms=ms)


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(ST.ENV_DATA_DIR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert ST.default_data_dir() == tmp_path / "studies"
    monkeypatch.setenv(ST.ENV_DATA_DIR, str(tmp_path / "elsewhere"))
    assert ST.study_file(None, "a") == tmp_path / "elsewhere" / "a.jsonl"


# ---------------------------------------------------------------- analysis

def _answer(pid, trial, cond, kind, outcome, *, ms=1000.0, row=0, flags=(), answer=None):
    q, i = (int(v[1:]) for v in trial.split("-"))
    if answer is None:
        answer = "click" if outcome in ("hit", "miss", "false_alarm") else "not_present"
    x = y = 1.0 if answer == "click" else None
    return Answer(study="s", participant=pid, trial=trial, q=q, i=i, condition=cond,
                  trial_kind=kind, answer=answer, outcome=outcome, x=x, y=y, browser_ms=ms,
                  server_ms=ms + 200, hidden_ms=0.0, flags=tuple(flags), row=row, index=1,
                  at="T")


def _plain_dprime(h, n_pos, f, n_catch):
    z = statistics.NormalDist().inv_cdf
    return z((h + 0.5) / (n_pos + 1)) - z((f + 0.5) / (n_catch + 1))


def _plain_exact_binomial(b, c):
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    return min(1.0, 2 * sum(math.comb(n, j) for j in range(k + 1)) / 2 ** n)


def test_condition_summary_against_plain_formulas():
    rng = np.random.default_rng(1)
    ans = []
    truth = {}
    for c, (p_hit, p_fa) in {"none": (0.6, 0.3), "ground_truth": (0.9, 0.1)}.items():
        hits = fas = n_pos = n_cat = 0
        times = []
        for k in range(40):
            pid = f"P{k % 5}"
            if k % 4 == 3:
                o = "false_alarm" if rng.random() < p_fa else "correct_rejection"
                ans.append(_answer(pid, f"q{k}-i{k}", c, "catch", o))
                n_cat += 1
                fas += o == "false_alarm"
            else:
                o = "hit" if rng.random() < p_hit else "miss"
                ms = float(rng.uniform(500, 4000))
                flagged = k % 9 == 0
                ans.append(_answer(pid, f"q{k}-i{k}", c, "positive", o, ms=ms,
                                   flags=("hidden",) if flagged else ()))
                n_pos += 1
                hits += o == "hit"
                if not flagged:
                    times.append(ms)
        ans.append(_answer("P0", "q99-i99", c, "positive", "miss", answer="timeout"))
        n_pos += 1
        truth[c] = (hits, n_pos, fas, n_cat, times)
    s = T.condition_summary(ans, ["none", "ground_truth"], n_resamples=999, seed=4)
    for ci, (c, (h, n_pos, f, n_cat, times)) in enumerate(truth.items()):
        r = s[c]
        assert (r["hits"], r["n_positive"], r["false_alarms"], r["n_catch"]) == (h, n_pos, f,
                                                                                 n_cat)
        assert r["timeouts"] == 1 and r["flagged"] == sum(1 for k in range(40)
                                                           if k % 4 != 3 and k % 9 == 0)
        assert r["hit_rate"] == h / n_pos and r["false_alarm_rate"] == f / n_cat
        assert r["accuracy"] == (h + n_cat - f) / (n_pos + n_cat)
        assert math.isclose(r["dprime"], _plain_dprime(h, n_pos, f, n_cat), rel_tol=1e-9)
        # Clopper-Pearson from the beta quantiles
        lo = stats.beta.ppf(0.025, h, n_pos - h + 1)
        hi = stats.beta.ppf(0.975, h + 1, n_pos - h)
        assert np.allclose(r["hit_rate_ci"], [lo, hi], rtol=1e-7)
        tm = r["time_ms"]
        assert tm["n"] == len(times)
        assert tm["median"] == statistics.median(times)
        assert math.isclose(tm["mean"], statistics.fmean(times), rel_tol=1e-12)
        ref = stats.bootstrap((np.array(times),), np.median, n_resamples=999,
                              method="percentile", rng=np.random.default_rng([4, ci, 0]))
        assert tm["median_ci"] == [ref.confidence_interval.low, ref.confidence_interval.high]
        assert min(times) <= tm["median_ci"][0] <= tm["median"] <= tm["median_ci"][1] <= max(
            times)
        assert tm["mean_ci"][0] < tm["mean"] < tm["mean_ci"][1]
    assert T.condition_summary(ans, ["none"], n_resamples=999, seed=4) == {"none": s["none"]}


def test_dprime_and_holm_by_hand():
    # log-linear: H = 8.5/11, F = 1.5/6 -> z(0.772727) - z(0.25)
    assert math.isclose(T.loglinear_dprime(8, 10, 1, 5), 0.7479 - (-0.6745), abs_tol=2e-4)
    assert T.loglinear_dprime(10, 10, 0, 5) is not None  # finite at rates 1 and 0
    assert T.loglinear_dprime(3, 3, 0, 0) is None
    assert T.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert T.holm([0.5, None, 0.2]) == pytest.approx([0.5, None, 0.4])
    assert T.holm([0.6, 0.7]) == [1.0, 1.0]


def _two_condition_rows(values_a, values_b, measure="time_ms"):
    return [{"participant": f"P{k}", "row": 0, "n": 2,
             "conditions": {"a": {measure: va}, "b": {measure: vb}}}
            for k, (va, vb) in enumerate(zip(values_a, values_b, strict=True))]


def test_paired_tests_against_plain_formulas():
    a = np.array([1200.0, 900.0, 1500.0, 1100.0, 1300.0, 980.0])
    b = np.array([1000.0, 950.0, 1100.0, 700.0, 1260.0, 1080.0])
    res = T.paired_tests(_two_condition_rows(a, b), ["a", "b"], "time_ms")
    e = res["pairwise"][0]
    d = a - b  # 200, -50, 400, 400, 40, -100: ties in |d| -> ranks by hand
    assert res["friedman"] is None and e["n"] == 6
    assert e["mean_diff"] == pytest.approx(d.mean()) and e["median_diff"] == np.median(d)
    # paired t by the formula
    sd = math.sqrt(sum((x - d.mean()) ** 2 for x in d) / 5)
    t = d.mean() / (sd / math.sqrt(6))
    assert e["t"]["statistic"] == pytest.approx(t) and e["t"]["df"] == 5
    assert e["t"]["p"] == pytest.approx(2 * stats.t.sf(abs(t), 5))
    assert e["effect"]["dz"] == pytest.approx(d.mean() / sd)
    # |d| ranks: 40->1, 50->2, 100->3, 200->4, 400->5.5, 400->5.5
    wp, wm = 1 + 4 + 5.5 + 5.5, 2 + 3
    assert e["effect"]["rank_biserial"] == pytest.approx((wp - wm) / (wp + wm))
    ref = stats.wilcoxon(a, b)  # scipy called separately (ties: scipy's own method)
    assert e["wilcoxon"]["statistic"] == ref.statistic == wm
    assert e["wilcoxon"]["p"] == pytest.approx(ref.pvalue)
    assert e["wilcoxon"]["p_holm"] == e["wilcoxon"]["p"]


def test_wilcoxon_exact_against_enumeration():
    """Tie-free differences: the exact two-sided p by enumerating all 2^n signs."""
    d = np.array([3.0, -1.0, 4.0, 1.5, 9.0, 2.6, -5.3])
    a, b = d + 10, np.full(d.size, 10.0)
    e = T.paired_tests(_two_condition_rows(a, b), ["a", "b"], "time_ms")["pairwise"][0]
    ranks = stats.rankdata(np.abs(d))
    obs = ranks[d > 0].sum()
    dist = [sum(r for r, s in zip(ranks, signs, strict=True) if s)
            for signs in itertools.product([0, 1], repeat=d.size)]
    lo = sum(w <= obs for w in dist) / len(dist)
    hi = sum(w >= obs for w in dist) / len(dist)
    assert e["wilcoxon"]["p"] == pytest.approx(min(1.0, 2 * min(lo, hi)), abs=1e-12)
    # all differences zero: no evidence either way
    z = T.paired_tests(_two_condition_rows(a, a), ["a", "b"], "time_ms")["pairwise"][0]
    assert z["wilcoxon"]["p"] == 1.0 and z["t"]["p"] is None and z["effect"]["dz"] is None


def test_friedman_and_holm_follow_ups_against_plain_formulas():
    rng = np.random.default_rng(3)
    n, k = 9, 3
    m = rng.normal(size=(n, k)) + np.array([0.0, 0.4, 1.2])
    rows = [{"participant": f"P{j}", "row": 0, "n": 3,
             "conditions": {c: {"hit_rate": float(m[j, ci])} for ci, c in enumerate("xyz")}}
            for j in range(n)]
    rows.append({"participant": "Pmissing", "row": 0, "n": 1,  # not in Friedman
                 "conditions": {"x": {"hit_rate": 0.5}, "y": {"hit_rate": None},
                                "z": {"hit_rate": 0.1}}})
    res = T.paired_tests(rows, list("xyz"), "hit_rate")
    ranks = np.array([stats.rankdata(r) for r in m])  # no ties in continuous data
    rsum = ranks.sum(axis=0)
    chi2 = 12 / (n * k * (k + 1)) * (rsum ** 2).sum() - 3 * n * (k + 1)
    fr = res["friedman"]
    assert fr["n"] == n and fr["statistic"] == pytest.approx(chi2)
    assert fr["p"] == pytest.approx(stats.chi2.sf(chi2, k - 1))
    assert fr["kendall_w"] == pytest.approx(chi2 / (n * (k - 1)))
    pw = res["pairwise"]
    assert [(e["a"], e["b"], e["n"]) for e in pw] == [("x", "y", 9), ("x", "z", 10),
                                                      ("y", "z", 9)]
    ps = [e["wilcoxon"]["p"] for e in pw]
    order = sorted(range(3), key=lambda j: ps[j])
    expect, run = [0.0] * 3, 0.0
    for rank, j in enumerate(order):
        run = max(run, min(1.0, (3 - rank) * ps[j]))
        expect[j] = run
    assert [e["wilcoxon"]["p_holm"] for e in pw] == pytest.approx(expect)


def test_item_tests_pair_the_same_item_across_conditions():
    """An item is a query object; its hit rate per condition over the participants who
    saw it there (hand counts). Query 1: a 2/2, b 0/1 -> d = 1; query 2: a 1/2, b 1/1 ->
    d = -0.5; query 3: a 1/1, b 0/1 -> d = 1; query 4 only in b (left out); a catch
    trial is ignored."""
    ans = [_answer("A", "q1-i1", "a", "positive", "hit"),
           _answer("C", "q1-i5", "a", "positive", "hit"),
           _answer("B", "q1-i1", "b", "positive", "miss"),
           _answer("A", "q2-i2", "a", "positive", "hit"),
           _answer("C", "q2-i2", "a", "positive", "miss"),
           _answer("B", "q2-i2", "b", "positive", "hit"),
           _answer("A", "q3-i3", "a", "positive", "hit"),
           _answer("B", "q3-i3", "b", "positive", "miss"),
           _answer("B", "q4-i4", "b", "positive", "hit"),
           _answer("A", "q5-i4", "b", "catch", "false_alarm")]
    e = T.item_tests(ans, ["a", "b"])["pairwise"][0]
    assert (e["n_items"], e["a_higher"], e["b_higher"], e["ties"]) == (3, 2, 1, 0)
    assert e["mean_diff"] == pytest.approx((1 - 0.5 + 1) / 3)
    assert e["sign_test_p"] == pytest.approx(_plain_exact_binomial(2, 1))
    ref = stats.wilcoxon([1.0, 0.5, 1.0], [0.0, 1.0, 0.0], zero_method="wilcox")
    assert e["wilcoxon"]["p"] == pytest.approx(ref.pvalue)
    # the order of arrival plays no part any more
    assert T.item_tests(ans[::-1], ["a", "b"])["pairwise"][0]["a_higher"] == 2
    # a lopsided case: 9 items all higher in a
    many = []
    for j in range(9):
        many += [_answer(f"X{j}", f"q{j}-i{j}", "a", "positive", "hit"),
                 _answer(f"Y{j}", f"q{j}-i{j}", "b", "positive", "miss")]
    e9 = T.item_tests(many, ["a", "b"])["pairwise"][0]
    assert e9["a_higher"] == 9 and e9["sign_test_p"] == pytest.approx(2 / 2 ** 9)


def test_human_vs_machine_against_hand_counts(tiny):
    d = _definition(tiny, conditions="none,ground_truth")
    pos = [t for t in d.trials if t.kind == "positive"]
    ans = []
    human = {}
    for j, t in enumerate(pos):  # in 'none': 3 answers each, hit count j % 4 (0..3)
        hits = j % 4
        for k in range(3):
            ans.append(_answer(f"P{k}", t.id, "none", "positive",
                               "hit" if k < min(hits, 3) else "miss"))
        ans.append(_answer("G", t.id, "ground_truth", "positive", "hit"))  # not 'none'
        human[t.id] = min(hits, 3) / 3
    hm = T.human_vs_machine(ans, d)
    assert hm["human_condition"] == "none"
    assert [p["hit_rate"] for p in hm["pairs"]] == [human[t.id] for t in pos]
    assert all(p["hit_rate_by_condition"]["ground_truth"] == 1.0 for p in hm["pairs"])
    for m in ("m1", "m2"):
        seg = [tiny["ious"][m][t.pair][1] for t in pos]
        box = [tiny["ious"][m][t.pair][0] for t in pos]
        s = hm["overall"]["methods"][m]
        assert s["mean_iou_seg"] == pytest.approx(sum(seg) / len(seg))
        assert s["success_rate"] == pytest.approx(sum(v > 0.5 for v in seg) / len(seg))
        assert s["success_rate_bbox"] == pytest.approx(sum(v > 0.5 for v in box) / len(box))
        hum = [human[t.id] > 0.5 for t in pos]
        mac = [v > 0.5 for v in seg]
        b = sum(h and not mm for h, mm in zip(hum, mac, strict=True))
        c = sum(mm and not h for h, mm in zip(hum, mac, strict=True))
        assert (s["test"]["human_only"], s["test"]["machine_only"]) == (b, c)
        assert s["test"]["p_exact"] == pytest.approx(_plain_exact_binomial(b, c))
    total = sum(min(j % 4, 3) for j in range(len(pos)))
    assert hm["overall"]["human_hit_rate"] == pytest.approx(total / (3 * len(pos)))
    # without a 'none' condition the human rate pools every condition
    d2 = _definition(tiny, conditions="ground_truth,method:m1")
    t2 = next(t for t in d2.trials if t.kind == "positive")
    hm2 = T.human_vs_machine([_answer("G", t2.id, "ground_truth", "positive", "hit"),
                              _answer("H", t2.id, "method:m1", "positive", "miss")], d2)
    assert hm2["human_condition"] == "all"
    assert next(p for p in hm2["pairs"] if p["trial"] == t2.id)["hit_rate"] == 0.5


def test_report_of_a_simulated_study(store):
    for k, hit in enumerate([True, False, True, True, False, True]):
        _answer_all(store, f"P{k}", hit=hit, ms=900.0 + 100 * k)
    st = ST.read_study_file(store.path)
    rep = T.report(st, n_resamples=199)
    json.dumps(rep, allow_nan=False)
    d = store.definition
    assert rep["n_answers"] == 6 * 12
    assert rep["participants"]["completed"] == 6
    assert [r["assigned"] for r in rep["participants"]["rows"]] == [2, 2, 2]
    for c in d.conditions:  # every participant: 3 positives, 1 catch per condition
        s = rep["conditions"][c]
        assert (s["n_positive"], s["n_catch"], s["participants"]) == (18, 6, 6)
        assert s["hits"] == 3 * 4 and s["false_alarms"] == 0
    assert set(rep["paired"]) == set(T.MEASURES)
    hr = rep["paired"]["hit_rate"]
    assert hr["friedman"]["n"] == 6 and len(hr["pairwise"]) == 3
    # items are query objects; every item shown in every condition after one cycle
    assert rep["items"]["pairwise"][0]["n_items"] == len(
        {t.q for t in d.trials if t.kind == "positive"})
    assert rep["flow"]["analysed"] == 6 and rep["n_participants"] == 6
    assert set(rep["model"]) == {"reference", "correct", "sdt", "time"}
    text = T.format_report(rep)
    assert "Friedman" in text and "sign test" in text and "flow: opened 6" in text


# ---------------------------------------------------------------- command line

def _cli(*args, cwd=REPO, env=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd,
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})))


def test_cli_new_and_report(pixel_benchmark, tmp_path):
    data = tmp_path / "studies"
    root = str(pixel_benchmark.root)
    out = _cli("study", "new", "pilot", "--dataset", "roxford5k", "--root", root,
               "--conditions", f"none,ground_truth,method:{pixel_benchmark.method}",
               "--trials", "9", "--catch", "0.2", "--seed", "5", "--data-dir", str(data),
               "--allow-repeats", "--sims", "0", "--json")  # 8 queries: 9 trials repeat one
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d.pop("power") is None and d.pop("design")["meetings_per_query"] == 2
    assert d == {"study": "pilot", "database": str(data.absolute() / ST.DB_FILE),
                 "platform": "none", "link": "/take?study=pilot", "completion_code": None,
                 "completion_url": None}
    assert "no images folder" in out.stderr
    st = ST.StudyStore.open("pilot", data)
    assert st.definition.n_catch == 2 and st.definition.root == root
    for k in range(4):
        _answer_all(st, f"P{k}", hit=k % 2 == 0)
    rep = _cli("study", "report", "pilot", "--data-dir", str(data), "--json")
    assert rep.returncode == 0, rep.stderr
    r = json.loads(rep.stdout)
    state = st.state()
    assert r["problems"]["skipped_lines"] == []
    hits = {c: sum(a.outcome == "hit" for a in state.answers if a.condition == c)
            for c in st.definition.conditions}
    assert {c: v["hits"] for c, v in r["conditions"].items()} == hits
    assert r["participants"]["completed"] == 4
    for legacy_form in (["study", str(st.path)], ["study", "report", str(st.path)]):
        table = _cli(*legacy_form)
        assert table.returncode == 0 and "flow: opened 4" in table.stdout
    # bad input: exit 2 and one error line
    for args, what in (
            (["study", "new", "pilot", "--dataset", "roxford5k", "--root", root,
              "--conditions", "none", "--trials", "4", "--catch", "0", "--seed", "1",
              "--data-dir", str(data)], "study exists"),
            (["study", "new", "p2", "--dataset", "nope", "--root", root, "--conditions",
              "none", "--trials", "4", "--catch", "0", "--seed", "1", "--data-dir",
              str(data)], "unknown dataset"),
            (["study", "new", "p2", "--dataset", "roxford5k", "--root", root,
              "--conditions", "none,method:zz", "--trials", "4", "--catch", "0", "--seed",
              "1", "--data-dir", str(data)], "no pixel results"),
            (["study", "new", "p2", "--dataset", "roxford5k", "--root", root,
              "--trials", "4"], "missing options"),
            (["study", "report", "nothing", "--data-dir", str(data)], "missing study"),
            (["study", "report", "pilot", "--seed", "3", "--data-dir", str(data)],
             "only go with"),
            (["study", "new", "../x", "--dataset", "roxford5k", "--conditions", "none",
              "--trials", "4", "--catch", "0", "--seed", "1"], "bad study name")):
        res = _cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and what in last and "Traceback" not in res.stderr


def test_cli_new_on_the_demo_without_root(tmp_path, monkeypatch):
    """Without --root the embedded demo is used (here a small build in a temp folder)."""
    from bench.demo import build_demo

    demo = build_demo(tmp_path / "demo", scale="small")
    data = tmp_path / "studies"
    out = _cli("study", "new", "demo-study", "--dataset", "rdemo", "--conditions",
               "none,ground_truth,method:local-sp", "--trials", "6", "--catch", "0.34",
               "--seed", "1", "--allow-repeats", "--sims", "0", "--json", env={"BENCH_DEMO_DIR": str(demo.root),
                                             "BENCH_STUDY_DIR": str(data)})
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["link"] == "/take?study=demo-study"
    assert d["database"] == str(data.absolute() / ST.DB_FILE)
    st = ST.StudyStore.open("demo-study", data)
    assert st.definition.root is None and st.definition.n_catch == 2
    monkeypatch.setenv("BENCH_DEMO_DIR", str(demo.root))
    assert D.images_dir(st.definition) == demo.images  # found through the demo dir
    table = _cli("study", "report", "demo-study", env={"BENCH_STUDY_DIR": str(data)})
    assert table.returncode == 0 and "0 answers" in table.stdout


# ---------------------------------------------------------------- the first format

def test_a_file_of_the_first_format_is_refused_with_an_error(tmp_path):
    """The first study page wrote `design` / `response` records; this version does not read
    them: `study FILE` exits with status 2 and one error line naming the file."""
    path = tmp_path / "pilot-1.jsonl"
    path.write_text(json.dumps({"kind": "design", "study": "pilot-1", "dataset": "rtiny",
                                "source": "ground_truth", "n_trials": 4, "seed": 1}) + "\n"
                    + json.dumps({"kind": "response", "study": "pilot-1", "participant": "P1",
                                  "answer": "found", "rt_s": 1.25}) + "\n")
    for form in (["study", str(path)], ["study", "report", str(path), "--json"]):
        res = _cli(*form)
        assert res.returncode == 2 and res.stdout == ""
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith("error: old study format in ") and str(path) in last
        assert "Traceback" not in res.stderr
    with pytest.raises(BenchError, match="not a study file"):
        ST.read_study_file(path)
