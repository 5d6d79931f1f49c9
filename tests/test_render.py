"""bench.render and bench.thumbs: the pictures say what the masks and files say."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from bench import inspect as bi
from bench import render, thumbs
from bench.geometry import Canvas, PairMasks, pair_masks, truncate
from bench.metrics.pixel import pair_iou

GREY = (120, 120, 120)


def _count(img: Image.Image, color) -> int:
    arr = np.asarray(img)
    return int(np.all(arr == np.asarray(color, dtype=np.uint8), axis=-1).sum())


def _masks(pred, gt, w=120, h=90) -> PairMasks:
    p = truncate(np.asarray(pred, dtype=float))
    g = [truncate(np.asarray(s, dtype=float)) for s in gt]
    return pair_masks(p, g, Canvas(w, h))


# ---------------------------------------------------------------- error map

@pytest.mark.parametrize("pred, gt", [
    ([[10, 10], [60, 10], [60, 50], [10, 50]], [[[30, 20], [90, 20], [90, 70], [30, 70]]]),
    ([[5, 5], [100, 12], [70, 80]], [[[20, 20], [50, 20], [50, 40]], [[60, 50], [110, 50],
                                                                      [110, 85], [60, 85]]]),
    ([[0, 0], [119, 0], [119, 89], [0, 89]], [[[40, 30], [80, 30], [60, 60]]]),  # pred = image
])
def test_error_map_colours_count_the_masks(pred, gt):
    masks = _masks(pred, gt)
    tp = int(np.count_nonzero(masks.pred & masks.gt))
    fp = int(np.count_nonzero(masks.pred & ~masks.gt))
    fn = int(np.count_nonzero(~masks.pred & masks.gt))
    assert render.error_counts(masks) == {"tp": tp, "fp": fp, "fn": fn}
    img = Image.new("RGB", (120, 90), GREY)
    out = render.error_map(img, masks, opacity=1.0)
    assert out.size == img.size
    assert _count(out, render.ERROR_COLORS["tp"]) == tp
    assert _count(out, render.ERROR_COLORS["fp"]) == fp
    assert _count(out, render.ERROR_COLORS["fn"]) == fn
    # everything else is the dimmed background
    dimmed = tuple(round(v * (1 - 0.45)) for v in GREY)
    assert _count(out, dimmed) == 120 * 90 - tp - fp - fn


def test_error_map_places_the_window_at_its_origin():
    masks = _masks([[50, 40], [70, 40], [70, 60], [50, 60]], [[[50, 40], [70, 40], [70, 60],
                                                              [50, 60]]])
    assert masks.origin == (50, 40)
    out = np.asarray(render.error_map(Image.new("RGB", (120, 90), GREY), masks, opacity=1.0))
    ys, xs = np.nonzero(np.all(out == render.ERROR_COLORS["tp"], axis=-1))
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (50, 40, 70, 60)


def test_error_map_drops_pixels_outside_the_image():
    # official square canvas 100 x 100 over a 100 x 60 image: rows 60..99 are off the image
    p = truncate(np.array([[10, 10], [90, 10], [90, 95], [10, 95]], dtype=float))
    masks = pair_masks(p, [p.copy()], Canvas(100, 100))
    out = render.error_map(Image.new("RGB", (100, 60), GREY), masks, opacity=1.0)
    inside = int(np.count_nonzero(masks.pred[: 60 - masks.origin[1]]))
    assert _count(out, render.ERROR_COLORS["tp"]) == inside
    assert render.error_counts(masks)["tp"] > inside


def test_error_map_iou_is_the_metric_seg_iou(rng):
    for _ in range(20):
        pred = rng.uniform(0, 140, size=(int(rng.integers(3, 7)), 2))
        gt = [rng.uniform(0, 140, size=(int(rng.integers(3, 7)), 2))]
        for protocol, size in (("official", None), ("strict", (120, 100))):
            masks = bi.pair_error_masks(pred, gt, protocol=protocol, image_size=size)
            c = render.error_counts(masks)
            tot = c["tp"] + c["fp"] + c["fn"]
            seg = c["tp"] / tot if tot else 0.0
            assert seg == pytest.approx(pair_iou(pred, gt, protocol=protocol,
                                                 image_size=size)[1], abs=1e-12)


# ---------------------------------------------------------------- overlay and friends

def test_overlay_fills_ground_truth_and_outlines_prediction():
    img = Image.new("RGB", (100, 80), GREY)
    gt = [np.array([[20, 20], [59, 20], [59, 49], [20, 49]], dtype=float)]
    out = render.overlay(img, gt, None, opacity=1.0, line_width=1)
    # a filled 40 x 30 rectangle, boundary included
    assert _count(out, render.GT_COLOR) == 40 * 30
    assert _count(out, render.PRED_COLOR) == 0
    pred = np.array([[5, 5], [90, 5], [90, 70], [5, 70]], dtype=float)
    out = render.overlay(img, [], pred, opacity=0.5, line_width=2)
    arr = np.asarray(out)
    assert _count(out, render.PRED_COLOR) > 2 * (85 + 65)
    assert tuple(arr[40, 50]) == GREY  # inside the outline: untouched
    assert img.getpixel((0, 0)) == GREY  # the input is not modified


def test_overlay_opacity_zero_keeps_the_image_inside_the_region():
    img = Image.new("RGB", (60, 60), GREY)
    gt = [np.array([[10, 10], [50, 10], [50, 50], [10, 50]], dtype=float)]
    out = np.asarray(render.overlay(img, gt, None, opacity=0.0))
    assert tuple(out[30, 30]) == GREY


def test_framed_tile_has_the_frame_colour_and_size():
    img = Image.new("RGB", (300, 100), (0, 0, 255))
    tile = render.framed(img, render.LABEL_COLORS["easy"], size=120, border=6, badge="#7")
    assert tile.size == (120, 120)
    arr = np.asarray(tile)
    assert tuple(arr[119, 119]) == render.LABEL_COLORS["easy"]
    assert tuple(arr[60, 2]) == render.LABEL_COLORS["easy"]
    assert tuple(arr[60, 60]) == (0, 0, 255)  # letterboxed image in the middle


def test_placeholder_names_the_image():
    tile = render.placeholder("all_souls_000013", size=150)
    assert tile.size == (150, 150)
    assert len(np.unique(np.asarray(tile).reshape(-1, 3), axis=0)) > 2  # text was drawn


def test_draw_box_and_crop_box():
    img = Image.new("RGB", (100, 80), GREY)
    boxed = render.draw_box(img, (10, 20, 50, 60), width=2)
    assert tuple(np.asarray(boxed)[40, 10]) == render.QUERY_COLOR
    assert tuple(np.asarray(boxed)[40, 30]) == GREY
    assert render.draw_box(img, None).tobytes() == img.tobytes()
    assert render.crop_box(img, (10, 20, 50, 60)).size == (41, 41)
    assert render.crop_box(img, (-10, -10, 500, 500)).size == (100, 80)  # clipped
    assert render.crop_box(img, None).size == (100, 80)


def test_side_by_side_scales_to_one_height():
    a, b = Image.new("RGB", (50, 100)), Image.new("RGB", (300, 150))
    out = render.side_by_side(a, b, height=200, gap=10)
    assert out.size == (100 + 10 + 400, 200)
    assert render.side_by_side(a, b, height=200, titles=("q", "db")).height > 200


def test_png_and_jpeg_bytes_round_trip():
    img = Image.new("RGB", (30, 20), (1, 2, 3))
    assert Image.open(io.BytesIO(render.png_bytes(img))).size == (30, 20)
    assert render.jpeg_bytes(img)[:2] == b"\xff\xd8"


# ---------------------------------------------------------------- thumbnail cache

@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(d))
    return d


def test_thumbnail_is_made_once_and_follows_the_file(tmp_path, cache):
    src = tmp_path / "img.jpg"
    Image.new("RGB", (640, 480), (200, 10, 10)).save(src)
    t1 = thumbs.thumbnail_file(src)
    assert t1 is not None and t1.is_file() and cache in t1.parents
    assert max(Image.open(t1).size) == thumbs.THUMB_PX
    stamp = t1.stat().st_mtime_ns
    assert thumbs.thumbnail_file(src) == t1 and t1.stat().st_mtime_ns == stamp  # reused
    Image.new("RGB", (320, 200), (10, 200, 10)).save(src)
    os.utime(src, ns=(stamp + 10**9, stamp + 10**9))
    t2 = thumbs.thumbnail_file(src)
    assert t2 != t1 and Image.open(t2).getpixel((5, 5))[1] > 150


def test_missing_or_unreadable_image_gives_a_placeholder(tmp_path, cache):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    for path in (tmp_path / "missing.jpg", bad, None):
        assert thumbs.thumbnail_file(path) is None
        assert thumbs.open_image(path) is None
        tile = thumbs.thumbnail(path, "name")
        assert tile.size == (thumbs.THUMB_PX, thumbs.THUMB_PX)
        data = thumbs.tile_jpeg(path, "name", render.LABEL_COLORS["junk"], badge="#1")
        assert Image.open(io.BytesIO(data)).size == (thumbs.TILE_PX,
                                                                    thumbs.TILE_PX)
    assert not (cache / "thumbs").exists() or not any((cache / "thumbs").rglob("*.jpg"))


def test_resolve_image_adds_the_extension(tmp_path):
    (tmp_path / "all_souls_000013.jpg").write_bytes(b"x")
    assert thumbs.resolve_image(tmp_path, "all_souls_000013") == tmp_path / "all_souls_000013.jpg"
    assert thumbs.resolve_image(tmp_path, "all_souls_000013.jpg").name == "all_souls_000013.jpg"
    assert thumbs.resolve_image(tmp_path, "nope") is None
    assert thumbs.resolve_image(None, "x") is None
    assert thumbs.image_size(tmp_path / "all_souls_000013.jpg") is None  # not an image


# ---------------------------------------------------------------- regions on tiles
#
# A 400 x 300 grey image in a 160 px tile with a 6 px border: the image is scaled by
# s = 148 / 400 = 0.37 to 148 x 111 and pasted at (6, 6 + (148 - 111) // 2) = (6, 24).

TILE_S, TILE_X0, TILE_Y0 = 148 / 400, 6, 24
GT_RECT = np.array([[100, 60], [300, 60], [300, 240], [100, 240]], dtype=float)
PRED_RECT = np.array([[60, 40], [200, 40], [200, 150], [60, 150]], dtype=float)
FRAME = (10, 20, 30)


def _tile_px(x: float, y: float) -> tuple[int, int]:
    """(row, column) in the tile of original pixel (x, y)."""
    return TILE_Y0 + int(y * TILE_S), TILE_X0 + int(x * TILE_S)


def _blend(bg, fg, a):
    return np.array([b * (1 - a) + f * a for b, f in zip(bg, fg, strict=True)])


def _tile(mode="both", img=None, scale=1.0):
    img = img or Image.new("RGB", (400, 300), GREY)
    return np.asarray(render.mask_tile(img, [GT_RECT], PRED_RECT, FRAME, scale=scale,
                                       mode=mode, size=160, border=6))


def test_mask_tile_fills_ground_truth_and_outlines_prediction():
    arr = _tile("both")
    assert arr.shape == (160, 160, 3)
    assert tuple(arr[0, 0]) == FRAME and tuple(arr[159, 80]) == FRAME
    # inside the ground truth, away from the prediction: GT colour at opacity 0.45
    for x, y in ((250, 200), (280, 80), (150, 220)):
        px = arr[_tile_px(x, y)].astype(float)
        assert np.abs(px - _blend(GREY, render.GT_COLOR, 0.45)).max() <= 1.5, (x, y, px)
    # inside the prediction only: untouched (the prediction is outlined, not filled)
    assert tuple(arr[_tile_px(80, 100)]) == GREY
    # outside both: untouched; the letterbox band above the image: tile background
    assert tuple(arr[_tile_px(360, 20)]) == GREY
    assert tuple(arr[10, 80]) == render.TILE_BG
    # the prediction's boundary: along its top (y = 40) and left (x = 60) edges every
    # tile column / row has a pixel of exactly the prediction colour within 2 px
    pred = np.all(arr == np.asarray(render.PRED_COLOR, dtype=np.uint8), axis=-1)
    r_top = TILE_Y0 + 40 * TILE_S
    for x in range(80, 190, 5):
        c = TILE_X0 + int(x * TILE_S)
        assert pred[int(r_top) - 2:int(r_top) + 3, c].any(), x
    c_left = TILE_X0 + 60 * TILE_S
    for y in range(60, 140, 5):
        r = TILE_Y0 + int(y * TILE_S)
        assert pred[r, int(c_left) - 2:int(c_left) + 3].any(), y
    # and nowhere far from it
    rows, cols = np.nonzero(pred)
    ox, oy = (cols - TILE_X0) / TILE_S, (rows - TILE_Y0) / TILE_S  # back to image pixels
    near = ((np.abs(ox - 60) < 12) | (np.abs(ox - 200) < 12)) & (oy > 28) & (oy < 162) | \
           ((np.abs(oy - 40) < 12) | (np.abs(oy - 150) < 12)) & (ox > 48) & (ox < 212)
    assert near.all()


def test_mask_tile_of_a_thumbnail_with_its_scale_is_the_same_tile():
    full = _tile("both")
    thumb = _tile("both", img=Image.new("RGB", (200, 150), GREY), scale=0.5)
    assert np.array_equal(full, thumb)


def test_mask_tile_modes():
    none = _tile("none")
    plain = np.asarray(render.framed(Image.new("RGB", (400, 300), GREY), FRAME, size=160,
                                     border=6))
    assert np.array_equal(none, plain)
    pred_only = _tile("pred")
    assert tuple(pred_only[_tile_px(250, 200)]) == GREY  # no ground-truth fill
    assert _count(Image.fromarray(pred_only), render.PRED_COLOR) > 50
    assert _count(Image.fromarray(_tile("errors")), render.PRED_COLOR) == 0
    with pytest.raises(ValueError):
        render.draw_regions(Image.new("RGB", (10, 10)), [], None, mode="masks")


def test_error_colours_on_a_tile():
    img = Image.new("RGB", (400, 300), GREY)
    out = np.asarray(render.draw_regions(img, [GT_RECT], PRED_RECT, mode="errors",
                                         opacity=1.0, error_dim=0.3))
    assert tuple(out[100, 150]) == render.ERROR_COLORS["tp"]  # both (row y, column x)
    assert tuple(out[100, 80]) == render.ERROR_COLORS["fp"]  # prediction only
    assert tuple(out[200, 250]) == render.ERROR_COLORS["fn"]  # ground truth only
    assert tuple(out[20, 350]) == tuple(round(v * 0.7) for v in GREY)  # neither: dimmed
    # pixel counts: the rectangles filled with their boundary (201 x 181, 141 x 111,
    # overlap x 100..200, y 60..150 = 101 x 91)
    tp, pred_n, gt_n = 101 * 91, 141 * 111, 201 * 181
    assert _count(Image.fromarray(out), render.ERROR_COLORS["tp"]) == tp
    assert _count(Image.fromarray(out), render.ERROR_COLORS["fp"]) == pred_n - tp
    assert _count(Image.fromarray(out), render.ERROR_COLORS["fn"]) == gt_n - tp
    assert img.getpixel((150, 100)) == GREY  # the input is not modified


def test_region_masks_union_of_shapes():
    a = np.array([[10, 10], [29, 10], [29, 19], [10, 19]], dtype=float)
    b = np.array([[20, 15], [39, 15], [39, 24], [20, 24]], dtype=float)
    g, p = render.region_masks((50, 40), [a, b], None)
    want = np.zeros((40, 50), dtype=bool)
    want[10:20, 10:30] = True
    want[15:25, 20:40] = True
    assert np.array_equal(g, want) and not p.any()


def test_blank_canvas_for_a_missing_image():
    canvas, s = render.blank_canvas((1000, 500), max_side=200)
    assert canvas.size == (200, 100) and s == pytest.approx(0.2)
    canvas, s = render.blank_canvas(None, [np.array([[0, 0], [90, 40], [10, 60]])])
    assert canvas.size == (100, 70) and s == 1.0
    assert render.blank_canvas(None)[0].size == (200, 150)


def test_error_map_on_a_reduced_image_samples_the_mask_under_each_pixel_centre():
    """``error_map(scale=s)`` (an image decoded at a reduced size, docs/PROTOCOLS.md §8
    rule 9): output pixel (x, y) shows the window mask at image pixel
    (floor((x + .5) / s), floor((y + .5) / s)); checked against a plain double loop."""
    rng = np.random.default_rng(5)
    full_w, full_h, s = 64, 48, 0.375
    origin = (7, 5)
    pred = rng.random((30, 41)) < 0.5
    gt = rng.random((30, 41)) < 0.5
    masks = PairMasks(origin, pred, gt, canvas=None)
    w, h = round(full_w * s), round(full_h * s)
    img = Image.new("RGB", (w, h), (100, 100, 100))
    got = np.asarray(render.error_map(img, masks, opacity=1.0, dim=0.0, scale=s))
    colors = {k: np.array(v) for k, v in render.ERROR_COLORS.items()}
    for y in range(h):
        for x in range(w):
            mx, my = int((x + 0.5) // s) - origin[0], int((y + 0.5) // s) - origin[1]
            want = np.array([100, 100, 100])
            if 0 <= mx < pred.shape[1] and 0 <= my < pred.shape[0]:
                p, g = pred[my, mx], gt[my, mx]
                if p and g:
                    want = colors["tp"]
                elif p:
                    want = colors["fp"]
                elif g:
                    want = colors["fn"]
            assert (got[y, x] == want).all(), (x, y)
    # scale 1 is the pixel-for-pixel map
    big = Image.new("RGB", (full_w, full_h), (100, 100, 100))
    assert np.array_equal(np.asarray(render.error_map(big, masks, scale=1.0)),
                          np.asarray(render.error_map(big, masks)))
