"""The user study's design (docs/PROTOCOLS.md §7.2): catch trials that cannot be told
from positives by what is drawn, one meeting per query object, practice outside the
study, enough catch trials, hard negatives, the plan, exclusion rules in the definition.

Datasets: the synthetic one of ``tests/study_synth.py`` (70 queries like ROxford5k, or
300 for the large designs of the distribution tests) and, for the command line, the
70-query data of ``benchmarks/make_realsize.py --quick``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bench.study import design as D
from tests.study_synth import polygon_area, synthetic

REPO = Path(__file__).resolve().parents[1]
CONDS = "none,ground_truth,method:m1"
ANNOTATED = ("ground_truth", "method:m1")


def _make(s, **kw):
    args = {"study": "s", "gnd": s["gnd"], "gt": s["gt"], "conditions": CONDS,
            "n_trials": 40, "catch": 0.3, "seed": 11, "preds": s["preds"],
            "ious": s["ious"], "hard_negatives": s["hard"], "sizes": s["sizes"]}
    args.update(kw)
    return D.make_definition(**args)


@pytest.fixture(scope="module")
def syn70(tmp_path_factory):
    return synthetic(tmp_path_factory.mktemp("syn70"))


@pytest.fixture(scope="module")
def syn300(tmp_path_factory):
    return synthetic(tmp_path_factory.mktemp("syn300"), n_queries=300, n_db=900, seed=8)


def _sequences(d, n):
    return [(j % d.n_rows, d.trials_for(j % d.n_rows, f"P{j}")) for j in range(n)]


def test_region_strategy_scores_at_chance_on_catch_trials(syn70):
    """A participant answering "here" exactly when a region is drawn: in the annotated
    conditions its "here" rate is the same on catch trials as on positives (within one
    trial per participant), so its log-linear d' is about 0; in the old design (no
    region on any catch trial) the same strategy scored a d' of about 3.9."""
    d = _make(syn70, n_trials=60, catch=0.4)
    for _row, seq in _sequences(d, 3 * d.n_rows):
        for c in ANNOTATED:
            pos = [t for t in seq if t.condition == c and t.kind == "positive"]
            cat = [t for t in seq if t.condition == c and t.kind == "catch"]
            here_pos = sum(t.shows_region() for t in pos)
            here_cat = sum(t.shows_region() for t in cat)
            assert len(cat) >= 4
            assert abs(here_cat - here_pos / len(pos) * len(cat)) <= 1.0, (c, here_pos,
                                                                           here_cat)
            h = (here_pos + 0.5) / (len(pos) + 1)  # log-linear, written here
            f = (here_cat + 0.5) / (len(cat) + 1)
            assert abs(stats.norm.ppf(h) - stats.norm.ppf(f)) < 0.6
        # and the unaided condition draws nothing anywhere
        assert not any(t.shows_region() for t in seq if t.condition == "none")
    # catch trials in ground_truth draw a decoy, never a scoring region
    cat = [t for t in d.trials if t.kind == "catch"]
    assert all(not t.region and t.is_decoy("ground_truth") for t in cat)
    assert all(t.shows_region("ground_truth") for t in cat)


def test_own_predictions_first_then_decoys_scaled_into_the_image(syn70):
    d = _make(syn70)
    preds = syn70["preds"]["m1"]
    sizes = syn70["sizes"]
    for t in d.trials:
        if t.kind != "catch":
            continue
        p = t.predictions["m1"]
        if p is None:
            assert not t.is_decoy("method:m1")
            continue
        if preds.get(t.pair) is not None and not t.is_decoy("method:m1"):
            assert np.allclose(np.asarray(p), preds[t.pair])  # its own, on a negative
        else:
            assert t.is_decoy("method:m1")
            w, h = sizes[t.i]
            assert t.image_size == (w, h)
            arr = np.asarray(p)
            # inside the image (the sources' quads are inside theirs, up to 5% jitter)
            assert arr[:, 0].min() > -0.1 * w and arr[:, 0].max() < 1.1 * w
            assert arr[:, 1].min() > -0.1 * h and arr[:, 1].max() < 1.1 * h
    # a decoy is another study positive's polygon, scaled by the ratio of image sizes
    src_polys = {t.pair: np.asarray(t.predictions["m1"]) for t in d.trials
                 if t.kind == "positive" and t.predictions["m1"] is not None}
    t = next(t for t in d.trials if t.kind == "catch" and t.is_decoy("method:m1"))
    dec = np.asarray(t.predictions["m1"])
    found = False
    for (q, i), poly in src_polys.items():
        if q == t.q:
            continue
        sw, sh = sizes[i]
        dw, dh = sizes[t.i]
        if np.allclose(poly * [dw / sw, dh / sh], dec):
            found = True
    assert found
    assert D.scale_into([np.array([[10.0, 20.0]])], (100, 200), (50, 400))[0] == ((5.0, 40.0),)


def test_catch_regions_as_often_and_as_large_as_positives(syn300):
    """Large design: per annotated condition the share of catch trials with a region
    equals that of positives within one trial per participant, and the regions' areas
    (as a share of the image) and horizontal positions do not differ (two-sample KS,
    p > 0.05)."""
    d = _make(syn300, n_trials=270, catch=0.4, seed=5)
    assert d.meetings == 1
    for _row, seq in _sequences(d, d.n_rows):
        for c in ANNOTATED:
            pos = [t for t in seq if t.condition == c and t.kind == "positive"]
            cat = [t for t in seq if t.condition == c and t.kind == "catch"]
            here_pos = sum(t.shows_region() for t in pos)
            here_cat = sum(t.shows_region() for t in cat)
            assert abs(here_cat - here_pos / len(pos) * len(cat)) <= 1.0

    def area_and_x(t, c):
        _kind, polys = t.annotation(c)
        w, h = t.image_size
        a = sum(polygon_area(p) for p in polys) / (w * h)
        x = float(np.mean(np.concatenate(polys)[:, 0])) / w
        return a, x

    for c in ANNOTATED:
        pos = [area_and_x(t, c) for t in d.trials if t.kind == "positive"
               and t.shows_region(c)]
        cat = [area_and_x(t, c) for t in d.trials if t.kind == "catch" and t.shows_region(c)]
        assert len(cat) >= 60
        for j in (0, 1):
            p = stats.ks_2samp([v[j] for v in pos], [v[j] for v in cat]).pvalue
            assert p > 0.05, (c, j, p)


def test_no_participant_meets_a_query_twice_and_practice_is_outside(syn70):
    d = _make(syn70, n_trials=60, catch=0.3)
    practice_q = {t.q for t in d.practice}
    assert practice_q and not practice_q & {t.q for t in d.trials}
    assert d.practice_queries == sorted(practice_q)
    assert len(d.practice) == 2 and sorted(t.kind for t in d.practice) == ["catch",
                                                                            "positive"]
    for _row, seq in _sequences(d, 4 * d.n_rows):
        assert len(seq) == 60
        qs = Counter(t.q for t in seq)
        assert max(qs.values()) == 1
    assert d.meetings == 1 and not d.allow_repeats


def test_a_query_twice_is_refused_with_the_numbers_unless_allowed(syn70):
    with pytest.raises(ValueError, match=r"71 trials .* need 71 different queries.*70 "
                                         r"usable queries.*at most 70.*allow repeats"):
        _make(syn70, n_trials=71)
    d = _make(syn70, n_trials=100, allow_repeats=True)
    assert d.allow_repeats and d.meetings == 2
    js = json.loads(json.dumps(d.to_json()))
    assert js["allow_repeats"] is True
    assert D.StudyDefinition.from_json(js).allow_repeats
    assert any("repeats allowed" in w for w in D.design_warnings(d))


def test_catch_trials_are_hard_negatives_with_random_fallback(syn70):
    d = _make(syn70)
    g = syn70["g"]
    for t in d.trials:
        if t.kind != "catch":
            continue
        assert t.i not in g[t.q]["easy"] + g[t.q]["hard"] + g[t.q]["junk"]
        assert t.negative == "hard"
        # the best-ranked negative of its query
        best = next(i for i, _r in syn70["hard"][t.q]
                    if i not in g[t.q]["easy"] + g[t.q]["hard"] + g[t.q]["junk"])
        assert t.i == best and t.negative_rank == 3
    assert d.catch_sources == {"hard": d.n_catch, "random": 0}
    d2 = _make(syn70, hard_negatives={})
    assert d2.catch_sources == {"hard": 0, "random": d2.n_catch}
    assert any("random negatives" in w for w in D.design_warnings(d2))
    assert d2.to_json()["catch_sources"] == {"hard": 0, "random": d2.n_catch}


def test_enough_catch_trials_and_the_warning(syn70):
    d = _make(syn70, n_trials=40, catch=0.3)
    assert d.n_catch == 12 and d.catch_per_condition == 4
    assert not any("below the minimum" in w for w in D.design_warnings(d))
    small = _make(syn70, n_trials=20, catch=0.25)
    assert small.catch_per_condition == 1
    assert any("1 catch trials per condition" in w and "minimum of 4" in w
               for w in D.design_warnings(small))


def test_plan_shape_and_summary(syn70):
    d = _make(syn70)
    out = D.plan(d, 5)
    assert [p["participant"] for p in out["participants"]] == [f"plan-{j}" for j in
                                                               range(1, 6)]
    assert [p["group"] for p in out["participants"]] == [0, 1, 2, 0, 1]
    for p in out["participants"]:
        assert len(p["trials"]) == 40 + len(d.practice)
        for t in p["trials"]:
            assert set(t) == {"query", "image", "condition", "catch", "region", "decoy",
                              "practice"}
            assert not t["decoy"] or (t["region"] and t["catch"])
        assert sum(t["practice"] for t in p["trials"]) == len(d.practice)
    s = out["summary"]
    assert s["ground_truth"]["catch_region_share"] == 1.0
    assert s["none"]["catch_region"] == 0
    m = s["method:m1"]
    assert abs(m["catch_region_share"] - m["positive_region_share"]) <= 1 / 4 + 1e-9
    assert out["min_catch_per_condition"] >= 4
    with pytest.raises(ValueError):
        D.plan(d, 0)


def test_exclusion_rules_and_end_screen_fields_round_trip(syn70):
    d = _make(syn70, exclusions={"fast_ms": 250, "min_practice_accuracy": 0.5},
              debrief="Thanks, {code}.", contact="Ask jane@example.org")
    js = json.loads(json.dumps(d.to_json()))
    assert js["exclusions"]["fast_ms"] == 250 and js["exclusions"]["max_hidden_ms"] == 60000
    d2 = D.StudyDefinition.from_json(js)
    assert d2.exclusions == d.exclusions and d2.debrief == "Thanks, {code}."
    assert d2.contact == "Ask jane@example.org"
    assert D.ExclusionRules().to_json() == {
        "min_completed": 1.0, "max_false_alarm_rate": 0.5, "fast_ms": 200.0,
        "max_fast_share": 0.1, "max_hidden_ms": 60000.0, "min_practice_accuracy": None}
    with pytest.raises(ValueError, match="unknown exclusion rule"):
        _make(syn70, exclusions={"fastest": 1})
    with pytest.raises(ValueError, match="share in"):
        D.ExclusionRules(max_false_alarm_rate=2)
    bad = d.to_json()
    bad["trials"][-1]["decoy"] = {"nonsense": True}
    with pytest.raises(ValueError, match="decoy"):
        D.StudyDefinition.from_json(bad)
    # a version-2 definition (before decoys) still reads, with the defaults
    old = d.to_json()
    old["v"] = 2
    for key in ("exclusions", "allow_repeats", "min_catch", "hard_top", "debrief", "contact"):
        old.pop(key)
    assert D.StudyDefinition.from_json(old).exclusions == D.ExclusionRules()


@pytest.fixture(scope="module")
def realsize(tmp_path_factory):
    out = tmp_path_factory.mktemp("realsize") / "data"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_realsize.py"), "--quick",
                    "--out", str(out)], check=True, capture_output=True, cwd=REPO)
    return out


def test_cli_plan_on_a_70_query_dataset(realsize, tmp_path):
    """`study plan --json` of a 40-trial, 30%-catch, three-condition study of a 70-query
    dataset: at least 4 catch trials per condition for every participant, catch trials
    with a region as often as positives per annotated condition, one meeting per query;
    nothing is written."""
    env = {"BENCH_STUDY_DIR": str(tmp_path / "studies"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "bench", "study", "plan", "rs", "--root",
                        str(realsize), "--dataset", "roxford5k", "--conditions",
                        "none,ground_truth,method:plain", "--trials", "40", "--catch", "0.3",
                        "--seed", "3", "--participants", "6", "--json"],
                       capture_output=True, text=True, cwd=REPO, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["participants"]) == 6 and out["min_catch_per_condition"] >= 4
    for p in out["participants"]:
        rec = [t for t in p["trials"] if not t["practice"]]
        assert len({t["query"] for t in rec}) == 40
        assert not {t["query"] for t in p["trials"] if t["practice"]} & {
            t["query"] for t in rec}
        for c in ("ground_truth", "method:plain"):
            pos = [t for t in rec if t["condition"] == c and not t["catch"]]
            cat = [t for t in rec if t["condition"] == c and t["catch"]]
            assert len(cat) >= 4
            share = sum(t["region"] for t in pos) / len(pos)
            assert abs(sum(t["region"] for t in cat) - share * len(cat)) <= 1.0
    assert not (tmp_path / "studies").exists() or not any((tmp_path / "studies").iterdir())


def test_cli_new_prints_catch_counts_and_power_and_power_prints_a_number(realsize, tmp_path):
    env = {"BENCH_STUDY_DIR": str(tmp_path / "studies"), "PATH": "/usr/bin:/bin"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "bench", "study", *args],
                              capture_output=True, text=True, cwd=REPO, env=env)

    r = cli("new", "rs", "--root", str(realsize), "--dataset", "roxford5k", "--conditions",
            "none,ground_truth,method:plain", "--trials", "40", "--catch", "0.3", "--seed",
            "3", "--sims", "2", "--participants", "3,6")
    assert r.returncode == 0, r.stderr
    assert "catch trials: 12 (12 hard negatives, 0 random), at least 4 per condition" in r.stdout
    assert "power (hit_rate +0.1 in ground_truth vs none, 2 simulations each" in r.stdout
    assert "warning:" not in r.stdout
    r = cli("new", "rs2", "--root", str(realsize), "--dataset", "roxford5k", "--conditions",
            "none,ground_truth", "--trials", "71", "--catch", "0.3", "--seed", "3")
    assert r.returncode == 2 and "need 71 different queries" in r.stderr
    r = cli("power", "rs", "--sims", "2", "--participants", "3,6", "--effect", "0.15",
            "--json")
    assert r.returncode == 0, r.stderr
    pw = json.loads(r.stdout)
    assert [g["participants"] for g in pw["grid"]] == [3, 6] and pw["effect"] == 0.15
    r = cli("power", "rs", "--sims", "2", "--participants", "3,6", "--measure", "dprime")
    assert r.returncode == 0, r.stderr
    assert "participants needed for 80% power: " in r.stdout
    r = cli("plan", "rs", "--participants", "2")
    assert r.returncode == 0 and "plan-2 (group 1):" in r.stdout
    r = cli("report", "rs", "--sims", "3")
    assert r.returncode == 2 and "only go with" in r.stderr


def test_experimenter_page_shows_the_design_flow_exclusions_and_models(tmp_path, monkeypatch):
    """The dashboard: the plan summary of the study set up, the flow table, the excluded
    participant with the rule, and the mixed-model effects."""
    from streamlit.testing.v1 import AppTest

    from bench.demo import build_demo
    from bench.study.store import create_study

    demo = build_demo(tmp_path / "demo", scale="small")
    data = tmp_path / "studies"
    monkeypatch.setenv("BENCH_DEMO_DIR", str(demo.root))
    monkeypatch.setenv("BENCH_STUDY_DIR", str(data))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    store, _ = create_study("pilot", "rdemo", conditions="none,ground_truth", n_trials=8,
                            catch=0.5, seed=5, data_dir=data, allow_repeats=True)
    for k, pid in enumerate(["P01", "P02", "P03", "P04", "P05"]):
        store.assign(pid)
        for j, t in enumerate(store.trials(pid)):
            if t.kind == "positive" and (j + k) % 3:
                x, y = (float(v) for v in np.asarray(t.region[0]).mean(axis=0))
                store.record(pid, t.id, answer="click", x=x, y=y, browser_ms=900 + 10 * j)
            elif t.kind == "catch" and pid == "P05":  # clicks every empty image
                store.record(pid, t.id, answer="click", x=1.0, y=1.0, browser_ms=800)
            else:
                store.record(pid, t.id, answer="not_present", browser_ms=1500 + j)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.query_params["study"] = "pilot"
    at.session_state["_painted"] = True
    at = at.run()
    at = at.switch_page("pages/study.py").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [e.label for e in at.expander]
    assert any(lab.startswith("Design: 4 catch trials") and "every query met 2 time(s)"
               in lab for lab in labels), labels
    assert "Excluded participants (1) and why" in labels
    frames = [d.value for d in at.dataframe]
    flow = next(f for f in frames if "step" in f.columns)
    steps = dict(zip(flow["step"], flow["participants"], strict=True))
    assert steps["analysed"] == 4 and steps["opened the link"] == 5
    assert steps["excluded: false_alarms (false-alarm rate on catch trials above 50%)"] == 1
    out = next(f for f in frames if "excluded by" in f.columns)
    assert list(out["participant"]) == ["P05"] and list(out["excluded by"]) == [
        "false_alarms"]
    design = next(f for f in frames if "catch trials with a region" in f.columns)
    row = design[design["condition"] == "ground-truth region"].iloc[0]
    assert row["catch trials with a region"] == "100.0%" and row["decoys"] == 4
    text = "\n".join(str(c.value) for c in at.caption)
    assert "correct ~ condition + (1 | participant) + (1 | item)" in text
