"""Opening a user's file safely: a regular file, under its root, below its size cap.

Every reader of :mod:`bench.formats` opens files through here (see ``docs/PROTOCOLS.md``,
the hostile-input section):

- the path must name a **regular file**: a folder, FIFO, socket or device is refused from
  ``os.stat`` *before* anything is opened, and the file is opened with ``O_NONBLOCK`` and
  checked again with ``fstat``, so a FIFO swapped in between never blocks;
- a file read into memory must be below the **size cap of its kind** (memory-mapped
  numeric ``.npy`` files have no cap: what they cost is their size on disk, read lazily);
- paths found *inside* a file (label paths, image names) must stay **under their root**
  after resolving ``..`` and symbolic links (:func:`under_root`).

Limits (:func:`limit`) come from :func:`configure` (the CLI's ``--max-file-mb`` and
``--max-items``), else the environment (``BENCH_MAX_FILE_MB``, ``BENCH_MAX_ITEMS``), else
the defaults in :data:`DEFAULT_FILE_MB` and :data:`DEFAULT_MAX_ITEMS`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from bench.errors import BenchError

#: Size cap in MB of a file read into memory, per kind (``--max-file-mb`` / env
#: ``BENCH_MAX_FILE_MB`` sets one value for every kind).
DEFAULT_FILE_MB: dict[str, float] = {
    "pickle": 256.0,  # gnd_*.pkl, object .npy (pair labels, matching results)
    "json": 64.0,  # one labelme file (labelme may embed the image as base64)
    "text": 64.0,  # GPR1200 order file, category-name JSON
}
#: Items one file may decode into (pickle opcodes, a dict or set counting 4, plus what
#: the allowed callables build: one per element, an array's bytes / 8; JSON values; text
#: lines). About 100 bytes of memory each at worst, so the default bounds a hostile
#: file to about 1 GB. ``--max-items`` / env ``BENCH_MAX_ITEMS``.
DEFAULT_MAX_ITEMS = 10_000_000
#: Nesting depth of containers in a pickle or JSON file (no real file nests beyond ~6).
MAX_DEPTH = 100

_ENV_MB = "BENCH_MAX_FILE_MB"
_ENV_ITEMS = "BENCH_MAX_ITEMS"
_overrides: dict[str, float | int | None] = {"file_mb": None, "items": None}

RAISE_MB = f"raise the cap with --max-file-mb or the environment variable {_ENV_MB}"
RAISE_ITEMS = f"raise the cap with --max-items or the environment variable {_ENV_ITEMS}"


def configure(*, max_file_mb: float | None = None, max_items: int | None = None) -> None:
    """Set the limits for this process (the CLI calls this with its flags); ``None``
    leaves a limit to the environment or the default."""
    if max_file_mb is not None and not max_file_mb > 0:
        raise ValueError("max_file_mb must be positive")
    if max_items is not None and max_items <= 0:
        raise ValueError("max_items must be positive")
    _overrides["file_mb"] = max_file_mb
    _overrides["items"] = max_items


def _env_number(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        v = float(raw)
    except ValueError:
        raise BenchError("bad setting", f"${name}", f"{raw[:40]!r} is not a number") from None
    if not (v > 0 and v < float("inf")):
        raise BenchError("bad setting", f"${name}", f"{raw[:40]!r} must be a positive number")
    return v


def max_file_bytes(kind: str) -> int:
    """The size cap in bytes of a file of *kind* (``pickle``, ``json`` or ``text``)."""
    mb = _overrides["file_mb"]
    if mb is None:
        mb = _env_number(_ENV_MB)
    if mb is None:
        mb = DEFAULT_FILE_MB[kind]
    return int(mb * (1 << 20))


def max_items() -> int:
    """How many items one file may decode into (see :data:`DEFAULT_MAX_ITEMS`)."""
    n = _overrides["items"]
    if n is None:
        env = _env_number(_ENV_ITEMS)
        n = int(env) if env is not None else DEFAULT_MAX_ITEMS
    return int(n)


def _kind_of_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_file(path: str | os.PathLike, what: str, kind: str | None = None) -> os.stat_result:
    """``os.stat`` of *path* if it is a regular file (below the cap of *kind*, if given);
    raise :class:`BenchError` naming the file otherwise. Nothing is opened."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BenchError(f"missing {what}", path, "no such file; check the path") from None
    except (OSError, ValueError) as exc:  # ValueError: embedded NUL byte
        why = getattr(exc, "strerror", None) or str(exc)
        raise BenchError(f"unreadable {what}", path, why) from None
    _check_stat(st, path, what, kind)
    return st


def _check_stat(st: os.stat_result, path, what: str, kind: str | None) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise BenchError(f"wrong {what}", path, "this is a folder, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise BenchError(f"refused {what}", path,
                         f"{_kind_of_mode(st.st_mode)}, expected a regular file")
    if kind is not None:
        cap = max_file_bytes(kind)
        if st.st_size > cap:
            raise BenchError(f"refused {what}", path,
                             f"file of {st.st_size / 2**20:.1f} MB is above the "
                             f"{cap / 2**20:.0f} MB cap for this kind of file; {RAISE_MB}")


def open_file(path: str | os.PathLike, what: str, kind: str | None = None) -> BinaryIO:
    """Open a regular file for binary reading (see :func:`check_file`).

    The open uses ``O_NONBLOCK`` and the opened descriptor is checked again, so a FIFO or
    device put in place after the first check is refused instead of blocking."""
    check_file(path, what, kind)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise BenchError(f"missing {what}", path, "no such file; check the path") from None
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise BenchError(f"unreadable {what}", path, why) from None
    try:
        _check_stat(os.fstat(fd), path, what, kind)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: plain reads from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike, what: str, kind: str) -> bytes:
    """The whole content of a regular file below the cap of *kind*."""
    with open_file(path, what, kind) as fh:
        cap = max_file_bytes(kind)
        try:
            data = fh.read(cap + 1)
        except OSError as exc:
            raise BenchError(f"unreadable {what}", path, exc.strerror or str(exc)) from None
    if len(data) > cap:  # grew after the check
        raise BenchError(f"refused {what}", path,
                         f"file is above the {cap / 2**20:.0f} MB cap; {RAISE_MB}")
    return data


def read_text(path: str | os.PathLike, what: str, kind: str = "text") -> str:
    """A regular UTF-8 text file below the cap of *kind*, at most :func:`max_items` lines."""
    data = read_bytes(path, what, kind)
    n_lines = data.count(b"\n")
    if n_lines > max_items():
        raise BenchError(f"refused {what}", path,
                         f"{n_lines} lines, above the cap of {max_items()} items; {RAISE_ITEMS}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BenchError(f"unreadable {what}", path,
                         f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def nesting_depth(obj: Any, cap: int = MAX_DEPTH) -> int:
    """Depth of nested lists, tuples and dicts in *obj* (iterative, so any depth is safe);
    stops and returns ``cap + 1`` as soon as the depth goes beyond *cap*."""
    best = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict):
            kids = o.values()
        elif isinstance(o, list | tuple):
            kids = o
        else:
            continue
        d += 1
        if d > cap:
            return cap + 1
        best = max(best, d)
        stack.extend((k, d) for k in kids if isinstance(k, list | tuple | dict))
    return best


def parse_json(data: bytes, path, what: str) -> Any:
    """Parse JSON bytes into Python objects, or raise ``ValueError`` with the reason.

    Bounded: at most :func:`max_items` values (counted before parsing) and
    :data:`MAX_DEPTH` levels of nesting; numbers beyond Python's 4,300-digit limit, bad
    UTF-8 and any other hostile content give a ``ValueError``, never another exception.
    """
    n_values = data.count(b",") + data.count(b"[") + data.count(b"{") + 1
    if n_values > max_items():
        raise ValueError(f"up to {n_values} JSON values, above the cap of {max_items()} "
                         f"items; {RAISE_ITEMS}")
    try:
        text = data.decode("utf-8-sig")
        obj = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested too deeply (more than {MAX_DEPTH} levels)") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    except (ValueError, OverflowError, MemoryError) as exc:  # e.g. a 5,000-digit integer
        raise ValueError(f"not usable JSON ({type(exc).__name__}: {str(exc)[:120]})") from None
    if nesting_depth(obj) > MAX_DEPTH:
        raise ValueError(f"JSON nested too deeply (more than {MAX_DEPTH} levels)")
    return obj


def load_json(path: str | os.PathLike, what: str, kind: str = "json") -> Any:
    """A regular JSON file below the cap of *kind*, parsed with :func:`parse_json`;
    any problem is a :class:`BenchError` naming the file."""
    data = read_bytes(path, what, kind)
    try:
        return parse_json(data, path, what)
    except ValueError as exc:
        raise BenchError(f"unreadable {what}", path, str(exc)) from None


def _real(path: str | os.PathLike) -> str | None:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError, RuntimeError):
        return None


def under_root(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether *path*, with ``..`` and every symbolic link resolved, lies inside *root*
    (also resolved). A path that cannot be resolved is not inside."""
    rp, rr = _real(path), _real(root)
    if rp is None or rr is None:
        return False
    rr = rr.rstrip(os.sep) or os.sep
    return rp == rr or rp.startswith(rr if rr.endswith(os.sep) else rr + os.sep)


def join_under(root: str | os.PathLike, name: str | os.PathLike) -> Path | None:
    """``root / name`` if *name* is relative, has no ``..`` part and its resolved path
    stays inside *root*; ``None`` otherwise (absolute names, ``..``, NUL bytes, symbolic
    links leading out)."""
    try:
        name = os.fspath(name)
        if isinstance(name, bytes):
            name = os.fsdecode(name)
    except (TypeError, ValueError):
        return None
    if not name or "\x00" in name or os.path.isabs(name) or name.startswith("~"):
        return None
    parts = Path(name).parts
    if not parts or any(p == ".." for p in parts):
        return None
    p = Path(root) / name
    return p if under_root(p, root) else None


def is_regular_file(path: str | os.PathLike) -> bool:
    """``os.stat`` says regular file (following links); never raises."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


__all__ = ["DEFAULT_FILE_MB", "DEFAULT_MAX_ITEMS", "MAX_DEPTH", "RAISE_ITEMS", "RAISE_MB",
           "check_file", "configure", "is_regular_file", "join_under", "load_json",
           "max_file_bytes", "max_items", "nesting_depth", "open_file", "parse_json",
           "read_bytes", "read_text", "under_root"]
