"""GPR1200 mAP over the full ranking and its six subsets (PROTOCOLS §3).

Embeddings mode never sorts a whole row: a positive's 0-based position is the number of
images ranked before it (higher similarity, or equal similarity and lower index), so
per block of queries we (1) take the block's similarities (the BLAS product, the floor),
(2) keep only images at least as similar as the query's least similar positive, and
(3) count, for each positive, the candidates ranked before it. The cost above the product
is one comparison pass plus work proportional to the number of candidates.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

METRICS = ("cosine", "dot", "l2")
SUBSETS = ("landmarks", "inat", "sketch", "instre", "sop", "faces")
GPR_SIZE = 12_000
_BLOCK = 512


@dataclass(frozen=True, eq=False)
class GprResult:
    ap: np.ndarray  # per image, in file order
    mAP: float
    subsets: dict[str, float]
    subset_of: np.ndarray  # subset index (0..5) of every image


def subset_assignment(categories: np.ndarray) -> np.ndarray:
    """Subset index of each image: blocks of 2,000 by position for the real 12,000 images,
    else six equal contiguous blocks of categories (in order of first appearance)."""
    n = categories.size
    if n == GPR_SIZE:
        return np.arange(n) // (GPR_SIZE // len(SUBSETS))
    _, first = np.unique(categories, return_index=True)
    order = categories[np.sort(first)]  # categories in file order
    block_of_cat = np.empty(order.size, dtype=np.int64)
    for b, chunk in enumerate(np.array_split(np.arange(order.size), len(SUBSETS))):
        block_of_cat[chunk] = b
    lookup = dict(zip(order.tolist(), block_of_cat.tolist(), strict=True))
    return np.array([lookup[c] for c in categories.tolist()], dtype=np.int64)


def prepare(embeddings: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (X, col_offset) such that similarity(q, j) = X[q] @ X[j] + col_offset[j].

    cosine: L2-normalised rows; dot: rows as given; l2: x_q.x_j - ||x_j||^2 / 2, which is
    -||x_q - x_j||^2 / 2 up to a per-row constant (so the ranking within a row is unchanged).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    x = embeddings
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms == 0, 1, norms).astype(x.dtype), None
    if metric == "dot":
        return x, None
    return x, -0.5 * np.einsum("ij,ij->i", x, x)


def similarities(x: np.ndarray, offset: np.ndarray | None, rows: slice | np.ndarray) -> np.ndarray:
    s = x[rows] @ x.T
    if offset is not None:
        s += offset.astype(s.dtype)[None, :]
    return s


def _row_count(mask: np.ndarray) -> np.ndarray:
    """Number of True per row: a uint8 sum into int32 (about 3x faster than
    ``count_nonzero(axis=1)``, which accumulates in int64)."""
    return np.add.reduce(mask.view(np.uint8), axis=1, dtype=np.int32)


def positive_positions(sims: np.ndarray, pos_idx: np.ndarray) -> np.ndarray:
    """0-based positions of each row's positives in that row's ranking (ties by index).

    sims (B, n); pos_idx (B, K) indices of the positives, -1 for padding. Returns (B, K)
    int64 positions (padding = n). The position of positive p with similarity t is
    #{j : s_j > t} + #{j < p : s_j == t}: two dense comparison passes per positive into
    one reused buffer, no sort; the second term is looked at only in the rare rows with
    an exact tie besides the positive itself.
    """
    b, n = sims.shape
    valid = pos_idx >= 0
    safe = np.where(valid, pos_idx, 0)
    pv = np.take_along_axis(sims, safe, axis=1)
    out = np.empty(pos_idx.shape, dtype=np.int64)
    buf = np.empty(sims.shape, dtype=bool)
    for k in range(pos_idx.shape[1]):
        t = pv[:, k:k + 1]
        np.greater(sims, t, out=buf)
        out[:, k] = _row_count(buf)
        np.equal(sims, t, out=buf)
        eq = _row_count(buf)
        for r in np.flatnonzero((eq > 1) & valid[:, k]).tolist():  # exact ties: rare
            p = int(safe[r, k])
            out[r, k] += int(np.count_nonzero(sims[r, :p] == t[r, 0]))
    out[~valid] = n
    return out


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


def ap_embeddings(embeddings: np.ndarray, categories: np.ndarray, *, metric: str = "cosine",
                  block: int = _BLOCK, workers: int | None = None) -> np.ndarray:
    """Per-image AP, every image querying all n images (itself included).

    Blocks of queries: one BLAS product each (multi-threaded by BLAS), then the counting
    passes of :func:`positive_positions` split over *workers* threads (numpy releases the
    GIL in comparisons and reductions), so both cores work in both phases.
    """
    x, off = prepare(embeddings, metric)
    pos_idx, n_pos = _positives_table(categories)
    n = categories.size
    ap = np.empty(n, dtype=np.float64)
    workers = workers or min(4, os.cpu_count() or 1)
    step = 128  # rows per task: a 1.5 MB comparison buffer at n = 12,000 (stays in cache)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for s in range(0, n, block):
            e = min(s + block, n)
            sims = similarities(x, off, slice(s, e))

            def work(r0: int, sims=sims, s=s, e=e) -> None:
                r1 = min(r0 + step, e - s)
                positions = positive_positions(sims[r0:r1], pos_idx[s + r0:s + r1])
                ap[s + r0:s + r1] = _ap_from_positions(positions, n_pos[s + r0:s + r1])

            list(pool.map(work, range(0, e - s, step)))
    return ap


def ap_indices(indices: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Per-image AP from (n, k) neighbour lists, normalised by the positives found (0 if none)."""
    hits = categories[indices] == categories[:, None]
    cum = np.cumsum(hits, axis=1)
    ranks = np.arange(1, indices.shape[1] + 1, dtype=np.float64)[None, :]
    found = hits.sum(axis=1)
    return np.where(hits, cum / ranks, 0.0).sum(axis=1) / np.maximum(found, 1)


def evaluate_gpr1200(categories: np.ndarray, *, embeddings: np.ndarray | None = None,
                     metric: str = "cosine", indices: np.ndarray | None = None) -> GprResult:
    """mAP and the six subset mAPs (PROTOCOLS §3). Give *embeddings* or *indices*."""
    categories = np.asarray(categories, dtype=np.int64)
    if (embeddings is None) == (indices is None):
        raise ValueError("give exactly one of embeddings or indices")
    if embeddings is not None:
        ap = ap_embeddings(embeddings, categories, metric=metric)
    else:
        ap = ap_indices(indices, categories)
    sub = subset_assignment(categories)
    subsets = {name: (float(ap[sub == b].mean()) if np.any(sub == b) else math.nan)
               for b, name in enumerate(SUBSETS)}
    return GprResult(ap=ap, mAP=float(ap.mean()), subsets=subsets, subset_of=sub)


def neighbours(embeddings: np.ndarray, q: int, k: int, *, metric: str = "cosine"
               ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (indices, similarity) of image q, best first, ties by index (for browsing)."""
    x, off = prepare(embeddings, metric)
    s = similarities(x, off, slice(q, q + 1))[0]
    k = min(k, s.size)
    part = np.argpartition(-s, k - 1)[:k] if k < s.size else np.arange(s.size)
    thr = s[part].min()
    cand = np.flatnonzero(s >= thr)
    order = cand[np.lexsort((cand, -s[cand]))][:k]
    return order, s[order]
