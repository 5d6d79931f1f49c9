"""Analysis of a user study (docs/PROTOCOLS.md §7.5).

Every function takes records in and returns JSON-ready dicts (NaN -> ``None``); nothing
here reads a file or draws. :func:`report` is what ``python -m bench study report --json``
prints and what the experimenter's dashboard shows. It opens with the flow table
(:func:`flow`: opened, consented, completed, excluded by each declared rule of
:class:`bench.study.design.ExclusionRules`, analysed), and every figure after it uses the
same analysed participants. The primary analysis is :func:`models` (mixed models with
crossed random intercepts for participants and items = query objects, fitted by
:mod:`bench.study.glmm`): a logistic GLMM of a correct answer on condition, the SDT
probit GLMM of "here" on condition x present, and an LMM of log time of the hits; each
condition's effect against the reference with its interval and p. The tests below are
secondary.

Definitions (per condition c, over the counted answers: the first answer of each
participant to each trial)

- accuracy = (hits + correct rejections) / answers; hit rate = hits / positive trials;
  false-alarm rate = false alarms / catch trials; each with a Clopper-Pearson exact 95%
  interval (``scipy.stats.binomtest(...).proportion_ci()``), answers taken as
  independent.
- d' = z(H) - z(F) with the *log-linear* correction (Hautus 1995): H = (hits + 0.5) /
  (positives + 1), F = (false alarms + 0.5) / (catch trials + 1), z = the standard
  normal quantile (``scipy.stats.norm.ppf``). The correction keeps d' finite when a rate
  is 0 or 1 and biases it slightly toward 0. ``None`` without positives or without catch
  trials.
- time = browser time in ms of the *positive* trials answered (click or "not present",
  not a timeout) without a flag (a hidden tab flags a trial): median and mean with a
  percentile bootstrap 95% interval (``scipy.stats.bootstrap``, ``method="percentile"``,
  9,999 resamples, ``rng = numpy.random.default_rng([seed, condition index, 0 for the
  median | 1 for the mean])``, seed 0 by default). Catch trials are left out (their time
  measures giving up, not finding).

Paired tests per participant (each participant contributes one value per condition:
accuracy, hit rate, d' or median time): for each pair of conditions, over the
participants with a value in both, the Wilcoxon signed-rank test (``scipy.stats.
wilcoxon``, two-sided, zero differences dropped: ``zero_method="wilcox"``; exact for
small samples without ties, as scipy chooses) and the paired t test (``scipy.stats.
ttest_rel``); effect sizes Cohen's d_z = mean(d) / sd(d) (ddof 1) and the matched-pairs
rank-biserial correlation r = (W+ - W-) / (W+ + W-) (d = a - b). With more than two
conditions: the Friedman test (``scipy.stats.friedmanchisquare``) over the
participants with a value in every condition, with Kendall's W = chi2 / (n (k - 1)),
and Holm-corrected p values for the pairwise tests (per measure and test).

Per item (:func:`item_tests`): an item is a query object, shown in every condition to
different participants; its hit rate per condition; over the items with answers in both
conditions of a pair, the Wilcoxon signed-rank and exact sign tests of the differences,
Holm-corrected over the pairs of conditions.

Human against machine (:func:`human_vs_machine`), on the study's positive pairs: the
participants' hit rate per pair (in condition ``none`` when the study has it) beside
each method's success under the click criterion (its region contains the centroid of the
ground-truth region) and seg IoU > 0.5, pooled over pairs with a logistic GLMM of success
on agent; the exact paired test over pairs is kept beside it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from bench.study.design import (
    EXCLUSION_RULES,
    IOU_SUCCESS,
    NONE,
    StudyDefinition,
    condition_label,
    condition_method,
)
from bench.study.glmm import fit_glmm, fit_lmm
from bench.study.records import Answer, click_in_region

MEASURES = ("accuracy", "hit_rate", "dprime", "time_ms")
N_RESAMPLES = 9999
LEVEL = 0.95

__all__ = ["LEVEL", "MEASURES", "N_RESAMPLES", "bootstrap_ci", "condition_summary",
           "format_report", "holm", "human_vs_machine", "item_tests", "loglinear_dprime",
           "paired_tests", "participant_measures", "proportion_ci", "report"]


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else x


def _quiet(fn: Callable, *args, **kwargs):
    """Call a scipy function with its RuntimeWarnings (degenerate input -> NaN) silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


# ---------------------------------------------------------------- building blocks

def loglinear_dprime(hits: int, n_positive: int, false_alarms: int, n_catch: int
                     ) -> float | None:
    """d' with the log-linear correction (see the module docstring)."""
    if n_positive <= 0 or n_catch <= 0:
        return None
    h = (hits + 0.5) / (n_positive + 1)
    f = (false_alarms + 0.5) / (n_catch + 1)
    return float(stats.norm.ppf(h) - stats.norm.ppf(f))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p values (None entries stay None and are not counted):
    sort the m p values ascending, multiply the j-th (0-based) by m - j, take the running
    maximum, cap at 1."""
    idx = [j for j, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, j in enumerate(sorted(idx, key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * float(pvalues[j])))
        out[j] = running
    return out


def proportion_ci(k: int, n: int, level: float = LEVEL) -> list[float | None]:
    """Clopper-Pearson exact interval of k / n (``[None, None]`` when n = 0)."""
    if n <= 0:
        return [None, None]
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return [float(ci.low), float(ci.high)]


def bootstrap_ci(values: Sequence[float], statistic: Callable, *, seed: Sequence[int],
                 n_resamples: int = N_RESAMPLES, level: float = LEVEL) -> list[float | None]:
    """Percentile bootstrap interval of ``statistic`` (``scipy.stats.bootstrap``, the
    generator ``numpy.random.default_rng(seed)``); ``[None, None]`` for fewer than 2
    values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return [None, None]
    res = _quiet(stats.bootstrap, (v,), statistic, n_resamples=n_resamples,
                 confidence_level=level, method="percentile",
                 rng=np.random.default_rng(list(seed)))
    return [_num(res.confidence_interval.low), _num(res.confidence_interval.high)]


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _median(v) -> float | None:
    return float(np.median(v)) if len(v) else None


def _mean(v) -> float | None:
    return float(np.mean(v)) if len(v) else None


def _counts(sel: Sequence[Answer]) -> dict:
    pos = [a for a in sel if a.trial_kind == "positive"]
    cat = [a for a in sel if a.trial_kind == "catch"]
    hits = sum(a.outcome == "hit" for a in pos)
    fas = sum(a.outcome == "false_alarm" for a in cat)
    return {"n": len(sel), "n_positive": len(pos), "n_catch": len(cat), "hits": hits,
            "misses": len(pos) - hits, "false_alarms": fas,
            "correct_rejections": len(cat) - fas}


def _times(sel: Iterable[Answer]) -> list[float]:
    return [a.browser_ms for a in sel if a.trial_kind == "positive" and a.timed]


# ---------------------------------------------------------------- per condition

def condition_summary(answers: Sequence[Answer], conditions: Sequence[str], *,
                      n_resamples: int = N_RESAMPLES, seed: int = 0, level: float = LEVEL
                      ) -> dict[str, dict]:
    """Per condition: counts, accuracy, hit and false-alarm rates with exact intervals,
    d', browser time (median, mean, bootstrap intervals), median server time."""
    out: dict[str, dict] = {}
    for ci, c in enumerate(conditions):
        sel = [a for a in answers if a.condition == c]
        n = _counts(sel)
        t = _times(sel)
        server = [a.server_ms for a in sel if a.trial_kind == "positive" and a.timed
                  and a.server_ms is not None]  # the browser times' trials
        correct = n["hits"] + n["correct_rejections"]
        out[c] = {
            "label": condition_label(c), **n,
            "participants": len({a.participant for a in sel}),
            "timeouts": sum(a.answer == "timeout" for a in sel),
            "flagged": sum(bool(a.flags) for a in sel),
            "accuracy": _rate(correct, n["n"]),
            "accuracy_ci": proportion_ci(correct, n["n"], level),
            "hit_rate": _rate(n["hits"], n["n_positive"]),
            "hit_rate_ci": proportion_ci(n["hits"], n["n_positive"], level),
            "false_alarm_rate": _rate(n["false_alarms"], n["n_catch"]),
            "false_alarm_rate_ci": proportion_ci(n["false_alarms"], n["n_catch"], level),
            "dprime": loglinear_dprime(n["hits"], n["n_positive"], n["false_alarms"],
                                       n["n_catch"]),
            "time_ms": {
                "n": len(t), "median": _median(t),
                "median_ci": bootstrap_ci(t, np.median, seed=(seed, ci, 0),
                                          n_resamples=n_resamples, level=level),
                "mean": _mean(t),
                "mean_ci": bootstrap_ci(t, np.mean, seed=(seed, ci, 1),
                                        n_resamples=n_resamples, level=level)},
            "server_ms_median": _median(server),
        }
    return out


# ---------------------------------------------------------------- per participant

def participant_measures(answers: Sequence[Answer], conditions: Sequence[str]) -> list[dict]:
    """One row per participant: ``{"participant", "row", "n", "conditions": {c: {"n",
    "accuracy", "hit_rate", "false_alarm_rate", "dprime", "time_ms"}}}`` (time_ms = the
    median browser time; None where undefined)."""
    by_pid: dict[str, list[Answer]] = {}
    for a in answers:
        by_pid.setdefault(a.participant, []).append(a)
    rows = []
    for pid in sorted(by_pid):
        mine = by_pid[pid]
        per = {}
        for c in conditions:
            sel = [a for a in mine if a.condition == c]
            n = _counts(sel)
            per[c] = {"n": n["n"],
                      "accuracy": _rate(n["hits"] + n["correct_rejections"], n["n"]),
                      "hit_rate": _rate(n["hits"], n["n_positive"]),
                      "false_alarm_rate": _rate(n["false_alarms"], n["n_catch"]),
                      "dprime": loglinear_dprime(n["hits"], n["n_positive"],
                                                 n["false_alarms"], n["n_catch"]),
                      "time_ms": _median(_times(sel))}
        rows.append({"participant": pid, "row": mine[0].row, "n": len(mine),
                     "conditions": per})
    return rows


def _paired(a: str, b: str, x: np.ndarray, y: np.ndarray) -> dict:
    n = len(x)
    d = x - y
    out: dict = {"a": a, "b": b, "n": n, "mean_a": _mean(x), "mean_b": _mean(y),
                 "mean_diff": _mean(d), "median_diff": _median(d)}
    nz = d[d != 0]
    if n == 0:
        out["wilcoxon"] = {"statistic": None, "p": None}
    elif nz.size == 0:
        out["wilcoxon"] = {"statistic": None, "p": 1.0, "note": "all differences are zero"}
    else:
        w = _quiet(stats.wilcoxon, x, y, zero_method="wilcox", alternative="two-sided")
        out["wilcoxon"] = {"statistic": _num(w.statistic), "p": _num(w.pvalue)}
    sd = float(np.std(d, ddof=1)) if n >= 2 else 0.0
    if n >= 2 and sd > 0:
        t = _quiet(stats.ttest_rel, x, y)
        out["t"] = {"statistic": _num(t.statistic), "df": int(t.df), "p": _num(t.pvalue)}
    else:
        out["t"] = {"statistic": None, "df": None, "p": None}
    rb = None
    if nz.size:
        ranks = stats.rankdata(np.abs(nz))
        wp, wm = float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum())
        rb = (wp - wm) / (wp + wm)
    out["effect"] = {"dz": float(np.mean(d)) / sd if n >= 2 and sd > 0 else None,
                     "rank_biserial": rb}
    return out


def paired_tests(rows: Sequence[Mapping], conditions: Sequence[str], measure: str) -> dict:
    """Paired tests of *measure* across conditions over participants (see the module
    docstring). ``{"measure", "friedman": {...} | None, "pairwise": [...]}``; each
    pairwise entry has ``wilcoxon.p_holm`` and ``t.p_holm``."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}")
    k = len(conditions)
    pairwise = []
    for ia in range(k):
        for ib in range(ia + 1, k):
            a, b = conditions[ia], conditions[ib]
            vals = [(r["conditions"][a][measure], r["conditions"][b][measure]) for r in rows]
            vals = [(u, v) for u, v in vals if u is not None and v is not None]
            x = np.array([u for u, _ in vals], dtype=np.float64)
            y = np.array([v for _, v in vals], dtype=np.float64)
            pairwise.append(_paired(a, b, x, y))
    for test in ("wilcoxon", "t"):
        for e, p in zip(pairwise, holm([e[test]["p"] for e in pairwise]), strict=True):
            e[test]["p_holm"] = p
    friedman = None
    if k >= 3:
        full = [[r["conditions"][c][measure] for c in conditions] for r in rows]
        full = [v for v in full if all(x is not None for x in v)]
        n = len(full)
        if n >= 2:
            m = np.array(full, dtype=np.float64)
            res = _quiet(stats.friedmanchisquare, *m.T)
            chi2 = _num(res.statistic)
            friedman = {"n": n, "k": k, "statistic": chi2, "p": _num(res.pvalue),
                        "kendall_w": None if chi2 is None else chi2 / (n * (k - 1))}
        else:
            friedman = {"n": n, "k": k, "statistic": None, "p": None, "kendall_w": None}
    return {"measure": measure, "friedman": friedman, "pairwise": pairwise}


# ---------------------------------------------------------------- per item

def item_tests(answers: Sequence[Answer], conditions: Sequence[str]) -> dict:
    """Per-item tests (§7.5): an item is a query object, and every item is shown in
    every condition (to different participants, by the Latin square). Each item's hit
    rate per condition over the participants who saw it there; for each pair of
    conditions (a, b), over the items with positive answers in both, d = rate_a - rate_b:
    the Wilcoxon signed-rank test (zero differences dropped) and the exact sign test
    (``binomtest(#d > 0, #d != 0, 0.5)``), Holm-adjusted over the pairs of conditions."""
    rates: dict[tuple[int, str], list[bool]] = {}
    for a in answers:
        if a.trial_kind == "positive":
            rates.setdefault((a.q, a.condition), []).append(a.outcome == "hit")
    items = sorted({q for q, _ in rates})
    k = len(conditions)
    pairwise = []
    for ia in range(k):
        for ib in range(ia + 1, k):
            ca, cb = conditions[ia], conditions[ib]
            both = [q for q in items if (q, ca) in rates and (q, cb) in rates]
            x = np.array([np.mean(rates[(q, ca)]) for q in both], dtype=np.float64)
            y = np.array([np.mean(rates[(q, cb)]) for q in both], dtype=np.float64)
            d = x - y
            up, down = int(np.sum(d > 0)), int(np.sum(d < 0))
            nz = d[d != 0]
            if nz.size:
                w = _quiet(stats.wilcoxon, x, y, zero_method="wilcox")
                wp, ws = _num(w.pvalue), _num(w.statistic)
            else:
                wp, ws = (1.0 if len(both) else None), None
            pairwise.append({"a": ca, "b": cb, "n_items": len(both),
                             "mean_a": _mean(x), "mean_b": _mean(y), "mean_diff": _mean(d),
                             "a_higher": up, "b_higher": down, "ties": len(both) - up - down,
                             "wilcoxon": {"statistic": ws, "p": wp},
                             "sign_test_p": float(stats.binomtest(up, up + down, 0.5).pvalue)
                             if up + down else (1.0 if len(both) else None)})
    for key in ("wilcoxon", "sign"):
        ps = [e["wilcoxon"]["p"] if key == "wilcoxon" else e["sign_test_p"] for e in pairwise]
        for e, p in zip(pairwise, holm(ps), strict=True):
            if key == "wilcoxon":
                e["wilcoxon"]["p_holm"] = p
            else:
                e["sign_test_p_holm"] = p
    return {"outcome": "hit rate per item (query) and condition, positive trials",
            "matching": "the same item across conditions", "pairwise": pairwise}


# ---------------------------------------------------------------- human against machine

def region_centroid(shapes: Sequence[np.ndarray]) -> tuple[float, float] | None:
    """The area-weighted centroid of the union of *shapes* (polygons, shoelace
    formula; shapes taken as disjoint); the mean vertex for degenerate polygons."""
    ax = ay = area = 0.0
    pts = []
    for s in shapes:
        p = np.asarray(s, dtype=np.float64).reshape(-1, 2)
        if len(p) == 0:
            continue
        pts.append(p)
        x, y = p[:, 0], p[:, 1]
        x1, y1 = np.roll(x, -1), np.roll(y, -1)
        cross = x * y1 - x1 * y
        a = 0.5 * float(cross.sum())
        if abs(a) > 1e-12:
            ax += float(((x + x1) * cross).sum()) / 6.0
            ay += float(((y + y1) * cross).sum()) / 6.0
            area += a
    if not pts:
        return None
    if abs(area) < 1e-12:
        allp = np.concatenate(pts)
        return float(allp[:, 0].mean()), float(allp[:, 1].mean())
    return ax / area, ay / area


def per_pair_needed(alpha: float = 0.05) -> int:
    """The fewest answers on one pair for which an exact two-sided binomial test of the
    human hit rate against 1/2 can be significant at *alpha* at all (all answers
    agreeing): the smallest m with 2 * 0.5^m < alpha."""
    m = 1
    while 2 * 0.5 ** m >= alpha:
        m += 1
    return m


# ---------------------------------------------------------------- exclusions and flow

def participant_checks(answers: Sequence[Answer], definition: StudyDefinition,
                       practice: Mapping[str, Sequence] | None = None) -> list[dict]:
    """Per participant with at least one recorded answer: what the declared exclusion
    rules look at and which rules apply (§7.2, :class:`~bench.study.design.
    ExclusionRules`): ``{"participant", "answered", "completed_share",
    "false_alarm_rate", "fast_share", "hidden_ms", "practice_accuracy", "rules": [...],
    "excluded_by": first rule or None}``. *practice*: participant -> practice outcomes
    (True = correct), when the store records practice answers."""
    r = definition.exclusions
    by: dict[str, list[Answer]] = {}
    for a in answers:
        by.setdefault(a.participant, []).append(a)
    out = []
    for pid in sorted(by):
        mine = by[pid]
        cat = [a for a in mine if a.trial_kind == "catch"]
        fa = _rate(sum(a.outcome == "false_alarm" for a in cat), len(cat))
        timed = [a for a in mine if a.browser_ms is not None and a.answer != "timeout"]
        fast = _rate(sum(a.browser_ms < r.fast_ms for a in timed), len(timed))
        hidden = float(sum(a.hidden_ms for a in mine))
        share = len(mine) / definition.n_trials if definition.n_trials else 1.0
        prac = None
        if practice is not None and practice.get(pid):
            prac = float(np.mean([bool(x) for x in practice[pid]]))
        rules = []
        if share < r.min_completed - 1e-12:
            rules.append("incomplete")
        if fa is not None and fa > r.max_false_alarm_rate:
            rules.append("false_alarms")
        if fast is not None and fast > r.max_fast_share:
            rules.append("fast")
        if hidden > r.max_hidden_ms:
            rules.append("hidden")
        if r.min_practice_accuracy is not None and prac is not None \
                and prac < r.min_practice_accuracy:
            rules.append("practice")
        out.append({"participant": pid, "answered": len(mine), "completed_share": share,
                    "false_alarm_rate": fa, "fast_share": fast, "hidden_ms": hidden,
                    "practice_accuracy": prac, "rules": rules,
                    "excluded_by": rules[0] if rules else None})
    return out


def flow(state, checks: Sequence[Mapping]) -> dict:
    """The flow table (§7.5): opened the link, consented, completed, excluded by each
    rule (the first that applies, in the declared order), analysed. With a store that
    records consent (participant rows), consented = participants with a consent time;
    with a file that does not, consented = participants with at least one answer (the
    ``consent_recorded`` flag says which)."""
    d: StudyDefinition = state.definition
    parts = getattr(state, "participants", None) or {}
    answered = {c["participant"] for c in checks}
    returned = {p for p, x in parts.items() if getattr(x, "status", "") == "returned"}
    if parts:
        opened = len(parts)
        consented = sum(1 for x in parts.values() if getattr(x, "consented_at", None))
        recorded = True
    else:
        opened = len(state.assignments)
        consented = len(answered)
        recorded = False
    completed = sum(c["answered"] >= d.n_trials for c in checks)
    excluded = {rule: 0 for rule in EXCLUSION_RULES}
    withdrawn = 0
    for c in checks:
        if c["participant"] in returned:
            withdrawn += 1
        elif c["excluded_by"]:
            excluded[c["excluded_by"]] += 1
    analysed = len(answered) - withdrawn - sum(excluded.values())
    return {"opened": opened, "consented": consented, "started": len(answered),
            "completed": completed, "withdrawn": withdrawn, "excluded": excluded,
            "analysed": analysed, "consent_recorded": recorded,
            "rules": d.exclusions.describe(), "rule_values": d.exclusions.to_json()}


# ---------------------------------------------------------------- mixed models

def reference_condition(conditions: Sequence[str]) -> str:
    """The reference of the model contrasts: ``none`` when the study has it (the unaided
    human), else the first condition."""
    return NONE if NONE in conditions else conditions[0]


def _condition_columns(cond: np.ndarray, conds: Sequence[str], ref: str
                       ) -> tuple[list[str], list[np.ndarray]]:
    others = [c for c in conds if c != ref]
    return ([f"condition[{c}]" for c in others],
            [(cond == c).astype(np.float64) for c in others])


def _items(answers: Sequence[Answer]) -> np.ndarray:
    """The item of each answer: its query object (§7.2: an item is a query)."""
    return np.array([a.q for a in answers])


def model_correct(answers: Sequence[Answer], conds: Sequence[str], *, level: float = LEVEL,
                  check: bool = False) -> dict:
    """The primary analysis: logistic GLMM of a correct answer (hit or correct
    rejection) on condition with crossed random intercepts for participant and item
    (query), ``logit P(correct) = b0 + b_c + u_participant + v_item`` (:mod:`bench.
    study.glmm`). Each condition's effect against the reference: log odds ratio with
    its Wald interval and p, and the odds ratio."""
    ref = reference_condition(conds)
    base = {"formula": "correct ~ condition + (1 | participant) + (1 | item)",
            "family": "binomial, logit link", "reference": ref,
            "estimator": "Laplace approximation, restricted (bench.study.glmm)"}
    present = [c for c in conds if any(a.condition == c for a in answers)]
    if len(present) < len(conds) or len(answers) < 2:
        return {**base, "error": "not every condition has answers yet"}
    y = np.array([a.correct for a in answers], dtype=np.float64)
    cond = np.array([a.condition for a in answers])
    names, cols = _condition_columns(cond, conds, ref)
    X = np.column_stack([np.ones(len(y))] + cols)
    try:
        fit = fit_glmm(y, X, ["intercept"] + names,
                       {"participant": np.array([a.participant for a in answers]),
                        "item": _items(answers)})
    except ValueError as exc:
        return {**base, "error": str(exc)}
    effects = {}
    for c, nm in zip([c for c in conds if c != ref], names, strict=True):
        e = fit.effect(nm, level)
        e["odds_ratio"] = _exp(e["estimate"])
        e["odds_ratio_ci"] = [_exp(v) for v in e["ci"]]
        effects[c] = {"vs": ref, **e}
    per = {}
    for c in conds:
        w = np.zeros(len(fit.names))
        w[0] = 1.0
        if c != ref:
            w[fit.names.index(f"condition[{c}]")] = 1.0
        e = fit.contrast(w, level)
        per[c] = {"accuracy": _expit(e["estimate"]),
                  "accuracy_ci": [_expit(v) for v in e["ci"]]}
    out = {**base, "n": fit.n, "participants": fit.levels["participant"],
           "items": fit.levels["item"], "converged": fit.converged,
           "random_sd": fit.sigma, "effects": effects, "conditions": per}
    if check:
        out["check"] = _statsmodels_check(y, X, fit.names, answers)
    return out


def _statsmodels_check(y: np.ndarray, X: np.ndarray, names: Sequence[str],
                       answers: Sequence[Answer]) -> dict:
    """statsmodels' ``BinomialBayesMixedGLM`` (variational Bayes, ``fit_vb``) on the same
    model, as a cross-check of the estimates by a second implementation. Its posterior
    sds are not used for inference: on simulated studies they were too small (§7.5)."""
    from scipy import sparse
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    cols, ident = [], []
    for f, codes in enumerate((np.array([a.participant for a in answers]), _items(answers))):
        _, inv = np.unique(codes, return_inverse=True)
        m = int(inv.max()) + 1
        cols.append(sparse.csr_matrix((np.ones(len(inv)), (np.arange(len(inv)), inv)),
                                      shape=(len(inv), m)))
        ident += [f] * m
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = BinomialBayesMixedGLM(y, X, sparse.hstack(cols, format="csr"),
                                        np.asarray(ident), vcp_p=1.0, fe_p=10.0).fit_vb()
    except (ValueError, np.linalg.LinAlgError) as exc:
        return {"estimator": "statsmodels BinomialBayesMixedGLM.fit_vb",
                "error": str(exc)[:200]}
    return {"estimator": "statsmodels BinomialBayesMixedGLM.fit_vb (posterior means)",
            "estimates": {nm: _num(v) for nm, v in zip(names, res.fe_mean, strict=True)},
            "random_sd": {"participant": _num(math.exp(res.vcp_mean[0])),
                          "item": _num(math.exp(res.vcp_mean[1]))}}


def model_sdt(answers: Sequence[Answer], conds: Sequence[str], *, level: float = LEVEL
              ) -> dict:
    """Signal detection as a probit GLMM (DeCarlo 1998): ``probit P("here") = a_c +
    d_c (present - 1/2) + u_participant + v_item``, "here" = a click, present = a
    positive trial. d_c is the condition's d', ``-a_c`` its criterion c (0 = unbiased;
    > 0 = conservative). Fitted with treatment contrasts, so ``condition[x]:present``
    is the change of d' and ``-condition[x]`` the change of criterion from the
    reference; per condition d' and c with intervals."""
    ref = reference_condition(conds)
    base = {"formula": "here ~ condition * present + (1 | participant) + (1 | item)",
            "family": "binomial, probit link",
            "coding": "present = +1/2 on positive trials, -1/2 on catch trials",
            "reference": ref,
            "estimator": "Laplace approximation, restricted (bench.study.glmm)"}
    kinds = {(a.condition, a.trial_kind) for a in answers}
    if any((c, k) not in kinds for c in conds for k in ("positive", "catch")):
        return {**base, "error": "every condition needs answers on positive and on catch "
                                 "trials"}
    y = np.array([a.answer == "click" for a in answers], dtype=np.float64)
    cond = np.array([a.condition for a in answers])
    pc = np.array([0.5 if a.trial_kind == "positive" else -0.5 for a in answers])
    names, cols = _condition_columns(cond, conds, ref)
    X = np.column_stack([np.ones(len(y))] + cols + [pc] + [col * pc for col in cols])
    allnames = ["intercept"] + names + ["present"] + [f"{nm}:present" for nm in names]
    try:
        fit = fit_glmm(y, X, allnames,
                       {"participant": np.array([a.participant for a in answers]),
                        "item": _items(answers)}, link="probit")
    except ValueError as exc:
        return {**base, "error": str(exc)}
    effects, per = {}, {}
    p = len(allnames)
    for c in conds:
        wd, wc = np.zeros(p), np.zeros(p)
        wd[allnames.index("present")] = 1.0
        wc[0] = -1.0
        if c != ref:
            wd[allnames.index(f"condition[{c}]:present")] = 1.0
            wc[allnames.index(f"condition[{c}]")] = -1.0
            dd = fit.effect(f"condition[{c}]:present", level)
            dc = fit.contrast(-np.eye(p)[allnames.index(f"condition[{c}]")], level)
            effects[c] = {"vs": ref, "dprime": dd, "criterion": dc}
        per[c] = {"dprime": fit.contrast(wd, level), "criterion": fit.contrast(wc, level)}
    return {**base, "n": fit.n, "participants": fit.levels["participant"],
            "items": fit.levels["item"], "converged": fit.converged,
            "random_sd": fit.sigma, "effects": effects, "conditions": per}


def model_time(answers: Sequence[Answer], conds: Sequence[str], *, level: float = LEVEL
               ) -> dict:
    """Linear mixed model of log browser time of the hits (correct "here" answers
    without a flag; misses are not times to find): ``log(ms) ~ condition +
    (1 | participant) + (1 | item)``, REML (:func:`bench.study.glmm.fit_lmm`, the model
    of ``statsmodels`` MixedLM with crossed variance components). Effects as time
    ratios exp(b) with Wald intervals and p; per condition the geometric mean time."""
    ref = reference_condition(conds)
    base = {"formula": "log(browser_ms) ~ condition + (1 | participant) + (1 | item)",
            "trials": "hits without a flag", "reference": ref,
            "estimator": "REML, crossed random intercepts (bench.study.glmm.fit_lmm)"}
    hits = [a for a in answers if a.outcome == "hit" and a.timed and a.browser_ms > 0]
    if len({a.condition for a in hits}) < len(conds) or len(hits) < len(conds) + 3:
        return {**base, "error": "too few timed hits in some condition"}
    y = np.log([a.browser_ms for a in hits])
    cond = np.array([a.condition for a in hits])
    names, cols = _condition_columns(cond, conds, ref)
    X = np.column_stack([np.ones(len(y))] + cols)
    try:
        fit = fit_lmm(y, X, ["intercept"] + names,
                      {"participant": np.array([a.participant for a in hits]),
                       "item": _items(hits)})
    except (ValueError, np.linalg.LinAlgError) as exc:
        return {**base, "error": f"the model could not be fitted ({exc})"}
    effects, per = {}, {}
    for c in conds:
        w = np.zeros(len(fit.names))
        w[0] = 1.0
        if c != ref:
            nm = f"condition[{c}]"
            e = fit.effect(nm, level)
            e["ratio"] = _exp(e["estimate"])
            e["ratio_ci"] = [_exp(v) for v in e["ci"]]
            effects[c] = {"vs": ref, **e}
            w[fit.names.index(nm)] = 1.0
        e = fit.contrast(w, level)
        per[c] = {"geometric_mean_ms": _exp(e["estimate"]),
                  "ci": [_exp(v) for v in e["ci"]]}
    return {**base, "n": fit.n, "participants": fit.levels["participant"],
            "items": fit.levels["item"], "converged": fit.converged,
            "random_sd": fit.sigma, "residual_sd": fit.residual_sd,
            "effects": effects, "conditions": per}


def _exp(x):
    return None if x is None else float(math.exp(min(max(x, -700.0), 700.0)))


def _expit(x):
    from scipy.special import expit

    return None if x is None else float(expit(x))


def models(answers: Sequence[Answer], conds: Sequence[str], *, level: float = LEVEL,
           check: bool = False) -> dict:
    """The three mixed models of §7.5 on the analysed answers (*check*: add statsmodels'
    variational fit of the primary model beside it, ``correct.check``; seconds more)."""
    return {"reference": reference_condition(conds),
            "correct": model_correct(answers, conds, level=level, check=check),
            "sdt": model_sdt(answers, conds, level=level),
            "time": model_time(answers, conds, level=level)}



def human_vs_machine(answers: Sequence[Answer], definition: StudyDefinition, *,
                     level: float = LEVEL) -> dict:
    """Participants' hit rate per positive pair beside each method's success on the same
    pair, on one criterion (§7.5): the *click criterion* (the method's region contains
    the centroid of the object's ground-truth region, as a participant's click must be
    inside the region) and, beside it, seg IoU > 0.5. Pooled over pairs with a logistic
    GLMM ``success ~ agent + (1 | item) + (1 | participant)`` on the human answers in
    the unaided condition and one machine row per pair (the machine's rows share one
    participant level per method); the old exact test over pairs is kept."""
    conds = definition.conditions
    human_condition = NONE if NONE in conds else None
    positives = [t for t in definition.trials if t.kind == "positive"]
    methods = list(definition.methods)
    by_trial: dict[str, list[Answer]] = {}
    for a in answers:
        by_trial.setdefault(a.trial, []).append(a)
    # the click criterion needs the method's polygon: the study keeps those it draws
    drawn = {condition_method(c) for c in conds if condition_method(c)}
    pairs = []
    for t in positives:
        sel = by_trial.get(t.id, [])
        used = [a for a in sel if human_condition is None or a.condition == human_condition]
        hits = sum(a.outcome == "hit" for a in used)
        by_c = {}
        for c in conds:
            sc = [a for a in sel if a.condition == c]
            by_c[c] = _rate(sum(a.outcome == "hit" for a in sc), len(sc))
        cen = region_centroid(t.region_arrays())
        machine = {}
        for m in methods:
            bb, sg = t.iou.get(m, (0.0, 0.0))
            click = None
            if m in drawn:
                poly = t.predictions.get(m)
                click = bool(poly is not None and cen is not None
                             and click_in_region(cen[0], cen[1], [np.asarray(poly)]))
            machine[m] = {"iou_bbox": bb, "iou_seg": sg, "success": sg > IOU_SUCCESS,
                          "success_bbox": bb > IOU_SUCCESS, "success_click": click}
        pairs.append({"trial": t.id, "q": t.q, "i": t.i, "difficulty": t.difficulty,
                      "n": len(used), "hits": hits, "hit_rate": _rate(hits, len(used)),
                      "hit_rate_by_condition": by_c, "machine": machine,
                      "centroid": None if cen is None else list(cen)})
    answered = [p for p in pairs if p["n"]]
    n_answers = [p["n"] for p in pairs]
    need = per_pair_needed()
    overall: dict = {
        "n_pairs": len(pairs), "n_pairs_answered": len(answered),
        "human_hit_rate": _rate(sum(p["hits"] for p in pairs), sum(p["n"] for p in pairs)),
        "human_mean_pair_hit_rate": _mean([p["hit_rate"] for p in answered]),
        "participants_per_pair": {"median": _median(n_answers),
                                  "min": min(n_answers, default=0),
                                  "max": max(n_answers, default=0)},
        "per_pair_test_needs": {
            "answers_per_pair": need,
            "participants": need * (len(conds) if human_condition else 1),
            "why": f"an exact binomial test of one pair's hit rate can reach p < 0.05 only "
                   f"with at least {need} answers (all agreeing); each participant sees a "
                   f"pair in the unaided condition with probability 1/{len(conds)}"},
        "methods": {}}
    human_rows = [a for a in answers if a.trial_kind == "positive"
                  and (human_condition is None or a.condition == human_condition)]
    for m in methods:
        seg = [p["machine"][m]["iou_seg"] for p in pairs]
        box = [p["machine"][m]["iou_bbox"] for p in pairs]
        clicks = [p["machine"][m]["success_click"] for p in pairs]
        both = human_only = machine_only = neither = ties = 0
        for p in answered:
            if p["hit_rate"] == 0.5:
                ties += 1
                continue
            h, mm = p["hit_rate"] > 0.5, p["machine"][m]["success"]
            both += h and mm
            human_only += h and not mm
            machine_only += mm and not h
            neither += not h and not mm
        disc = human_only + machine_only
        entry = {
            "success_rate": _mean([s > IOU_SUCCESS for s in seg]),
            "success_rate_bbox": _mean([b > IOU_SUCCESS for b in box]),
            "success_rate_click": None if clicks and clicks[0] is None else
            _mean([bool(c) for c in clicks]),
            "mean_iou_seg": _mean(seg), "mean_iou_bbox": _mean(box),
            "test": {"n_pairs": both + human_only + machine_only + neither, "both": both,
                     "human_only": human_only, "machine_only": machine_only,
                     "neither": neither, "ties_excluded": ties,
                     "p_exact": float(stats.binomtest(human_only, disc, 0.5).pvalue)
                     if disc else 1.0}}
        entry["pooled"] = {
            crit: _pooled_human_machine(human_rows, positives, pairs, m, crit, level)
            for crit in ("click", "iou")}
        overall["methods"][m] = entry
    return {"human_condition": human_condition or "all",
            "success": f"click criterion: the method's region contains the centroid of the "
                       f"ground-truth region (a participant's hit: a click inside it); "
                       f"beside it seg IoU > {IOU_SUCCESS} (official protocol)",
            "pairs": pairs, "overall": overall}


def _pooled_human_machine(human: Sequence[Answer], positives, pairs: Sequence[Mapping],
                          method: str, criterion: str, level: float) -> dict:
    """Logistic GLMM of success on agent (machine vs human), pooled over the pairs."""
    key = "success_click" if criterion == "click" else "success"
    mach = [(t, p["machine"][method][key]) for t, p in zip(positives, pairs, strict=True)]
    if not human or any(v is None for _, v in mach):
        return {"criterion": criterion,
                "error": "no human answers yet" if not human else
                "the study did not keep this method's polygons (not one of its conditions)"}
    y = [a.outcome == "hit" for a in human] + [bool(v) for _, v in mach]
    agent = [0.0] * len(human) + [1.0] * len(mach)
    item = [a.q for a in human] + [t.q for t, _ in mach]
    who = [a.participant for a in human] + [f"machine:{method}"] * len(mach)
    X = np.column_stack([np.ones(len(y)), agent])
    out = {"criterion": criterion,
           "formula": "success ~ agent + (1 | item) + (1 | participant)",
           "n_human": len(human), "n_machine": len(mach)}
    try:
        fit = fit_glmm(np.array(y, dtype=np.float64), X, ["intercept", "machine"],
                       {"item": np.array(item), "participant": np.array(who)})
    except ValueError as exc:
        return {**out, "error": str(exc)}
    e = fit.effect("machine", level)
    return {**out, "machine_vs_human": {**e, "odds_ratio": _exp(e["estimate"])},
            "converged": fit.converged}


# ---------------------------------------------------------------- the report

def report(state, *, n_resamples: int = N_RESAMPLES, seed: int = 0, level: float = LEVEL,
           fit_models: bool = True, check: bool = False) -> dict:
    """The whole analysis of a study (a :class:`bench.study.store.StudyState`), as
    printed by ``python -m bench study report --json``; its shape is documented in
    docs/PROTOCOLS.md §7.6. Every figure and test uses the same *analysed* set: the
    participants whom no declared exclusion rule removes (``flow``)."""
    d: StudyDefinition = state.definition
    all_answers = state.answers
    conds = list(d.conditions)
    practice = getattr(state, "practice_outcomes", None)
    checks = participant_checks(all_answers, d, practice)
    fl = flow(state, checks)
    parts = getattr(state, "participants", None) or {}
    returned = {p for p, x in parts.items() if getattr(x, "status", "") == "returned"}
    keep = {c["participant"] for c in checks
            if not c["excluded_by"] and c["participant"] not in returned}
    answers = [a for a in all_answers if a.participant in keep]
    per_pid: dict[str, int] = {}
    for a in all_answers:
        per_pid[a.participant] = per_pid.get(a.participant, 0) + 1
    rows_info = []
    for r, row in enumerate(d.square):
        members = [p for p, asg in state.assignments.items() if asg.row == r]
        rows_info.append({"row": r, "conditions_by_block": [conds[j] for j in row],
                          "assigned": len(members),
                          "completed": sum(per_pid.get(p, 0) >= d.n_trials for p in members),
                          "analysed": sum(p in keep for p in members),
                          "answers": sum(per_pid.get(p, 0) for p in members)})
    why = {c["participant"]: c for c in checks}
    plist = [{"participant": p, "row": asg.row, "index": asg.index, "assigned_at": asg.at,
              "answered": per_pid.get(p, 0), "complete": per_pid.get(p, 0) >= d.n_trials,
              "analysed": p in keep,
              "excluded_by": "withdrawn" if p in returned else
              why.get(p, {}).get("excluded_by"),
              "rules": why.get(p, {}).get("rules", [])}
             for p, asg in sorted(state.assignments.items(), key=lambda kv: kv[1].index)]
    table = participant_measures(answers, conds)
    return {
        "study": d.study, "file": str(state.path),
        "design": {"dataset": d.dataset, "source": d.root or "embedded demo",
                   "conditions": conds,
                   "condition_labels": {c: condition_label(c) for c in conds},
                   "n_trials": d.n_trials, "n_positive": d.n_positive, "n_catch": d.n_catch,
                   "catch": d.catch, "seed": d.seed, "order": d.order,
                   "square": [list(r) for r in d.square], "n_practice": len(d.practice),
                   "methods": list(d.methods), "created": d.created,
                   "allow_repeats": d.allow_repeats, "meetings_per_query": d.meetings,
                   "catch_per_condition": d.catch_per_condition, "min_catch": d.min_catch,
                   "catch_sources": d.catch_sources, "exclusions": d.exclusions.to_json()},
        "flow": fl,
        "participants": {"assigned": len(state.assignments),
                         "started": sum(1 for p in state.assignments if per_pid.get(p)),
                         "completed": sum(p["complete"] for p in plist),
                         "analysed": len(keep), "rows": rows_info, "list": plist,
                         "checks": checks},
        "n_answers": len(answers), "n_answers_recorded": len(all_answers),
        "n_participants": len(keep),
        "model": models(answers, conds, level=level, check=check) if fit_models else None,
        "conditions": condition_summary(answers, conds, n_resamples=n_resamples, seed=seed,
                                        level=level),
        "participant_measures": table,
        "paired": {m: paired_tests(table, conds, m) for m in MEASURES},
        "items": item_tests(answers, conds),
        "human_vs_machine": human_vs_machine(answers, d, level=level),
        "problems": {"skipped_lines": [str(p) for p in state.problems],
                     "repeats": [str(p) for p in state.repeats],
                     "refused": [{"participant": r.participant, "trial": r.trial,
                                  "why": r.why, "at": r.at} for r in state.refused]},
        "settings": {
            "level": level,
            "analysed_set": "participants with answers whom no exclusion rule removes "
                            "(flow); every figure below uses them",
            "bootstrap": {"method": "percentile", "n_resamples": n_resamples, "seed": seed},
            "dprime": "per participant and per condition (secondary): log-linear, "
                      "H = (hits + 0.5) / (positives + 1), F = (false alarms + 0.5) / "
                      "(catch + 1); primary: the probit GLMM (model.sdt)",
            "proportion_ci": "Clopper-Pearson exact",
            "time": "browser ms, positive trials answered without a flag; server ms on "
                    "the same trials",
            "wilcoxon": "two-sided, zero differences dropped (zero_method='wilcox')",
            "multiple_comparisons": "Holm, over the pairs of conditions",
            "repeats": (f"queries repeat: a participant meets up to {d.meetings} trials "
                        "of one query" if d.meetings > 1 else "every query met once")},
    }


def _f(x, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}%" if pct else f"{x:.3g}"


def _ms(x) -> str:
    return "n/a" if x is None else f"{x:.0f}"


def _ci(ci, pct: bool = False) -> str:
    return f"[{_f(ci[0], pct)}, {_f(ci[1], pct)}]"


def format_report(rep: Mapping) -> str:
    """A short text version of :func:`report` for the terminal."""
    d, fl = rep["design"], rep["flow"]
    lines = [f"study {rep['study']}: dataset {d['dataset']} ({d['source']}), "
             f"{d['n_trials']} trials ({d['n_catch']} catch, {d['catch_per_condition']} "
             f"per condition), conditions {', '.join(d['conditions'])}"]
    if d.get("allow_repeats") and d.get("meetings_per_query", 1) > 1:
        lines.append(f"note: repeats allowed, a participant meets up to "
                     f"{d['meetings_per_query']} trials of one query")
    ex = ", ".join(f"{k} {v}" for k, v in fl["excluded"].items() if v) or "none"
    lines.append(f"flow: opened {fl['opened']}, consented {fl['consented']}"
                 f"{'' if fl['consent_recorded'] else ' (= answered; consent not recorded)'}"
                 f", completed {fl['completed']}, withdrawn {fl['withdrawn']}, excluded "
                 f"{ex}, analysed {fl['analysed']}")
    lines.append(f"analysed: {rep['n_participants']} participants, {rep['n_answers']} "
                 f"answers (of {rep['n_answers_recorded']} recorded)")
    mod = rep.get("model")
    if mod:
        ref = mod["reference"]
        mc = mod["correct"]
        if "error" in mc:
            lines.append(f"GLMM correct: {mc['error']}")
        else:
            lines.append(f"GLMM {mc['formula']} (n={mc['n']}, {mc['participants']} "
                         f"participants, {mc['items']} items):")
            for c, e in mc["effects"].items():
                lines.append(f"  {c} vs {ref}: odds ratio {_f(e['odds_ratio'])} "
                             f"{_ci(e['odds_ratio_ci'])}, p={_f(e['p'])}")
        ms = mod["sdt"]
        if "error" in ms:
            lines.append(f"SDT probit GLMM: {ms['error']}")
        else:
            lines.append(f"SDT {ms['formula']} (n={ms['n']}):")
            for c, e in ms["conditions"].items():
                lines.append(f"  {c}: d' {_f(e['dprime']['estimate'])} "
                             f"{_ci(e['dprime']['ci'])}, criterion "
                             f"{_f(e['criterion']['estimate'])}")
            for c, e in ms["effects"].items():
                lines.append(f"  {c} vs {ref}: d' change {_f(e['dprime']['estimate'])} "
                             f"{_ci(e['dprime']['ci'])} p={_f(e['dprime']['p'])}; criterion "
                             f"change {_f(e['criterion']['estimate'])} "
                             f"p={_f(e['criterion']['p'])}")
        mt = mod["time"]
        if "error" in mt:
            lines.append(f"LMM time: {mt['error']}")
        else:
            lines.append(f"LMM {mt['formula']} (n={mt['n']} hits):")
            for c, e in mt["effects"].items():
                lines.append(f"  {c} vs {ref}: time ratio {_f(e['ratio'])} "
                             f"{_ci(e['ratio_ci'])}, p={_f(e['p'])}")
    lines.append(f"{'condition':28} {'n':>4} {'hit rate':>9} {'FA rate':>8} {'dprime':>6} "
                 f"{'accuracy':>9} {'median ms':>10}")
    for s in rep["conditions"].values():
        lines.append(f"{s['label'][:28]:28} {s['n']:>4} {_f(s['hit_rate'], True):>9} "
                     f"{_f(s['false_alarm_rate'], True):>8} {_f(s['dprime']):>6} "
                     f"{_f(s['accuracy'], True):>9} {_ms(s['time_ms']['median']):>10}")
    lines.append("secondary tests (per participant):")
    for m in ("hit_rate", "time_ms"):
        t = rep["paired"][m]
        if t["friedman"] is not None:
            fr = t["friedman"]
            lines.append(f"{m}: Friedman n={fr['n']} p={_f(fr['p'])}")
        for e in t["pairwise"]:
            lines.append(f"{m}: {e['a']} vs {e['b']} (n={e['n']}): Wilcoxon p="
                         f"{_f(e['wilcoxon']['p'])} (Holm {_f(e['wilcoxon'].get('p_holm'))}), "
                         f"paired t p={_f(e['t']['p'])}")
    for e in rep["items"]["pairwise"]:
        lines.append(f"items {e['a']} vs {e['b']}: {e['n_items']} items, a higher "
                     f"{e['a_higher']}, b higher {e['b_higher']}, Wilcoxon p="
                     f"{_f(e['wilcoxon']['p'])}, sign test p={_f(e['sign_test_p'])}")
    hv = rep["human_vs_machine"]
    hm = hv["overall"]
    ppp = hm["participants_per_pair"]
    lines.append(f"human hit rate ({hv['human_condition']}): {_f(hm['human_hit_rate'], True)}"
                 f"; answers per pair median {_f(ppp['median'])} (a per-pair test needs "
                 f"{hm['per_pair_test_needs']['answers_per_pair']}, i.e. about "
                 f"{hm['per_pair_test_needs']['participants']} participants)")
    for m, s in hm["methods"].items():
        pc = s["pooled"]["click"]
        eff = pc.get("machine_vs_human")
        lines.append(f"  {m}: success click {_f(s['success_rate_click'], True)}, IoU>0.5 "
                     f"{_f(s['success_rate'], True)}; pooled GLMM machine vs human (click): "
                     + (f"odds ratio {_f(eff['odds_ratio'])} p={_f(eff['p'])}" if eff
                        else pc.get("error", "n/a")))
    pr = rep["problems"]
    if pr["skipped_lines"] or pr["repeats"] or pr["refused"]:
        lines.append(f"{len(pr['skipped_lines'])} skipped lines, {len(pr['repeats'])} "
                     f"repeated answers not counted, {len(pr['refused'])} refused answers")
    return "\n".join(lines)
