"""The two baseline methods, run on the demo's JPEG files like any retrieval method.

``global-hist`` (global descriptor): a colour histogram (joint HSV, 12 x 4 x 4 bins) and
a gradient-orientation histogram (12 unsigned orientations on a 2 x 2 grid), each
Hellinger-mapped and L2-normalised, concatenated, L2-normalised; the query descriptor
is taken from its bounding box. Ranking by cosine similarity; its pixel prediction is
the whole database image, since a global descriptor cannot say where the object is.

``local-sp`` (local features + spatial verification): ORB keypoints and binary
descriptors (scikit-image) inside the query box and over each database image, mutual
nearest neighbours under a ratio test, RANSAC homography (``skimage.measure.ransac``
with ``ProjectiveTransform``, ``rng=0``). Ranking by inlier count (only when at least
``MIN_INLIERS``), ties and unverified images ordered by the global score; its pixel
prediction is the query box mapped through the homography, clipped to the image.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.feature import ORB
from skimage.measure import ransac
from skimage.transform import ProjectiveTransform

from bench.demo.synth import apply_h, clip_rect, polygon_area

Progress = Callable[[float, str], None]

MIN_INLIERS = 10  # a homography with fewer inliers is not trusted (negatives reach ~4-5)
RATIO = 0.8  # Lowe's ratio test on Hamming distances
MAX_HAMMING = 80  # of 256 bits
RESIDUAL = 4.0  # RANSAC inlier threshold, pixels
THUMB = 160  # long side of the image the global descriptor is computed on


def load_rgb(path: Path, box: Sequence[float] | None = None) -> np.ndarray:
    """RGB uint8 array of a JPEG, optionally cropped to ``box`` = [x1, y1, x2, y2]."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if box is not None:
            im = im.crop(tuple(int(round(v)) for v in box))
        return np.asarray(im)


# --------------------------------------------------------------------------- global


def global_descriptor(img: np.ndarray) -> np.ndarray:
    """Colour + gradient histogram descriptor of an RGB uint8 image (float32, unit L2)."""
    pil = Image.fromarray(img)
    scale = THUMB / max(pil.size)
    if scale < 1:
        pil = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))),
                         Image.Resampling.BILINEAR, reducing_gap=2.0)
    hsv = np.asarray(pil.convert("HSV")).astype(np.int64)
    hb = hsv[:, :, 0] * 12 // 256
    sb = hsv[:, :, 1] * 4 // 256
    vb = hsv[:, :, 2] * 4 // 256
    colour = np.bincount((hb * 16 + sb * 4 + vb).ravel(), minlength=192).astype(np.float64)

    gray = np.asarray(pil.convert("L"), dtype=np.float64) / 255.0
    gy, gx = np.gradient(gray)
    mag = np.hypot(gx, gy)
    ori = (np.arctan2(gy, gx) % np.pi) / np.pi * 12
    ob = np.minimum(ori.astype(np.int64), 11)
    h, w = gray.shape
    cell = (np.arange(h)[:, None] * 2 // h) * 2 + (np.arange(w)[None, :] * 2 // w)
    grad = np.bincount((cell * 12 + ob).ravel(), weights=mag.ravel(), minlength=48)

    parts = []
    for vec, weight in ((colour, 1.0), (grad, 0.8)):
        v = np.sqrt(vec / max(vec.sum(), 1e-12))
        parts.append(weight * v / max(np.linalg.norm(v), 1e-12))
    d = np.concatenate(parts)
    return (d / np.linalg.norm(d)).astype(np.float32)


def whole_image_box(width: int, height: int) -> np.ndarray:
    return np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]],
                    dtype=np.float64)


# --------------------------------------------------------------------------- local


@dataclass(frozen=True)
class Features:
    xy: np.ndarray  # (n, 2) float, [x, y] in the full image
    bits: np.ndarray  # (n, 256) float32 of 0/1


def orb_features(img: np.ndarray, box: Sequence[float] | None = None,
                 n_keypoints: int = 500) -> Features:
    """ORB keypoints (as [x, y]) and descriptors of ``img``, inside ``box`` if given.

    With a box the detector runs on the box plus a 16 px margin, then keeps the
    keypoints inside the box (the rest of a query image is not the query)."""
    gray = np.asarray(Image.fromarray(img).convert("L"), dtype=np.float64) / 255.0
    ox = oy = 0
    if box is not None:
        x1, y1, x2, y2 = box
        ox, oy = max(0, int(x1) - 16), max(0, int(y1) - 16)
        gray = gray[oy:min(gray.shape[0], int(np.ceil(y2)) + 16),
                    ox:min(gray.shape[1], int(np.ceil(x2)) + 16)]
    lo, hi = np.percentile(gray, [1, 99]) if gray.size else (0.0, 1.0)
    gray = np.clip((gray - lo) / max(hi - lo, 1e-3), 0.0, 1.0)  # contrast stretch
    orb = ORB(n_keypoints=n_keypoints, fast_threshold=0.05, n_scales=6, downscale=1.3)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            orb.detect_and_extract(gray)
        kp, desc = orb.keypoints, orb.descriptors
    except (RuntimeError, ValueError, IndexError):
        kp, desc = np.zeros((0, 2)), np.zeros((0, 256), dtype=bool)
    xy = np.stack([kp[:, 1] + ox, kp[:, 0] + oy], axis=1) if len(kp) else np.zeros((0, 2))
    if box is not None and len(xy):
        x1, y1, x2, y2 = box
        keep = (xy[:, 0] >= x1) & (xy[:, 0] <= x2) & (xy[:, 1] >= y1) & (xy[:, 1] <= y2)
        xy, desc = xy[keep], desc[keep]
    return Features(xy=xy.astype(np.float64), bits=np.asarray(desc, dtype=np.float32))


def match(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest neighbours passing the ratio test, from a Hamming distance matrix
    (query features x database features). Returns index arrays (query, database)."""
    if dist.shape[0] < 2 or dist.shape[1] < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows = np.arange(dist.shape[0])
    nn = np.argmin(dist, axis=1)
    back = np.argmin(dist, axis=0)
    d1 = dist[rows, nn]
    masked = dist.copy()
    masked[rows, nn] = np.inf
    d2 = masked.min(axis=1)
    ok = (d1 <= MAX_HAMMING) & (d1 < RATIO * d2) & (back[nn] == rows)
    return rows[ok], nn[ok]


def _convex(quad: np.ndarray) -> bool:
    d = np.roll(quad, -1, axis=0) - quad
    cross = d[:, 0] * np.roll(d[:, 1], -1) - d[:, 1] * np.roll(d[:, 0], -1)
    return bool(np.all(cross > 0) or np.all(cross < 0))


def verify(q: Features, d: Features, dist: np.ndarray, box: Sequence[float]
           ) -> tuple[int, np.ndarray | None]:
    """RANSAC homography between matched keypoints; returns (inliers, mapped box) or
    (0, None) when there is no plausible homography."""
    qi, di = match(dist)
    if len(qi) < MIN_INLIERS:
        return 0, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, inliers = ransac((q.xy[qi], d.xy[di]), ProjectiveTransform, min_samples=4,
                                residual_threshold=RESIDUAL, max_trials=300,
                                stop_probability=0.995, rng=0)
    if not model or inliers is None:
        return 0, None
    n = int(inliers.sum())
    x1, y1, x2, y2 = box
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)
    quad = apply_h(model.params, corners)
    if not np.all(np.isfinite(quad)) or not _convex(quad):
        return 0, None
    ratio = polygon_area(quad) / max(polygon_area(corners), 1.0)
    if not 1 / 150 < ratio < 6:
        return 0, None
    return n, quad


# --------------------------------------------------------------------------- methods


@dataclass
class MethodResult:
    ranks: np.ndarray  # (n_db, n_queries) int64
    matches: dict[str, np.ndarray | list]
    scores: np.ndarray  # (n_db, n_queries)


def _rank(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, axis=0, kind="stable").astype(np.int64)


def run_global_hist(q_desc: np.ndarray, db_desc: np.ndarray,
                    db_sizes: Sequence[tuple[int, int]]) -> MethodResult:
    """Cosine ranking; the prediction for every pair is the whole database image."""
    scores = db_desc.astype(np.float64) @ q_desc.astype(np.float64).T
    boxes = [whole_image_box(w, h) for w, h in db_sizes]
    matches: dict[str, np.ndarray | list] = {
        f"qimlist_{q}_imlist_{i}": boxes[i]
        for q in range(q_desc.shape[0]) for i in range(db_desc.shape[0])}
    return MethodResult(ranks=_rank(scores), matches=matches, scores=scores)


def extract_all(images: Sequence[np.ndarray], boxes: Sequence[Sequence[float] | None],
                progress: Progress | None = None, start: float = 0.0, stop: float = 1.0,
                ) -> list[Features]:
    """ORB features of many images on a small thread pool (results in input order)."""
    workers = max(1, min(2, os.cpu_count() or 1))
    out: list[Features] = []
    with ThreadPoolExecutor(workers) as pool:
        for k, f in enumerate(pool.map(orb_features, images, boxes)):
            out.append(f)
            if progress is not None and (k % 4 == 0 or k == len(images) - 1):
                progress(start + (stop - start) * (k + 1) / len(images),
                         f"local features {k + 1}/{len(images)}")
    return out


def run_local_sp(q_feats: Sequence[Features], db_feats: Sequence[Features],
                 boxes: Sequence[Sequence[float]], db_sizes: Sequence[tuple[int, int]],
                 global_scores: np.ndarray, progress: Progress | None = None,
                 start: float = 0.0, stop: float = 1.0) -> MethodResult:
    """Spatial verification of every (query, database image) pair."""
    n_q, n_db = len(q_feats), len(db_feats)
    inliers = np.zeros((n_db, n_q))
    matches: dict[str, np.ndarray | list] = {}
    qbits = np.concatenate([f.bits for f in q_feats]) if n_q else np.zeros((0, 256))
    qpop = qbits.sum(axis=1)
    offsets = np.cumsum([0] + [len(f.bits) for f in q_feats])
    for i, d in enumerate(db_feats):
        w, h = db_sizes[i]
        if len(d.bits):
            dist = qpop[:, None] + d.bits.sum(axis=1)[None, :] - 2.0 * (qbits @ d.bits.T)
        for q in range(n_q):
            if not len(d.bits):
                continue
            n, quad = verify(q_feats[q], d, dist[offsets[q]:offsets[q + 1]], boxes[q])
            if quad is None or n < MIN_INLIERS:
                continue
            poly = clip_rect(quad, (0.0, 0.0, w - 1.0, h - 1.0))
            if len(poly) < 3 or polygon_area(poly) < 1.0:
                continue
            inliers[i, q] = n
            matches[f"qimlist_{q}_imlist_{i}"] = np.round(poly, 2)
        if progress is not None and (i % 4 == 0 or i == n_db - 1):
            progress(start + (stop - start) * (i + 1) / n_db,
                     f"spatial verification {i + 1}/{n_db}")
    scores = inliers + global_scores  # cosine in [0, 1] only breaks ties
    return MethodResult(ranks=_rank(scores), matches=matches, scores=scores)
