"""Polygons -> masks inside a bounding region, boxes, IoU (PROTOCOLS §2, 'IoU of one pair').

Nothing here allocates the official S x S canvas: boxes are intersected analytically and
polygons are rasterised only inside the union of the two shapes' bounding boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def batch_box_ious(preds: list[np.ndarray], gts: list[list[np.ndarray]],
                   canvases: list[Canvas]) -> np.ndarray:
    """Bbox IoU of many pairs: the inclusive boxes of the int prediction and of all
    ground-truth points, clipped to the pair's canvas (PROTOCOLS §2 step 3)."""
    k = len(preds)
    if k == 0:
        return np.zeros(0)
    ps = np.array([len(p) for p in preds])
    pv = np.concatenate(preds)
    gs = np.array([sum(len(g) for g in gl) for gl in gts])
    gv = np.concatenate([g for gl in gts for g in gl])
    w = np.array([c.width for c in canvases])
    h = np.array([c.height for c in canvases])

    def boxes(v: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, ...]:
        first = np.cumsum(sizes) - sizes
        lo = np.minimum.reduceat(v, first, axis=0)
        hi = np.maximum.reduceat(v, first, axis=0)
        x0, y0 = np.maximum(lo[:, 0], 0), np.maximum(lo[:, 1], 0)
        x1, y1 = np.minimum(hi[:, 0], w - 1), np.minimum(hi[:, 1], h - 1)
        return x0, y0, x1, y1

    ax0, ay0, ax1, ay1 = boxes(pv, ps)
    bx0, by0, bx1, by1 = boxes(gv, gs)

    def area(x0, y0, x1, y1):
        return np.maximum(x1 - x0 + 1, 0) * np.maximum(y1 - y0 + 1, 0)

    inter = area(np.maximum(ax0, bx0), np.maximum(ay0, by0), np.minimum(ax1, bx1),
                 np.minimum(ay1, by1))
    union = area(ax0, ay0, ax1, ay1) + area(bx0, by0, bx1, by1) - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


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


def _scanline_fill(pts: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies inside the polygon (even-odd rule), vectorised by scanline.

    For every row y the crossings of the edges with the line through the pixel centres are
    sorted and paired; pixels between a pair are inside. Edges are half-open in y, so a
    vertex is counted once and horizontal edges never cross. Same pixels as
    ``skimage.draw.polygon`` away from the boundary, at a fraction of its cost on large
    polygons (it tests every pixel of the bounding box against every edge).
    """
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    xa, ya = pts[:, 0].astype(np.float64), pts[:, 1].astype(np.float64)
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    ys = np.arange(max(0, int(np.ceil(ya.min()))), min(h, int(np.floor(ya.max())) + 1))
    if ys.size == 0:
        return mask
    yy = ys[:, None].astype(np.float64)
    lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
    active = (yy >= lo) & (yy < hi)
    dy = np.where(yb != ya, yb - ya, 1.0)
    xs = np.where(active, xa + (yy - ya) * (xb - xa) / dy, np.inf)
    xs.sort(axis=1)
    npairs = xs.shape[1] // 2
    starts, ends = xs[:, 0:2 * npairs:2], xs[:, 1:2 * npairs:2]
    valid = np.isfinite(ends)
    if not valid.any():
        return mask
    rows = np.nonzero(valid)[0]
    s = np.clip(np.ceil(starts[valid]), 0, w).astype(np.int64)
    e = np.clip(np.floor(ends[valid]) + 1, 0, w).astype(np.int64)
    keep = s < e
    rows, s, e = rows[keep], s[keep], e[keep]
    size = ys.size * (w + 1)
    diff = (np.bincount(rows * (w + 1) + s, minlength=size)
            - np.bincount(rows * (w + 1) + e, minlength=size)).reshape(ys.size, w + 1)
    mask[ys] = np.cumsum(diff[:, :w], axis=1) > 0
    return mask


def polygon_mask(pts: np.ndarray, origin: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Fill an int polygon ``[[x, y], ...]`` *with its boundary* inside a window.

    The window starts at ``origin = (x0, y0)`` and has ``shape = (rows, cols)``; pixels
    outside it are dropped. Interior: even-odd fill of pixel centres
    (:func:`_scanline_fill`); boundary: :func:`_edge_pixels` (OpenCV ``fillPoly``
    semantics, PROTOCOLS §2 step 4).
    """
    mask = np.zeros(shape, dtype=bool)
    if shape[0] <= 0 or shape[1] <= 0:
        return mask
    x0, y0 = origin
    local = pts - np.array([x0, y0])
    if len(local) >= 3:
        mask |= _scanline_fill(local, shape)
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


# ---------------------------------------------------------------- batched run-length IoU
# A filled polygon's pixel set is kept as sorted disjoint runs [start, end) of integer keys
# plus the boundary pixels outside those runs. Key of pixel (x, y) of pair k:
# ``offset[k] + y * stride[k] + x``, so the pairs' key ranges never overlap and one set of
# numpy calls serves every pair of a whole benchmark. Cost: O(rows + perimeter) per
# polygon, whatever the size of the object or of the canvas.


@dataclass(frozen=True, eq=False)
class _Runs:
    starts: np.ndarray
    ends: np.ndarray
    extra: np.ndarray  # sorted unique keys of boundary pixels outside every run


def _unique(keys: np.ndarray) -> np.ndarray:
    """Sorted unique values (sort-based: numpy 2.4's hash-based np.unique is ~15x slower
    on large int64 keys)."""
    if keys.size == 0:
        return keys
    if keys.min() >= 0 and keys.max() < 2**32:  # half the bytes: sorts twice as fast
        s = np.sort(keys.astype(np.uint32)).astype(np.int64)
    else:
        s = np.sort(keys)
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted disjoint union of runs [starts, ends)."""
    if starts.size == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    cm = np.maximum.accumulate(e)
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    new[1:] = s[1:] > cm[:-1]
    first = np.flatnonzero(new)
    return s[first], np.maximum.reduceat(e, first)


def _inside(keys: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    if starts.size == 0:
        return np.zeros(keys.size, dtype=bool)
    idx = np.searchsorted(starts, keys, side="right") - 1
    ok = idx >= 0
    ok[ok] = keys[ok] < ends[idx[ok]]
    return ok


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts [2, 0, 3]: owner [0, 0, 2, 2, 2] and step [0, 1, 0, 1, 2]."""
    owner = np.repeat(np.arange(counts.size), counts)
    step = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, step


def _polygon_runs(polys: list[np.ndarray], pair_of: np.ndarray, width: np.ndarray,
                  height: np.ndarray, offset: np.ndarray, stride: np.ndarray) -> _Runs:
    """Union, per pair, of int polygons filled with their boundary, clipped to the canvas."""
    empty = np.zeros(0, dtype=np.int64)
    if not polys:
        return _Runs(empty, empty, empty)
    sizes = np.array([len(p) for p in polys], dtype=np.int64)
    v = np.concatenate(polys).astype(np.int64)
    poly = np.repeat(np.arange(len(polys)), sizes)
    first = np.cumsum(sizes) - sizes
    nxt = np.arange(v.shape[0]) + 1
    last = first + sizes - 1
    nxt[last] = first
    a, b = v, v[nxt]
    h = height[pair_of[poly]]

    npoly = len(polys)
    ph, pw = height[pair_of], width[pair_of]
    ppoff, ppst = offset[pair_of], stride[pair_of]

    # rows of each polygon inside the canvas, one "group" per (polygon, row)
    rlo = np.clip(np.minimum.reduceat(v[:, 1], first), 0, ph)
    rhi = np.clip(np.maximum.reduceat(v[:, 1], first) + 1, 0, ph)
    nrows = rhi - rlo
    rbase = np.cumsum(nrows) - nrows
    n_groups = int(nrows.sum())

    # interior: crossings of edges with rows y (half-open in y), polygons of >= 3 vertices
    ya, yb = a[:, 1], b[:, 1]
    lo = np.maximum(np.minimum(ya, yb), 0)
    hi = np.minimum(np.maximum(ya, yb), h)
    c_of, j = _expand(np.where(sizes[poly] >= 3, np.maximum(hi - lo, 0), 0))
    y = lo[c_of] + j
    x = a[c_of, 0] + (y - ya[c_of]) * ((b[c_of, 0] - a[c_of, 0]) / (yb[c_of] - ya[c_of]))
    pc = poly[c_of]
    g = rbase[pc] + (y - rlo[pc])
    cnt = np.bincount(g, minlength=n_groups)
    # rows crossed exactly twice (every row of a convex polygon): one run, from min to max
    xmin = np.full(n_groups, np.inf)
    xmax = np.full(n_groups, -np.inf)
    np.minimum.at(xmin, g, x)
    np.maximum.at(xmax, g, x)
    gpoly = np.repeat(np.arange(npoly), nrows)
    gy = rlo[gpoly] + (np.arange(n_groups) - rbase[gpoly])
    two = np.flatnonzero(cnt == 2)
    gw = pw[gpoly]
    run_s = np.clip(np.ceil(xmin[two]), 0, gw[two]).astype(np.int64)
    run_e = np.clip(np.floor(xmax[two]) + 1, 0, gw[two]).astype(np.int64)
    run_g = two
    # rows crossed 4, 6, ... times (concave shapes): sort those crossings, pair them up
    many = cnt[g] > 2
    if many.any():
        xm, gm = x[many], g[many]
        order = np.lexsort((xm, gm))
        xm, gm = xm[order], gm[order]
        change = np.empty(gm.size, dtype=bool)
        change[0] = True
        change[1:] = gm[1:] != gm[:-1]
        pos = np.arange(gm.size) - np.maximum.accumulate(np.where(change, np.arange(gm.size), 0))
        si = np.flatnonzero(pos % 2 == 0)
        gs = gm[si]
        run_s = np.concatenate([run_s, np.clip(np.ceil(xm[si]), 0, gw[gs]).astype(np.int64)])
        run_e = np.concatenate([run_e, np.clip(np.floor(xm[si + 1]) + 1, 0, gw[gs])
                                .astype(np.int64)])
        run_g = np.concatenate([run_g, gs])
    keep = run_s < run_e
    run_g = run_g[keep]
    base = ppoff[gpoly[run_g]] + gy[run_g] * ppst[gpoly[run_g]]
    starts, ends = _merge(base + run_s[keep], base + run_e[keep])

    single_s = np.zeros(n_groups, dtype=np.int64)
    single_e = np.zeros(n_groups, dtype=np.int64)
    single_s[two] = np.ceil(xmin[two]).clip(-1, None).astype(np.int64)
    single_e[two] = (np.floor(xmax[two]) + 1).astype(np.int64)

    # boundary: DDA along every edge (as _edge_pixels), the last pixel of an edge being the
    # first of the next; pixels inside their own polygon's single-run rows are dropped
    # early, the rest are checked against the merged runs of the whole pair
    d = b - a
    n = np.abs(d).max(axis=1)
    e_of, i = _expand(np.maximum(n, 1))
    nn = np.maximum(n, 1)[e_of].astype(np.float64)
    ex = a[e_of, 0] + np.floor(i * d[e_of, 0] / nn + 0.5).astype(np.int64)
    ey = a[e_of, 1] + np.floor(i * d[e_of, 1] / nn + 0.5).astype(np.int64)
    pp = poly[e_of]
    ge = np.clip((rbase - rlo)[pp] + ey, 0, max(n_groups - 1, 0))
    want = (ex >= 0) & (ex < pw[pp]) & (ey >= 0) & (ey < ph[pp])
    if n_groups:
        want &= (ex < single_s[ge]) | (ex >= single_e[ge])
    # only pixels in rows with several runs, or of pairs with several shapes, can fall
    # inside a run that is not their own polygon's single run: check just those
    shapes_of_pair = np.bincount(pair_of, minlength=int(pair_of.max()) + 1)
    check = (cnt[ge] > 2) if n_groups else np.zeros(ge.size, dtype=bool)
    check |= (shapes_of_pair[pair_of] > 1)[pp]
    keys = ppoff[pp] + ey * ppst[pp] + ex
    extra = _unique(keys[want & ~check])
    kc = _unique(keys[want & check])
    kc = kc[~_inside(kc, starts, ends)]
    if kc.size:
        extra = np.insert(extra, np.searchsorted(extra, kc), kc)
    return _Runs(starts, ends, extra)


_CHUNK = 256


def _per_pair(keys: np.ndarray, weights: np.ndarray | None, offset: np.ndarray) -> np.ndarray:
    pair = np.searchsorted(offset, keys, side="right") - 1
    return np.bincount(pair, weights=weights, minlength=offset.size)


def batch_seg_ious(preds: list[np.ndarray], gts: list[list[np.ndarray]],
                   canvases: list[Canvas]) -> np.ndarray:
    """Seg IoU of many pairs at once: int prediction polygon vs union of int ground-truth
    shapes, both filled with their boundary and clipped to the pair's canvas. Equal, pixel
    for pixel, to :func:`pair_masks` + :func:`mask_iou`; 0 where the union is empty."""
    if len(preds) > _CHUNK:  # bounded temporaries, reused by the allocator chunk after chunk
        return np.concatenate([batch_seg_ious(preds[c:c + _CHUNK], gts[c:c + _CHUNK],
                                              canvases[c:c + _CHUNK])
                               for c in range(0, len(preds), _CHUNK)])
    k = len(preds)
    width = np.array([c.width for c in canvases], dtype=np.int64)
    height = np.array([c.height for c in canvases], dtype=np.int64)
    stride = width + 1
    span = np.maximum(height, 1) * stride
    offset = np.cumsum(span) - span
    pairs = np.arange(k)
    a = _polygon_runs(list(preds), pairs, width, height, offset, stride)
    gpolys = [g for gl in gts for g in gl]
    gpair = np.repeat(pairs, [len(gl) for gl in gts])
    b = _polygon_runs(gpolys, gpair, width, height, offset, stride)

    def area(r: _Runs) -> np.ndarray:
        return (_per_pair(r.starts, (r.ends - r.starts).astype(np.float64), offset)
                + _per_pair(r.extra, None, offset))

    inter = np.zeros(k)
    if a.starts.size and b.starts.size:
        j0 = np.searchsorted(b.ends, a.starts, side="right")
        j1 = np.searchsorted(b.starts, a.ends, side="left")
        ia, step = _expand(np.maximum(j1 - j0, 0))
        jb = j0[ia] + step
        ov = np.minimum(a.ends[ia], b.ends[jb]) - np.maximum(a.starts[ia], b.starts[jb])
        inter += _per_pair(a.starts[ia], np.clip(ov, 0, None).astype(np.float64), offset)
    inter += _per_pair(b.extra[_inside(b.extra, a.starts, a.ends)], None, offset)
    inter += _per_pair(a.extra[_inside(a.extra, b.starts, b.ends)], None, offset)
    if a.extra.size and b.extra.size:
        j = np.minimum(np.searchsorted(b.extra, a.extra), b.extra.size - 1)
        inter += _per_pair(a.extra[b.extra[j] == a.extra], None, offset)
    union = area(a) + area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
