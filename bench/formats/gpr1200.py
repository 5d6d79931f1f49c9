"""GPR1200 images folder, order file, embeddings and neighbour indices (docs/PROTOCOLS.md §3)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import HOSTILE_ERRORS, BenchError, describe
from bench.formats.files import is_regular_file, parse_json, read_bytes, read_text
from bench.formats.safe_pickle import load_npy
from bench.protocol import IMAGE_EXTS

# at most 9 digits: a 5,000-digit category would overflow int() (Python's 4,300-digit limit)
_NAME = re.compile(r"^(\d{1,9})_(.+)$")


@dataclass(frozen=True, eq=False)
class GprImages:
    """Image names in evaluation order and their integer categories."""

    folder: Path
    names: list[str]  # file order: by integer category, then file name
    categories: np.ndarray
    category_text: dict[int, str]
    rows: np.ndarray | None = None  # with an order file: the input row of each image

    def to_file_order(self, arr: np.ndarray) -> np.ndarray:
        """Rows of *arr* (given in the order file's order) rearranged into file order."""
        return arr if self.rows is None else arr[self.rows]

    @property
    def n(self) -> int:
        return len(self.names)


def _category(name: str, where) -> int:
    m = _NAME.match(Path(name).name)
    if not m:
        raise BenchError("badly named image", where,
                         f"{describe(name, 120)} is not '<category>_<name>.jpg' (category an "
                         "integer of at most 9 digits)")
    return int(m.group(1))


def load_category_text(folder: Path) -> dict[int, str]:
    """``GPR1200_categoryNumber_to_text.json`` beside or above the images, when present."""
    for cand in (folder / "GPR1200_categoryNumber_to_text.json",
                 folder.parent / "GPR1200_categoryNumber_to_text.json"):
        if is_regular_file(cand):
            try:
                raw = parse_json(read_bytes(cand, "category names", "text"), cand,
                                 "category names")
                return {int(k): v for k, v in raw.items()
                        if isinstance(k, str) and k.isascii() and k.isdigit() and len(k) <= 9
                        and isinstance(v, str)}
            except (BenchError, AttributeError, *HOSTILE_ERRORS):
                return {}  # optional: the names are decoration only
    return {}


def load_gpr_images(folder: str | os.PathLike, order_file: str | os.PathLike | None = None
                    ) -> GprImages:
    """List ``{category}_{name}.jpg`` files, ordered by integer category then file name.

    With *order_file* (one name per line: the order in which embeddings or neighbour lists
    were saved), ``rows`` maps each image in file order to its input row; every listed
    name must match the ``{category}_{name}`` pattern (the files themselves need not
    exist, so metrics work without the images).
    """
    folder = Path(folder)
    if order_file is not None:
        lines = read_text(order_file, "order file").splitlines()
        names = [ln.strip() for ln in lines if ln.strip()]
        if not names:
            raise BenchError("empty order file", order_file, "no image names listed")
        cats_in = [_category(n, order_file) for n in names]
        if len(set(names)) != len(names):
            raise BenchError("duplicate name", order_file, "an image is listed twice")
        keyed = sorted((c, n, r) for r, (c, n) in enumerate(zip(cats_in, names, strict=True)))
        return GprImages(folder=folder, names=[n for _, n, _ in keyed],
                         categories=np.asarray([c for c, _, _ in keyed], dtype=np.int64),
                         category_text=load_category_text(folder),
                         rows=np.asarray([r for _, _, r in keyed], dtype=np.int64))
    if not folder.is_dir():
        raise BenchError("missing images folder", folder,
                         "no such folder; pass the GPR1200 'images' folder")
    try:  # regular files only (following links): a folder named 0_a.jpg is no image
        with os.scandir(folder) as it:
            files = [e.name for e in it
                     if Path(e.name).suffix.lower() in IMAGE_EXTS and _is_file(e)]
    except OSError as exc:
        raise BenchError("unreadable images folder", folder, exc.strerror or str(exc)) from None
    if not files:
        raise BenchError("empty images folder", folder, "no .jpg/.png images found")
    keyed = sorted((_category(n, folder), n) for n in files)
    return GprImages(folder=folder, names=[n for _, n in keyed],
                     categories=np.asarray([c for c, _ in keyed], dtype=np.int64),
                     category_text=load_category_text(folder))


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _rows_per_image(path: str | os.PathLike, n: int, what: str, cols: str, rows: str
                    ) -> np.ndarray:
    """A numeric 2-D ``.npy`` with one row per image (shared checks of the two inputs)."""
    arr = load_npy(path, what=f"{what} file", mmap=True)
    if not isinstance(arr, np.ndarray) or arr.dtype == object:
        raise BenchError(f"wrong {what} file", path, f"expected a numeric (n, {cols}) array")
    if arr.ndim != 2:
        raise BenchError("wrong array shape", path, f"{what} must be (n, {cols}); got {arr.shape}")
    if arr.shape[0] != n:
        raise BenchError("count mismatch", path,
                         f"{arr.shape[0]} {rows} but {n} images; one row per image expected "
                         "(pass --order if they are saved in another order)")
    return arr


def load_embeddings(path: str | os.PathLike, n: int) -> np.ndarray:
    """An ``(n, d)`` float array, finite, one row per image in evaluation order."""
    arr = _rows_per_image(path, n, "embeddings", "d", "embeddings")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise BenchError("wrong embeddings dtype", path, f"expected floats, got {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise BenchError("non-finite values", path, f"row {bad} holds NaN or inf")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def load_indices(path: str | os.PathLike, n: int) -> np.ndarray:
    """An ``(n, k)`` int array of neighbour indices in ``0..n-1``, best first."""
    arr = _rows_per_image(path, n, "indices", "k", "rows of neighbours")
    if not np.issubdtype(arr.dtype, np.integer):
        raise BenchError("wrong indices dtype", path,
                         f"expected integer indices, got {arr.dtype} (distances saved instead?)")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = int(arr.min() if arr.min() < 0 else arr.max())
        raise BenchError("index out of range", path, f"neighbour index {bad} outside 0..{n - 1}")
    return arr.astype(np.int64, copy=False)
