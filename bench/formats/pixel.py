"""PROxford / PRParis pixel ground truth and a method's pixel result (docs/PROTOCOLS.md §2).

- ``<short>_pair2labelpath.npy``: ``{"q_i": "relative/label.json"}`` saved with ``np.save``.
- labelme JSON: ``shapes[*].points = [[x, y], ...]``; the pair's region is their union.
- ``matching_result/p<short>.npy (e.g. proxford.npy)``: ``{"qimlist_{q}_imlist_{i}": (n, 2) [x, y] points}``;
  an empty list or a missing key means no prediction.

Whole-file problems raise :class:`BenchError`; one malformed pair becomes a
:class:`BenchWarning` and counts as no prediction.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import HOSTILE_ERRORS, BenchError, BenchWarning, describe
from bench.formats.files import join_under, parse_json, read_bytes
from bench.formats.safe_pickle import load_npy

Pair = tuple[int, int]

# at most 9 digits: a 5,000-digit index would overflow int() (Python's 4,300-digit limit)
_PAIR_KEY = re.compile(r"^\s*(\d{1,9})_(\d{1,9})\s*$")
_MATCH_KEY = re.compile(r"^qimlist_(\d{1,9})_imlist_(\d{1,9})$")


@dataclass(frozen=True, eq=False)
class Labelme:
    """The ground-truth shapes of one pair (float ``[x, y]`` arrays) and the image size.

    ``problems`` lists what was ignored (an unusable ``imageWidth``, say); the pair is
    still read and the caller reports each problem as a warning."""

    shapes: list[np.ndarray]
    width: int | None
    height: int | None
    problems: tuple[str, ...] = ()


def _dict_file(path: str | os.PathLike, what: str) -> dict:
    obj = load_npy(path, what=what, mmap=True)  # a numeric array is refused, never read
    if not isinstance(obj, dict):
        raise BenchError(f"wrong {what}", path,
                         f"expected a dict saved with np.save, found {type(obj).__name__}")
    return obj


def load_pair_labels(path: str | os.PathLike, labels_root: str | os.PathLike | None = None,
                     *, n_queries: int | None = None, n_db: int | None = None
                     ) -> tuple[dict[Pair, Path], list[BenchWarning]]:
    """Read ``*_pair2labelpath.npy`` -> ``{(q, i): label path}``.

    Label paths are relative to *labels_root* (default: the folder holding the file) and
    must stay inside it: an absolute path, a ``..`` part or a symbolic link leading out
    is a warning and the pair has no label. A key that is not ``"q_i"`` is a warning; a
    pair outside the dataset is an error.
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
        m = _PAIR_KEY.match(key) if isinstance(key, str) else None
        if not m or not isinstance(rel, str | bytes):
            warnings.append(BenchWarning(describe(key), path,
                                         "key is not 'q_i' or value is not a path; skipped"))
            continue
        q, i = int(m.group(1)), int(m.group(2))
        if (n_queries is not None and q >= n_queries) or (n_db is not None and i >= n_db):
            raise BenchError("pair outside the dataset", path,
                             f"pair {key} refers to query {q} / image {i} but the ground truth has "
                             f"{n_queries} queries and {n_db} images; is this another dataset's file?")
        p = join_under(root, rel)
        if p is None:
            warnings.append(BenchWarning(
                f"{q}_{i}", path, f"label path {describe(os.fsdecode(rel))} leads outside the "
                f"labels folder {root} (absolute, '..' or a link out); the pair has no label"))
            continue
        out[(q, i)] = p
    return out, warnings


MAX_COORD = 2**20  # pixels; beyond this a coordinate is taken as garbage, not as an image


def _points(value, what: str) -> np.ndarray:
    """A finite float (n, 2) array within +-MAX_COORD, or raise ValueError with a reason."""
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iuf":
            raise TypeError
        arr = raw.astype(np.float64)
    except (TypeError, ValueError, OverflowError, RecursionError, MemoryError):
        raise ValueError(f"{what} are not numbers") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} have shape {arr.shape}, expected (n, 2) [x, y]")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} hold non-finite coordinates")
    if arr.size and np.abs(arr).max() > MAX_COORD:
        raise ValueError(f"{what} hold a coordinate of {np.abs(arr).max():.3g} px, beyond "
                         f"+-{MAX_COORD} (not an image coordinate)")
    return arr


def _dim(obj: dict, key: str, problems: list[str]) -> int | None:
    """``imageWidth`` / ``imageHeight``: a positive finite number up to MAX_COORD, else
    ``None`` (absent) with a problem noted when the field is there but unusable."""
    v = obj.get(key)
    if v is None:
        return None
    if (isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(v) and 0 < v <= MAX_COORD):
        return int(v)
    problems.append(f"{key} {describe(v)} is not a pixel size in 1..{MAX_COORD}; "
                    "ignored (the size is taken as unknown)")
    return None


def load_labelme(path: str | os.PathLike) -> Labelme:
    """Read one labelme JSON (a regular file below the JSON size cap); raise ValueError
    with a reason on any problem."""
    try:
        obj = parse_json(read_bytes(path, "label file", "json"), path, "label file")
    except BenchError as exc:
        raise ValueError(exc.why if "missing" not in exc.what else "label file not found"
                         ) from None
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
    problems: list[str] = []
    width, height = _dim(obj, "imageWidth", problems), _dim(obj, "imageHeight", problems)
    return Labelme(shapes=shapes, width=width, height=height, problems=tuple(problems))


def load_labels(pair_paths: dict[Pair, Path]) -> tuple[dict[Pair, Labelme], list[BenchWarning]]:
    """Read every pair's labelme file; a bad file is a warning and the pair has no label."""
    out: dict[Pair, Labelme] = {}
    warnings: list[BenchWarning] = []
    for (q, i), p in pair_paths.items():
        try:
            lab = load_labelme(p)
        except ValueError as exc:
            warnings.append(BenchWarning(f"{q}_{i}", p, str(exc)))
            continue
        except HOSTILE_ERRORS as exc:  # last resort: a label file never stops the run
            warnings.append(BenchWarning(f"{q}_{i}", p, f"unusable label file "
                                         f"({type(exc).__name__}: {str(exc)[:120]})"))
            continue
        out[(q, i)] = lab
        warnings += [BenchWarning(f"{q}_{i}", p, why) for why in lab.problems]
    return out, warnings


def load_matches(path: str | os.PathLike, *, n_queries: int | None = None, n_db: int | None = None
                 ) -> tuple[dict[Pair, np.ndarray | None], list[BenchWarning]]:
    """Read a method's ``matching_result`` -> ``{(q, i): (n, 2) float [x, y] or None}``.

    ``None`` means no prediction (an empty list). A malformed value is a warning and
    ``None``; a query outside the dataset is an error (wrong dataset's file); pairs with
    images beyond the ground truth's (R1M distractors) are left out with one warning.
    """
    raw = _dict_file(path, "matching result")
    out: dict[Pair, np.ndarray | None] = {}
    warnings: list[BenchWarning] = []
    bad_keys = []
    beyond: list[str] = []
    for key, val in raw.items():
        m = _MATCH_KEY.match(key) if isinstance(key, str) else None
        if not m:
            bad_keys.append(describe(key))
            continue
        q, i = int(m.group(1)), int(m.group(2))
        if n_queries is not None and q >= n_queries:
            raise BenchError("pair outside the dataset", path,
                             f"key {key} refers to query {q} but the ground truth has "
                             f"{n_queries} queries; is this another dataset's result?")
        if n_db is not None and i >= n_db:
            # an R1M result (pR1M<dataset>.npy) may hold pairs with distractors: they have
            # no ground truth and no metric reads them
            beyond.append(key)
            continue
        if val is None or (isinstance(val, list | tuple) and len(val) == 0) or (
                isinstance(val, np.ndarray) and val.ndim > 0 and len(val) == 0):
            out[(q, i)] = None
            continue
        try:
            out[(q, i)] = _points(val, "predicted points")
        except (ValueError, *HOSTILE_ERRORS) as exc:
            warnings.append(BenchWarning(f"{q}_{i}", path, f"{exc}; counted as no prediction"))
            out[(q, i)] = None
    if beyond:
        warnings.append(BenchWarning("*", path, f"{len(beyond)} pairs name database images beyond "
                                     f"the {n_db} of the ground truth (distractors, e.g. "
                                     f"{beyond[0]}): not scored, they have no ground truth"))
    if bad_keys:
        if not out and not beyond:
            raise BenchError("wrong matching result", path,
                             "no key of the form 'qimlist_<q>_imlist_<i>' (first keys: "
                             f"{', '.join(bad_keys[:3])})")
        warnings.append(BenchWarning("*", path, f"{len(bad_keys)} keys not of the form "
                                     f"'qimlist_<q>_imlist_<i>' ignored (e.g. {bad_keys[0]})"))
    return out, warnings
