"""PROxford / PRParis pixel-level metrics: per-pair IoU, mIoU, mAP@k (PROTOCOLS §2).

``protocol="official"`` reproduces the released code, quirks included:
square canvas of side S (largest coordinate), easy pairs without prediction skipped in
mIoU, ignored queries kept in the mAP@k denominator, bbox IoU used for mAP@k.
``protocol="strict"`` is the project's clean variant: the image is the canvas, a missing
prediction is always IoU 0, ignored queries leave the mean, mAP@k for bbox and seg IoU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.errors import BenchWarning
from bench.formats.pixel import MAX_COORD
from bench.formats.revisited import Gnd
from bench.geometry import (
    Canvas,
    batch_box_ious,
    batch_seg_ious,
    official_canvas,
    truncate,
)
from bench.metrics import check_protocol
from bench.metrics.revisited import (
    RankScan,
    average_precision,
    evaluate_revisited,
    scan_ranks,
    setup_adjusted,
)

Pair = tuple[int, int]

IGNORED_QUERIES = {"proxford": frozenset({56, 63}), "prparis": frozenset({57, 59}),
                   "none": frozenset()}
THRESHOLDS = tuple(round(0.50 + 0.05 * j, 2) for j in range(10))
PIXEL_SETUPS = ("medium", "hard")


def benchmark_for(gnd_name: str) -> str:
    """``roxford5k`` -> ``proxford``, ``rparis6k`` -> ``prparis``, anything else -> ``none``."""
    n = gnd_name.lower()
    if "oxford" in n:
        return "proxford"
    if "paris" in n:
        return "prparis"
    return "none"


def pair_canvas(pred_i: np.ndarray, gt_i: list[np.ndarray], protocol: str,
                image_size: tuple[int, int] | None) -> Canvas:
    """The canvas of one pair: official square S x S, strict the image (w, h) when known."""
    if protocol == "strict" and image_size is not None:
        return Canvas(int(image_size[0]), int(image_size[1]))
    return official_canvas(pred_i, gt_i)


def pair_ious(preds: list[np.ndarray], gts: list[list[np.ndarray]], *,
              protocol: str = "official",
              image_sizes: list[tuple[int, int] | None] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(bbox IoU, seg IoU) arrays of many pairs, computed together (see :func:`pair_iou`)."""
    check_protocol(protocol)
    k = len(preds)
    if k == 0:
        return np.zeros(0), np.zeros(0)
    # one pass over all coordinates: validate, truncate, split back (no per-pair numpy work)
    flat = [np.asarray(x, dtype=np.float64).reshape(-1, 2) for x in preds]
    flat += [np.asarray(s, dtype=np.float64).reshape(-1, 2) for gl in gts for s in gl]
    allv = np.concatenate(flat)
    if not np.all(np.isfinite(allv)) or np.abs(allv).max(initial=0) > MAX_COORD:
        raise ValueError(f"coordinates must be finite and within +-{MAX_COORD} px")
    lens = np.array([len(x) for x in flat])
    ints = truncate(allv)
    parts = np.split(ints, np.cumsum(lens)[:-1])
    p = parts[:k]
    n_shapes = [len(gl) for gl in gts]
    starts = np.cumsum([0, *n_shapes])
    g = [parts[k + starts[j]:k + starts[j + 1]] for j in range(k)]
    # official canvas side per pair: the largest coordinate among its points
    pair_of_poly = np.concatenate([np.arange(k), np.repeat(np.arange(k), n_shapes)])
    side = np.full(k, np.iinfo(np.int64).min)
    np.maximum.at(side, np.repeat(pair_of_poly, lens), ints.max(axis=1))
    side = np.maximum(side, 0)
    sizes = image_sizes if image_sizes is not None else [None] * k
    canvases = [Canvas(int(si[0]), int(si[1])) if protocol == "strict" and si is not None
                else Canvas(int(sd), int(sd)) for si, sd in zip(sizes, side, strict=True)]
    bbox = batch_box_ious(p, g, canvases)
    return bbox, batch_seg_ious(p, g, canvases)


def pair_iou(pred_xy: np.ndarray, gt_shapes: list[np.ndarray], *, protocol: str = "official",
             image_size: tuple[int, int] | None = None) -> tuple[float, float]:
    """(bbox IoU, seg IoU) of one predicted polygon against the union of ground-truth shapes.

    Parameters
    ----------
    pred_xy : (n, 2) float ``[x, y]`` points of the prediction (a box is its corners).
    gt_shapes : list of (m, 2) float ``[x, y]`` polygons.
    protocol : ``"official"`` (square canvas of side S) or ``"strict"`` (canvas = image).
    image_size : ``(width, height)`` of the database image; used by ``"strict"``.
    """
    b, s = pair_ious([pred_xy], [gt_shapes], protocol=protocol, image_sizes=[image_size])
    return float(b[0]), float(s[0])


@dataclass(frozen=True, eq=False)
class PixelSetupResult:
    """medium or hard: mIoU (bbox, seg) with per-query values; mAP@k when ranks were given."""

    miou_bbox: float
    miou_seg: float
    per_query_bbox: np.ndarray
    per_query_seg: np.ndarray
    image_map: float | None = None
    map_at_k: float | None = None
    map_t: dict[str, float] | None = None
    per_query_ap_t: np.ndarray | None = None  # (n_thresholds, n_queries), NaN = empty/ignored
    map_at_k_seg: float | None = None  # strict only
    map_t_seg: dict[str, float] | None = None


@dataclass(frozen=True, eq=False)
class PixelResult:
    protocol: str
    benchmark: str
    pairs: dict[Pair, tuple[float, float]]
    setups: dict[str, PixelSetupResult]
    warnings: list[BenchWarning] = field(default_factory=list)


def compute_pair_ious(gnd: Gnd, gt: dict[Pair, list[np.ndarray]],
                      preds: dict[Pair, np.ndarray | None], *, protocol: str = "official",
                      image_sizes: dict[Pair, tuple[int, int] | None] | None = None
                      ) -> dict[Pair, tuple[float, float]]:
    """IoUs of every easy or hard pair that has both a prediction and a ground-truth label."""
    keys: list[Pair] = []
    for q in range(gnd.n_queries):
        for i in np.concatenate([gnd.easy[q], gnd.hard[q]]).tolist():
            if preds.get((q, i)) is not None and gt.get((q, i)):
                keys.append((q, i))
    if not keys:
        return {}
    sizes = [image_sizes.get(k) if image_sizes else None for k in keys]
    bbox, seg = pair_ious([preds[k] for k in keys], [gt[k] for k in keys], protocol=protocol,
                          image_sizes=sizes)
    return {k: (float(b), float(s)) for k, b, s in zip(keys, bbox, seg, strict=True)}


def _mean_or_nan(vals: list[float]) -> float:
    return float(np.mean(vals)) if vals else math.nan


def miou(gnd: Gnd, pairs: dict[Pair, tuple[float, float]], setup: str, *,
         protocol: str = "official") -> tuple[np.ndarray, np.ndarray]:
    """Per-query mean IoU (bbox, seg) for *setup* ``"medium"`` or ``"hard"`` (§2 'mIoU').

    official: a hard pair without prediction is 0; an easy pair without prediction is
    skipped (the released code's quirk). strict: every missing pair is 0.
    A query with an empty list gets NaN.
    """
    nq = gnd.n_queries
    qb, qs = np.full(nq, np.nan), np.full(nq, np.nan)
    for q in range(nq):
        lists: list[tuple[float, float]] = []
        for i in gnd.hard[q].tolist():
            lists.append(pairs.get((q, i), (0.0, 0.0)))
        if setup == "medium":
            for i in gnd.easy[q].tolist():
                if (q, i) in pairs:
                    lists.append(pairs[(q, i)])
                elif protocol == "strict":
                    lists.append((0.0, 0.0))
        if lists:
            arr = np.asarray(lists)
            qb[q], qs[q] = arr[:, 0].mean(), arr[:, 1].mean()
    return qb, qs


def _aggregate(per_query: np.ndarray, protocol: str) -> float:
    """official: plain mean (NaN if any query is empty); strict: mean over non-empty queries."""
    if protocol == "official":
        return float(np.mean(per_query)) if per_query.size else math.nan
    keep = ~np.isnan(per_query)
    return float(np.mean(per_query[keep])) if keep.any() else math.nan


def map_at_k(scan: RankScan, gnd: Gnd, pairs: dict[Pair, tuple[float, float]], setup: str, *,
             protocol: str = "official", benchmark: str = "none", iou_kind: str = "bbox"
             ) -> tuple[float, dict[str, float], np.ndarray]:
    """mAP@k over thresholds 0.50..0.95 (§2 'mAP@k').

    A positive survives threshold t when its IoU (of *iou_kind*) is strictly above t; the
    setup's junk stays junk. Returns (mAP@k, {"0.50": mAP_t, ...}, per-query AP (t, q)).
    """
    check_protocol(protocol)
    col = 0 if iou_kind == "bbox" else 1
    ignored = IGNORED_QUERIES.get(benchmark, frozenset())
    nq = gnd.n_queries
    per_q = np.full((len(THRESHOLDS), nq), np.nan)
    map_t: dict[str, float] = {}
    cand = []
    for q in range(nq):
        pos = np.concatenate([gnd.easy[q], gnd.hard[q]]) if setup == "medium" else gnd.hard[q]
        ious = np.array([pairs.get((q, i), (0.0, 0.0))[col] for i in pos.tolist()])
        cand.append((pos, ious))
    for ti, t in enumerate(THRESHOLDS):
        total, n_empty = 0.0, 0
        for q in range(nq):
            if q in ignored:
                continue
            pos, ious = cand[q]
            keep = pos[ious > t] if pos.size else pos
            if keep.size == 0:
                n_empty += 1
                continue
            adj, _, n = setup_adjusted(scan, gnd, setup, q, keep_ids=keep)
            per_q[ti, q] = average_precision(adj, n)
            total += per_q[ti, q]
        denom = nq - n_empty - (len([q for q in ignored if q < nq]) if protocol == "strict" else 0)
        map_t[f"{t:.2f}"] = total / denom if denom > 0 else math.nan
    return float(np.mean(list(map_t.values()))), map_t, per_q


def evaluate_pixel(gnd: Gnd, gt: dict[Pair, list[np.ndarray]],
                   preds: dict[Pair, np.ndarray | None], *, ranks: np.ndarray | RankScan | None = None,
                   protocol: str = "official", benchmark: str | None = None,
                   image_sizes: dict[Pair, tuple[int, int] | None] | None = None,
                   warnings: list[BenchWarning] | None = None, ranks_path: object = None
                   ) -> PixelResult:
    """All pixel-level numbers of one method on one dataset (PROTOCOLS §2).

    Parameters
    ----------
    gnd : the Revisited ground truth (easy / hard / junk lists).
    gt : ``{(q, i): [polygon, ...]}`` ground-truth shapes per easy or hard pair.
    preds : ``{(q, i): (n, 2) points or None}``; a missing key means no prediction.
    ranks : image-level ranks ``(n_rows, n_queries)`` or a :class:`RankScan`; enables mAP@k.
    benchmark : ``"proxford"``, ``"prparis"`` or ``"none"`` (ignored queries); default
        from the gnd name.
    image_sizes : ``{(q, i): (width, height)}`` for the strict canvas.
    """
    check_protocol(protocol)
    bm = benchmark if benchmark is not None else benchmark_for(gnd.name)
    if bm not in IGNORED_QUERIES:
        raise ValueError(f"benchmark must be one of {sorted(IGNORED_QUERIES)}, got {bm!r}")
    pairs = compute_pair_ious(gnd, gt, preds, protocol=protocol, image_sizes=image_sizes)
    scan = None
    if ranks is not None:
        scan = ranks if isinstance(ranks, RankScan) else scan_ranks(ranks, gnd, path=ranks_path)
    image_level = evaluate_revisited(scan, gnd) if scan is not None else None
    setups = {}
    for setup in PIXEL_SETUPS:
        qb, qs = miou(gnd, pairs, setup, protocol=protocol)
        extra: dict = {}
        if scan is not None:
            img = image_level[setup]
            m, mt, pq = map_at_k(scan, gnd, pairs, setup, protocol=protocol, benchmark=bm,
                                 iou_kind="bbox")
            extra = dict(image_map=img.mAP, map_at_k=m, map_t=mt, per_query_ap_t=pq)
            if protocol == "strict":
                ms, mts, _ = map_at_k(scan, gnd, pairs, setup, protocol=protocol, benchmark=bm,
                                      iou_kind="seg")
                extra.update(map_at_k_seg=ms, map_t_seg=mts)
        setups[setup] = PixelSetupResult(
            miou_bbox=_aggregate(qb, protocol), miou_seg=_aggregate(qs, protocol),
            per_query_bbox=qb, per_query_seg=qs, **extra)
    return PixelResult(protocol=protocol, benchmark=bm, pairs=pairs, setups=setups,
                       warnings=list(warnings or []))
