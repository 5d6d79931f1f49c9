"""Polygons -> pixel sets, boxes, IoU (docs/PROTOCOLS.md §2, 'IoU of one pair').

Seg IoU is bit-equal to the released PROxford code, which draws each polygon with
``cv2.fillPoly(mask, pts=[contour], color=(255, 255, 255))`` (default
``lineType=LINE_8``, ``shift=0``) on a zero S x S canvas and takes the ground truth as
the union of its shapes. This module re-implements that call's integer arithmetic
(OpenCV's ``CollectPolyEdges`` + ``FillEdgeCollection``, imgproc/src/drawing.cpp) with
numpy, for every pair of a benchmark at once, without allocating any canvas:

1. **Edges are drawn** as 8-connected Bresenham lines (``LineIterator``, walked from the
   endpoint with the smaller x; exact halves round back toward it). A line leaving the
   canvas is first cut by ``clipLine`` (integer endpoints, offsets computed in float64
   and truncated toward zero, the second endpoint using the already-moved first one);
   the line between the cut endpoints is drawn, or nothing when it misses the canvas.
2. **The interior** is filled scanline by scanline with the even-odd rule: every
   non-horizontal edge is active on rows ``y0 <= y < y1`` and crosses row y at the
   16-bit fixed-point x ``x_start + (y - y0) * dx``, ``dx`` being the fixed-point slope
   divided with truncation toward zero. Crossings sorted per row are paired and the
   pixels ``ceil(a) .. floor(b)`` of each pair are set. An edge cut in step 1 takes its
   slope and start from the cut integer endpoints (OpenCV's "clipped endpoints" rule),
   so a polygon leaving the canvas fills as OpenCV fills it on that canvas.

Everything is integer except the float64 offsets of ``clipLine``, computed with the same
IEEE operations as OpenCV's C++ code. OpenCV versions differ here: 4.11, 4.12 and 5.0
draw exactly these pixels; 4.7 fills cut edges from the uncut endpoints (this module
without the rule of step 2 equals 4.7), so it differs only on polygons that leave the
canvas (on the official canvas: those with a point at coordinate S); 4.8 to 4.10 draw
some line pixels differently even inside the canvas (the thin triangle of
tests/test_geometry.py gets 10 pixels there, 8 here). ``tests/test_geometry_opencv.py``
compares every mask and every IoU with the installed ``cv2.fillPoly``, with equality.

Bounded work: rows outside the canvas are never visited and lines are cut to the canvas,
so one polygon costs O(canvas rows it covers + rows of its edges) whatever its
coordinates (``_work``). Canvases wider or taller than :data:`MAX_CANVAS_SIDE` and pairs
above :data:`MAX_PAIR_WORK` are refused (:class:`CanvasTooLarge`, :func:`seg_refusals`);
pairs are processed in chunks of bounded total work, so a whole run's memory is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_CANVAS_SIDE = 2**15
"""Largest canvas width or height (px) a seg IoU is computed on (32,768: 32x the largest
PROxford / PRParis image side). A larger canvas means coordinates far outside any image."""

MAX_PAIR_WORK = 2**22
"""Largest rasterisation work of one pair (about 4.2 million): one unit per canvas row
of each polygon plus two per canvas row of each edge. A 1024 px image with 100-vertex
shapes needs about 10^4, a 100-vertex shape covering a full 32,768 px canvas about
2 x 10^5; a polygon zig-zagging 16 times over that canvas reaches the cap. Memory is
about 60 bytes per unit, so one pair (and one chunk of pairs) stays under ~300 MB."""

_CHUNK_WORK = 2**22  # work per batch of pairs (temporaries are reused chunk after chunk)
_CHUNK_PAIRS = 256
_MAX_WINDOW_PIXELS = 2**26  # explicit masks (pair_masks / polygon_mask): 64 MB per mask

_XY_SHIFT = 16  # OpenCV's fixed point: x is stored as x * 2**16
_XY_ONE = 1 << _XY_SHIFT


class CanvasTooLarge(ValueError):
    """A pair whose seg IoU is refused: its canvas or its rasterisation work is above the
    documented caps (:data:`MAX_CANVAS_SIDE`, :data:`MAX_PAIR_WORK`). ``index`` is the
    position of the pair in the batch (``None`` for a single pair); ``str(err)`` says why.
    Callers treat it as a malformed pair (a warning, the pair counts as not predicted)."""

    def __init__(self, why: str, index: int | None = None):
        self.why = why
        self.index = index
        super().__init__(why if index is None else f"pair {index}: {why}")


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
    ground-truth points, clipped to the pair's canvas (docs/PROTOCOLS.md §2 step 3)."""
    k = len(preds)
    if k == 0:
        return np.zeros(0)
    ps = np.array([len(p) for p in preds])
    pv = np.concatenate(preds)
    gs = np.array([sum(len(g) for g in gl) for gl in gts])
    gv = np.concatenate([g for gl in gts for g in gl])
    w, h = _sides(canvases)

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


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """|a and b| / |a or b|, 0 when the union is empty."""
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a) + np.count_nonzero(b) - inter
    return float(inter / union) if union > 0 else 0.0


def _sides(canvases: list[Canvas]) -> tuple[np.ndarray, np.ndarray]:
    """Widths and heights as int64, clamped to +-2**40 (a hostile size such as 1e30 does
    not overflow; coordinates are within +-2**20, so the clamp changes no pixel)."""
    lim = 2**40
    w = np.array([max(min(int(c.width), lim), -lim) for c in canvases], dtype=np.int64)
    h = np.array([max(min(int(c.height), lim), -lim) for c in canvases], dtype=np.int64)
    return w, h


# ------------------------------------------------------------------ OpenCV's arithmetic


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts [2, 0, 3]: owner [0, 0, 2, 2, 2] and step [0, 1, 0, 1, 2]."""
    counts = counts.astype(np.int64, copy=False)
    owner = np.repeat(np.arange(counts.size), counts)
    step = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts,
                                                                      counts)
    return owner, step


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncated toward zero (C's ``/`` on int64); ``b`` is never 0."""
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def _clip_lines(w: np.ndarray, h: np.ndarray, x1: np.ndarray, y1: np.ndarray,
                x2: np.ndarray, y2: np.ndarray) -> tuple[np.ndarray, ...]:
    """OpenCV's ``clipLine(Size2l, Point2l&, Point2l&)`` on many segments.

    Returns the (possibly moved) endpoints and whether the segment meets the canvas.
    Like OpenCV, endpoints may be moved even when the answer is "does not meet".
    """
    x1, y1, x2, y2 = (np.array(a, dtype=np.int64) for a in (x1, y1, x2, y2))
    right, bottom = w - 1, h - 1

    def code(x, y):
        return ((x < 0) * 1 + (x > right) * 2 + (y < 0) * 4 + (y > bottom) * 8).astype(np.int64)

    def offset(a, b, c):  # (int64)((double)a * b / c), C's evaluation order
        return np.trunc(a.astype(np.float64) * b.astype(np.float64)
                        / c.astype(np.float64)).astype(np.int64)

    valid = (w > 0) & (h > 0)
    c1, c2 = code(x1, y1), code(x2, y2)
    act = valid & ((c1 & c2) == 0) & ((c1 | c2) != 0)
    i = np.flatnonzero(act & ((c1 & 12) != 0))
    if i.size:
        a = np.where(c1[i] < 8, 0, bottom[i])
        x1[i] += offset(a - y1[i], x2[i] - x1[i], y2[i] - y1[i])
        y1[i] = a
        c1[i] = (x1[i] < 0) * 1 + (x1[i] > right[i]) * 2
    i = np.flatnonzero(act & ((c2 & 12) != 0))
    if i.size:
        a = np.where(c2[i] < 8, 0, bottom[i])
        x2[i] += offset(a - y2[i], x2[i] - x1[i], y2[i] - y1[i])
        y2[i] = a
        c2[i] = (x2[i] < 0) * 1 + (x2[i] > right[i]) * 2
    act &= ((c1 & c2) == 0) & ((c1 | c2) != 0)
    i = np.flatnonzero(act & (c1 != 0))
    if i.size:
        a = np.where(c1[i] == 1, 0, right[i])
        y1[i] += offset(a - x1[i], y2[i] - y1[i], x2[i] - x1[i])
        x1[i] = a
        c1[i] = 0
    i = np.flatnonzero(act & (c2 != 0))
    if i.size:
        a = np.where(c2[i] == 1, 0, right[i])
        y2[i] += offset(a - x2[i], y2[i] - y1[i], x2[i] - x1[i])
        x2[i] = a
        c2[i] = 0
    return x1, y1, x2, y2, valid & ((c1 | c2) == 0)


@dataclass(frozen=True, eq=False)
class _Edges:
    """Vertices of many polygons as edges: edge e runs from vertex ``prev[e]`` to vertex e."""

    poly: np.ndarray  # polygon of each edge
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray


def _edges(polys: list[np.ndarray]) -> _Edges:
    sizes = np.array([len(p) for p in polys], dtype=np.int64)
    nonempty = [np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in polys if len(p)]
    v = np.concatenate(nonempty) if nonempty else np.zeros((0, 2), dtype=np.int64)
    poly = np.repeat(np.arange(len(polys)), sizes)
    first = np.cumsum(sizes) - sizes
    prev = np.arange(v.shape[0]) - 1
    has = sizes > 0
    prev[first[has]] = (first + sizes - 1)[has]  # the closing edge: last vertex -> first
    return _Edges(poly, v[prev, 0], v[prev, 1], v[:, 0], v[:, 1])


def _work(e: _Edges, h: np.ndarray, n_polys: int) -> np.ndarray:
    """Rasterisation work of each polygon, an upper bound of the items
    :func:`_fill_polys` creates for it: one per canvas row of the polygon (its row
    groups) plus two per canvas row of each edge (the edge's crossing and its line run)."""
    if e.poly.size == 0:
        return np.zeros(n_polys, dtype=np.int64)
    he = h[e.poly]
    rows = np.clip(np.minimum(np.maximum(e.y0, e.y1), he - 1) - np.maximum(np.minimum(e.y0, e.y1), 0)
                   + 1, 0, None)
    first = np.flatnonzero(np.r_[True, e.poly[1:] != e.poly[:-1]])
    owner = e.poly[first]
    ylo = np.minimum.reduceat(e.y1, first)
    yhi = np.maximum.reduceat(e.y1, first)
    poly_rows = np.clip(np.minimum(yhi, h[owner] - 1) - np.maximum(ylo, 0) + 1, 0, None)
    out = np.bincount(e.poly, weights=(2 * rows + 1).astype(np.float64), minlength=n_polys)
    out[owner] += poly_rows
    return out.astype(np.int64)


@dataclass(frozen=True, eq=False)
class _Runs:
    """A pixel set as sorted disjoint runs [start, end) of integer keys. Key of pixel
    (x, y) of pair k: ``offset[k] + y * stride[k] + x`` (stride = width + 1, so runs of
    consecutive rows never touch and pairs never overlap)."""

    starts: np.ndarray
    ends: np.ndarray


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted disjoint union of runs [starts, ends); touching runs are joined.

    The stable sort is near-linear on the almost sorted input it gets here."""
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


def _line_runs(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of OpenCV's 8-connected ``LineIterator`` from (x1, y1) to (x2, y2), both
    ends included, as one horizontal run per segment and row: (owner segment, y, first x,
    last x).

    The walk starts at the endpoint with the smaller x (the first one when the x are
    equal), steps one pixel along the major axis and moves the minor axis when the
    Bresenham error goes negative. In closed form: at major step j of D, the minor offset
    is ``ceil((2 j d - D) / 2D)`` (d = minor extent), so exact halves round back toward
    the start. A flat segment (|dx| >= |dy| = d > 0, D = |dx|) puts step j on row offset
    ``ceil((2 j d - D) / 2D)``, so row offset k holds the steps
    ``floor((2 D k - D) / 2d) + 1 .. floor((2 D k + D) / 2d)``; a steep one has one
    pixel per row.
    """
    flip = x2 < x1
    sx, sy = np.where(flip, x2, x1), np.where(flip, y2, y1)
    adx = np.abs(x2 - x1)
    ddy = np.where(flip, y1 - y2, y2 - y1)
    sgn = np.where(ddy < 0, -1, 1)
    ady = np.abs(ddy)
    out = []
    for steep in (True, False):
        seg = np.flatnonzero((ady > adx) == steep)
        n = ady[seg] + 1
        owner = np.repeat(seg, n)
        k = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        ys = np.repeat(sy[seg], n) + np.repeat(sgn[seg], n) * k
        a, d, base = np.repeat(adx[seg], n), np.repeat(ady[seg], n), np.repeat(sx[seg], n)
        if steep:  # D = ady: one pixel at x offset ceil((2 k adx - ady) / 2 ady)
            lo = base - ((d - 2 * k * a) // (2 * d))
            hi = lo
        else:  # D = adx, d = ady (all on one row when d = 0)
            flat = d == 0
            dd = 2 * np.maximum(d, 1)
            ak = 2 * a * k
            lo = base + np.where(flat, 0, np.maximum((ak - a) // dd + 1, 0))
            hi = base + np.where(flat, a, np.minimum((ak + a) // dd, a))
        out.append((owner, ys, lo, hi))
    return tuple(np.concatenate([o[i] for o in out]) for i in range(4))


def _fill_polys(polys: list[np.ndarray], pair_of: np.ndarray, width: np.ndarray,
                height: np.ndarray, offset: np.ndarray, stride: np.ndarray,
                row_lo: np.ndarray | None = None, row_hi: np.ndarray | None = None) -> _Runs:
    """Per pair, the union of ``cv2.fillPoly(canvas, [poly], 1)`` over its polygons.

    Canvas of pair k: ``width[k] x height[k]``. Only rows ``row_lo[k] <= y < row_hi[k]``
    are returned (default: all rows of the canvas).

    Each (polygon, row) is a "group". A row crossed by exactly two fill edges (every
    row of a convex polygon) has one fill span; when every line run of that row touches
    it, the group is one interval [min, max], found by scatter-min/max without sorting.
    The other groups (concave rows, rows where lines stick out) are merged by sorting.
    """
    empty = np.zeros(0, dtype=np.int64)
    if not polys:
        return _Runs(empty, empty)
    e = _edges(polys)
    if e.poly.size == 0:
        return _Runs(empty, empty)
    n_polys = len(polys)
    pp = pair_of  # pair of each polygon
    pe = pp[e.poly]
    w, h = width[pe], height[pe]
    lo_row = np.zeros(len(width), dtype=np.int64) if row_lo is None else row_lo
    hi_row = height if row_hi is None else np.minimum(row_hi, height)

    # groups: rows of each polygon between its lowest and highest vertex, inside the
    # canvas and the requested rows
    has = np.bincount(e.poly, minlength=n_polys) > 0
    firsts = np.flatnonzero(np.r_[True, e.poly[1:] != e.poly[:-1]])
    vy_lo = np.zeros(n_polys, dtype=np.int64)
    vy_hi = np.zeros(n_polys, dtype=np.int64)
    vy_lo[e.poly[firsts]] = np.minimum.reduceat(e.y1, firsts)
    vy_hi[e.poly[firsts]] = np.maximum.reduceat(e.y1, firsts) + 1
    glo = np.maximum(vy_lo, lo_row[pp])
    ghi = np.minimum(vy_hi, hi_row[pp])
    nrows = np.where(has, np.maximum(ghi - glo, 0), 0)
    gbase = np.cumsum(nrows) - nrows
    n_groups = int(nrows.sum())
    if n_groups == 0:
        return _Runs(empty, empty)
    gpoly = np.repeat(np.arange(n_polys), nrows)
    gy = glo[gpoly] + (np.arange(n_groups) - gbase[gpoly])
    gpair = pp[gpoly]
    gw = width[gpair]

    # 1. edge lines (LineIterator), cut to the canvas first when an end lies outside
    cx0, cy0, cx1, cy1, visible = _clip_lines(w, h, e.x0, e.y0, e.x1, e.y1)
    vis = np.flatnonzero(visible)
    lown, ly, la, lb = _line_runs(cx0[vis], cy0[vis], cx1[vis], cy1[vis])
    lpoly = e.poly[vis][lown]
    ok = (ly >= glo[lpoly]) & (ly < ghi[lpoly])
    lpoly, la, lb = lpoly[ok], la[ok], lb[ok]
    lg = gbase[lpoly] + (ly[ok] - glo[lpoly])

    # 2. fill edges (CollectPolyEdges): the non-horizontal edges; a cut edge takes its
    # slope and start from the cut integer endpoints (as long as the cut keeps 2 rows)
    nh = np.flatnonzero(e.y0 != e.y1)
    y0, y1 = e.y0[nh], e.y1[nh]
    t0y, t1y = cy0[nh], cy1[nh]
    same = t0y == t1y
    c0y, c1y = np.where(same, y0, t0y), np.where(same, y1, t1y)
    c0x, c1x = cx0[nh] << _XY_SHIFT, cx1[nh] << _XY_SHIFT
    dx = _trunc_div(c1x - c0x, c1y - c0y)
    down = y0 < y1
    ey0 = np.where(down, y0, y1)
    ey1 = np.where(down, y1, y0)
    ex = np.where(down, c0x + (y0 - c0y) * dx, c1x + (y1 - c1y) * dx)
    epoly = e.poly[nh]
    # FillEdgeCollection draws nothing for a polygon with fewer than two such edges
    keep = np.bincount(epoly, minlength=n_polys)[epoly] >= 2
    ey0, ey1, ex, dx, epoly = ey0[keep], ey1[keep], ex[keep], dx[keep], epoly[keep]

    # 3. crossings with the rows each edge spans (y0 <= y < y1): x in 16-bit fixed point
    r0 = np.maximum(ey0, glo[epoly])
    n_cross = np.maximum(np.minimum(ey1, ghi[epoly]) - r0, 0)
    first = np.cumsum(n_cross) - n_cross
    j = np.arange(int(n_cross.sum()), dtype=np.int64)
    # per crossing: row y = r0 + step, x = ex + (y - ey0) dx, group = gbase + y - glo
    cy = j + np.repeat(r0 - first, n_cross)
    cx = np.repeat(ex - ey0 * dx, n_cross) + cy * np.repeat(dx, n_cross)
    cg = cy + np.repeat((gbase - glo)[epoly], n_cross)
    cnt = np.bincount(cg, minlength=n_groups)
    big = np.iinfo(np.int64).max
    xa = np.full(n_groups, big)
    xb = np.full(n_groups, -big)
    np.minimum.at(xa, cg, cx)
    np.maximum.at(xb, cg, cx)

    def span(a, b, wa):  # pixels ceil(a) .. floor(b) of a crossing pair, cut to the row
        s = np.maximum((a + (_XY_ONE - 1)) >> _XY_SHIFT, 0)
        t = np.minimum(b >> _XY_SHIFT, wa - 1)
        return s, t

    two = cnt == 2
    ss, se = span(np.where(two, xa, 0), np.where(two, xb, -1), gw)
    has_span = two & (ss <= se)

    # 4. rows with one fill span and line runs that all touch it: one interval
    touch = has_span[lg] & (la <= se[lg] + 1) & (lb >= ss[lg] - 1)
    n_lines = np.bincount(lg, minlength=n_groups)
    n_touch = np.bincount(lg, weights=touch, minlength=n_groups)
    lone_line = (cnt == 0) & (n_lines == 1)
    simple = (has_span & (n_touch == n_lines)) | lone_line | (two & ~has_span & (n_lines == 0))
    lo_x = np.where(has_span, ss, big)
    hi_x = np.where(has_span, se, -big)
    np.minimum.at(lo_x, lg, la)
    np.maximum.at(hi_x, lg, lb)
    sg = np.flatnonzero(simple & (lo_x <= hi_x))
    gkey = offset[gpair] + gy * stride[gpair]
    parts_s = [gkey[sg] + lo_x[sg]]
    parts_e = [gkey[sg] + hi_x[sg] + 1]

    # 5. the other groups: their fill spans and line runs, merged by sorting
    cplx = ~simple
    sel = np.flatnonzero(cplx[lg])
    parts_s.append(gkey[lg[sel]] + la[sel])
    parts_e.append(gkey[lg[sel]] + lb[sel] + 1)
    g2 = np.flatnonzero(cplx & has_span)
    parts_s.append(gkey[g2] + ss[g2])
    parts_e.append(gkey[g2] + se[g2] + 1)
    many = np.flatnonzero(cplx[cg] & (cnt[cg] > 2))
    if many.size:
        mx, mg = cx[many], cg[many]
        order = np.argsort(mx, kind="stable")
        order = order[np.argsort(mg[order], kind="stable")]
        mx, mg = mx[order], mg[order]
        a, b, ga = mx[0::2], mx[1::2], mg[0::2]  # even count per group
        s, t = span(a, b, gw[ga])
        ok = s <= t
        parts_s.append(gkey[ga[ok]] + s[ok])
        parts_e.append(gkey[ga[ok]] + t[ok] + 1)
    starts, ends = _merge(np.concatenate(parts_s), np.concatenate(parts_e))
    return _Runs(starts, ends)


# ------------------------------------------------------------------ refusals and chunks


def _pair_work(preds: list[np.ndarray], gts: list[list[np.ndarray]],
               canvases: list[Canvas]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width, height = _sides(canvases)
    polys = list(preds) + [g for gl in gts for g in gl]
    pair_of = np.concatenate([np.arange(len(preds)),
                              np.repeat(np.arange(len(gts)), [len(gl) for gl in gts])]
                             ).astype(np.int64)
    e = _edges(polys)
    per_poly = _work(e, height[pair_of], len(polys))
    work = np.bincount(pair_of, weights=per_poly.astype(np.float64), minlength=len(preds))
    return work.astype(np.int64), width, height


def _refusal(width: int, height: int, work: int) -> str | None:
    if width > MAX_CANVAS_SIDE or height > MAX_CANVAS_SIDE:
        return (f"the canvas is {width} x {height} px, above the {MAX_CANVAS_SIDE} px limit "
                "(coordinates far outside any image)")
    if work > MAX_PAIR_WORK:
        return (f"the polygons need {work} rasterisation steps on their canvas, above the "
                f"limit of {MAX_PAIR_WORK}")
    return None


def seg_refusals(preds: list[np.ndarray], gts: list[list[np.ndarray]],
                 canvases: list[Canvas]) -> dict[int, str]:
    """Pairs :func:`batch_seg_ious` refuses, as ``{index: reason}`` (empty when all pass).

    Same arguments as :func:`batch_seg_ious`. Callers drop those pairs with a warning.
    """
    if not preds:
        return {}
    work, width, height = _pair_work(preds, gts, canvases)
    bad = np.flatnonzero((width > MAX_CANVAS_SIDE) | (height > MAX_CANVAS_SIDE)
                         | (work > MAX_PAIR_WORK))
    return {int(k): _refusal(int(canvases[k].width), int(canvases[k].height), int(work[k]))
            for k in bad}


def batch_seg_ious(preds: list[np.ndarray], gts: list[list[np.ndarray]],
                   canvases: list[Canvas]) -> np.ndarray:
    """Seg IoU of many pairs at once: int prediction polygon vs union of int ground-truth
    shapes, each filled as ``cv2.fillPoly`` fills it on the pair's canvas (§2 step 4);
    0 where the union is empty. Equal, pixel for pixel, to :func:`pair_masks` +
    :func:`mask_iou`.

    Raises :class:`CanvasTooLarge` (a ValueError) for the first pair above the caps;
    call :func:`seg_refusals` first to drop such pairs.
    """
    k = len(preds)
    if k == 0:
        return np.zeros(0)
    work, width, height = _pair_work(preds, gts, canvases)
    for i in np.flatnonzero((width > MAX_CANVAS_SIDE) | (height > MAX_CANVAS_SIDE)
                            | (work > MAX_PAIR_WORK))[:1]:
        raise CanvasTooLarge(_refusal(int(canvases[i].width), int(canvases[i].height),
                                      int(work[i])), int(i))
    out = np.empty(k)
    c0 = 0
    cum = np.cumsum(work)
    while c0 < k:
        # as many pairs as fit in the chunk budget (at least one)
        budget_end = np.searchsorted(cum, (cum[c0 - 1] if c0 else 0) + _CHUNK_WORK, side="right")
        c1 = int(min(max(budget_end, c0 + 1), c0 + _CHUNK_PAIRS, k))
        out[c0:c1] = _seg_ious_chunk(preds[c0:c1], gts[c0:c1], width[c0:c1], height[c0:c1])
        c0 = c1
    return out


def _per_pair(keys: np.ndarray, weights: np.ndarray | None, offset: np.ndarray) -> np.ndarray:
    pair = np.searchsorted(offset, keys, side="right") - 1
    return np.bincount(pair, weights=weights, minlength=offset.size)


def _seg_ious_chunk(preds, gts, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    k = len(preds)
    stride = np.maximum(width, 0) + 1
    span = np.maximum(height, 1) * stride
    offset = np.cumsum(span) - span
    pairs = np.arange(k)
    a = _fill_polys(list(preds), pairs, width, height, offset, stride)
    gpolys = [g for gl in gts for g in gl]
    gpair = np.repeat(pairs, [len(gl) for gl in gts])
    b = _fill_polys(gpolys, gpair, width, height, offset, stride)

    def area(r: _Runs) -> np.ndarray:
        return _per_pair(r.starts, (r.ends - r.starts).astype(np.float64), offset)

    inter = np.zeros(k)
    if a.starts.size and b.starts.size:
        j0 = np.searchsorted(b.ends, a.starts, side="right")
        j1 = np.searchsorted(b.starts, a.ends, side="left")
        ia, step = _expand(np.maximum(j1 - j0, 0))
        jb = j0[ia] + step
        ov = np.minimum(a.ends[ia], b.ends[jb]) - np.maximum(a.starts[ia], b.starts[jb])
        inter += _per_pair(a.starts[ia], np.clip(ov, 0, None).astype(np.float64), offset)
    union = area(a) + area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


# ------------------------------------------------------------------ explicit masks


def _paint(runs: _Runs, origin: tuple[int, int], shape: tuple[int, int],
           stride: int) -> np.ndarray:
    """Boolean window mask of the runs of one pair (offset 0, keys ``y * stride + x``)."""
    rows, cols = shape
    x0, y0 = origin
    mask = np.zeros(shape, dtype=bool)
    if rows <= 0 or cols <= 0:
        return mask
    ry, rs = np.divmod(runs.starts, stride)
    re = runs.ends - ry * stride
    s = np.clip(rs - x0, 0, cols)
    t = np.clip(re - x0, 0, cols)
    r = ry - y0
    ok = (r >= 0) & (r < rows) & (s < t)
    r, s, t = r[ok], s[ok], t[ok]
    diff = np.zeros((rows, cols + 1), dtype=np.int32)
    np.add.at(diff, (r, s), 1)
    np.add.at(diff, (r, t), -1)
    mask |= np.cumsum(diff[:, :cols], axis=1) > 0
    return mask


def polygon_mask(pts: np.ndarray, origin: tuple[int, int], shape: tuple[int, int],
                 canvas: Canvas | None = None) -> np.ndarray:
    """``cv2.fillPoly`` of an int polygon ``[[x, y], ...]`` cropped to a window.

    The window starts at ``origin = (x0, y0)`` and has ``shape = (rows, cols)``. The
    polygon is drawn on *canvas* (what OpenCV would draw on that image, with its
    clipping rule for lines leaving it); without a canvas, on an image large enough to
    hold the whole polygon (no clipping). Pixels outside the window are dropped.
    """
    rows, cols = int(shape[0]), int(shape[1])
    if rows <= 0 or cols <= 0 or len(pts) == 0:
        return np.zeros((max(rows, 0), max(cols, 0)), dtype=bool)
    if rows * cols > _MAX_WINDOW_PIXELS:
        raise CanvasTooLarge(f"a {cols} x {rows} px mask is above the "
                             f"{_MAX_WINDOW_PIXELS} px limit")
    p = np.asarray(pts, dtype=np.int64).reshape(-1, 2)
    x0, y0 = int(origin[0]), int(origin[1])
    if canvas is None:  # translate so that the polygon fits a canvas without clipping
        lo = p.min(axis=0)
        p = p - lo
        x0, y0 = x0 - int(lo[0]), y0 - int(lo[1])
        hi = p.max(axis=0)
        canvas = Canvas(int(hi[0]) + 1, int(hi[1]) + 1)
    w, h = canvas.width, canvas.height
    if w > MAX_CANVAS_SIDE or h > MAX_CANVAS_SIDE:
        raise CanvasTooLarge(_refusal(w, h, 0))
    width, height = np.array([w], dtype=np.int64), np.array([h], dtype=np.int64)
    stride = max(w, 0) + 1
    runs = _fill_polys([p], np.zeros(1, dtype=np.int64), width, height,
                       np.zeros(1, dtype=np.int64), np.array([stride], dtype=np.int64),
                       row_lo=np.array([max(y0, 0)]), row_hi=np.array([max(y0 + rows, 0)]))
    return _paint(runs, (x0, y0), (rows, cols), stride)


@dataclass(frozen=True, eq=False)
class PairMasks:
    """Predicted and ground-truth masks of one pair inside their common window."""

    origin: tuple[int, int]  # (x0, y0) of the window in image pixels
    pred: np.ndarray
    gt: np.ndarray
    canvas: Canvas


def pair_masks(pred: np.ndarray, gt_shapes: list[np.ndarray], canvas: Canvas) -> PairMasks:
    """The int prediction and the union of int ground-truth shapes, each filled as
    ``cv2.fillPoly`` fills it on *canvas*, inside the smallest window holding both (§2
    step 4). Nothing is drawn outside that window, so its masks are the full-canvas
    masks cropped. Raises :class:`CanvasTooLarge` above the caps."""
    boxes = [box_of(pred)] + [box_of(g) for g in gt_shapes]
    window = clip_box((min(b[0] for b in boxes), min(b[1] for b in boxes),
                       max(b[2] for b in boxes), max(b[3] for b in boxes)), canvas)
    if window is None:
        empty = np.zeros((0, 0), dtype=bool)
        return PairMasks((0, 0), empty, empty, canvas)
    x0, y0, x1, y1 = window
    shape = (y1 - y0 + 1, x1 - x0 + 1)
    pm = polygon_mask(pred, (x0, y0), shape, canvas)
    gm = np.zeros(shape, dtype=bool)
    for g in gt_shapes:
        gm |= polygon_mask(g, (x0, y0), shape, canvas)
    return PairMasks((x0, y0), pm, gm, canvas)
