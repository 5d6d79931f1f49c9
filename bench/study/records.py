"""The records of a user study: one answer, how it is scored, how one line of a study
file is parsed safely, and CSV export (docs/PROTOCOLS.md §7).

An answer is one participant's response to one trial:

- ``answer``: ``"click"`` (with ``x``, ``y`` in *image* pixels of the database image:
  x = column, y = row, floats), ``"not_present"`` (the participant pressed "not in this
  image") or ``"timeout"`` (the trial's time ran out).
- ``outcome`` (:func:`score`): on a *positive* trial (the query object is in the image) a
  click inside the ground-truth region is a ``hit``; a click outside it, ``not_present``
  or ``timeout`` a ``miss``. On a *catch* trial (a negative: the object is not in the
  image) any click is a ``false_alarm``; ``not_present`` or ``timeout`` a
  ``correct_rejection``.
- times: ``browser_ms`` from the moment both images were displayed to the answer,
  measured on the client; ``server_ms`` from the server sending the trial to receiving
  the answer (kept beside it); ``hidden_ms`` the time the tab was hidden during the trial
  (``> 0`` adds the flag ``"hidden"``). An answer with any flag is left out of the time
  statistics (it still counts for accuracy).

Pure Python + numpy; nothing here opens a file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from bench.geometry import polygon_mask, truncate

ANSWERS = ("click", "not_present", "timeout")
TRIAL_KINDS = ("positive", "catch")
OUTCOMES = ("hit", "miss", "false_alarm", "correct_rejection")
RECORD_VERSION = 2
MAX_COORD = 2**20  # pixels; a click beyond this is garbage, not an image position
MAX_MS = 7 * 24 * 3600 * 1000.0  # a week: a time above this is garbage
MAX_INDEX = 2**31 - 1
_FLAG = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

__all__ = ["ANSWERS", "OUTCOMES", "RECORD_VERSION", "TRIAL_KINDS", "Answer", "LineError",
           "answers_csv", "click_in_region", "csv_cell", "parse_line", "score", "to_csv"]


# ---------------------------------------------------------------- scoring

def click_in_region(x: float, y: float, shapes: Sequence[np.ndarray]) -> bool:
    """True when the click at image coordinates (x = column, y = row; floats) falls on a
    pixel of the ground-truth region: the union of *shapes* with coordinates truncated
    to int and each polygon filled with its boundary, as the IoU of docs/PROTOCOLS.md §2
    rasterises it (:func:`bench.geometry.polygon_mask`). The clicked pixel is
    ``(floor(x), floor(y))``. A non-finite click is outside."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return False
    if abs(x) > MAX_COORD or abs(y) > MAX_COORD:
        return False
    px, py = math.floor(x), math.floor(y)
    for s in shapes:
        pts = truncate(np.asarray(s, dtype=np.float64).reshape(-1, 2))
        if len(pts) and polygon_mask(pts, (px, py), (1, 1))[0, 0]:
            return True
    return False


def score(trial_kind: str, answer: str, x: float | None = None, y: float | None = None,
          region: Sequence[np.ndarray] = ()) -> str:
    """The outcome of one answer (see the module docstring): ``hit``, ``miss``,
    ``false_alarm`` or ``correct_rejection``. *region* is the ground-truth region of a
    positive trial (a list of polygons); a click needs ``x`` and ``y``."""
    if trial_kind not in TRIAL_KINDS:
        raise ValueError(f"trial kind must be one of {TRIAL_KINDS}, not {trial_kind!r}")
    if answer not in ANSWERS:
        raise ValueError(f"answer must be one of {ANSWERS}, not {answer!r}")
    if answer == "click":
        if x is None or y is None:
            raise ValueError("a click needs x and y")
        if trial_kind == "catch":
            return "false_alarm"
        return "hit" if click_in_region(float(x), float(y), region) else "miss"
    return "miss" if trial_kind == "positive" else "correct_rejection"


# ---------------------------------------------------------------- one answer

def _check_str(d: Mapping, key: str, *, max_len: int = 200, empty: bool = False) -> str:
    if key not in d:
        raise ValueError(f"missing field {key!r}")
    v = d[key]
    if not isinstance(v, str):
        raise ValueError(f"field {key!r} is not a string")
    if (not v and not empty) or len(v) > max_len:
        raise ValueError(f"field {key!r} is empty or longer than {max_len} characters")
    return v


def _check_int(d: Mapping, key: str, lo: int = 0, hi: int = MAX_INDEX) -> int:
    if key not in d:
        raise ValueError(f"missing field {key!r}")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"field {key!r} is not an integer")
    if not lo <= v <= hi:
        raise ValueError(f"field {key!r} is out of range [{lo}, {hi}]")
    return v


def _check_num(d: Mapping, key: str, *, lo: float, hi: float, optional: bool) -> float | None:
    v = d.get(key)
    if v is None:
        if optional:
            return None
        raise ValueError(f"missing field {key!r}")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"field {key!r} is not a number")
    v = float(v)  # an int too large for a float raises OverflowError: caught by the reader
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"field {key!r} is not a finite number in [{lo:g}, {hi:g}]")
    return v


def check_ms(value, what: str) -> float | None:
    """*value* as a time in ms (finite, 0 .. a week) or None; ValueError naming *what*."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number of milliseconds, not {value!r}")
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v <= MAX_MS):
        raise ValueError(f"{what} must be a finite number of milliseconds in [0, {MAX_MS:g}]"
                         f", not {value!r}")
    return v


def check_flags(flags: Iterable) -> tuple[str, ...]:
    out = set()
    for f in flags:
        if not isinstance(f, str) or not _FLAG.match(f):
            raise ValueError(f"flag {f!r}: flags are short lowercase words")
        out.add(f)
    return tuple(sorted(out))


@dataclass(frozen=True)
class Answer:
    """One recorded answer (one line ``{"kind": "answer", ...}`` of a study file)."""

    study: str
    participant: str
    trial: str  # trial id, e.g. "q3-i17"
    q: int
    i: int
    condition: str  # "none" | "ground_truth" | "method:<name>"
    trial_kind: str  # "positive" | "catch"
    answer: str  # "click" | "not_present" | "timeout"
    outcome: str  # "hit" | "miss" | "false_alarm" | "correct_rejection"
    x: float | None  # click position in database-image pixels (None without a click)
    y: float | None
    browser_ms: float | None  # both images displayed -> answer, on the client
    server_ms: float | None  # trial sent -> answer received, on the server
    hidden_ms: float  # time the tab was hidden during the trial
    flags: tuple[str, ...]  # e.g. ("hidden",); any flag -> left out of time statistics
    row: int  # the participant's row of the study's Latin square
    index: int  # 1-based position of the trial in the participant's sequence
    at: str  # server time of the record, ISO 8601 UTC
    client_shown_ms: float | None = None  # client clock (epoch ms): both images displayed
    client_answer_ms: float | None = None  # client clock (epoch ms): the answer

    @property
    def pair(self) -> tuple[int, int]:
        return (self.q, self.i)

    @property
    def correct(self) -> bool:
        """A hit or a correct rejection."""
        return self.outcome in ("hit", "correct_rejection")

    @property
    def timed(self) -> bool:
        """Counts in the time statistics: answered (not a timeout), a browser time, no flag."""
        return self.answer != "timeout" and self.browser_ms is not None and not self.flags

    def to_json(self) -> dict:
        d = {"kind": "answer", "v": RECORD_VERSION, **asdict(self)}
        d["flags"] = list(self.flags)
        return d

    @classmethod
    def from_json(cls, d: Mapping) -> Answer:
        """Rebuild from a record; ValueError naming the first bad field. The outcome must
        agree with the trial kind and the answer (a click on a catch trial is a false
        alarm, ...); whether a click on a positive is inside the region is not re-checked
        here (the store scores it against the study definition when it records it)."""
        answer = _check_str(d, "answer")
        if answer not in ANSWERS:
            raise ValueError(f"answer {answer!r} is not one of {ANSWERS}")
        kind = _check_str(d, "trial_kind")
        if kind not in TRIAL_KINDS:
            raise ValueError(f"trial_kind {kind!r} is not one of {TRIAL_KINDS}")
        outcome = _check_str(d, "outcome")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {OUTCOMES}")
        x = _check_num(d, "x", lo=-MAX_COORD, hi=MAX_COORD, optional=True)
        y = _check_num(d, "y", lo=-MAX_COORD, hi=MAX_COORD, optional=True)
        if answer == "click" and (x is None or y is None):
            raise ValueError("a click without x and y")
        if answer != "click" and (x is not None or y is not None):
            raise ValueError(f"answer {answer!r} with a click position")
        allowed = ({"hit", "miss"} if answer == "click" else {"miss"}) if kind == "positive" \
            else ({"false_alarm"} if answer == "click" else {"correct_rejection"})
        if outcome not in allowed:
            raise ValueError(f"outcome {outcome!r} does not fit a {answer!r} on a {kind} trial")
        flags = d.get("flags", [])
        if not isinstance(flags, list):
            raise ValueError("field 'flags' is not a list")
        return cls(study=_check_str(d, "study"), participant=_check_str(d, "participant"),
                   trial=_check_str(d, "trial"), q=_check_int(d, "q"), i=_check_int(d, "i"),
                   condition=_check_str(d, "condition"), trial_kind=kind, answer=answer,
                   outcome=outcome, x=x, y=y,
                   browser_ms=_check_num(d, "browser_ms", lo=0, hi=MAX_MS, optional=True),
                   server_ms=_check_num(d, "server_ms", lo=0, hi=MAX_MS, optional=True),
                   hidden_ms=_check_num(d, "hidden_ms", lo=0, hi=MAX_MS, optional=False),
                   flags=check_flags(flags), row=_check_int(d, "row"),
                   index=_check_int(d, "index", lo=1), at=_check_str(d, "at"),
                   client_shown_ms=_check_num(d, "client_shown_ms", lo=0, hi=1e16,
                                              optional=True),
                   client_answer_ms=_check_num(d, "client_answer_ms", lo=0, hi=1e16,
                                               optional=True))


# ---------------------------------------------------------------- one line of a file

class LineError(ValueError):
    """A line of a study file that is not a record (the reader skips and reports it)."""


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def parse_line(raw: bytes) -> dict:
    """One JSON object from one line of a study file, or :class:`LineError` with the
    reason. Whatever the line holds, this never raises anything else: not UTF-8, invalid
    JSON, ``NaN`` / ``Infinity``, an integer of thousands of digits (Python refuses to
    convert more than 4,300), nesting deep enough to exhaust the recursion limit, or a
    JSON value that is not an object all become a LineError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LineError("not UTF-8 text") from None
    try:
        rec = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise LineError(f"not a valid record ({str(exc)[:120]})") from None
    except RecursionError:
        raise LineError("nested too deeply") from None
    if not isinstance(rec, dict):
        raise LineError(f"a JSON {type(rec).__name__}, not a record")
    return rec


# ---------------------------------------------------------------- CSV

_CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A value safe to put in a CSV cell opened by a spreadsheet: a *text* value that
    starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (a formula to
    Excel / LibreOffice, e.g. a participant id ``=HYPERLINK(...)``) gets a leading
    apostrophe. Numbers are written as numbers (a negative number is not a formula);
    ``None`` is an empty cell; booleans ``True`` / ``False``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_CSV_DANGEROUS) else value
    if isinstance(value, bool | int | float):
        return value
    return csv_cell(str(value))


def to_csv(rows: Iterable[Mapping], fields: Sequence[str]) -> str:
    """CSV text of *rows* (one dict each; missing keys are empty cells), every cell
    through :func:`csv_cell`. Lines end with CRLF (RFC 4180), so a cell holding a
    carriage return or a newline is quoted."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([csv_cell(f) for f in fields])
    for r in rows:
        w.writerow([csv_cell(r.get(f)) for f in fields])
    return buf.getvalue()


ANSWER_CSV_FIELDS = ("study", "participant", "row", "index", "trial", "q", "i", "condition",
                     "trial_kind", "answer", "x", "y", "outcome", "browser_ms", "server_ms",
                     "hidden_ms", "flags", "at", "client_shown_ms", "client_answer_ms")


def answers_csv(answers: Iterable[Answer]) -> str:
    """The answers as CSV text (one row each, :data:`ANSWER_CSV_FIELDS`; flags joined by
    ``;``), neutralised for spreadsheets (:func:`csv_cell`)."""
    rows = []
    for a in answers:
        r = asdict(a)
        r["flags"] = ";".join(a.flags)
        rows.append(r)
    return to_csv(rows, ANSWER_CSV_FIELDS)
