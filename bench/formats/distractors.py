"""The R1M distractor list ``revisitop1m.txt`` (names and images of database indices past
``imlist``).

The released code builds the R1M database as ``imlist`` followed by the lines of
``revisitop/data/revisitop1m.txt`` (``index_list = imlist + f.readlines()``), so database
index ``i >= n_db`` is line ``i - n_db`` of that file. Each line is an image path relative
to the distractors' image folder, ``revisitop/data/jpg/`` beside the list (the layout the
released code expects; the revisitop download keeps list and ``jpg/`` together in
``data/datasets/revisitop1m/`` too). A line without an extension names ``<line>.jpg``.

The real list has 1,001,001 lines. It is read only when a name is first asked for, in one
pass: the file is read as bytes and the line starts are found with numpy, so loading it
takes a few tens of milliseconds and a name is decoded only when it is asked for (no list
of a million Python strings). Loaded lists are cached by file identity (path, size,
modification time).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.errors import BenchError

DISTRACTOR_LIST = "revisitop1m.txt"


def default_images_folder(list_path: str | os.PathLike) -> Path:
    """Where the released code looks for the distractor images: ``jpg/`` beside the list."""
    return Path(list_path).parent / "jpg"


class DistractorList(Sequence[str]):
    """The lines of ``revisitop1m.txt``, read lazily: ``lst[j]`` is distractor *j*'s name
    (the line, stripped), :meth:`image_path` the file it names.

    Constructing it reads nothing; the first ``len()`` or lookup reads the file once.
    """

    def __init__(self, path: str | os.PathLike, images: str | os.PathLike | None = None):
        self.path = Path(path)
        self.images = Path(images) if images is not None else default_images_folder(self.path)
        self._data: bytes | None = None
        self._starts: np.ndarray | None = None
        self._ends: np.ndarray | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ loading

    def _load(self) -> None:
        if self._starts is not None:
            return
        with self._lock:
            if self._starts is not None:
                return
            try:
                data = self.path.read_bytes()
            except OSError as exc:
                raise BenchError("unreadable distractor list", self.path,
                                 f"{exc.strerror or exc}; expected revisitop1m.txt with one "
                                 "image path per line") from None
            nul = data.find(b"\0")
            if nul >= 0:
                raise BenchError("malformed distractor list", self.path,
                                 f"binary data (a NUL byte at offset {nul}); expected a text "
                                 "file with one image path per line")
            buf = np.frombuffer(data, dtype=np.uint8)
            nl = np.flatnonzero(buf == 10)
            # readlines(): every "\n" ends a line; a last line without "\n" counts too
            starts = np.concatenate([[0], nl + 1]).astype(np.int64)
            ends = np.concatenate([nl, [len(data)]]).astype(np.int64)
            if starts[-1] >= len(data):  # nothing after the final newline
                starts, ends = starts[:-1], ends[:-1]
            self._data, self._ends, self._starts = data, ends, starts

    def __len__(self) -> int:
        self._load()
        assert self._starts is not None
        return int(self._starts.size)

    # ------------------------------------------------------------ lookups

    def name(self, j: int) -> str:
        """Line *j* (0-based) without surrounding white space (``\\r`` included)."""
        self._load()
        assert self._data is not None and self._starts is not None and self._ends is not None
        n = self._starts.size
        j = int(j)
        if not 0 <= j < n:
            raise IndexError(f"distractor {j} out of range 0..{n - 1}")
        raw = self._data[int(self._starts[j]):int(self._ends[j])]
        return raw.decode("utf-8", errors="replace").strip()

    def __getitem__(self, j):  # type: ignore[override]
        if isinstance(j, slice):
            return [self.name(k) for k in range(*j.indices(len(self)))]
        j = int(j)
        return self.name(j + len(self) if j < 0 else j)

    def image_path(self, j: int) -> Path:
        """Where distractor *j*'s image is expected (it may not exist): the line relative to
        the images folder, with ``.jpg`` added when the line has no extension."""
        name = self.name(j)
        rel = name if Path(name).suffix else f"{name}.jpg"
        return self.images / rel

    def entry(self, j: int) -> tuple[str, Path]:
        """``(name, image path)`` of distractor *j*."""
        return self.name(j), self.image_path(j)

    def __repr__(self) -> str:
        n = "unread" if self._starts is None else f"{self._starts.size} lines"
        return f"DistractorList({str(self.path)!r}, {n})"


@lru_cache(maxsize=4)
def _cached(path: str, images: str | None, size: int, mtime_ns: int) -> DistractorList:
    return DistractorList(path, images)


def load_distractors(path: str | os.PathLike, images: str | os.PathLike | None = None
                     ) -> DistractorList:
    """The distractor list at *path* (not read yet), shared between callers while the file
    is unchanged. *images*: the folder the lines are relative to (default ``jpg/`` beside
    the list)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise BenchError("missing distractor list", p,
                         f"{exc.strerror or exc}; expected revisitop1m.txt") from None
    return _cached(os.path.abspath(p), str(images) if images is not None else None,
                   st.st_size, st.st_mtime_ns)


def distractor_entry(n_db: int, i: int, distractors: DistractorList | None
                     ) -> tuple[str, Path | None]:
    """``(name, image path)`` of database index ``i >= n_db`` (the R1M part of the database):
    from *distractors* when it has line ``i - n_db``, else ``("distractor N", None)``."""
    j = int(i) - int(n_db)
    if j < 0:
        raise ValueError(f"index {i} is inside imlist (n_db = {n_db}), not a distractor")
    if distractors is not None and j < len(distractors):
        return distractors.entry(j)
    return f"distractor {j}", None


__all__ = ["DISTRACTOR_LIST", "DistractorList", "default_images_folder", "distractor_entry",
           "load_distractors"]
