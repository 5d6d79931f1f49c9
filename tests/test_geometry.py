"""The run-length rasteriser against scikit-image and against its own full masks.

bench.geometry fills polygons by scanline runs (even-odd rule on pixel centres) instead of
``skimage.draw.polygon``, which tests every pixel of the bounding box against every edge
and made 3,000 pairs take about 70 s. These tests pin the two facts that make the swap
safe: the interior equals scikit-image's pixel for pixel away from the boundary (the
boundary pixels are drawn separately, as the protocol's fillPoly does), and the batched
run-length IoU equals the IoU of the explicit masks exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import polygon as sk_polygon

from bench.geometry import (
    Canvas,
    _edge_pixels,
    _scanline_fill,
    batch_seg_ious,
    mask_iou,
    official_canvas,
    pair_masks,
    truncate,
)


@pytest.mark.parametrize("seed", range(4))
def test_interior_matches_skimage_away_from_the_boundary(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        n = int(rng.integers(3, 15))
        pts = (rng.random((n, 2)) * rng.integers(5, 200)).astype(int) - rng.integers(-20, 20, 2)
        shape = (int(rng.integers(5, 200)), int(rng.integers(5, 200)))
        ours = _scanline_fill(pts, shape)
        theirs = np.zeros(shape, bool)
        rr, cc = sk_polygon(pts[:, 1], pts[:, 0], shape=shape)
        theirs[rr, cc] = True
        edge = np.zeros(shape, bool)
        r, c = _edge_pixels(pts)
        ok = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
        edge[r[ok], c[ok]] = True
        assert not np.any((ours ^ theirs) & ~edge)


def test_batched_run_length_iou_equals_mask_iou():
    rng = np.random.default_rng(11)
    preds, gts, canvases, expected = [], [], [], []
    for k in range(600):
        pred = truncate(rng.random((int(rng.integers(1, 12)), 2)) * 120 - 10)
        gt = [truncate(rng.random((int(rng.integers(3, 10)), 2)) * 120 - 10)
              for _ in range(int(rng.integers(1, 3)))]
        if k % 7 == 0:  # overlapping shapes of one pair, a square and a triangle
            gt = [np.array([[5, 5], [50, 5], [50, 50], [5, 50]]),
                  np.array([[30, 30], [80, 30], [80, 80]])]
        if k % 11 == 0:  # a degenerate prediction: one point three times
            pred = np.array([[3, 4]] * 3)
        canvas = (official_canvas(pred, gt) if k % 2 else
                  Canvas(int(rng.integers(0, 130)), int(rng.integers(0, 130))))
        m = pair_masks(pred, gt, canvas)
        preds.append(pred)
        gts.append(gt)
        canvases.append(canvas)
        expected.append(mask_iou(m.pred, m.gt))
    got = batch_seg_ious(preds, gts, canvases)
    np.testing.assert_array_equal(got, np.array(expected))


def test_hand_computed_square():
    # a 4x4 square of pixels (0..3) against the same square moved by one pixel, both
    # filled with their boundary: intersection 3x3 = 9, union 16 + 16 - 9 = 23
    a = np.array([[0, 0], [3, 0], [3, 3], [0, 3]])
    got = batch_seg_ious([a], [[a + 1]], [Canvas(10, 10)])
    assert got[0] == pytest.approx(9 / 23, abs=1e-15)
