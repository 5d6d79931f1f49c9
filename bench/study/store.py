"""Where a study lives: a SQL database (docs/PROTOCOLS.md §7.9; the JSON Lines format: §7.4).

**Which database.** ``$BENCH_STUDY_DB`` when set (``postgresql://user@host:port/db``, for
several servers sharing one study; or ``sqlite:///path/file.sqlite3``), else SQLite in
the study folder: ``<data dir>/studies.sqlite3``, the data dir being ``--data-dir`` /
``$BENCH_STUDY_DIR``, default ``./studies`` (never a cache folder). The same setting is
read by the CLI, the experimenter's app and the participant servers. Two drivers behind
one small interface (:class:`_Db`): the standard library's ``sqlite3`` and ``psycopg``
3; the SQL is plain (``INSERT ... ON CONFLICT``, ``RETURNING``), so no ORM layer is
needed, and each driver's own way of taking a lock is used where one is needed (SQLite:
``BEGIN IMMEDIATE``, one writer at a time; PostgreSQL: ``SELECT ... FOR UPDATE`` of the
study's row, only for group assignment).

**Durability.** SQLite runs in WAL mode with ``synchronous=FULL``: a commit is on disk
(fsynced) before the call returns, so an acknowledged answer survives a crash of the
process or of the machine. ``busy_timeout`` 30 s lets concurrent writers wait instead of
failing. PostgreSQL commits are durable with its defaults (``fsync``, ``synchronous_commit
= on``). Every method that writes is one transaction, committed before it returns.

**Tables** (one database holds many studies; every row names its study):

- ``studies``: the frozen :class:`~bench.study.design.StudyDefinition` as JSON; a study
  imported from a JSON Lines file keeps that file's bytes and SHA-256 beside it;
- ``participants``: one row per participant id: the platform's other ids, the hash of
  the token the server issued, the status (``entered`` -> ``active`` at consent ->
  ``done`` after the last trial; ``released`` when abandoned; ``returned`` when the
  participant returned the study on the platform), the Latin-square row and arrival
  number (given at consent), the completion code;
- ``answers``: one :class:`~bench.study.records.Answer` per row (its JSON record, plus
  the key columns), ``UNIQUE (study, participant, trial)``: a second answer to a trial
  cannot be stored, whichever server or tab sends it;
- ``refusals``: answers the store refused (a repeat, a second session), for the report;
- ``shown``: the server's time a trial was first shown to a participant (``server_ms``);
- ``sessions``: the single-tab lease, one row per participant, claimed by an atomic
  upsert (a different token may take it only when the holder's heartbeat is older than
  its ttl);
- ``problems``: lines skipped or repeats met when a JSON Lines study was imported.

**Group assignment.** At consent (:meth:`StudyStore.assign`), under the study's lock: the
assignments of participants idle for longer than the timeout who have not finished are
released; the participant gets the row with the fewest active or finished participants
(ties: the lowest row; without releases this is round-robin in order of consent). A
released participant who comes back gets their row back.

**JSON Lines studies** (the earlier store: ``<data dir>/<name>.jsonl``) are imported into
the database the first time they are opened, losslessly (every record; the file's bytes
are kept in the database; the file itself is left untouched and no longer written), with
a message (:attr:`StudyStore.notice`). ``python -m bench study export NAME --format
jsonl`` writes that format back. :func:`read_study_file` still reads such a file (the
reader skips any line that is not a valid record and reports it with the file and line).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import queue
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from bench.errors import BenchError
from bench.study import platforms
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

ENV_DATA_DIR = "BENCH_STUDY_DIR"
ENV_DB = "BENCH_STUDY_DB"
ENV_SYNC = "BENCH_STUDY_SQLITE_SYNC"
DB_FILE = "studies.sqlite3"
SESSION_TTL_S = 30.0
ASSIGNMENT_TIMEOUT_S = 1800.0  # an unfinished participant idle this long loses the group
TIME_SLACK_MS = 1000.0  # a browser time may exceed the server's by this much (clock jitter)
POOL_SIZE = 8  # connections per database per process
SCHEMA_VERSION = 1
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_PARTICIPANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

__all__ = ["ASSIGNMENT_TIMEOUT_S", "DB_FILE", "ENV_DATA_DIR", "ENV_DB", "SESSION_TTL_S",
           "TIME_SLACK_MS", "AlreadyAnswered", "Assignment", "Completion", "LineProblem",
           "Participant", "ParticipantReturned", "Refusal", "SessionActive", "StudyState",
           "StudyStore", "check_participant", "create_study", "database_url",
           "default_data_dir", "is_new_format", "list_studies", "new_session_token",
           "read_study", "read_study_file", "resolve_study", "study_file", "study_link"]


# ---------------------------------------------------------------- where

def default_data_dir() -> Path:
    """``$BENCH_STUDY_DIR`` if set, else ``./studies`` in the current working directory."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path.cwd() / "studies"


def _dir(data_dir: str | os.PathLike | None) -> Path:
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser()


def check_name(name: str) -> str:
    """A study name: 1-100 letters, digits, ``.``, ``_``, ``-``, starting with a letter
    or digit (no path separator). ValueError otherwise."""
    if not isinstance(name, str) or not _STUDY_NAME.match(name):
        raise ValueError(f"study name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def study_file(study_dir: str | os.PathLike | None, name: str) -> Path:
    """``<study_dir>/<name>.jsonl``: the study's JSON Lines file (an earlier store's, to
    import; or where ``export --format jsonl`` writes by default). It names the study
    for :meth:`StudyStore.open` and :func:`read_study_file`. ValueError for a bad name."""
    return _dir(study_dir) / f"{check_name(name)}.jsonl"


def resolve_study(name_or_file: str, data_dir: str | os.PathLike | None = None) -> Path:
    """A study given as a name (in the data dir) or as a ``.jsonl`` file path."""
    if name_or_file.endswith(".jsonl") or os.sep in name_or_file or "/" in name_or_file:
        return Path(name_or_file).expanduser()
    try:
        return study_file(data_dir, name_or_file)
    except ValueError as exc:
        raise BenchError("bad study name", name_or_file, str(exc)) from None


def database_url(data_dir: str | os.PathLike | None = None) -> str:
    """``$BENCH_STUDY_DB`` if set, else ``sqlite:///<data dir>/studies.sqlite3``."""
    env = os.environ.get(ENV_DB, "").strip()
    if env:
        return env
    return "sqlite:///" + str((_dir(data_dir) / DB_FILE).absolute())


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
    """The lab link's path and query: ``/take?study=NAME`` (and ``&p=ID``). A study on
    a recruiting platform: :func:`bench.study.platforms.participant_link`."""
    check_name(study)
    q = {"study": study} if participant is None else {"study": study,
                                                      "p": check_participant(participant)}
    return "/take?" + urlencode(q)  # the participant page (bench.study.web.PATH)


def _iso(t: float | None = None) -> str:
    dt = datetime.now(UTC) if t is None else datetime.fromtimestamp(t, UTC)
    return dt.isoformat(timespec="milliseconds")


def _epoch(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except (TypeError, ValueError):
        return None


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


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- the database

_DDL = """
CREATE TABLE IF NOT EXISTS bench_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
  study TEXT PRIMARY KEY,
  definition TEXT NOT NULL,
  created_at TEXT NOT NULL,
  source TEXT,
  source_sha256 TEXT,
  source_bytes {blob},
  secret TEXT);
CREATE TABLE IF NOT EXISTS participants (
  study TEXT NOT NULL REFERENCES studies (study),
  participant TEXT NOT NULL,
  platform_ids TEXT NOT NULL DEFAULT '{{}}',
  token_sha256 TEXT,
  status TEXT NOT NULL,
  row_no INTEGER,
  arrival INTEGER,
  entered_at TEXT NOT NULL,
  assigned_at TEXT,
  finished_at TEXT,
  released_at TEXT,
  returned_at TEXT,
  completion_code TEXT,
  last_seen DOUBLE PRECISION NOT NULL,
  updated DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (study, participant),
  UNIQUE (study, arrival));
CREATE TABLE IF NOT EXISTS answers (
  id {serial},
  study TEXT NOT NULL,
  participant TEXT NOT NULL,
  trial TEXT NOT NULL,
  at TEXT NOT NULL,
  record TEXT NOT NULL,
  UNIQUE (study, participant, trial),
  FOREIGN KEY (study, participant) REFERENCES participants (study, participant));
CREATE TABLE IF NOT EXISTS refusals (
  id {serial},
  study TEXT NOT NULL,
  participant TEXT NOT NULL,
  trial TEXT NOT NULL,
  why TEXT NOT NULL,
  at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shown (
  study TEXT NOT NULL,
  participant TEXT NOT NULL,
  trial TEXT NOT NULL,
  shown_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (study, participant, trial));
CREATE TABLE IF NOT EXISTS sessions (
  study TEXT NOT NULL,
  participant TEXT NOT NULL,
  token TEXT NOT NULL,
  heartbeat DOUBLE PRECISION NOT NULL,
  ttl DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (study, participant));
CREATE TABLE IF NOT EXISTS practice (
  study TEXT NOT NULL,
  participant TEXT NOT NULL,
  trial TEXT NOT NULL,
  correct INTEGER NOT NULL,
  at TEXT NOT NULL,
  PRIMARY KEY (study, participant, trial));
CREATE TABLE IF NOT EXISTS problems (
  id {serial},
  study TEXT NOT NULL,
  kind TEXT NOT NULL,
  file TEXT NOT NULL,
  line INTEGER NOT NULL,
  why TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS participants_row ON participants (study, status, row_no);
CREATE INDEX IF NOT EXISTS participants_seen ON participants (study, status, last_seen);
CREATE INDEX IF NOT EXISTS refusals_study ON refusals (study);
"""


class _Cur:
    """One transaction's cursor: SQL written with ``?`` placeholders for both drivers."""

    def __init__(self, cur, pg: bool):
        self._c, self.pg = cur, pg

    def run(self, sql: str, args: Iterable = ()) -> _Cur:
        self._c.execute(sql.replace("?", "%s") if self.pg else sql, tuple(args))
        return self

    def one(self, sql: str, args: Iterable = ()):
        return self.run(sql, args)._c.fetchone()

    def all(self, sql: str, args: Iterable = ()) -> list:
        return list(self.run(sql, args)._c.fetchall())


class _Db:
    """A database (one per URL per process) and a small pool of its connections."""

    def __init__(self, url: str):
        self.url = url
        self.pg = url.startswith(("postgresql://", "postgres://"))
        if not self.pg:
            if not url.startswith("sqlite:///"):
                raise BenchError("bad database setting", ENV_DB,
                                 f"{url[:80]!r}: use postgresql://... or sqlite:///path")
            self.file = Path(url[len("sqlite:///"):])
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._made = 0
        self._guard = threading.Lock()
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        self._wlock = threading.Lock()
        self._pid = os.getpid()
        self._ready = False

    # ---- connections
    def _connect(self):
        if self.pg:
            try:
                import psycopg
            except ImportError:
                raise BenchError("PostgreSQL driver missing", ENV_DB, "pip install "
                                 "'psycopg[binary]' to use a postgresql:// database") from None
            try:
                return psycopg.connect(self.url, connect_timeout=10)
            except psycopg.Error as exc:
                raise BenchError("database unreachable", _redact(self.url),
                                 str(exc).strip()[:300]) from None
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            c = sqlite3.connect(self.file, timeout=30.0, isolation_level=None,
                                check_same_thread=False)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute(f"PRAGMA synchronous={_sqlite_sync()}")
            c.execute("PRAGMA busy_timeout=30000")
            c.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise BenchError("unusable study database", self.file, str(exc)) from None
        return c

    def _errors(self) -> tuple[type[BaseException], ...]:
        if self.pg:
            import psycopg
            return (psycopg.Error,)
        return (sqlite3.Error,)

    @contextlib.contextmanager
    def tx(self, *, write: bool = True, lock: str | None = None) -> Iterator[_Cur]:
        """One transaction: committed on a normal exit, rolled back on an exception.
        SQLite: ``BEGIN IMMEDIATE`` for a write (the database's one writer), ``BEGIN``
        (a snapshot) for a read. PostgreSQL: *lock* names a study whose row is locked
        ``FOR UPDATE`` first (serialising the group assignments of that study)."""
        if os.getpid() != self._pid:  # forked: the parent's connections are not ours;
            _ORPHANS.append(self._pool)  # kept, never closed here (that would end the
            self.__init__(self.url)  # parent's sessions on a PostgreSQL server)
        if not self._ready:
            self._create_schema()
        # SQLite has one writer: the threads of this process queue on a lock (FIFO-ish,
        # no sleeping); other processes wait in SQLite's busy handler
        wlock = self._wlock if (write and not self.pg) else contextlib.nullcontext()
        self._slots.acquire()
        try:
            with wlock:
                yield from self._tx(write, lock)
        finally:
            self._slots.release()

    def _tx(self, write: bool, lock: str | None) -> Iterator[_Cur]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        ok = False
        try:
            if self.pg:
                cur = _Cur(conn.cursor(), True)
                if not write:  # one snapshot for every statement of a read
                    cur.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                if lock is not None:
                    cur.run("SELECT 1 FROM studies WHERE study = ? FOR UPDATE", (lock,))
            else:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                cur = _Cur(conn.cursor(), False)
            yield cur
            conn.commit() if self.pg else conn.execute("COMMIT")
            ok = True
        except self._errors() as exc:
            with contextlib.suppress(Exception):
                conn.rollback()
            with contextlib.suppress(Exception):
                conn.close()
            conn = None
            where = _redact(self.url) if self.pg else self.file
            raise BenchError("study database error", where, str(exc).strip()[:300]) \
                from None
        finally:
            if conn is not None:
                if not ok:
                    with contextlib.suppress(Exception):
                        conn.rollback()
                self._pool.put(conn)

    def _create_schema(self) -> None:
        with self._guard:
            if self._ready:
                return
            conn = self._connect()
            try:
                ddl = _DDL.format(serial="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
                                  if self.pg else "INTEGER PRIMARY KEY",
                                  blob="BYTEA" if self.pg else "BLOB")
                if self.pg:
                    with conn.cursor() as cur:
                        # one process creates the tables; the others wait here
                        cur.execute("SELECT pg_advisory_xact_lock(762118301)")
                        for stmt in ddl.split(";"):
                            if stmt.strip():
                                cur.execute(stmt)
                        # a column added after the first databases of this schema
                        cur.execute("ALTER TABLE studies ADD COLUMN IF NOT EXISTS secret TEXT")
                        cur.execute("SELECT version FROM bench_schema")
                        if cur.fetchone() is None:
                            cur.execute("INSERT INTO bench_schema VALUES (%s)",
                                        (SCHEMA_VERSION,))
                    conn.commit()
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    for stmt in ddl.split(";"):
                        if stmt.strip():
                            conn.execute(stmt)
                    cols = {r[1] for r in conn.execute("PRAGMA table_info(studies)")}
                    if "secret" not in cols:  # added after the first databases
                        conn.execute("ALTER TABLE studies ADD COLUMN secret TEXT")
                    if conn.execute("SELECT version FROM bench_schema").fetchone() is None:
                        conn.execute("INSERT INTO bench_schema VALUES (?)", (SCHEMA_VERSION,))
                    conn.execute("COMMIT")
            except self._errors() as exc:
                with contextlib.suppress(Exception):
                    conn.rollback()
                conn.close()
                where = _redact(self.url) if self.pg else self.file
                raise BenchError("study database error", where, str(exc).strip()[:300]) \
                    from None
            self._pool.put(conn)
            self._ready = True

    def exists(self) -> bool:
        """False for a SQLite file not yet created (reading never creates one)."""
        return self.pg or self.file.is_file()


def _sqlite_sync() -> str:
    """``$BENCH_STUDY_SQLITE_SYNC``: ``full`` (default: every commit fsynced, an
    acknowledged answer survives a power loss) or ``normal`` (WAL without fsync at
    commit: it survives a crash or kill of the server, not of the machine; about 50
    times more commits per second on a disk with 4 ms flushes)."""
    v = os.environ.get(ENV_SYNC, "full").strip().lower() or "full"
    if v not in ("full", "normal"):
        raise BenchError("bad setting", ENV_SYNC, f"{v!r}: use full or normal")
    return v.upper()


def _redact(url: str) -> str:
    """A database URL without its password."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


_DBS: dict[str, _Db] = {}
_ORPHANS: list = []
_DBS_GUARD = threading.Lock()


def _db(data_dir: str | os.PathLike | None = None) -> _Db:
    url = database_url(data_dir)
    with _DBS_GUARD:
        db = _DBS.get(url)
        if db is None:
            db = _DBS[url] = _Db(url)
        return db


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
    index: int  # arrival number (order of consent), 0-based
    at: str


@dataclass(frozen=True)
class Refusal:
    participant: str
    trial: str
    why: str
    at: str


@dataclass(frozen=True)
class Participant:
    """A participant's row (see the module docstring for the statuses)."""

    participant: str
    platform_ids: dict[str, str]
    status: str  # entered | active | done | released | returned
    row: int | None
    index: int | None
    entered_at: str
    consented_at: str | None
    finished_at: str | None
    released_at: str | None
    returned_at: str | None
    completion_code: str | None
    answered: int = 0


@dataclass(frozen=True)
class Completion:
    """What the end screen shows: the completion code, and where it redirects (None:
    it shows the code only)."""

    code: str
    url: str | None


@dataclass(frozen=True, eq=False)
class StudyState:
    """A study as read: its definition, the assignments (by participant), the accepted
    answers in the order they were stored, the refusals recorded by the store, the
    answers that repeat an earlier (participant, trial) and the skipped lines (both only
    from a JSON Lines file), and the participants' rows (from the database)."""

    path: Path
    definition: StudyDefinition
    assignments: dict[str, Assignment]
    answers: list[Answer]
    refused: list[Refusal]
    repeats: list[LineProblem]
    problems: list[LineProblem]
    participants: dict[str, Participant] = field(default_factory=dict)
    # participant -> practice outcomes (True = correct), in the order first answered
    practice_outcomes: dict[str, list[bool]] = field(default_factory=dict)

    def answered(self, participant: str) -> set[str]:
        return {a.trial for a in self.answers if a.participant == participant}


# ---------------------------------------------------------------- the JSON Lines reader

class _NotNewFormat(Exception):
    """The file's first record is not a study definition (e.g. the first, two-condition
    study format)."""


class _Reader:
    """Parser of a JSON Lines study file (the earlier store's format; also what
    ``export --format jsonl`` writes)."""

    def __init__(self, path: Path):
        self.path = path
        self.definition: StudyDefinition | None = None
        self.assignments: dict[str, Assignment] = {}
        self.answers: list[Answer] = []
        self.done: set[tuple[str, str]] = set()
        self.refused: list[Refusal] = []
        self.repeats: list[LineProblem] = []
        self.problems: list[LineProblem] = []
        self.line_no = 0
        self.first_record_seen = False

    def _bad(self, why: str) -> None:
        self.problems.append(LineProblem(str(self.path), self.line_no, why))

    def feed(self, data: bytes) -> None:
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for raw in lines:
            self._line(raw)

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
        if not isinstance(at, str):
            raise ValueError("assignment: bad time")
        if pid in self.assignments:
            raise ValueError(f"a second assignment of participant {pid}; the first one is "
                             "used")
        if any(a.index == index for a in self.assignments.values()):
            raise ValueError(f"assignment: arrival number {index} is taken")
        self.assignments[pid] = Assignment(pid, row, index, at)

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


def _parse_file(path: Path) -> tuple[_Reader, bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BenchError("missing study", path, "no such study file") from None
    except OSError as exc:
        raise BenchError("unreadable study", path, exc.strerror or str(exc)) from None
    r = _Reader(path)
    try:
        r.feed(data)
    except _NotNewFormat:
        raise BenchError("not a study file", path,
                         "its first record is not a study definition (a file of the first, "
                         "two-condition study format is no longer read)") from None
    if r.definition is None:
        raise BenchError("not a study file", path, "no valid study definition (first line)")
    return r, data


def is_new_format(path: str | os.PathLike) -> bool:
    """True when the first record of the JSON Lines file is a study definition."""
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


def read_study_file(path: str | os.PathLike) -> StudyState:
    """The study named by a ``<dir>/<name>.jsonl`` path: from the database of ``<dir>``
    (:func:`database_url`) when the study is there, else read from the file itself
    (nothing is imported or written). BenchError when it is missing, unreadable, or has
    no valid study definition; bad lines are reported in ``problems``."""
    path = Path(path)
    db = _db(path.parent)
    if db.exists() and _STUDY_NAME.match(path.stem) and _has_study(db, path.stem):
        return StudyStore(path.stem, path.parent, db).state()
    return _parse_file(path)[0].state()


def read_study(name: str, data_dir: str | os.PathLike | None = None) -> StudyState:
    """The study *name* of the data dir's database (a JSON Lines study is imported
    first)."""
    return StudyStore.open(name, data_dir).state()


def _has_study(db: _Db, name: str) -> bool:
    with db.tx(write=False) as c:
        return c.one("SELECT 1 FROM studies WHERE study = ?", (name,)) is not None


def list_studies(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the studies of the data dir: in its database, and JSON Lines files
    (``*.jsonl``) not imported yet; sorted."""
    base = _dir(data_dir)
    names: set[str] = set()
    try:
        names |= {p.stem for p in base.glob("*.jsonl")
                  if p.is_file() and _STUDY_NAME.match(p.stem)}
    except OSError:
        pass
    db = _db(base)
    if db.exists():
        with db.tx(write=False) as c:
            names |= {r[0] for r in c.all("SELECT study FROM studies")}
    return sorted(names)


def create_study(name: str, dataset: str, *, root: str | os.PathLike | None = None,
                 conditions, n_trials: int, catch: float, seed: int,
                 data_dir: str | os.PathLike | None = None, platform: str = "none",
                 completion_code: str | None = None, completion_url: str | None = None,
                 **options) -> tuple[StudyStore, list[str]]:
    """Design a study on *dataset* (under *root*, or the embedded demo when None; see
    :func:`bench.study.design.new_definition`) for *platform*
    (:mod:`bench.study.platforms`) and store it. Returns the open store and the warnings
    met while reading the data. BenchError if the name is taken or the design is
    impossible; ValueError for a bad platform, code or URL."""
    try:
        check_name(name)
    except ValueError as exc:
        raise BenchError("bad study name", name, str(exc)) from None
    plat = platforms.parse_platform(platform)
    code = platforms.check_completion_code(completion_code)
    url = platforms.check_completion_url(completion_url)
    if code is None and plat.kind == "prolific":
        code = platforms.new_completion_code()  # Prolific takes one code per study
    if name in list_studies(data_dir):
        raise BenchError("study exists", study_file(data_dir, name), "a study of this name "
                         "exists; choose another name (a study is never overwritten)")
    definition, warnings = new_definition(name, dataset, root=root, conditions=conditions,
                                          n_trials=n_trials, catch=catch, seed=seed, **options)
    definition = replace(definition, platform=plat.name, completion_code=code,
                         completion_url=url)
    return StudyStore.create(definition, data_dir), warnings


# ---------------------------------------------------------------- errors

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


class ParticipantReturned(BenchError):
    """The participant returned the study (withdrew) on the platform."""

    def __init__(self, path, participant: str):
        self.participant = participant
        super().__init__("participant returned the study", path,
                         f"participant {participant} returned (withdrew from) this study; "
                         "nothing more is recorded")


# ---------------------------------------------------------------- the store

_DEFINITIONS: dict[tuple[str, str], StudyDefinition] = {}
_ANSWER_COLS = "SELECT record FROM answers WHERE study = ?"


def _practice_outcomes(rows) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {}
    for pid, ok in rows:
        out.setdefault(pid, []).append(bool(ok))
    return out


def _participant(r, answered: int = 0) -> Participant:
    try:
        ids = json.loads(r[2])
        ids = {str(k): str(v) for k, v in ids.items()} if isinstance(ids, dict) else {}
    except (TypeError, ValueError):
        ids = {}
    return Participant(participant=r[1], platform_ids=ids, status=r[3], row=r[4], index=r[5],
                       entered_at=r[6], consented_at=r[7], finished_at=r[8],
                       released_at=r[9], returned_at=r[10], completion_code=r[11],
                       answered=answered)


_P_COLS = ("study, participant, platform_ids, status, row_no, arrival, entered_at, "
           "assigned_at, finished_at, released_at, returned_at, completion_code")


class StudyStore:
    """One study in its database (see the module docstring). Thread-safe; every method
    reads or writes the database (nothing but the frozen definition is cached), so any
    number of processes and servers may hold a store of the same study."""

    def __init__(self, name: str, data_dir: str | os.PathLike | None, db: _Db,
                 definition: StudyDefinition | None = None, notice: str | None = None):
        self.name = check_name(name)
        self.data_dir = _dir(data_dir)
        self.db = db
        self.notice = notice
        key = (db.url, name)
        if definition is None:
            definition = _DEFINITIONS.get(key)
        if definition is None:
            with db.tx(write=False) as c:
                r = c.one("SELECT definition FROM studies WHERE study = ?", (name,))
            if r is None:
                raise BenchError("missing study", self.path, "no such study in "
                                 f"{_redact(db.url)}")
            try:
                definition = StudyDefinition.from_json(json.loads(r[0]))
            except (ValueError, TypeError) as exc:
                raise BenchError("bad study definition", self.path, str(exc)[:300]) from None
        _DEFINITIONS[key] = definition
        self.definition = definition

    @property
    def path(self) -> Path:
        """``<data dir>/<name>.jsonl``: names the study (the file exists only for a study
        imported from it or exported to it)."""
        return self.data_dir / f"{self.name}.jsonl"

    @property
    def database(self) -> str:
        """Where the study is: the SQLite file, or the PostgreSQL URL without password."""
        return _redact(self.db.url) if self.db.pg else str(self.db.file)

    @property
    def key(self) -> str:
        """The study's identity across processes (database URL without password, name)."""
        return f"{_redact(self.db.url)}#{self.name}"

    # ---- opening
    @classmethod
    def create(cls, definition: StudyDefinition,
               data_dir: str | os.PathLike | None = None) -> StudyStore:
        """Store a new study; BenchError if one of this name exists (a study is never
        overwritten)."""
        name = check_name(definition.study)
        db = _db(data_dir)
        with db.tx() as c:
            got = c.one("INSERT INTO studies (study, definition, created_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (study) DO NOTHING RETURNING study",
                        (name, json.dumps(definition.to_json(), allow_nan=False), _iso()))
        if got is None:
            raise BenchError("study exists", study_file(data_dir, name), "a study of this "
                             "name exists; choose another name (a study is never "
                             "overwritten)")
        return cls(name, data_dir, db, definition)

    @classmethod
    def open(cls, study: str | os.PathLike,
             data_dir: str | os.PathLike | None = None) -> StudyStore:
        """Open the study *study*: a name (in the data dir's database), or a
        ``<dir>/<name>.jsonl`` path (the study *name* of ``<dir>``'s database). A JSON
        Lines study not in the database yet is imported (once; :attr:`notice` says so).
        BenchError if there is no such study."""
        if isinstance(study, os.PathLike) or str(study).endswith(".jsonl") \
                or "/" in str(study) or os.sep in str(study):
            p = Path(study).expanduser()
            name, data_dir = p.stem, p.parent
        else:
            name = str(study)
        try:
            check_name(name)
        except ValueError as exc:
            raise BenchError("bad study name", study, str(exc)) from None
        db = _db(data_dir)
        if (db.url, name) in _DEFINITIONS or _has_study(db, name):
            return cls(name, data_dir, db)
        legacy = _dir(data_dir) / f"{name}.jsonl"
        if not legacy.is_file():
            raise BenchError("missing study", legacy, "no such study (not in the database "
                             f"{_redact(db.url)}, and no JSON Lines file)")
        return _import(legacy, name, data_dir, db)

    # ---- reading
    def version(self) -> tuple:
        """Changes whenever anything of the study changes (a cache key)."""
        n = self.name
        with self.db.tx(write=False) as c:
            a = c.one("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM answers WHERE study = ?",
                      (n,))
            p = c.one("SELECT COUNT(*), COALESCE(MAX(updated), 0) FROM participants "
                      "WHERE study = ?", (n,))
            r = c.one("SELECT COALESCE(MAX(id), 0) FROM refusals WHERE study = ?", (n,))
        return (self.key, *a, *p, *r)

    def _answers(self, c: _Cur) -> list[Answer]:
        return [Answer.from_json(json.loads(r[0]))
                for r in c.all(_ANSWER_COLS + " ORDER BY id", (self.name,))]

    def state(self) -> StudyState:
        """A snapshot of the study as of now (one read transaction)."""
        n = self.name
        with self.db.tx(write=False) as c:
            answers = self._answers(c)
            prow = c.all(f"SELECT {_P_COLS} FROM participants WHERE study = ? "
                         "ORDER BY arrival, entered_at, participant", (n,))
            refused = [Refusal(*r) for r in c.all(
                "SELECT participant, trial, why, at FROM refusals WHERE study = ? "
                "ORDER BY id", (n,))]
            probs = c.all("SELECT kind, file, line, why FROM problems WHERE study = ? "
                          "ORDER BY id", (n,))
            prac = c.all("SELECT participant, correct FROM practice WHERE study = ? "
                         "ORDER BY at, trial", (n,))
        per: dict[str, int] = {}
        for a in answers:
            per[a.participant] = per.get(a.participant, 0) + 1
        parts = {r[1]: _participant(r, per.get(r[1], 0)) for r in prow}
        assignments = {p.participant: Assignment(p.participant, p.row, p.index,
                                                 p.consented_at or p.entered_at)
                       for p in parts.values() if p.row is not None
                       and (p.status in ("active", "done") or p.answered)}
        return StudyState(
            path=self.path, definition=self.definition, assignments=assignments,
            answers=answers, refused=refused,
            repeats=[LineProblem(f, ln, w) for k, f, ln, w in probs if k == "repeat"],
            problems=[LineProblem(f, ln, w) for k, f, ln, w in probs if k == "skipped"],
            participants=parts, practice_outcomes=_practice_outcomes(prac))

    def participant(self, participant: str) -> Participant | None:
        pid = check_participant(participant)
        with self.db.tx(write=False) as c:
            r = c.one(f"SELECT {_P_COLS} FROM participants WHERE study = ? AND "
                      "participant = ?", (self.name, pid))
            if r is None:
                return None
            n = c.one("SELECT COUNT(*) FROM answers WHERE study = ? AND participant = ?",
                      (self.name, pid))[0]
        return _participant(r, n)

    def participants(self) -> list[Participant]:
        return list(self.state().participants.values())

    def assignment(self, participant: str) -> Assignment | None:
        """The participant's group (row) once consented, else None."""
        p = self.participant(participant)
        if p is None or p.row is None:
            return None
        return Assignment(p.participant, p.row, p.index, p.consented_at or p.entered_at)

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
        pid = participant.strip()
        with self.db.tx(write=False) as c:
            return {r[0] for r in c.all("SELECT trial FROM answers WHERE study = ? AND "
                                        "participant = ?", (self.name, pid))}

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

    # ---- participants
    def participant_ids(self, n: int) -> list[str]:
        """*n* unguessable participant ids for links the experimenter hands out (a study
        without a platform): ``R`` + 20 characters of an HMAC-SHA-256 of the study's
        secret (made once, kept in the database) and the number, so the same *n* ids come
        back on every call, from any server. Lab ids (``P01``...) are guessable: only
        for a lab."""
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 100_000:
            raise ValueError("the number of ids must be an integer in [0, 100000]")
        with self.db.tx() as c:
            c.run("UPDATE studies SET secret = ? WHERE study = ? AND secret IS NULL",
                  (secrets.token_hex(32), self.name))
            key = c.one("SELECT secret FROM studies WHERE study = ?", (self.name,))[0]
        alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
        out = []
        for k in range(n):
            h = hmac.new(key.encode(), f"{self.name}:{k}".encode(), hashlib.sha256).digest()
            v = int.from_bytes(h[:13], "big")
            out.append("R" + "".join(alphabet[(v >> (5 * j)) & 31] for j in range(20)))
        return out

    def enter(self, participant: str, *, platform_ids: Mapping[str, str] | None = None,
              now: float | None = None) -> tuple[Participant, str | None]:
        """Register a participant arriving by a link (no group yet: see :meth:`assign`).
        Returns the participant and, the first time, a new token (only its hash is
        stored; the server hands the token to this browser); ``None`` when the
        participant existed already."""
        pid = check_participant(participant)
        ids = {str(k): str(v) for k, v in (platform_ids or {}).items()}
        if len(ids) > 20 or any(len(k) > 64 or len(v) > 200 for k, v in ids.items()):
            raise ValueError("platform ids: at most 20, names of at most 64 and values of at "
                             "most 200 characters")
        now = time.time() if now is None else now
        token = new_session_token()
        with self.db.tx() as c:
            got = c.one("INSERT INTO participants (study, participant, platform_ids, "
                        "token_sha256, status, entered_at, last_seen, updated) VALUES "
                        "(?, ?, ?, ?, 'entered', ?, ?, ?) ON CONFLICT (study, participant) "
                        "DO NOTHING RETURNING participant",
                        (self.name, pid, json.dumps(ids), _token_hash(token), _iso(now), now,
                         now))
        return self.participant(pid), (token if got is not None else None)

    def issue_token(self, participant: str) -> str:
        """A new token for the participant (the old one stops working)."""
        pid = check_participant(participant)
        token = new_session_token()
        with self.db.tx() as c:
            got = c.one("UPDATE participants SET token_sha256 = ? WHERE study = ? AND "
                        "participant = ? RETURNING participant",
                        (_token_hash(token), self.name, pid))
        if got is None:
            raise BenchError("unknown participant", self.path, f"{pid} has not entered")
        return token

    def check_token(self, participant: str, token: str) -> bool:
        """True when *token* is the participant's (constant-time comparison)."""
        if not isinstance(token, str) or not token:
            return False
        try:
            pid = check_participant(participant)
        except ValueError:
            return False
        with self.db.tx(write=False) as c:
            r = c.one("SELECT token_sha256 FROM participants WHERE study = ? AND "
                      "participant = ?", (self.name, pid))
        return r is not None and r[0] is not None and hmac.compare_digest(r[0],
                                                                          _token_hash(token))

    def _release(self, c: _Cur, now: float, timeout_s: float) -> list[str]:
        rows = c.all("UPDATE participants SET status = 'released', released_at = ?, "
                     "updated = ? WHERE study = ? AND status = 'active' AND last_seen < ? "
                     "RETURNING participant", (_iso(now), now, self.name, now - timeout_s))
        return sorted(r[0] for r in rows)

    def release_abandoned(self, *, timeout_s: float = ASSIGNMENT_TIMEOUT_S,
                          now: float | None = None) -> list[str]:
        """Release the groups of participants who consented but have not finished and
        have not been seen (an answer, a heartbeat) for *timeout_s*; their ids."""
        now = time.time() if now is None else now
        with self.db.tx(lock=self.name) as c:
            return self._release(c, now, timeout_s)

    def assign(self, participant: str, *, now: float | None = None,
               timeout_s: float = ASSIGNMENT_TIMEOUT_S) -> Assignment:
        """Consent: the participant's group (a row of the Latin square), claimed in a
        transaction under the study's lock (see the module docstring). Idempotent. A
        participant not registered by :meth:`enter` is registered here.
        :class:`ParticipantReturned` for a participant who returned the study."""
        pid = check_participant(participant)
        now = time.time() if now is None else now
        k = self.definition.n_rows
        returned = False
        with self.db.tx(lock=self.name) as c:
            r = c.one("SELECT status, row_no, arrival, assigned_at FROM participants WHERE "
                      "study = ? AND participant = ?", (self.name, pid))
            if r is not None and r[0] == "returned":
                returned = True
            elif r is not None and r[1] is not None:
                c.run("UPDATE participants SET last_seen = ?, updated = ?, status = CASE "
                      "WHEN status = 'released' THEN 'active' ELSE status END WHERE "
                      "study = ? AND participant = ?", (now, now, self.name, pid))
                result = Assignment(pid, r[1], r[2], r[3])
            else:
                self._release(c, now, timeout_s)
                counts = dict(c.all("SELECT row_no, COUNT(*) FROM participants WHERE "
                                    "study = ? AND row_no IS NOT NULL AND status IN "
                                    "('active', 'done') GROUP BY row_no", (self.name,)))
                row = min(range(k), key=lambda j: (counts.get(j, 0), j))
                index = c.one("SELECT COALESCE(MAX(arrival) + 1, 0) FROM participants "
                              "WHERE study = ?", (self.name,))[0]
                at = _iso(now)
                if r is None:
                    c.run("INSERT INTO participants (study, participant, token_sha256, "
                          "status, row_no, arrival, entered_at, assigned_at, last_seen, "
                          "updated) VALUES (?, ?, NULL, 'active', ?, ?, ?, ?, ?, ?)",
                          (self.name, pid, row, index, at, at, now, now))
                else:
                    c.run("UPDATE participants SET status = 'active', row_no = ?, "
                          "arrival = ?, assigned_at = ?, last_seen = ?, updated = ? WHERE "
                          "study = ? AND participant = ?",
                          (row, index, at, now, now, self.name, pid))
                result = Assignment(pid, row, index, at)
        if returned:
            raise ParticipantReturned(self.path, pid)
        return result

    def withdraw(self, participant: str, *, now: float | None = None) -> None:
        """The participant returned the study on the platform: their group is released
        (another participant may take it), their session ends, and nothing more of
        theirs is recorded; their answers stay (the export marks them excluded)."""
        pid = check_participant(participant)
        now = time.time() if now is None else now
        with self.db.tx(lock=self.name) as c:
            got = c.one("UPDATE participants SET status = 'returned', returned_at = ?, "
                        "released_at = COALESCE(released_at, ?), updated = ? WHERE "
                        "study = ? AND participant = ? RETURNING participant",
                        (_iso(now), _iso(now), now, self.name, pid))
            if got is None:
                c.run("INSERT INTO participants (study, participant, status, entered_at, "
                      "returned_at, last_seen, updated) VALUES (?, ?, 'returned', ?, ?, ?, "
                      "?)", (self.name, pid, _iso(now), _iso(now), now, now))
            c.run("DELETE FROM sessions WHERE study = ? AND participant = ?", (self.name, pid))

    def finish(self, participant: str, *, now: float | None = None) -> Completion:
        """The end screen's completion code (and redirect URL): the study's code, else
        one made for this participant the first time; the same on every later call.
        BenchError unless every trial is answered."""
        pid = check_participant(participant)
        now = time.time() if now is None else now
        d = self.definition
        with self.db.tx() as c:
            r = c.one("SELECT status, completion_code FROM participants WHERE study = ? "
                      "AND participant = ?", (self.name, pid))
            n = c.one("SELECT COUNT(*) FROM answers WHERE study = ? AND participant = ?",
                      (self.name, pid))[0]
            if r is None or r[0] == "returned" or n < d.n_trials:
                code = None
            else:
                code = r[1] or d.completion_code or platforms.new_completion_code()
                c.run("UPDATE participants SET completion_code = ?, status = 'done', "
                      "finished_at = COALESCE(finished_at, ?), updated = ? WHERE study = ? "
                      "AND participant = ?", (code, _iso(now), now, self.name, pid))
        if code is None:
            raise BenchError("not finished", self.path, f"participant {pid} has not "
                             "answered every trial (or returned the study)")
        return Completion(code, platforms.completion_url(d.platform, d.completion_url, code))

    def completion(self, participant: str) -> Completion | None:
        """The participant's completion (as :meth:`finish` gave it), or None."""
        p = self.participant(participant)
        if p is None or p.completion_code is None:
            return None
        d = self.definition
        return Completion(p.completion_code, platforms.completion_url(
            d.platform, d.completion_url, p.completion_code))

    # ---- answers
    def shown(self, participant: str, trial_id: str, *, now: float | None = None) -> float:
        """The server's time (epoch s) the trial was first shown to the participant,
        recorded on the first call; :meth:`record` measures ``server_ms`` from it."""
        pid = check_participant(participant)
        now = time.time() if now is None else now
        with self.db.tx() as c:
            c.run("INSERT INTO shown (study, participant, trial, shown_at) VALUES "
                  "(?, ?, ?, ?) ON CONFLICT (study, participant, trial) DO NOTHING",
                  (self.name, pid, str(trial_id)[:200], now))
            return float(c.one("SELECT shown_at FROM shown WHERE study = ? AND "
                               "participant = ? AND trial = ?",
                               (self.name, pid, str(trial_id)[:200]))[0])

    def record_practice(self, participant: str, trial_id: str, *, answer: str,
                        x: float | None = None, y: float | None = None,
                        now: float | None = None) -> str:
        """Score a practice answer (not a recorded trial) and keep only whether it was
        correct, the first time per practice trial (for the exclusion rule on practice
        accuracy, §7.2); returns the outcome (for the page's feedback)."""
        pid = check_participant(participant)
        t = next((p for p in self.definition.practice if p.id == trial_id), None)
        if t is None:
            raise BenchError("unknown trial", self.path, f"study {self.name} has no "
                             f"practice trial {str(trial_id)[:100]!r}")
        outcome = score(t.kind, answer, x, y, t.region_arrays())
        now = time.time() if now is None else now
        with self.db.tx() as c:
            c.run("INSERT INTO practice (study, participant, trial, correct, at) VALUES "
                  "(?, ?, ?, ?, ?) ON CONFLICT (study, participant, trial) DO NOTHING",
                  (self.name, pid, t.id, int(outcome in ("hit", "correct_rejection")),
                   _iso(now)))
        return outcome

    def _refuse(self, c: _Cur, pid: str, trial: str, why: str, now: float) -> None:
        c.run("INSERT INTO refusals (study, participant, trial, why, at) VALUES "
              "(?, ?, ?, ?, ?)", (self.name, pid, trial, why, _iso(now)))

    def record(self, participant: str, trial_id: str, *, answer: str,
               x: float | None = None, y: float | None = None,
               browser_ms: float | None = None, server_ms: float | None = None,
               hidden_ms: float = 0.0, flags: Iterable[str] = (),
               client_shown_ms: float | None = None, client_answer_ms: float | None = None,
               session: str | None = None, now: float | None = None,
               show: str | None = None, **extra) -> Answer:
        """Score and store one answer (one transaction); return it as stored.

        The condition, row, position and outcome come from the study (the caller cannot
        get them wrong): the condition from the participant's row, the outcome from
        :func:`bench.study.records.score` against the trial's ground-truth region. A
        ``hidden_ms > 0`` adds the flag ``"hidden"``. Without *server_ms* it is measured
        from :meth:`shown` when that was called. A *browser_ms* above *server_ms* plus
        :data:`TIME_SLACK_MS` adds the flag ``"time_mismatch"`` (flagged answers are left
        out of the time statistics). *show*: a trial id whose show time (*now*) is
        noted in the same transaction (:meth:`shown`: the participant's next trial, sent
        in the reply to this answer). *extra*: further fields of
        :class:`~bench.study.records.Answer`.

        Raises :class:`AlreadyAnswered` for a second answer to the same trial (the
        uniqueness constraint; from any tab, thread or server) and :class:`SessionActive`
        when *session* is given and another live session holds the participant; both
        refusals are stored. :class:`ParticipantReturned` after a return. ValueError for
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
        d = self.definition
        try:
            t = d.trial(trial_id)
        except KeyError:
            raise BenchError("unknown trial", self.path, f"study {d.study} has no trial "
                             f"{str(trial_id)[:100]!r}") from None
        now = time.time() if now is None else now
        error: BenchError | None = None
        rec: Answer | None = None
        with self.db.tx() as c:
            p = c.one("SELECT status, row_no FROM participants WHERE study = ? AND "
                      "participant = ?", (self.name, pid))
            if p is None or p[1] is None:
                error = BenchError("unknown participant", self.path,
                                   f"{pid} has no assignment; assign() comes first")
            elif p[0] == "returned":
                error = ParticipantReturned(self.path, pid)
            if error is None and session is not None:
                h = c.one("SELECT token, heartbeat, ttl FROM sessions WHERE study = ? AND "
                          "participant = ?", (self.name, pid))
                if h is not None and h[0] != session and now - h[1] < h[2]:
                    self._refuse(c, pid, t.id, "session not active", now)
                    error = SessionActive(self.path, pid, max(now - h[1], 0.0))
            if error is None:
                row = p[1]
                s_ms = server_ms
                if s_ms is None:
                    sh = c.one("SELECT shown_at FROM shown WHERE study = ? AND "
                               "participant = ? AND trial = ?", (self.name, pid, t.id))
                    if sh is not None:
                        s_ms = check_ms(max((now - float(sh[0])) * 1000.0, 0.0), "server_ms")
                fl = set(flag_set)
                if browser_ms is not None and s_ms is not None \
                        and browser_ms > s_ms + TIME_SLACK_MS:
                    fl.add("time_mismatch")
                order = [s.id for s in d.trials_for(row, pid)]
                rec = Answer(
                    study=d.study, participant=pid, trial=t.id, q=t.q, i=t.i,
                    condition=d.condition_of(t, row), trial_kind=t.kind, answer=answer,
                    outcome=score(t.kind, answer, x, y, t.region_arrays()), x=x, y=y,
                    browser_ms=browser_ms, server_ms=s_ms, hidden_ms=hidden,
                    flags=tuple(sorted(fl)), row=row, index=order.index(t.id) + 1,
                    at=_iso(now), client_shown_ms=client_shown_ms,
                    client_answer_ms=client_answer_ms, **extra)
                data = json.dumps(rec.to_json(), allow_nan=False)
                Answer.from_json(json.loads(data))  # what is stored can be read back
                got = c.one("INSERT INTO answers (study, participant, trial, at, record) "
                            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (study, participant, trial) "
                            "DO NOTHING RETURNING id", (self.name, pid, t.id, rec.at, data))
                if got is None:
                    first = c.one("SELECT at FROM answers WHERE study = ? AND participant = ? "
                                  "AND trial = ?", (self.name, pid, t.id))
                    self._refuse(c, pid, t.id, "already answered", now)
                    error = AlreadyAnswered(self.path, pid, t.id, first[0] if first else "?")
                else:
                    n = c.one("SELECT COUNT(*) FROM answers WHERE study = ? AND "
                              "participant = ?", (self.name, pid))[0]
                    c.run("UPDATE participants SET last_seen = ?, updated = ?, status = "
                          "CASE WHEN ? THEN 'done' WHEN status = 'released' THEN 'active' "
                          "ELSE status END, finished_at = CASE WHEN ? THEN COALESCE("
                          "finished_at, ?) ELSE finished_at END WHERE study = ? AND "
                          "participant = ?", (now, now, n >= d.n_trials, n >= d.n_trials,
                                              _iso(now), self.name, pid))
                    if show is not None:  # the next trial, sent with the answer's reply
                        c.run("INSERT INTO shown (study, participant, trial, shown_at) "
                              "VALUES (?, ?, ?, ?) ON CONFLICT (study, participant, trial) "
                              "DO NOTHING", (self.name, pid, str(show)[:200], now))
        if error is not None:
            raise error
        return rec

    # ---- sessions (the single-tab lease)
    def claim_session(self, participant: str, token: str, *, ttl: float = SESSION_TTL_S,
                      now: float | None = None) -> None:
        """Claim (or renew: a heartbeat) the participant id for the session *token*, in
        one atomic upsert. :class:`SessionActive` when another token claimed it less
        than its ``ttl`` seconds ago (the same id open in a second tab, on any server).
        A renewal also counts as activity for :meth:`release_abandoned`."""
        pid = check_participant(participant)
        if not isinstance(token, str) or not token:
            raise ValueError("a session token is a non-empty string")
        now = time.time() if now is None else now
        with self.db.tx() as c:
            got = c.one("INSERT INTO sessions (study, participant, token, heartbeat, ttl) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (study, participant) DO UPDATE "
                        "SET token = excluded.token, heartbeat = excluded.heartbeat, "
                        "ttl = excluded.ttl WHERE sessions.token = excluded.token OR "
                        "sessions.heartbeat + sessions.ttl <= excluded.heartbeat "
                        "RETURNING token", (self.name, pid, token, now, float(ttl)))
            if got is None:
                h = c.one("SELECT heartbeat FROM sessions WHERE study = ? AND "
                          "participant = ?", (self.name, pid))
                age = max(now - float(h[0]), 0.0) if h else 0.0
            else:
                c.run("UPDATE participants SET last_seen = ? WHERE study = ? AND "
                      "participant = ? AND status = 'active'", (now, self.name, pid))
        if got is None:
            raise SessionActive(self.path, pid, age)

    def release_session(self, participant: str, token: str) -> None:
        """End the session *token* of the participant (nothing if another holds it)."""
        pid = check_participant(participant)
        with self.db.tx() as c:
            c.run("DELETE FROM sessions WHERE study = ? AND participant = ? AND token = ?",
                  (self.name, pid, token))

    def active_sessions(self, *, now: float | None = None) -> list[str]:
        """Participants with a live session (for the experimenter's dashboard)."""
        now = time.time() if now is None else now
        with self.db.tx(write=False) as c:
            rows = c.all("SELECT participant FROM sessions WHERE study = ? AND "
                         "heartbeat + ttl > ?", (self.name, now))
        return sorted(r[0] for r in rows)


# ---------------------------------------------------------------- import

def _import(path: Path, name: str, data_dir, db: _Db) -> StudyStore:
    """Import the JSON Lines study *path* into *db* in one transaction (see the module
    docstring). Another process importing it at the same time: theirs stands."""
    if not is_new_format(path):
        raise BenchError("old study format", path, "written by the first study page (records "
                         "'design' / 'response'), which this version no longer reads; make "
                         "a new study with `study new`")
    r, data = _parse_file(path)
    d = r.definition
    if d.study != name:
        raise BenchError("study name mismatch", path, f"the file holds study {d.study!r}; "
                         f"rename the file to {d.study}.jsonl")
    last: dict[str, float] = {}
    per: dict[str, int] = {}
    for a in r.answers:
        last[a.participant] = max(last.get(a.participant, 0.0), _epoch(a.at) or 0.0)
        per[a.participant] = per.get(a.participant, 0) + 1
    with db.tx() as c:
        got = c.one("INSERT INTO studies (study, definition, created_at, source, "
                    "source_sha256, source_bytes) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
                    "(study) DO NOTHING RETURNING study",
                    (name, json.dumps(d.to_json(), allow_nan=False), _iso(),
                     str(path.absolute()), hashlib.sha256(data).hexdigest(), data))
        if got is not None:
            for asg in sorted(r.assignments.values(), key=lambda a: a.index):
                seen = max(last.get(asg.participant, 0.0), _epoch(asg.at) or 0.0)
                done = per.get(asg.participant, 0) >= d.n_trials
                c.run("INSERT INTO participants (study, participant, status, row_no, "
                      "arrival, entered_at, assigned_at, finished_at, last_seen, updated) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (name, asg.participant, "done" if done else "active", asg.row,
                       asg.index, asg.at, asg.at, _iso(seen) if done else None, seen, seen))
            for a in r.answers:
                c.run("INSERT INTO answers (study, participant, trial, at, record) VALUES "
                      "(?, ?, ?, ?, ?)", (name, a.participant, a.trial, a.at,
                                          json.dumps(a.to_json(), allow_nan=False)))
            for f in r.refused:
                c.run("INSERT INTO refusals (study, participant, trial, why, at) VALUES "
                      "(?, ?, ?, ?, ?)", (name, f.participant, f.trial, f.why, f.at))
            for kind, items in (("repeat", r.repeats), ("skipped", r.problems)):
                for pr in items:
                    c.run("INSERT INTO problems (study, kind, file, line, why) VALUES "
                          "(?, ?, ?, ?, ?)", (name, kind, pr.file, pr.line, pr.why))
    notice = None
    if got is not None:
        notice = (f"imported study {name} from {path} into {_redact(db.url)}: "
                  f"{len(r.assignments)} participants, {len(r.answers)} answers, "
                  f"{len(r.refused)} refusals, {len(r.repeats)} repeats, {len(r.problems)} "
                  "skipped lines; the file is kept and no longer written")
    return StudyStore(name, data_dir, db, d, notice)
