"""Revisited Oxford / Paris image-level metrics: AP, mAP, mP@k (docs/PROTOCOLS.md §1).

The ranks array is read once (a memory-mapped R1M ranks file is never held whole twice,
see :func:`scan_ranks`); each query's easy, hard and junk images are located through a
small table of labels, so everything after the scan costs work proportional to the
number of labelled images, for all three setups at once.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from bench.errors import BenchError
from bench.formats.revisited import Gnd
from bench.protocol import KS, SETUPS, Protocol, ProtocolLike, setup_labels

_EASY, _HARD, _JUNK = 1, 2, 4
_BITS = {"easy": _EASY, "hard": _HARD, "junk": _JUNK}


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
    """Positives and junk of query q under *setup* (docs/PROTOCOLS.md §1, 'Setups')."""
    pos_labels, junk_labels = setup_labels(setup)
    return (np.concatenate([getattr(gnd, c)[q] for c in pos_labels]),
            np.concatenate([getattr(gnd, c)[q] for c in junk_labels]))


_CHUNK_BYTES = 1 << 20  # ranks rows read at once: about 1 MB, all columns


def _range_error(col: np.ndarray, q: int, path: object, n_db: int, n_rows: int,
                 limit: int) -> BenchError:
    col = np.asarray(col)
    bad_at = int(np.flatnonzero((col < 0) | (col >= limit))[0])
    return BenchError("index out of range", path,
                      f"column {q} holds database index {int(col[bad_at])} (row {bad_at}); "
                      f"valid indices are 0..{limit - 1} (imlist has {n_db} names, ranks "
                      f"have {n_rows} rows)")


def _duplicate_error(col: np.ndarray, q: int, path: object) -> BenchError:
    counts = np.bincount(np.asarray(col, dtype=np.intp))
    dup = int(np.argmax(counts))
    return BenchError("duplicate index", path,
                      f"column {q} lists database index {dup} {int(counts[dup])} times")


def _wrap64(x: int) -> np.int64:
    """A Python int reduced to int64 with numpy's wrap-around (two's complement)."""
    return np.int64(((x + 2**63) % 2**64) - 2**63)


@dataclass
class _Part:
    """What one worker gathered from its row blocks."""

    bad: bool = False
    s1: np.ndarray | None = None
    s2: np.ndarray | None = None
    found: list[np.ndarray] = field(default_factory=list)


def _workers(workers: int | None) -> int:
    return max(1, workers or min(4, os.cpu_count() or 1))


def scan_ranks(ranks: np.ndarray, gnd: Gnd, *, path: object = None,
               workers: int | None = None) -> RankScan:
    """Validate *ranks* ``(n_rows, n_queries)`` and locate each query's labelled images.

    One pass over the (possibly memory-mapped) array, in row blocks of about 1 MB (never
    column by column: a column of a row-major R1M file touches every page of it), split
    over *workers* threads (numpy releases the GIL). Per block: the smallest and largest
    index; the positions of every entry below ``len(imlist)`` (distractors are never
    labelled), looked up afterwards in a per-query table of labels (easy, hard, junk
    bits); and, when the ranks hold distractors, each column's sum and sum of squares.
    The cost is one read of the ranks plus work proportional to ``len(imlist)`` per
    query, for all three setups at once.

    Raises :class:`BenchError` (naming *path*) for an index below 0 or above
    ``max(n_rows, len(imlist)) - 1``, or an index listed twice in one column (the lowest
    such column is named). Duplicates are found exactly among the ``imlist`` images.
    With distractors (more rows than ``imlist``) the valid indices are exactly
    ``0..n_rows-1``, so a duplicate means a missing index: every ``imlist`` image must be
    present, and the column's count, sum and sum of squares must be those of
    ``0..n_rows-1`` (docs/PROTOCOLS.md §1 'Ranks'). That finds any duplicated
    distractor that replaces one or two missing ones, and more unless the duplicated and
    the missing indices have equal sums and sums of squares; a distractor is never
    labelled, so such a duplicate changes no number.
    """
    n_rows, n_q = ranks.shape
    if n_q != gnd.n_queries:
        raise BenchError("wrong array shape", path,
                         f"ranks have {n_q} columns but the ground truth has {gnd.n_queries} queries")
    n_db = gnd.n_db
    limit = max(n_rows, n_db)
    distractors = n_rows > n_db
    step = max(64, _CHUNK_BYTES // max(1, n_q * ranks.itemsize))
    starts = list(range(0, n_rows, step))
    n_workers = min(_workers(workers), len(starts))
    parts = [_Part() for _ in range(n_workers)]
    c_order = ranks.flags.c_contiguous
    unsigned = np.dtype(f"{ranks.dtype.byteorder}u{ranks.itemsize}")

    def work(w: int) -> None:
        part = parts[w]
        if distractors:
            part.s1 = np.zeros(n_q, dtype=np.int64)
            part.s2 = np.zeros(n_q, dtype=np.int64)
            sq = np.empty((step, n_q), dtype=np.int64)
        for r0 in starts[w::n_workers]:
            block = ranks[r0:r0 + step]
            if not c_order:
                block = np.ascontiguousarray(block)
            # one reduction checks both ends: a negative index viewed unsigned is huge
            if int(block.view(unsigned).max()) >= limit:
                part.bad = True
                return
            flat = np.flatnonzero(block < n_db)
            if flat.size:
                part.found.append(np.stack([flat % n_q, flat // n_q + r0,
                                            block.reshape(-1)[flat]]).astype(np.int64))
            if distractors:
                part.s1 += block.sum(axis=0, dtype=np.int64)
                t = sq[:block.shape[0]]
                np.square(block, dtype=np.int64, out=t)
                part.s2 += t.sum(axis=0)

    if n_workers > 1:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            list(pool.map(work, range(n_workers)))
    else:
        work(0)
    if any(p.bad for p in parts):
        for q in range(n_q):  # error path: name the lowest bad column
            col = np.asarray(ranks[:, q])
            if col.min() < 0 or col.max() >= limit:
                raise _range_error(col, q, path, n_db, n_rows, limit)
    found = [f for p in parts for f in p.found]
    h = np.concatenate(found, axis=1) if found else np.zeros((3, 0), np.int64)
    h = h[:, np.lexsort((h[1], h[0]))]  # by column, then position
    qs, rows, idx = h
    # duplicates among the imlist images: exact
    key = qs * n_db + idx
    counts = np.bincount(key, minlength=n_q * n_db) if key.size else np.zeros(0, np.int64)
    bad = np.flatnonzero(counts > 1)
    if bad.size:
        q = int(bad[0] // n_db)
        raise _duplicate_error(ranks[:, q], q, path)
    if distractors:
        per_q = np.bincount(qs, minlength=n_q)
        s1 = sum(p.s1 for p in parts)
        s2 = sum(p.s2 for p in parts)
        want1 = _wrap64(n_rows * (n_rows - 1) // 2)
        want2 = _wrap64((n_rows - 1) * n_rows * (2 * n_rows - 1) // 6)
        bad = np.flatnonzero((per_q != n_db) | (s1 != want1) | (s2 != want2))
        if bad.size:
            q = int(bad[0])
            raise _duplicate_error(ranks[:, q], q, path)
    table = np.zeros((n_q, n_db), dtype=np.uint8)
    for q in range(n_q):
        for name, bit in _BITS.items():
            table[q, getattr(gnd, name)[q]] |= bit
    codes = table[qs, idx]
    keep = codes != 0
    qs, rows, idx, codes = qs[keep], rows[keep], idx[keep], codes[keep]
    bounds = np.searchsorted(qs, np.arange(n_q + 1))
    pos: dict[str, list[np.ndarray]] = {name: [] for name in _BITS}
    ids: dict[str, list[np.ndarray]] = {name: [] for name in _BITS}
    for q in range(n_q):
        a, b = bounds[q], bounds[q + 1]
        for name, bit in _BITS.items():
            sel = (codes[a:b] & bit) != 0
            pos[name].append(rows[a:b][sel])
            ids[name].append(idx[a:b][sel])
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


def precision_at_k(adj: np.ndarray, k: int, *, protocol: ProtocolLike = "official") -> float:
    """P@k from sorted adjusted 0-based positions (§1 step 4; ``Protocol.pk_rule``).

    ``"official_kq"``: ``kq = min(max_j s_j, k)`` and P@k = #{s_j <= kq} / kq (the
    released ``compute_map``'s rule: with all positives in the top k the precision is 1,
    not n/k). ``"textbook"``: ``#{s_j <= k} / k``.
    """
    if adj.size == 0:
        return 0.0
    s = adj + 1
    if Protocol.of(protocol).pk_rule == "official_kq":
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
    pos_cats, junk_cats = setup_labels(setup)
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


def evaluate_revisited(ranks: np.ndarray | RankScan, gnd: Gnd, *,
                       protocol: ProtocolLike = "official", ks: tuple[int, ...] = KS,
                       path: object = None) -> dict[str, RevisitedSetupResult]:
    """mAP and mP@k for easy, medium and hard (docs/PROTOCOLS.md §1).

    Parameters
    ----------
    ranks : (n_rows, n_queries) int array (may be memory-mapped, may be truncated) or a
        :class:`RankScan` made earlier by :func:`scan_ranks`.
    gnd : the loaded ground truth.
    protocol : ``"official"``, ``"strict"`` or a :class:`~bench.protocol.Protocol`; only
        its ``pk_rule`` matters here (AP and mAP are the same under every protocol).
    """
    proto = Protocol.of(protocol)
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
                pk[k][q] = precision_at_k(adj, k, protocol=proto)
        out[setup] = RevisitedSetupResult(
            ap=ap, pk=pk, n_pos=npos, mAP=_nanmean(ap), mP={k: _nanmean(v) for k, v in pk.items()})
    return out
