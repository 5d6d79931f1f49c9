"""The user study's analysis (docs/PROTOCOLS.md §7.5): the mixed models against
statsmodels and against simulated studies with a known effect, exclusions and the flow
table, the click criterion of human against machine, and the power estimate.

The simulation test is kept small so that it runs in well under a minute: 12 studies
with a known effect and 12 without, 24 participants x 30 items each (counts below)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import special, stats

from bench.study import design as D
from bench.study import power as PW
from bench.study import stats as T
from bench.study.glmm import fit_glmm, fit_lmm
from bench.study.records import Answer
from tests.study_synth import synthetic

N_SIMS = 12  # per arm (known effect / null) of the simulation test
SIM_PARTICIPANTS, SIM_ITEMS = 24, 30


def _crossed(rng, n_p, n_i, k, beta, sd_p, sd_i, link="logit"):
    """Every participant answers every item, item j in condition (j + p) mod k (a Latin
    square); P(y) = F(beta[0] + beta[c] + u_p + v_i)."""
    u, v = rng.normal(0, sd_p, n_p), rng.normal(0, sd_i, n_i)
    p, i = np.meshgrid(np.arange(n_p), np.arange(n_i), indexing="ij")
    p, i = p.ravel(), i.ravel()
    c = (p + i) % k
    eta = beta[0] + np.where(c > 0, np.asarray(beta)[c], 0.0) + u[p] + v[i]
    prob = special.expit(eta) if link == "logit" else stats.norm.cdf(eta)
    y = (rng.random(len(p)) < prob).astype(float)
    X = np.column_stack([np.ones(len(p))] + [(c == j).astype(float) for j in range(1, k)])
    return y, X, p, i, c


def test_glmm_interval_covers_a_known_effect_and_a_null_is_rarely_significant():
    """12 simulated studies with a condition effect of 0.6 (log odds; participant sd 0.5,
    item sd 0.8) and 12 with none: the 95% interval covers 0.6 in at least 10 of 12 (at
    95% coverage, fewer than 10 has probability 0.02) and the null is significant in at
    most 2 of 12 (at 5%, more than 2 has probability 0.02)."""
    rng = np.random.default_rng(20261204)
    covered = significant = 0
    for _ in range(N_SIMS):
        y, X, p, i, _c = _crossed(rng, SIM_PARTICIPANTS, SIM_ITEMS, 2, [1.0, 0.6], 0.5, 0.8)
        e = fit_glmm(y, X, ["intercept", "c"], {"p": p, "i": i}).effect("c")
        covered += e["ci"][0] <= 0.6 <= e["ci"][1]
        y, X, p, i, _c = _crossed(rng, SIM_PARTICIPANTS, SIM_ITEMS, 2, [1.0, 0.0], 0.5, 0.8)
        significant += fit_glmm(y, X, ["intercept", "c"], {"p": p, "i": i}).effect("c")[
            "p"] < 0.05
    assert covered >= 10, covered
    assert significant <= 2, significant


def test_glmm_without_random_variation_is_the_plain_glm():
    """With no participant or item variation the random sds shrink towards 0 and the
    fixed effects are those of a plain logistic / probit regression (statsmodels GLM)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    for link, fam in (("logit", sm.families.links.Logit()),
                      ("probit", sm.families.links.Probit())):
        y, X, p, i, _c = _crossed(rng, 40, 40, 3, [0.3, 0.8, -0.4], 0.0, 0.0, link=link)
        fit = fit_glmm(y, X, ["i", "a", "b"], {"p": p, "i": i}, link=link)
        glm = sm.GLM(y, X, family=sm.families.Binomial(link=fam)).fit()
        assert np.allclose(fit.beta, glm.params, atol=0.03), (link, fit.beta, glm.params)
        assert np.allclose(fit.se, glm.bse, rtol=0.1)
        assert max(fit.sigma.values()) < 0.2


def test_lmm_matches_statsmodels_mixedlm():
    """The REML LMM with crossed intercepts against statsmodels MixedLM (variance
    components in one group), on an unbalanced data set."""
    import pandas as pd
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(4)
    n_p, n_i = 12, 15
    u, v = rng.normal(0, 0.3, n_p), rng.normal(0, 0.5, n_i)
    rows = [(p, i, (p + i) % 3) for p in range(n_p) for i in range(n_i) if rng.random() < 0.7]
    p, i, c = np.array(rows).T
    y = 7 + 0.2 * (c == 1) - 0.1 * (c == 2) + u[p] + v[i] + rng.normal(0, 0.4, len(p))
    X = np.column_stack([np.ones(len(y)), c == 1, c == 2]).astype(float)
    fit = fit_lmm(y, X, ["i", "a", "b"], {"participant": p, "item": i})
    df = pd.DataFrame({"y": y, "c": c.astype(str), "participant": p, "item": i, "one": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = smf.mixedlm("y ~ c", df, groups="one", re_formula="0",
                          vc_formula={"participant": "0 + C(participant)",
                                      "item": "0 + C(item)"}).fit(reml=True)
    assert np.allclose(fit.beta, ref.fe_params.to_numpy(), atol=1e-4)
    assert np.allclose(fit.se, ref.bse_fe.to_numpy(), rtol=0.02)
    vc = dict(zip(ref.model.exog_vc.names, np.sqrt(ref.vcomp), strict=True))
    assert fit.sigma["participant"] == pytest.approx(vc["participant"], rel=1e-3)
    assert fit.sigma["item"] == pytest.approx(vc["item"], rel=1e-3)
    assert fit.residual_sd == pytest.approx(math.sqrt(ref.scale), rel=1e-4)


# ---------------------------------------------------------------- on a designed study

@pytest.fixture(scope="module")
def design(tmp_path_factory):
    s = synthetic(tmp_path_factory.mktemp("syn"))
    d = D.make_definition(study="m", gnd=s["gnd"], gt=s["gt"],
                          conditions="none,ground_truth,method:m1", n_trials=40, catch=0.3,
                          seed=2, preds=s["preds"], ious=s["ious"],
                          hard_negatives=s["hard"], sizes=s["sizes"])
    return d


def test_sdt_model_recovers_dprime_and_criterion(design):
    """Answers simulated from the SDT model (H, F per condition, crossed random
    intercepts): the probit GLMM's d' and criterion per condition are near the truth and
    its intervals cover it."""
    rates = {"none": (0.70, 0.10), "ground_truth": (0.90, 0.10), "method:m1": (0.75, 0.25)}
    st = PW.simulate_answers(design, 60, rates=rates, sd_participant=0.3, sd_item=0.4,
                             rng=np.random.default_rng(9))
    m = T.model_sdt(st.answers, list(design.conditions))
    assert m["participants"] == 60 and m["items"] == 40
    for c, (h, f) in rates.items():
        zh, zf = stats.norm.ppf(h), stats.norm.ppf(f)
        e = m["conditions"][c]
        assert e["dprime"]["ci"][0] < zh - zf < e["dprime"]["ci"][1], (c, e["dprime"])
        assert e["criterion"]["ci"][0] < -(zh + zf) / 2 < e["criterion"]["ci"][1]
    eff = m["effects"]["ground_truth"]["dprime"]
    assert eff["p"] < 0.05 and eff["estimate"] > 0


def _ans(pid, t, cond, outcome, *, ms=1500.0, hidden=0.0):
    click = outcome in ("hit", "miss", "false_alarm")
    return Answer(study="m", participant=pid, trial=t.id, q=t.q, i=t.i, condition=cond,
                  trial_kind=t.kind, answer="click" if click else "not_present",
                  outcome=outcome, x=1.0 if click else None, y=1.0 if click else None,
                  browser_ms=ms, server_ms=ms + 30, hidden_ms=hidden,
                  flags=("hidden",) if hidden else (), row=0, index=1, at="T")


def test_exclusions_flow_and_the_analysed_set(design):
    """Six participants, one for each rule and two clean ones: the flow table counts
    each rule once (the first that applies), and every figure uses the analysed four...
    here two (clean) plus nothing else."""
    d = design
    seqs = {pid: d.trials_for(0, pid) for pid in ("ok1", "ok2", "short", "fa", "fast",
                                                  "away")}
    answers = []
    for pid, seq in seqs.items():
        for k, t in enumerate(seq):
            if pid == "short" and k >= 30:
                break
            if t.kind == "positive":
                out = "hit" if k % 3 else "miss"
            else:
                out = "false_alarm" if pid == "fa" else "correct_rejection"
            ms = 150.0 if (pid == "fast" and k % 4 == 0) else 1500.0 + 10 * k
            hidden = 5000.0 if (pid == "away" and k < 15) else 0.0
            answers.append(_ans(pid, t, t.condition, out, ms=ms, hidden=hidden))
    checks = {c["participant"]: c for c in T.participant_checks(answers, d)}
    assert checks["short"]["excluded_by"] == "incomplete"
    assert checks["short"]["completed_share"] == pytest.approx(30 / 40)
    assert checks["fa"]["excluded_by"] == "false_alarms"
    assert checks["fast"]["excluded_by"] == "fast" and checks["fast"]["fast_share"] == 0.25
    assert checks["away"]["excluded_by"] == "hidden" and checks["away"]["hidden_ms"] == 75000
    assert checks["ok1"]["excluded_by"] is None and checks["ok2"]["rules"] == []

    class State:
        definition = d
        path = "<test>"
        refused, repeats, problems = [], [], []
        participants = {}

    State.answers = answers
    State.assignments = {pid: PW._Assignment(pid, 0, j) for j, pid in enumerate(seqs)}
    rep = T.report(State, n_resamples=99)
    fl = rep["flow"]
    assert (fl["opened"], fl["consented"], fl["completed"], fl["analysed"]) == (6, 6, 5, 2)
    assert fl["excluded"] == {"incomplete": 1, "false_alarms": 1, "fast": 1, "hidden": 1,
                              "practice": 0}
    assert fl["consent_recorded"] is False
    assert rep["n_participants"] == 2 and rep["n_answers"] == 80
    for c in d.conditions:
        assert rep["conditions"][c]["participants"] == 2
    assert {r["participant"] for r in rep["participant_measures"]} == {"ok1", "ok2"}
    assert {p["participant"]: p["excluded_by"] for p in rep["participants"]["list"]} == {
        "ok1": None, "ok2": None, "short": "incomplete", "fa": "false_alarms",
        "fast": "fast", "away": "hidden"}
    json.dumps(rep, allow_nan=False)
    text = T.format_report(rep)
    assert "flow: opened 6" in text and "analysed 2" in text


def test_report_has_model_effects_with_intervals(design):
    rates = {"none": (0.65, 0.15), "ground_truth": (0.9, 0.15), "method:m1": (0.7, 0.2)}
    st = PW.simulate_answers(design, 24, rates=rates, rng=np.random.default_rng(1),
                             time_effect={"ground_truth": -0.3})
    rep = T.report(st, n_resamples=99)
    mod = rep["model"]
    assert mod["reference"] == "none"
    e = mod["correct"]["effects"]["ground_truth"]
    assert e["vs"] == "none" and e["ci"][0] < e["estimate"] < e["ci"][1] and e["p"] < 0.05
    assert e["odds_ratio"] == pytest.approx(math.exp(e["estimate"]))
    t = mod["time"]["effects"]["ground_truth"]
    assert t["ratio_ci"][0] < math.exp(-0.3) < t["ratio_ci"][1]
    kept = {p["participant"] for p in rep["participants"]["list"] if p["analysed"]}
    assert len(kept) == rep["flow"]["analysed"] == mod["correct"]["participants"]
    assert mod["time"]["n"] == sum(a.outcome == "hit" and a.participant in kept
                                   for a in st.answers)
    assert set(mod["sdt"]["effects"]["method:m1"]) == {"vs", "dprime", "criterion"}
    json.dumps(rep, allow_nan=False)
    text = T.format_report(rep)
    assert "GLMM correct ~ condition" in text and "odds ratio" in text
    # the statsmodels cross-check of the primary model agrees on the estimates
    chk = T.model_correct(st.answers, list(design.conditions), check=True)["check"]
    for name, v in chk["estimates"].items():
        ours = (mod["correct"]["effects"][name[10:-1]]["estimate"]
                if name.startswith("condition[") else None)
        if ours is not None:
            assert abs(v - ours) < 0.15, (name, v, ours)


def test_click_criterion_and_pooled_comparison(design):
    """The click criterion: the method's region contains the centroid of the ground-truth
    region (hand-checked on two pairs); pooled over pairs with the GLMM."""
    sq = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    assert T.region_centroid([sq]) == pytest.approx((5.0, 5.0))
    ell = np.array([[0, 0], [4, 0], [4, 1], [1, 1], [1, 4], [0, 4]], dtype=float)
    # an L of area 7: the 4 x 1 bar (centroid (2, 0.5)) and the 1 x 3 bar above it
    # (centroid (0.5, 2.5)): ((4 * 2 + 3 * 0.5) / 7, (4 * 0.5 + 3 * 2.5) / 7)
    assert T.region_centroid([ell]) == pytest.approx((9.5 / 7, 9.5 / 7))
    assert T.per_pair_needed(0.05) == 6  # 2 * 0.5^5 = 0.0625, 2 * 0.5^6 = 0.031
    st = PW.simulate_answers(design, 12, rates={c: (0.7, 0.1) for c in design.conditions},
                             rng=np.random.default_rng(2))
    hv = T.human_vs_machine(st.answers, design)
    n_checked = 0
    for p, t in zip(hv["pairs"], [t for t in design.trials if t.kind == "positive"],
                    strict=True):
        poly = t.predictions["m1"]
        if poly is None:
            assert p["machine"]["m1"]["success_click"] is False
            continue
        cx, cy = T.region_centroid(t.region_arrays())
        assert (cx, cy) == pytest.approx(tuple(p["centroid"]))
        if _near_edge(np.asarray(poly), cx, cy):
            continue  # a pixel-rasterisation question, not the criterion's
        assert p["machine"]["m1"]["success_click"] == _in_convex(np.asarray(poly), cx, cy)
        n_checked += 1
    assert n_checked >= 10
    s = hv["overall"]["methods"]["m1"]
    assert s["success_rate_click"] == pytest.approx(
        np.mean([p["machine"]["m1"]["success_click"] for p in hv["pairs"]]))
    pooled = s["pooled"]["click"]
    assert pooled["n_machine"] == design.n_positive
    assert pooled["n_human"] == sum(a.trial_kind == "positive" and a.condition == "none"
                                    for a in st.answers)
    e = pooled["machine_vs_human"]
    assert e["ci"][0] < e["estimate"] < e["ci"][1]
    assert hv["overall"]["participants_per_pair"]["median"] == 4  # 12 participants / 3
    assert hv["overall"]["per_pair_test_needs"] == {
        "answers_per_pair": 6, "participants": 18,
        "why": hv["overall"]["per_pair_test_needs"]["why"]}


def _in_convex(poly: np.ndarray, x: float, y: float) -> bool:
    """Point in a convex polygon: the cross products of every edge with the point have
    one sign (written here, independent of bench.geometry)."""
    d = np.roll(poly, -1, axis=0) - poly
    cross = d[:, 0] * (y - poly[:, 1]) - d[:, 1] * (x - poly[:, 0])
    return bool(np.all(cross >= 0) or np.all(cross <= 0))


def _near_edge(poly: np.ndarray, x: float, y: float, tol: float = 2.0) -> bool:
    a, b = poly, np.roll(poly, -1, axis=0)
    ab = b - a
    t = np.clip(((x - a[:, 0]) * ab[:, 0] + (y - a[:, 1]) * ab[:, 1])
                / np.maximum((ab ** 2).sum(1), 1e-12), 0, 1)
    dist = np.hypot(a[:, 0] + t * ab[:, 0] - x, a[:, 1] + t * ab[:, 1] - y)
    return bool(dist.min() < tol)


def test_power_finds_a_large_effect(design):
    pw = PW.power(design, effect=0.3, n_sims=4, participants=[3, 30], seed=1,
                  base={"hit_rate": 0.5})
    assert [r["participants"] for r in pw["grid"]] == [3, 30]
    assert pw["grid"][1]["power"] == 1.0 and pw["grid"][0]["power"] < 1.0
    assert pw["needed"] == 30
    assert pw["grid"][1]["ci"] == pytest.approx([stats.binomtest(4, 4).proportion_ci().low,
                                                 1.0])
    assert pw["condition"] == "ground_truth" and pw["reference"] == "none"
    assert pw["assumptions"]["rates"]["ground_truth"] == [pytest.approx(0.8), 0.1]
    assert pw["n_sims"] == 4 and pw["measure"] == "hit_rate"
    assert pw["assumptions"]["rates"]["none"] == [0.5, 0.1]
    with pytest.raises(ValueError, match="not a rate"):
        PW.power(design, effect=0.5)
    with pytest.raises(ValueError, match="condition"):
        PW.power(design, condition="none")
