"""bench.geometry on hand-computed cases, its own explicit masks, and its limits.

The comparison with OpenCV itself (random, degenerate, self-intersecting, multi-shape,
negative and huge polygons, every mask and every IoU equal) is in
tests/test_geometry_opencv.py. Here: values worked out by hand from OpenCV's rules
(see the module docstring of bench/geometry.py), the batched run-length IoU against the
explicit masks, and the refusal of canvases and pairs above the documented caps.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import bench.geometry as geometry
from bench.geometry import (
    MAX_CANVAS_SIDE,
    MAX_PAIR_WORK,
    Canvas,
    CanvasTooLarge,
    batch_seg_ious,
    mask_iou,
    official_canvas,
    pair_masks,
    polygon_mask,
    seg_refusals,
    truncate,
)

ROOT = Path(__file__).resolve().parents[1]


def pixels(mask: np.ndarray) -> set[tuple[int, int]]:
    ys, xs = np.nonzero(mask)
    return set(zip(xs.tolist(), ys.tolist(), strict=True))


def test_thin_triangle_is_filled_with_eight_pixels():
    # Triangle (3,5), (1,8), (5,1) on a 10 x 10 canvas; cv2.fillPoly sets 8 pixels
    # (x = column, y = row):
    #
    #     x 0 1 2 3 4 5
    #   y 1 . . . . . #      edge (5,1)-(3,5) moves x by -1/2 per row: at y = 2 and 4
    #     2 . . . . # .      x is 4.5 and 3.5, exact halves. The line is walked from
    #     3 . . . . # .      its smaller-x end (3,5) and halves round back toward it:
    #     4 . . . # . .      y = 4 -> x = 3, y = 2 -> x = 4 (rounding halves up would
    #     5 . . . # . .      add (5,2) and (4,4): 10 pixels, the old rasteriser's count).
    #     6 . . # . . .      Edges (3,5)-(1,8) and (1,8)-(5,1) are walked from (1,8):
    #     7 . . # . . .      x offsets ceil(1/6), ceil(5/6), ceil(9/6) = 1, 1, 2 and
    #     8 . # . . . .      ceil((8k - 7)/14) = 0, 1, 1, 2, 2, 3, 3, 4 -> same pixels.
    #
    # The scanline fill adds nothing new: its crossing pairs at y = 1..7 are (5, 5),
    # (4.43, 4.5), (3.86, 4), (3.29, 3.5), (2.71, 3), (2.14, 2.33), (1.57, 1.67), which
    # hold the integers 5, -, 4, -, 3, -, - only.
    tri = np.array([[3, 5], [1, 8], [5, 1]])
    mask = polygon_mask(tri, (0, 0), (10, 10), Canvas(10, 10))
    assert pixels(mask) == {(5, 1), (4, 2), (4, 3), (3, 4), (3, 5), (2, 6), (2, 7), (1, 8)}
    # the same through the batched IoU: the triangle against itself and against a
    # 1-pixel prediction at (4, 3)
    got = batch_seg_ious([tri, np.array([[4, 3]])], [[tri], [tri]], [Canvas(10, 10)] * 2)
    assert got.tolist() == [1.0, 1 / 8]


def test_right_triangle_and_square():
    # (0,0), (4,0), (0,4): rows y = 0..4 hold x = 0..4-y -> 5+4+3+2+1 = 15 pixels; the
    # hypotenuse is a 45 degree line (no halves), so it adds nothing outside x + y <= 4
    tri = polygon_mask(np.array([[0, 0], [4, 0], [0, 4]]), (0, 0), (8, 8), Canvas(8, 8))
    assert pixels(tri) == {(x, y) for y in range(5) for x in range(5 - y)}
    # a square 2..5 x 1..3, boundary included: 4 x 3 = 12
    sq = polygon_mask(np.array([[2, 1], [5, 1], [5, 3], [2, 3]]), (0, 0), (8, 8), Canvas(8, 8))
    assert pixels(sq) == {(x, y) for y in range(1, 4) for x in range(2, 6)}


def test_degenerate_polygons_are_their_lines():
    c = Canvas(10, 10)
    # one point: its pixel; two points: the line (4 steps in x, 2 in y: y = 1, 1.5, 2,
    # 2.5, 3 at x = 1..5; walked from (1,1), halves round back toward it)
    assert pixels(polygon_mask(np.array([[3, 4]]), (0, 0), (10, 10), c)) == {(3, 4)}
    two = polygon_mask(np.array([[1, 1], [5, 3]]), (0, 0), (10, 10), c)
    assert pixels(two) == {(1, 1), (2, 1), (3, 2), (4, 2), (5, 3)}
    # collinear points and a repeated vertex: still just the segment
    line = polygon_mask(np.array([[0, 0], [2, 2], [2, 2], [4, 4]]), (0, 0), (10, 10), c)
    assert pixels(line) == {(i, i) for i in range(5)}


def test_window_and_canvas():
    sq = np.array([[2, 1], [5, 1], [5, 3], [2, 3]])
    # a window crops; pixels outside the canvas are dropped
    win = polygon_mask(sq, (3, 2), (4, 4), Canvas(8, 8))
    assert pixels(win) == {(x - 3, y - 2) for y in range(2, 4) for x in range(3, 6)}
    assert pixels(polygon_mask(sq, (0, 0), (8, 8), Canvas(4, 3))) == {
        (x, y) for y in range(1, 3) for x in range(2, 4)}
    # no canvas: drawn as on an image holding the whole polygon, negative coordinates too
    neg = polygon_mask(sq - 10, (-8, -9), (3, 4), None)
    assert pixels(neg) == {(x, y) for y in range(3) for x in range(4)}


def test_hand_computed_square_iou():
    # a 4x4 square of pixels (0..3) against the same square moved by one pixel, both
    # filled with their boundary: intersection 3x3 = 9, union 16 + 16 - 9 = 23
    a = np.array([[0, 0], [3, 0], [3, 3], [0, 3]])
    assert batch_seg_ious([a], [[a + 1]], [Canvas(10, 10)]).tolist() == [9 / 23]
    # official canvas S = 4 drops x = 4 and y = 4 of the moved square: 3 x 3 = 9 pixels,
    # all inside a -> 9 / 16
    assert batch_seg_ious([a], [[a + 1]], [official_canvas(a, [a + 1])]).tolist() == [9 / 16]
    # nothing on the canvas: IoU 0, not NaN
    assert batch_seg_ious([a + 20], [[a + 30]], [Canvas(10, 10)]).tolist() == [0.0]


def test_batched_run_length_iou_equals_mask_iou():
    """The run-length IoU of many pairs at once equals the IoU of each pair's explicit
    masks (pair_masks), exactly, on random pairs of several shapes."""
    rng = np.random.default_rng(11)
    preds, gts, canvases, expected = [], [], [], []
    for k in range(600):
        pred = truncate(rng.random((int(rng.integers(1, 12)), 2)) * 120 - 10)
        gt = [truncate(rng.random((int(rng.integers(1, 10)), 2)) * 120 - 10)
              for _ in range(int(rng.integers(1, 4)))]
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


def test_chunks_do_not_change_ious(monkeypatch):
    rng = np.random.default_rng(5)
    preds = [rng.integers(-5, 60, (int(rng.integers(1, 9)), 2)) for _ in range(300)]
    gts = [[rng.integers(-5, 60, (int(rng.integers(1, 9)), 2))] for _ in range(300)]
    canvases = [Canvas(50, 40)] * 300
    whole = batch_seg_ious(preds, gts, canvases)
    monkeypatch.setattr(geometry, "_CHUNK_WORK", 100)  # a few pairs per chunk
    np.testing.assert_array_equal(batch_seg_ious(preds, gts, canvases), whole)


# ------------------------------------------------------------------------------ limits


def zigzag(side: int, teeth: int) -> np.ndarray:
    """A polygon running top to bottom of a side x side canvas 2 * teeth times."""
    xs = np.linspace(0, side - 1, 2 * teeth).astype(np.int64)
    ys = np.tile([0, side - 1], teeth)
    return np.r_[np.c_[xs, ys], [[side - 1, side - 1], [0, side - 1]]]


def test_canvas_above_the_cap_is_refused():
    tri = np.array([[0, 0], [2**20, 0], [0, 2**20]])
    ok = np.array([[0, 0], [9, 0], [0, 9]])
    canvases = [official_canvas(tri, [tri]), Canvas(10, 10), Canvas(10, MAX_CANVAS_SIDE + 1)]
    refused = seg_refusals([tri, ok, ok], [[tri], [ok], [ok]], canvases)
    assert set(refused) == {0, 2}
    assert "1048576 x 1048576 px" in refused[0] and str(MAX_CANVAS_SIDE) in refused[0]
    with pytest.raises(CanvasTooLarge) as err:
        batch_seg_ious([tri, ok], [[tri], [ok]], canvases[:2])
    assert isinstance(err.value, ValueError) and err.value.index == 0
    assert "above the 32768 px limit" in str(err.value)
    # the pairs that pass give the same IoU alone
    assert batch_seg_ious([ok], [[ok]], [Canvas(10, 10)]).tolist() == [1.0]
    # a side of exactly the cap passes
    assert seg_refusals([ok], [[ok]], [Canvas(MAX_CANVAS_SIDE, MAX_CANVAS_SIDE)]) == {}
    # an absurd image size (a hostile label's imageWidth) is refused, not an overflow
    huge = seg_refusals([ok], [[ok]], [Canvas(10**30, 10)])
    assert f"{10**30} x 10 px" in huge[0]


def test_work_above_the_cap_is_refused():
    side = MAX_CANVAS_SIDE
    # work of a zig-zag: its rows (side) + 2 (rows + 1) per edge
    light, heavy = zigzag(side, 8), zigzag(side, 40)
    refused = seg_refusals([light, heavy], [[light], [heavy]], [Canvas(side, side)] * 2)
    assert list(refused) == [1] and str(MAX_PAIR_WORK) in refused[1]
    with pytest.raises(CanvasTooLarge):
        batch_seg_ious([heavy], [[heavy]], [Canvas(side, side)])


def test_explicit_masks_are_capped():
    sq = np.array([[0, 0], [MAX_CANVAS_SIDE - 1, 0], [MAX_CANVAS_SIDE - 1, 9000], [0, 9000]])
    with pytest.raises(CanvasTooLarge):
        pair_masks(sq, [sq], Canvas(MAX_CANVAS_SIDE, MAX_CANVAS_SIDE))
    with pytest.raises(CanvasTooLarge):
        polygon_mask(sq, (0, 0), (10, 10), Canvas(MAX_CANVAS_SIDE + 1, 10))


HUGE_TRIANGLES = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB of address space
    sys.path.insert(0, {root!r})
    import numpy as np
    from bench.geometry import Canvas, batch_seg_ious, official_canvas, seg_refusals
    T = 2**20
    preds = [np.array([[0, 0], [T, 0], [0, T]]) + k for k in range(16)]
    gts = [[np.array([[5, 5], [T, 7], [9, T]])] for _ in range(16)]
    official = [official_canvas(p, g) for p, g in zip(preds, gts)]
    assert len(seg_refusals(preds, gts, official)) == 16
    ious = batch_seg_ious(preds, gts, [Canvas(1024, 768)] * 16)
    print(" ".join(repr(float(x)) for x in ious))
""")


def test_huge_triangles_run_in_bounded_memory():
    """16 triangles of side 2**20 px: on their official canvas (S = 2**20) every pair is
    refused; on a 1024 x 768 image the IoUs are computed (only the canvas rows are
    visited), all under a 1 GiB address-space cap."""
    pytest.importorskip("resource")
    out = subprocess.run([sys.executable, "-c", HUGE_TRIANGLES.format(root=str(ROOT))],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    ious = [float(x) for x in out.stdout.split()]
    # the same pairs in this process, through explicit masks on the 1024 x 768 canvas
    t = 2**20
    for k in (0, 15):
        pred = np.array([[0, 0], [t, 0], [0, t]]) + k
        m = pair_masks(pred, [np.array([[5, 5], [t, 7], [9, t]])], Canvas(1024, 768))
        assert ious[k] == mask_iou(m.pred, m.gt)
    assert len(ious) == 16 and all(0.97 < x < 1.0 for x in ious)
