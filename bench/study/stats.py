"""Analysis of a user study with ``scipy.stats`` (docs/PROTOCOLS.md §7).

Every function takes records in and returns JSON-ready dicts (NaN -> ``None``); nothing
here reads a file or draws. :func:`report` is what ``python -m bench study report --json``
prints and what the experimenter's dashboard shows.

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

Item-level exact McNemar tests. A participant sees each pair once, in one condition, so
an *item* pairs answers of different participants: for pair p and conditions a, b, the
j-th participant (in order of arrival) who saw p in condition a is matched with the j-th
who saw p in condition b; unmatched answers are left out. With round-robin assignment
these are the participants of the same cycle of the Latin square. Over the items of the
positive pairs: b = hit in a only, c = hit in b only; p = ``scipy.stats.binomtest(b, b +
c, 0.5)`` (two-sided exact McNemar; 1 when b + c = 0); effect sizes: the matched odds
ratio b / c and the difference of hit proportions (b - c) / items. Holm-corrected over
the pairs of conditions.

Human against machine, on the study's positive pairs: the participants' hit rate per
pair (in condition ``none`` when the study has it, the unaided human; else over all
conditions) beside each method's IoU with the ground truth on the same pair (official
protocol, §2; 0 without a prediction) and its success (seg IoU > 0.5; the bbox IoU's
success beside it). Exact paired test per method over the pairs with answers: human
success = hit rate > 0.5 (pairs at exactly 0.5 are ties and left out), machine success
as above; b = human only, c = machine only; p = ``binomtest(b, b + c, 0.5)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from bench.study.design import IOU_SUCCESS, NONE, StudyDefinition, condition_label
from bench.study.records import Answer

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
        server = [a.server_ms for a in sel if a.trial_kind == "positive"
                  and a.answer != "timeout" and a.server_ms is not None]
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

def item_tests(answers: Sequence[Answer], conditions: Sequence[str],
               arrival: Mapping[str, int]) -> dict:
    """Exact McNemar tests on items (see the module docstring). *arrival* maps a
    participant to their arrival number (the store's assignment index)."""
    by: dict[tuple[str, str], list[tuple[int, str, bool]]] = {}
    for a in answers:
        if a.trial_kind == "positive":
            by.setdefault((a.trial, a.condition), []).append(
                (arrival.get(a.participant, 2**31), a.participant, a.outcome == "hit"))
    for v in by.values():
        v.sort()
    trials = sorted({t for t, _ in by})
    k = len(conditions)
    pairwise = []
    for ia in range(k):
        for ib in range(ia + 1, k):
            ca, cb = conditions[ia], conditions[ib]
            both = only_a = only_b = neither = 0
            for t in trials:
                for (_, _, ha), (_, _, hb) in zip(by.get((t, ca), []), by.get((t, cb), []),
                                                  strict=False):
                    both += ha and hb
                    only_a += ha and not hb
                    only_b += hb and not ha
                    neither += not ha and not hb
            n = both + only_a + only_b + neither
            disc = only_a + only_b
            p = float(stats.binomtest(only_a, disc, 0.5).pvalue) if disc else 1.0
            pairwise.append({"a": ca, "b": cb, "n_items": n, "both": both, "only_a": only_a,
                             "only_b": only_b, "neither": neither, "p_exact": p,
                             "odds_ratio": only_a / only_b if only_b else None,
                             "difference": (only_a - only_b) / n if n else None})
    for e, p in zip(pairwise, holm([e["p_exact"] for e in pairwise]), strict=True):
        e["p_holm"] = p
    return {"outcome": "hit, positive pairs",
            "matching": "j-th participant (by arrival) who saw the pair in a with the j-th "
                        "who saw it in b",
            "pairwise": pairwise}


# ---------------------------------------------------------------- human against machine

def human_vs_machine(answers: Sequence[Answer], definition: StudyDefinition) -> dict:
    """Participants' hit rate per positive pair beside each method's IoU and success on
    the same pair, with an exact paired test per method (see the module docstring)."""
    conds = definition.conditions
    human_condition = NONE if NONE in conds else None
    positives = [t for t in definition.trials if t.kind == "positive"]
    methods = list(definition.methods)
    by_trial: dict[str, list[Answer]] = {}
    for a in answers:
        by_trial.setdefault(a.trial, []).append(a)
    pairs = []
    for t in positives:
        sel = by_trial.get(t.id, [])
        used = [a for a in sel if human_condition is None or a.condition == human_condition]
        hits = sum(a.outcome == "hit" for a in used)
        by_c = {}
        for c in conds:
            sc = [a for a in sel if a.condition == c]
            by_c[c] = _rate(sum(a.outcome == "hit" for a in sc), len(sc))
        machine = {}
        for m in methods:
            bb, sg = t.iou.get(m, (0.0, 0.0))
            machine[m] = {"iou_bbox": bb, "iou_seg": sg, "success": sg > IOU_SUCCESS,
                          "success_bbox": bb > IOU_SUCCESS}
        pairs.append({"trial": t.id, "q": t.q, "i": t.i, "difficulty": t.difficulty,
                      "n": len(used), "hits": hits, "hit_rate": _rate(hits, len(used)),
                      "hit_rate_by_condition": by_c, "machine": machine})
    answered = [p for p in pairs if p["n"]]
    overall: dict = {
        "n_pairs": len(pairs), "n_pairs_answered": len(answered),
        "human_hit_rate": _rate(sum(p["hits"] for p in pairs), sum(p["n"] for p in pairs)),
        "human_mean_pair_hit_rate": _mean([p["hit_rate"] for p in answered]),
        "methods": {}}
    for m in methods:
        seg = [p["machine"][m]["iou_seg"] for p in pairs]
        box = [p["machine"][m]["iou_bbox"] for p in pairs]
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
        overall["methods"][m] = {
            "success_rate": _mean([s > IOU_SUCCESS for s in seg]),
            "success_rate_bbox": _mean([b > IOU_SUCCESS for b in box]),
            "mean_iou_seg": _mean(seg), "mean_iou_bbox": _mean(box),
            "test": {"n_pairs": both + human_only + machine_only + neither, "both": both,
                     "human_only": human_only, "machine_only": machine_only,
                     "neither": neither, "ties_excluded": ties,
                     "p_exact": float(stats.binomtest(human_only, disc, 0.5).pvalue)
                     if disc else 1.0}}
    return {"human_condition": human_condition or "all",
            "success": f"seg IoU > {IOU_SUCCESS} (official protocol); human: hit rate > 0.5",
            "pairs": pairs, "overall": overall}


# ---------------------------------------------------------------- the report

def report(state, *, n_resamples: int = N_RESAMPLES, seed: int = 0, level: float = LEVEL
           ) -> dict:
    """The whole analysis of a study (a :class:`bench.study.store.StudyState`), as
    printed by ``python -m bench study report --json``; its shape is documented in
    docs/PROTOCOLS.md §7."""
    d: StudyDefinition = state.definition
    answers = state.answers
    conds = list(d.conditions)
    per_pid: dict[str, int] = {}
    for a in answers:
        per_pid[a.participant] = per_pid.get(a.participant, 0) + 1
    rows_info = []
    for r, row in enumerate(d.square):
        members = [p for p, asg in state.assignments.items() if asg.row == r]
        rows_info.append({"row": r, "conditions_by_block": [conds[j] for j in row],
                          "assigned": len(members),
                          "completed": sum(per_pid.get(p, 0) >= d.n_trials for p in members),
                          "answers": sum(per_pid.get(p, 0) for p in members)})
    plist = [{"participant": p, "row": asg.row, "index": asg.index, "assigned_at": asg.at,
              "answered": per_pid.get(p, 0), "complete": per_pid.get(p, 0) >= d.n_trials}
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
                   "methods": list(d.methods), "created": d.created},
        "participants": {"assigned": len(state.assignments),
                         "started": sum(1 for p in state.assignments if per_pid.get(p)),
                         "completed": sum(p["complete"] for p in plist),
                         "rows": rows_info, "list": plist},
        "n_answers": len(answers),
        "conditions": condition_summary(answers, conds, n_resamples=n_resamples, seed=seed,
                                        level=level),
        "participant_measures": table,
        "paired": {m: paired_tests(table, conds, m) for m in MEASURES},
        "items": item_tests(answers, conds,
                            {p: a.index for p, a in state.assignments.items()}),
        "human_vs_machine": human_vs_machine(answers, d),
        "problems": {"skipped_lines": [str(p) for p in state.problems],
                     "repeats": [str(p) for p in state.repeats],
                     "refused": [{"participant": r.participant, "trial": r.trial,
                                  "why": r.why, "at": r.at} for r in state.refused]},
        "settings": {
            "level": level,
            "bootstrap": {"method": "percentile", "n_resamples": n_resamples, "seed": seed},
            "dprime": "log-linear: H = (hits + 0.5) / (positives + 1), "
                      "F = (false alarms + 0.5) / (catch + 1)",
            "proportion_ci": "Clopper-Pearson exact",
            "time": "browser ms, positive trials answered without a flag",
            "wilcoxon": "two-sided, zero differences dropped (zero_method='wilcox')",
            "multiple_comparisons": "Holm, over the pairs of conditions"},
    }


def _f(x, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}%" if pct else f"{x:.3g}"


def _ms(x) -> str:
    return "n/a" if x is None else f"{x:.0f}"


def format_report(rep: Mapping) -> str:
    """A short text version of :func:`report` for the terminal."""
    d, p = rep["design"], rep["participants"]
    lines = [f"study {rep['study']}: dataset {d['dataset']} ({d['source']}), "
             f"{d['n_trials']} trials ({d['n_catch']} catch), conditions "
             f"{', '.join(d['conditions'])}",
             f"participants: {p['assigned']} assigned, {p['started']} started, "
             f"{p['completed']} completed; {rep['n_answers']} answers",
             f"{'condition':28} {'n':>4} {'hit rate':>9} {'FA rate':>8} {'dprime':>6} "
             f"{'accuracy':>9} {'median ms':>10}"]
    for s in rep["conditions"].values():
        lines.append(f"{s['label'][:28]:28} {s['n']:>4} {_f(s['hit_rate'], True):>9} "
                     f"{_f(s['false_alarm_rate'], True):>8} {_f(s['dprime']):>6} "
                     f"{_f(s['accuracy'], True):>9} {_ms(s['time_ms']['median']):>10}")
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
        lines.append(f"items {e['a']} vs {e['b']}: {e['n_items']} items, hit only in a "
                     f"{e['only_a']}, only in b {e['only_b']}, exact McNemar p="
                     f"{_f(e['p_exact'])}")
    hm = rep["human_vs_machine"]["overall"]
    lines.append(f"human hit rate ({rep['human_vs_machine']['human_condition']}): "
                 f"{_f(hm['human_hit_rate'], True)}")
    for m, s in hm["methods"].items():
        t = s["test"]
        lines.append(f"  {m}: success {_f(s['success_rate'], True)}, mean seg IoU "
                     f"{_f(s['mean_iou_seg'])}; human only {t['human_only']}, machine only "
                     f"{t['machine_only']}, exact p={_f(t['p_exact'])}")
    pr = rep["problems"]
    if pr["skipped_lines"] or pr["repeats"] or pr["refused"]:
        lines.append(f"{len(pr['skipped_lines'])} skipped lines, {len(pr['repeats'])} "
                     f"repeated answers not counted, {len(pr['refused'])} refused answers")
    return "\n".join(lines)
