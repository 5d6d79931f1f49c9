"""The study store as the participant screens use it (docs/PROTOCOLS.md §7).

One :class:`~bench.study.store.StudyStore` per study per process, shared by the threads
of Starlette's thread pool (the store is thread-safe and every write is one committed
transaction, so any server process can answer any request: nothing of a participant is
kept in this process). The store's interface is in ``bench/study/store.py``; the web
layer calls only: ``definition``, ``enter``, ``check_token``, ``issue_token``,
``participant``, ``assign``, ``next_trial``, ``progress``, ``shown``, ``record``,
``finish``, ``completion``, ``claim_session``, ``release_session``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from bench.study import store as store_mod

__all__ = ["cached", "data_dir", "forget", "open_study"]

_LOCK = threading.Lock()
_OPEN: dict[tuple[str, str], object] = {}


def data_dir() -> Path:
    """The studies' folder (``$BENCH_STUDY_DIR`` or ``./studies``)."""
    return store_mod.default_data_dir()


def open_study(name: str):
    """The open store of study *name* (opened once per process and kept). BenchError when
    there is no such study; ValueError for a malformed name."""
    base = data_dir()
    key = (str(base), name)
    with _LOCK:
        s = _OPEN.get(key)
    if s is not None:
        return s
    store_mod.study_file(base, name)  # checks the name (ValueError)
    s = _open(name, base)
    with _LOCK:
        return _OPEN.setdefault(key, s)


def cached(name: str):
    """The store of study *name* if this process has it open already, else None (no I/O:
    for the event loop)."""
    return _OPEN.get((str(data_dir()), name))


def _open(name: str, base: Path):
    return store_mod.StudyStore.open(name, data_dir=base)


def forget() -> None:
    """Close every open store of this process (tests; a changed ``$BENCH_STUDY_DIR``)."""
    with _LOCK:
        _OPEN.clear()

