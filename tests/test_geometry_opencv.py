"""bench.geometry against OpenCV's own ``cv2.fillPoly``: every mask and every IoU equal.

The released PROxford code fills each polygon with ``cv2.fillPoly(mask, [pts], color)``
(default ``lineType=LINE_8``, ``shift=0``) on a zero S x S canvas and takes the ground
truth as the union of its shapes. The oracle below does exactly that on the full canvas
(never a window), with the OpenCV installed from requirements-dev.txt. bench.geometry
never calls OpenCV: it re-implements the fill in numpy, so these are two independent
implementations compared with ``==``, not a tolerance.

Inputs: random (self-intersecting) and star polygons, degenerate ones (1 or 2 points,
repeated points, collinear points, zero area), several shapes per ground truth,
negative coordinates, and huge coordinates (up to +-2**20) on small canvases, where
OpenCV's clipping rule for lines leaving the canvas decides the fill.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.geometry import (
    Canvas,
    batch_seg_ious,
    official_canvas,
    pair_masks,
    polygon_mask,
)


def cv_fill(poly: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2.fillPoly of one polygon on a zero canvas, as a boolean mask."""
    mask = np.zeros((max(height, 0), max(width, 0)), dtype=np.uint8)
    if width > 0 and height > 0:
        cv2.fillPoly(mask, [np.asarray(poly, dtype=np.int32).reshape(-1, 2)], 1)
    return mask.astype(bool)


def cv_masks(pred, gts, canvas: Canvas) -> tuple[np.ndarray, np.ndarray]:
    a = cv_fill(pred, canvas.width, canvas.height)
    b = np.zeros_like(a)
    for g in gts:
        b |= cv_fill(g, canvas.width, canvas.height)
    return a, b


def cv_iou(pred, gts, canvas: Canvas) -> float:
    a, b = cv_masks(pred, gts, canvas)
    inter = int(np.count_nonzero(a & b))
    union = int(np.count_nonzero(a | b))
    return inter / union if union else 0.0


# ------------------------------------------------------------------------ generators


def random_poly(rng, lo, hi, n_min=3, n_max=15):
    """Vertices in random order: self-intersecting in general."""
    return rng.integers(lo, hi, size=(int(rng.integers(n_min, n_max + 1)), 2))


def star_poly(rng, cx, cy, r):
    n = int(rng.integers(3, 30))
    ang = np.sort(rng.random(n)) * 2 * np.pi
    rad = r * (0.3 + 0.7 * rng.random(n))
    return np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)].astype(np.int64)


def degenerate_poly(rng, lo, hi):
    kind = int(rng.integers(0, 6))
    p = rng.integers(lo, hi, size=2)
    if kind == 0:  # one point
        return p[None, :]
    if kind == 1:  # two points
        return np.array([p, rng.integers(lo, hi, size=2)])
    if kind == 2:  # collinear points along a random direction, in random order
        d = rng.integers(-9, 10, size=2)
        t = rng.integers(-5, 6, size=int(rng.integers(3, 8)))
        return p + t[:, None] * d
    if kind == 3:  # zero area: all on one row or one column
        q = random_poly(rng, lo, hi, 3, 8)
        q[:, int(rng.integers(0, 2))] = p[0]
        return q
    if kind == 4:  # repeated vertices
        q = random_poly(rng, lo, hi, 3, 8)
        return np.repeat(q, rng.integers(1, 4, size=len(q)), axis=0)
    return np.repeat(p[None, :], int(rng.integers(2, 5)), axis=0)  # one point, repeated


def polygon(rng, category):
    if category == "random":
        return random_poly(rng, -10, 90)
    if category == "star":
        return star_poly(rng, rng.integers(0, 80), rng.integers(0, 80), rng.integers(2, 60))
    if category == "degenerate":
        return degenerate_poly(rng, -5, 70)
    if category == "negative":
        return random_poly(rng, -120, 30)
    if category == "huge":  # far outside any canvas used here, in every direction
        return random_poly(rng, -(2**20), 2**20 + 1, 3, 8)
    if category == "mixed_huge":  # some vertices on the canvas, some far away
        q = random_poly(rng, -10, 90, 3, 10)
        far = rng.random(len(q)) < 0.4
        q[far] = rng.integers(-(2**20), 2**20 + 1, size=(int(far.sum()), 2))
        return q
    raise ValueError(category)


CATEGORIES = ["random", "star", "degenerate", "negative", "huge", "mixed_huge"]


def canvas_for(rng, pred, gts, kind):
    if kind == "official":
        return official_canvas(pred, gts)
    return Canvas(int(rng.integers(1, 130)), int(rng.integers(1, 130)))


# ------------------------------------------------------------------------------ masks


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_mask_equals_fillpoly(category):
    rng = np.random.default_rng(CATEGORIES.index(category))
    for _ in range(400):
        poly = polygon(rng, category)
        w, h = int(rng.integers(1, 140)), int(rng.integers(1, 140))
        ours = polygon_mask(poly, (0, 0), (h, w), Canvas(w, h))
        assert np.array_equal(ours, cv_fill(poly, w, h)), (poly.tolist(), w, h)


@settings(max_examples=400, deadline=None)
@given(
    pts=st.lists(st.tuples(st.integers(-12, 40), st.integers(-12, 40)), min_size=1, max_size=9),
    w=st.integers(1, 32),
    h=st.integers(1, 32),
)
def test_mask_equals_fillpoly_hypothesis(pts, w, h):
    poly = np.array(pts, dtype=np.int64)
    assert np.array_equal(polygon_mask(poly, (0, 0), (h, w), Canvas(w, h)), cv_fill(poly, w, h))


@settings(max_examples=150, deadline=None)
@given(
    pts=st.lists(st.tuples(st.integers(-(2**20), 2**20), st.integers(-(2**20), 2**20)),
                 min_size=2, max_size=6),
    w=st.integers(1, 64),
    h=st.integers(1, 64),
)
def test_huge_coordinates_hypothesis(pts, w, h):
    poly = np.array(pts, dtype=np.int64)
    assert np.array_equal(polygon_mask(poly, (0, 0), (h, w), Canvas(w, h)), cv_fill(poly, w, h))


def test_large_canvases():
    """Real image sizes and long edges (fixed-point slopes accumulate over many rows)."""
    rng = np.random.default_rng(99)
    for _ in range(12):
        w, h = int(rng.integers(600, 2100)), int(rng.integers(600, 2100))
        for poly in (star_poly(rng, rng.integers(0, w), rng.integers(0, h), rng.integers(50, 900)),
                     random_poly(rng, -300, 2400, 3, 12),
                     random_poly(rng, -(2**20), 2**20, 3, 5)):
            ours = polygon_mask(poly, (0, 0), (h, w), Canvas(w, h))
            assert np.array_equal(ours, cv_fill(poly, w, h)), (poly.tolist(), w, h)


def test_no_canvas_means_no_clipping():
    """Without a canvas, polygon_mask draws as OpenCV on an image holding the polygon."""
    rng = np.random.default_rng(3)
    for _ in range(100):
        poly = polygon(rng, ["random", "negative", "degenerate"][_ % 3])
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        ref = cv_fill(poly - lo, int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1)
        ours = polygon_mask(poly, (int(lo[0]), int(lo[1])), ref.shape, None)
        assert np.array_equal(ours, ref), poly.tolist()


# ------------------------------------------------------------------------------- IoUs


def random_pairs(rng, n):
    pairs = []
    for k in range(n):
        category = CATEGORIES[k % len(CATEGORIES)]
        pred = polygon(rng, category)
        gts = [polygon(rng, CATEGORIES[int(rng.integers(0, 4))])
               for _ in range(int(rng.integers(1, 4)))]
        if k % 5 == 0:  # overlapping shapes, one inside another
            gts = [star_poly(rng, 40, 40, 35), star_poly(rng, 45, 40, 12)]
        kind = "official" if k % 2 else "strict"
        if kind == "official" and (max(int(pred.max()), max(int(g.max()) for g in gts)) > 400):
            kind = "strict"  # keep the oracle's full S x S canvas small
        pairs.append((pred, gts, canvas_for(rng, pred, gts, kind)))
    return pairs


def test_every_iou_equals_fillpoly():
    rng = np.random.default_rng(2024)
    pairs = random_pairs(rng, 700)
    got = batch_seg_ious([p for p, _, _ in pairs], [g for _, g, _ in pairs],
                         [c for _, _, c in pairs])
    expected = np.array([cv_iou(p, g, c) for p, g, c in pairs])
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, [(pairs[i][0].tolist(), got[i], expected[i]) for i in bad[:3]]


def test_pair_masks_are_the_full_canvas_masks_cropped():
    """pair_masks works in the pair's window: its masks equal OpenCV's full-canvas masks
    inside the window, and OpenCV draws nothing outside it."""
    rng = np.random.default_rng(8)
    for pred, gts, canvas in random_pairs(rng, 300):
        m = pair_masks(pred, gts, canvas)
        a, b = cv_masks(pred, gts, canvas)
        x0, y0 = m.origin
        rows, cols = m.pred.shape
        assert np.array_equal(m.pred, a[y0:y0 + rows, x0:x0 + cols])
        assert np.array_equal(m.gt, b[y0:y0 + rows, x0:x0 + cols])
        assert m.pred.sum() == a.sum() and m.gt.sum() == b.sum()


def test_realistic_pairs_official_canvas():
    """Box predictions against 6-30 vertex objects on 1024 px images (the benchmark's
    shape), official square canvas."""
    rng = np.random.default_rng(4)
    preds, gts = [], []
    for _ in range(40):
        c = rng.random(2) * 600 + 200
        gt = star_poly(rng, c[0], c[1], rng.integers(30, 280))
        lo, hi = gt.min(axis=0), gt.max(axis=0)
        box = np.array([lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]])
        preds.append(box + rng.integers(-25, 26, size=(4, 2)))
        gts.append([gt])
    canvases = [official_canvas(p, g) for p, g in zip(preds, gts, strict=True)]
    got = batch_seg_ious(preds, gts, canvases)
    expected = [cv_iou(p, g, c) for p, g, c in zip(preds, gts, canvases, strict=True)]
    assert got.tolist() == expected
