"""Polygons -> masks inside a bounding region, boxes, IoU (PROTOCOLS §2, 'IoU of one pair').

Nothing here allocates the official S x S canvas: boxes are intersected analytically and
polygons are rasterised only inside the union of the two shapes' bounding boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.draw import polygon as _fill_polygon


@dataclass(frozen=True)
class Canvas:
    """Pixels (row y, column x) with ``0 <= x < width`` and ``0 <= y < height``."""

    width: int
    height: int


def truncate(points: np.ndarray) -> np.ndarray:
    """Cast coordinates to int by truncation toward zero (``astype(int)``, §2 step 1)."""
    return np.asarray(points, dtype=np.float64).astype(np.int64)


def official_canvas(pred: np.ndarray, gt_shapes: list[np.ndarray]) -> Canvas:
    """The released code's square canvas: side S = the largest x or y of all points (§2 step 2).

    Points must already be truncated to int.
    """
    s = int(max(int(pred.max()), max(int(g.max()) for g in gt_shapes)))
    s = max(s, 0)
    return Canvas(s, s)


def box_of(points: np.ndarray) -> tuple[int, int, int, int]:
    """Inclusive ``(xmin, ymin, xmax, ymax)`` of int points ``[[x, y], ...]``."""
    return (int(points[:, 0].min()), int(points[:, 1].min()),
            int(points[:, 0].max()), int(points[:, 1].max()))


def clip_box(box: tuple[int, int, int, int], canvas: Canvas) -> tuple[int, int, int, int] | None:
    """Clip an inclusive box to the canvas; ``None`` when nothing is left."""
    x0, y0 = max(box[0], 0), max(box[1], 0)
    x1, y1 = min(box[2], canvas.width - 1), min(box[3], canvas.height - 1)
    if x0 > x1 or y0 > y1:
        return None
    return x0, y0, x1, y1


def _area(b: tuple[int, int, int, int] | None) -> int:
    return 0 if b is None else (b[2] - b[0] + 1) * (b[3] - b[1] + 1)


def box_iou(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None) -> float:
    """IoU of two inclusive pixel boxes (``None`` = empty); 0 when the union is empty."""
    inter = None
    if a is not None and b is not None:
        inter = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
        if inter[0] > inter[2] or inter[1] > inter[3]:
            inter = None
    ia = _area(inter)
    union = _area(a) + _area(b) - ia
    return ia / union if union > 0 else 0.0


def _edge_pixels(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels on the straight segments between consecutive vertices, closing edge included.

    Vectorised DDA: each edge of n = max(|dx|, |dy|) steps yields n + 1 pixels at
    ``round(v0 + i * d / n)``, the same pixels as Bresenham's line up to ties at .5.
    Returns (rows, cols).
    """
    a = pts
    b = np.roll(pts, -1, axis=0)
    d = b - a
    n = np.maximum(np.abs(d).max(axis=1), 0)
    counts = n + 1
    edge = np.repeat(np.arange(len(a)), counts)
    start = np.cumsum(counts) - counts
    i = np.arange(int(counts.sum())) - np.repeat(start, counts)
    nn = np.maximum(n, 1)[edge].astype(np.float64)
    xs = a[edge, 0] + np.floor(i * d[edge, 0] / nn + 0.5).astype(np.int64)
    ys = a[edge, 1] + np.floor(i * d[edge, 1] / nn + 0.5).astype(np.int64)
    return ys, xs


def polygon_mask(pts: np.ndarray, origin: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Fill an int polygon ``[[x, y], ...]`` *with its boundary* inside a window.

    The window starts at ``origin = (x0, y0)`` and has ``shape = (rows, cols)``; pixels
    outside it are dropped. Interior: scikit-image's even-odd fill of pixel centres;
    boundary: :func:`_edge_pixels` (OpenCV ``fillPoly`` semantics, PROTOCOLS §2 step 4).
    """
    mask = np.zeros(shape, dtype=bool)
    if shape[0] <= 0 or shape[1] <= 0:
        return mask
    x0, y0 = origin
    local = pts - np.array([x0, y0])
    if len(local) >= 3:
        rr, cc = _fill_polygon(local[:, 1], local[:, 0], shape=shape)
        mask[rr, cc] = True
    rr, cc = _edge_pixels(local)
    keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
    mask[rr[keep], cc[keep]] = True
    return mask


@dataclass(frozen=True, eq=False)
class PairMasks:
    """Predicted and ground-truth masks of one pair inside their common window."""

    origin: tuple[int, int]  # (x0, y0) of the window in image pixels
    pred: np.ndarray
    gt: np.ndarray
    canvas: Canvas


def pair_masks(pred: np.ndarray, gt_shapes: list[np.ndarray], canvas: Canvas) -> PairMasks:
    """Rasterise the int prediction and the union of int ground-truth shapes (§2 step 4)."""
    boxes = [box_of(pred)] + [box_of(g) for g in gt_shapes]
    window = clip_box((min(b[0] for b in boxes), min(b[1] for b in boxes),
                       max(b[2] for b in boxes), max(b[3] for b in boxes)), canvas)
    if window is None:
        empty = np.zeros((0, 0), dtype=bool)
        return PairMasks((0, 0), empty, empty, canvas)
    x0, y0, x1, y1 = window
    shape = (y1 - y0 + 1, x1 - x0 + 1)
    pm = polygon_mask(pred, (x0, y0), shape)
    gm = np.zeros(shape, dtype=bool)
    for g in gt_shapes:
        gm |= polygon_mask(g, (x0, y0), shape)
    return PairMasks((x0, y0), pm, gm, canvas)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """|a and b| / |a or b|, 0 when the union is empty."""
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a) + np.count_nonzero(b) - inter
    return float(inter / union) if union > 0 else 0.0
