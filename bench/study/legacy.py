"""The first study format (two conditions, "with" / "without" annotation), kept only so
that the current ``pages/study.py`` and study files written by it keep working until the
page is rewritten on :mod:`bench.study.design`, :mod:`bench.study.store` and
:mod:`bench.study.stats` (docs/PROTOCOLS.md §7). New code must not use this module;
delete it with the old page.

Design: ``n_trials`` positive pairs split into two halves; group 0 sees H0 with the
annotation and H1 without, group 1 the other way round; the group is the parity of the
number that ends the participant id. Storage: one ``"design"`` record and one
``"response"`` record per answer, appended with :func:`bench.study.store.append_line`.
Analysis: per condition accuracy and time with percentile bootstrap intervals; exact
sign tests (``scipy.stats.binomtest``) per participant and per pair.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import stats

from bench.evaluate import load_ground_truth_labels, num
from bench.formats.pixel import Pair, load_matches
from bench.formats.revisited import Gnd, load_gnd
from bench.study.design import difficulty_of as _difficulty
from bench.study.design import spread as _spread
from bench.study.records import LineError, click_in_region, parse_line, to_csv
from bench.study.store import LineProblem, study_file
from bench.study.store import append_line as _append_line_shared

CONDITIONS = ("with", "without")
CONDITION_LABELS = {"with": "with annotation", "without": "without annotation"}
ANSWERS = ("found", "not found")
SOURCES = ("ground_truth", "method")
DIFFICULTIES = ("easy", "hard")
RECORD_VERSION = 1

__all__ = ["ANSWERS", "CONDITIONS", "CONDITION_LABELS", "SOURCES", "LineProblem", "Response",
           "StudyData", "StudyDesign", "StudyLog", "Trial", "analyse", "annotation_for",
           "append_design", "append_response", "available_pairs", "build_trials",
           "click_in_region", "ensure_design", "freeze_design", "load_study_data", "make_response", "make_trials",
           "participant_group", "participant_trials", "read_study", "remaining_trials",
           "responses_csv", "sign_test", "study_figure", "study_file", "summary_rows",
           "trials_from_design"]


# ---------------------------------------------------------------- design

@dataclass(frozen=True)
class Trial:
    """One showing of a pair: which images, in which condition, to which group."""

    trial_id: str  # "q{q}-i{i}-{condition}", unique in a study
    q: int
    i: int
    query: str  # qimlist name
    image: str  # imlist name
    difficulty: str  # "easy" | "hard"
    condition: str  # "with" | "without"
    group: int  # participants of this group (0 or 1) get this trial
    source: str  # "ground_truth" | "method"
    method: str | None = None

    @property
    def pair(self) -> Pair:
        return (self.q, self.i)


def make_trials(gnd: Gnd, pairs_available: Iterable[Pair], *, n_trials: int, seed: int,
                source: str = "ground_truth", method: str | None = None,
                hard_fraction: float | None = None) -> list[Trial]:
    """The trials of a balanced two-group study (see the module docstring).

    Parameters
    ----------
    gnd : the dataset's ground truth; its easy and hard lists say which pairs are
        positives and how hard they are (docs/PROTOCOLS.md §1). Pairs of *pairs_available* that
        are not easy or hard positives are ignored.
    pairs_available : the pairs that can be shown (for ``source="method"`` usually those
        with a ground-truth label and a prediction, see :func:`available_pairs`).
    n_trials : trials per participant = pairs sampled; even (half per condition), >= 2.
    seed : the whole design (sample, halves) follows from it.
    source : what the "with" condition draws: the ground truth or *method*'s prediction.
    hard_fraction : share of hard pairs to sample; default: their share among the
        available pairs. Capped by what is available.

    Returns
    -------
    ``2 * n_trials`` trials: every sampled pair once "with" (for one group) and once
    "without" (for the other), group 0's trials first. Each group has ``n_trials / 2``
    trials per condition, and its two halves differ by at most one hard pair.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    if source == "method" and not method:
        raise ValueError("source='method' needs the method's name")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 2:
        raise ValueError(f"n_trials must be an even integer >= 2, not {n_trials!r}")
    if n_trials % 2:
        raise ValueError(f"n_trials must be even (half the trials per condition), "
                         f"not {n_trials}")
    if hard_fraction is not None and not 0.0 <= hard_fraction <= 1.0:
        raise ValueError(f"hard_fraction must be in [0, 1], not {hard_fraction}")
    level = _difficulty(gnd)
    pool = sorted({(int(q), int(i)) for q, i in pairs_available} & set(level))
    if n_trials > len(pool):
        raise ValueError(f"n_trials = {n_trials} but only {len(pool)} positive pairs are "
                         "available; lower n_trials")
    easy = [p for p in pool if level[p] == "easy"]
    hard = [p for p in pool if level[p] == "hard"]
    frac = len(hard) / len(pool) if hard_fraction is None else hard_fraction
    n_hard = min(int(round(n_trials * frac)), len(hard))
    n_easy = min(n_trials - n_hard, len(easy))
    n_hard = n_trials - n_easy
    rng = np.random.default_rng(seed)
    chosen = _spread(easy, rng)[:n_easy] + _spread(hard, rng)[:n_hard]
    return build_trials(gnd, chosen, source=source, method=method)


def build_trials(gnd: Gnd, pairs: Sequence[Pair], *, source: str = "ground_truth",
                 method: str | None = None) -> list[Trial]:
    """The two groups' trials of the sampled *pairs*, in this order (the second half of
    :func:`make_trials`; also rebuilds a stored design). Halves alternate along the list
    (pair 0 -> H0, pair 1 -> H1, ...), so with the easy pairs listed before the hard ones
    the halves are equal and their numbers of hard pairs differ by at most one. Group
    0's trials come first."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    level = _difficulty(gnd)
    chosen = [(int(q), int(i)) for q, i in pairs]
    if len(set(chosen)) != len(chosen):
        raise ValueError("a pair is listed twice")
    if len(chosen) % 2:
        raise ValueError(f"{len(chosen)} pairs: the number must be even")
    not_pos = [p for p in chosen if p not in level]
    if not_pos:
        q, i = not_pos[0]
        raise ValueError(f"pair {q}_{i} is not an easy or hard positive of {gnd.name}")
    half = {p: k % 2 for k, p in enumerate(chosen)}
    trials = []
    for group in (0, 1):
        for p in chosen:
            cond = "with" if half[p] == group else "without"
            q, i = p
            trials.append(Trial(trial_id=f"q{q}-i{i}-{cond}", q=q, i=i,
                                query=gnd.qimlist[q], image=gnd.imlist[i],
                                difficulty=level[p], condition=cond, group=group,
                                source=source, method=method if source == "method" else None))
    return trials


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def participant_group(participant: str) -> int:
    """0 or 1: the parity of the number that ends the id (``"P7"`` -> 1, ``"12"`` -> 0);
    for an id that does not end in a digit, the parity of a stable hash of it. Number
    participants 1, 2, 3, ... and the two groups stay balanced."""
    pid = participant.strip()
    m = re.search(r"(\d+)$", pid)
    if m:
        return int(m.group(1)) % 2
    return _stable_int(pid) % 2


def participant_trials(trials: Sequence[Trial], participant: str, *, seed: int) -> list[Trial]:
    """The trials of *participant*'s group in the participant's own random order (the
    same for the same seed and id, so a participant can resume after a reload)."""
    pid = participant.strip()
    if not pid:
        raise ValueError("the participant id is empty")
    mine = [t for t in trials if t.group == participant_group(pid)]
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _stable_int(pid) & 0xFFFFFFFF])
    return [mine[k] for k in rng.permutation(len(mine))]


@dataclass(frozen=True)
class StudyDesign:
    """What the trials of a study are rebuilt from (the first record of its file)."""

    study: str
    dataset: str  # the gnd's name, e.g. roxford5k
    source: str
    n_trials: int
    seed: int
    method: str | None = None
    hard_fraction: float | None = None
    require_prediction: bool = True
    created: str = ""
    pairs: tuple[Pair, ...] | None = None  # the sampled pairs, in order (see build_trials)

    def to_json(self) -> dict:
        d = {"kind": "design", "v": RECORD_VERSION, **asdict(self)}
        d["pairs"] = None if self.pairs is None else [list(p) for p in self.pairs]
        return d

    @classmethod
    def from_json(cls, d: Mapping) -> StudyDesign:
        try:
            pairs = d.get("pairs")
            if pairs is not None:
                pairs = tuple((int(q), int(i)) for q, i in pairs)
            design = cls(study=str(d["study"]), dataset=str(d["dataset"]),
                         source=str(d["source"]), n_trials=int(d["n_trials"]),
                         seed=int(d["seed"]), method=d.get("method"),
                         hard_fraction=(None if d.get("hard_fraction") is None
                                        else float(d["hard_fraction"])),
                         require_prediction=bool(d.get("require_prediction", True)),
                         created=str(d.get("created", "")), pairs=pairs)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"design record: missing or bad field ({exc})") from None
        if design.source not in SOURCES:
            raise ValueError(f"design record: unknown source {design.source!r}")
        return design

    def same_design(self, other: StudyDesign) -> bool:
        """Equal apart from the creation time."""
        a, b = asdict(self), asdict(other)
        a.pop("created")
        b.pop("created")
        return a == b


# ---------------------------------------------------------------- data for a study

@dataclass(frozen=True, eq=False)
class StudyData:
    """A dataset's ground truth, labels and (optionally) one method's predictions."""

    gnd: Gnd
    gt: dict[Pair, list[np.ndarray]]
    preds: dict[Pair, np.ndarray | None] | None
    images: Path | None
    warnings: list[str] = field(default_factory=list)


def load_study_data(gnd_path: str | os.PathLike, *, pair_labels: str | os.PathLike,
                    labels_root: str | os.PathLike | None,
                    images: str | os.PathLike | None = None,
                    matches: str | os.PathLike | None = None) -> StudyData:
    """Read what a study needs with the project's readers (docs/PROTOCOLS.md §1, §2)."""
    gnd = load_gnd(gnd_path)
    gt, _sizes, _paths, warnings = load_ground_truth_labels(gnd, pair_labels, labels_root)
    preds = None
    if matches is not None:
        preds, w2 = load_matches(matches, n_queries=gnd.n_queries, n_db=gnd.n_db)
        warnings = warnings + w2
    return StudyData(gnd=gnd, gt=gt, preds=preds,
                     images=Path(images) if images is not None else None,
                     warnings=[str(w) for w in warnings])


def available_pairs(gnd: Gnd, gt: Mapping[Pair, list[np.ndarray]],
                    preds: Mapping[Pair, np.ndarray | None] | None = None, *,
                    require_prediction: bool = True) -> list[Pair]:
    """Easy and hard pairs with a ground-truth region (needed to score clicks); with
    *preds* and *require_prediction*, only those the method localised as well."""
    level = _difficulty(gnd)
    out = [p for p in sorted(level) if gt.get(p)]
    if preds is not None and require_prediction:
        out = [p for p in out if preds.get(p) is not None]
    return out


def annotation_for(trial: Trial, gt: Mapping[Pair, list[np.ndarray]],
                   preds: Mapping[Pair, np.ndarray | None] | None = None) -> list[np.ndarray]:
    """The polygons to draw on the database image of *trial*: none "without"; "with", the
    ground-truth shapes, or the method's polygon (none if it predicted nothing)."""
    if trial.condition != "with":
        return []
    if trial.source == "ground_truth":
        return [np.asarray(s, dtype=np.float64) for s in gt.get(trial.pair, [])]
    pred = (preds or {}).get(trial.pair)
    return [] if pred is None else [np.asarray(pred, dtype=np.float64)]


def trials_from_design(design: StudyDesign, data: StudyData) -> list[Trial]:
    """A design's trials on *data*: from its stored pairs when it has them (so the study
    keeps its pairs even if a method's results or the labels change meanwhile), else
    sampled with its parameters (same seed -> same trials)."""
    if design.pairs is not None:
        if len(design.pairs) != design.n_trials:
            raise ValueError(f"the design lists {len(design.pairs)} pairs but "
                             f"n_trials = {design.n_trials}")
        return build_trials(data.gnd, design.pairs, source=design.source, method=design.method)
    pairs = available_pairs(data.gnd, data.gt, data.preds if design.source == "method" else None,
                            require_prediction=design.require_prediction)
    return make_trials(data.gnd, pairs, n_trials=design.n_trials, seed=design.seed,
                       source=design.source, method=design.method,
                       hard_fraction=design.hard_fraction)


def freeze_design(design: StudyDesign, data: StudyData) -> StudyDesign:
    """*design* with its sampled pairs recorded (what :func:`ensure_design` should store)."""
    trials = trials_from_design(replace(design, pairs=None), data)
    return replace(design, pairs=tuple(t.pair for t in trials if t.group == 0))


def remaining_trials(mine: Sequence[Trial], responses: Iterable[Response],
                     participant: str) -> list[Trial]:
    """*participant*'s trials (in their order) not yet answered in *responses*."""
    pid = participant.strip()
    done = {r.trial_id for r in responses if r.participant == pid}
    return [t for t in mine if t.trial_id not in done]


# ---------------------------------------------------------------- responses

@dataclass(frozen=True)
class Response:
    """One answer of one participant to one trial."""

    study: str
    participant: str
    trial_id: str
    q: int
    i: int
    query: str
    image: str
    difficulty: str
    condition: str
    source: str
    answer: str  # "found" | "not found"
    rt_s: float  # seconds from display to answer
    timestamp: str  # ISO 8601, UTC
    click: tuple[float, float] | None = None  # (x, y) in database-image pixels
    click_inside: bool | None = None  # click on the ground-truth region (None: no click)
    method: str | None = None

    @property
    def pair(self) -> Pair:
        return (self.q, self.i)

    @property
    def correct(self) -> bool:
        """With a click: the click is on the ground-truth region. Without: the
        participant answered "found" (every pair of the study is a positive)."""
        if self.click is not None:
            return bool(self.click_inside)
        return self.answer == "found"

    def to_json(self) -> dict:
        d = {"kind": "response", "v": RECORD_VERSION, **asdict(self)}
        d["click"] = list(self.click) if self.click is not None else None
        return d

    @classmethod
    def from_json(cls, d: Mapping) -> Response:
        """Rebuild from a record; ValueError naming the first bad field."""
        def need(key, kind):
            if key not in d:
                raise ValueError(f"missing field {key!r}")
            v = d[key]
            if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError(f"field {key!r} is not an integer")
            if kind is float and (isinstance(v, bool) or not isinstance(v, int | float)
                                  or not math.isfinite(v)):
                raise ValueError(f"field {key!r} is not a finite number")
            if kind is str and not isinstance(v, str):
                raise ValueError(f"field {key!r} is not a string")
            return v

        answer = need("answer", str)
        if answer not in ANSWERS:
            raise ValueError(f"answer {answer!r} is not one of {ANSWERS}")
        condition = need("condition", str)
        if condition not in CONDITIONS:
            raise ValueError(f"condition {condition!r} is not one of {CONDITIONS}")
        rt = float(need("rt_s", float))
        if rt < 0:
            raise ValueError("field 'rt_s' is negative")
        click = d.get("click")
        if click is not None:
            if (not isinstance(click, list | tuple) or len(click) != 2
                    or not all(isinstance(c, int | float) and not isinstance(c, bool)
                               and math.isfinite(c) for c in click)):
                raise ValueError("field 'click' is not [x, y]")
            click = (float(click[0]), float(click[1]))
        inside = d.get("click_inside")
        if inside is not None and not isinstance(inside, bool):
            raise ValueError("field 'click_inside' is not true/false/null")
        method = d.get("method")
        return cls(study=need("study", str), participant=need("participant", str),
                   trial_id=need("trial_id", str), q=need("q", int), i=need("i", int),
                   query=need("query", str), image=need("image", str),
                   difficulty=need("difficulty", str), condition=condition,
                   source=need("source", str), answer=answer, rt_s=rt,
                   timestamp=need("timestamp", str), click=click, click_inside=inside,
                   method=method if isinstance(method, str) else None)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def make_response(trial: Trial, *, study: str, participant: str, answer: str, rt_s: float,
                  click: tuple[float, float] | None = None,
                  gt_shapes: Sequence[np.ndarray] | None = None,
                  timestamp: str | None = None) -> Response:
    """A response to *trial*; a click is scored against *gt_shapes* (the ground-truth
    region, whatever the trial's source) with :func:`click_in_region`."""
    if answer not in ANSWERS:
        raise ValueError(f"answer must be one of {ANSWERS}, not {answer!r}")
    if not (isinstance(rt_s, int | float) and math.isfinite(rt_s) and rt_s >= 0):
        raise ValueError(f"rt_s must be a finite number >= 0, not {rt_s!r}")
    inside = None
    if click is not None:
        if answer != "found":
            raise ValueError("a click marks where the object was found; answer must be 'found'")
        if gt_shapes is None:
            raise ValueError("a click needs the ground-truth shapes to be scored")
        click = (float(click[0]), float(click[1]))
        inside = click_in_region(click[0], click[1], gt_shapes)
    return Response(study=study, participant=participant.strip(), trial_id=trial.trial_id,
                    q=trial.q, i=trial.i, query=trial.query, image=trial.image,
                    difficulty=trial.difficulty, condition=trial.condition,
                    source=trial.source, method=trial.method, answer=answer,
                    rt_s=float(rt_s), timestamp=timestamp or _now(), click=click,
                    click_inside=inside)


# ---------------------------------------------------------------- storage

def _append_line(path: Path, record: dict) -> None:
    _append_line_shared(Path(path), record)


def append_response(path: str | os.PathLike, response: Response) -> None:
    """Append one response to the study file (see :func:`_append_line`)."""
    _append_line(Path(path), response.to_json())


def append_design(path: str | os.PathLike, design: StudyDesign) -> None:
    """Append the design record (once, when a study starts; the reader keeps the first)."""
    _append_line(Path(path), design.to_json())


def ensure_design(path: str | os.PathLike, design: StudyDesign) -> StudyDesign:
    """The study's stored design if its file has one (the given *design* is then not
    used), else *design* (stamped with the creation time), appended to the file first."""
    stored = read_study(path).design
    if stored is not None:
        return stored
    if not design.created:
        design = replace(design, created=_now())
    append_design(path, design)
    return read_study(path).design or design


@dataclass(frozen=True, eq=False)
class StudyLog:
    path: Path
    design: StudyDesign | None
    responses: list[Response]
    problems: list[LineProblem]


def read_study(path: str | os.PathLike) -> StudyLog:
    """Read a study file. Blank lines are ignored; any other line that is not a valid
    design or response record is skipped and reported (file, 1-based line number,
    reason); all other lines are kept. A missing file reads as an empty study. The first
    design record is the study's design; a later different one is reported."""
    path = Path(path)
    responses: list[Response] = []
    problems: list[LineProblem] = []
    design: StudyDesign | None = None
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return StudyLog(path, None, [], [])
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue

        def bad(why: str, n=n) -> None:
            problems.append(LineProblem(str(path), n, why))

        try:
            rec = parse_line(line)
        except LineError as exc:
            bad(str(exc))
            continue
        kind = rec.get("kind")
        try:
            if kind == "response":
                responses.append(Response.from_json(rec))
            elif kind == "design":
                d = StudyDesign.from_json(rec)
                if design is None:
                    design = d
                elif not design.same_design(d):
                    bad("a second, different design record; the first one is used")
            else:
                bad(f"unknown record kind {kind!r}")
        except (ValueError, TypeError, OverflowError) as exc:
            bad(str(exc)[:300])
    return StudyLog(path, design, responses, problems)


_CSV_FIELDS = ("study", "participant", "trial_id", "q", "i", "query", "image", "difficulty",
               "condition", "source", "method", "answer", "click_x", "click_y", "click_inside",
               "correct", "rt_s", "timestamp")


def responses_csv(responses: Iterable[Response]) -> str:
    """The responses as CSV text (one row each, with the derived ``correct``); text cells
    that a spreadsheet would run as a formula are neutralised
    (:func:`bench.study.records.csv_cell`)."""
    rows = []
    for r in responses:
        row = {k: getattr(r, k) for k in _CSV_FIELDS if hasattr(r, k)}
        row["click_x"], row["click_y"] = r.click if r.click is not None else ("", "")
        row["click_inside"] = "" if r.click_inside is None else r.click_inside
        row["method"] = r.method or ""
        row["correct"] = r.correct
        rows.append(row)
    return to_csv(rows, _CSV_FIELDS)


# ---------------------------------------------------------------- analysis

def sign_test(n_plus: int, n_minus: int) -> float:
    """Exact two-sided sign test (ties already dropped): ``scipy.stats.binomtest(n+, n+ +
    n-, 1/2)``; equals the exact McNemar test when + / - are the discordant pairs. p = 1
    when n = 0."""
    n_plus, n_minus = int(n_plus), int(n_minus)
    if n_plus < 0 or n_minus < 0:
        raise ValueError("counts must be >= 0")
    n = n_plus + n_minus
    if n == 0:
        return 1.0
    return float(stats.binomtest(n_plus, n, 0.5).pvalue)


def _ci(values: np.ndarray, stat, seed: Sequence[int], n_boot: int, level: float
        ) -> list[float | None]:
    """Percentile bootstrap interval of ``stat(sample, axis=1)`` over resampled values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return [None, None]
    rng = np.random.default_rng(list(seed))
    chunk = max(1, 2_000_000 // v.size)
    stats = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, v.size, size=(min(chunk, n_boot - start), v.size))
        stats.append(stat(v[idx], axis=1))
    s = np.concatenate(stats)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(s, [a, 1.0 - a])
    return [float(lo), float(hi)]


def _first_per_trial(responses: Iterable[Response]) -> tuple[list[Response], int]:
    """The first response of each (participant, trial); the number of later repeats."""
    seen: set[tuple[str, str]] = set()
    out, dup = [], 0
    for r in responses:
        key = (r.participant, r.trial_id)
        if key in seen:
            dup += 1
            continue
        seen.add(key)
        out.append(r)
    return out, dup


def _mean(v) -> float:
    return float(np.mean(v)) if len(v) else math.nan


def _median(v) -> float:
    return float(np.median(v)) if len(v) else math.nan


def analyse(responses: Iterable[Response], *, n_boot: int = 2000, seed: int = 0,
            level: float = 0.95) -> dict:
    """Summarise a study's responses; a JSON-ready dict (NaN -> ``None``).

    Only the first response of a participant to a trial counts (repeats, e.g. after a
    double click, are counted in ``n_repeats_ignored``). Keys:

    - ``conditions[c]`` for c in ("with", "without"): ``n``, ``n_participants``,
      ``n_clicks``, ``accuracy`` (fraction correct, see :attr:`Response.correct`),
      ``found_rate``, ``click_accuracy`` (among clicks), ``rt_mean``, ``rt_median`` (s)
      and ``*_ci``: percentile bootstrap intervals at *level* over ``n_boot`` resamples
      of the condition's responses (treated as independent; the paired tests below
      account for participants).
    - ``by_difficulty[d][c]``: ``n``, ``accuracy``, ``rt_median``.
    - ``participants``: one row per participant with ``accuracy_*`` and median
      ``rt_*`` per condition; ``paired_participants``: over participants who answered in
      both conditions, ``accuracy`` {better_with, better_without, ties, p_sign,
      mean_diff, mean_diff_ci} and ``time`` {faster_with, faster_without, ties, p_sign,
      median_diff, median_diff_ci} (diff = with - without; exact two-sided sign test).
    - ``paired_pairs``: over pairs answered in both conditions (by different
      participants), ``only_with_correct`` / ``only_without_correct`` (pairs whose mean
      correctness is higher in that condition), ``ties`` and ``p_mcnemar`` (exact).
    """
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    rs, dup = _first_per_trial(responses)
    out: dict = {"n_responses": len(rs), "n_repeats_ignored": dup,
                 "n_participants": len({r.participant for r in rs}),
                 "bootstrap": {"n_boot": n_boot, "seed": seed, "level": level,
                               "method": "percentile, responses resampled"}}
    conds: dict = {}
    for k, c in enumerate(CONDITIONS):
        sel = [r for r in rs if r.condition == c]
        corr = np.array([r.correct for r in sel], dtype=np.float64)
        rt = np.array([r.rt_s for r in sel], dtype=np.float64)
        clicks = [r for r in sel if r.click is not None]
        conds[c] = {
            "label": CONDITION_LABELS[c],
            "n": len(sel),
            "n_participants": len({r.participant for r in sel}),
            "n_clicks": len(clicks),
            "accuracy": num(_mean(corr)),
            "accuracy_ci": _ci(corr, np.mean, (seed, k, 0), n_boot, level),
            "found_rate": num(_mean([r.answer == "found" for r in sel])),
            "click_accuracy": num(_mean([bool(r.click_inside) for r in clicks])),
            "rt_mean": num(_mean(rt)),
            "rt_mean_ci": _ci(rt, np.mean, (seed, k, 1), n_boot, level),
            "rt_median": num(_median(rt)),
            "rt_median_ci": _ci(rt, np.median, (seed, k, 2), n_boot, level),
        }
    out["conditions"] = conds
    by_diff: dict = {}
    for d in DIFFICULTIES:
        by_diff[d] = {}
        for c in CONDITIONS:
            sel = [r for r in rs if r.difficulty == d and r.condition == c]
            by_diff[d][c] = {"n": len(sel), "accuracy": num(_mean([r.correct for r in sel])),
                             "rt_median": num(_median([r.rt_s for r in sel]))}
    out["by_difficulty"] = by_diff

    # paired by participant
    rows = []
    for pid in sorted({r.participant for r in rs}):
        row: dict = {"participant": pid}
        for c in CONDITIONS:
            sel = [r for r in rs if r.participant == pid and r.condition == c]
            row[f"n_{c}"] = len(sel)
            row[f"accuracy_{c}"] = num(_mean([r.correct for r in sel]))
            row[f"rt_{c}"] = num(_median([r.rt_s for r in sel]))
        rows.append(row)
    out["participants"] = rows
    both = [r for r in rows if r["n_with"] and r["n_without"]]
    da = np.array([r["accuracy_with"] - r["accuracy_without"] for r in both])
    dt = np.array([r["rt_with"] - r["rt_without"] for r in both])
    out["paired_participants"] = {
        "n": len(both),
        "accuracy": {"better_with": int((da > 0).sum()), "better_without": int((da < 0).sum()),
                     "ties": int((da == 0).sum()),
                     "p_sign": sign_test(int((da > 0).sum()), int((da < 0).sum())),
                     "mean_diff": num(_mean(da)),
                     "mean_diff_ci": _ci(da, np.mean, (seed, 9, 0), n_boot, level)},
        "time": {"faster_with": int((dt < 0).sum()), "faster_without": int((dt > 0).sum()),
                 "ties": int((dt == 0).sum()),
                 "p_sign": sign_test(int((dt < 0).sum()), int((dt > 0).sum())),
                 "median_diff": num(_median(dt)),
                 "median_diff_ci": _ci(dt, np.median, (seed, 9, 1), n_boot, level)},
    }

    # paired by pair (each pair is seen in both conditions, by different participants)
    per_pair: dict[Pair, dict[str, list[bool]]] = {}
    for r in rs:
        per_pair.setdefault(r.pair, {c: [] for c in CONDITIONS})[r.condition].append(r.correct)
    b = c_ = ties = 0
    for v in per_pair.values():
        if v["with"] and v["without"]:
            diff = _mean(v["with"]) - _mean(v["without"])
            b += diff > 0
            c_ += diff < 0
            ties += diff == 0
    out["paired_pairs"] = {"n": b + c_ + ties, "only_with_correct": b,
                           "only_without_correct": c_, "ties": ties,
                           "p_mcnemar": sign_test(b, c_)}
    return out


def summary_rows(analysis: Mapping) -> list[dict]:
    """One table row per condition from :func:`analyse`'s result."""
    out = []
    for c in CONDITIONS:
        s = analysis["conditions"][c]
        out.append({"condition": s["label"], "n": s["n"], "participants": s["n_participants"],
                    "accuracy": s["accuracy"], "accuracy CI low": s["accuracy_ci"][0],
                    "accuracy CI high": s["accuracy_ci"][1], "clicks": s["n_clicks"],
                    "mean time (s)": s["rt_mean"], "mean time CI low": s["rt_mean_ci"][0],
                    "mean time CI high": s["rt_mean_ci"][1], "median time (s)": s["rt_median"],
                    "median time CI low": s["rt_median_ci"][0],
                    "median time CI high": s["rt_median_ci"][1]})
    return out


def study_figure(analysis: Mapping):
    """(Compatibility for the current page only: figures belong to the pages.) A Plotly figure: accuracy and median response time per condition, as bars with
    their bootstrap intervals as error bars (from :func:`analyse`'s result)."""
    from plotly.subplots import make_subplots

    colors = {"with": "#00a6d6", "without": "#9aa0a6"}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Accuracy", "Median response time (s)"))
    for col, (key, ci_key) in enumerate((("accuracy", "accuracy_ci"),
                                         ("rt_median", "rt_median_ci")), start=1):
        for c in CONDITIONS:
            s = analysis["conditions"][c]
            est = s[key]
            lo, hi = s[ci_key]
            ok = est is not None and lo is not None and hi is not None
            fig.add_bar(x=[s["label"]], y=[est if est is not None else 0.0], name=s["label"],
                        marker_color=colors[c], showlegend=col == 1, legendgroup=c,
                        error_y={"type": "data", "symmetric": False,
                                 "array": [hi - est if ok else 0.0],
                                 "arrayminus": [est - lo if ok else 0.0], "visible": ok},
                        hovertemplate=f"%{{x}}<br>{key} %{{y:.3f}}<br>n = {s['n']}"
                                      "<extra></extra>",
                        row=1, col=col)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    level = analysis.get("bootstrap", {}).get("level", 0.95)
    fig.update_layout(barmode="group", height=380, margin={"l": 40, "r": 20, "t": 60, "b": 40},
                      title={"text": f"Error bars: {level:.0%} bootstrap intervals",
                             "font": {"size": 13}})
    return fig
