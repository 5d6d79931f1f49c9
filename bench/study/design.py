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

Trials (§7.2)
    ``n_trials`` per participant, recorded: ``n_catch = round(catch * n_trials)`` *catch*
    trials and ``n_positive = n_trials - n_catch`` *positive* trials, each of a
    different query: an item is a query object, and no participant meets one twice
    (catch trials and practice included) unless ``allow_repeats`` (recorded). Positives
    are easy or hard pairs (q, i) with a ground-truth region (clicks are scored against
    it), one per query. Catch trials are *hard negatives* of other queries (the
    negative a method ranked best within its first ``hard_top`` results; a random
    negative as the fallback, the share recorded). ``n_practice`` practice trials (not
    recorded) come from queries that are not in the study.

Regions on catch trials (decoys, §7.2)
    Within each condition catch trials show a region as often as positives, with the
    same size and place: a method's own prediction on the negative pair where it has
    one, else a decoy (its prediction on another study positive, scaled into the image);
    in ``ground_truth`` another positive's ground-truth region, scaled. See
    :func:`_decoys`; the trial records which regions are decoys.

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

Everything is frozen into a :class:`StudyDefinition`: the pairs, the regions, the
predictions and decoys drawn, the methods' IoU on every positive pair (for the
human-against-machine comparison), the exclusion rules (:class:`ExclusionRules`),
consent, instruction and end-screen texts. Later edits of labels or results do not change
a running study. :func:`plan` shows the sequences before anyone takes part.
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
DEFINITION_VERSION = 3
MAX_CONDITIONS = 8
IOU_SUCCESS = 0.5  # a method localises a pair when its IoU is strictly above this
HARD_TOP = 100  # a negative within a method's first 100 results is a hard negative
MIN_CATCH = 4  # the default minimum of catch trials per condition and participant

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

__all__ = ["DEFAULT_CONSENT", "DEFAULT_DEBRIEF", "DEFAULT_INSTRUCTIONS", "EXCLUSION_RULES",
           "ExclusionRules", "GROUND_TRUTH", "HARD_TOP", "IOU_SUCCESS", "MIN_CATCH",
           "design_warnings", "plan", "scale_into",
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
    decoy_region: tuple[Polygon, ...] = ()  # drawn in ground_truth on a catch trial
    decoy: Mapping[str, bool] = field(default_factory=dict)  # condition -> decoy drawn
    image_size: tuple[int, int] | None = None  # (width, height) of the database image
    negative: str = ""  # catch trials: "hard" (ranked high by a method) | "random"
    negative_rank: int | None = None  # its best 0-based rank over the methods (hard)

    @property
    def pair(self) -> Pair:
        return (self.q, self.i)

    def shows_region(self, condition: str | None = None) -> bool:
        """Whether a region is drawn on the database image in *condition*."""
        return bool(self.annotation(condition)[1])

    def is_decoy(self, condition: str | None = None) -> bool:
        """Whether the region drawn in *condition* is a decoy (§7.2): a region taken
        from another pair and scaled into this image, drawn on a catch trial."""
        c = condition or self.condition
        return bool(self.decoy.get(c, False)) and self.shows_region(c)

    def region_arrays(self) -> list[np.ndarray]:
        return [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in self.region]

    def annotation(self, condition: str | None = None) -> tuple[str, list[np.ndarray]]:
        """What to draw on the database image in *condition* (default: the trial's):
        ``("none", [])``, ``("ground_truth", region polygons)`` (on a catch trial: the
        decoy region, or nothing; never a scoring region) or ``("prediction",
        [polygon])`` (the method's own prediction or, on a catch trial, possibly a
        decoy; empty when nothing is drawn)."""
        c = condition or self.condition
        if c is None:
            raise ValueError("the trial has no condition; take it from trials_for()")
        if c == NONE:
            return "none", []
        if c == GROUND_TRUTH:
            if self.kind == "catch":  # a decoy (or nothing); never the scoring region
                return "ground_truth", [np.asarray(p, dtype=np.float64).reshape(-1, 2)
                                        for p in self.decoy_region]
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
        if self.decoy_region:
            d["decoy_region"] = [[list(pt) for pt in p] for p in self.decoy_region]
        if self.decoy:
            d["decoy"] = {c: bool(v) for c, v in self.decoy.items()}
        if self.image_size is not None:
            d["image_size"] = list(self.image_size)
        if self.negative:
            d["negative"] = self.negative
            d["negative_rank"] = self.negative_rank
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
    decoy_region = d.get("decoy_region", [])
    if not isinstance(decoy_region, list):
        raise ValueError("trial decoy_region is not a list")
    decoy = d.get("decoy", {})
    if not isinstance(decoy, dict) or not all(
            c in conditions and isinstance(v, bool) for c, v in decoy.items()):
        raise ValueError("trial decoy is not an object of the study's conditions to booleans")
    size = d.get("image_size")
    if size is not None:
        size = tuple(int(v) for v in _num_list(size, 2, "image_size"))
        if min(size) < 1:
            raise ValueError("trial image_size is not positive")
    negative = d.get("negative", "")
    if negative not in ("", "hard", "random"):
        raise ValueError(f"trial negative {negative!r} is not hard or random")
    neg_rank = d.get("negative_rank")
    if neg_rank is not None and (isinstance(neg_rank, bool) or not isinstance(neg_rank, int)
                                 or neg_rank < 0):
        raise ValueError("trial negative_rank is not a rank")
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
        practice=practice, condition=cond,
        decoy_region=tuple(_polygon_json(p, "decoy_region") for p in decoy_region),
        decoy=decoy, image_size=size, negative=negative, negative_rank=neg_rank)
    if kind == "positive" and not t.region:
        raise ValueError(f"positive trial {t.id} has no region")
    for c in conditions:
        m = condition_method(c)
        if m is not None and m not in t.predictions:
            raise ValueError(f"trial {t.id} lacks the predictions of method {m!r}")
    return t


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


EXCLUSION_RULES = ("incomplete", "false_alarms", "fast", "hidden", "practice")


@dataclass(frozen=True)
class ExclusionRules:
    """The exclusion rules a study declares before anyone takes part (§7.2). A
    participant who answered at least one recorded trial is excluded by the first rule
    that applies, in this order:

    - ``incomplete``: answered fewer than ``min_completed`` of the recorded trials
      (a share; default 1.0: every trial);
    - ``false_alarms``: false-alarm rate on the catch trials (all conditions pooled)
      above ``max_false_alarm_rate`` (default 0.5: clicked on more than half of the
      images without the object);
    - ``fast``: more than ``max_fast_share`` (default 0.1) of the answers given faster
      than ``fast_ms`` (default 200 ms, browser time), too fast to have looked;
    - ``hidden``: the tab hidden for more than ``max_hidden_ms`` in all (default
      60,000 ms) during the recorded trials;
    - ``practice``: accuracy on the practice trials below ``min_practice_accuracy``
      (default None: not applied; applied only when practice answers are recorded).
    """

    min_completed: float = 1.0
    max_false_alarm_rate: float = 0.5
    fast_ms: float = 200.0
    max_fast_share: float = 0.1
    max_hidden_ms: float = 60_000.0
    min_practice_accuracy: float | None = None

    def __post_init__(self):
        for name in ("min_completed", "max_false_alarm_rate", "max_fast_share",
                     "min_practice_accuracy"):
            v = getattr(self, name)
            if v is None and name == "min_practice_accuracy":
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise ValueError(f"exclusion rule {name} must be a share in [0, 1], not {v!r}")
        for name in ("fast_ms", "max_hidden_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not (
                    math.isfinite(v) and v >= 0):
                raise ValueError(f"exclusion rule {name} must be a number of ms >= 0, "
                                 f"not {v!r}")

    def to_json(self) -> dict:
        return {"min_completed": self.min_completed,
                "max_false_alarm_rate": self.max_false_alarm_rate, "fast_ms": self.fast_ms,
                "max_fast_share": self.max_fast_share, "max_hidden_ms": self.max_hidden_ms,
                "min_practice_accuracy": self.min_practice_accuracy}

    @classmethod
    def from_json(cls, d) -> ExclusionRules:
        """Rules from a dict (missing keys take the defaults); ValueError naming a bad or
        unknown key."""
        if d is None:
            return cls()
        if isinstance(d, ExclusionRules):
            return d
        if not isinstance(d, Mapping):
            raise ValueError("exclusions is not an object")
        unknown = set(d) - set(cls().to_json())
        if unknown:
            raise ValueError(f"unknown exclusion rule(s) {sorted(unknown)}; known: "
                             f"{sorted(cls().to_json())}")
        return cls(**dict(d))

    def describe(self) -> dict[str, str]:
        """One sentence per rule (for the report and the experimenter's page)."""
        p = self.min_practice_accuracy
        return {
            "incomplete": f"answered fewer than {self.min_completed:.0%} of the recorded "
                          "trials",
            "false_alarms": f"false-alarm rate on catch trials above "
                            f"{self.max_false_alarm_rate:.0%}",
            "fast": f"more than {self.max_fast_share:.0%} of answers faster than "
                    f"{self.fast_ms:g} ms",
            "hidden": f"tab hidden for more than {self.max_hidden_ms / 1000:g} s in all",
            "practice": "not applied" if p is None else
                        f"practice accuracy below {p:.0%}"}


DEFAULT_DEBRIEF = (
    "Thank you for taking part. This study asks whether a region drawn on a photo helps "
    "people find an object, and how often a drawn region misleads: on some photos the "
    "object was not there, and a region was drawn on some of those too. Your answers "
    "are stored under your participant code {code}."
)


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
    allow_repeats: bool = False  # a query may be met more than once (small datasets)
    min_catch: int = 4  # the declared minimum of catch trials per condition and participant
    hard_top: int = 100  # a negative within a method's first hard_top results is "hard"
    exclusions: ExclusionRules = field(default_factory=ExclusionRules)
    debrief: str = DEFAULT_DEBRIEF  # the end screen; "{code}" = the participant's code
    contact: str = ""  # a contact line set by the experimenter, shown on the end screen
    # the recruiting platform (bench.study.platforms): "none" | "prolific" | "mturk" |
    # "param:NAME"; the completion code shown at the end (None: one per participant) and
    # the URL the end screen redirects to (None: the platform's default, if any)
    platform: str = "none"
    completion_code: str | None = None
    completion_url: str | None = None

    # ---- derived
    @property
    def meetings(self) -> int:
        """The most trials any one query has in a participant's sequence (1 = every
        query met once). Every participant sees every recorded trial."""
        counts: dict[int, int] = {}
        for t in self.trials:
            counts[t.q] = counts.get(t.q, 0) + 1
        return max(counts.values(), default=0)

    @property
    def study_queries(self) -> list[int]:
        return sorted({t.q for t in self.trials})

    @property
    def practice_queries(self) -> list[int]:
        return sorted({t.q for t in self.practice})

    @property
    def catch_sources(self) -> dict[str, int]:
        """How many catch trials are hard negatives and how many random ones."""
        cat = [t for t in self.trials if t.kind == "catch"]
        return {"hard": sum(t.negative == "hard" for t in cat),
                "random": sum(t.negative != "hard" for t in cat)}

    @property
    def catch_per_condition(self) -> int:
        """The fewest catch trials any participant has in any condition (each block is
        one condition for a participant)."""
        per_block = [0] * len(self.conditions)
        for t in self.trials:
            if t.kind == "catch":
                per_block[t.block] += 1
        return min(per_block) if per_block else 0

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
                "allow_repeats": self.allow_repeats, "min_catch": self.min_catch,
                "hard_top": self.hard_top, "exclusions": self.exclusions.to_json(),
                "debrief": self.debrief, "contact": self.contact,
                "practice_queries": self.practice_queries,
                "catch_sources": self.catch_sources,
                "platform": self.platform, "completion_code": self.completion_code,
                "completion_url": self.completion_url,
                "trials": [t.to_json() for t in self.trials],
                "practice": [t.to_json() for t in self.practice]}

    @classmethod
    def from_json(cls, d: Mapping) -> StudyDefinition:
        """Rebuild and check a definition record; ValueError with the reason."""
        if d.get("v") not in (2, DEFINITION_VERSION):
            raise ValueError(f"study record version {d.get('v')!r}, expected "
                             f"{DEFINITION_VERSION} (or 2)")
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
            for key in ("study", "dataset", "order", "consent", "instructions", "created",
                        "debrief", "contact"):
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
                       created=d.get("created", ""), **_platform_fields(d),
                       **_design_fields(d))
        except KeyError as exc:
            raise ValueError(f"study record: missing field {exc}") from None
        except (TypeError, OverflowError) as exc:
            raise ValueError(f"study record: bad field ({exc})") from None


def _platform_fields(d: Mapping) -> dict:
    """The definition's platform fields, checked (absent in older files: ``none``)."""
    from bench.study.platforms import (
        check_completion_code,
        check_completion_url,
        parse_platform,
    )

    platform = d.get("platform", "none")
    if not isinstance(platform, str):
        raise ValueError("field 'platform' is not a string")
    return {"platform": parse_platform(platform).name,
            "completion_code": check_completion_code(d.get("completion_code")),
            "completion_url": check_completion_url(d.get("completion_url"))}


def _design_fields(d: Mapping) -> dict:
    """The definition's design fields of version 3, checked (absent in version 2:
    the defaults)."""
    def flag(key: str) -> bool:
        v = d.get(key, False)
        if not isinstance(v, bool):
            raise ValueError(f"field {key!r} is not true or false")
        return v

    def count(key: str, default: int) -> int:
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10**6:
            raise ValueError(f"field {key!r} is not a count")
        return v

    return {"allow_repeats": flag("allow_repeats"), "min_catch": count("min_catch", 4),
            "hard_top": count("hard_top", 100),
            "exclusions": ExclusionRules.from_json(d.get("exclusions")),
            "debrief": d.get("debrief", DEFAULT_DEBRIEF), "contact": d.get("contact", "")}


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


def _negative_options(gnd: Gnd, q: int, rng: np.random.Generator, exclude: set[Pair],
                      hard: Sequence[tuple[int, int]], hard_top: int
                      ) -> list[tuple[int, str, int | None]]:
    """The negatives of query *q* a catch trial may show, best first: the *hard* ones
    (ranked within the first *hard_top* results of a method; ``(i, best rank)``,
    ascending rank, ties in random order), then the other negatives in random order.
    Each entry is ``(i, "hard" | "random", rank or None)``."""
    not_neg = set(np.concatenate([gnd.easy[q], gnd.hard[q], gnd.junk[q]]).tolist())
    ok = [i for i in range(gnd.n_db) if i not in not_neg and (q, i) not in exclude]
    okset = set(ok)
    tie = rng.random(len(hard))
    ranked = sorted(((int(r), t, int(i)) for (i, r), t in zip(hard, tie, strict=True)
                     if int(i) in okset and 0 <= int(r) < hard_top))
    out: list[tuple[int, str, int | None]] = []
    seen: set[int] = set()
    for r, _, i in ranked:
        if i not in seen:
            out.append((i, "hard", r))
            seen.add(i)
    rest = [i for i in ok if i not in seen]
    out += [(rest[j], "random", None) for j in rng.permutation(len(rest))]
    return out


def _catch_pairs(order: Sequence[int], n: int, options: Mapping[int, list]
                 ) -> list[tuple[Pair, str, int | None]]:
    """*n* catch pairs, cycling through the queries in *order* and taking each query's
    next negative (hard first); a query is visited again only after all others."""
    out: list[tuple[Pair, str, int | None]] = []
    depth = 0
    while len(out) < n and any(depth < len(options[q]) for q in order):
        for q in order:
            if len(out) < n and depth < len(options[q]):
                i, kind, rank = options[q][depth]
                out.append(((q, i), kind, rank))
        depth += 1
    return out


def _box(gnd: Gnd, q: int):
    b = gnd.bbx[q] if q < len(gnd.bbx) else None
    return None if b is None else tuple(float(v) for v in b)


def _one_per_query(pool: Sequence[Pair], level: Mapping[Pair, str], n_pos: int,
                   n_hard: int, rng: np.random.Generator) -> list[Pair]:
    """*n_pos* positives of *pool*, at most one per query: *n_hard* hard ones where
    enough queries have a hard pair (else easy ones make up the number), the rest easy
    (else hard). Queries and pairs are drawn at random."""
    by_q: dict[int, dict[str, list[Pair]]] = {}
    for p in pool:
        by_q.setdefault(p[0], {"easy": [], "hard": []})[level[p]].append(p)
    queries = [sorted(by_q)[j] for j in rng.permutation(len(by_q))]
    used: set[int] = set()
    chosen: list[Pair] = []

    def take(kind: str, n: int) -> None:
        for q in queries:
            if n <= 0:
                return
            if q not in used and by_q[q][kind]:
                opts = by_q[q][kind]
                chosen.append(opts[int(rng.integers(len(opts)))])
                used.add(q)
                n -= 1

    take("hard", n_hard)
    take("easy", n_pos - len(chosen))
    take("hard", n_pos - len(chosen))
    easy = [p for p in chosen if level[p] == "easy"]
    return easy + [p for p in chosen if level[p] == "hard"]  # easy first, then hard


def _size(sizes: Mapping[int, tuple[int, int]] | None, i: int) -> tuple[int, int] | None:
    if sizes is None:
        return None
    s = sizes.get(i)
    if s is None or len(s) != 2 or min(s) < 1:
        return None
    return (int(s[0]), int(s[1]))


def scale_into(polys: Sequence[np.ndarray], src: tuple[int, int] | None,
               dst: tuple[int, int] | None) -> tuple[Polygon, ...]:
    """Polygons drawn on an image of size *src* (width, height) moved onto one of size
    *dst* by scaling x by dst_w / src_w and y by dst_h / src_h (the same place and the
    same share of the image); unchanged when a size is unknown (§7.2, decoys)."""
    if src is None or dst is None:
        return tuple(_poly(p) for p in polys)
    f = np.array([dst[0] / src[0], dst[1] / src[1]])
    return tuple(_poly(np.asarray(p, dtype=np.float64).reshape(-1, 2) * f) for p in polys)


def _decoys(positives: Sequence[tuple[Pair, int]], catches: Sequence[tuple[Pair, int]],
            conds: Sequence[str], gt: Mapping[Pair, Sequence[np.ndarray]],
            preds: Mapping[str, Mapping[Pair, np.ndarray | None]],
            sizes: Mapping[int, tuple[int, int]] | None, rng: np.random.Generator,
            k: int) -> dict[Pair, dict]:
    """What the annotated conditions draw on each catch pair (§7.2).

    Per block (one condition for a participant) and per ``method:M`` condition, the
    number of catch trials with a region is ``round(s * n_catch)``, s = the share of the
    block's positives on which M predicted a region: catch pairs on which M itself
    predicted a region come first (its own prediction is drawn, not a decoy), the others
    get a *decoy*: M's prediction on a random positive pair of the study (another
    query), scaled into the catch image. ``ground_truth`` draws a decoy on every catch
    trial (every positive shows its region): the ground-truth region of a random
    positive pair of the study, scaled into the image. Returns ``{pair: {"predictions":
    {m: polygon | None}, "decoy": {condition: bool}, "decoy_region": polygons}}``."""
    out: dict[Pair, dict] = {p: {"predictions": {}, "decoy": {}, "decoy_region": ()}
                             for p, _ in catches}
    all_pos = [p for p, _ in positives]
    for c in conds:
        m = condition_method(c)
        if c == NONE:
            continue
        if m is None:  # ground truth
            sources = [p for p in all_pos if gt.get(p)]
        else:
            sources = [p for p in all_pos if preds[m].get(p) is not None]
        for b in range(k):
            pos_b = [p for p, blk in positives if blk == b]
            cat_b = [p for p, blk in catches if blk == b]
            if not cat_b:
                continue
            if m is None:
                share = (sum(bool(gt.get(p)) for p in pos_b) / len(pos_b)) if pos_b else 1.0
            else:
                share = (sum(preds[m].get(p) is not None for p in pos_b) / len(pos_b)
                         if pos_b else 0.0)
            target = int(math.floor(share * len(cat_b) + 0.5))
            order = [cat_b[j] for j in rng.permutation(len(cat_b))]
            own = [p for p in order if m is not None and preds[m].get(p) is not None]
            drawn = own[:target]
            decoy = [p for p in order if p not in drawn][:target - len(drawn)]
            for p in order:
                if m is not None:
                    out[p]["predictions"][m] = _poly(preds[m][p]) if p in drawn else None
            for p in decoy:
                cands = [s for s in sources if s[0] != p[0]] or sources
                if not cands:
                    continue
                src = cands[int(rng.integers(len(cands)))]
                shapes = gt[src] if m is None else [preds[m][src]]
                poly = scale_into(shapes, _size(sizes, src[1]), _size(sizes, p[1]))
                if m is None:
                    out[p]["decoy_region"] = poly
                else:
                    out[p]["predictions"][m] = poly[0]
                out[p]["decoy"][c] = True
    return out


def make_definition(*, study: str, gnd: Gnd, gt: Mapping[Pair, Sequence[np.ndarray]],
                    conditions: str | Sequence[str], n_trials: int, catch: float, seed: int,
                    preds: Mapping[str, Mapping[Pair, np.ndarray | None]] | None = None,
                    ious: Mapping[str, Mapping[Pair, tuple[float, float]]] | None = None,
                    root: str | None = None, order: str = "shuffled", n_practice: int = 2,
                    hard_fraction: float | None = None, require_prediction: bool = False,
                    exclude: Iterable[Pair] = (), consent: str | None = None,
                    instructions: str | None = None, created: str | None = None,
                    hard_negatives: Mapping[int, Sequence[tuple[int, int]]] | None = None,
                    sizes: Mapping[int, tuple[int, int]] | None = None,
                    hard_top: int = HARD_TOP, allow_repeats: bool = False,
                    min_catch: int = MIN_CATCH, exclusions=None,
                    debrief: str | None = None, contact: str = "",
                    **extra) -> StudyDefinition:
    """Build a study (pure: everything comes in as data; §7.2).

    Parameters
    ----------
    study : the study's name.
    gnd, gt : the dataset's ground truth (§1) and its pairs' regions (§2).
    conditions : see :func:`parse_conditions`; ``method:M`` needs ``preds[M]``.
    n_trials : recorded trials per participant (positives + catch trials), one query
        each: the study needs ``n_trials`` different queries (ValueError with the
        numbers otherwise, unless *allow_repeats*).
    catch : share of catch trials in ``[0, 1)``: ``n_catch = round(catch * n_trials)``.
    seed : the sample, the decoys, the practice trials and every participant's order.
    preds : ``{method: {(q, i): (n, 2) polygon or None}}``; the methods of the
        conditions must be there. Predictions on negative pairs are drawn on catch
        trials that show them.
    ious : ``{method: {(q, i): (bbox IoU, seg IoU)}}`` on positive pairs, for every method
        to compare with humans (a pair missing from a method's dict counts ``(0, 0)``).
    order : ``"shuffled"`` (default) or ``"blocked"`` (see the module docstring).
    n_practice : practice trials, from queries not in the study (fewer when not enough
        queries are left; the definition lists the practice queries).
    hard_fraction : share of hard positives (default: their share among the candidates).
    require_prediction : only positives every method of the conditions predicted.
    exclude : pairs never used (e.g. an image file is missing).
    hard_negatives : ``{q: [(i, rank), ...]}``: database images the methods ranked high
        for q (0-based rank, the best over the methods); those that are negatives within
        *hard_top* are the catch trials' first choice, random negatives the fallback.
    sizes : ``{i: (width, height)}`` of database images, to scale decoys into an image.
    allow_repeats : let a participant meet a query more than once when the dataset has
        too few queries (recorded; the report says so).
    min_catch : the minimum of catch trials per condition and participant the design is
        checked against (:func:`design_warnings`).
    exclusions : :class:`ExclusionRules` (or a dict of its fields) declared now.
    debrief, contact : the end screen's text (``{code}`` = the participant's code) and
        the experimenter's contact line.
    extra : further definition fields (e.g. the recruiting platform's), passed on.
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
    if isinstance(min_catch, bool) or not isinstance(min_catch, int) or min_catch < 0:
        raise ValueError(f"the minimum of catch trials must be an integer >= 0, not "
                         f"{min_catch!r}")
    if isinstance(hard_top, bool) or not isinstance(hard_top, int) or hard_top < 1:
        raise ValueError(f"hard_top must be an integer >= 1, not {hard_top!r}")
    rules = ExclusionRules.from_json(exclusions)
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
    hard_negatives = hard_negatives or {}
    options = {q: _negative_options(gnd, q, rng, excluded, hard_negatives.get(q, ()),
                                    hard_top) for q in range(gnd.n_queries)}
    pos_queries = sorted({q for q, _ in pool})
    neg_queries = [q for q in range(gnd.n_queries) if options[q]]
    hard = [p for p in pool if level[p] == "hard"]
    frac = len(hard) / len(pool) if hard_fraction is None else hard_fraction
    n_hard = min(int(round(n_pos * frac)), len(hard))
    if not allow_repeats:
        usable = sorted(set(pos_queries) | set(neg_queries))
        if n_pos > len(pos_queries) or n_trials > len(usable):
            raise ValueError(
                f"{n_trials} trials ({n_pos} positive, {n_catch} catch) need {n_trials} "
                f"different queries, one per trial, so that no participant meets a query "
                f"twice; {gnd.name} has {len(usable)} usable queries, {len(pos_queries)} of "
                f"them with a positive pair with a region; use at most "
                f"{min(len(usable), len(pos_queries) + n_catch)} trials, or allow repeats "
                f"(--allow-repeats: a participant then meets up to "
                f"{math.ceil(n_trials / max(1, len(usable)))} trials of one query)")
        positives = _one_per_query(pool, level, n_pos, n_hard, rng)
        taken = {q for q, _ in positives}
        rest = [q for q in neg_queries if q not in taken]
        rest = [rest[j] for j in rng.permutation(len(rest))]
        rest.sort(key=lambda q: options[q][0][1] != "hard")  # queries with a hard negative
        if n_catch > len(rest):
            raise ValueError(f"{n_catch} catch trials need {n_catch} queries besides the "
                             f"{n_pos} of the positives; {gnd.name} has {len(rest)} left; "
                             "lower the catch share, or allow repeats")
        catches = _catch_pairs(rest[:n_catch], n_catch, options)
    else:
        # as few meetings as possible: one positive per query first, then more pairs
        # spread over the queries; catch trials go to the least used queries first
        n_first = min(n_pos, len(pos_queries))
        first = _one_per_query(pool, level, n_first,
                               min(n_hard, int(round(n_first * frac))), rng)
        more = spread([p for p in pool if p not in set(first)], rng)[:n_pos - n_first]
        chosen = first + more
        positives = ([p for p in chosen if level[p] == "easy"]
                     + [p for p in chosen if level[p] == "hard"])
        uses = {q: 0 for q in neg_queries}
        for q, _ in positives:
            if q in uses:
                uses[q] += 1
        tie = rng.random(len(neg_queries))
        qorder = [q for _, _, q in sorted(zip([uses[q] for q in neg_queries], tie,
                                              neg_queries, strict=True))]
        catches = _catch_pairs(qorder, n_catch, options)
    if len(catches) < n_catch:
        raise ValueError(f"{n_catch} catch trials asked but the dataset has only "
                         f"{len(catches)} negative images to show; lower the catch share")
    pos_blocks = [(p, j % k) for j, p in enumerate(positives)]
    cat_blocks = [(p, (len(positives) + j) % k) for j, (p, _, _) in enumerate(catches)]
    neg_info = {p: (kind, rank) for p, kind, rank in catches}

    # practice: queries that are not in the study (one negative when there are catch trials)
    study_q = {q for q, _ in positives} | {p[0] for p, _, _ in catches}
    used = set(positives) | set(neg_info) | excluded
    free = [p for p in pool if p[0] not in study_q and p not in used]
    if allow_repeats and not free:  # a small dataset: pairs outside the study at least
        free = [p for p in pool if p not in used]
    n_prac_neg = 1 if (n_catch and n_practice >= 2) else 0
    prac_pos: list[Pair] = []
    for p in spread(free, rng):
        if len(prac_pos) < n_practice - n_prac_neg and p[0] not in {x[0] for x in prac_pos}:
            prac_pos.append(p)
    prac_neg: list[tuple[Pair, str, int | None]] = []
    if n_prac_neg:
        left = [q for q in neg_queries if q not in study_q | {x[0] for x in prac_pos}]
        if allow_repeats and not left:
            left = list(neg_queries)
        left = [left[j] for j in rng.permutation(len(left))]
        opts = {q: [o for o in options[q] if (q, o[0]) not in used] for q in left}
        prac_neg = _catch_pairs([q for q in left if opts[q]][:1], 1, opts)
    prac = [(p, "positive") for p in prac_pos] + [(p, "catch") for p, _, _ in prac_neg]
    prac = [prac[j] for j in rng.permutation(len(prac))]
    prac_cond = {p: conds[j % k] for j, (p, _) in enumerate(prac)}
    # decoys: the study's catch trials by block; a practice catch trial as its own block
    drawn = _decoys(pos_blocks, cat_blocks, conds, gt, preds, sizes, rng, k)
    for p, _ in [x for x in prac if x[1] == "catch"]:
        c = prac_cond[p]
        blk = conds.index(c)
        one = _decoys([(x, blk) for x, _ in pos_blocks], [(p, blk)], conds, gt, preds,
                      sizes, rng, k)
        drawn[p] = one[p]
    for p, kind, rank in prac_neg:
        neg_info[p] = (kind, rank)

    def trial(p: Pair, kind: str, block: int, *, practice: bool = False,
              condition: str | None = None, index: int = 0) -> StudyTrial:
        q, i = p
        pos = kind == "positive"
        extra_c = drawn.get(p, {}) if not pos else {}
        if pos:
            pr = {m: None if preds[m].get(p) is None else _poly(preds[m][p]) for m in shown}
        else:
            pr = {m: extra_c.get("predictions", {}).get(m) for m in shown}
        nk, nr = neg_info.get(p, ("", None)) if not pos else ("", None)
        return StudyTrial(
            id=f"practice-{index + 1}" if practice else f"q{q}-i{i}", q=q, i=i,
            query=gnd.qimlist[q], image=gnd.imlist[i], query_box=_box(gnd, q), kind=kind,
            difficulty=level[p] if pos else "negative", block=0 if practice else block,
            region=tuple(_poly(s) for s in gt.get(p, [])) if pos else (),
            predictions=pr,
            iou={m: tuple(float(v) for v in ious[m].get(p, (0.0, 0.0)))
                 for m in sorted(ious)} if pos else {},
            practice=practice, condition=condition,
            decoy_region=extra_c.get("decoy_region", ()) if not pos else (),
            decoy=dict(extra_c.get("decoy", {})) if not pos else {},
            image_size=_size(sizes, i), negative=nk, negative_rank=nr)

    trials = [trial(p, "positive", b) for p, b in pos_blocks]
    trials += [trial(p, "catch", b) for p, b in cat_blocks]
    practice = [trial(p, kind, 0, practice=True, condition=prac_cond[p], index=j)
                for j, (p, kind) in enumerate(prac)]
    minutes = max(1, math.ceil((n_trials + len(practice)) * 8 / 60))
    return StudyDefinition(
        study=study, dataset=gnd.name, root=root, conditions=conds, n_trials=n_trials,
        catch=float(catch), seed=int(seed), order=order,
        square=tuple(tuple(r) for r in rows), trials=tuple(trials), practice=tuple(practice),
        methods=tuple(sorted(ious)),
        consent=consent if consent is not None else DEFAULT_CONSENT.format(minutes=minutes),
        instructions=instructions if instructions is not None else DEFAULT_INSTRUCTIONS,
        created=created if created is not None else _now(),
        allow_repeats=bool(allow_repeats), min_catch=min_catch, hard_top=hard_top,
        exclusions=rules, debrief=debrief if debrief is not None else DEFAULT_DEBRIEF,
        contact=contact, **extra)


def design_warnings(d: StudyDefinition) -> list[str]:
    """What a reviewer would object to in the design (printed by ``study new``)."""
    out = []
    if d.n_catch and d.catch_per_condition < d.min_catch:
        out.append(f"{d.catch_per_condition} catch trials per condition and participant, "
                   f"below the minimum of {d.min_catch}: d' and the false-alarm rate per "
                   "participant are mostly noise; raise the trials or the catch share")
    if d.n_catch == 0:
        out.append("no catch trials: the false-alarm rate and d' cannot be computed, and "
                   "a participant who clicks anywhere scores every positive it hits")
    if d.meetings > 1:
        out.append(f"repeats allowed: a participant meets up to {d.meetings} trials of one "
                   "query, so learning the object is confounded with the conditions")
    src = d.catch_sources
    if d.n_catch and src["random"]:
        out.append(f"{src['random']} of {d.n_catch} catch trials are random negatives (no "
                   "method ranked a negative of their query in its first "
                   f"{d.hard_top} results): usually another landmark, easy to reject")
    if len(d.practice) == 0:
        out.append("no practice trials (no query left outside the study)")
    return out


def plan(d: StudyDefinition, n_participants: int | None = None) -> dict:
    """The sequences the design gives the first *n_participants* participants (default
    one per row of the square), without recording anything, and a summary per
    condition (§7.2, ``study plan --json``). Participant ids are placeholders
    ``plan-1``, ...; a real id changes the order of the trials, not their conditions."""
    n = d.n_rows if n_participants is None else int(n_participants)
    if n < 1:
        raise ValueError("the plan needs at least one participant")
    parts = []
    summary = {c: {"trials": 0, "catch": 0, "positive": 0, "catch_region": 0,
                   "positive_region": 0, "catch_decoy": 0} for c in d.conditions}
    per_participant_catch: list[int] = []
    for j in range(n):
        row = j % d.n_rows
        pid = f"plan-{j + 1}"
        seq = [("practice", t) for t in d.practice] + [
            ("trial", t) for t in d.trials_for(row, pid)]
        trials = []
        counts = {c: 0 for c in d.conditions}
        for what, t in seq:
            c = t.condition
            region = t.shows_region(c)
            decoy = t.is_decoy(c)
            trials.append({"query": t.query, "image": t.image, "condition": c,
                           "catch": t.kind == "catch", "region": region, "decoy": decoy,
                           "practice": what == "practice"})
            if what == "trial":
                s = summary[c]
                s["trials"] += 1
                if t.kind == "catch":
                    s["catch"] += 1
                    s["catch_region"] += region
                    s["catch_decoy"] += decoy
                    counts[c] += 1
                else:
                    s["positive"] += 1
                    s["positive_region"] += region
        per_participant_catch.append(min(counts.values()))
        parts.append({"participant": pid, "group": row, "trials": trials})
    for s in summary.values():
        s["catch_region_share"] = s["catch_region"] / s["catch"] if s["catch"] else None
        s["positive_region_share"] = (s["positive_region"] / s["positive"]
                                      if s["positive"] else None)
    return {"study": d.study, "n_participants": n, "groups": d.n_rows,
            "participants": parts, "summary": summary,
            "min_catch_per_condition": min(per_participant_catch),
            "meetings_per_query": d.meetings, "allow_repeats": d.allow_repeats,
            "practice_queries": sorted({t.query for t in d.practice}),
            "catch_sources": d.catch_sources, "warnings": design_warnings(d)}


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
    hard_negatives: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)  # from the labels


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
    gt, pair_sizes, _paths, warns = load_ground_truth_labels(gnd, ds.pair_labels,
                                                             ds.labels_root)
    warnings = [str(w) for w in warns]
    sizes = {i: s for (_q, i), s in sorted(pair_sizes.items()) if s}
    hard = hard_negative_candidates(gnd, ds, warnings)
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
                       warnings=warnings, hard_negatives=hard, sizes=sizes)


def hard_negative_candidates(gnd: Gnd, ds, warnings: list[str], *, top: int = HARD_TOP
                             ) -> dict[int, list[tuple[int, int]]]:
    """``{q: [(i, best rank), ...]}``: the database images within the first *top* results
    of any method's ranking of query q (ranks ``.npy`` of the dataset files *ds*, §1),
    with the best 0-based rank over the methods; positives and junk are left in (the
    design keeps the negatives). A ranking that cannot be read is a warning."""
    from bench.formats.revisited import load_ranks

    best: dict[int, dict[int, int]] = {q: {} for q in range(gnd.n_queries)}
    for name, mf in sorted(ds.methods.items()):
        if mf.ranks is None:
            continue
        try:
            ranks = load_ranks(mf.ranks, gnd)
        except BenchError as exc:
            warnings.append(f"method {name}: ranking not used for hard negatives ({exc})")
            continue
        head = np.asarray(ranks[:top, :])
        for q in range(gnd.n_queries):
            mine = best[q]
            for r, i in enumerate(head[:, q].tolist()):
                if i < gnd.n_db and r < mine.get(i, top):
                    mine[i] = r
    return {q: sorted(v.items(), key=lambda kv: kv[1]) for q, v in best.items() if v}


class _ImageSizes(Mapping):
    """Database image sizes: from the labels where known, else read from the image
    file's header on first use (:func:`bench.thumbs.image_size`)."""

    def __init__(self, known: Mapping[int, tuple[int, int]], gnd: Gnd, images: Path | None):
        self._d = dict(known)
        self._gnd, self._images = gnd, images

    def __getitem__(self, i: int) -> tuple[int, int]:
        if i not in self._d:
            from bench.thumbs import image_size, resolve_image

            s = None
            if self._images is not None and 0 <= i < self._gnd.n_db:
                s = image_size(resolve_image(self._images, self._gnd.imlist[i]))
            self._d[i] = s
        s = self._d[i]
        if s is None:
            raise KeyError(i)
        return s

    def __iter__(self):
        return iter(k for k, v in self._d.items() if v is not None)

    def __len__(self) -> int:
        return sum(v is not None for v in self._d.values())


def new_definition(study: str, dataset: str, *, root: str | os.PathLike | None = None,
                   conditions: str | Sequence[str], n_trials: int, catch: float, seed: int,
                   **options) -> tuple[StudyDefinition, list[str]]:
    """Read *dataset* (under *root*, or the embedded demo) and build the study
    (:func:`make_definition`; *options* are passed on). Pairs whose query or database
    image file is missing from the images folder are not used. Returns the definition
    and the warnings met while reading."""
    from bench.thumbs import image_size, resolve_image

    ds = find_dataset(dataset, root)
    inp = load_study_inputs(ds)
    warnings = list(inp.warnings)
    exclude: set[Pair] = set()
    if inp.images is None:
        warnings.append(f"dataset {dataset} has no images folder: participants would see "
                        "placeholders instead of photos")
    else:
        g = inp.gnd
        # a file must exist and pass the pixel caps (header only; PROTOCOLS §8 rule 9)
        q_ok = [image_size(resolve_image(inp.images, n)) is not None for n in g.qimlist]
        d_ok = [image_size(resolve_image(inp.images, n)) is not None for n in g.imlist]
        exclude = {(q, i) for q in range(g.n_queries) for i in range(g.n_db)
                   if not (q_ok[q] and d_ok[i])}
        if exclude:
            warnings.append(f"{sum(not v for v in q_ok)} query and {sum(not v for v in d_ok)} "
                            f"database image files are missing, unreadable or above the "
                            f"pixel caps in {inp.images}; their pairs are not used")
    try:
        definition = make_definition(
            study=study, gnd=inp.gnd, gt=inp.gt, conditions=conditions, n_trials=n_trials,
            catch=catch, seed=seed, preds=inp.preds, ious=inp.ious,
            root=None if root is None else str(Path(root).expanduser().absolute()),
            exclude=exclude, hard_negatives=inp.hard_negatives,
            sizes=_ImageSizes(inp.sizes, inp.gnd, inp.images), **options)
    except ValueError as exc:
        raise BenchError("cannot design the study", ds.gnd, str(exc)) from None
    return definition, warnings


def images_dir(definition: StudyDefinition) -> Path | None:
    """The images folder of the study's dataset (under its root, or the demo's)."""
    try:
        return find_dataset(definition.dataset, definition.root).images
    except BenchError:
        return None
