"""PROxford / PRParis pixel-level metrics: per-pair IoU, mIoU, mAP@k (docs/PROTOCOLS.md §2).

Every rule on which the released code and the clean variant differ is a field of
:class:`~bench.protocol.Protocol` (docs/PROTOCOLS.md §4): ``protocol="official"``
reproduces the released code, quirks included (square canvas of side S, easy pairs
without prediction skipped in mIoU, a query with an empty list making the mean NaN,
ignored queries kept in the mAP@k denominator, bbox IoU thresholded for mAP@k);
``protocol="strict"`` is the project's clean variant (the image is the canvas, a missing
prediction is always IoU 0, empty queries and ignored queries leave the means, mAP@k for
bbox and seg IoU). Any single rule can be changed with ``Protocol.replace``.
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
    seg_refusals,
    truncate,
)
from bench.metrics.revisited import (
    RankScan,
    average_precision,
    evaluate_revisited,
    scan_ranks,
    setup_adjusted,
)
from bench.protocol import (
    IGNORED_QUERIES,
    PIXEL_SETUPS,
    THRESHOLDS,
    Protocol,
    ProtocolLike,
    benchmark_for,
    setup_labels,
    threshold_key,
)

Pair = tuple[int, int]


def canvas_for(protocol: ProtocolLike, side: int, image_size: tuple[int, int] | None) -> Canvas:
    """The canvas of one pair (§2.1 step 2; ``Protocol.canvas``): ``"square"`` gives the
    square of side *side* (the largest truncated coordinate of the pair's points);
    ``"image"`` gives the database image ``(width, height)`` when known, else the square.
    """
    if Protocol.of(protocol).canvas == "image" and image_size is not None:
        return Canvas(int(image_size[0]), int(image_size[1]))
    return Canvas(int(side), int(side))


def pair_canvas(pred_i: np.ndarray, gt_i: list[np.ndarray], protocol: ProtocolLike,
                image_size: tuple[int, int] | None) -> Canvas:
    """The canvas of one pair from its truncated points (see :func:`canvas_for`)."""
    return canvas_for(protocol, official_canvas(pred_i, gt_i).width, image_size)


def _prepare_pairs(preds: list[np.ndarray], gts: list[list[np.ndarray]], proto: Protocol,
                   image_sizes: list[tuple[int, int] | None] | None
                   ) -> tuple[list[np.ndarray], list[list[np.ndarray]], list[Canvas]]:
    """Truncated points and the canvas of every pair (§2.1 steps 1-2), in one pass over
    all coordinates (no per-pair numpy work). ValueError for a non-finite coordinate or
    one beyond +-MAX_COORD."""
    k = len(preds)
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
    # square canvas side per pair: the largest coordinate among its points
    pair_of_poly = np.concatenate([np.arange(k), np.repeat(np.arange(k), n_shapes)])
    side = np.full(k, np.iinfo(np.int64).min)
    np.maximum.at(side, np.repeat(pair_of_poly, lens), ints.max(axis=1))
    side = np.maximum(side, 0)
    sizes = image_sizes if image_sizes is not None else [None] * k
    return p, g, [canvas_for(proto, sd, si) for si, sd in zip(sizes, side, strict=True)]


def pair_ious(preds: list[np.ndarray], gts: list[list[np.ndarray]], *,
              protocol: ProtocolLike = "official",
              image_sizes: list[tuple[int, int] | None] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(bbox IoU, seg IoU) arrays of many pairs, computed together (see :func:`pair_iou`).

    Raises ValueError for a bad coordinate, and :class:`bench.geometry.CanvasTooLarge` (a
    ValueError) for a pair above the rasteriser's caps; :func:`compute_pair_ious` turns
    the latter into warnings instead.
    """
    if len(preds) == 0:
        return np.zeros(0), np.zeros(0)
    p, g, canvases = _prepare_pairs(preds, gts, Protocol.of(protocol), image_sizes)
    return batch_box_ious(p, g, canvases), batch_seg_ious(p, g, canvases)


def pair_iou(pred_xy: np.ndarray, gt_shapes: list[np.ndarray], *,
             protocol: ProtocolLike = "official",
             image_size: tuple[int, int] | None = None) -> tuple[float, float]:
    """(bbox IoU, seg IoU) of one predicted polygon against the union of ground-truth shapes.

    Parameters
    ----------
    pred_xy : (n, 2) float ``[x, y]`` points of the prediction (a box is its corners).
    gt_shapes : list of (m, 2) float ``[x, y]`` polygons.
    protocol : ``"official"`` (square canvas of side S), ``"strict"`` (canvas = image)
        or a :class:`~bench.protocol.Protocol` (its ``canvas`` field).
    image_size : ``(width, height)`` of the database image; used by the image canvas.
    """
    b, s = pair_ious([pred_xy], [gt_shapes], protocol=protocol, image_sizes=[image_size])
    return float(b[0]), float(s[0])


@dataclass(frozen=True, eq=False)
class PixelSetupResult:
    """medium or hard: mIoU (bbox, seg) with per-query values; mAP@k when ranks were given.

    ``per_query_ap_t`` is ``(n_thresholds, n_queries)`` AP of each query at each
    threshold (NaN = no surviving positive, or an ignored query); the ``*_seg`` fields
    (the same with seg IoU thresholded) are set when the protocol's ``threshold_iou``
    includes ``"seg"``.
    """

    miou_bbox: float
    miou_seg: float
    per_query_bbox: np.ndarray
    per_query_seg: np.ndarray
    image_map: float | None = None
    map_at_k: float | None = None
    map_t: dict[str, float] | None = None
    per_query_ap_t: np.ndarray | None = None
    map_at_k_seg: float | None = None
    map_t_seg: dict[str, float] | None = None
    per_query_ap_t_seg: np.ndarray | None = None
    n_positives: np.ndarray | None = None  # (n_queries,) distinct positives of the setup


@dataclass(frozen=True, eq=False)
class PixelResult:
    """All pixel-level numbers of one method; ``protocol`` is the protocol's name
    (``"official"``, ``"strict"`` or ``"custom"``), ``rules`` the protocol itself."""

    protocol: str
    benchmark: str
    pairs: dict[Pair, tuple[float, float]]
    setups: dict[str, PixelSetupResult]
    warnings: list[BenchWarning] = field(default_factory=list)
    rules: Protocol | None = None


def compute_pair_ious(gnd: Gnd, gt: dict[Pair, list[np.ndarray]],
                      preds: dict[Pair, np.ndarray | None], *,
                      protocol: ProtocolLike = "official",
                      image_sizes: dict[Pair, tuple[int, int] | None] | None = None,
                      warnings: list[BenchWarning] | None = None, path: object = None
                      ) -> dict[Pair, tuple[float, float]]:
    """IoUs of every easy or hard pair that has both a prediction and a ground-truth label.

    A pair whose canvas or rasterisation is above the caps of :mod:`bench.geometry`
    (coordinates far outside any image) counts as not predicted; a
    :class:`BenchWarning` naming it (and *path*, the predictions' file) is appended to
    *warnings* when given.
    """
    keys: list[Pair] = []
    for q in range(gnd.n_queries):
        for i in np.concatenate([gnd.easy[q], gnd.hard[q]]).tolist():
            if preds.get((q, i)) is not None and gt.get((q, i)):
                keys.append((q, i))
    if not keys:
        return {}
    sizes = [image_sizes.get(k) if image_sizes else None for k in keys]
    p, g, canvases = _prepare_pairs([preds[k] for k in keys], [gt[k] for k in keys],
                                    Protocol.of(protocol), sizes)
    refused = seg_refusals(p, g, canvases)
    if refused:
        for j, why in sorted(refused.items()):
            q, i = keys[j]
            if warnings is not None:
                warnings.append(BenchWarning(f"{q}_{i}", path if path is not None else "<input>",
                                             f"{why}; the pair counts as not predicted"))
        keep = [j for j in range(len(keys)) if j not in refused]
        keys = [keys[j] for j in keep]
        p, g, canvases = [p[j] for j in keep], [g[j] for j in keep], [canvases[j] for j in keep]
        if not keys:
            return {}
    bbox, seg = batch_box_ious(p, g, canvases), batch_seg_ious(p, g, canvases)
    return {k: (float(b), float(s)) for k, b, s in zip(keys, bbox, seg, strict=True)}


def miou(gnd: Gnd, pairs: dict[Pair, tuple[float, float]], setup: str, *,
         protocol: ProtocolLike = "official") -> tuple[np.ndarray, np.ndarray]:
    """Per-query mean IoU (bbox, seg) for *setup* ``"medium"`` or ``"hard"`` (§2.2).

    A hard pair without prediction counts 0. An easy pair without prediction (medium)
    follows ``Protocol.unpredicted_easy``: ``"skip"`` (official: it joins no list) or
    ``"zero"`` (strict). A query with an empty list gets NaN.
    """
    if setup not in PIXEL_SETUPS:
        raise ValueError(f"setup must be one of {PIXEL_SETUPS}, got {setup!r}")
    zero_easy = Protocol.of(protocol).unpredicted_easy == "zero"
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
                elif zero_easy:
                    lists.append((0.0, 0.0))
        if lists:
            arr = np.asarray(lists)
            qb[q], qs[q] = arr[:, 0].mean(), arr[:, 1].mean()
    return qb, qs


def aggregate_miou(per_query: np.ndarray, protocol: ProtocolLike = "official") -> float:
    """The mean over queries of per-query mIoUs (``Protocol.empty_query``):
    ``"nan_mean"`` (official: a NaN query makes the mean NaN, as ``np.mean`` does in the
    released ``mious.py``) or ``"leave_out"`` (strict: mean over the non-empty queries)."""
    if Protocol.of(protocol).empty_query == "nan_mean":
        return float(np.mean(per_query)) if per_query.size else math.nan
    keep = ~np.isnan(per_query)
    return float(np.mean(per_query[keep])) if keep.any() else math.nan


def map_at_k(scan: RankScan, gnd: Gnd, pairs: dict[Pair, tuple[float, float]], setup: str, *,
             protocol: ProtocolLike = "official", benchmark: str = "none",
             iou_kind: str = "bbox") -> tuple[float, dict[str, float], np.ndarray]:
    """mAP@k over thresholds 0.50..0.95 (§2.3).

    A positive is a hit at threshold t when its IoU (of *iou_kind*, ``"bbox"`` or
    ``"seg"``) is strictly above t; positives that fail stay in the ranking as ordinary
    images (neither hit nor junk), the setup's junk stays junk. N of a query's AP_t is
    ``Protocol.n_at_threshold``: ``"surviving"`` (official) N = its hits at t, and a query
    without any is empty at t (AP NaN, out of the mean of t); ``"all"`` (strict) N = all
    the setup's positives, so such a query has AP_t = 0 and every query with a positive
    counts at every t. A query without positives in the setup is always left out. The
    benchmark's ignored queries are skipped; whether they stay in the denominator is
    ``Protocol.ignored_in_denominator``. Returns (mAP@k, {"0.50": mAP_t, ...}, per-query
    AP ``(n_thresholds, n_queries)``, NaN = left out).
    """
    proto = Protocol.of(protocol)
    if iou_kind not in ("bbox", "seg"):
        raise ValueError(f"iou_kind must be 'bbox' or 'seg', got {iou_kind!r}")
    col = 0 if iou_kind == "bbox" else 1
    all_positives = proto.n_at_threshold == "all"
    ignored = IGNORED_QUERIES.get(benchmark, frozenset())
    pos_labels, _ = setup_labels(setup)
    nq = gnd.n_queries
    n_ignored = len([q for q in ignored if q < nq])
    per_q = np.full((len(THRESHOLDS), nq), np.nan)
    map_t: dict[str, float] = {}
    cand = []
    for q in range(nq):
        pos = np.concatenate([getattr(gnd, c)[q] for c in pos_labels])
        ious = np.array([pairs.get((q, i), (0.0, 0.0))[col] for i in pos.tolist()])
        cand.append((pos, ious))
    for ti, t in enumerate(THRESHOLDS):
        total, n_empty = 0.0, 0
        for q in range(nq):
            if q in ignored:
                continue
            pos, ious = cand[q]
            keep = pos[ious > t] if pos.size else pos
            if (pos if all_positives else keep).size == 0:
                n_empty += 1
                continue
            adj, _, n = setup_adjusted(scan, gnd, setup, q, keep_ids=keep)
            if all_positives:
                n = int(np.unique(pos).size)
            per_q[ti, q] = average_precision(adj, n)
            total += per_q[ti, q]
        denom = nq - n_empty - (0 if proto.ignored_in_denominator else n_ignored)
        map_t[threshold_key(t)] = total / denom if denom > 0 else math.nan
    return float(np.mean(list(map_t.values()))), map_t, per_q


def undefined_reasons(s: PixelSetupResult, protocol: ProtocolLike = "official",
                      setup: str = "") -> dict[str, str]:
    """Why each undefined (NaN) number of one setup's result is undefined, for the app's
    cards: ``{"miou_bbox" | "miou_seg" | "map_at_k" | "map_at_k_seg" | "image_map": why}``,
    only for the numbers that are NaN (docs/PROTOCOLS.md §2.2, §2.3).
    """
    proto = Protocol.of(protocol)
    where = f"the {setup} setup" if setup else "this setup"
    out: dict[str, str] = {}
    for name, per_q in (("miou_bbox", s.per_query_bbox), ("miou_seg", s.per_query_seg)):
        if not math.isnan(getattr(s, name)):
            continue
        if not per_q.size or np.isnan(per_q).all():
            out[name] = f"no query has a pair in {where}"
        else:
            out[name] = (f"{int(np.isnan(per_q).sum())} queries have an empty list in {where}: "
                         "the official mIoU is then NaN (np.mean of an empty list in the "
                         "released mious.py); the strict protocol leaves them out")
    for name, ap_t, map_t in (("map_at_k", s.per_query_ap_t, s.map_t),
                              ("map_at_k_seg", s.per_query_ap_t_seg, s.map_t_seg)):
        value = getattr(s, name)
        if value is None or not math.isnan(value):
            continue
        bad = [k for k, v in (map_t or {}).items() if math.isnan(v)]
        no_pos = s.n_positives is not None and not (s.n_positives > 0).any()
        if no_pos or ap_t is None or (np.isnan(ap_t).all() and not (
                proto.n_at_threshold == "surviving" and s.n_positives is not None)):
            out[name] = (f"no evaluated query has a positive in {where} (queries without "
                         "positives and the benchmark's ignored queries are left out)")
            continue
        if proto.n_at_threshold == "surviving" and bad:
            out[name] = (f"at t = {bad[0]} no query has a positive localised above t; "
                         "officially such queries leave mAP_t (0 / 0). The strict protocol "
                         "keeps them with AP_t = 0")
        else:
            out[name] = f"mAP_t is undefined at t = {', '.join(bad)}"
    if s.image_map is not None and math.isnan(s.image_map):
        out["image_map"] = f"no query has a positive in {where}"
    return out


def evaluate_pixel(gnd: Gnd, gt: dict[Pair, list[np.ndarray]],
                   preds: dict[Pair, np.ndarray | None], *,
                   ranks: np.ndarray | RankScan | None = None,
                   protocol: ProtocolLike = "official", benchmark: str | None = None,
                   image_sizes: dict[Pair, tuple[int, int] | None] | None = None,
                   warnings: list[BenchWarning] | None = None, ranks_path: object = None,
                   matches_path: object = None) -> PixelResult:
    """All pixel-level numbers of one method on one dataset (docs/PROTOCOLS.md §2).

    Parameters
    ----------
    gnd : the Revisited ground truth (easy / hard / junk lists).
    gt : ``{(q, i): [polygon, ...]}`` ground-truth shapes per easy or hard pair.
    preds : ``{(q, i): (n, 2) points or None}``; a missing key means no prediction.
    ranks : image-level ranks ``(n_rows, n_queries)`` or a :class:`RankScan`; enables mAP@k.
    protocol : ``"official"``, ``"strict"`` or a :class:`~bench.protocol.Protocol`.
    benchmark : ``"proxford"``, ``"prparis"`` or ``"none"`` (ignored queries); default
        from the gnd name.
    image_sizes : ``{(q, i): (width, height)}`` for the image canvas.
    warnings : warnings of the readers, carried into the result (pairs refused by the
        rasteriser's caps are added, naming *matches_path*).
    """
    proto = Protocol.of(protocol)
    bm = benchmark if benchmark is not None else benchmark_for(gnd.name)
    if bm not in IGNORED_QUERIES:
        raise ValueError(f"benchmark must be one of {sorted(IGNORED_QUERIES)}, got {bm!r}")
    warnings = list(warnings or [])
    pairs = compute_pair_ious(gnd, gt, preds, protocol=proto, image_sizes=image_sizes,
                              warnings=warnings, path=matches_path)
    scan = None
    if ranks is not None:
        scan = ranks if isinstance(ranks, RankScan) else scan_ranks(ranks, gnd, path=ranks_path)
    image_level = evaluate_revisited(scan, gnd) if scan is not None else None
    setups = {}
    for setup in PIXEL_SETUPS:
        qb, qs = miou(gnd, pairs, setup, protocol=proto)
        extra: dict = {}
        if scan is not None:
            img = image_level[setup]
            m, mt, pq = map_at_k(scan, gnd, pairs, setup, protocol=proto, benchmark=bm,
                                 iou_kind="bbox")
            extra = dict(image_map=img.mAP, map_at_k=m, map_t=mt, per_query_ap_t=pq,
                         n_positives=img.n_pos)
            if "seg" in proto.threshold_iou:
                ms, mts, pqs = map_at_k(scan, gnd, pairs, setup, protocol=proto, benchmark=bm,
                                        iou_kind="seg")
                extra.update(map_at_k_seg=ms, map_t_seg=mts, per_query_ap_t_seg=pqs)
        setups[setup] = PixelSetupResult(
            miou_bbox=aggregate_miou(qb, proto), miou_seg=aggregate_miou(qs, proto),
            per_query_bbox=qb, per_query_seg=qs, **extra)
    return PixelResult(protocol=proto.name, benchmark=bm, pairs=pairs, setups=setups,
                       warnings=warnings, rules=proto)


__all__ = ["IGNORED_QUERIES", "PIXEL_SETUPS", "THRESHOLDS", "Pair", "PixelResult",
           "PixelSetupResult", "aggregate_miou", "benchmark_for", "canvas_for",
           "compute_pair_ious", "evaluate_pixel", "map_at_k", "miou", "pair_canvas",
           "pair_iou", "pair_ious", "undefined_reasons"]
