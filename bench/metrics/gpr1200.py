"""GPR1200 mAP over the full ranking and its six subsets (docs/PROTOCOLS.md §3).

Two ways to score embeddings (``Protocol.gpr_scores``, docs/PROTOCOLS.md §3 'Scores
under each protocol'):

- official (``"released"``): the released ``eval/utils.py`` computation, the product
  ``F @ F.T`` of the embeddings in their own dtype (float32 in, float32 scores; one call,
  which numpy hands to BLAS ``syrk``, so the bits are the released code's on the same
  BLAS), ties by index at exact equality of those scores; see :class:`ReleasedScores`;
- strict (``"exact"``): the scores below.

Strict scores are float64 and ties are broken by index, deterministically:

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
from bench.protocol import METRICS, Protocol, ProtocolLike

SUBSETS = ("landmarks", "inat", "sketch", "instre", "sop", "faces")
GPR_SIZE = 12_000
_BLOCK = 256  # query rows per product (a reused (256, n) float64 buffer: 24.6 MB at n = 12,000)
_TASK = 64  # rows per counting task (threads share a block's tasks): 0.8 MB of comparisons
#: Official scores are one (n, n) product when it takes at most this many bytes (12,000
#: float32 images: 576 MB; float64: 1.15 GB), else row blocks of it (see ReleasedScores).
FULL_PRODUCT_BYTES = 2 << 30
_L2_BLOCK_BYTES = 64 << 20  # official l2: the (rows, n, d) differences of one block


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


# ---------------------------------------------------------------- official scores


@dataclass(frozen=True, eq=False)
class ReleasedScores:
    """Official GPR1200 scores (docs/PROTOCOLS.md §3): the released ``eval/utils.py``
    computation in the embeddings' own dtype (float32 or float64), higher first.

    ``full`` is the whole ``(n, n)`` score matrix when it was computed in one call (the
    released code's call, bit for bit on the same BLAS); otherwise (above
    :data:`FULL_PRODUCT_BYTES`) ``x`` holds the rows and each block is
    ``x[rows] @ x.T``, the same formula whose last bits may differ from the one-call
    product. l2 scores are minus the released ``np.linalg.norm(q[:, None] - x[None],
    axis=2)`` distances (negation is exact: the released ascending order); the AP of l2
    is computed without them all (:func:`_ap_released_l2`), ``block`` gives them for
    checks.
    """

    x: np.ndarray  # (n, d) the rows in their own dtype (normalised for cosine)
    metric: str
    full: np.ndarray | None
    path: object = None
    input_rows: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    def block(self, rows: slice) -> np.ndarray:
        """Scores of the query rows *rows* against all n images, in the embeddings' dtype;
        a non-finite score (the product overflowed) is a :class:`BenchError`."""
        if self.full is not None:
            return self.full[rows]
        with np.errstate(over="ignore", invalid="ignore"):
            s = _released_product(self.x, self.metric, rows)
        _check_finite(s, self, rows.start or 0)
        return s


def _released_product(x: np.ndarray, metric: str, rows: slice) -> np.ndarray:
    if metric != "l2":
        return x[rows] @ x.T
    q = x[rows]
    out = np.empty((q.shape[0], x.shape[0]), dtype=x.dtype)
    step = max(1, _L2_BLOCK_BYTES // max(1, x.shape[0] * x.shape[1] * x.itemsize))
    for r in range(0, q.shape[0], step):
        np.negative(np.linalg.norm(q[r:r + step, None, :] - x[None, :, :], axis=2),
                    out=out[r:r + step])
    return out


def _check_finite(scores: np.ndarray, sc: ReleasedScores, row0: int) -> None:
    ok = np.isfinite(scores).all(axis=1)
    if not ok.all():
        _raise_range(sc, row0 + int(np.flatnonzero(~ok)[0]), "overflow", "would be inf or NaN")


def _check_magnitudes(sc: ReleasedScores) -> None:
    """Every row's squared norm, in the dtype, must be finite and, for a non-zero row,
    at least the dtype's smallest normal number: else its products overflow (inf, NaN)
    or underflow (ties at 0) in the released computation, an error naming the row."""
    x = sc.x
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        sq = np.einsum("ij,ij->i", x, x)
    if not np.isfinite(sq).all():
        r = int(np.flatnonzero(~np.isfinite(sq))[0])
        _raise_range(sc, r, "overflow", "would be inf or NaN")
    tiny = (sq < np.finfo(x.dtype).tiny) & (x != 0).any(axis=1)
    if tiny.any():
        _raise_range(sc, int(np.flatnonzero(tiny)[0]), "underflow",
                     "would round to 0 (or lose precision) and tie")


def _raise_range(sc: ReleasedScores, r: int, kind: str, effect: str) -> None:
    what = {"dot": "the dot products", "cosine": "the dot products (and the norm)",
            "l2": "the squared distances"}[sc.metric]
    raise BenchError(f"{sc.dtype} {kind}", sc.path,
                     f"{what} of {_row_name(r, sc.input_rows)} {kind} {sc.dtype} (largest "
                     f"|entry| {float(np.max(np.abs(sc.x[r]))):.3g}): the released code's "
                     f"scores {effect} under the official protocol; use --protocol strict "
                     "(protocol=\"strict\"), whose float64 scores of rows rescaled by powers of "
                     "two rank any finite magnitude (docs/PROTOCOLS.md §3)")


def prepare_released(embeddings: np.ndarray, metric: str, *, path: object = None,
                     input_rows: np.ndarray | None = None,
                     full_bytes: int | None = None) -> ReleasedScores:
    """Validate *embeddings* ``(n, d)`` and compute the official :class:`ReleasedScores`.

    float32 and float64 embeddings keep their dtype; any other dtype is read as float64
    (as :func:`bench.formats.gpr1200.load_embeddings` does). dot: ``F @ F.T``, the released
    ``"cosine"``; cosine: the rows divided by their norm in their own dtype
    (``x / np.linalg.norm(x, axis=1, keepdims=True)``), then the same product; l2: the
    released ``"L2"`` distances. Raises :class:`BenchError` naming the file and the row
    for a non-finite value, an all-zero row under cosine, a row whose squared norm
    overflows the dtype or underflows below its smallest normal number (float32: 1e20
    entries overflow, 1e-20 ones underflow), and any score that overflows.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] == 0:
        raise BenchError("wrong array shape", path, f"embeddings must be (n, d); got {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    x = np.ascontiguousarray(x)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        r = int(np.flatnonzero(~finite)[0])
        raise BenchError("non-finite values", path, f"{_row_name(r, input_rows)} holds NaN or inf")
    sc = ReleasedScores(x=x, metric=metric, full=None, path=path, input_rows=input_rows)
    _check_magnitudes(sc)
    if metric == "cosine":
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            norm = np.linalg.norm(x, axis=1, keepdims=True)
        if not (norm > 0).all():
            r = int(np.flatnonzero(~(norm[:, 0] > 0))[0])
            raise BenchError("zero embedding", path,
                             f"{_row_name(r, input_rows)} is all zeros: its cosine similarity "
                             "to any image is undefined (use --metric dot or l2, or drop that "
                             "image)")
        x = x / norm
        sc = ReleasedScores(x=x, metric=metric, full=None, path=path, input_rows=input_rows)
    n = x.shape[0]
    cap = FULL_PRODUCT_BYTES if full_bytes is None else full_bytes
    if metric != "l2" and n * n * x.itemsize <= cap:
        with np.errstate(over="ignore", invalid="ignore"):
            full = x @ x.T  # the released call: numpy hands F @ F.T to BLAS syrk
        _check_finite(full, sc, 0)
        sc = ReleasedScores(x=x, metric=metric, full=full, path=path, input_rows=input_rows)
    return sc


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


def ap_embeddings(embeddings: np.ndarray | Scores | ReleasedScores, categories: np.ndarray, *,
                  metric: str = "cosine", block: int = _BLOCK, workers: int | None = None,
                  path: object = None, input_rows: np.ndarray | None = None,
                  protocol: ProtocolLike = "official") -> np.ndarray:
    """Per-image AP, every image querying all n images (itself included).

    *protocol*'s ``gpr_scores`` (docs/PROTOCOLS.md §3) picks the scores when raw
    embeddings are given: ``"released"`` (official) computes the :class:`ReleasedScores`,
    ``"exact"`` (strict) prepares float64 :class:`Scores`. Prepared scores of either kind
    are used as given (the protocol is then ignored).

    Blocks of queries: strict, one float64 BLAS product each (multi-threaded by BLAS)
    into a reused buffer, rounded to float32 for the counting of
    :func:`positive_positions` (exact: near ties are counted again in float64); official,
    rows of the released scores, counted in their own dtype (float32 scores directly;
    float64 ones like strict's). The counting is split over *workers* threads (numpy
    releases the GIL in comparisons and reductions), so both cores work. *path* and
    *input_rows* name the file and its rows in error messages.
    """
    if isinstance(embeddings, Scores | ReleasedScores):
        sc = embeddings
    elif Protocol.of(protocol).gpr_scores == "released":
        sc = prepare_released(embeddings, metric, path=path, input_rows=input_rows)
    else:
        sc = prepare(embeddings, metric, path=path, input_rows=input_rows)
    pos_idx, n_pos = _positives_table(categories)
    n = categories.size
    if sc.n != n:
        raise ValueError(f"{sc.n} embeddings for {n} categories")
    ap = np.empty(n, dtype=np.float64)
    workers = workers or min(4, os.cpu_count() or 1)
    if isinstance(sc, ReleasedScores) and sc.metric == "l2" and sc.full is None:
        return _ap_released_l2(sc, pos_idx, n_pos, block, workers)
    rows = min(block, n)
    width = -(-n // 8) * 8  # float32 rows padded to whole 8-byte words (popcount)
    buf32 = np.full((rows, width), -np.inf, dtype=np.float32)
    native32 = isinstance(sc, ReleasedScores) and sc.dtype == np.float32
    buf64 = None if isinstance(sc, ReleasedScores) else np.empty((rows, n), dtype=np.float64)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for s in range(0, n, block):
            e = min(s + block, n)
            if isinstance(sc, ReleasedScores):
                blk = sc.block(slice(s, e))
            else:
                blk = sc.block(slice(s, e), out=buf64)
            near = buf32[:e - s]
            near[:, :n] = blk  # float32 scores copied; float64 ones rounded (order kept)
            exact = None if native32 else blk

            def work(r0: int, exact=exact, near=near, s=s, e=e) -> None:
                r1 = min(r0 + _TASK, e - s)
                positions = positive_positions(
                    near[r0:r1], pos_idx[s + r0:s + r1],
                    exact=None if exact is None else exact[r0:r1])
                ap[s + r0:s + r1] = _ap_from_positions(positions, n_pos[s + r0:s + r1])

            list(pool.map(work, range(0, e - s, _TASK)))
    return ap


def _released_l2_dist(x: np.ndarray, q: int, cols: np.ndarray) -> np.ndarray:
    """The released ``"L2"`` distances of query row q to rows *cols*, bit for bit: the
    same elementwise operations and last-axis reduction as
    ``np.linalg.norm(Q[:, None, :] - X[None, :, :], axis=2)``."""
    return np.linalg.norm(x[q:q + 1][:, None, :] - x[cols][None, :, :], axis=2)[0]


def _ap_released_l2(sc: ReleasedScores, pos_idx: np.ndarray, n_pos: np.ndarray, block: int,
                    workers: int) -> np.ndarray:
    """Official l2 AP without computing all n^2 released distances (docs/PROTOCOLS.md §3).

    The released float32 distance r differs from the exact one by a relative error of at
    most (ceil(log2 d) + 4) units of the dtype in r^2 (rounded differences, squares and
    a pairwise sum), so two images can be ordered differently by r than by the exact
    distance only when their exact squared distances lie within a band T of each other.
    Per positive p of query q: position = #{j : D2_j < D2_p - T} + #{j in the band :
    r_j < r_p, or r_j == r_p and j < p}, with D2 a float64 expansion
    ``|x_q|^2 + |x_j|^2 - 2 x_q.x_j`` (its own error bound added to T) and r computed by
    the released formula for the band only (rare).
    """
    x = sc.x
    n, d = x.shape
    x64 = x.astype(np.float64)
    sq = np.einsum("ij,ij->i", x64, x64)
    lim = float(np.finfo(x.dtype).max)
    if 4.0 * float(sq.max()) > lim:  # some distance^2 may overflow the dtype
        _raise_range(sc, int(np.argmax(sq)), "overflow", "would be inf or NaN")
    unit = float(np.finfo(x.dtype).eps) / 2
    rel = 4.0 * (2 * (math.ceil(math.log2(max(d, 2))) + 4) + 4) * unit  # x2 margin
    eps64 = float(np.finfo(np.float64).eps)
    ap = np.empty(n, dtype=np.float64)

    def rows_ap(s: int, e: int) -> None:
        d2 = sq[s:e, None] + sq[None, :] - 2.0 * (x64[s:e] @ x64.T)
        pidx = pos_idx[s:e]
        valid = pidx >= 0
        safe = np.where(valid, pidx, 0)
        v = np.take_along_axis(d2, safe, axis=1)
        t = rel * np.abs(v) + 8.0 * d * eps64 * (sq[s:e, None] + sq[safe])
        lo = np.empty(pidx.shape, dtype=np.int64)
        band = np.empty(pidx.shape, dtype=np.int64)
        for k in range(pidx.shape[1]):
            vk, tk = v[:, k:k + 1], t[:, k:k + 1]
            lo[:, k] = np.count_nonzero(d2 < vk - tk, axis=1)
            band[:, k] = np.count_nonzero(np.abs(d2 - vk) <= tk, axis=1)
        for r, k in zip(*np.nonzero(valid & (band > 1)), strict=True):
            q, p = s + int(r), int(safe[r, k])
            cols = np.flatnonzero(np.abs(d2[r] - v[r, k]) <= t[r, k])
            rd = _released_l2_dist(x, q, cols)
            rp = rd[np.searchsorted(cols, p)]
            lo[r, k] += int(np.count_nonzero((rd < rp) | ((rd == rp) & (cols < p))))
        if not np.isfinite(d2).all():
            _raise_range(sc, s + int(np.flatnonzero(~np.isfinite(d2).all(axis=1))[0]),
                         "overflow", "would be inf or NaN")
        lo[~valid] = n
        ap[s:e] = _ap_from_positions(lo, n_pos[s:e])

    step = max(1, min(block, _TASK))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda s0: rows_ap(s0, min(s0 + step, n)), range(0, n, step)))
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
                     path: object = None, input_rows: np.ndarray | None = None,
                     protocol: ProtocolLike = "official") -> GprResult:
    """mAP and the six subset mAPs (docs/PROTOCOLS.md §3). Give *embeddings* or *indices*.

    *protocol* (``"official"``, ``"strict"`` or a :class:`~bench.protocol.Protocol`, its
    ``gpr_scores`` field) decides how embeddings are scored: official, the released
    product in the embeddings' own dtype; strict, exact float64 scores (§3 'Scores under
    each protocol'). Indices mode is the same under both.

    *path* (the embeddings file) and *input_rows* (the file row of each image in
    evaluation order, when an order file rearranged them) only name the culprit in a
    :class:`BenchError` (non-finite value, all-zero row under cosine).
    """
    categories = np.asarray(categories, dtype=np.int64)
    if (embeddings is None) == (indices is None):
        raise ValueError("give exactly one of embeddings or indices")
    if embeddings is not None:
        ap = ap_embeddings(embeddings, categories, metric=metric, path=path,
                           input_rows=input_rows, protocol=protocol)
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


__all__ = ["FULL_PRODUCT_BYTES", "GPR_SIZE", "METRICS", "SUBSETS", "GprResult",
           "ReleasedScores", "Scores", "ap_embeddings", "ap_indices", "evaluate_gpr1200",
           "neighbours", "positive_positions", "prepare", "prepare_released",
           "subset_assignment"]
