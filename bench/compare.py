"""Compare methods on one dataset: per-query deltas, win/tie/loss, paired tests (docs/PROTOCOLS.md §6).

Built from results already computed by :mod:`bench.metrics` (no file is re-read):

>>> a = MethodResult.from_results("A", revisited=rev_a, pixel=pix_a)   # doctest: +SKIP
>>> b = MethodResult.from_results("B", revisited=rev_b, pixel=pix_b)   # doctest: +SKIP
>>> comp = compare_methods([a, b])                                      # doctest: +SKIP
>>> comp.stats("A", "B", "mAP@k/medium").p["t"]                         # doctest: +SKIP

or from a folder in the released layout with :func:`compare_folder`. The views of a
:class:`Comparison` (JSON, tables, CSV, the paper's LaTeX table, the command line) are in
:mod:`bench.compare_report`.

Metric keys are ``"<measure>/<setup>"``:

- ``mAP/easy``, ``mAP/medium``, ``mAP/hard``: per query the AP (§1); NaN for a query
  without positives. The mean over the other queries is the reported mAP.
- ``mIoU-bbox/medium``, ``mIoU-seg/medium``, ``mIoU-bbox/hard``, ``mIoU-seg/hard``: per
  query the query's mIoU (§2), NaN for a query with an empty list. The reported mIoU is
  their mean (official: NaN if any query is NaN; strict: over the non-NaN queries).
- ``mAP@k/medium``, ``mAP@k/hard`` (and ``mAP@k-seg/...`` in strict mode when given): per
  query the mean over the ten thresholds of the query's AP_t (§2.3, under the protocol's
  N), an empty query at t counting 0; NaN for an ignored query or one without
  positives. Under strict no query is ever empty and the mean of these values is the
  strict mAP@k; see :func:`per_query_map_at_k` for the official relation.
- ``IoU-bbox/pairs``, ``IoU-seg/pairs``: per easy or hard pair predicted by at least one
  of the compared methods, its IoU (a method without a prediction for it: 0).

Statistics of each pair of methods (a, b) on each metric use the deltas
``d = value_a - value_b`` over the entries where both values are finite; deltas with
``|d| < tol`` are ties and are set to exactly 0 before testing.
"""

from __future__ import annotations

import math
import os
import warnings as _warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy import stats

from bench.errors import BenchError, BenchWarning
from bench.formats.revisited import Gnd
from bench.metrics import check_protocol
from bench.metrics.pixel import IGNORED_QUERIES, PIXEL_SETUPS, PixelResult
from bench.metrics.revisited import SETUPS, RevisitedSetupResult

Pair = tuple[int, int]

TESTS = ("t", "wilcoxon", "permutation")
DEFAULT_TOL = 1e-9
DEFAULT_PERMUTATIONS = 10_000
DEFAULT_BOOTSTRAP = 9_999
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95

PAIR_METRICS = ("IoU-bbox/pairs", "IoU-seg/pairs")
METRIC_ORDER = (
    *(f"mAP/{s}" for s in SETUPS),
    *(f"{m}/{s}" for s in PIXEL_SETUPS for m in ("mIoU-bbox", "mIoU-seg", "mAP@k", "mAP@k-seg")),
    *PAIR_METRICS,
)


def _metric_rank(name: str) -> int:
    return METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER)


# ---------------------------------------------------------------- per-query values


def per_query_map_at_k(ap_t: np.ndarray, n_pos: np.ndarray,
                       ignored: frozenset[int] | set[int] = frozenset()) -> np.ndarray:
    """Per-query mAP@k (docs/PROTOCOLS.md §6): ``v_q = (1/T) * sum_t a_tq``.

    Parameters
    ----------
    ap_t : (T, n_queries) AP of query q at threshold t (``PixelSetupResult.per_query_ap_t``;
        NaN where q is left out: ignored, without positives, or, officially, empty at t:
        no positive's IoU above t).
    n_pos : (n_queries,) number of positives of the setup per query.
    ignored : the benchmark's ignored queries (§2).

    Returns
    -------
    (n_queries,) float: ``a_tq`` is AP_t of q, or 0 when q is empty at t; NaN for an
    ignored query and for a query without positives.

    Relation to the reported number: with ``n`` the number of non-NaN ``v_q``, ``D_t``
    the denominator of the reported mAP_t (official: non-ignored queries with a positive
    above t plus the ignored ones; strict: non-ignored queries with a positive),
    ``mean_q v_q = (1/T) * sum_t mAP_t * D_t / n`` (a term with ``D_t = 0``, where mAP_t
    is NaN, counts 0). Under strict (``n_at_threshold="all"``) ``D_t = n`` at every t, so
    ``v_q`` is exactly the strict mAP@k's summand: ``mAP@k = mean_q v_q``
    (docs/PROTOCOLS.md §6.1). Officially a query empty at t leaves mAP_t while the
    ignored queries count 0 in it, so the official mAP@k is not the mean of the ``v_q``.
    """
    ap_t = np.asarray(ap_t, dtype=np.float64)
    v = np.nan_to_num(ap_t, nan=0.0).mean(axis=0)
    v[np.asarray(n_pos) == 0] = np.nan
    for q in ignored:
        if 0 <= q < v.size:
            v[q] = np.nan
    return v


@dataclass(frozen=True, eq=False)
class MethodResult:
    """One method's per-query values on one dataset, and the numbers it reports.

    ``per_query[metric]`` is ``(n_queries,)`` float (NaN = not evaluated);
    ``reported[metric]`` is the benchmark's own number (mAP, mIoU, mAP@k), which for
    ``mAP@k`` is not the mean of the per-query values (see :func:`per_query_map_at_k`).
    ``pairs`` holds ``{(q, i): (bbox IoU, seg IoU)}`` of the predicted pairs.
    """

    name: str
    protocol: str
    n_queries: int
    per_query: dict[str, np.ndarray]
    reported: dict[str, float]
    pairs: dict[Pair, tuple[float, float]] | None = None
    benchmark: str | None = None
    warnings: list[BenchWarning] = field(default_factory=list)

    @classmethod
    def from_results(cls, name: str, *, revisited: Mapping[str, RevisitedSetupResult] | None = None,
                     pixel: PixelResult | None = None, gnd: Gnd | None = None,
                     protocol: str | None = None) -> MethodResult:
        """Build from results computed earlier (no file is read).

        Parameters
        ----------
        revisited : ``{"easy"|"medium"|"hard": RevisitedSetupResult}`` from
            :func:`bench.metrics.revisited.evaluate_revisited`.
        pixel : :class:`bench.metrics.pixel.PixelResult` from ``evaluate_pixel``.
        gnd : the ground truth; needed for per-query mAP@k only when *revisited* is not
            given (the number of positives per query tells "no positive" from "empty at t").
        protocol : defaults to ``pixel.protocol`` (else ``"official"``); must agree with it.
        """
        if revisited is None and pixel is None:
            raise ValueError(f"method {name!r}: give a revisited or a pixel result")
        proto = protocol or (pixel.protocol if pixel is not None else "official")
        check_protocol(proto)
        if pixel is not None and pixel.protocol != proto:
            raise ValueError(f"method {name!r}: pixel result is {pixel.protocol}, asked {proto}")
        per_query: dict[str, np.ndarray] = {}
        reported: dict[str, float] = {}
        nq = None
        if revisited is not None:
            for setup in SETUPS:
                r = revisited[setup]
                per_query[f"mAP/{setup}"] = np.asarray(r.ap, dtype=np.float64)
                reported[f"mAP/{setup}"] = float(r.mAP)
                nq = r.ap.size
        if pixel is not None:
            ignored = IGNORED_QUERIES.get(pixel.benchmark, frozenset())
            for setup in PIXEL_SETUPS:
                r = pixel.setups[setup]
                per_query[f"mIoU-bbox/{setup}"] = np.asarray(r.per_query_bbox, dtype=np.float64)
                per_query[f"mIoU-seg/{setup}"] = np.asarray(r.per_query_seg, dtype=np.float64)
                reported[f"mIoU-bbox/{setup}"] = float(r.miou_bbox)
                reported[f"mIoU-seg/{setup}"] = float(r.miou_seg)
                nq = r.per_query_bbox.size
                if r.per_query_ap_t is None:
                    continue
                if revisited is not None:
                    n_pos = revisited[setup].n_pos
                elif gnd is not None:
                    n_pos = _n_pos(gnd, setup)
                else:
                    raise ValueError(f"method {name!r}: per-query mAP@k needs the revisited "
                                     "result or the gnd (to tell queries without positives)")
                per_query[f"mAP@k/{setup}"] = per_query_map_at_k(r.per_query_ap_t, n_pos, ignored)
                reported[f"mAP@k/{setup}"] = float(r.map_at_k)
                if f"mAP/{setup}" not in reported and r.image_map is not None:
                    reported[f"mAP/{setup}"] = float(r.image_map)
                if r.per_query_ap_t_seg is not None and r.map_at_k_seg is not None:
                    per_query[f"mAP@k-seg/{setup}"] = per_query_map_at_k(
                        r.per_query_ap_t_seg, n_pos, ignored)
                    reported[f"mAP@k-seg/{setup}"] = float(r.map_at_k_seg)
        sizes = {v.size for v in per_query.values()}
        if len(sizes) > 1:
            raise ValueError(f"method {name!r}: results of different query counts {sorted(sizes)}")
        return cls(name=name, protocol=proto, n_queries=int(nq or 0), per_query=per_query,
                   reported=reported, pairs=dict(pixel.pairs) if pixel is not None else None,
                   benchmark=pixel.benchmark if pixel is not None else None,
                   warnings=list(pixel.warnings) if pixel is not None else [])


def _n_pos(gnd: Gnd, setup: str) -> np.ndarray:
    if setup == "medium":
        return np.array([np.unique(np.concatenate([e, h])).size
                         for e, h in zip(gnd.easy, gnd.hard, strict=True)])
    return np.array([np.unique(h).size for h in gnd.hard])


# ---------------------------------------------------------------- statistics


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979); NaN entries stay NaN and are not
    counted in the family.

    With the m finite p-values sorted ascending p_(1) <= ... <= p_(m):
    ``p~_(k) = max_{j <= k} min(1, (m - j + 1) * p_(j))``. Reject at level alpha where
    ``p~ < alpha`` (the same decisions as Holm's sequential procedure).
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    running = 0.0
    for k, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


def rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation ``(R+ - R-) / (R+ + R-)`` over the non-zero
    deltas, ranks of ``|d|`` with average ranks for ties (Kerby 2014); 0 if all are zero."""
    d = np.asarray(d, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    r = stats.rankdata(np.abs(d))
    return float((r[d > 0].sum() - r[d < 0].sum()) / r.sum())


@dataclass(frozen=True, eq=False)
class PairStats:
    """Paired statistics of ``a - b`` on one metric (docs/PROTOCOLS.md §6).

    ``n`` entries used (both finite), ``n_missing`` left out (either NaN). ``p`` holds the
    two-sided p-values of ``"t"`` (``ttest_rel``), ``"wilcoxon"`` (signed-rank, zeros
    dropped, exact for n <= 50 without ties) and ``"permutation"`` (sign flips of the
    deltas; exact when ``permutation_exact``); ``p_holm`` the same after Holm's correction
    across the method pairs of this metric. ``ci`` is the bootstrap interval of the mean
    delta. ``d_z`` = mean / sd of the deltas (inf when the sd is 0 and the mean is not).
    """

    a: str
    b: str
    metric: str
    n: int
    n_missing: int
    mean_delta: float
    ci: tuple[float, float]
    wins: int
    ties: int
    losses: int
    p: dict[str, float]
    d_z: float
    rank_biserial: float
    permutation_exact: bool
    p_holm: dict[str, float] = field(default_factory=dict)

    def flipped(self) -> PairStats:
        """The same statistics seen as ``b - a``."""
        return PairStats(a=self.b, b=self.a, metric=self.metric, n=self.n,
                         n_missing=self.n_missing, mean_delta=-self.mean_delta,
                         ci=(-self.ci[1], -self.ci[0]), wins=self.losses, ties=self.ties,
                         losses=self.wins, p=dict(self.p), d_z=-self.d_z,
                         rank_biserial=-self.rank_biserial,
                         permutation_exact=self.permutation_exact, p_holm=dict(self.p_holm))

    def direction(self, test: str) -> float:
        """Sign of the effect the test measures: the mean delta (t, permutation) or the
        rank-biserial correlation (Wilcoxon)."""
        return self.rank_biserial if test == "wilcoxon" else self.mean_delta


def _mean_stat(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def paired_stats(x: np.ndarray, y: np.ndarray, *, a: str = "a", b: str = "b", metric: str = "",
                 tol: float = DEFAULT_TOL, n_permutations: int = DEFAULT_PERMUTATIONS,
                 n_bootstrap: int = DEFAULT_BOOTSTRAP, confidence: float = DEFAULT_CONFIDENCE,
                 seed: int = DEFAULT_SEED) -> PairStats:
    """Paired comparison of two aligned value arrays (docs/PROTOCOLS.md §6).

    Entries where either value is NaN are dropped (``n_missing``). Deltas with
    ``|d| < tol`` are ties and become exactly 0. Each random procedure uses its own
    ``numpy.random.default_rng(seed)``, so results do not depend on call order.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d arrays of one length, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    d[np.abs(d) < tol] = 0.0
    n = int(d.size)
    nan = math.nan
    wins, losses = int(np.count_nonzero(d > 0)), int(np.count_nonzero(d < 0))
    ties = n - wins - losses
    p = {"t": nan, "wilcoxon": nan, "permutation": nan}
    mean = float(d.mean()) if n else nan
    ci = (nan, nan)
    d_z = nan
    exact = n <= 62 and 2 ** n <= n_permutations
    # all deltas equal up to the tie tolerance (x - (x - c) is not exactly c in floats)
    all_equal = n > 0 and float(np.ptp(d)) <= tol
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        if n and not np.any(d):  # all ties: no evidence of a difference
            p = {"t": 1.0, "wilcoxon": 1.0, "permutation": 1.0}
        elif n:
            if n >= 2:
                # all deltas equal and non-zero: t is infinite, p = 0 (scipy's limit too)
                p["t"] = 0.0 if all_equal else float(stats.ttest_rel(d, np.zeros(n)).pvalue)
            p["wilcoxon"] = float(stats.wilcoxon(d).pvalue)
            res = stats.permutation_test(
                (d, np.zeros(n)), _mean_stat, permutation_type="samples", vectorized=True,
                n_resamples=n_permutations, alternative="two-sided",
                rng=np.random.default_rng(seed))
            p["permutation"] = float(res.pvalue)
        if all_equal:
            ci = (mean, mean)
        elif n >= 2:
            ci = _bootstrap_ci(d, n_bootstrap, confidence, seed)
        if n >= 2:
            sd = float(np.std(d, ddof=1))
            if all_equal:
                d_z = 0.0 if mean == 0 else math.copysign(math.inf, mean)
            else:
                d_z = mean / sd
    return PairStats(a=a, b=b, metric=metric, n=n, n_missing=int(keep.size - n),
                     mean_delta=mean, ci=ci, wins=wins, ties=ties, losses=losses, p=p,
                     d_z=float(d_z), rank_biserial=rank_biserial(d) if n else nan,
                     permutation_exact=exact)


def _bootstrap_ci(d: np.ndarray, n_resamples: int, confidence: float, seed: int
                  ) -> tuple[float, float]:
    """BCa bootstrap interval of the mean; the percentile interval where BCa is undefined
    (degenerate resamples)."""
    for method in ("BCa", "percentile"):
        res = stats.bootstrap((d,), np.mean, n_resamples=n_resamples,
                              confidence_level=confidence, method=method, vectorized=True,
                              rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    return math.nan, math.nan


# ---------------------------------------------------------------- comparison


@dataclass(frozen=True, eq=False)
class Comparison:
    """Two or more methods compared on one dataset under one protocol.

    ``per_query[metric][method]``: (n_queries,) values; ``per_pair[metric][method]``:
    values aligned with ``pair_keys``; ``reported[metric][method]``: the benchmark's own
    number (absent metric: the method has no such result). ``pairs``: one
    :class:`PairStats` per metric and pair of methods (a before b in ``methods``).
    """

    methods: list[str]
    dataset: str
    protocol: str
    benchmark: str | None
    n_queries: int
    query_names: list[str] | None
    reported: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, np.ndarray]]
    pair_keys: list[Pair]
    per_pair: dict[str, dict[str, np.ndarray]]
    pairs: list[PairStats]
    settings: dict
    warnings: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> list[str]:
        return sorted({*self.per_query, *self.per_pair}, key=_metric_rank)

    def values(self, metric: str, method: str) -> np.ndarray:
        src = self.per_pair if metric in self.per_pair else self.per_query
        return src[metric][method]

    def deltas(self, a: str, b: str, metric: str) -> np.ndarray:
        """``value_a - value_b`` per entry (NaN where either is NaN), before tie zeroing."""
        return self.values(metric, a) - self.values(metric, b)

    def stats(self, a: str, b: str, metric: str) -> PairStats:
        for s in self.pairs:
            if s.metric == metric and (s.a, s.b) == (a, b):
                return s
            if s.metric == metric and (s.a, s.b) == (b, a):
                return s.flipped()
        raise KeyError(f"no statistics for {a!r} vs {b!r} on {metric!r}")

    def better(self, a: str, b: str, metric: str, *, test: str = "t", alpha: float = 0.05,
               correction: str = "holm") -> bool:
        """True when a is significantly better than b (p < alpha, effect in a's favour)."""
        try:
            s = self.stats(a, b, metric)
        except KeyError:
            return False
        pv = (s.p_holm if correction == "holm" else s.p).get(test, math.nan)
        return bool(pv < alpha and s.direction(test) > 0)


def compare_methods(results: Mapping[str, MethodResult] | Sequence[MethodResult], *,
                    dataset: str = "", query_names: Sequence[str] | None = None,
                    metrics: Sequence[str] | None = None, tol: float = DEFAULT_TOL,
                    n_permutations: int = DEFAULT_PERMUTATIONS,
                    n_bootstrap: int = DEFAULT_BOOTSTRAP,
                    confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED
                    ) -> Comparison:
    """Compare two or more methods on one dataset and protocol (docs/PROTOCOLS.md §6).

    A metric is compared between two methods when both have it. Holm's correction runs,
    per metric and per test, across the pairs of methods compared on that metric.
    """
    items = list(results.values()) if isinstance(results, Mapping) else list(results)
    names = [m.name for m in items]
    if len(items) < 2:
        raise ValueError("compare needs two or more methods")
    if len(set(names)) != len(names):
        raise ValueError(f"method names repeat: {names}")
    protos = {m.protocol for m in items}
    if len(protos) > 1:
        raise ValueError(f"methods evaluated under different protocols: {sorted(protos)}")
    nqs = {m.n_queries for m in items if m.per_query}
    if len(nqs) > 1:
        raise ValueError(f"methods have different query counts {sorted(nqs)}: not one dataset")
    nq = nqs.pop() if nqs else 0
    if query_names is not None and len(query_names) != nq:
        raise ValueError(f"{len(query_names)} query names for {nq} queries")
    wanted = set(metrics) if metrics is not None else None

    per_query: dict[str, dict[str, np.ndarray]] = {}
    reported: dict[str, dict[str, float]] = {}
    for m in items:
        for k, v in m.per_query.items():
            if wanted is None or k in wanted:
                per_query.setdefault(k, {})[m.name] = v
        for k, v in m.reported.items():
            reported.setdefault(k, {})[m.name] = v

    with_pixel = [m for m in items if m.pairs is not None]
    keys = sorted(set().union(*(m.pairs for m in with_pixel))) if with_pixel else []
    per_pair: dict[str, dict[str, np.ndarray]] = {}
    for col, metric in enumerate(PAIR_METRICS):
        if wanted is not None and metric not in wanted or not keys:
            continue
        per_pair[metric] = {m.name: np.array([m.pairs.get(k, (0.0, 0.0))[col] for k in keys],
                                             dtype=np.float64) for m in with_pixel}
        reported[metric] = {n: float(v.mean()) for n, v in per_pair[metric].items()}

    kw = dict(tol=tol, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
              confidence=confidence, seed=seed)
    out: list[PairStats] = []
    for metric in sorted({*per_query, *per_pair}, key=_metric_rank):
        vals = per_pair.get(metric) or per_query[metric]
        fam = [paired_stats(vals[a], vals[b], a=a, b=b, metric=metric, **kw)
               for a, b in combinations(names, 2) if a in vals and b in vals]
        for test in TESTS:
            adj = holm([s.p[test] for s in fam])
            for s, pv in zip(fam, adj, strict=True):
                s.p_holm[test] = float(pv)
        out.extend(fam)
    bms = {m.benchmark for m in items if m.benchmark is not None}
    warns = [f"{m.name}: {w}" for m in items for w in m.warnings]
    return Comparison(methods=names, dataset=dataset, protocol=protos.pop(),
                      benchmark=bms.pop() if len(bms) == 1 else None, n_queries=nq,
                      query_names=list(query_names) if query_names is not None else None,
                      reported=reported, per_query=per_query, pair_keys=keys,
                      per_pair=per_pair, pairs=out,
                      settings={"tol": tol, "n_permutations": n_permutations,
                                "n_bootstrap": n_bootstrap, "confidence": confidence,
                                "seed": seed, "bootstrap": "BCa (percentile if degenerate)",
                                "wilcoxon": "zero_method='wilcox', method='auto'",
                                "correction": "holm, per metric and test across method pairs"},
                      warnings=warns)


# ---------------------------------------------------------------- from a folder


def load_methods(root: str | os.PathLike, dataset: str, methods: Sequence[str], *,
                 protocol: str = "official", images_dir: str | os.PathLike | None = None
                 ) -> tuple[Gnd, dict[str, MethodResult]]:
    """Evaluate *methods* on *dataset* of a released-layout folder (as
    :func:`bench.workspace.discover` reads it), exactly as ``python -m bench revisited`` /
    ``pixel`` do. Unknown names raise :class:`BenchError` naming *root* and listing what
    exists."""
    from bench.evaluate import load_ground_truth_labels
    from bench.formats.pixel import load_matches
    from bench.formats.revisited import load_gnd, load_ranks
    from bench.metrics.pixel import evaluate_pixel
    from bench.metrics.revisited import evaluate_revisited, scan_ranks
    from bench.workspace import discover

    check_protocol(protocol)
    found = {d.name: d for d in discover(root, images_dir=images_dir)}
    if dataset not in found:
        raise BenchError(f"unknown dataset {dataset!r}", root,
                         f"datasets found: {', '.join(sorted(found)) or 'none'}")
    ds = found[dataset]
    missing = [m for m in methods if m not in ds.methods]
    if missing:
        raise BenchError(f"unknown method {missing[0]!r}", root,
                         f"methods with results for {dataset}: "
                         f"{', '.join(sorted(ds.methods)) or 'none'}")
    gnd = load_gnd(ds.gnd)
    labels = None
    out: dict[str, MethodResult] = {}
    for name in methods:
        mf = ds.methods[name]
        scan = revisited = pixel = None
        if mf.ranks is not None:
            scan = scan_ranks(load_ranks(mf.ranks, gnd), gnd, path=mf.ranks)
            revisited = evaluate_revisited(scan, gnd, protocol=protocol)
        if mf.matches is not None and ds.pair_labels is not None:
            if labels is None:
                labels = load_ground_truth_labels(gnd, ds.pair_labels, ds.labels_root)
            gt, sizes, _, warns = labels
            preds, w2 = load_matches(mf.matches, n_queries=gnd.n_queries, n_db=gnd.n_db)
            pixel = evaluate_pixel(gnd, gt, preds, ranks=scan, protocol=protocol,
                                   image_sizes=sizes, warnings=list(warns) + w2)
        if revisited is None and pixel is None:
            raise BenchError(f"no usable results for method {name!r}", root,
                             f"it has a pixel result but {dataset} has no "
                             f"<short>_pair2labelpath.npy")
        out[name] = MethodResult.from_results(name, revisited=revisited, pixel=pixel, gnd=gnd,
                                              protocol=protocol)
    return gnd, out


def compare_folder(root: str | os.PathLike, dataset: str, methods: Sequence[str], *,
                   protocol: str = "official", **kw) -> Comparison:
    """:func:`load_methods` then :func:`compare_methods` (keywords go to the latter)."""
    if len(methods) < 2:
        raise BenchError("too few methods", root, "give two or more with --methods")
    if len(set(methods)) != len(methods):
        raise BenchError("repeated method", root, f"each method once, got {list(methods)}")
    gnd, res = load_methods(root, dataset, methods, protocol=protocol)
    return compare_methods(res, dataset=dataset, query_names=gnd.qimlist, **kw)
