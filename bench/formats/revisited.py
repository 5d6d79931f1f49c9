"""Revisited Oxford / Paris ground truth (``gnd_*.pkl``) and image-level ranks (docs/PROTOCOLS.md §1)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import HOSTILE_ERRORS, BenchError, describe
from bench.formats.safe_pickle import load_npy, load_pickle


@dataclass(frozen=True, eq=False)
class Gnd:
    """A loaded Revisited ground truth.

    ``easy``, ``hard`` and ``junk`` hold one int64 array of database indices per query;
    ``bbx`` the query box ``(x1, y1, x2, y2)`` or ``None``.
    """

    path: Path
    name: str
    imlist: list[str]
    qimlist: list[str]
    easy: list[np.ndarray]
    hard: list[np.ndarray]
    junk: list[np.ndarray]
    bbx: list[tuple[float, float, float, float] | None] = field(default_factory=list)

    @property
    def n_queries(self) -> int:
        return len(self.qimlist)

    @property
    def n_db(self) -> int:
        return len(self.imlist)

    @property
    def short(self) -> str:
        """``roxford5k`` -> ``oxford``, ``rparis6k`` -> ``paris``, ``rdemo`` -> ``demo``."""
        return dataset_short_name(self.name)


def dataset_short_name(name: str) -> str:
    """Strip the leading ``r`` and a trailing size (``5k``, ``6k``) from a gnd dataset name."""
    s = re.sub(r"\d+k$", "", name)
    if s.startswith("r") and len(s) > 1:
        s = s[1:]
    return s


def _index_array(value, path, q: int, key: str, n_db: int) -> np.ndarray:
    """``gnd[q][key]`` as int64 database indices: a list, tuple or integer array of
    integers (integral floats are accepted, as numpy writes them); a string, a bool, a
    nested list or anything else is an error naming the file and the query."""
    where = f"gnd[{q}]['{key}']"
    if value is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        value = [value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf" or value.ndim > 1:
            raise BenchError("malformed ground truth", path,
                             f"{where} is a {value.dtype} array of shape {value.shape}, "
                             "expected a list of integer indices")
        arr = value.reshape(-1)
    elif isinstance(value, list | tuple):
        for v in value:
            ok = (isinstance(v, int | np.integer | float | np.floating)
                  and not isinstance(v, bool | np.bool_))
            if not ok:
                raise BenchError("malformed ground truth", path,
                                 f"{where} holds {describe(v)}; expected integer indices")
        try:
            arr = np.asarray(value, dtype=np.float64 if any(
                isinstance(v, float | np.floating) for v in value) else np.int64).reshape(-1)
        except (OverflowError, ValueError, TypeError):
            raise BenchError("index out of range", path,
                             f"{where} holds an index beyond 64-bit integers") from None
    else:
        raise BenchError("malformed ground truth", path,
                         f"{where} is {describe(value)}, expected a list of integer indices")
    if arr.dtype.kind == "f":
        if arr.size and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
            raise BenchError("malformed ground truth", path, f"{where} holds non-integer values")
        if arr.size and np.abs(arr).max() >= 2.0**62:
            raise BenchError("index out of range", path, f"{where} holds an index beyond 2^62")
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= n_db):
        raise BenchError("index out of range", path,
                         f"{where} has index {int(out.max() if out.max() >= n_db else out.min())}"
                         f" outside 0..{n_db - 1} (imlist has {n_db} names)")
    return out


def _names(value, path, key: str) -> list[str]:
    """``imlist`` / ``qimlist``: image names (str, or bytes decoded as latin-1)."""
    if not isinstance(value, list | tuple | np.ndarray) or isinstance(value, str):
        raise BenchError("malformed ground truth", path,
                         f"{key} is {describe(value)}, expected a list of image names")
    if isinstance(value, np.ndarray) and (value.ndim != 1 or value.dtype.kind not in "USO"):
        raise BenchError("malformed ground truth", path,
                         f"{key} is a {value.dtype} array of shape {value.shape}, "
                         "expected a list of image names")
    out = []
    for k, s in enumerate(value):
        if isinstance(s, bytes):
            s = s.decode("latin1")
        if not isinstance(s, str):
            raise BenchError("malformed ground truth", path,
                             f"{key}[{k}] is {describe(s)}, expected an image name")
        out.append(s.strip())
    return out


def _bbx(b) -> tuple[float, float, float, float] | None:
    if b is None:
        return None
    try:
        bb = np.asarray(b, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        return None
    if bb.size < 4 or not np.all(np.isfinite(bb[:4])):
        return None
    return tuple(float(v) for v in bb[:4])


def load_gnd(path: str | os.PathLike) -> Gnd:
    """Read ``gnd_<dataset>.pkl``: a dict with ``imlist``, ``qimlist`` and ``gnd``."""
    path = Path(path)
    obj = load_pickle(path, what="ground-truth pickle")
    try:
        return _gnd_from(obj, path)
    except BenchError:
        raise
    except HOSTILE_ERRORS as exc:  # last resort: nothing a pickle holds may escape
        raise BenchError("malformed ground truth", path,
                         f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _gnd_from(obj, path: Path) -> Gnd:
    if not isinstance(obj, dict) or not {"imlist", "qimlist", "gnd"} <= set(obj):
        keys = (sorted(describe(k) for k in obj)[:10] if isinstance(obj, dict)
                else describe(obj))
        raise BenchError("malformed ground truth", path,
                         f"expected a dict with imlist, qimlist and gnd; found {keys}")
    imlist = _names(obj["imlist"], path, "imlist")
    qimlist = _names(obj["qimlist"], path, "qimlist")
    gnd = obj["gnd"]
    if not isinstance(gnd, list | tuple):
        raise BenchError("malformed ground truth", path,
                         f"gnd is {describe(gnd)}, expected a list with one dict per query")
    if len(gnd) != len(qimlist):
        raise BenchError("malformed ground truth", path,
                         f"gnd has {len(gnd)} entries but qimlist has {len(qimlist)} queries")
    easy, hard, junk, bbx = [], [], [], []
    for q, g in enumerate(gnd):
        if not isinstance(g, dict):
            raise BenchError("malformed ground truth", path, f"gnd[{q}] is not a dict")
        easy.append(_index_array(g.get("easy"), path, q, "easy", len(imlist)))
        hard.append(_index_array(g.get("hard"), path, q, "hard", len(imlist)))
        junk.append(_index_array(g.get("junk"), path, q, "junk", len(imlist)))
        bbx.append(_bbx(g.get("bbx")))
    name = path.stem[4:] if path.stem.startswith("gnd_") else path.stem
    return Gnd(path=path, name=name, imlist=imlist, qimlist=qimlist,
               easy=easy, hard=hard, junk=junk, bbx=bbx)


def validate_ranks(ranks: np.ndarray, path, n_queries: int, n_db: int) -> np.ndarray:
    """Check shape and dtype of a ranks array; return it as ``(n_rows, n_queries)``.

    The transposed layout ``(n_queries, n_rows)`` is accepted only where the shape makes it
    unambiguous (exactly one axis equals the number of queries). Range and duplicate checks
    happen per column during evaluation (see :func:`bench.metrics.revisited.scan_ranks`).
    """
    if not isinstance(ranks, np.ndarray) or ranks.dtype == object:
        raise BenchError("wrong ranks file", path, "expected a numeric array, found objects")
    if ranks.ndim != 2:
        raise BenchError("wrong array shape", path,
                         f"ranks must be 2-D (n_db x n_queries = ? x {n_queries}); got shape {ranks.shape}")
    if not np.issubdtype(ranks.dtype, np.integer):
        if np.issubdtype(ranks.dtype, np.floating):
            raise BenchError("wrong ranks dtype", path,
                             f"ranks must hold integer database indices; got {ranks.dtype} "
                             "(did you save similarities instead of argsort indices?)")
        raise BenchError("wrong ranks dtype", path, f"ranks must be integers; got {ranks.dtype}")
    rows, cols = ranks.shape
    if cols == n_queries:
        out = ranks
    elif rows == n_queries:
        out = ranks.T
    else:
        raise BenchError("wrong array shape", path,
                         f"ranks shape {ranks.shape} does not match {n_queries} queries; expected "
                         f"(n_db, {n_queries}) with n_db up to {n_db} (+ distractors)")
    if out.shape[0] == 0:
        raise BenchError("wrong array shape", path, "ranks have no rows")
    return out


def load_ranks(path: str | os.PathLike, gnd: Gnd) -> np.ndarray:
    """Memory-map a ranks ``.npy`` of shape ``(n_db, n_queries)`` (see :func:`validate_ranks`)."""
    arr = load_npy(path, what="ranks file", mmap=True)
    return validate_ranks(arr, path, gnd.n_queries, gnd.n_db)
