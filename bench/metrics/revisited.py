"""Revisited Oxford / Paris image-level metrics: AP, mAP, mP@k (PROTOCOLS §1).

The ranks array is scanned once, column by column (a memory-mapped R1M ranks file is
never copied whole): each column is gathered through a small label table, so the cost
is one pass over the ranks plus work proportional to the number of positives and junk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.errors import BenchError
from bench.formats.revisited import Gnd
from bench.metrics import check_protocol

SETUPS = ("easy", "medium", "hard")
KS = (1, 5, 10)

_EASY, _HARD, _JUNK = 1, 2, 4


@dataclass(frozen=True, eq=False)
class RankScan:
    """Where each query's easy, hard and junk images sit in its ranking.

    ``pos[c][q]`` are the sorted 0-based positions in column q of the items of category
    ``c`` (``"easy"``, ``"hard"``, ``"junk"``) and ``ids[c][q]`` their database indices.
    """

    n_rows: int
    pos: dict[str, list[np.ndarray]]
    ids: dict[str, list[np.ndarray]]


def setup_lists(gnd: Gnd, setup: str, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Positives and junk of query q under *setup* (PROTOCOLS §1, 'Setups')."""
    if setup == "easy":
        return gnd.easy[q], np.concatenate([gnd.junk[q], gnd.hard[q]])
    if setup == "medium":
        return np.concatenate([gnd.easy[q], gnd.hard[q]]), gnd.junk[q]
    if setup == "hard":
        return gnd.hard[q], np.concatenate([gnd.junk[q], gnd.easy[q]])
    raise ValueError(f"setup must be one of {SETUPS}, got {setup!r}")


def _setup_categories(setup: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return {
        "easy": (("easy",), ("junk", "hard")),
        "medium": (("easy", "hard"), ("junk",)),
        "hard": (("hard",), ("junk", "easy")),
    }[setup]


_CHUNK_BYTES = 16 << 20  # rows read at once: contiguous, all columns of the group
_GROUP = 14  # queries whose "seen" tables (one byte per database index) are live at once


def _range_error(block: np.ndarray, g0: int, path: object, n_db: int,
                 n_rows: int, limit: int) -> BenchError:
    bad_at = np.argwhere((block < 0) | (block >= limit))[0]
    bad = int(block[bad_at[0], bad_at[1]])
    return BenchError("index out of range", path,
                      f"column {g0 + int(bad_at[1])} holds database index {bad}; valid indices "
                      f"are 0..{limit - 1} (imlist has {n_db} names, ranks have {n_rows} rows)")


def scan_ranks(ranks: np.ndarray, gnd: Gnd, *, path: object = None) -> RankScan:
    """Validate *ranks* ``(n_rows, n_queries)`` and locate each query's labelled images.

    The (possibly memory-mapped) array is read in contiguous row chunks, never column by
    column (a column of a C-order R1M file touches every page of it). Raises
    :class:`BenchError` (naming *path*) for an index below 0 or above
    ``max(n_rows, len(imlist)) - 1``, or an index listed twice in one column.
    """
    n_rows, n_q = ranks.shape
    if n_q != gnd.n_queries:
        raise BenchError("wrong array shape", path,
                         f"ranks have {n_q} columns but the ground truth has {gnd.n_queries} queries")
    n_db = gnd.n_db
    limit = max(n_rows, n_db)
    pos: dict[str, list[np.ndarray]] = {"easy": [], "hard": [], "junk": []}
    ids: dict[str, list[np.ndarray]] = {"easy": [], "hard": [], "junk": []}
    rows_per_chunk = max(1024, _CHUNK_BYTES // max(1, ranks.itemsize * n_q))
    for g0 in range(0, n_q, _GROUP):
        g1 = min(g0 + _GROUP, n_q)
        # label table per query (last slot: every index >= n_db, the distractors)
        table = np.zeros((g1 - g0, n_db + 1), dtype=np.uint8)
        for q in range(g0, g1):
            table[q - g0, gnd.easy[q]] |= _EASY
            table[q - g0, gnd.hard[q]] |= _HARD
            table[q - g0, gnd.junk[q]] |= _JUNK
        seen = np.zeros((g1 - g0, limit), dtype=bool)
        hits: list[list[np.ndarray]] = [[] for _ in range(g1 - g0)]
        for r0 in range(0, n_rows, rows_per_chunk):
            block = np.asarray(ranks[r0:r0 + rows_per_chunk, g0:g1])
            cols = np.ascontiguousarray(block.T)
            if cols.min() < 0 or cols.max() >= limit:
                raise _range_error(block, g0, path, n_db, n_rows, limit)
            for k in range(g1 - g0):
                col = cols[k]
                seen[k, col] = True
                codes = table[k, np.minimum(col, n_db)]
                hit = np.flatnonzero(codes)
                if hit.size:
                    hits[k].append(np.stack([hit + r0, col[hit], codes[hit]]).astype(np.int64))
        for k in range(g1 - g0):
            q = g0 + k
            if np.count_nonzero(seen[k]) != n_rows:  # some index listed twice: name it
                counts = np.bincount(np.asarray(ranks[:, q]), minlength=1)
                dup = int(np.argmax(counts))
                raise BenchError("duplicate index", path,
                                 f"column {q} lists database index {dup} {int(counts[dup])} times")
            h = np.concatenate(hits[k], axis=1) if hits[k] else np.zeros((3, 0), np.int64)
            for name, bit in (("easy", _EASY), ("hard", _HARD), ("junk", _JUNK)):
                sel = (h[2] & bit) != 0
                pos[name].append(h[0, sel])
                ids[name].append(h[1, sel])
    return RankScan(n_rows=n_rows, pos=pos, ids=ids)


def adjusted_positions(pos: np.ndarray, junk: np.ndarray) -> np.ndarray:
    """0-based positions of positives minus the junk ranked strictly before each (§1 step 2)."""
    pos = np.sort(pos)
    if junk.size == 0:
        return pos
    return pos - np.searchsorted(np.sort(junk), pos, side="left")


def average_precision(adj: np.ndarray, n_pos: int) -> float:
    """Trapezoidal AP of §1 step 3 from sorted adjusted 0-based positions *adj*.

    ``n_pos`` counts all positives, also those missing from a truncated ranking.
    Returns NaN when ``n_pos == 0``.
    """
    if n_pos == 0:
        return math.nan
    if adj.size == 0:
        return 0.0
    r = adj.astype(np.float64)
    j = np.arange(1, r.size + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p0 = np.where(r == 0, 1.0, (j - 1) / np.where(r == 0, 1.0, r))
    p1 = j / (r + 1)
    return float(np.sum((p0 + p1) / 2.0) / n_pos)


def precision_at_k(adj: np.ndarray, k: int, *, protocol: str = "official") -> float:
    """P@k from sorted adjusted 0-based positions (§1 step 4).

    official: ``kq = min(max_j s_j, k)`` and P@k = #{s_j <= kq} / kq (the released code's
    quirk: with all positives in the top k the precision is 1, not n/k).
    strict: the textbook ``#{s_j <= k} / k``.
    """
    if adj.size == 0:
        return 0.0
    s = adj + 1
    if protocol == "official":
        kq = min(int(s.max()), k)
        return float(np.count_nonzero(s <= kq) / kq)
    return float(np.count_nonzero(s <= k) / k)


def pr_curve(adj: np.ndarray, n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at each retrieved positive: recall j/N, precision j/(r_j + 1)."""
    j = np.arange(1, adj.size + 1, dtype=np.float64)
    if n_pos == 0:
        return j * 0.0, j * 0.0
    return j / n_pos, j / (adj.astype(np.float64) + 1.0)


@dataclass(frozen=True, eq=False)
class RevisitedSetupResult:
    """One setup: per-query AP (NaN for a query without positives), P@k, and the means."""

    ap: np.ndarray
    pk: dict[int, np.ndarray]
    n_pos: np.ndarray
    mAP: float
    mP: dict[int, float] = field(default_factory=dict)


def _nanmean(x: np.ndarray) -> float:
    keep = ~np.isnan(x)
    return float(np.mean(x[keep])) if keep.any() else math.nan


def setup_adjusted(scan: RankScan, gnd: Gnd, setup: str, q: int,
                   keep_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Adjusted positions, database ids (in rank order) and N of query q's positives.

    *keep_ids*, when given, restricts the positives to those database ids (pixel mAP@k
    keeps only positives whose IoU clears the threshold; the rest are neither positive
    nor junk).
    """
    pos_cats, junk_cats = _setup_categories(setup)
    pos = np.concatenate([scan.pos[c][q] for c in pos_cats])
    ids = np.concatenate([scan.ids[c][q] for c in pos_cats])
    n_pos = int(np.unique(np.concatenate([getattr(gnd, c)[q] for c in pos_cats])).size)
    if len(pos_cats) > 1 and pos.size:
        # an image listed both easy and hard is found twice: keep it once
        ids, first = np.unique(ids, return_index=True)
        pos = pos[first]
    if keep_ids is not None:
        sel = np.isin(ids, keep_ids)
        pos, ids = pos[sel], ids[sel]
        n_pos = int(np.unique(keep_ids).size)
    order = np.argsort(pos, kind="stable")
    pos, ids = pos[order], ids[order]
    junk = np.unique(np.concatenate([scan.pos[c][q] for c in junk_cats]))
    return adjusted_positions(pos, junk), ids, n_pos


def evaluate_revisited(ranks: np.ndarray | RankScan, gnd: Gnd, *, protocol: str = "official",
                       ks: tuple[int, ...] = KS, path: object = None
                       ) -> dict[str, RevisitedSetupResult]:
    """mAP and mP@k for easy, medium and hard (PROTOCOLS §1).

    Parameters
    ----------
    ranks : (n_rows, n_queries) int array (may be memory-mapped, may be truncated) or a
        :class:`RankScan` made earlier by :func:`scan_ranks`.
    gnd : the loaded ground truth.
    protocol : ``"official"`` (P@k quirk as released) or ``"strict"`` (textbook P@k);
        AP and mAP are the same in both.
    """
    check_protocol(protocol)
    scan = ranks if isinstance(ranks, RankScan) else scan_ranks(ranks, gnd, path=path)
    out: dict[str, RevisitedSetupResult] = {}
    for setup in SETUPS:
        ap = np.full(gnd.n_queries, np.nan)
        pk = {k: np.full(gnd.n_queries, np.nan) for k in ks}
        npos = np.zeros(gnd.n_queries, dtype=np.int64)
        for q in range(gnd.n_queries):
            adj, _, n = setup_adjusted(scan, gnd, setup, q)
            npos[q] = n
            if n == 0:
                continue
            ap[q] = average_precision(adj, n)
            for k in ks:
                pk[k][q] = precision_at_k(adj, k, protocol=protocol)
        out[setup] = RevisitedSetupResult(
            ap=ap, pk=pk, n_pos=npos, mAP=_nanmean(ap), mP={k: _nanmean(v) for k, v in pk.items()})
    return out
