"""GPR1200 mAP over the full ranking and its six subsets (docs/PROTOCOLS.md §3).

Scores are float64 and ties are broken by index, deterministically:

- the embeddings are scaled by powers of two (exact) before any product, per row for
  cosine, so no norm or product overflows whatever their magnitude (``x * 1e20`` in
  float32 gives the same mAP as ``x``); a non-finite value, or an all-zero row under
  cosine, is a :class:`~bench.errors.BenchError` naming the row;
- identical database rows are scored once and share that score, so exact duplicates
  always tie (a BLAS product may otherwise give two identical columns results one ulp
  apart, depending on where they fall in its tiles).

Embeddings mode never sorts a whole row. Per block of queries: (1) the block's scores
(one BLAS product, the floor); (2) one pass keeps, in each row, the images at least as
similar as the row's least similar positive (the only ones that can rank before a
positive); (3) rows are grouped by how many they kept, and for each positive p of score
v its 0-based position is counted among the kept ones: #{s > v} + #{s == v, j < p}.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from bench.errors import BenchError
from bench.protocol import METRICS

SUBSETS = ("landmarks", "inat", "sketch", "instre", "sop", "faces")
GPR_SIZE = 12_000
_BLOCK = 256  # query rows per product (a reused (256, n) float64 buffer: 24.6 MB at n = 12,000)
_TASK = 64  # rows per counting task (threads share a block's tasks): 0.8 MB of comparisons


@dataclass(frozen=True, eq=False)
class GprResult:
    ap: np.ndarray  # per image, in file order
    mAP: float
    subsets: dict[str, float]
    subset_of: np.ndarray  # subset index (0..5) of every image


def subset_assignment(categories: np.ndarray) -> np.ndarray:
    """Subset index of each image: blocks of 2,000 by position for the real 12,000 images,
    else six contiguous blocks of categories (in order of first appearance, which is
    the integer order in evaluation order): with C categories, block b holds categories
    ``floor(b C / 6) .. floor((b + 1) C / 6) - 1`` (docs/PROTOCOLS.md §3)."""
    n = categories.size
    if n == GPR_SIZE:
        return np.arange(n) // (GPR_SIZE // len(SUBSETS))
    _, first = np.unique(categories, return_index=True)
    order = categories[np.sort(first)]  # categories in file order
    n_cat, n_sub = order.size, len(SUBSETS)
    block_of_cat = np.empty(n_cat, dtype=np.int64)
    for b in range(n_sub):
        block_of_cat[b * n_cat // n_sub:(b + 1) * n_cat // n_sub] = b
    lookup = dict(zip(order.tolist(), block_of_cat.tolist(), strict=True))
    return np.array([lookup[c] for c in categories.tolist()], dtype=np.int64)


# ---------------------------------------------------------------- scores


@dataclass(frozen=True, eq=False)
class Scores:
    """Ranking scores, float64: ``score(q, j) = queries[q] @ db[col[j]] + offset[col[j]]``
    (``col`` = *inverse*, or the identity when None).

    Within a query's row the scores order the images exactly as the metric does
    (cosine: higher first; dot: higher first; l2: nearer first); their values are
    scaled and are not the similarities themselves (see :func:`neighbours` for those).
    """

    queries: np.ndarray  # (n, d)
    db: np.ndarray  # (m, d) distinct database rows, m <= n
    offset: np.ndarray | None  # (m,) or None
    inverse: np.ndarray | None  # (n,) row of db of each image, None when m == n

    @property
    def n(self) -> int:
        return self.queries.shape[0]

    def block(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        """Scores of the query rows *rows* against all n images, shape (len(rows), n)."""
        q = self.queries[rows]
        if self.inverse is None:
            s = np.matmul(q, self.db.T, out=None if out is None else out[:q.shape[0]])
            if self.offset is not None:
                s += self.offset[None, :]
            return s
        s = q @ self.db.T
        if self.offset is not None:
            s += self.offset[None, :]
        return np.take(s, self.inverse, axis=1,
                       out=None if out is None else out[:q.shape[0]])


def _pow2_exponent(m: np.ndarray) -> np.ndarray:
    """e with ``m * 2**-e`` in [0.5, 1) (0 where m == 0): exact rescaling exponents."""
    return np.frexp(m)[1]


def _row_name(r: int, input_rows: np.ndarray | None) -> str:
    if input_rows is None:
        return f"row {r}"
    return f"row {int(input_rows[r])} (image {r} in evaluation order)"


def prepare(embeddings: np.ndarray, metric: str, *, path: object = None,
            input_rows: np.ndarray | None = None) -> Scores:
    """Validate *embeddings* ``(n, d)`` and return float64 ranking :class:`Scores`.

    cosine: every row scaled by a power of two to a largest entry in [0.5, 1), then
    normalised (its norm is in [0.5, sqrt(d)): no overflow, no underflow); dot: query
    rows scaled the same way (a positive factor per row leaves that row's ranking
    unchanged), database rows by one common power of two; l2: all rows by one common
    power of two, score ``x_q.x_j - |x_j|^2 / 2`` (= ``-|x_q - x_j|^2 / 2`` up to a
    per-row constant).

    Raises :class:`BenchError` naming the row (*input_rows* maps evaluation order to the
    file's rows, for the message) for a non-finite value, and for an all-zero row under
    cosine (its cosine similarity is undefined).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] == 0:
        raise BenchError("wrong array shape", path, f"embeddings must be (n, d); got {x.shape}")
    x = x.astype(np.float64)  # a copy: never modify the caller's array
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        r = int(np.flatnonzero(~finite)[0])
        raise BenchError("non-finite values", path, f"{_row_name(r, input_rows)} holds NaN or inf")
    if x.shape[1]:
        row_max = np.maximum(x.max(axis=1), -x.min(axis=1))
    else:
        row_max = np.zeros(x.shape[0])
    row_exp = _pow2_exponent(row_max)
    x += 0.0  # -0.0 -> +0.0: equal vectors have equal bytes (see _dedupe)
    if metric == "cosine":
        if not (row_max > 0).all():
            r = int(np.flatnonzero(row_max == 0)[0])
            raise BenchError("zero embedding", path,
                             f"{_row_name(r, input_rows)} is all zeros: its cosine similarity "
                             "to any image is undefined (use --metric dot or l2, or drop that "
                             "image)")
        x *= np.ldexp(1.0, -row_exp)[:, None]  # exact: a power of two per row
        x /= np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
        db, inverse = _dedupe(x)
        return Scores(queries=x, db=db, offset=None, inverse=inverse)
    common = int(_pow2_exponent(np.array(row_max.max())))
    queries = x * np.ldexp(1.0, -row_exp)[:, None] if metric == "dot" else None
    x *= np.ldexp(1.0, -common)
    db, inverse = _dedupe(x)
    if metric == "dot":
        return Scores(queries=queries, db=db, offset=None, inverse=inverse)
    return Scores(queries=x, db=db, offset=-0.5 * np.einsum("ij,ij->i", db, db),
                  inverse=inverse)


def _dedupe(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(distinct rows, inverse) when some rows are identical, else (rows, None).

    A wrap-around integer hash of each row's bytes first (identical rows always hash
    alike, so no duplicate is missed); the exact ``np.unique`` only when two hashes
    collide."""
    if rows.shape[0] < 2:
        return rows, None
    bits = np.ascontiguousarray(rows).view(np.uint64)
    mult = np.random.default_rng(0).integers(1, 2**63, size=bits.shape[1],
                                             dtype=np.uint64) | np.uint64(1)
    h = np.zeros(rows.shape[0], dtype=np.uint64)
    for r0 in range(0, rows.shape[0], 1024):  # bounded temporaries
        h[r0:r0 + 1024] = (bits[r0:r0 + 1024] * mult).sum(axis=1, dtype=np.uint64)
    if np.unique(h).size == rows.shape[0]:
        return rows, None
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    if uniq.shape[0] == rows.shape[0]:
        return rows, None
    return uniq, inverse.reshape(-1).astype(np.intp)


# ---------------------------------------------------------------- positions and AP


def _count_true(mask: np.ndarray) -> np.ndarray:
    """Number of True along the last axis, as int32: a popcount of 8 booleans at a time
    when the rows are a multiple of 8 bytes (several times faster than
    ``count_nonzero(axis=-1)``, which accumulates in int64), else a uint8 sum."""
    if mask.shape[-1] % 8 == 0 and mask.flags.c_contiguous:
        return np.add.reduce(np.bitwise_count(mask.view(np.uint64)), axis=-1, dtype=np.int32)
    return np.add.reduce(mask.view(np.uint8), axis=-1, dtype=np.int32)


def positive_positions(sims: np.ndarray, pos_idx: np.ndarray, *,
                       exact: np.ndarray | None = None) -> np.ndarray:
    """0-based positions of each row's positives in that row's ranking (ties by index).

    sims (B, n) scores, higher first; pos_idx (B, K) column indices of each row's
    positives, -1 for padding. Returns (B, K) int64 positions (padding = n).

    The position of positive p with score v is #{j : s_j > v} + #{j < p : s_j == v}:
    two comparison passes per positive, no sort. *exact*, when given, holds the same
    scores at a higher precision (*sims* is then its rounding, e.g. float64 scores
    rounded to float32 to halve the memory traffic): rounding keeps the order, so where
    no other score rounds to v the counts on *sims* are exact, and the rare positives
    with such a near tie are counted again on *exact*. Columns beyond ``pos_idx``'s
    range (padding added to make rows a multiple of 8) must hold -inf.
    """
    b, n = sims.shape
    valid = pos_idx >= 0
    safe = np.where(valid, pos_idx, 0)
    pv = np.take_along_axis(sims, safe, axis=1)
    gt = np.empty(pos_idx.shape, dtype=np.int64)
    eq = np.empty(pos_idx.shape, dtype=np.int32)
    buf = np.empty(sims.shape, dtype=bool)
    for k in range(pos_idx.shape[1]):
        t = pv[:, k:k + 1]
        np.greater(sims, t, out=buf)
        gt[:, k] = _count_true(buf)
        np.equal(sims, t, out=buf)
        eq[:, k] = _count_true(buf)
    ref = sims if exact is None else exact
    for r, k in zip(*np.nonzero((eq > 1) & valid), strict=True):  # (near) ties: rare
        p = int(safe[r, k])
        row = ref[r]
        v = row[p]
        if exact is not None:
            gt[r, k] = int(np.count_nonzero(row > v))
        gt[r, k] += int(np.count_nonzero(row[:p] == v))
    gt[~valid] = n
    return gt


def _ap_from_positions(positions: np.ndarray, n_pos: np.ndarray) -> np.ndarray:
    """AP = (1/n_pos) sum_m m / (i_m + 1) from (B, K) positions (padding >= n sorts last)."""
    srt = np.sort(positions, axis=1).astype(np.float64)
    m = np.arange(1, srt.shape[1] + 1, dtype=np.float64)[None, :]
    valid = m <= n_pos[:, None]
    contrib = np.where(valid, m / (srt + 1.0), 0.0)
    return contrib.sum(axis=1) / np.maximum(n_pos, 1)


def _positives_table(categories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, K) indices of each image's same-category images (padded -1) and their count."""
    order = np.argsort(categories, kind="stable")
    cats_sorted = categories[order]
    uniq, start, counts = np.unique(cats_sorted, return_index=True, return_counts=True)
    k = int(counts.max())
    members = np.full((uniq.size, k), -1, dtype=np.int64)
    within = np.arange(order.size) - np.repeat(start, counts)
    grp = np.repeat(np.arange(uniq.size), counts)
    members[grp, within] = order
    gid = np.searchsorted(uniq, categories)
    return members[gid], counts[gid]


def ap_embeddings(embeddings: np.ndarray | Scores, categories: np.ndarray, *,
                  metric: str = "cosine", block: int = _BLOCK, workers: int | None = None,
                  path: object = None, input_rows: np.ndarray | None = None) -> np.ndarray:
    """Per-image AP, every image querying all n images (itself included).

    Blocks of queries: one float64 BLAS product each (multi-threaded by BLAS) into a
    reused buffer, rounded to float32 for the counting of :func:`positive_positions`
    (exact: near ties are counted again in float64), split over *workers* threads
    (numpy releases the GIL in comparisons and reductions), so both cores work in both
    phases. *path* and *input_rows* name the file and its rows in error messages.
    """
    sc = embeddings if isinstance(embeddings, Scores) else prepare(
        embeddings, metric, path=path, input_rows=input_rows)
    pos_idx, n_pos = _positives_table(categories)
    n = categories.size
    if sc.n != n:
        raise ValueError(f"{sc.n} embeddings for {n} categories")
    ap = np.empty(n, dtype=np.float64)
    workers = workers or min(4, os.cpu_count() or 1)
    rows = min(block, n)
    width = -(-n // 8) * 8  # float32 rows padded to whole 8-byte words (popcount)
    buf64 = np.empty((rows, n), dtype=np.float64)
    buf32 = np.full((rows, width), -np.inf, dtype=np.float32)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for s in range(0, n, block):
            e = min(s + block, n)
            exact = sc.block(slice(s, e), out=buf64)
            near = buf32[:e - s]
            near[:, :n] = exact  # rounded to float32: half the traffic of the counting

            def work(r0: int, exact=exact, near=near, s=s, e=e) -> None:
                r1 = min(r0 + _TASK, e - s)
                positions = positive_positions(near[r0:r1], pos_idx[s + r0:s + r1],
                                               exact=exact[r0:r1])
                ap[s + r0:s + r1] = _ap_from_positions(positions, n_pos[s + r0:s + r1])

            list(pool.map(work, range(0, e - s, _TASK)))
    return ap


def ap_indices(indices: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Per-image AP from (n, k) neighbour lists, normalised by the positives found (0 if none)."""
    hits = categories[indices] == categories[:, None]
    cum = np.cumsum(hits, axis=1)
    ranks = np.arange(1, indices.shape[1] + 1, dtype=np.float64)[None, :]
    found = hits.sum(axis=1)
    return np.where(hits, cum / ranks, 0.0).sum(axis=1) / np.maximum(found, 1)


def evaluate_gpr1200(categories: np.ndarray, *, embeddings: np.ndarray | None = None,
                     metric: str = "cosine", indices: np.ndarray | None = None,
                     path: object = None, input_rows: np.ndarray | None = None
                     ) -> GprResult:
    """mAP and the six subset mAPs (docs/PROTOCOLS.md §3). Give *embeddings* or *indices*.

    *path* (the embeddings file) and *input_rows* (the file row of each image in
    evaluation order, when an order file rearranged them) only name the culprit in a
    :class:`BenchError` (non-finite value, all-zero row under cosine).
    """
    categories = np.asarray(categories, dtype=np.int64)
    if (embeddings is None) == (indices is None):
        raise ValueError("give exactly one of embeddings or indices")
    if embeddings is not None:
        ap = ap_embeddings(embeddings, categories, metric=metric, path=path,
                           input_rows=input_rows)
    else:
        ap = ap_indices(indices, categories)
    sub = subset_assignment(categories)
    subsets = {name: (float(ap[sub == b].mean()) if np.any(sub == b) else math.nan)
               for b, name in enumerate(SUBSETS)}
    return GprResult(ap=ap, mAP=float(ap.mean()), subsets=subsets, subset_of=sub)


def neighbours(embeddings: np.ndarray, q: int, k: int, *, metric: str = "cosine",
               scores: Scores | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (indices, similarity) of image q, best first, ties by index (for browsing).

    The order is the metric's (:func:`prepare`'s scores); the similarity returned is in
    the embeddings' own units, in float64: cosine, the dot product, or for l2
    ``x_q.x_j - |x_j|^2 / 2`` (``-|x_q - x_j|^2 / 2`` up to a constant of the row).
    Give *scores* (from :func:`prepare`) to skip preparing the embeddings again.
    """
    sc = scores if scores is not None else prepare(embeddings, metric)
    s = sc.block(slice(q, q + 1))[0]
    k = min(k, s.size)
    part = np.argpartition(-s, k - 1)[:k] if k < s.size else np.arange(s.size)
    thr = s[part].min()
    cand = np.flatnonzero(s >= thr)
    order = cand[np.lexsort((cand, -s[cand]))][:k]
    if metric == "cosine":  # the normalised rows: no overflow whatever the magnitudes
        return order, sc.queries[order] @ sc.queries[q]
    x = np.asarray(embeddings, dtype=np.float64)
    xq, xo = x[q], x[order]
    if metric == "dot":
        sims = xo @ xq
    else:
        sims = xo @ xq - 0.5 * np.einsum("ij,ij->i", xo, xo)
    return order, sims


__all__ = ["GPR_SIZE", "METRICS", "SUBSETS", "GprResult", "Scores", "ap_embeddings",
           "ap_indices", "evaluate_gpr1200", "neighbours", "positive_positions", "prepare",
           "subset_assignment"]
