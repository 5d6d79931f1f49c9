"""PROxford / PRParis pixel ground truth and a method's pixel result (PROTOCOLS §2).

- ``<short>_pair2labelpath.npy``: ``{"q_i": "relative/label.json"}`` saved with ``np.save``.
- labelme JSON: ``shapes[*].points = [[x, y], ...]``; the pair's region is their union.
- ``matching_result/p<dataset>.npy``: ``{"qimlist_{q}_imlist_{i}": (n, 2) [x, y] points}``;
  an empty list or a missing key means no prediction.

Whole-file problems raise :class:`BenchError`; one malformed pair becomes a
:class:`BenchWarning` and counts as no prediction.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError, BenchWarning
from bench.formats.safe_pickle import load_npy

Pair = tuple[int, int]

_PAIR_KEY = re.compile(r"^\s*(\d+)_(\d+)\s*$")
_MATCH_KEY = re.compile(r"^qimlist_(\d+)_imlist_(\d+)$")


@dataclass(frozen=True, eq=False)
class Labelme:
    """The ground-truth shapes of one pair (float ``[x, y]`` arrays) and the image size."""

    shapes: list[np.ndarray]
    width: int | None
    height: int | None


def _dict_file(path: str | os.PathLike, what: str) -> dict:
    obj = load_npy(path, what=what)
    if not isinstance(obj, dict):
        raise BenchError(f"wrong {what}", path,
                         f"expected a dict saved with np.save, found {type(obj).__name__}")
    return obj


def load_pair_labels(path: str | os.PathLike, labels_root: str | os.PathLike | None = None,
                     *, n_queries: int | None = None, n_db: int | None = None
                     ) -> tuple[dict[Pair, Path], list[BenchWarning]]:
    """Read ``*_pair2labelpath.npy`` -> ``{(q, i): absolute label path}``.

    Label paths are relative to *labels_root* (default: the folder holding the file).
    A key that is not ``"q_i"`` is a warning; a pair outside the dataset is an error.
    """
    path = Path(path)
    root = Path(labels_root) if labels_root is not None else path.parent
    if root.is_file():
        raise BenchError("wrong labels folder", root,
                         "this is a file, not a folder; pass the folder the label paths are "
                         "relative to (pixel_retrieval_benchmarks/)")
    if not root.is_dir():
        raise BenchError("missing labels folder", root, "no such folder; pass --labels-root")
    raw = _dict_file(path, "pair-labels file")
    out: dict[Pair, Path] = {}
    warnings: list[BenchWarning] = []
    for key, rel in raw.items():
        m = _PAIR_KEY.match(str(key))
        if not m or not isinstance(rel, str | bytes | os.PathLike):
            warnings.append(BenchWarning(str(key), path, "key is not 'q_i' or value is not a path; skipped"))
            continue
        q, i = int(m.group(1)), int(m.group(2))
        if (n_queries is not None and q >= n_queries) or (n_db is not None and i >= n_db):
            raise BenchError("pair outside the dataset", path,
                             f"pair {key} refers to query {q} / image {i} but the ground truth has "
                             f"{n_queries} queries and {n_db} images; is this another dataset's file?")
        rel = os.fsdecode(rel)
        p = Path(rel)
        out[(q, i)] = p if p.is_absolute() else root / p
    return out, warnings


MAX_COORD = 2**20  # pixels; beyond this a coordinate is taken as garbage, not as an image


def _points(value, what: str) -> np.ndarray:
    """A finite float (n, 2) array within +-MAX_COORD, or raise ValueError with a reason."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} are not numbers") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} have shape {arr.shape}, expected (n, 2) [x, y]")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} hold non-finite coordinates")
    if arr.size and np.abs(arr).max() > MAX_COORD:
        raise ValueError(f"{what} hold a coordinate of {np.abs(arr).max():.3g} px, beyond "
                         f"+-{MAX_COORD} (not an image coordinate)")
    return arr


def load_labelme(path: str | os.PathLike) -> Labelme:
    """Read one labelme JSON; raise ValueError with a reason on any problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except FileNotFoundError:
        raise ValueError("label file not found") from None
    except OSError as exc:
        raise ValueError(f"label file unreadable ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    shapes_raw = obj.get("shapes") if isinstance(obj, dict) else None
    if not isinstance(shapes_raw, list) or not shapes_raw:
        raise ValueError("no 'shapes' list (not a labelme file?)")
    shapes = []
    for k, s in enumerate(shapes_raw):
        pts = _points(s.get("points") if isinstance(s, dict) else None, f"shape {k} points")
        if s.get("shape_type") == "rectangle" and len(pts) == 2:
            (xa, ya), (xb, yb) = pts
            pts = np.array([[xa, ya], [xb, ya], [xb, yb], [xa, yb]])
        if len(pts) < 3:
            raise ValueError(f"shape {k} has {len(pts)} points; a polygon needs at least 3")
        shapes.append(pts)

    def _dim(key):
        v = obj.get(key)
        return int(v) if isinstance(v, int | float) and v > 0 else None

    return Labelme(shapes=shapes, width=_dim("imageWidth"), height=_dim("imageHeight"))


def load_labels(pair_paths: dict[Pair, Path]) -> tuple[dict[Pair, Labelme], list[BenchWarning]]:
    """Read every pair's labelme file; a bad file is a warning and the pair has no label."""
    out: dict[Pair, Labelme] = {}
    warnings: list[BenchWarning] = []
    for (q, i), p in pair_paths.items():
        try:
            out[(q, i)] = load_labelme(p)
        except ValueError as exc:
            warnings.append(BenchWarning(f"{q}_{i}", p, str(exc)))
    return out, warnings


def load_matches(path: str | os.PathLike, *, n_queries: int | None = None, n_db: int | None = None
                 ) -> tuple[dict[Pair, np.ndarray | None], list[BenchWarning]]:
    """Read a method's ``matching_result`` -> ``{(q, i): (n, 2) float [x, y] or None}``.

    ``None`` means no prediction (an empty list). A malformed value is a warning and
    ``None``; keys outside the dataset are an error (wrong dataset's file).
    """
    raw = _dict_file(path, "matching result")
    out: dict[Pair, np.ndarray | None] = {}
    warnings: list[BenchWarning] = []
    bad_keys = []
    for key, val in raw.items():
        m = _MATCH_KEY.match(str(key))
        if not m:
            bad_keys.append(str(key))
            continue
        q, i = int(m.group(1)), int(m.group(2))
        if (n_queries is not None and q >= n_queries) or (n_db is not None and i >= n_db):
            raise BenchError("pair outside the dataset", path,
                             f"key {key} refers to query {q} / image {i} but the ground truth has "
                             f"{n_queries} queries and {n_db} images; is this another dataset's result?")
        if val is None or (hasattr(val, "__len__") and len(val) == 0):
            out[(q, i)] = None
            continue
        try:
            out[(q, i)] = _points(val, "predicted points")
        except ValueError as exc:
            warnings.append(BenchWarning(f"{q}_{i}", path, f"{exc}; counted as no prediction"))
            out[(q, i)] = None
    if bad_keys:
        if not out:
            raise BenchError("wrong matching result", path,
                             f"no key of the form 'qimlist_<q>_imlist_<i>' (first keys: {bad_keys[:3]})")
        warnings.append(BenchWarning("*", path, f"{len(bad_keys)} keys not of the form "
                                     f"'qimlist_<q>_imlist_<i>' ignored (e.g. {bad_keys[0]!r})"))
    return out, warnings
