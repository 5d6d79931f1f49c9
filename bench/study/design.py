"""The design of a user study: conditions, trials, the Latin square, each participant's
sequence (docs/PROTOCOLS.md §7).

A study asks: can a person find the query object in a database image, and does drawing a
region on the image help? Its parts:

Conditions
    Any list of ``none`` (the image alone), ``ground_truth`` (the pair's ground-truth
    region drawn on it: the union of its labelme shapes, §2) and ``method:<name>`` (the
    method's predicted polygon for the pair, from its ``matching_result``; nothing is
    drawn where the method predicted nothing). So "with vs without" is
    ``none,ground_truth`` and "method A vs method B vs nothing" is
    ``none,method:A,method:B``.

Trials
    ``n_trials`` per participant, recorded: ``n_catch = round(catch * n_trials)`` *catch*
    trials and ``n_positive = n_trials - n_catch`` *positive* trials. Positives are easy
    or hard pairs (q, i) of the ground truth with a ground-truth region (clicks are
    scored against it), sampled with the seed so that easy and hard keep their share
    and a short prefix covers many queries. Catch trials are *negatives* of the queries
    in the study: database images that are not easy, hard or junk for that query, so
    the object is not there and the right answer is "not in this image". Every
    participant sees every trial once. ``n_practice`` practice trials (not recorded) are
    drawn from pairs that are *not* in the study (positives, and one negative when the
    study has catch trials), each shown in one of the conditions in turn.

Counterbalancing
    Positives are dealt round-robin into ``k = len(conditions)`` blocks (easy pairs
    first, then hard, so every block has the same number of easy and of hard pairs up to
    one), and catch trials likewise. Row ``r`` of a Latin square ``L`` gives block ``b``
    the condition ``conditions[L[r][b]]``. The square is a Williams design: its rows are
    ``(w + r) mod k`` for the sequence ``w = 0, 1, k-1, 2, k-2, ...``; for odd k the
    mirrored rows are added when trials are presented block by block (``order=
    "blocked"``: then, over all rows, every condition follows every other equally
    often). With ``order="shuffled"`` (default) the k cyclic rows are used: the order
    of presentation is a per-participant shuffle, so only the block-to-condition
    balance matters. Participants are assigned to rows round-robin by the server in
    order of first arrival (``bench.study.store``), so after every ``n_rows``
    participants every pair has been shown equally often in every condition.

Order
    Each participant's trials are shuffled with ``numpy.random.default_rng([seed,
    h(participant)])`` (``h``: the first 4 bytes of the id's SHA-256), so a reload gives
    the same order and the participant resumes at the first unanswered trial.

Everything is frozen into a :class:`StudyDefinition` (the first line of the study file):
the pairs, the regions, the predictions drawn, the methods' IoU on every positive pair
(for the human-against-machine comparison), consent and instruction texts. Later edits
of labels or results do not change a running study.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.formats.pixel import Pair
from bench.formats.revisited import Gnd

NONE = "none"
GROUND_TRUTH = "ground_truth"
METHOD_PREFIX = "method:"
ORDERS = ("shuffled", "blocked")
DEFINITION_VERSION = 2
MAX_CONDITIONS = 8
IOU_SUCCESS = 0.5  # a method localises a pair when its IoU is strictly above this

DEFAULT_CONSENT = (
    "This is a study of how people find objects in photographs. You will see pairs of "
    "photos and answer by clicking; it takes about {minutes} minutes. We record your "
    "answers, where you click and how long each answer takes, under the participant code "
    "in your link, and nothing else about you. Taking part is voluntary: you may stop at "
    "any time by closing this page. Press \"I agree\" to take part."
)
DEFAULT_INSTRUCTIONS = (
    "On the left is a photo with an object marked by a box. On the right is another "
    "photo. If the same object is in the right photo, click on it as quickly as you can. "
    "If it is not there, press \"Not in this image\". Some photos show a coloured region "
    "or outline. A few practice trials come first; they are not recorded."
)

__all__ = ["DEFAULT_CONSENT", "DEFAULT_INSTRUCTIONS", "GROUND_TRUTH", "IOU_SUCCESS",
           "METHOD_PREFIX", "NONE", "ORDERS", "StudyDefinition", "StudyInputs", "StudyTrial",
           "condition_label", "condition_method", "find_dataset", "images_dir",
           "load_study_inputs", "make_definition", "new_definition", "parse_conditions",
           "square_rows", "stable_hash", "williams_square"]


# ---------------------------------------------------------------- conditions

def condition_method(condition: str) -> str | None:
    """The method of a ``method:<name>`` condition, else None."""
    return condition[len(METHOD_PREFIX):] if condition.startswith(METHOD_PREFIX) else None


def condition_label(condition: str) -> str:
    """A label for the experimenter (never shown to a participant)."""
    if condition == NONE:
        return "no annotation"
    if condition == GROUND_TRUTH:
        return "ground-truth region"
    return f"prediction of {condition_method(condition)}"


_METHOD_NAME = re.compile(r"^[^\s,]{1,100}$")


def parse_conditions(conditions: str | Iterable[str],
                     methods: Iterable[str] | None = None) -> tuple[str, ...]:
    """The conditions from ``"none,ground_truth,method:M"`` (or a list of such names),
    checked: known kinds, no repeat, 1 to 8 of them, and, when *methods* is given, every
    named method among them. ValueError with the reason otherwise."""
    items = conditions.split(",") if isinstance(conditions, str) else list(conditions)
    out: list[str] = []
    known = None if methods is None else set(methods)
    for raw in items:
        if not isinstance(raw, str):
            raise ValueError(f"condition {raw!r} is not a name")
        c = raw.strip()
        m = condition_method(c)
        if c not in (NONE, GROUND_TRUTH) and m is None:
            raise ValueError(f"unknown condition {c!r}: use none, ground_truth or method:<name>")
        if m is not None:
            if not _METHOD_NAME.match(m):
                raise ValueError(f"condition {c!r}: a method name, without spaces or commas")
            if known is not None and m not in known:
                have = ", ".join(sorted(known)) or "none"
                raise ValueError(f"condition {c!r}: no pixel results of method {m!r} "
                                 f"(methods with pixel results: {have})")
        if c in out:
            raise ValueError(f"condition {c!r} is listed twice")
        out.append(c)
    if not out or len(out) > MAX_CONDITIONS:
        raise ValueError(f"a study needs 1 to {MAX_CONDITIONS} conditions, not {len(out)}")
    return tuple(out)


# ---------------------------------------------------------------- the Latin square

def williams_square(k: int) -> list[list[int]]:
    """A Williams design over ``k`` conditions: ``k`` rows for even k, ``2k`` for odd k
    (the cyclic rows and their mirror images). Every row is a permutation of
    ``range(k)``; every column holds each condition equally often; over all rows each
    ordered pair of different conditions is adjacent (a then b) equally often: once
    for even k, twice for odd k."""
    if k < 1:
        raise ValueError("k must be >= 1")
    first = [0 if j == 0 else ((j + 1) // 2 if j % 2 else k - j // 2) for j in range(k)]
    rows = [[(x + r) % k for x in first] for r in range(k)]
    if k % 2 and k > 1:
        rows += [row[::-1] for row in rows]
    return rows


def square_rows(k: int, order: str) -> list[list[int]]:
    """The rows a study uses: the k cyclic Williams rows (a Latin square) when trials are
    shuffled; the full Williams design (2k rows for odd k) when presented in blocks."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    rows = williams_square(k)
    return rows if order == "blocked" else rows[:k]


def stable_hash(text: str) -> int:
    """The first 4 bytes of SHA-256(text), as an int (a seed part that never changes)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")


# ---------------------------------------------------------------- trials and definition

Polygon = tuple[tuple[float, float], ...]


def _poly(a) -> Polygon:
    arr = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    return tuple((float(x), float(y)) for x, y in arr.tolist())


@dataclass(frozen=True)
class StudyTrial:
    """One trial: a pair, what it shows, and (per participant) its condition.

    ``region`` is the ground-truth region (positives; empty for a catch trial);
    ``predictions[m]`` the polygon method m predicted for the pair (None: no
    prediction), for the methods of the study's conditions; ``iou[m]`` = ``(bbox, seg)``
    IoU of method m on the pair (official protocol, §2; 0 without a prediction), for
    every method the dataset has results of (positives only). ``condition`` is None in
    the definition and set in a participant's sequence (:meth:`StudyDefinition.
    trials_for`); practice trials carry theirs."""

    id: str
    q: int
    i: int
    query: str
    image: str
    query_box: tuple[float, float, float, float] | None
    kind: str  # "positive" | "catch"
    difficulty: str  # "easy" | "hard" | "negative"
    block: int
    region: tuple[Polygon, ...] = ()
    predictions: Mapping[str, Polygon | None] = field(default_factory=dict)
    iou: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    practice: bool = False
    condition: str | None = None

    @property
    def pair(self) -> Pair:
        return (self.q, self.i)

    def region_arrays(self) -> list[np.ndarray]:
        return [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in self.region]

    def annotation(self, condition: str | None = None) -> tuple[str, list[np.ndarray]]:
        """What to draw on the database image in *condition* (default: the trial's):
        ``("none", [])``, ``("ground_truth", region polygons)`` (empty on a catch trial:
        there is no region) or ``("prediction", [polygon])`` (empty when the method
        predicted nothing for this pair)."""
        c = condition or self.condition
        if c is None:
            raise ValueError("the trial has no condition; take it from trials_for()")
        if c == NONE:
            return "none", []
        if c == GROUND_TRUTH:
            return "ground_truth", self.region_arrays()
        m = condition_method(c)
        if m is None or m not in self.predictions:
            raise ValueError(f"condition {c!r} is not one of this study's")
        p = self.predictions[m]
        return "prediction", [] if p is None else [np.asarray(p, dtype=np.float64)]

    def to_json(self) -> dict:
        d = {"id": self.id, "q": self.q, "i": self.i, "query": self.query,
             "image": self.image,
             "query_box": None if self.query_box is None else list(self.query_box),
             "kind": self.kind, "difficulty": self.difficulty, "block": self.block,
             "region": [[list(pt) for pt in p] for p in self.region],
             "predictions": {m: None if p is None else [list(pt) for pt in p]
                             for m, p in self.predictions.items()},
             "iou": {m: list(v) for m, v in self.iou.items()}}
        if self.practice:
            d["practice"] = True
            d["condition"] = self.condition
        return d


def _num_list(v, n: int | None, what: str) -> list[float]:
    if not isinstance(v, list) or (n is not None and len(v) != n):
        raise ValueError(f"{what} is not a list of {n or 'some'} numbers")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise ValueError(f"{what} holds a non-number")
        x = float(x)
        if not math.isfinite(x) or abs(x) > 2**20:
            raise ValueError(f"{what} holds a non-finite or huge number")
        out.append(x)
    return out


def _polygon_json(v, what: str) -> Polygon:
    if not isinstance(v, list) or len(v) > 100_000:
        raise ValueError(f"{what} is not a list of points")
    return tuple(tuple(_num_list(pt, 2, what)) for pt in v)  # type: ignore[misc]


def _trial_from_json(d, conditions: Sequence[str], k: int) -> StudyTrial:
    if not isinstance(d, dict):
        raise ValueError("a trial is not an object")

    def s(key):
        v = d.get(key)
        if not isinstance(v, str) or not v or len(v) > 1000:
            raise ValueError(f"trial field {key!r} is not a string")
        return v

    def n(key, hi=2**31 - 1):
        v = d.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
            raise ValueError(f"trial field {key!r} is not an integer in [0, {hi}]")
        return v

    kind = s("kind")
    if kind not in ("positive", "catch"):
        raise ValueError(f"trial kind {kind!r}")
    box = d.get("query_box")
    box = None if box is None else tuple(_num_list(box, 4, "query_box"))
    region = d.get("region", [])
    if not isinstance(region, list):
        raise ValueError("trial region is not a list")
    preds = d.get("predictions", {})
    ious = d.get("iou", {})
    if not isinstance(preds, dict) or not isinstance(ious, dict):
        raise ValueError("trial predictions / iou are not objects")
    practice = d.get("practice", False) is True
    cond = d.get("condition") if practice else None
    if practice and cond not in conditions:
        raise ValueError(f"practice trial condition {cond!r} is not one of the study's")
    t = StudyTrial(
        id=s("id"), q=n("q"), i=n("i"), query=s("query"), image=s("image"), query_box=box,
        kind=kind, difficulty=s("difficulty"), block=n("block", max(k - 1, 0)),
        region=tuple(_polygon_json(p, "region") for p in region),
        predictions={str(m): None if p is None else _polygon_json(p, "prediction")
                     for m, p in preds.items()},
        iou={str(m): tuple(_num_list(v, 2, "iou")) for m, v in ious.items()},
        practice=practice, condition=cond)
    if kind == "positive" and not t.region:
        raise ValueError(f"positive trial {t.id} has no region")
    for c in conditions:
        m = condition_method(c)
        if m is not None and m not in t.predictions:
            raise ValueError(f"trial {t.id} lacks the predictions of method {m!r}")
    return t


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, eq=False)
class StudyDefinition:
    """A study, frozen when it is created (see the module docstring)."""

    study: str
    dataset: str  # the gnd's name, e.g. rdemo, roxford5k
    root: str | None  # the data folder in the released layout; None = the embedded demo
    conditions: tuple[str, ...]
    n_trials: int
    catch: float
    seed: int
    order: str
    square: tuple[tuple[int, ...], ...]
    trials: tuple[StudyTrial, ...]  # positives then catch trials, definition order
    practice: tuple[StudyTrial, ...] = ()
    methods: tuple[str, ...] = ()  # every method with an IoU on the positives
    consent: str = DEFAULT_CONSENT
    instructions: str = DEFAULT_INSTRUCTIONS
    created: str = ""

    # ---- derived
    @property
    def n_rows(self) -> int:
        return len(self.square)

    @property
    def n_positive(self) -> int:
        return sum(t.kind == "positive" for t in self.trials)

    @property
    def n_catch(self) -> int:
        return sum(t.kind == "catch" for t in self.trials)

    @cached_property
    def _by_id(self) -> dict[str, StudyTrial]:
        return {t.id: t for t in self.trials}

    def trial(self, trial_id: str) -> StudyTrial:
        """The recorded trial *trial_id* (KeyError if the study has none)."""
        return self._by_id[trial_id]

    def condition_of(self, trial: StudyTrial, row: int) -> str:
        """The condition of *trial* for participants of square row *row*."""
        return self.conditions[self.square[row % self.n_rows][trial.block]]

    def trials_for(self, row: int, participant: str) -> list[StudyTrial]:
        """The recorded trials of a participant of square row *row*, each with its
        condition, in the participant's order (see the module docstring)."""
        pid = participant.strip()
        if not pid:
            raise ValueError("the participant id is empty")
        mine = [replace(t, condition=self.condition_of(t, row)) for t in self.trials]
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, stable_hash(pid)])
        perm = rng.permutation(len(mine))
        shuffled = [mine[k] for k in perm]
        if self.order == "blocked":  # blocks in column order, shuffled inside
            shuffled.sort(key=lambda t: t.block)
        return shuffled

    def to_json(self) -> dict:
        return {"kind": "study", "v": DEFINITION_VERSION, "study": self.study,
                "dataset": self.dataset, "root": self.root,
                "conditions": list(self.conditions), "n_trials": self.n_trials,
                "catch": self.catch, "seed": self.seed, "order": self.order,
                "square": [list(r) for r in self.square],
                "methods": list(self.methods), "consent": self.consent,
                "instructions": self.instructions, "created": self.created,
                "trials": [t.to_json() for t in self.trials],
                "practice": [t.to_json() for t in self.practice]}

    @classmethod
    def from_json(cls, d: Mapping) -> StudyDefinition:
        """Rebuild and check a definition record; ValueError with the reason."""
        if d.get("v") != DEFINITION_VERSION:
            raise ValueError(f"study record version {d.get('v')!r}, expected "
                             f"{DEFINITION_VERSION}")
        try:
            conditions = parse_conditions(d["conditions"])
            k = len(conditions)
            square = d["square"]
            if (not isinstance(square, list) or not square or len(square) > 2 * k
                    or any(not isinstance(r, list) or sorted(r) != list(range(k))
                           for r in square)):
                raise ValueError("square: rows must be permutations of the conditions")
            trials_raw, practice_raw = d["trials"], d.get("practice", [])
            if not isinstance(trials_raw, list) or not isinstance(practice_raw, list):
                raise ValueError("trials are not lists")
            trials = tuple(_trial_from_json(t, conditions, k) for t in trials_raw)
            practice = tuple(_trial_from_json(t, conditions, k) for t in practice_raw)
            ids = [t.id for t in trials + practice]
            if len(set(ids)) != len(ids):
                raise ValueError("a trial id is listed twice")
            for key in ("study", "dataset", "order", "consent", "instructions", "created"):
                if not isinstance(d.get(key, ""), str):
                    raise ValueError(f"field {key!r} is not a string")
            root = d.get("root")
            if root is not None and not isinstance(root, str):
                raise ValueError("field 'root' is not a string")
            seed, n_trials, catch = d["seed"], d["n_trials"], d["catch"]
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
                raise ValueError("seed is not an integer in [0, 2^32)")
            if n_trials != len(trials):
                raise ValueError(f"n_trials = {n_trials!r} but {len(trials)} trials")
            if isinstance(catch, bool) or not isinstance(catch, int | float) \
                    or not 0 <= catch < 1:
                raise ValueError("catch is not a share in [0, 1)")
            if d["order"] not in ORDERS:
                raise ValueError(f"order {d['order']!r}")
            methods = d.get("methods", [])
            if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
                raise ValueError("methods is not a list of names")
            return cls(study=d["study"], dataset=d["dataset"], root=root,
                       conditions=conditions, n_trials=n_trials, catch=float(catch),
                       seed=seed, order=d["order"], square=tuple(tuple(r) for r in square),
                       trials=trials, practice=practice, methods=tuple(methods),
                       consent=d.get("consent", DEFAULT_CONSENT),
                       instructions=d.get("instructions", DEFAULT_INSTRUCTIONS),
                       created=d.get("created", ""))
        except KeyError as exc:
            raise ValueError(f"study record: missing field {exc}") from None
        except (TypeError, OverflowError) as exc:
            raise ValueError(f"study record: bad field ({exc})") from None


# ---------------------------------------------------------------- sampling

def difficulty_of(gnd: Gnd) -> dict[Pair, str]:
    """``(q, i) -> "easy" | "hard"`` for every positive pair (easy wins a double listing)."""
    out: dict[Pair, str] = {}
    for q in range(gnd.n_queries):
        out.update({(q, int(i)): "hard" for i in gnd.hard[q]})
        out.update({(q, int(i)): "easy" for i in gnd.easy[q]})
    return out


def spread(pairs: list[Pair], rng: np.random.Generator) -> list[Pair]:
    """A random order of *pairs* that cycles through the queries (round robin, in a
    random query order), so a short prefix covers as many queries as possible."""
    shuffled = [pairs[k] for k in rng.permutation(len(pairs))]
    by_query: dict[int, list[Pair]] = {}
    for p in shuffled:
        by_query.setdefault(p[0], []).append(p)
    queues = [by_query[q] for q in sorted(by_query)]
    queues = [queues[k] for k in rng.permutation(len(queues))]
    out: list[Pair] = []
    depth = 0
    while len(out) < len(pairs):
        out.extend(qu[depth] for qu in queues if depth < len(qu))
        depth += 1
    return out


def _negatives(gnd: Gnd, queries: Sequence[int], n: int, rng: np.random.Generator,
               exclude: set[Pair]) -> list[Pair]:
    """*n* distinct negative pairs of *queries* (cycling through them in a random order),
    avoiding *exclude*."""
    options: dict[int, list[int]] = {}
    for q in queries:
        not_neg = set(np.concatenate([gnd.easy[q], gnd.hard[q], gnd.junk[q]]).tolist())
        cand = [i for i in range(gnd.n_db) if i not in not_neg and (q, i) not in exclude]
        options[q] = [cand[j] for j in rng.permutation(len(cand))]
    order = [queries[j] for j in rng.permutation(len(queries))]
    out: list[Pair] = []
    depth = 0
    while len(out) < n and any(depth < len(options[q]) for q in order):
        for q in order:
            if len(out) < n and depth < len(options[q]):
                out.append((q, options[q][depth]))
        depth += 1
    return out


def _box(gnd: Gnd, q: int):
    b = gnd.bbx[q] if q < len(gnd.bbx) else None
    return None if b is None else tuple(float(v) for v in b)


def make_definition(*, study: str, gnd: Gnd, gt: Mapping[Pair, Sequence[np.ndarray]],
                    conditions: str | Sequence[str], n_trials: int, catch: float, seed: int,
                    preds: Mapping[str, Mapping[Pair, np.ndarray | None]] | None = None,
                    ious: Mapping[str, Mapping[Pair, tuple[float, float]]] | None = None,
                    root: str | None = None, order: str = "shuffled", n_practice: int = 2,
                    hard_fraction: float | None = None, require_prediction: bool = False,
                    exclude: Iterable[Pair] = (), consent: str | None = None,
                    instructions: str | None = None, created: str | None = None
                    ) -> StudyDefinition:
    """Build a study (pure: everything comes in as data).

    Parameters
    ----------
    study : the study's name.
    gnd, gt : the dataset's ground truth (§1) and its pairs' regions (§2).
    conditions : see :func:`parse_conditions`; ``method:M`` needs ``preds[M]``.
    n_trials : recorded trials per participant (positives + catch trials).
    catch : share of catch trials in ``[0, 1)``: ``n_catch = round(catch * n_trials)``.
    seed : the sample, the practice trials and every participant's order follow from it.
    preds : ``{method: {(q, i): (n, 2) polygon or None}}``; the methods of the
        conditions must be there.
    ious : ``{method: {(q, i): (bbox IoU, seg IoU)}}`` on positive pairs, for every method
        to compare with humans (a pair missing from a method's dict counts ``(0, 0)``).
    order : ``"shuffled"`` (default) or ``"blocked"`` (see the module docstring).
    n_practice : practice trials (fewer when not enough unused pairs are left).
    hard_fraction : share of hard positives (default: their share among the candidates).
    require_prediction : only positives every method of the conditions predicted.
    exclude : pairs never used (e.g. an image file is missing).
    """
    preds = dict(preds or {})
    ious = dict(ious or {})
    conds = parse_conditions(conditions, methods=preds.keys())
    k = len(conds)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise ValueError(f"the number of trials must be an integer >= 1, not {n_trials!r}")
    n_trials = int(n_trials)
    if isinstance(catch, bool) or not isinstance(catch, int | float) or not 0 <= catch < 1:
        raise ValueError(f"the catch share must be in [0, 1), not {catch!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"the seed must be an integer in [0, 2^32), not {seed!r}")
    if hard_fraction is not None and not 0.0 <= hard_fraction <= 1.0:
        raise ValueError(f"hard_fraction must be in [0, 1], not {hard_fraction}")
    if n_practice < 0:
        raise ValueError("n_practice must be >= 0")
    rows = square_rows(k, order)
    n_catch = int(round(catch * n_trials))
    n_pos = n_trials - n_catch
    if n_pos < k:
        raise ValueError(f"{n_pos} positive trials for {k} conditions: every condition needs "
                         "at least one positive trial per participant; raise the number of "
                         "trials or lower the catch share")
    shown = [condition_method(c) for c in conds if condition_method(c)]
    excluded = set(exclude)
    level = difficulty_of(gnd)
    pool = [p for p in sorted(level) if gt.get(p) and p not in excluded]
    if require_prediction:
        pool = [p for p in pool if all(preds[m].get(p) is not None for m in shown)]
    if n_pos > len(pool):
        raise ValueError(f"{n_pos} positive trials asked but only {len(pool)} positive pairs "
                         f"with a ground-truth region are available in {gnd.name}; lower the "
                         "number of trials")
    rng = np.random.default_rng(seed)
    easy = [p for p in pool if level[p] == "easy"]
    hard = [p for p in pool if level[p] == "hard"]
    frac = len(hard) / len(pool) if hard_fraction is None else hard_fraction
    n_hard = min(int(round(n_pos * frac)), len(hard))
    n_easy = min(n_pos - n_hard, len(easy))
    n_hard = n_pos - n_easy
    positives = spread(easy, rng)[:n_easy] + spread(hard, rng)[:n_hard]
    queries = sorted({q for q, _ in positives})
    negatives = _negatives(gnd, queries, n_catch, rng, excluded)
    if len(negatives) < n_catch:
        raise ValueError(f"{n_catch} catch trials asked but the study's queries have only "
                         f"{len(negatives)} negative images; lower the catch share")

    def trial(p: Pair, kind: str, block: int, *, practice: bool = False,
              condition: str | None = None) -> StudyTrial:
        q, i = p
        pos = kind == "positive"
        return StudyTrial(
            id=f"practice-{block + 1}" if practice else f"q{q}-i{i}", q=q, i=i,
            query=gnd.qimlist[q], image=gnd.imlist[i], query_box=_box(gnd, q), kind=kind,
            difficulty=level[p] if pos else "negative", block=0 if practice else block,
            region=tuple(_poly(s) for s in gt.get(p, [])) if pos else (),
            predictions={m: None if preds[m].get(p) is None else _poly(preds[m][p])
                         for m in shown},
            iou={m: tuple(float(v) for v in ious[m].get(p, (0.0, 0.0)))
                 for m in sorted(ious)} if pos else {},
            practice=practice, condition=condition)

    trials = [trial(p, "positive", j % k) for j, p in enumerate(positives)]
    trials += [trial(p, "catch", (len(positives) + j) % k) for j, p in enumerate(negatives)]

    # practice: pairs outside the study (one negative when the study has catch trials)
    used = set(positives) | set(negatives) | excluded
    spare = [p for p in spread([p for p in pool if p not in used], rng)]
    n_prac_neg = 1 if (n_catch and n_practice >= 2) else 0
    prac_pairs = [(p, "positive") for p in spare[:n_practice - n_prac_neg]]
    if n_prac_neg:
        prac_pairs += [(p, "catch") for p in _negatives(gnd, queries, 1, rng, used)]
    prac_pairs = [prac_pairs[j] for j in rng.permutation(len(prac_pairs))]
    practice = [trial(p, kind, j, practice=True, condition=conds[j % k])
                for j, (p, kind) in enumerate(prac_pairs)]
    minutes = max(1, math.ceil((n_trials + len(practice)) * 8 / 60))
    return StudyDefinition(
        study=study, dataset=gnd.name, root=root, conditions=conds, n_trials=n_trials,
        catch=float(catch), seed=int(seed), order=order,
        square=tuple(tuple(r) for r in rows), trials=tuple(trials), practice=tuple(practice),
        methods=tuple(sorted(ious)),
        consent=consent if consent is not None else DEFAULT_CONSENT.format(minutes=minutes),
        instructions=instructions if instructions is not None else DEFAULT_INSTRUCTIONS,
        created=created if created is not None else _now())


# ---------------------------------------------------------------- reading a dataset

@dataclass(frozen=True, eq=False)
class StudyInputs:
    """What a new study reads from disk (§1, §2)."""

    gnd: Gnd
    gt: dict[Pair, list[np.ndarray]]
    preds: dict[str, dict[Pair, np.ndarray | None]]
    ious: dict[str, dict[Pair, tuple[float, float]]]
    images: Path | None
    warnings: list[str] = field(default_factory=list)


def find_dataset(dataset: str, root: str | os.PathLike | None = None):
    """The :class:`bench.workspace.DatasetFiles` of *dataset* under *root* (released
    layout), or in the embedded demo when *root* is None (built on first use through
    :func:`bench.demo.build_demo`; any finished build, full or small, is used).
    BenchError naming what is there otherwise."""
    from bench.demo import build_demo, default_demo_dir, demo_is_built
    from bench.workspace import discover

    if root is None:
        base = default_demo_dir()
        if not demo_is_built(base):
            build_demo(base)
    else:
        base = Path(root).expanduser()
    found = discover(base)
    for ds in found:
        if ds.name == dataset:
            if ds.pair_labels is None:
                raise BenchError("no pixel labels", ds.gnd,
                                 f"dataset {dataset} has no {ds.short}_pair2labelpath.npy; a "
                                 "study needs the ground-truth regions to score clicks")
            return ds
    names = ", ".join(d.name for d in found)
    raise BenchError("unknown dataset", base, f"no dataset {dataset!r} here (found: {names})")


def load_study_inputs(ds, *, protocol: str = "official") -> StudyInputs:
    """Ground truth, regions, and every method's predictions and per-pair IoU on the
    positive pairs (*protocol* of §2) for the dataset files *ds*."""
    from bench.evaluate import load_ground_truth_labels
    from bench.formats.pixel import load_matches
    from bench.formats.revisited import load_gnd
    from bench.metrics.pixel import pair_ious

    gnd = load_gnd(ds.gnd)
    gt, _sizes, _paths, warns = load_ground_truth_labels(gnd, ds.pair_labels, ds.labels_root)
    warnings = [str(w) for w in warns]
    preds: dict[str, dict[Pair, np.ndarray | None]] = {}
    ious: dict[str, dict[Pair, tuple[float, float]]] = {}
    for name, mf in sorted(ds.methods.items()):
        if mf.matches is None:
            continue
        p, w = load_matches(mf.matches, n_queries=gnd.n_queries, n_db=gnd.n_db)
        warnings += [str(x) for x in w]
        preds[name] = p
        have = [pair for pair in sorted(gt) if p.get(pair) is not None and gt[pair]]
        iou = {pair: (0.0, 0.0) for pair in gt}
        if have:
            b, s = pair_ious([p[x] for x in have], [gt[x] for x in have], protocol=protocol)
            iou.update({x: (float(bb), float(ss)) for x, bb, ss in zip(have, b, s, strict=True)})
        ious[name] = iou
    return StudyInputs(gnd=gnd, gt=gt, preds=preds, ious=ious, images=ds.images,
                       warnings=warnings)


def new_definition(study: str, dataset: str, *, root: str | os.PathLike | None = None,
                   conditions: str | Sequence[str], n_trials: int, catch: float, seed: int,
                   **options) -> tuple[StudyDefinition, list[str]]:
    """Read *dataset* (under *root*, or the embedded demo) and build the study
    (:func:`make_definition`; *options* are passed on). Pairs whose query or database
    image file is missing from the images folder are not used. Returns the definition
    and the warnings met while reading."""
    from bench.thumbs import resolve_image

    ds = find_dataset(dataset, root)
    inp = load_study_inputs(ds)
    warnings = list(inp.warnings)
    exclude: set[Pair] = set()
    if inp.images is None:
        warnings.append(f"dataset {dataset} has no images folder: participants would see "
                        "placeholders instead of photos")
    else:
        g = inp.gnd
        q_ok = [resolve_image(inp.images, n) is not None for n in g.qimlist]
        d_ok = [resolve_image(inp.images, n) is not None for n in g.imlist]
        exclude = {(q, i) for q in range(g.n_queries) for i in range(g.n_db)
                   if not (q_ok[q] and d_ok[i])}
        if exclude:
            warnings.append(f"{sum(not v for v in q_ok)} query and {sum(not v for v in d_ok)} "
                            f"database image files are missing in {inp.images}; their pairs "
                            "are not used")
    try:
        definition = make_definition(
            study=study, gnd=inp.gnd, gt=inp.gt, conditions=conditions, n_trials=n_trials,
            catch=catch, seed=seed, preds=inp.preds, ious=inp.ious,
            root=None if root is None else str(Path(root).expanduser().absolute()),
            exclude=exclude, **options)
    except ValueError as exc:
        raise BenchError("cannot design the study", ds.gnd, str(exc)) from None
    return definition, warnings


def images_dir(definition: StudyDefinition) -> Path | None:
    """The images folder of the study's dataset (under its root, or the demo's)."""
    try:
        return find_dataset(definition.dataset, definition.root).images
    except BenchError:
        return None
