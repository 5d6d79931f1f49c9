"""Computed results kept on disk, keyed by the stamps of their input files and the code.

The app's first visit of a page computes its numbers (a scan of an R1M ranks file, a
thousand labelme files, the pixel metrics of both protocols: seconds); a server started
later finds them here and pays milliseconds. Every entry is keyed by

- a *kind* (``"pixel"``, ``"triage"``, ...) and the caller's key: plain values and the
  ``(absolute path, size, mtime_ns)`` stamp of every input file, so an edited, replaced
  or touched file is a different key and is computed again;
- :func:`code_version`: a hash of the source of every ``bench`` module that computes
  numbers (all of ``bench/`` but the app, the study and the demo builder; the app's
  ``loaders.py`` included), so results of another version of the code are never read
  back.

Files: ``<cache dir>/results-v1/<sha256 of the key>.pkl`` (``bench.thumbs.cache_root``;
``$BENCH_CACHE_DIR`` moves it), written to a temporary name and renamed into place, at
most :data:`MAX_ENTRIES` kept (the oldest go first). ``BENCH_RESULTS_CACHE=0`` turns
the cache off.

An entry is read with the project's one safe unpickler
(:func:`bench.formats.safe_pickle.loads_restricted`: containers, numbers, strings, numpy
arrays, bounded in size): results are stored as plain containers, a dataclass as a
tagged dict, and rebuilt only into ``bench`` dataclasses (and
:class:`~bench.errors.BenchWarning`), never into another class. An entry that cannot be
read, or names another class, is computed again and rewritten.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bench.errors import BenchError, BenchWarning

T = TypeVar("T")

FORMAT = 1
MAX_ENTRIES = 2_000
MAX_ENTRY_BYTES = 256 << 20  # results above this are not written (recomputed instead)
_TAG = "\x00dataclass"
_WARN = "\x00warning"
_SKIP_DIRS = {"app", "study", "demo", "__pycache__"}


def enabled() -> bool:
    return os.environ.get("BENCH_RESULTS_CACHE", "1").strip().lower() not in (
        "0", "off", "no", "false")


def folder() -> Path:
    from bench import thumbs

    return thumbs.cache_root() / f"results-v{FORMAT}"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of the sources of the ``bench`` modules that compute numbers (everything
    under ``bench/`` except ``app/``, ``study/`` and ``demo/``, plus ``app/loaders.py``,
    which assembles some results), read once per process."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _SKIP_DIRS.intersection(rel.parts[:-1]) and rel.as_posix() != "app/loaders.py":
            continue
        h.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def entry_path(kind: str, key: Any) -> Path:
    """The file of the entry for (*kind*, *key*) under the current code version."""
    digest = hashlib.sha256(repr((FORMAT, kind, key, code_version())).encode()).hexdigest()
    return folder() / f"{digest}.pkl"


# ---------------------------------------------------------------- plain form

def to_plain(obj: Any) -> Any:
    """*obj* as containers, numbers, strings and numpy arrays: a dataclass becomes
    ``{TAG: "module:qualname", field: value, ...}``, a BenchWarning a tagged tuple."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        cls = type(obj)
        out = {_TAG: f"{cls.__module__}:{cls.__qualname__}"}
        for f in dataclasses.fields(obj):
            out[f.name] = to_plain(getattr(obj, f.name))
        return out
    if isinstance(obj, BenchWarning):
        return (_WARN, obj.pair, obj.file, obj.why)
    if isinstance(obj, dict):
        return {to_plain(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        out = np.empty(obj.shape, dtype=object)
        out.ravel()[:] = [to_plain(v) for v in obj.ravel()]
        return out
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.ndarray,
                                       np.generic)):
        return obj
    raise TypeError(f"cannot keep a {type(obj).__name__} in the results cache")


def _class(name: str) -> type:
    mod, _, qual = name.partition(":")
    if not (mod == "bench" or mod.startswith("bench.")) or "." in qual or not qual:
        raise ValueError(f"not a bench dataclass: {name}")
    cls = getattr(importlib.import_module(mod), qual, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"not a bench dataclass: {name}")
    return cls


def from_plain(obj: Any) -> Any:
    """The inverse of :func:`to_plain` (fields set as stored, no ``__init__`` run)."""
    if isinstance(obj, dict):
        if _TAG in obj:
            cls = _class(obj[_TAG])
            names = {f.name for f in dataclasses.fields(cls)}
            if set(obj) - {_TAG} != names:
                raise ValueError(f"fields of {obj[_TAG]} differ")
            out = object.__new__(cls)
            for k in names:
                object.__setattr__(out, k, from_plain(obj[k]))
            return out
        return {from_plain(k): from_plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        if len(obj) == 4 and obj[0] == _WARN:
            return BenchWarning(obj[1], obj[2], obj[3])
        return tuple(from_plain(v) for v in obj)
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        out = np.empty(obj.shape, dtype=object)
        out.ravel()[:] = [from_plain(v) for v in obj.ravel()]
        return out
    return obj


# ---------------------------------------------------------------- read / write

def load(kind: str, key: Any) -> tuple[bool, Any]:
    """``(True, value)`` when the entry exists and reads back; else ``(False, None)``."""
    from bench.formats.safe_pickle import loads_restricted

    path = entry_path(kind, key)
    try:
        data = path.read_bytes()
    except OSError:
        return False, None
    try:
        return True, from_plain(loads_restricted(data, path))
    except (BenchError, ValueError, TypeError, AttributeError, ImportError):
        return False, None  # unreadable or not ours: computed again, then rewritten


def save(kind: str, key: Any, value: Any) -> Path | None:
    """Write the entry (atomically); ``None`` when it could not or should not be kept."""
    try:
        data = pickle.dumps(to_plain(value), protocol=4)
    except (TypeError, pickle.PicklingError, RecursionError):
        return None
    if len(data) > MAX_ENTRY_BYTES:
        return None
    path = entry_path(kind, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        return None
    _prune(path.parent)
    return path


def _prune(where: Path) -> None:
    try:
        entries = [e for e in os.scandir(where) if e.name.endswith(".pkl")
                   and not e.name.startswith(".")]
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=lambda e: e.stat().st_mtime_ns)
        for e in entries[:len(entries) - MAX_ENTRIES]:
            os.unlink(e.path)
    except OSError:
        pass


def cached(kind: str, key: Any, compute: Callable[[], T]) -> T:
    """The entry for (*kind*, *key*), or ``compute()`` written as that entry. *key*
    must hold the stamp of every file *compute* reads (see the module docstring)."""
    if not enabled():
        return compute()
    hit, value = load(kind, key)
    if hit:
        return value
    value = compute()
    save(kind, key, value)
    return value
