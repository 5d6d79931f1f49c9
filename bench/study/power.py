"""Power before data: simulate a study's design with the model of the analysis and
count how often it finds a given effect (docs/PROTOCOLS.md §7.5, ``study power``).

The generative model is signal detection with crossed random effects, the model the
report fits (§7.5):

    probit P("here" | participant p, item i, condition c, present x)
        = a_c + d_c (x - 1/2) + u_p + v_i,   u_p ~ N(0, sd_participant^2),
                                             v_i ~ N(0, sd_item^2)

with ``a_c = (z(H_c) + z(F_c)) / 2`` and ``d_c = z(H_c) - z(F_c)``, so that at u = v = 0
the hit rate is H_c and the false-alarm rate F_c. A "here" on a positive trial is a hit,
on a catch trial a false alarm. The reference condition has H_0, F_0; the tested
condition differs by the effect sought: ``hit_rate`` adds *effect* to H (F unchanged),
``dprime`` adds *effect* to d' (criterion unchanged). Each simulated study is the
design itself (its items, blocks and Latin square, participants assigned round-robin to
the rows) answered by simulated participants, then analysed with the report's model:
the logistic GLMM of a correct answer for ``hit_rate``, the probit SDT GLMM for
``dprime``; power = the share of simulated studies with p < alpha for the tested
condition's coefficient.

Defaults (H_0 = 0.80, F_0 = 0.10, sd_participant = 0.5, sd_item = 0.8 on the probit
scale) are replaced by a pilot study's estimates when one is given (:func:`pilot_values`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from bench.study.design import StudyDefinition
from bench.study.records import Answer

MEASURES = ("hit_rate", "dprime")
MAX_PARTICIPANTS = 500
DEFAULTS = {"hit_rate": 0.80, "false_alarm_rate": 0.10, "sd_participant": 0.5,
            "sd_item": 0.8}

__all__ = ["DEFAULTS", "MEASURES", "SimulatedState", "pilot_values", "power",
           "simulate_answers"]


@dataclass(frozen=True)
class _Assignment:
    participant: str
    row: int
    index: int
    at: str = ""


@dataclass
class SimulatedState:
    """What :func:`bench.study.stats.report` reads, for simulated answers."""

    definition: StudyDefinition
    answers: list[Answer]
    assignments: dict[str, _Assignment]
    path: Path = Path("<simulated>")
    refused: list = field(default_factory=list)
    repeats: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    participants: dict = field(default_factory=dict)


def _z(p: float) -> float:
    return float(stats.norm.ppf(min(max(p, 1e-4), 1 - 1e-4)))


def simulate_answers(d: StudyDefinition, n_participants: int, *,
                     rates: Mapping[str, tuple[float, float]],
                     sd_participant: float = DEFAULTS["sd_participant"],
                     sd_item: float = DEFAULTS["sd_item"], rng: np.random.Generator,
                     time_ms: float = 2000.0, time_effect: Mapping[str, float] | None = None,
                     time_sd: float = 0.4) -> SimulatedState:
    """A simulated study: *n_participants* participants (``sim-1``, ...; round-robin
    over the square's rows) answer every trial of *d* in its condition, with
    ``rates[c] = (hit rate, false-alarm rate)`` at average participant and item (see the
    module docstring). Browser times: lognormal, median ``time_ms * exp(time_effect[c])``,
    log-sd *time_sd*, no participant or item variation. Clicks are recorded at the
    region's first vertex (a hit) or at (0, 0)."""
    items = sorted({t.q for t in d.trials})
    v = dict(zip(items, rng.normal(0.0, sd_item, len(items)), strict=True))
    te = dict(time_effect or {})
    answers: list[Answer] = []
    asg: dict[str, _Assignment] = {}
    for j in range(n_participants):
        pid = f"sim-{j + 1}"
        row = j % d.n_rows
        asg[pid] = _Assignment(pid, row, j)
        u = float(rng.normal(0.0, sd_participant))
        for k, t in enumerate(d.trials_for(row, pid), start=1):
            c = t.condition
            h, f = rates[c]
            zh, zf = _z(h), _z(f)
            x = 0.5 if t.kind == "positive" else -0.5
            here = rng.random() < stats.norm.cdf((zh + zf) / 2 + (zh - zf) * x + u + v[t.q])
            if t.kind == "positive":
                outcome = "hit" if here else "miss"
            else:
                outcome = "false_alarm" if here else "correct_rejection"
            pt = t.region[0][0] if (here and t.region) else (0.0, 0.0)
            ms = float(time_ms * math.exp(te.get(c, 0.0) + rng.normal(0.0, time_sd)))
            answers.append(Answer(
                study=d.study, participant=pid, trial=t.id, q=t.q, i=t.i, condition=c,
                trial_kind=t.kind, answer="click" if here else "not_present",
                outcome=outcome, x=float(pt[0]) if here else None,
                y=float(pt[1]) if here else None, browser_ms=ms, server_ms=ms + 20.0,
                hidden_ms=0.0, flags=(), row=row, index=k, at=""))
    return SimulatedState(definition=d, answers=answers, assignments=asg)


def pilot_values(state) -> dict:
    """Base rates and random-effect sds from a pilot study's answers (a
    :class:`~bench.study.store.StudyState`): hit and false-alarm rates of the reference
    condition, the participant and item sds of the SDT model (probit scale); the
    defaults where the pilot cannot give them. ``"source"`` says which."""
    from bench.study.stats import model_sdt, reference_condition

    d = state.definition
    ref = reference_condition(d.conditions)
    sel = [a for a in state.answers if a.condition == ref]
    pos = [a for a in sel if a.trial_kind == "positive"]
    cat = [a for a in sel if a.trial_kind == "catch"]
    out = dict(DEFAULTS)
    out["source"] = "defaults"
    if len(pos) >= 10 and len(cat) >= 5:
        out["hit_rate"] = (sum(a.outcome == "hit" for a in pos) + 0.5) / (len(pos) + 1)
        out["false_alarm_rate"] = ((sum(a.outcome == "false_alarm" for a in cat) + 0.5)
                                   / (len(cat) + 1))
        out["source"] = f"pilot {d.study} ({len({a.participant for a in sel})} participants)"
        m = model_sdt(state.answers, list(d.conditions))
        if "error" not in m:
            out["sd_participant"] = max(0.05, m["random_sd"]["participant"])
            out["sd_item"] = max(0.05, m["random_sd"]["item"])
    return out


def power(d: StudyDefinition, *, measure: str = "hit_rate", effect: float = 0.10,
          condition: str | None = None, participants: Sequence[int] | None = None,
          n_sims: int = 40, alpha: float = 0.05, target: float = 0.80, seed: int = 0,
          base: Mapping | None = None) -> dict:
    """Estimated power of the design for *effect* (a difference in hit rate, or in d')
    of *condition* (default: the first condition that is not the reference) against the
    reference, at each number of participants in *participants* (default: multiples of
    the square's rows, doubling from 2x up to 500 participants, stopping at the first
    that reaches *target*).
    Returns ``{"measure", "effect", "condition", "reference", "alpha", "target",
    "n_sims", "assumptions", "grid": [{"participants", "power", "ci"}], "needed"}``;
    ``needed`` = the fewest participants in the grid with power >= target (None if none
    did)."""
    from bench.study.stats import model_correct, model_sdt, reference_condition

    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, not {measure!r}")
    if n_sims < 1:
        raise ValueError("n_sims must be >= 1")
    conds = list(d.conditions)
    if len(conds) < 2:
        raise ValueError("power needs at least two conditions")
    ref = reference_condition(conds)
    cond = condition or next(c for c in conds if c != ref)
    if cond not in conds or cond == ref:
        raise ValueError(f"condition {cond!r} is not one of the study's other conditions "
                         f"({', '.join(c for c in conds if c != ref)})")
    if measure == "dprime" and d.n_catch == 0:
        raise ValueError("d' needs catch trials")
    b = dict(DEFAULTS)
    b.update(base or {})
    h0, f0 = float(b["hit_rate"]), float(b["false_alarm_rate"])
    if measure == "hit_rate":
        h1 = h0 + effect
        if not 0 < h1 < 1:
            raise ValueError(f"a hit rate of {h0:.2f} + {effect} is not a rate")
        rates = {c: (h0, f0) for c in conds}
        rates[cond] = (h1, f0)
    else:
        zh, zf = _z(h0), _z(f0)
        crit = -(zh + zf) / 2
        d1 = (zh - zf) + effect
        rates = {c: (h0, f0) for c in conds}
        rates[cond] = (float(stats.norm.cdf(-crit + d1 / 2)),
                       float(stats.norm.cdf(-crit - d1 / 2)))
    grid = list(participants) if participants else [
        d.n_rows * m for m in (2, 4, 8, 16, 32, 64, 128) if d.n_rows * m <= MAX_PARTICIPANTS]
    rng = np.random.default_rng(seed)
    rows = []
    needed = None
    for n in grid:
        hits = 0
        for _s in range(n_sims):
            st = simulate_answers(d, int(n), rates=rates, sd_participant=b["sd_participant"],
                                  sd_item=b["sd_item"], rng=rng)
            if measure == "hit_rate":
                m = model_correct(st.answers, conds)
                e = m.get("effects", {}).get(cond, {})
                pv = e.get("p")
            else:
                m = model_sdt(st.answers, conds)
                pv = m.get("effects", {}).get(cond, {}).get("dprime", {}).get("p")
            hits += pv is not None and pv < alpha
        ci = stats.binomtest(hits, n_sims).proportion_ci(method="exact")
        rows.append({"participants": int(n), "power": hits / n_sims,
                     "ci": [float(ci.low), float(ci.high)]})
        if hits / n_sims >= target:
            needed = int(n)
            if not participants:
                break
    return {"measure": measure, "effect": effect, "condition": cond, "reference": ref,
            "alpha": alpha, "target": target, "n_sims": n_sims, "seed": seed,
            "assumptions": {"hit_rate": h0, "false_alarm_rate": f0,
                            "rates": {c: list(v) for c, v in rates.items()},
                            "sd_participant": b["sd_participant"], "sd_item": b["sd_item"],
                            "source": b.get("source", "defaults"),
                            "model": "probit SDT with crossed random intercepts "
                                     "(bench.study.power)"},
            "grid": rows, "needed": needed}
