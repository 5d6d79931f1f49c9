"""One error type for bad input, so every entry point can print one clear line."""

from __future__ import annotations

import os


class BenchError(Exception):
    """Bad input: *what* was wrong, in which *file*, and *why* (with the fix where known).

    ``str(err)`` is ``"{what} in {file}: {why}"``; the CLI prints it as ``error: ...``
    and the app shows it in an ``st.error``.
    """

    def __init__(self, what: str, file: str | os.PathLike | None, why: str):
        self.what = what
        self.file = str(file) if file is not None else "<input>"
        self.why = why
        super().__init__(f"{what} in {self.file}: {why}")


class BenchWarning:
    """A per-pair problem that does not stop a run (the pair counts as no prediction)."""

    __slots__ = ("pair", "file", "why")

    def __init__(self, pair: str, file: str | os.PathLike, why: str):
        self.pair = pair
        self.file = str(file)
        self.why = why

    def __str__(self) -> str:
        return f"pair {self.pair} in {self.file}: {self.why}"

    def __repr__(self) -> str:
        return f"BenchWarning({self!s})"


#: Every exception type hostile input can raise inside a reader (deep nesting, unknown
#: codecs, numbers too large for a float or for Python's 4,300-digit int limit, bad
#: bytes, huge sizes, wrong types). Readers turn these into a :class:`BenchError` naming
#: the file (or a :class:`BenchWarning` naming the pair); the CLI maps any that escape to
#: its ``error:`` line as a last resort.
HOSTILE_ERRORS: tuple[type[BaseException], ...] = (
    RecursionError, LookupError, OverflowError, ValueError, UnicodeError, MemoryError,
    TypeError,
)


def describe(obj: object, limit: int = 60) -> str:
    """A short description of a value read from a file, for messages; never raises.

    Strings are quoted and cut at *limit* characters, integers beyond 64 bits are given
    by their size (``str`` of a 5,000-digit integer raises), other values by type.
    """
    try:
        if isinstance(obj, str):
            return repr(obj[:limit]) + ("..." if len(obj) > limit else "")
        if isinstance(obj, bytes):
            return repr(obj[:limit]) + ("..." if len(obj) > limit else "")
        if isinstance(obj, bool) or obj is None:
            return repr(obj)
        if isinstance(obj, int):
            if obj.bit_length() > 64:
                return f"an integer of {obj.bit_length()} bits"
            return str(obj)
        if isinstance(obj, float):
            return repr(obj)
        name = type(obj).__name__
        if isinstance(obj, list | tuple | dict | set | frozenset):
            return f"a {name} of {len(obj)} items"
        return f"a {name}"
    except Exception:  # noqa: BLE001 - a description must never fail
        return "a value"
