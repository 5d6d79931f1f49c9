"""Scene synthesis: paste a query object into a background with a known homography.

Coordinates are ``(x, y)`` = (column, row) with pixel centres on integers, as in labelme
and ``skimage.transform``. The ground truth of a pasted object is its outline mapped
through the same homography, clipped to the image and with the occluders cut out; since
the outline is convex and occluders are axis-aligned rectangles, the visible region is
an exact union of convex polygons (one labelme shape each).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from skimage.transform import ProjectiveTransform, warp

from bench.demo.sources import BACKGROUNDS, region, resize

Rect = tuple[float, float, float, float]  # x1, y1, x2, y2, inclusive pixel-centre bounds

# --------------------------------------------------------------------------- polygons


def polygon_area(poly: np.ndarray) -> float:
    """Shoelace area of a simple polygon given as an (n, 2) array of ``[x, y]``."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def clip_halfplane(poly: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """Sutherland-Hodgman: the part of ``poly`` where ``a*x + b*y <= c``."""
    if len(poly) == 0:
        return poly
    out: list[np.ndarray] = []
    vals = poly @ np.array([a, b]) - c
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        vp, vq = vals[i], vals[(i + 1) % n]
        if vp <= 0:
            out.append(p)
        if (vp < 0 < vq) or (vq < 0 < vp):
            t = vp / (vp - vq)
            out.append(p + t * (q - p))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def clip_rect(poly: np.ndarray, rect: Rect) -> np.ndarray:
    """The part of ``poly`` inside the closed rectangle ``rect``."""
    x1, y1, x2, y2 = rect
    for a, b, c in ((-1, 0, -x1), (1, 0, x2), (0, -1, -y1), (0, 1, y2)):
        poly = clip_halfplane(poly, a, b, c)
    return poly


def subtract_rect(poly: np.ndarray, rect: Rect) -> list[np.ndarray]:
    """Convex ``poly`` minus the pixels ``rect`` covers (inclusive, integer bounds).

    Returns up to four convex pieces (left, right, above, below the rectangle)."""
    x1, y1, x2, y2 = rect
    left = clip_halfplane(poly, 1, 0, x1 - 1)
    right = clip_halfplane(poly, -1, 0, -(x2 + 1))
    mid = clip_halfplane(clip_halfplane(poly, -1, 0, -x1), 1, 0, x2)
    above = clip_halfplane(mid, 0, 1, y1 - 1)
    below = clip_halfplane(mid, 0, -1, -(y2 + 1))
    return [p for p in (left, right, above, below) if len(p) >= 3]


def _dedupe(poly: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    keep = [poly[0]]
    for p in poly[1:]:
        if np.abs(p - keep[-1]).max() > eps:
            keep.append(p)
    if len(keep) > 1 and np.abs(keep[0] - keep[-1]).max() <= eps:
        keep.pop()
    return np.array(keep).reshape(-1, 2)


def outline(width: int, height: int, shape: str) -> np.ndarray:
    """The object's outline in its crop's pixel coordinates: the box corners (pixel
    centres of the corner pixels) or a 40-gon on the inscribed ellipse."""
    if shape == "ellipse":
        t = np.linspace(0.0, 2.0 * np.pi, 40, endpoint=False)
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        return np.stack([cx + cx * np.cos(t), cy + cy * np.sin(t)], axis=1)
    w, h = width - 1.0, height - 1.0
    return np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])


def object_mask(width: int, height: int, shape: str) -> np.ndarray:
    """Alpha of the object inside its crop (float 0..1), antialiased at an ellipse edge."""
    if shape != "ellipse":
        return np.ones((height, width))
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.sqrt(((xx - cx) / (cx + 0.5)) ** 2 + ((yy - cy) / (cy + 0.5)) ** 2)
    return np.clip((1.0 - r) * min(cx, cy) + 0.5, 0.0, 1.0)


# --------------------------------------------------------------------------- geometry


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 matrix mapping the four ``src`` points onto ``dst`` (x, y)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = ProjectiveTransform.from_estimate(src, dst)
    if not tf:
        raise ValueError("degenerate homography")
    return tf.params / tf.params[2, 2]


def apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ h.T
    return p[:, :2] / p[:, 2:3]


def view_quad(width: int, height: int, size: float, theta: float, tilt_x: float,
              tilt_y: float) -> np.ndarray:
    """Corners of a ``width`` x ``height`` plane seen after a 3D tilt, scaled so its long
    side spans about ``size`` px, rotated by ``theta`` (degrees), centred on 0."""
    corners = outline(width, height, "rect")
    s = size / max(width - 1, height - 1)
    p = (corners - [(width - 1) / 2.0, (height - 1) / 2.0]) * s
    ax, ay = np.radians(tilt_x), np.radians(tilt_y)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    q = np.c_[p, np.zeros(4)] @ (ry @ rx).T
    f = 2.2 * size  # viewing distance: a moderate, photographic perspective
    proj = q[:, :2] * (f / (f + q[:, 2]))[:, None]
    t = np.radians(theta)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return proj @ rot.T


# --------------------------------------------------------------------------- rendering


def _resize_float(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Antialiased resize of one float channel (PIL mode ``F``)."""
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64)


def paste(canvas: np.ndarray, obj: np.ndarray, alpha: np.ndarray, h: np.ndarray) -> None:
    """Composite ``obj`` (float RGB 0..1, with ``alpha``) into ``canvas`` in place, through
    homography ``h`` (object crop pixels -> canvas pixels). Downscaling is antialiased by
    resizing the object first, then warping the rest of the way."""
    ch, cw = alpha.shape
    big_h, big_w = canvas.shape[:2]
    quad = apply_h(h, outline(cw, ch, "rect"))
    scale = np.sqrt(polygon_area(quad) / max(polygon_area(outline(cw, ch, "rect")), 1.0))
    if scale < 0.9:
        rw, rh = max(2, round(cw * scale)), max(2, round(ch * scale))
        rgba = np.concatenate([obj * alpha[:, :, None], alpha[:, :, None]], axis=2)
        small = np.stack([_resize_float(rgba[:, :, k], rw, rh) for k in range(4)], axis=2)
        sx, sy = cw / rw, ch / rh
        h = h @ np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
    else:
        small = np.concatenate([obj * alpha[:, :, None], alpha[:, :, None]], axis=2)
    x0 = int(max(0, np.floor(quad[:, 0].min()) - 2))
    y0 = int(max(0, np.floor(quad[:, 1].min()) - 2))
    x1 = int(min(big_w, np.ceil(quad[:, 0].max()) + 3))
    y1 = int(min(big_h, np.ceil(quad[:, 1].max()) + 3))
    if x1 <= x0 or y1 <= y0:
        return
    shift = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])  # window -> canvas
    inv = np.linalg.inv(h) @ shift
    out = warp(small, ProjectiveTransform(matrix=inv), output_shape=(y1 - y0, x1 - x0),
               order=1, cval=0.0, preserve_range=True)
    a = out[:, :, 3:4]
    win = canvas[y0:y1, x0:x1]
    win[...] = win * (1.0 - a) + out[:, :, :3]


def tint(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map a gray image (float 0..1) onto a random two-colour ramp."""
    lo = rng.uniform(0.0, 0.45, 3)
    hi = rng.uniform(0.55, 1.0, 3)
    return lo + gray[:, :, None] * (hi - lo)


def texture(rng: np.random.Generator, width: int, height: int,
            sources: tuple = BACKGROUNDS) -> np.ndarray:
    """A random crop of a background source, resized to ``width`` x ``height``, with a
    random flip, tint (for gray sources) and brightness; float RGB 0..1."""
    name, box = sources[int(rng.integers(len(sources)))]
    src = region(name, box)
    sh, sw = src.shape[:2]
    aspect = width / height
    frac = rng.uniform(0.55, 1.0)
    cw = min(sw, sh * aspect) * frac
    chh = cw / aspect
    cx = rng.uniform(0, sw - cw)
    cy = rng.uniform(0, sh - chh)
    crop = src[int(cy):int(cy + chh), int(cx):int(cx + cw)]
    img = resize(np.ascontiguousarray(crop), width, height).astype(np.float64) / 255.0
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if np.ptp(img[:, :, 0] - img[:, :, 1]) < 1e-6 and np.ptp(img[:, :, 1] - img[:, :, 2]) < 1e-6:
        img = tint(img[:, :, 0], rng)
    img = img * rng.uniform(0.8, 1.15) + rng.uniform(-0.05, 0.05)
    return np.clip(img, 0.0, 1.0)


def relight(obj: np.ndarray, gain: float, gamma: float, cast: np.ndarray) -> np.ndarray:
    """Lighting change of a float RGB image: ``gain * cast * obj ** gamma``."""
    return np.clip(gain * cast * np.power(obj, gamma), 0.0, 1.0)


# --------------------------------------------------------------------------- scenes


@dataclass
class Placement:
    """A pasted query object: its homography, visible ground-truth shapes and stats."""

    h: np.ndarray
    shapes: list[np.ndarray]
    visible: float  # visible area / whole (mapped) object area
    area: float  # visible area / image area
    factors: tuple[str, ...] = field(default=())


@dataclass
class _Params:
    size: float
    theta: float = 0.0
    tilt_x: float = 0.0
    tilt_y: float = 0.0
    gain: float = 1.0
    gamma: float = 1.0
    cast: np.ndarray = field(default_factory=lambda: np.ones(3))
    occlusion: str = "none"  # none | side | band
    occ_frac: float = 0.0
    frame: float = 0.0  # fraction of the object's width pushed out of the frame
    # (-1: a zoomed-in view covering the whole frame)


def _strong_light(rng: np.random.Generator) -> tuple[float, float, np.ndarray]:
    """Gain, gamma and colour cast of a strong lighting change (dusk, tungsten, glare)."""
    gain = rng.uniform(0.35, 0.5) if rng.random() < 0.5 else rng.uniform(1.5, 1.8)
    return gain, rng.uniform(0.7, 1.5), rng.uniform(0.65, 1.35, 3)


def _sample_params(level: str, rng: np.random.Generator, width: int, height: int,
                   factors: tuple[str, ...]) -> _Params:
    u = rng.uniform
    short = min(width, height)
    if "zoom" in factors:  # a zoomed-in partial view: the object overflows the frame
        p = _Params(size=u(1.3, 1.6) * max(width, height), theta=u(-6, 6), tilt_x=u(-6, 6),
                    tilt_y=u(-6, 6), gain=u(0.85, 1.15), frame=-1.0)
        if "light" in factors:
            p.gain, p.gamma, p.cast = _strong_light(rng)
        return p
    if level == "easy":
        p = _Params(size=u(0.6, 0.98) * short, theta=u(-15, 15), tilt_x=u(-18, 18),
                    tilt_y=u(-18, 18), gain=u(0.85, 1.15), gamma=u(0.9, 1.1))
        if rng.random() < 0.35:
            p.occlusion, p.occ_frac = "side", u(0.08, 0.2)
        return p
    if level == "junk":
        kind = int(rng.integers(3))
        if kind == 0:  # tiny
            return _Params(size=u(0.09, 0.13) * short, theta=u(-30, 30), gain=u(0.7, 1.1))
        if kind == 1:  # nearly all hidden
            return _Params(size=u(0.45, 0.6) * short, theta=u(-20, 20), occlusion="side",
                           occ_frac=u(0.85, 0.92))
        return _Params(size=u(0.18, 0.24) * short, theta=u(-20, 20), tilt_y=u(55, 62),
                       gain=u(0.12, 0.2), gamma=u(1.4, 1.8))
    p = _Params(size=u(0.5, 0.75) * short, theta=u(-20, 20), tilt_x=u(-15, 15),
                tilt_y=u(-15, 15), gain=u(0.8, 1.2))
    for f in factors:
        if f == "small":
            p.size = u(0.27, 0.36) * short
        elif f == "rotation":
            p.theta = float(rng.choice([-1, 1])) * u(45, 180)
        elif f == "tilt":
            p.tilt_y = float(rng.choice([-1, 1])) * u(42, 52)
        elif f == "occlusion":
            if rng.random() < 0.6:
                p.occlusion, p.occ_frac = "band", u(0.22, 0.35)
            else:
                p.occlusion, p.occ_frac = "side", u(0.35, 0.5)
        elif f == "light":
            p.gain, p.gamma, p.cast = _strong_light(rng)
        elif f == "frame":
            p.frame = u(0.25, 0.4)
    return p


def _occluder(quad: np.ndarray, p: _Params, rng: np.random.Generator, width: int,
              height: int) -> tuple[int, int, int, int] | None:
    if p.occlusion == "none":
        return None
    bx1, by1 = quad.min(axis=0)
    bx2, by2 = quad.max(axis=0)
    bw, bh = bx2 - bx1, by2 - by1
    vertical = rng.random() < 0.5  # a vertical bar / a cover from the left or right
    m = rng.uniform(8, 30)
    if p.occlusion == "band":
        if vertical:
            c = bx1 + bw * rng.uniform(0.4, 0.6)
            r = (c - bw * p.occ_frac / 2, by1 - m, c + bw * p.occ_frac / 2, by2 + m)
        else:
            c = by1 + bh * rng.uniform(0.4, 0.6)
            r = (bx1 - m, c - bh * p.occ_frac / 2, bx2 + m, c + bh * p.occ_frac / 2)
    else:
        side = int(rng.integers(4)) if vertical else int(rng.integers(2, 4))
        if side == 0:
            r = (bx1 - m, by1 - m, bx1 + bw * p.occ_frac, by2 + m)
        elif side == 1:
            r = (bx2 - bw * p.occ_frac, by1 - m, bx2 + m, by2 + m)
        elif side == 2:
            r = (bx1 - m, by1 - m, bx2 + m, by1 + bh * p.occ_frac)
        else:
            r = (bx1 - m, by2 - bh * p.occ_frac, bx2 + m, by2 + m)
    x1 = int(np.clip(np.floor(r[0]), 0, width - 1))
    y1 = int(np.clip(np.floor(r[1]), 0, height - 1))
    x2 = int(np.clip(np.ceil(r[2]), 0, width - 1))
    y2 = int(np.clip(np.ceil(r[3]), 0, height - 1))
    return (x1, y1, x2, y2)


def place_object(canvas: np.ndarray, obj: np.ndarray, shape: str, level: str,
                 rng: np.random.Generator, factors: tuple[str, ...] = ()) -> Placement:
    """Paste ``obj`` (uint8 RGB crop) into ``canvas`` (float RGB, modified in place) at a
    random pose for ``level``; returns the exact visible ground truth."""
    height, width = canvas.shape[:2]
    ch, cw = obj.shape[:2]
    img_rect = (0.0, 0.0, width - 1.0, height - 1.0)
    src = outline(cw, ch, "rect")
    best = None
    for _attempt in range(12):
        p = _sample_params(level, rng, width, height, factors)
        quad0 = view_quad(cw, ch, p.size, p.theta, p.tilt_x, p.tilt_y)
        lo, hi = quad0.min(axis=0), quad0.max(axis=0)
        span = hi - lo
        centre = np.empty(2)
        for k, extent in enumerate((width, height)):
            free = extent - 1 - span[k] - 4
            if free > 0:
                centre[k] = 2 - lo[k] + rng.uniform(0, free)
            else:
                centre[k] = (extent - 1) / 2.0 - (lo[k] + hi[k]) / 2.0
        if p.frame < 0:
            extent = np.array([width - 1.0, height - 1.0])
            centre = (extent - lo - hi) / 2.0
            centre += rng.uniform(-0.7, 0.7, 2) * np.maximum(span - extent, 0) / 2.0
        elif p.frame > 0:
            k = int(rng.integers(2))
            extent = (width, height)[k]
            if rng.random() < 0.5:
                centre[k] = -lo[k] - p.frame * span[k]
            else:
                centre[k] = extent - 1 - hi[k] + p.frame * span[k]
        quad = quad0 + centre
        h = homography(src, quad)
        full = apply_h(h, outline(cw, ch, shape))
        occ = _occluder(quad, p, rng, width, height)
        pieces = [clip_rect(full, img_rect)]
        if occ is not None:
            pieces = subtract_rect(pieces[0], occ)
        pieces = [_dedupe(q) for q in pieces if polygon_area(q) >= 4.0]
        pieces = [q for q in pieces if len(q) >= 3]
        vis_area = sum(polygon_area(q) for q in pieces)
        visible = vis_area / max(polygon_area(full), 1e-9)
        ok = {"easy": visible >= 0.72, "hard": 0.3 <= visible, "junk": True}[level]
        ok = ok and (level == "junk" or vis_area >= 0.02 * width * height)
        best = (p, h, occ, pieces, visible, vis_area)
        if ok:
            break
    assert best is not None
    p, h, occ, pieces, visible, vis_area = best
    lit = relight(obj.astype(np.float64) / 255.0, p.gain, p.gamma, p.cast)
    paste(canvas, lit, object_mask(cw, ch, shape), h)
    if occ is not None:
        x1, y1, x2, y2 = occ
        canvas[y1:y2 + 1, x1:x2 + 1] = texture(rng, x2 - x1 + 1, y2 - y1 + 1)
    return Placement(h=h, shapes=pieces, visible=visible, area=vis_area / (width * height),
                     factors=factors)


def add_distractor(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """Paste a random background crop as an unrelated 'object' at a random pose."""
    height, width = canvas.shape[:2]
    short = min(width, height)
    w = int(rng.integers(60, 160))
    h_ = int(rng.integers(60, 160))
    patch = texture(rng, w, h_)
    quad0 = view_quad(w, h_, rng.uniform(0.25, 0.5) * short, rng.uniform(-40, 40),
                      rng.uniform(-25, 25), rng.uniform(-25, 25))
    lo, hi = quad0.min(axis=0), quad0.max(axis=0)
    centre = np.array([rng.uniform(-lo[0], width - 1 - hi[0]),
                       rng.uniform(-lo[1], height - 1 - hi[1])])
    paste(canvas, patch, np.ones((h_, w)), homography(outline(w, h_, "rect"), quad0 + centre))


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A scene without any query object: a background crop plus 0-2 distractors."""
    canvas = texture(rng, width, height)
    for _ in range(int(rng.integers(0, 3))):
        add_distractor(canvas, rng)
    return canvas


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
