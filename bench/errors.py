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
