"""Where a study lives: one append-only JSON Lines file per study (docs/PROTOCOLS.md §7).

``<data dir>/<study>.jsonl``; the data dir is ``--data-dir`` / ``$BENCH_STUDY_DIR``,
default ``./studies`` relative to the working directory (never a cache folder). Lines:

1. ``{"kind": "study", ...}``: the :class:`~bench.study.design.StudyDefinition`;
2. ``{"kind": "assignment", "participant", "row", "index", "at"}``: the first time a
   participant id is seen it gets the next row of the Latin square (round-robin in order
   of first arrival; ``index`` = arrival number, 0-based). Stored, so a restarted server
   keeps every assignment;
3. ``{"kind": "answer", ...}``: one :class:`~bench.study.records.Answer`;
4. ``{"kind": "refused", "participant", "trial", "why", "at"}``: an answer the store
   refused (a repeat of an answered trial, or from a second session), kept so the report
   can say so.

Every record is one ``write`` to a file opened for appending, then flushed and fsynced
(:func:`append_line`); a torn earlier write is closed by starting a new line first, so a
record is never glued to it. Nothing is rewritten. Writers hold an exclusive lock
(``fcntl.flock`` on ``<study>.lock``; it also excludes threads of one process, since
every writer opens the file itself) while they read the tail of the file, check and
append, so two tabs or two threads never both record an answer to the same trial, and
two first arrivals never get the same row by accident.

Active sessions (``<study>.sessions.json``, rewritten atomically under the same lock;
not part of the record): a page claims a participant id with a random token and renews
the claim (heartbeat) while the participant works; a different token claiming the same
id within ``ttl`` seconds of the last heartbeat is refused (:class:`SessionActive`), so
the same id open in a second tab is told it is already active.

The reader skips any line that is not a valid record and reports it with the file and
the 1-based line number (a line of nonsense, a torn write, an integer of 5,000 digits,
...): it never raises on a line's content.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from bench.errors import BenchError
from bench.study.design import StudyDefinition, StudyTrial, new_definition
from bench.study.records import (
    MAX_COORD,
    Answer,
    LineError,
    check_flags,
    check_ms,
    parse_line,
    score,
)

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - not on Linux / macOS
    fcntl = None  # type: ignore[assignment]

ENV_DATA_DIR = "BENCH_STUDY_DIR"
SESSION_TTL_S = 30.0
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_PARTICIPANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

__all__ = ["ENV_DATA_DIR", "SESSION_TTL_S", "AlreadyAnswered", "Assignment", "LineProblem",
           "Refusal", "SessionActive", "StudyState", "StudyStore", "append_line",
           "check_participant", "create_study", "default_data_dir", "is_new_format", "list_studies",
           "new_session_token", "read_study_file", "resolve_study", "study_file",
           "study_link"]


# ---------------------------------------------------------------- where

def default_data_dir() -> Path:
    """``$BENCH_STUDY_DIR`` if set, else ``./studies`` in the current working directory."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path.cwd() / "studies"


def study_file(study_dir: str | os.PathLike | None, name: str) -> Path:
    """``<study_dir>/<name>.jsonl`` (``study_dir`` None: :func:`default_data_dir`). The
    name is used as given (1-100 letters, digits, ``.``, ``_``, ``-``, starting with a
    letter or digit; no path separator), never rewritten, so two names never share a
    file and a name cannot leave the folder. ValueError otherwise."""
    if not isinstance(name, str) or not _STUDY_NAME.match(name):
        raise ValueError(f"study name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    base = default_data_dir() if study_dir is None else Path(study_dir).expanduser()
    return base / f"{name}.jsonl"


def resolve_study(name_or_file: str, data_dir: str | os.PathLike | None = None) -> Path:
    """A study given as a name (in the data dir) or as a ``.jsonl`` file path."""
    if name_or_file.endswith(".jsonl") or os.sep in name_or_file or "/" in name_or_file:
        return Path(name_or_file).expanduser()
    try:
        return study_file(data_dir, name_or_file)
    except ValueError as exc:
        raise BenchError("bad study name", name_or_file, str(exc)) from None


def list_studies(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the studies (``*.jsonl``) in the data dir, sorted."""
    base = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    try:
        return sorted(p.stem for p in base.glob("*.jsonl")
                      if p.is_file() and _STUDY_NAME.match(p.stem))
    except OSError:
        return []


def check_participant(participant: str) -> str:
    """The participant id, checked: 1-64 letters, digits, ``.``, ``_``, ``-``, starting
    with a letter or digit (it comes from a link). ValueError otherwise."""
    if not isinstance(participant, str) or not _PARTICIPANT.match(participant.strip()):
        raise ValueError(f"participant id {participant!r}: use 1-64 letters, digits, '.', "
                         "'_' or '-', starting with a letter or digit")
    return participant.strip()


def new_session_token() -> str:
    """A random token naming one browser session of a participant."""
    return secrets.token_hex(16)


def study_link(study: str, participant: str | None = None) -> str:
    """The participant link's path and query: ``/study?study=NAME`` (and ``&p=ID``)."""
    study_file(None, study)  # checks the name
    q = {"study": study} if participant is None else {"study": study,
                                                      "p": check_participant(participant)}
    return "/study?" + urlencode(q)


def create_study(name: str, dataset: str, *, root: str | os.PathLike | None = None,
                 conditions, n_trials: int, catch: float, seed: int,
                 data_dir: str | os.PathLike | None = None, **options
                 ) -> tuple[StudyStore, list[str]]:
    """Design a study on *dataset* (under *root*, or the embedded demo when None; see
    :func:`bench.study.design.new_definition`) and write its file in the data dir.
    Returns the open store and the warnings met while reading the data. BenchError if
    the name is taken or the design is impossible."""
    try:
        path = study_file(data_dir, name)
    except ValueError as exc:
        raise BenchError("bad study name", name, str(exc)) from None
    if path.exists():
        raise BenchError("study exists", path, "a study of this name exists; choose another "
                         "name (a study is never overwritten)")
    definition, warnings = new_definition(name, dataset, root=root, conditions=conditions,
                                          n_trials=n_trials, catch=catch, seed=seed, **options)
    return StudyStore.create(path, definition), warnings


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _epoch_ms(value, what: str) -> float | None:
    """A client clock reading (ms since the epoch) or None; ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number of milliseconds, not {value!r}")
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v <= 1e16):
        raise ValueError(f"{what} must be a finite time in ms since the epoch, not {value!r}")
    return v


# ---------------------------------------------------------------- appending

def append_line(path: Path, record: dict) -> None:
    """Append one JSON line with a single ``write`` on an O_APPEND file, then flush and
    fsync. If the file does not end with a newline (a torn earlier write), start a new
    line first so this record stays intact. Never truncates or rewrites. (The code path
    of the first study store, which held up under concurrent writers, ``kill -9`` and a
    full disk.)"""
    data = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    with open(path, "ab", buffering=0) as fh:
        if os.fstat(fh.fileno()).st_size > 0:
            with open(path, "rb") as rd:
                rd.seek(-1, os.SEEK_END)
                if rd.read(1) != b"\n":
                    data = b"\n" + data
        view = memoryview(data)
        while view:
            n = fh.write(view)
            view = view[n:]
        fh.flush()
        os.fsync(fh.fileno())
    if created:  # make the new directory entry durable too
        try:
            dfd = os.open(path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock of the study *path* (``<study>.lock`` beside it): ``flock`` where
    there is one (per open file, so threads of one process exclude each other too), plus
    a per-path thread lock where there is not."""
    lock_path = path.with_suffix(".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        with _THREAD_LOCKS_GUARD:
            lk = _THREAD_LOCKS.setdefault(str(lock_path.absolute()), threading.Lock())
        with lk:
            yield
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


# ---------------------------------------------------------------- records in memory

@dataclass(frozen=True)
class LineProblem:
    """A line of a study file the reader skipped (or did not count)."""

    file: str
    line: int  # 1-based
    why: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.why}"


@dataclass(frozen=True)
class Assignment:
    participant: str
    row: int  # row of the Latin square
    index: int  # arrival number, 0-based
    at: str


@dataclass(frozen=True)
class Refusal:
    participant: str
    trial: str
    why: str
    at: str


@dataclass(frozen=True, eq=False)
class StudyState:
    """A study file as read: its definition, the assignments (by participant), the
    accepted answers in file order, the refusals recorded by the store, the answers in
    the file that repeat an earlier (participant, trial) (not counted: the first one
    stands), and the skipped lines."""

    path: Path
    definition: StudyDefinition
    assignments: dict[str, Assignment]
    answers: list[Answer]
    refused: list[Refusal]
    repeats: list[LineProblem]
    problems: list[LineProblem]

    def answered(self, participant: str) -> set[str]:
        return {a.trial for a in self.answers if a.participant == participant}


class _NotNewFormat(Exception):
    """The file's first record is not a study definition (e.g. the first, two-condition
    study format)."""


class _Reader:
    """Incremental parser of a study file: feeds complete lines, keeps the state."""

    def __init__(self, path: Path):
        self.path = path
        self.definition: StudyDefinition | None = None
        self.assignments: dict[str, Assignment] = {}
        self.answers: list[Answer] = []
        self.done: set[tuple[str, str]] = set()
        self.refused: list[Refusal] = []
        self.repeats: list[LineProblem] = []
        self.problems: list[LineProblem] = []
        self.offset = 0  # bytes consumed (always at a line start)
        self.line_no = 0
        self.first_record_seen = False

    def _bad(self, why: str) -> None:
        self.problems.append(LineProblem(str(self.path), self.line_no, why))

    def feed(self, data: bytes, *, final: bool) -> None:
        """Consume the complete lines of *data* (the bytes from :attr:`offset` on); with
        *final* also an unterminated last line."""
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: b"" or a partial line
        consumed = 0
        for raw in lines:
            consumed += len(raw) + 1
            self._line(raw)
        if final and tail:
            consumed += len(tail)
            self._line(tail)
        self.offset += consumed

    def _line(self, raw: bytes) -> None:
        self.line_no += 1
        if not raw.strip():
            return
        try:
            rec = parse_line(raw)
        except LineError as exc:
            self._bad(str(exc))
            return
        kind = rec.get("kind")
        if not self.first_record_seen:
            self.first_record_seen = True
            if kind != "study":
                raise _NotNewFormat(kind)
        try:
            if kind == "study":
                d = StudyDefinition.from_json(rec)
                if self.definition is None:
                    self.definition = d
                else:
                    self._bad("a second study definition; the first one is used")
            elif self.definition is None:
                self._bad("a record before the study definition")
            elif kind == "assignment":
                self._assignment(rec)
            elif kind == "answer":
                self._answer(Answer.from_json(rec))
            elif kind == "refused":
                self._refused(rec)
            else:
                self._bad(f"unknown record kind {str(kind)[:40]!r}")
        except (ValueError, TypeError, OverflowError) as exc:
            self._bad(str(exc)[:300])

    def _assignment(self, rec: dict) -> None:
        pid, row, index, at = (rec.get("participant"), rec.get("row"), rec.get("index"),
                               rec.get("at"))
        if not isinstance(pid, str) or not pid or len(pid) > 200:
            raise ValueError("assignment: bad participant")
        for v in (row, index):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**31:
                raise ValueError("assignment: row / index not a small integer")
        if row >= self.definition.n_rows:
            raise ValueError(f"assignment: row {row} but the square has "
                             f"{self.definition.n_rows} rows")
        if pid in self.assignments:
            raise ValueError(f"a second assignment of {pid}; the first one stands")
        self.assignments[pid] = Assignment(pid, row, index, at if isinstance(at, str) else "")

    def _answer(self, a: Answer) -> None:
        d = self.definition
        if a.study != d.study:
            raise ValueError(f"answer of study {a.study!r}, not {d.study!r}")
        try:
            t = d.trial(a.trial)
        except KeyError:
            raise ValueError(f"answer to unknown trial {a.trial!r}") from None
        if (a.q, a.i) != t.pair or a.trial_kind != t.kind:
            raise ValueError(f"answer to trial {a.trial} with another pair or kind")
        asg = self.assignments.get(a.participant)
        if asg is None:
            raise ValueError(f"answer of participant {a.participant!r}, who has no assignment")
        if a.row != asg.row or a.condition != d.condition_of(t, asg.row):
            raise ValueError(f"answer of {a.participant} to {a.trial}: condition "
                             f"{a.condition!r} / row {a.row} do not match the assignment")
        key = (a.participant, a.trial)
        if key in self.done:
            self.repeats.append(LineProblem(
                str(self.path), self.line_no,
                f"a second answer of {a.participant} to trial {a.trial}: not counted, the "
                "first one stands"))
            return
        self.done.add(key)
        self.answers.append(a)

    def _refused(self, rec: dict) -> None:
        vals = [rec.get(k) for k in ("participant", "trial", "why", "at")]
        if not all(isinstance(v, str) and len(v) <= 500 for v in vals):
            raise ValueError("refused: bad fields")
        self.refused.append(Refusal(*vals))

    def state(self) -> StudyState:
        return StudyState(path=self.path, definition=self.definition,
                          assignments=dict(self.assignments), answers=list(self.answers),
                          refused=list(self.refused), repeats=list(self.repeats),
                          problems=list(self.problems))


def _read_all(path: Path) -> _Reader:
    r = _Reader(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BenchError("missing study", path, "no such study file") from None
    except OSError as exc:
        raise BenchError("unreadable study", path, exc.strerror or str(exc)) from None
    r.feed(data, final=True)
    if r.definition is None:
        raise BenchError("not a study file", path, "no valid study definition (first line)")
    return r


def read_study_file(path: str | os.PathLike) -> StudyState:
    """Read a whole study file (an unterminated last line included). BenchError when it
    is missing, unreadable, or has no valid study definition; bad lines are reported in
    ``problems``."""
    path = Path(path)
    try:
        return _read_all(path).state()
    except _NotNewFormat:
        raise BenchError("not a study file", path,
                         "its first record is not a study definition (a file of the first, "
                         "two-condition study format is no longer read)") from None


def is_new_format(path: str | os.PathLike) -> bool:
    """True when the first record of the file is a study definition."""
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                if raw.strip():
                    try:
                        return parse_line(raw.rstrip(b"\n")).get("kind") == "study"
                    except LineError:
                        return False
    except OSError:
        return False
    return False


# ---------------------------------------------------------------- the store

class AlreadyAnswered(BenchError):
    """A second answer of a participant to a trial: refused (and recorded as refused)."""

    def __init__(self, path, participant: str, trial: str, at: str):
        self.participant, self.trial = participant, trial
        super().__init__("already answered", path,
                         f"participant {participant} answered trial {trial} at {at}; the "
                         "first answer stands and this one is not recorded")


class SessionActive(BenchError):
    """The participant id is open in another session (tab) that is still alive."""

    def __init__(self, path, participant: str, age_s: float):
        self.participant = participant
        super().__init__("session already active", path,
                         f"participant {participant} is already active in another window "
                         f"(last seen {age_s:.0f} s ago); close it, or wait until it has "
                         "been gone for a while")


class StudyStore:
    """One study file, its lock and its sessions. Methods that change the file hold the
    lock, first read what other writers appended, then check and append. Readers see
    the state as of their last :meth:`refresh` (each method refreshes first)."""

    def __init__(self, path: str | os.PathLike, _reader: _Reader):
        self.path = Path(path)
        self._r = _reader
        self._stat: tuple[int, int] | None = None
        self._mutex = threading.Lock()

    # ---- opening
    @classmethod
    def create(cls, path: str | os.PathLike, definition: StudyDefinition) -> StudyStore:
        """Write a new study file with *definition* as its first line; BenchError if the
        file exists already (a study is never overwritten)."""
        path = Path(path)
        with _locked(path):
            if path.exists() and path.stat().st_size > 0:
                raise BenchError("study exists", path, "a study of this name exists; choose "
                                 "another name (a study is never overwritten)")
            append_line(path, definition.to_json())
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> StudyStore:
        """Open an existing study file (BenchError if missing or not a study)."""
        path = Path(path)
        if not path.is_file():
            raise BenchError("missing study", path, "no such study file")
        store = cls(path, _Reader(path))
        try:
            store.refresh()
        except _NotNewFormat:
            raise BenchError("not a study file", path, "its first record is not a study "
                             "definition") from None
        if store._r.definition is None:
            raise BenchError("not a study file", path, "no valid study definition (first line)")
        return store

    @property
    def definition(self) -> StudyDefinition:
        return self._r.definition

    # ---- reading
    def refresh(self) -> None:
        """Read what was appended since the last refresh (complete lines only; a file
        that was replaced or shortened is read again from the start)."""
        with self._mutex:
            try:
                st = os.stat(self.path)
            except OSError as exc:
                raise BenchError("unreadable study", self.path, exc.strerror or str(exc)) \
                    from None
            if (self._stat is not None and st.st_ino != self._stat[0]) \
                    or st.st_size < self._r.offset:
                self._r = _Reader(self.path)
            self._stat = (st.st_ino, st.st_size)
            if st.st_size == self._r.offset:
                return
            with open(self.path, "rb") as fh:
                fh.seek(self._r.offset)
                data = fh.read()
            self._r.feed(data, final=False)

    def state(self) -> StudyState:
        """A snapshot of the study as of now."""
        self.refresh()
        with self._mutex:
            return self._r.state()

    def assignment(self, participant: str) -> Assignment | None:
        self.refresh()
        return self._r.assignments.get(participant.strip())

    def trials(self, participant: str) -> list[StudyTrial]:
        """The participant's recorded trials in their order, with conditions (BenchError
        if the participant has no assignment: call :meth:`assign` first)."""
        asg = self.assignment(participant)
        if asg is None:
            raise BenchError("unknown participant", self.path,
                             f"{participant} has no assignment yet")
        return self.definition.trials_for(asg.row, asg.participant)

    def practice(self) -> list[StudyTrial]:
        """The practice trials (not recorded), with their conditions."""
        return list(self.definition.practice)

    def answered(self, participant: str) -> set[str]:
        self.refresh()
        pid = participant.strip()
        return {t for p, t in self._r.done if p == pid}

    def progress(self, participant: str) -> tuple[int, int]:
        """(answered, total) trials of the participant."""
        return len(self.answered(participant)), self.definition.n_trials

    def next_trial(self, participant: str) -> tuple[int, StudyTrial] | None:
        """``(1-based index, trial)`` of the participant's first unanswered trial, or None
        when all are answered (the participant resumes here after a reload)."""
        done = self.answered(participant)
        for k, t in enumerate(self.trials(participant), start=1):
            if t.id not in done:
                return k, t
        return None

    # ---- writing
    def assign(self, participant: str, *, now: str | None = None) -> Assignment:
        """The participant's assignment; the first time the id is seen it gets the next
        row of the Latin square (round-robin in order of first arrival), recorded."""
        pid = check_participant(participant)
        with _locked(self.path):
            self.refresh()
            asg = self._r.assignments.get(pid)
            if asg is not None:
                return asg
            n = len(self._r.assignments)
            append_line(self.path, {"kind": "assignment", "participant": pid,
                                    "row": n % self.definition.n_rows, "index": n,
                                    "at": now or _now()})
            self.refresh()
            return self._r.assignments[pid]

    def _refuse(self, pid: str, trial: str, why: str) -> None:
        append_line(self.path, {"kind": "refused", "participant": pid, "trial": trial,
                                "why": why, "at": _now()})

    def record(self, participant: str, trial_id: str, *, answer: str,
               x: float | None = None, y: float | None = None,
               browser_ms: float | None = None, server_ms: float | None = None,
               hidden_ms: float = 0.0, flags: Iterable[str] = (),
               client_shown_ms: float | None = None, client_answer_ms: float | None = None,
               session: str | None = None, now: float | None = None) -> Answer:
        """Score and append one answer; return it as recorded.

        The condition, row, position and outcome come from the study (the caller cannot
        get them wrong): the condition from the participant's row, the outcome from
        :func:`bench.study.records.score` against the trial's ground-truth region. A
        ``hidden_ms > 0`` adds the flag ``"hidden"``.

        Raises :class:`AlreadyAnswered` for a second answer to the same trial (also
        from another tab or thread: the check and the append happen under the lock) and
        :class:`SessionActive` when *session* is given and another live session holds
        the participant; both refusals are recorded as ``refused`` lines. ValueError for
        a bad argument; BenchError for an unknown participant or trial.
        """
        pid = check_participant(participant)
        x = None if x is None else float(x)
        y = None if y is None else float(y)
        if answer == "click":
            if x is None or y is None or not all(abs(v) <= MAX_COORD for v in (x, y)):
                raise ValueError("a click needs finite x and y in image pixels")
        elif x is not None or y is not None:
            raise ValueError(f"answer {answer!r} takes no click position")
        browser_ms = check_ms(browser_ms, "browser_ms")
        server_ms = check_ms(server_ms, "server_ms")
        hidden = check_ms(hidden_ms, "hidden_ms") or 0.0
        flag_set = set(check_flags(flags))
        if hidden > 0:
            flag_set.add("hidden")
        client_shown_ms = _epoch_ms(client_shown_ms, "client_shown_ms")
        client_answer_ms = _epoch_ms(client_answer_ms, "client_answer_ms")
        with _locked(self.path):
            self.refresh()
            asg = self._r.assignments.get(pid)
            if asg is None:
                raise BenchError("unknown participant", self.path,
                                 f"{pid} has no assignment; assign() comes first")
            try:
                t = self.definition.trial(trial_id)
            except KeyError:
                raise BenchError("unknown trial", self.path,
                                 f"study {self.definition.study} has no trial "
                                 f"{trial_id!r}") from None
            if session is not None:
                holder = self._session_holder(pid, now)
                if holder is not None and holder[0] != session:
                    self._refuse(pid, trial_id, "session not active")
                    self.refresh()
                    raise SessionActive(self.path, pid, holder[1])
            if (pid, trial_id) in self._r.done:
                first = next(a for a in self._r.answers
                             if a.participant == pid and a.trial == trial_id)
                self._refuse(pid, trial_id, "already answered")
                self.refresh()
                raise AlreadyAnswered(self.path, pid, trial_id, first.at)
            order = [s.id for s in self.definition.trials_for(asg.row, pid)]
            rec = Answer(
                study=self.definition.study, participant=pid, trial=t.id, q=t.q, i=t.i,
                condition=self.definition.condition_of(t, asg.row), trial_kind=t.kind,
                answer=answer, outcome=score(t.kind, answer, x, y, t.region_arrays()),
                x=x, y=y, browser_ms=browser_ms, server_ms=server_ms, hidden_ms=hidden,
                flags=tuple(sorted(flag_set)), row=asg.row, index=order.index(t.id) + 1,
                at=_now(), client_shown_ms=client_shown_ms,
                client_answer_ms=client_answer_ms)
            Answer.from_json(json.loads(json.dumps(rec.to_json())))  # the reader accepts it
            append_line(self.path, rec.to_json())
            self.refresh()
            return rec

    # ---- sessions
    def _sessions_path(self) -> Path:
        return self.path.with_suffix(".sessions.json")

    def _sessions(self) -> dict:
        try:
            d = json.loads(self._sessions_path().read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        return d if isinstance(d, dict) else {}

    def _write_sessions(self, d: dict) -> None:
        p = self._sessions_path()
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(d), encoding="utf-8")
        os.replace(tmp, p)

    def _session_holder(self, pid: str, now: float | None,
                        ttl: float = SESSION_TTL_S) -> tuple[str, float] | None:
        """(token, seconds since its heartbeat) of a live session of *pid*, else None."""
        now = time.time() if now is None else now
        s = self._sessions().get(pid)
        if not isinstance(s, dict) or not isinstance(s.get("token"), str):
            return None
        beat = s.get("heartbeat")
        if not isinstance(beat, int | float) or isinstance(beat, bool):
            return None
        age = now - float(beat)
        return (s["token"], max(age, 0.0)) if age < float(s.get("ttl", ttl)) else None

    def claim_session(self, participant: str, token: str, *, ttl: float = SESSION_TTL_S,
                      now: float | None = None) -> None:
        """Claim (or renew: a heartbeat) the participant id for the session *token*.
        :class:`SessionActive` when another token claimed it less than its ``ttl``
        seconds ago (the same id open in a second tab)."""
        pid = check_participant(participant)
        if not isinstance(token, str) or not token:
            raise ValueError("a session token is a non-empty string")
        now = time.time() if now is None else now
        with _locked(self.path):
            holder = self._session_holder(pid, now)
            if holder is not None and holder[0] != token:
                raise SessionActive(self.path, pid, holder[1])
            d = self._sessions()
            d[pid] = {"token": token, "heartbeat": now, "ttl": float(ttl)}
            self._write_sessions(d)

    def release_session(self, participant: str, token: str) -> None:
        """End the session *token* of the participant (nothing if another holds it)."""
        pid = check_participant(participant)
        with _locked(self.path):
            d = self._sessions()
            if isinstance(d.get(pid), dict) and d[pid].get("token") == token:
                del d[pid]
                self._write_sessions(d)

    def active_sessions(self, *, now: float | None = None) -> list[str]:
        """Participants with a live session (for the experimenter's dashboard)."""
        return sorted(p for p in self._sessions() if self._session_holder(p, now))

