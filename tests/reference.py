"""Plain reference implementations of every metric in docs/PROTOCOLS.md.

Written straight from docs/PROTOCOLS.md, deliberately slow and literal: Python
loops, no clever vectorisation (except where a full-canvas mask would otherwise take
minutes; there the loop over edges stays and only the loop over pixels is numpy), and
no code shared with ``bench/``. This module must never import ``bench``.

Section numbers below refer to docs/PROTOCOLS.md.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SETUPS = ("easy", "medium", "hard")
THRESHOLDS = tuple(round(0.5 + 0.05 * j, 2) for j in range(10))  # 0.50 .. 0.95
GPR_SUBSETS = ("landmarks", "inat", "sketch", "instre", "sop", "faces")
IGNORED_QUERIES = {"proxford": {56, 63}, "prparis": {57, 59}, "none": set()}


def threshold_key(t: float) -> str:
    """0.5 -> "0.50" (the key format of the CLI's mAP_t)."""
    return f"{t:.2f}"


# ---------------------------------------------------------------------------------------
# Section 1: Revisited Oxford / Paris
# ---------------------------------------------------------------------------------------


def setup_lists(g: dict, setup: str) -> tuple[list[int], list[int]]:
    """(positives, junk) of one query's gnd dict for a setup (section 1, "Setups")."""
    easy = list(g.get("easy", []))
    hard = list(g.get("hard", []))
    junk = list(g.get("junk", []))
    if setup == "easy":
        return easy, junk + hard
    if setup == "medium":
        return easy + hard, junk
    if setup == "hard":
        return hard, junk + easy
    raise ValueError(setup)


def _adjusted_positions(ranks_col, positives, junk) -> list[int]:
    """Steps 1-2: 0-based positions of the positives found in the column, each reduced
    by the number of junk items ranked strictly before it; ascending."""
    positives = set(int(p) for p in positives)
    junk = set(int(j) for j in junk)
    pos_positions = []
    junk_positions = []
    for position, item in enumerate(ranks_col):
        item = int(item)
        if item in positives:
            pos_positions.append(position)
        if item in junk:
            junk_positions.append(position)
    adjusted = []
    for p in pos_positions:
        n_junk_before = 0
        for j in junk_positions:
            if j < p:
                n_junk_before += 1
        adjusted.append(p - n_junk_before)
    return adjusted


def ref_revisited_ap(ranks_col, positives, junk) -> float:
    """AP of one query (section 1, step 3). N = number of positives in the ground truth,
    including those missing from a truncated ranking. NaN without positives."""
    n = len(set(int(p) for p in positives))
    if n == 0:
        return math.nan
    r = _adjusted_positions(ranks_col, positives, junk)
    ap = 0.0
    for idx, r_j in enumerate(r):
        j = idx + 1  # 1-based count of positives so far
        p0 = 1.0 if r_j == 0 else (j - 1) / r_j
        p1 = j / (r_j + 1)
        ap += (1.0 / n) * (p0 + p1) / 2.0
    return ap


def ref_revisited_pk(ranks_col, positives, junk, k: int) -> float:
    """Official P@k (section 1, step 4): kq = min(max_j s_j, k), P@k = #{s_j <= kq} / kq.

    When no positive appears in the (truncated) ranking, max_j s_j is undefined (the
    released code crashes); whatever kq one picks the count is 0, so we return 0.
    NaN when the query has no positives at all.
    """
    if len(set(int(p) for p in positives)) == 0:
        return math.nan
    s = [r + 1 for r in _adjusted_positions(ranks_col, positives, junk)]
    if not s:
        return 0.0
    kq = min(max(s), k)
    count = 0
    for s_j in s:
        if s_j <= kq:
            count += 1
    return count / kq


def ref_revisited_pk_strict(ranks_col, positives, junk, k: int) -> float:
    """Plain P@k: #{adjusted 1-based rank <= k} / k. NaN without positives."""
    if len(set(int(p) for p in positives)) == 0:
        return math.nan
    s = [r + 1 for r in _adjusted_positions(ranks_col, positives, junk)]
    count = 0
    for s_j in s:
        if s_j <= k:
            count += 1
    return count / k


def _mean_skip_nan(values) -> float:
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return math.nan
    return sum(kept) / len(kept)


def ref_revisited(ranks, gnd: list[dict], protocol: str = "official", ks=(1, 5, 10)) -> dict:
    """All three setups (section 1). ranks: (n_rows, n_q); gnd: one dict per query.

    Returns {setup: {"mAP": x, "mP@k": {k: x}, "ap": [x per query]}}. Queries without
    positives have AP NaN and are left out of mAP and mP@k. ``protocol="strict"`` only
    changes P@k to the plain #{s <= k}/k.
    """
    ranks = np.asarray(ranks)
    n_q = ranks.shape[1]
    pk = ref_revisited_pk if protocol == "official" else ref_revisited_pk_strict
    out = {}
    for setup in SETUPS:
        aps = []
        pks = {k: [] for k in ks}
        for q in range(n_q):
            col = [int(v) for v in ranks[:, q]]
            positives, junk = setup_lists(gnd[q], setup)
            aps.append(ref_revisited_ap(col, positives, junk))
            for k in ks:
                pks[k].append(pk(col, positives, junk, k))
        out[setup] = {
            "mAP": _mean_skip_nan(aps),
            "mP@k": {k: _mean_skip_nan(pks[k]) for k in ks},
            "ap": aps,
        }
    return out


# ---------------------------------------------------------------------------------------
# Section 2: pixel IoU of one pair
# ---------------------------------------------------------------------------------------


def ref_fill_polygon(vertices, width: int, height: int) -> np.ndarray:
    """Boolean (height, width) mask of an integer polygon drawn exactly as the released
    PROxford code draws it (``evaluation_code/utils/iou_compute.py``): ``cv2.fillPoly``
    on a float64 zero canvas of that size with colour (255, 255, 255), default
    ``lineType`` (LINE_8) and ``shift`` 0. The polygon is filled with its boundary, and
    lines leaving the canvas are cut by OpenCV's own clipping rule. A canvas without
    pixels gives an empty mask."""
    mask = np.zeros((max(int(height), 0), max(int(width), 0)))
    pts = np.array([(int(x), int(y)) for x, y in vertices], dtype=np.int32).reshape(-1, 2)
    if mask.size and len(pts):
        cv2.fillPoly(mask, pts=[pts], color=(255, 255, 255))
    return mask > 0


def ref_box_mask(points, width: int, height: int) -> np.ndarray:
    """Pixels with xmin <= x <= xmax and ymin <= y <= ymax of integer points, clipped."""
    mask = np.zeros((height, width), dtype=bool)
    xs = [int(p[0]) for p in points]
    ys = [int(p[1]) for p in points]
    if not xs:
        return mask
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    for y in range(max(y0, 0), min(y1, height - 1) + 1):
        for x in range(max(x0, 0), min(x1, width - 1) + 1):
            mask[y, x] = True
    return mask


def _truncate(points) -> list[tuple[int, int]]:
    """astype(int): truncation toward zero (2.9 -> 2, -0.5 -> 0, -1.5 -> -1)."""
    out = []
    for p in points:
        out.append((int(float(p[0])), int(float(p[1]))))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = int(np.count_nonzero(a & b))
    union = int(np.count_nonzero(a | b))
    # Choice (not in docs/PROTOCOLS.md): an empty union (nothing of either region lies on the
    # canvas) gives IoU 0, not NaN; the pair then simply scores nothing.
    if union == 0:
        return 0.0
    return inter / union


def ref_pair_iou(pred_points, gt_shapes, protocol: str = "official", image_size=None):
    """(bbox IoU, seg IoU) of one predicted polygon against the union of the ground-truth
    shapes (section 2, "IoU of one pair", and "Strict protocol").

    official: coordinates truncated to int; square canvas of side S = the largest x or y
    over the predicted points and all ground-truth points; pixels at a coordinate >= S
    (or < 0) dropped.
    strict: same truncation, canvas = image_size (width, height), pixels outside
    dropped.
    """
    pred = _truncate(pred_points)
    gts = [_truncate(shape) for shape in gt_shapes]
    if protocol == "official":
        s = 0
        for x, y in pred:
            s = max(s, x, y)
        for shape in gts:
            for x, y in shape:
                s = max(s, x, y)
        width = height = s
    elif protocol == "strict":
        if image_size is None:
            raise ValueError("strict needs image_size=(width, height)")
        width, height = int(image_size[0]), int(image_size[1])
    else:
        raise ValueError(protocol)

    all_gt_points = [p for shape in gts for p in shape]
    pred_box = ref_box_mask(pred, width, height)
    gt_box = ref_box_mask(all_gt_points, width, height)
    bbox = _iou(pred_box, gt_box)

    pred_seg = ref_fill_polygon(pred, width, height)
    gt_seg = np.zeros((height, width), dtype=bool)
    for shape in gts:
        gt_seg |= ref_fill_polygon(shape, width, height)
    seg = _iou(pred_seg, gt_seg)
    return bbox, seg


# ---------------------------------------------------------------------------------------
# Section 2: mIoU and mAP@k
# ---------------------------------------------------------------------------------------


def _mean_or_nan(values: list[float]) -> float:
    if not values:
        return math.nan
    return sum(values) / len(values)


def ref_miou(gnd: list[dict], pair_ious: dict, protocol: str = "official") -> dict:
    """mIoU for medium and hard (section 2).

    pair_ious: {(q, i): (bbox, seg)} for predicted pairs only; any pair absent from it
    has no prediction.

    official: a hard pair without prediction counts 0 (medium and hard lists); an easy
    pair without prediction is skipped. A query's value is the mean of its list (NaN for
    an empty list), the benchmark's is the plain mean over queries (NaN if any is NaN).
    strict: a missing prediction always counts 0, easy pairs too. Assumption (the spec
    is silent): a query with an empty list is left out of the strict mean.
    """
    out = {}
    for setup in ("medium", "hard"):
        per_bbox, per_seg = [], []
        for q, g in enumerate(gnd):
            lb, ls = [], []
            for i in g.get("hard", []):
                b, s = pair_ious.get((q, int(i)), (0.0, 0.0))
                lb.append(b)
                ls.append(s)
            if setup == "medium":
                for i in g.get("easy", []):
                    key = (q, int(i))
                    if key in pair_ious:
                        b, s = pair_ious[key]
                    elif protocol == "official":
                        continue  # quirk: easy pair without prediction is skipped
                    else:
                        b, s = 0.0, 0.0
                    lb.append(b)
                    ls.append(s)
            per_bbox.append(_mean_or_nan(lb))
            per_seg.append(_mean_or_nan(ls))
        if protocol == "official":
            mb = sum(per_bbox) / len(per_bbox) if per_bbox else math.nan
            ms = sum(per_seg) / len(per_seg) if per_seg else math.nan
        else:
            mb = _mean_skip_nan(per_bbox)
            ms = _mean_skip_nan(per_seg)
        out[setup] = {
            "bbox": mb,
            "seg": ms,
            "per_query_bbox": per_bbox,
            "per_query_seg": per_seg,
        }
    return out


def _ref_ap_hits(ranks_col, hits, junk, n: int) -> float:
    """Section 1 step 3 with the hits' junk-adjusted positions and a given N >= the
    number of hits (the strict mAP@k's N = all the setup's positives): every positive
    that is not a hit stays in the column as an ordinary image."""
    ap = 0.0
    for idx, r_j in enumerate(_adjusted_positions(ranks_col, hits, junk)):
        j = idx + 1
        p0 = 1.0 if r_j == 0 else (j - 1) / r_j
        p1 = j / (r_j + 1)
        ap += (1.0 / n) * (p0 + p1) / 2.0
    return ap


def ref_map_at_k(
    ranks,
    gnd: list[dict],
    ious: dict,
    setup: str,
    ignored=frozenset(),
    protocol: str = "official",
    iou_kind: str = "bbox",
):
    """mAP@k of one setup (section 2). Returns (mAP@k, {t: mAP_t}) with t in THRESHOLDS.

    ious: {(q, i): IoU} or {(q, i): (bbox, seg)} for predicted pairs; a pair absent
    counts IoU 0. With tuples, iou_kind picks the element (official always uses bbox:
    the caller passes iou_kind="bbox").
    Positives at t = the setup's positives with IoU > t (strictly); junk = setup junk;
    a positive that fails t is an ordinary image of the ranking.
    official: AP_t with N = the surviving positives; a query with none leaves the sum and
    the count of t; ignored queries contribute nothing but stay in the denominator.
    strict (section 2.3, COCO-style): N = all the setup's positives at every t, so a
    query with no surviving positive has AP_t = 0 and stays; only a query without any
    positive in the setup leaves; ignored queries leave numerator and denominator.
    """
    ranks = np.asarray(ranks)
    n_q = ranks.shape[1]
    ignored = {int(q) for q in ignored if 0 <= int(q) < n_q}

    def iou_of(q, i):
        v = ious.get((q, int(i)), 0.0)
        if isinstance(v, (tuple, list)):
            v = v[0] if iou_kind == "bbox" else v[1]
        return float(v)

    per_t = {}
    for t in THRESHOLDS:
        total = 0.0
        n_empty = 0
        for q in range(n_q):
            if q in ignored:
                continue
            positives, junk = setup_lists(gnd[q], setup)
            surviving = [i for i in positives if iou_of(q, i) > t]
            col = [int(v) for v in ranks[:, q]]
            if protocol == "official":
                if not surviving:
                    n_empty += 1
                    continue
                total += ref_revisited_ap(col, surviving, junk)
            else:
                n_all = len(set(int(i) for i in positives))
                if n_all == 0:
                    n_empty += 1
                    continue
                total += _ref_ap_hits(col, surviving, junk, n_all)
        if protocol == "official":
            denominator = n_q - n_empty
        else:
            denominator = n_q - len(ignored) - n_empty
        per_t[t] = total / denominator if denominator > 0 else math.nan
    return sum(per_t.values()) / len(per_t), per_t


# ---------------------------------------------------------------------------------------
# Section 3: GPR1200
# ---------------------------------------------------------------------------------------


def _dot(a, b) -> float:
    s = 0.0
    for x, y in zip(a, b, strict=True):
        s += float(x) * float(y)
    return s


def _ranked_list(q: int, embeddings, metric: str) -> list[int]:
    n = len(embeddings)
    keyed = []
    if metric == "cosine":
        qn = math.sqrt(_dot(embeddings[q], embeddings[q]))
        for i in range(n):
            inorm = math.sqrt(_dot(embeddings[i], embeddings[i]))
            sim = _dot(embeddings[q], embeddings[i]) / (qn * inorm)
            keyed.append((-sim, i))
    elif metric == "dot":
        for i in range(n):
            keyed.append((-_dot(embeddings[q], embeddings[i]), i))
    elif metric == "l2":
        for i in range(n):
            d = 0.0
            for x, y in zip(embeddings[q], embeddings[i], strict=True):
                d += (float(x) - float(y)) ** 2
            keyed.append((math.sqrt(d), i))
    else:
        raise ValueError(metric)
    keyed.sort()  # ties broken by index
    return [i for _, i in keyed]


def ref_gpr_ap(ranked: list[int], labels: list[int], q: int) -> float:
    """AP = (1/n_pos) sum_m m / (i_m + 1), positives = same category as q (q itself
    included), n_pos = positives found in the list; 0 if none."""
    found = 0
    s = 0.0
    for position, i in enumerate(ranked):
        if labels[int(i)] == labels[q]:
            found += 1
            s += found / (position + 1)
    if found == 0:
        return 0.0
    return s / found


def _subset_blocks(labels: list[int]) -> dict[str, list[int]]:
    n = len(labels)
    if n == 12000:
        return {name: list(range(2000 * b, 2000 * (b + 1))) for b, name in enumerate(GPR_SUBSETS)}
    cats = sorted(set(labels))
    blocks = {}
    for b, name in enumerate(GPR_SUBSETS):
        lo = b * len(cats) // 6
        hi = (b + 1) * len(cats) // 6
        block_cats = set(cats[lo:hi])
        blocks[name] = [i for i in range(n) if labels[i] in block_cats]
    return blocks


def ref_gpr1200(labels, embeddings=None, metric: str = "cosine", indices=None) -> dict:
    """GPR1200 (section 3): {"mAP": x, "ap": [x per image], "subsets": {name: x}}.

    Embeddings: every image queries all n (itself included), full stable sort on
    (-sim, index) (l2: (distance, index)). Indices: the row is the ranked list.
    Subsets: blocks of 2000 positions for n = 12000, else six equal contiguous blocks of
    sorted categories (block b holds categories [b*C//6, (b+1)*C//6)).
    """
    labels = [int(v) for v in labels]
    n = len(labels)
    rows = None if indices is not None else [[float(v) for v in row] for row in embeddings]
    aps = []
    for q in range(n):
        if indices is not None:
            ranked = [int(v) for v in indices[q]]
        else:
            ranked = _ranked_list(q, rows, metric)
        aps.append(ref_gpr_ap(ranked, labels, q))
    subsets = {}
    for name, members in _subset_blocks(labels).items():
        subsets[name] = sum(aps[i] for i in members) / len(members) if members else math.nan
    return {"mAP": sum(aps) / n, "ap": aps, "subsets": subsets}
