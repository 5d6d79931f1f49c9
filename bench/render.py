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

from bench.geometry import PairMasks

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
        rgba = img.convert("RGBA")
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
    lines = textwrap.wrap(name, chars)[:4] + [""] + textwrap.wrap(note, chars)[:2]
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


def error_map(img: Image.Image, masks: PairMasks, *, opacity: float = 0.7,
              dim: float = 0.45, colors: dict[str, RGB] | None = None) -> Image.Image:
    """TP, FP and FN pixels painted over a dimmed copy of the database image.

    *masks* are the window-local boolean masks of :func:`bench.geometry.pair_masks`, placed
    at ``masks.origin`` = (x0, y0); pixels that fall outside the image (possible on the
    official square canvas) are not drawn. ``opacity=1`` paints the exact colours.
    """
    colors = colors or ERROR_COLORS
    arr = np.asarray(ensure_rgb(img)).astype(np.float32) * (1.0 - float(np.clip(dim, 0, 1)))
    h, w = arr.shape[:2]
    x0, y0 = masks.origin
    mh, mw = masks.pred.shape
    # the part of the mask window inside the image
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + mw, w), min(y0 + mh, h)
    if ix1 > ix0 and iy1 > iy0:
        p = masks.pred[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        g = masks.gt[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
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


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    ensure_rgb(img).save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, *, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    ensure_rgb(img).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


__all__ = ["ERROR_COLORS", "GT_COLOR", "LABEL_COLORS", "OTHER_COLOR", "PRED_COLOR",
           "QUERY_COLOR", "SAME_COLOR", "crop_box", "draw_box", "ensure_rgb", "error_counts",
           "error_map", "fit", "framed", "hex_color", "jpeg_bytes", "letterbox", "overlay",
           "placeholder", "png_bytes", "side_by_side"]
