"""The user-study feature (bench.study, pages/study.py): design balance and determinism,
click scoring, the append-only JSON Lines store, the analysis against hand-computed
numbers, the exact sign test against binomial sums done by hand, and the page itself
(AppTest) on the small embedded demo."""

from __future__ import annotations

import json
import math
import os
import pickle
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench import study as S
from bench.formats.revisited import load_gnd

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- a tiny dataset

@pytest.fixture
def gnd(tmp_path):
    """3 queries, 12 database images; per query 2 easy and 2 hard positives, 1 junk."""
    rng = np.random.default_rng(5)
    gnd = []
    for _ in range(3):
        idx = rng.permutation(12)
        gnd.append({"easy": idx[:2].tolist(), "hard": idx[2:4].tolist(),
                    "junk": idx[4:5].tolist(), "bbx": [1.0, 2.0, 30.0, 40.0]})
    path = tmp_path / "gnd_rtiny.pkl"
    with open(path, "wb") as f:
        pickle.dump({"imlist": [f"db{k}" for k in range(12)],
                     "qimlist": [f"q{k}" for k in range(3)], "gnd": gnd}, f)
    return load_gnd(path)


def _positives(gnd):
    return [(q, int(i)) for q in range(gnd.n_queries)
            for i in np.concatenate([gnd.easy[q], gnd.hard[q]])]


# ---------------------------------------------------------------- design

def test_design_is_balanced_across_two_participants(gnd):
    trials = S.make_trials(gnd, _positives(gnd), n_trials=8, seed=3)
    assert len(trials) == 16
    a = S.participant_trials(trials, "P1", seed=3)
    b = S.participant_trials(trials, "P2", seed=3)
    assert S.participant_group("P1") != S.participant_group("P2")
    for mine in (a, b):
        assert len(mine) == 8
        pairs = [t.pair for t in mine]
        assert len(set(pairs)) == 8  # never the same pair twice for one participant
        assert Counter(t.condition for t in mine) == {"with": 4, "without": 4}
    # together they see every pair once with and once without the annotation
    seen = Counter((t.pair, t.condition) for t in a + b)
    assert set(seen.values()) == {1}
    assert {t.pair for t in a} == {t.pair for t in b}
    for p in {t.pair for t in a}:
        assert {c for (pp, c) in seen if pp == p} == {"with", "without"}
    # sampled pairs are positives; hard and easy both present and split evenly
    level = {(q, int(i)): "easy" for q in range(3) for i in gnd.easy[q]}
    level |= {(q, int(i)): "hard" for q in range(3) for i in gnd.hard[q]}
    assert all(level[t.pair] == t.difficulty for t in trials)
    for mine in (a, b):
        hard = Counter(t.condition for t in mine if t.difficulty == "hard")
        assert 0 < hard["with"] + hard["without"] < 8
        assert abs(hard["with"] - hard["without"]) <= 1


def test_design_is_deterministic_by_seed(gnd):
    pos = _positives(gnd)
    t1 = S.make_trials(gnd, pos, n_trials=6, seed=11)
    t2 = S.make_trials(gnd, list(reversed(pos)), n_trials=6, seed=11)
    assert t1 == t2
    assert (S.participant_trials(t1, "P3", seed=11)
            == S.participant_trials(t2, " P3 ", seed=11))
    others = [S.make_trials(gnd, pos, n_trials=6, seed=s) for s in range(12, 18)]
    assert any(o != t1 for o in others)
    orders = {tuple(t.trial_id for t in S.participant_trials(t1, f"P{k}", seed=11))
              for k in (1, 3, 5, 7, 9)}
    assert len(orders) > 1  # participants of one group get their own orders


def test_design_validates_its_input(gnd):
    pos = _positives(gnd)
    with pytest.raises(ValueError, match="even"):
        S.make_trials(gnd, pos, n_trials=5, seed=0)
    with pytest.raises(ValueError, match="only 12 positive pairs"):
        S.make_trials(gnd, pos, n_trials=14, seed=0)
    with pytest.raises(ValueError, match="method"):
        S.make_trials(gnd, pos, n_trials=4, seed=0, source="method")
    # junk pairs are not positives: ignored
    junk = [(q, int(i)) for q in range(3) for i in gnd.junk[q]]
    with pytest.raises(ValueError, match="only 0 positive"):
        S.make_trials(gnd, junk, n_trials=2, seed=0)
    m = S.make_trials(gnd, pos, n_trials=4, seed=0, source="method", method="m1")
    assert {t.method for t in m} == {"m1"} and {t.source for t in m} == {"method"}
    only_hard = S.make_trials(gnd, pos, n_trials=6, seed=0, hard_fraction=1.0)
    assert {t.difficulty for t in only_hard} == {"hard"}


def test_stored_design_keeps_its_pairs(gnd, tmp_path):
    pos = _positives(gnd)
    data = S.StudyData(gnd=gnd, gt={p: [SQUARE] for p in pos}, preds=None, images=None)
    design = S.freeze_design(S.StudyDesign(study="s", dataset=gnd.name, source="ground_truth",
                                           n_trials=6, seed=4), data)
    assert design.pairs == tuple(t.pair for t in S.make_trials(gnd, pos, n_trials=6, seed=4)
                                 if t.group == 0)
    path = tmp_path / "s.jsonl"
    stored = S.ensure_design(path, design)
    assert stored.created and stored.same_design(design)
    assert S.ensure_design(path, replace(design, seed=99)) == stored  # the file's design wins
    assert S.read_study(path).design == stored
    # the labels change (some pairs lose theirs): the stored pairs still give the same trials
    fewer = S.StudyData(gnd=gnd, gt={p: [SQUARE] for p in pos[::2]}, preds=None, images=None)
    assert S.trials_from_design(stored, fewer) == S.make_trials(gnd, pos, n_trials=6, seed=4)
    with pytest.raises(ValueError, match="not an easy or hard positive"):
        S.build_trials(gnd, [(0, int(gnd.junk[0][0])), pos[0]])
    with pytest.raises(ValueError, match="twice"):
        S.build_trials(gnd, [pos[0], pos[0]])


def test_participant_group_parity():
    assert [S.participant_group(p) for p in ("P1", "P2", "p03", "10", "anna7")] == [1, 0, 1, 0, 1]
    assert S.participant_group("anna") == S.participant_group(" anna ")
    with pytest.raises(ValueError):
        S.participant_trials([], "  ", seed=0)


# ---------------------------------------------------------------- click scoring

SQUARE = np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]])


@pytest.mark.parametrize(("x", "y", "inside"), [
    (15, 15, True), (10, 10, True), (20, 20, True),  # interior and corners
    (20.9, 15, True),  # pixel column 20: on the right edge (boundary counts)
    (21.0, 15, False), (9.99, 15, False), (15, 9.5, False), (15, 21.2, False),
    (-0.5, 15, False), (5, 5, False), (float("nan"), 15, False),
])
def test_click_inside_square(x, y, inside):
    assert S.click_in_region(x, y, [SQUARE]) is inside


def test_click_inside_union_and_concave():
    # an L shape: the notch (15..20, 15..20) is outside
    ell = np.array([[0, 0], [20, 0], [20, 10], [10, 10], [10, 20], [0, 20]], dtype=float)
    assert S.click_in_region(5, 15, [ell])
    assert S.click_in_region(15, 5, [ell])
    assert not S.click_in_region(15, 15, [ell])
    far = SQUARE + 100
    assert S.click_in_region(115, 115, [ell, far])
    assert not S.click_in_region(60, 60, [ell, far])


def _trial(q=0, i=1, cond="with", diff="easy"):
    return S.Trial(trial_id=f"q{q}-i{i}-{cond}", q=q, i=i, query=f"q{q}", image=f"db{i}",
                   difficulty=diff, condition=cond, group=0, source="ground_truth")


def test_response_correctness():
    t = _trial()
    hit = S.make_response(t, study="s", participant="P1", answer="found", rt_s=2.0,
                          click=(15, 15), gt_shapes=[SQUARE])
    miss = S.make_response(t, study="s", participant="P1", answer="found", rt_s=2.0,
                           click=(50, 50), gt_shapes=[SQUARE])
    claim = S.make_response(t, study="s", participant="P1", answer="found", rt_s=2.0)
    no = S.make_response(t, study="s", participant="P1", answer="not found", rt_s=2.0)
    assert (hit.correct, miss.correct, claim.correct, no.correct) == (True, False, True, False)
    assert hit.click_inside is True and miss.click_inside is False and claim.click_inside is None
    with pytest.raises(ValueError):
        S.make_response(t, study="s", participant="P1", answer="maybe", rt_s=1.0)
    with pytest.raises(ValueError):
        S.make_response(t, study="s", participant="P1", answer="not found", rt_s=1.0,
                        click=(1, 1), gt_shapes=[SQUARE])
    with pytest.raises(ValueError):
        S.make_response(t, study="s", participant="P1", answer="found", rt_s=-1.0)


# ---------------------------------------------------------------- storage

def test_jsonl_round_trip_with_a_malformed_line(tmp_path):
    path = S.study_file(tmp_path / "studies", "pilot-1")
    design = S.StudyDesign(study="pilot-1", dataset="rtiny", source="ground_truth",
                           n_trials=4, seed=1, created="2025-01-01T00:00:00+00:00")
    S.append_design(path, design)
    t = _trial()
    r1 = S.make_response(t, study="pilot-1", participant="P1", answer="found", rt_s=1.25,
                         click=(12.5, 13.0), gt_shapes=[SQUARE])
    r2 = S.make_response(_trial(i=2, cond="without"), study="pilot-1", participant="P1",
                         answer="not found", rt_s=3.5)
    S.append_response(path, r1)
    with open(path, "ab") as f:  # a torn write: half a record, no newline
        f.write(b'{"kind": "response", "study": "pil')
    S.append_response(path, r2)  # must start on a fresh line and stay intact
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n[1, 2]\n" + json.dumps({"kind": "response", "answer": "found"}) + "\n")
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[1].startswith('{"kind": "response"') and lines[3].endswith("}")

    log = S.read_study(path)
    assert log.design == design
    assert log.responses == [r1, r2]
    assert [(p.line, p.file) for p in log.problems] == [(3, str(path)), (6, str(path)),
                                                        (7, str(path))]
    assert "not valid JSON" in log.problems[0].why
    assert "line 3" in str(log.problems[0]) and str(path) in str(log.problems[0])
    assert "missing field" in log.problems[2].why
    # reading never changes the file; appending never rewrites what is there
    before = path.read_bytes()
    S.read_study(path)
    assert path.read_bytes() == before
    S.append_response(path, r1)
    assert path.read_bytes().startswith(before)
    assert S.read_study(path).responses == [r1, r2, r1]


def test_study_file_names(tmp_path):
    assert S.study_file(tmp_path, "a.b_c-1") == tmp_path / "a.b_c-1.jsonl"
    for bad in ("", "../x", "a/b", ".hidden", "a b"):
        with pytest.raises(ValueError):
            S.study_file(tmp_path, bad)
    assert S.read_study(tmp_path / "none.jsonl").responses == []


def test_csv_export():
    r = S.make_response(_trial(), study="s", participant="P1", answer="found", rt_s=1.5,
                        click=(15, 15), gt_shapes=[SQUARE], timestamp="T")
    text = S.responses_csv([r]).splitlines()
    assert text[0].split(",")[:3] == ["study", "participant", "trial_id"]
    row = dict(zip(text[0].split(","), text[1].split(","), strict=True))
    assert row["click_x"] == "15.0" and row["correct"] == "True" and row["rt_s"] == "1.5"


# ---------------------------------------------------------------- analysis

def _resp(pid, q, i, cond, answer, rt, click=None, inside=None, diff="easy"):
    return S.Response(study="s", participant=pid, trial_id=f"q{q}-i{i}-{cond}", q=q, i=i,
                      query=f"q{q}", image=f"db{i}", difficulty=diff, condition=cond,
                      source="ground_truth", answer=answer, rt_s=rt, timestamp="T",
                      click=click, click_inside=inside)


def test_analysis_against_hand_computed_values():
    # pair (0,1): A with (click inside, 2 s), B without (not found, 6 s)
    # pair (0,2): A without (found, no click, 3 s), B with (click outside, 5 s)
    rs = [_resp("A", 0, 1, "with", "found", 2.0, (1, 1), True),
          _resp("B", 0, 1, "without", "not found", 6.0, diff="easy"),
          _resp("A", 0, 2, "without", "found", 3.0, diff="hard"),
          _resp("B", 0, 2, "with", "found", 5.0, (9, 9), False, diff="hard"),
          _resp("A", 0, 1, "with", "not found", 9.0)]  # a repeat: ignored
    a = S.analyse(rs, n_boot=500, seed=1)
    json.dumps(a, allow_nan=False)  # JSON-ready
    assert a["n_responses"] == 4 and a["n_repeats_ignored"] == 1 and a["n_participants"] == 2
    w, wo = a["conditions"]["with"], a["conditions"]["without"]
    assert (w["n"], w["n_clicks"], w["accuracy"], w["click_accuracy"]) == (2, 2, 0.5, 0.5)
    assert (w["rt_mean"], w["rt_median"], w["found_rate"]) == (3.5, 3.5, 1.0)
    assert (wo["n"], wo["n_clicks"], wo["accuracy"], wo["click_accuracy"]) == (2, 0, 0.5, None)
    assert (wo["rt_mean"], wo["rt_median"], wo["found_rate"]) == (4.5, 4.5, 0.5)
    # bootstrap intervals: within the sample's range, around the estimate
    for s, lo_hi in ((w, (2.0, 5.0)), (wo, (3.0, 6.0))):
        lo, hi = s["rt_mean_ci"]
        assert lo_hi[0] <= lo <= s["rt_mean"] <= hi <= lo_hi[1]
        assert 0.0 <= s["accuracy_ci"][0] <= s["accuracy"] <= s["accuracy_ci"][1] <= 1.0
    assert a == S.analyse(rs, n_boot=500, seed=1)  # seeded
    # per difficulty
    assert a["by_difficulty"]["easy"]["with"] == {"n": 1, "accuracy": 1.0, "rt_median": 2.0}
    assert a["by_difficulty"]["hard"]["with"] == {"n": 1, "accuracy": 0.0, "rt_median": 5.0}
    # paired by participant: A with 1/1 vs without 1/1 (tie), 2 s vs 3 s (faster with);
    # B with 0/1 vs without 0/1 (tie), 5 s vs 6 s (faster with)
    pp = a["paired_participants"]
    assert pp["n"] == 2
    assert (pp["accuracy"]["better_with"], pp["accuracy"]["ties"]) == (0, 2)
    assert pp["accuracy"]["p_sign"] == 1.0 and pp["accuracy"]["mean_diff"] == 0.0
    assert (pp["time"]["faster_with"], pp["time"]["faster_without"]) == (2, 0)
    assert pp["time"]["p_sign"] == 0.5  # 2 * (1/2)^2
    assert pp["time"]["median_diff"] == -1.0
    # paired by pair: (0,1) only with correct; (0,2) only without correct
    assert a["paired_pairs"] == {"n": 2, "only_with_correct": 1, "only_without_correct": 1,
                                 "ties": 0, "p_mcnemar": 1.0}
    rows = S.summary_rows(a)
    assert [r["condition"] for r in rows] == ["with annotation", "without annotation"]


def test_analysis_of_nothing():
    a = S.analyse([], n_boot=10)
    assert a["conditions"]["with"]["n"] == 0 and a["conditions"]["with"]["accuracy"] is None
    assert a["conditions"]["with"]["accuracy_ci"] == [None, None]
    assert a["paired_pairs"]["p_mcnemar"] == 1.0
    json.dumps(a, allow_nan=False)


@pytest.mark.parametrize(("plus", "minus", "p"), [
    (8, 1, 2 * (1 + 9) / 2**9),  # 0.0390625
    (1, 8, 2 * (1 + 9) / 2**9),
    (10, 0, 2 / 2**10),
    (3, 3, 1.0),  # 2 * (1+6+15+20)/64 = 1.3125 -> capped at 1
    (6, 2, 2 * (1 + 8 + 28) / 2**8),  # 0.2890625
    (0, 0, 1.0),
])
def test_sign_test_against_hand_computed_binomial(plus, minus, p):
    assert math.isclose(S.sign_test(plus, minus), p, rel_tol=0, abs_tol=1e-15)


# ---------------------------------------------------------------- the page (AppTest)

@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    from bench.demo import build_demo
    return build_demo(tmp_path_factory.mktemp("demo") / "demo", scale="small")


def _button(at, label):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0]


def test_page_runs_two_trials_and_shows_results(small_demo, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BENCH_DEMO_DIR", str(small_demo.root))
    monkeypatch.setenv("BENCH_STUDY_BUTTONS", "1")  # buttons even with the click component
    study_dir = tmp_path / "studies"
    at = AppTest.from_file(str(REPO / "pages" / "study.py"), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert any("synthetic" in m.value.lower() for m in at.caption) or any(
        "synthetic" in m.value.lower() for m in at.info)
    at.text_input(key="study_dir").set_value(str(study_dir))
    at.text_input(key="study_name").set_value("apptest")
    at.number_input(key="study_n_trials").set_value(4)
    at.text_input(key="study_participant").set_value("P1")
    at.run()
    _button(at, "Start").click()
    at.run()
    assert not at.exception, at.exception
    path = study_dir / "apptest.jsonl"
    _button(at, "Found it").click()
    at.run()
    _button(at, "Can't find it").click()
    at.run()
    assert not at.exception, at.exception
    log = S.read_study(path)
    assert log.problems == []
    assert log.design is not None and log.design.n_trials == 4 and len(log.design.pairs) == 4
    assert [r.answer for r in log.responses] == ["found", "not found"]
    lines = [ln for ln in path.read_text().splitlines() if '"kind": "response"' in ln]
    assert len(lines) == 2
    assert all(r.participant == "P1" and r.rt_s >= 0 for r in log.responses)
    assert len({r.trial_id for r in log.responses}) == 2

    at.radio(key="study_mode").set_value("Results")
    at.run()
    assert not at.exception, at.exception
    assert len(at.dataframe) >= 1
    assert os.path.exists(path)


def test_page_method_source_records_the_method(small_demo, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BENCH_DEMO_DIR", str(small_demo.root))
    monkeypatch.setenv("BENCH_STUDY_BUTTONS", "1")  # buttons even with the click component
    at = AppTest.from_file(str(REPO / "pages" / "study.py"), default_timeout=30)
    at.run()
    at.text_input(key="study_dir").set_value(str(tmp_path))
    at.text_input(key="study_name").set_value("method-run")
    at.selectbox(key="study_source").set_value("local-sp")
    at.number_input(key="study_n_trials").set_value(2)
    at.text_input(key="study_participant").set_value("P2")
    at.run()
    _button(at, "Start").click()
    at.run()
    _button(at, "Found it").click()
    at.run()
    _button(at, "Found it").click()
    at.run()
    assert not at.exception, at.exception
    assert at.success and "thank you" in at.success[0].value.lower()
    log = S.read_study(tmp_path / "method-run.jsonl")
    assert log.design.source == "method" and log.design.method == "local-sp"
    assert [(r.source, r.method) for r in log.responses] == [("method", "local-sp")] * 2
    assert sorted(r.condition for r in log.responses) == ["with", "without"]


def test_cli_study_json_and_table(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "s.jsonl"
    for r in (_resp("A", 0, 1, "with", "found", 2.0, (1, 1), True),
              _resp("B", 0, 1, "without", "not found", 6.0)):
        S.append_response(path, r)
    with open(path, "a") as fh:
        fh.write("{broken\n")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "bench", "study", str(path), "--json"],
                         cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["n_responses"] == 2
    assert d["conditions"]["with"]["accuracy"] == 1.0
    assert d["conditions"]["without"]["accuracy"] == 0.0
    assert "line 3" in d["skipped_lines"][0] and "line 3" in out.stderr
    table = subprocess.run([sys.executable, "-m", "bench", "study", str(path)], cwd=root,
                           capture_output=True, text=True)
    assert table.returncode == 0 and "with annotation" in table.stdout
