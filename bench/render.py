"""Pictures for the inspection app: overlays, error maps, framed thumbnails (PIL / numpy only).

Everything here takes images and plain arrays and returns new ``PIL.Image`` objects in
RGB; nothing is read from disk (see :mod:`bench.thumbs`) and nothing imports Streamlit.
Coordinates are image pixels, ``[x, y]`` = (column, row), as in PROTOCOLS §2.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.geometry import Canvas, PairMasks

RGB = tuple[int, int, int]

#: Frame colours of a database image by its ground-truth label for the query.
LABEL_COLORS: dict[str, RGB] = {
    "easy": (46, 160, 67),
    "hard": (240, 136, 0),
    "junk": (150, 150, 150),
    "negative": (214, 40, 40),
}
QUERY_COLOR: RGB = (30, 110, 230)
#: Overlay mode: filled ground truth, outlined prediction.
GT_COLOR: RGB = (0, 190, 255)
PRED_COLOR: RGB = (255, 40, 200)
#: Error map: prediction and ground truth (TP), prediction only (FP), ground truth only (FN).
ERROR_COLORS: dict[str, RGB] = {"tp": (46, 190, 67), "fp": (230, 40, 40), "fn": (40, 110, 250)}
#: GPR1200 neighbours: same category as the query or not.
SAME_COLOR: RGB = (46, 160, 67)
OTHER_COLOR: RGB = (214, 40, 40)
TILE_BG: RGB = (238, 240, 244)


def hex_color(rgb: RGB) -> str:
    """``(46, 160, 67)`` -> ``"#2ea043"`` (for legends drawn by the app)."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def ensure_rgb(img: Image.Image) -> Image.Image:
    """The image in RGB (a copy when the mode changes; transparency composited on white)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")  # no full-size copy
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return img.convert("RGB")


def fit(img: Image.Image, max_side: int) -> Image.Image:
    """A copy scaled down (never up) so that its longer side is at most *max_side*."""
    img = ensure_rgb(img)
    w, h = img.size
    s = max_side / max(w, h, 1)
    if s >= 1:
        return img.copy()
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)


def letterbox(img: Image.Image, size: int, bg: RGB = TILE_BG) -> Image.Image:
    """*img* fitted into a ``size`` x ``size`` square, centred on *bg*."""
    small = fit(img, size)
    tile = Image.new("RGB", (size, size), bg)
    tile.paste(small, ((size - small.width) // 2, (size - small.height) // 2))
    return tile


def _text_box(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, *, fill: RGB,
              bg: RGB, size: int) -> None:
    font = _font(size)
    x0, y0, x1, y1 = draw.textbbox(xy, text, font=font)
    pad = max(2, size // 4)
    draw.rectangle((x0 - pad, y0 - pad, x1 + pad, y1 + pad), fill=bg)
    draw.text(xy, text, fill=fill, font=font)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def framed(img: Image.Image, color: RGB, *, size: int = 160, border: int = 6,
           badge: str | None = None, caption: Sequence[str] = ()) -> Image.Image:
    """A square tile: *img* letterboxed to ``size``, a *border*-pixel frame in *color*,
    an optional *badge* (e.g. the rank) in the top-left corner on the frame colour, and
    optional *caption* lines below the square (first line bold-ish; cut with … to fit).

    One picture instead of an image plus text elements keeps big grids quick to show."""
    inner = letterbox(img, size - 2 * border)
    fs = max(10, size // 13)
    strip = (fs + 5) * len(caption) + (6 if caption else 0)
    tile = Image.new("RGB", (size, size + strip), (255, 255, 255))
    tile.paste(Image.new("RGB", (size, size), color), (0, 0))
    tile.paste(inner, (border, border))
    draw = ImageDraw.Draw(tile)
    if badge:
        _text_box(draw, (border + 3, border + 2), badge, fill=(255, 255, 255), bg=color,
                  size=max(10, size // 9))
    y = size + 4
    for n, line in enumerate(caption):
        font = _font(fs)
        fill = (30, 32, 38) if n == 0 else (95, 98, 108)
        draw.text((2, y), _fit_text(draw, line, font, size - 4), fill=fill, font=font)
        if n == 0:  # a cheap bold: draw the first line twice, one pixel apart
            draw.text((3, y), _fit_text(draw, line, font, size - 4), fill=fill, font=font)
        y += fs + 5
    return tile


def placeholder(name: str, *, size: int = 160, note: str = "image not available") -> Image.Image:
    """A grey tile naming a missing or unreadable image (the app never fails on one)."""
    tile = Image.new("RGB", (size, size), (222, 224, 228))
    draw = ImageDraw.Draw(tile)
    fs = max(9, size // 13)
    draw.rectangle((0, 0, size - 1, size - 1), outline=(180, 182, 188), width=2)
    chars = max(6, int(size / (fs * 0.6)))
    lines = textwrap.wrap(name, chars)[:3] + [""] + textwrap.wrap(note, chars)[:4]
    y = max(4, (size - len(lines) * (fs + 3)) // 2)
    for ln in lines:
        w = draw.textlength(ln, font=_font(fs))
        draw.text(((size - w) / 2, y), ln, fill=(70, 72, 80), font=_font(fs))
        y += fs + 3
    return tile


def draw_box(img: Image.Image, box: Sequence[float] | None, *, color: RGB = QUERY_COLOR,
             width: int | None = None, dim_outside: float = 0.0) -> Image.Image:
    """A copy of *img* with the query box ``(x1, y1, x2, y2)`` drawn; optionally the area
    outside the box darkened by *dim_outside* (0..1). ``box=None`` returns a plain copy."""
    out = ensure_rgb(img).copy()
    if box is None:
        return out
    x1, y1, x2, y2 = (float(v) for v in box)
    w = width or max(2, round(max(out.size) / 160))
    if dim_outside > 0:
        arr = np.asarray(out).astype(np.float32)
        keep = np.zeros(arr.shape[:2], dtype=bool)
        keep[max(0, int(y1)):max(0, int(y2) + 1), max(0, int(x1)):max(0, int(x2) + 1)] = True
        arr[~keep] *= 1.0 - dim_outside
        out = Image.fromarray(arr.astype(np.uint8))
    ImageDraw.Draw(out).rectangle((x1, y1, x2, y2), outline=color, width=w)
    return out


def crop_box(img: Image.Image, box: Sequence[float] | None, *, pad: int = 0) -> Image.Image:
    """The query crop: *img* cut to ``(x1, y1, x2, y2)`` (+ *pad*), clipped to the image;
    the whole image when *box* is ``None`` or empty after clipping."""
    img = ensure_rgb(img)
    if box is None:
        return img.copy()
    x1, y1, x2, y2 = (float(v) for v in box)
    left, top = max(0, int(x1) - pad), max(0, int(y1) - pad)
    r, b = min(img.width, int(np.ceil(x2)) + 1 + pad), min(img.height, int(np.ceil(y2)) + 1 + pad)
    if r <= left or b <= top:
        return img.copy()
    return img.crop((left, top, r, b))


def _polygon_layer(size: tuple[int, int], polys: Sequence[np.ndarray]) -> Image.Image:
    layer = Image.new("L", size, 0)
    draw = ImageDraw.Draw(layer)
    for p in polys:
        pts = [(float(x), float(y)) for x, y in np.asarray(p, dtype=np.float64)]
        if len(pts) >= 3:
            draw.polygon(pts, fill=255, outline=255)
        elif len(pts) == 2:
            draw.line(pts, fill=255, width=1)
    return layer


def overlay(img: Image.Image, gt_shapes: Sequence[np.ndarray], pred: np.ndarray | None, *,
            opacity: float = 0.45, line_width: int | None = None,
            gt_color: RGB = GT_COLOR, pred_color: RGB = PRED_COLOR) -> Image.Image:
    """Ground truth filled (union of its shapes, at *opacity*, with a thin outline) and the
    predicted polygon outlined, on a copy of the database image. Shapes are float
    ``[x, y]`` arrays in image pixels; parts outside the image are cut off."""
    base = ensure_rgb(img)
    out = base.copy()
    lw = line_width or max(2, round(max(base.size) / 200))
    if gt_shapes:
        mask = _polygon_layer(base.size, gt_shapes)
        alpha = mask.point(lambda v: round(v * float(np.clip(opacity, 0, 1))))
        out.paste(Image.new("RGB", base.size, gt_color), mask=alpha)
        draw = ImageDraw.Draw(out)
        for g in gt_shapes:
            pts = [(float(x), float(y)) for x, y in np.asarray(g, dtype=np.float64)]
            draw.line(pts + pts[:1], fill=gt_color, width=max(1, lw // 2))
    if pred is not None and len(pred):
        pts = [(float(x), float(y)) for x, y in np.asarray(pred, dtype=np.float64)]
        draw = ImageDraw.Draw(out)
        draw.line(pts + pts[:1], fill=pred_color, width=lw, joint="curve")
        r = lw + 1
        for x, y in pts:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=pred_color)
    return out


def error_counts(masks: PairMasks) -> dict[str, int]:
    """Pixel counts of the pair's window: ``tp`` (both), ``fp`` (prediction only),
    ``fn`` (ground truth only). IoU = tp / (tp + fp + fn)."""
    p, g = masks.pred, masks.gt
    return {"tp": int(np.count_nonzero(p & g)), "fp": int(np.count_nonzero(p & ~g)),
            "fn": int(np.count_nonzero(~p & g))}


def _sample(n_out: int, start: int, n_mask: int, scale: float) -> tuple[int, int, np.ndarray]:
    """Output pixels ``[a, b)`` whose centres fall inside a mask window of *n_mask* pixels
    starting at image pixel *start*, and the window index each samples (nearest)."""
    src = np.floor((np.arange(n_out) + 0.5) / scale).astype(np.int64) - start
    inside = np.flatnonzero((src >= 0) & (src < n_mask))  # contiguous: src is monotone
    if not inside.size:
        return 0, 0, src[:0]
    return int(inside[0]), int(inside[-1]) + 1, src[inside]


def error_map(img: Image.Image, masks: PairMasks, *, opacity: float = 0.7,
              dim: float = 0.45, colors: dict[str, RGB] | None = None,
              scale: float = 1.0) -> Image.Image:
    """TP, FP and FN pixels painted over a dimmed copy of the database image.

    *masks* are the window-local boolean masks of :func:`bench.geometry.pair_masks`, placed
    at ``masks.origin`` = (x0, y0); pixels that fall outside the image (possible on the
    official square canvas) are not drawn. ``opacity=1`` paints the exact colours.
    *scale* is the size of *img* over the image the masks were made for (an image decoded
    at a reduced size, docs/PROTOCOLS.md §8 rule 9): each pixel then shows the mask pixel
    under its centre (nearest sampling); ``scale=1`` paints the masks pixel for pixel.
    """
    colors = colors or ERROR_COLORS
    arr = np.asarray(ensure_rgb(img)).astype(np.float32) * (1.0 - float(np.clip(dim, 0, 1)))
    h, w = arr.shape[:2]
    x0, y0 = masks.origin
    mh, mw = masks.pred.shape
    if scale != 1.0:
        ix0, ix1, sx = _sample(w, x0, mw, float(scale))
        iy0, iy1, sy = _sample(h, y0, mh, float(scale))
        if ix1 > ix0 and iy1 > iy0:
            p, g = masks.pred[np.ix_(sy, sx)], masks.gt[np.ix_(sy, sx)]
    else:  # the part of the mask window inside the image
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + mw, w), min(y0 + mh, h)
        if ix1 > ix0 and iy1 > iy0:
            p = masks.pred[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
            g = masks.gt[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    if ix1 > ix0 and iy1 > iy0:
        region = arr[iy0:iy1, ix0:ix1]
        a = float(np.clip(opacity, 0, 1))
        for key, sel in (("tp", p & g), ("fp", p & ~g), ("fn", ~p & g)):
            col = np.asarray(colors[key], dtype=np.float32)
            region[sel] = region[sel] * (1 - a) + col * a
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def side_by_side(left: Image.Image, right: Image.Image, *, height: int = 420, gap: int = 12,
                 bg: RGB = (255, 255, 255), titles: tuple[str, str] | None = None) -> Image.Image:
    """*left* and *right* scaled to the same *height* and placed next to each other, with
    optional titles above them."""
    def scaled(im: Image.Image) -> Image.Image:
        im = ensure_rgb(im)
        s = height / max(im.height, 1)
        return im.resize((max(1, round(im.width * s)), height), Image.Resampling.LANCZOS)

    a, b = scaled(left), scaled(right)
    top = 0
    fs = max(12, height // 24)
    if titles:
        top = fs + 10
    out = Image.new("RGB", (a.width + gap + b.width, height + top), bg)
    out.paste(a, (0, top))
    out.paste(b, (a.width + gap, top))
    if titles:
        draw = ImageDraw.Draw(out)
        draw.text((2, 3), titles[0], fill=(40, 40, 40), font=_font(fs))
        draw.text((a.width + gap + 2, 3), titles[1], fill=(40, 40, 40), font=_font(fs))
    return out


# ---------------------------------------------------------------- regions on tiles

#: How a tile shows a pair's regions: nothing, the prediction outlined, ground truth
#: filled and prediction outlined (as :func:`overlay`), or error colours (TP / FP / FN of
#: :data:`ERROR_COLORS`, rasterised at the tile's scale).
MASK_MODES = ("none", "pred", "both", "errors")
#: Frame colours of a pair by failure type (``bench.triage``, docs/PROTOCOLS.md §5).
FAILURE_COLORS: dict[str, RGB] = {
    "missed": (120, 90, 200),
    "no_region": (110, 110, 120),
    "wrong_place": (214, 40, 40),
    "mislocalised": (240, 136, 0),
    "ok": (46, 160, 67),
}
#: Frames of the Query page in pass / fail mode: a pair's IoU above the threshold or not;
#: an image that is not an easy or hard pair has no IoU.
PASS_COLOR: RGB = (46, 160, 67)
FAIL_COLOR: RGB = (214, 40, 40)
NO_PAIR_COLOR: RGB = (170, 172, 180)


def _scaled(shape: np.ndarray | None, scale: float) -> np.ndarray | None:
    if shape is None:
        return None
    return np.asarray(shape, dtype=np.float64).reshape(-1, 2) * float(scale)


def region_masks(size: tuple[int, int], gt_shapes: Sequence[np.ndarray] | None,
                 pred: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``(height, width)`` masks of the union of the ground-truth shapes and of
    the predicted polygon on an image of *size* ``(width, height)``, each polygon filled
    with its boundary (PIL's polygon fill; float ``[x, y]`` vertices already at this
    image's scale). A picture of the regions, not the protocol's seg IoU masks (those are
    :func:`bench.geometry.pair_masks` at full resolution)."""
    gt = np.asarray(_polygon_layer(size, list(gt_shapes or []))) > 0
    pm = np.asarray(_polygon_layer(size, [pred] if pred is not None and len(pred) else [])) > 0
    return gt, pm


def draw_regions(img: Image.Image, gt_shapes: Sequence[np.ndarray] | None,
                 pred: np.ndarray | None, *, mode: str = "both", scale: float = 1.0,
                 opacity: float = 0.45, line_width: int | None = None,
                 error_dim: float = 0.3) -> Image.Image:
    """A copy of *img* with a pair's regions drawn as *mode* (:data:`MASK_MODES`).

    Shapes are ``[x, y]`` in the original image's pixels; *scale* maps them onto *img*
    (a thumbnail: its width / the original width). ``"both"`` = :func:`overlay` (ground
    truth filled at *opacity* with a thin outline, prediction outlined); ``"pred"`` = the
    prediction's outline alone; ``"errors"`` paints the pixels of prediction and ground
    truth (TP), prediction only (FP) and ground truth only (FN) in :data:`ERROR_COLORS`
    over the image dimmed by *error_dim*, from :func:`region_masks` at *img*'s scale.
    """
    if mode not in MASK_MODES:
        raise ValueError(f"mode must be one of {MASK_MODES}, got {mode!r}")
    base = ensure_rgb(img)
    gt = [_scaled(s, scale) for s in gt_shapes or []]
    pr = _scaled(pred, scale) if pred is not None and len(pred) else None
    if mode == "none" or (not gt and pr is None):
        return base.copy()
    if mode == "pred":
        return overlay(base, [], pr, line_width=line_width)
    if mode == "both":
        return overlay(base, gt, pr, opacity=opacity, line_width=line_width)
    g, p = region_masks(base.size, gt, pr)
    masks = PairMasks(origin=(0, 0), pred=p, gt=g, canvas=Canvas(*base.size))
    return error_map(base, masks, opacity=max(opacity, 0.7), dim=error_dim)


def mask_tile(img: Image.Image, gt_shapes: Sequence[np.ndarray] | None,
              pred: np.ndarray | None, color: RGB, *, scale: float = 1.0,
              mode: str = "both", size: int = 160, border: int = 6,
              badge: str | None = None, opacity: float = 0.45) -> Image.Image:
    """A framed square tile (:func:`framed`, no caption: names belong in text) of *img*
    with the pair's regions drawn (:func:`draw_regions`) **after** scaling the image to
    the tile, so outlines and fills keep their exact colours and a 2-pixel line.

    *scale* maps the shapes' original image pixels onto *img* (a thumbnail).
    """
    small = fit(img, size - 2 * border)
    s = float(scale) * small.width / max(ensure_rgb(img).width, 1)
    drawn = draw_regions(small, gt_shapes, pred, mode=mode, scale=s, opacity=opacity,
                         line_width=2)
    return framed(drawn, color, size=size, border=border, badge=badge)


def blank_canvas(size: tuple[int, int] | None, shapes: Sequence[np.ndarray] = (), *,
                 max_side: int = 200, bg: RGB = (236, 238, 242)) -> tuple[Image.Image, float]:
    """A plain canvas standing in for a missing image: *size* ``(width, height)`` (else
    the shapes' extent + 10 px, else 480 x 360) scaled to at most *max_side*; returns the
    canvas and the scale from the original pixels onto it."""
    if size is None:
        pts = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in shapes if s is not None
               and len(s)]
        if pts:
            allp = np.concatenate(pts)
            size = (int(max(allp[:, 0].max(), 1)) + 10, int(max(allp[:, 1].max(), 1)) + 10)
    w, h = size or (480, 360)
    w, h = max(int(w), 1), max(int(h), 1)
    s = min(1.0, max_side / max(w, h))
    return Image.new("RGB", (max(1, round(w * s)), max(1, round(h * s))), bg), s


# ---------------------------------------------------------------- two methods on one pair

#: Two-method pair view: method A's polygon solid (as :func:`overlay`), method B's dashed.
PRED_A_COLOR: RGB = PRED_COLOR
PRED_B_COLOR: RGB = (255, 196, 0)


def _dashed_closed(draw: ImageDraw.ImageDraw, pts: list[tuple[float, float]], color: RGB,
                   width: int, dash: float, gap: float) -> None:
    """The closed polygon *pts* as a dashed line (the pattern runs on across corners)."""
    ring = pts + pts[:1]
    phase = 0.0  # distance into the current dash + gap period
    period = dash + gap
    for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False):
        seg = float(np.hypot(x1 - x0, y1 - y0))
        t = 0.0
        while t < seg:
            in_dash = phase < dash
            step = min((dash - phase) if in_dash else (period - phase), seg - t)
            if in_dash and step > 0:
                a, b = t / seg, (t + step) / seg
                draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                           (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=color, width=width)
            t += step
            phase = (phase + step) % period


def overlay_two(img: Image.Image, gt_shapes: Sequence[np.ndarray], pred_a: np.ndarray | None,
                pred_b: np.ndarray | None, *, opacity: float = 0.45,
                line_width: int | None = None, gt_color: RGB = GT_COLOR,
                a_color: RGB = PRED_A_COLOR, b_color: RGB = PRED_B_COLOR) -> Image.Image:
    """Two methods' predictions on one database image: the ground truth filled (as
    :func:`overlay`), method A's polygon outlined solid with round vertex dots, method B's
    dashed with square vertex dots, drawn last so that where the two outlines coincide
    both stay visible. ``None`` or an empty array = that method predicted nothing."""
    out = overlay(img, gt_shapes, pred_a, opacity=opacity, line_width=line_width,
                  gt_color=gt_color, pred_color=a_color)
    if pred_b is None or not len(pred_b):
        return out
    lw = line_width or max(2, round(max(out.size) / 200))
    pts = [(float(x), float(y)) for x, y in np.asarray(pred_b, dtype=np.float64).reshape(-1, 2)]
    draw = ImageDraw.Draw(out)
    _dashed_closed(draw, pts, b_color, lw, dash=4.0 * lw + 6, gap=2.0 * lw + 3)
    r = lw + 1
    for x, y in pts:
        draw.rectangle((x - r, y - r, x + r, y + r), fill=b_color)
    return out


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    ensure_rgb(img).save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, *, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    ensure_rgb(img).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


__all__ = ["ERROR_COLORS", "FAILURE_COLORS", "FAIL_COLOR", "GT_COLOR", "LABEL_COLORS",
           "MASK_MODES", "NO_PAIR_COLOR", "OTHER_COLOR", "PASS_COLOR", "PRED_COLOR",
           "QUERY_COLOR", "SAME_COLOR", "blank_canvas", "crop_box", "draw_box", "draw_regions",
           "ensure_rgb", "error_counts", "error_map", "fit", "framed", "hex_color",
           "jpeg_bytes", "letterbox", "mask_tile", "overlay", "placeholder", "png_bytes",
           "region_masks", "side_by_side"]
__all__ += ["PRED_A_COLOR", "PRED_B_COLOR", "overlay_two"]
