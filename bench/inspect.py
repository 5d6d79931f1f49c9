"""Per-query and per-pair views for the inspection app (pure functions, no Streamlit).

Everything here re-reads numbers the metrics modules computed (AP, P@k, pair IoUs) or
rearranges the inputs they use (ranks, ground-truth lists), so what the app shows for one
query is, by construction, what went into the benchmark's mean:

- :func:`top_k` / :func:`missed_positives`: the ranked list with ground-truth labels and
  the positives ranked below k (docs/PROTOCOLS.md §1 'Setups');
- :func:`pr_points`: the points of the trapezoidal AP of §1 step 3;
- :func:`query_pairs`, :func:`pair_error_masks`: one query's pixel pairs and the masks
  behind a pair's seg IoU (docs/PROTOCOLS.md §2.1);
- :func:`metric_table`: official and strict numbers side by side, with why they differ;
- GPR1200: :func:`load_gpr_inputs`, :func:`gpr_neighbours`, :func:`worst_categories` (§3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.evaluate import GprInputs, load_gpr_inputs, num
from bench.formats.gpr1200 import GprImages
from bench.formats.revisited import Gnd
from bench.geometry import PairMasks, pair_masks, truncate
from bench.metrics.gpr1200 import SUBSETS, GprResult, neighbours
from bench.metrics.pixel import PixelResult, pair_canvas
from bench.metrics.revisited import (
    RankScan,
    RevisitedSetupResult,
    pr_curve,
    setup_adjusted,
    setup_lists,
)
from bench.protocol import SETUPS, setup_labels

Pair = tuple[int, int]


# ---------------------------------------------------------------- revisited: one query

def image_name(gnd: Gnd, i: int, distractors: Sequence[str] | None = None) -> str:
    """Database image name; indices past ``imlist`` are R1M distractors, named from
    *distractors* (``revisitop1m.txt``: ``DatasetFiles.distractor_list()``) when it has
    that line, else ``"distractor N"``."""
    if 0 <= i < gnd.n_db:
        return gnd.imlist[i]
    j = i - gnd.n_db
    if distractors is not None and 0 <= j < len(distractors):
        return distractors[j]
    return f"distractor {j}"


def labels_of(gnd: Gnd, q: int) -> dict[int, str]:
    """``{database index: "easy" | "hard" | "junk"}`` of query q (unlisted = negative).
    An index in several lists keeps the most positive label (easy, then hard, then junk)."""
    out: dict[int, str] = {}
    for label in ("junk", "hard", "easy"):
        for i in getattr(gnd, label)[q].tolist():
            out[int(i)] = label
    return out


def role(label: str, setup: str) -> str:
    """``"positive"``, ``"junk"`` or ``"negative"``: what a label counts as under *setup*."""
    if label == "negative":
        return "negative"
    return "positive" if label in setup_labels(setup)[0] else "junk"


@dataclass(frozen=True)
class RankedItem:
    """One database image of a query's ranking."""

    rank: int | None  # 1-based position in the ranking; None = not in a truncated ranking
    db: int
    name: str
    label: str  # easy / hard / junk / negative (the ground truth)
    role: str  # positive / junk / negative under the chosen setup


def top_k(ranks: np.ndarray, gnd: Gnd, q: int, k: int, *, setup: str = "medium"
          ) -> list[RankedItem]:
    """The first *k* database images of query q's ranking (column q of ``(n_rows, n_q)``)."""
    col = np.asarray(ranks[:k, q]).astype(np.int64)
    lab = labels_of(gnd, q)
    out = []
    for r, i in enumerate(col.tolist(), start=1):
        label = lab.get(i, "negative")
        out.append(RankedItem(r, i, image_name(gnd, i), label, role(label, setup)))
    return out


def rank_lookup(scan: RankScan, q: int) -> dict[int, int]:
    """``{database index: 1-based rank}`` of query q's easy, hard and junk images found in
    its ranking (from the scan; no pass over the ranks)."""
    out: dict[int, int] = {}
    for c in ("easy", "hard", "junk"):
        for p, i in zip(scan.pos[c][q].tolist(), scan.ids[c][q].tolist(), strict=True):
            out[int(i)] = int(p) + 1
    return out


def missed_positives(scan: RankScan, gnd: Gnd, q: int, k: int, *, setup: str = "medium"
                     ) -> list[RankedItem]:
    """The setup's positives of query q ranked below *k* (or absent from a truncated
    ranking, ``rank=None``, listed last), best rank first."""
    positives, _ = setup_lists(gnd, setup, q)
    ranks = rank_lookup(scan, q)
    lab = labels_of(gnd, q)
    out = []
    for i in np.unique(positives).tolist():
        r = ranks.get(int(i))
        if r is None or r > k:
            out.append(RankedItem(r, int(i), image_name(gnd, i), lab[int(i)], "positive"))
    return sorted(out, key=lambda it: (it.rank is None, it.rank or 0, it.db))


@dataclass(frozen=True)
class QueryStats:
    ap: float  # NaN when the query has no positive under the setup
    pk: dict[int, float]
    n_pos: int
    found_in_top: dict[int, int]  # k -> positives within the first k raw ranks


def query_stats(res: RevisitedSetupResult, scan: RankScan, gnd: Gnd, q: int, *,
                setup: str, ks: tuple[int, ...] = (1, 5, 10, 20, 50, 100)) -> QueryStats:
    """AP and P@k of query q as computed by the metric, plus raw hit counts per k."""
    positives, _ = setup_lists(gnd, setup, q)
    ranks = rank_lookup(scan, q)
    pos_ranks = np.array([ranks[i] for i in np.unique(positives).tolist() if i in ranks])
    return QueryStats(ap=float(res.ap[q]), pk={k: float(v[q]) for k, v in res.pk.items()},
                      n_pos=int(res.n_pos[q]),
                      found_in_top={k: int(np.count_nonzero(pos_ranks <= k)) for k in ks})


def pr_points(scan: RankScan, gnd: Gnd, setup: str, q: int) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at each retrieved positive of query q, junk removed (§1 step 2):
    the points whose trapezoids make the AP."""
    adj, _, n_pos = setup_adjusted(scan, gnd, setup, q)
    return pr_curve(adj, n_pos)


# ---------------------------------------------------------------- pixel level

@dataclass(frozen=True)
class PairRow:
    """One easy or hard pair of a query, with what the pixel metrics saw of it."""

    q: int
    db: int
    name: str
    label: str
    rank: int | None
    has_gt: bool
    has_pred: bool
    bbox: float | None  # IoU under the protocol of the result it came from; None = not scored
    seg: float | None


def query_pairs(gnd: Gnd, q: int, *, result: PixelResult | None,
                gt: dict[Pair, list[np.ndarray]], preds: dict[Pair, np.ndarray | None],
                ranks: dict[int, int] | None = None) -> list[PairRow]:
    """Query q's easy and hard pairs, best-ranked first (unranked last)."""
    lab = labels_of(gnd, q)
    ranks = ranks or {}
    rows = []
    for i in np.unique(np.concatenate([gnd.easy[q], gnd.hard[q]])).tolist():
        iou = result.pairs.get((q, i)) if result is not None else None
        rows.append(PairRow(q, i, image_name(gnd, i), lab[i], ranks.get(i), bool(gt.get((q, i))),
                            preds.get((q, i)) is not None,
                            None if iou is None else iou[0], None if iou is None else iou[1]))
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.db))


def pair_error_masks(pred: np.ndarray, gt_shapes: list[np.ndarray], *, protocol: str,
                     image_size: tuple[int, int] | None) -> PairMasks:
    """The prediction and ground-truth masks behind a pair's seg IoU under *protocol*
    (coordinates truncated, canvas as §2 / strict), in their common window."""
    p = truncate(pred)
    g = [truncate(s) for s in gt_shapes]
    return pair_masks(p, g, pair_canvas(p, g, protocol, image_size))


def setup_iou_values(gnd: Gnd, result: PixelResult, setup: str
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """(bbox IoUs, seg IoUs) of the setup's scored pairs (easy + hard for medium, hard for
    hard, easy for easy) and the number of its pairs without a score (no prediction)."""
    b, s, missing = [], [], 0
    for q in range(gnd.n_queries):
        pos = np.concatenate([getattr(gnd, c)[q] for c in setup_labels(setup)[0]])
        for i in np.unique(pos).tolist():
            v = result.pairs.get((q, i))
            if v is None:
                missing += 1
            else:
                b.append(v[0])
                s.append(v[1])
    return np.asarray(b, dtype=np.float64), np.asarray(s, dtype=np.float64), missing


# ---------------------------------------------------------------- official vs strict

#: Why a number can differ between the protocols (docs/PROTOCOLS.md §1, §2, §4):
#: (metric prefix, setup or "" for any) -> the rules responsible.
WHY_DIFFERENT = {
    ("mP@", ""): "official P@k uses kq = min(largest adjusted rank, k); strict: hits / k",
    ("mIoU", "medium"): "official skips easy pairs without prediction and uses the square "
                        "canvas of side S; strict counts them as 0 and uses the image",
    ("mIoU", ""): "official uses the square canvas of side S (and a query without pairs "
                  "makes the mean NaN); strict uses the image",
    ("mAP@k", ""): "official: N at t = the positives localised above t, a query with none "
                   "leaves mAP_t; strict: N = all the setup's positives, such a query scores "
                   "0 (docs/PROTOCOLS.md §2.3); also the canvas (square vs image) and "
                   "PROxford/PRParis's ignored queries (kept in the denominator vs dropped)",
}


def why_different(metric: str) -> str:
    """The protocol rules that can make *metric* (e.g. ``"mIoU bbox medium"``) differ."""
    setup = metric.rsplit(" ", 1)[-1]
    for (prefix, s), why in WHY_DIFFERENT.items():
        if metric.startswith(prefix) and s in ("", setup):
            return why
    return ""


def revisited_numbers(res: dict[str, RevisitedSetupResult]) -> dict[str, float | None]:
    """``{"mAP easy": x, "mP@1 easy": x, ...}`` in a fixed order."""
    out: dict[str, float | None] = {}
    for setup in SETUPS:
        r = res[setup]
        out[f"mAP {setup}"] = num(r.mAP)
        for k, v in r.mP.items():
            out[f"mP@{k} {setup}"] = num(v)
    return out


def pixel_numbers(res: PixelResult) -> dict[str, float | None]:
    """``{"mIoU bbox medium": x, ..., "mAP@k medium": x}`` in a fixed order."""
    out: dict[str, float | None] = {}
    for setup, r in res.setups.items():
        out[f"mIoU bbox {setup}"] = num(r.miou_bbox)
        out[f"mIoU seg {setup}"] = num(r.miou_seg)
        if r.map_at_k is not None:
            out[f"mAP@k {setup}"] = num(r.map_at_k)
    return out


@dataclass(frozen=True)
class MetricRow:
    metric: str
    official: float | None
    strict: float | None
    differs: bool
    why: str


def metric_table(official: dict[str, float | None], strict: dict[str, float | None], *,
                 tol: float = 5e-5) -> list[MetricRow]:
    """Rows of the official-vs-strict table; ``differs`` when the two printed percentages
    (2 decimals) would differ, with the protocol rule responsible."""
    rows = []
    for name, a in official.items():
        b = strict.get(name)
        differs = (a is None) != (b is None) or (a is not None and b is not None
                                                 and abs(a - b) > tol)
        rows.append(MetricRow(name, a, b, differs, why_different(name) if differs else ""))
    return rows


# ---------------------------------------------------------------- GPR1200

def gpr_neighbours(inputs: GprInputs, q: int, k: int
                   ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Top-k images of query q (itself included, as in the protocol): (indices, scores,
    same-category flags). Scores: similarity (cosine, dot), Euclidean distance (l2), or
    None in indices mode."""
    cats = inputs.images.categories
    if inputs.embeddings is not None:
        idx, sims = neighbours(inputs.embeddings, q, k, metric=inputs.metric)
        if inputs.metric == "l2":  # prepare()'s score is x_q.x_j - |x_j|^2 / 2: report distance
            xq = inputs.embeddings[q].astype(np.float64)
            sims = np.sqrt(np.maximum(float(xq @ xq) - 2.0 * sims, 0.0))
    else:
        idx, sims = inputs.indices[q, :k], None
    return idx, sims, cats[idx] == cats[q]


def category_label(imgs: GprImages, cat: int) -> str:
    text = imgs.category_text.get(int(cat))
    return f"{cat} · {text}" if text else str(cat)


@dataclass(frozen=True)
class CategoryRow:
    category: int
    text: str
    subset: str
    mean_ap: float
    min_ap: float
    n_images: int


def category_rows(imgs: GprImages, res: GprResult) -> list[CategoryRow]:
    """Mean and minimum AP of every category, worst first."""
    cats = imgs.categories
    rows = []
    for c in np.unique(cats).tolist():
        sel = cats == c
        rows.append(CategoryRow(int(c), imgs.category_text.get(int(c), ""),
                                SUBSETS[int(res.subset_of[np.flatnonzero(sel)[0]])],
                                float(res.ap[sel].mean()), float(res.ap[sel].min()),
                                int(sel.sum())))
    return sorted(rows, key=lambda r: (r.mean_ap, r.category))


def worst_categories(imgs: GprImages, res: GprResult, n: int = 10) -> list[CategoryRow]:
    return category_rows(imgs, res)[:n]


__all__ = ["WHY_DIFFERENT", "CategoryRow", "GprInputs", "MetricRow", "PairRow",
           "QueryStats", "RankedItem", "category_label", "category_rows", "gpr_neighbours",
           "image_name", "labels_of", "load_gpr_inputs", "metric_table", "missed_positives",
           "pair_error_masks", "pixel_numbers", "pr_points", "query_pairs", "query_stats",
           "rank_lookup", "revisited_numbers", "role", "setup_iou_values", "top_k",
           "why_different", "worst_categories"]
