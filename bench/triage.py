"""Failure taxonomy of pixel retrieval and what fixing each failure would buy (TIDE-style).

For every easy or hard pair (q, i) of a setup, at a cut-off k and an IoU threshold t,
one failure type (``docs/PROTOCOLS.md §5``):

- ``missed``: i is a positive of the setup whose junk-free rank (§1 step 2: its 0-based
  position minus the setup's junk ranked before it) is >= k, or i is absent from a
  truncated ranking;
- ``no_region``: in the top k, but the pair has no IoU (no prediction, an unreadable one,
  or no ground-truth label: the pair counts IoU 0 in mAP@k);
- ``wrong_place``: in the top k, IoU <= 0.1 (and IoU <= t);
- ``mislocalised``: in the top k, 0.1 < IoU <= t;
- ``ok``: in the top k, IoU > t.

The IoU is the bbox IoU (what mAP@k thresholds under the official protocol); the strict
protocol may use the seg IoU instead. Pairs that are not positives of the setup (easy
pairs in the hard setup, where they are junk) get ``failure=None``.

The cost of a type is mAP@k (:func:`bench.metrics.pixel.map_at_k`, same protocol, same
ignored queries, the full ranking) recomputed after an oracle fixed that type's pairs
(``recovered[type]``): a localisation type's pairs, and for ``ok`` the ok pairs (which
still fail the thresholds of mAP@k at or above their IoU), get IoU 1; ``missed`` pairs
are moved into the top k (the last positions of the junk-free top k not held by a
found positive, in their original order; their IoU is kept). Combined fixes:
``no_region+wrong_place+mislocalised`` (those three types together), ``localisation``
(every positive of the setup at IoU 1 on the same ranking: a perfect localiser) and
``all`` (missed pairs moved and every positive at IoU 1). Under the official protocol a
fix may *lower* mAP@k: a positive whose IoU fails a threshold leaves N there (§2.3,
``n_at_threshold="surviving"``), so making it a positive at a low rank adds a low
precision term. Under strict N is all the setup's positives, so a fix only adds hits
and never lowers mAP@k.

:func:`triage` is pure (arrays and dicts in, a :class:`TriageResult` out) so a page that
already holds the ground truth, the rank scan and the pair IoUs calls it without reading
a file; :func:`run_triage` reads the files (the inputs of ``python -m bench pixel``).
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from bench.errors import BenchError, BenchWarning
from bench.evaluate import load_pixel_inputs
from bench.formats.revisited import Gnd, load_gnd, load_ranks
from bench.inspect import image_name
from bench.metrics.pixel import compute_pair_ious
from bench.metrics.revisited import RankScan, scan_ranks, setup_lists
from bench.protocol import IGNORED_QUERIES, PIXEL_SETUPS, THRESHOLDS, Protocol, benchmark_for

Pair = tuple[int, int]
PathLike = str | os.PathLike

FAILURES = ("missed", "no_region", "wrong_place", "mislocalised", "ok")
LOCALISATION = ("no_region", "wrong_place", "mislocalised")
LOCALISATION_TYPES = "+".join(LOCALISATION)
FIXES = (*FAILURES, LOCALISATION_TYPES, "localisation", "all")
WRONG_PLACE_MAX = 0.1  # IoU at or below this is "wrong place" (not a near miss)
TRIAGE_SETUPS = PIXEL_SETUPS
N_HARD_NEGATIVES = 50


@dataclass(frozen=True)
class HardNegative:
    """A negative (not easy, hard or junk of q) ranked high for query q."""

    q: int
    i: int
    name: str
    rank: int  # 0-based position in the ranking column
    adj_rank: int  # junk-free 0-based position (§1 step 2), what AP sees
    ignored: bool  # q is an ignored query of the benchmark (not in mAP@k)


@dataclass(frozen=True, eq=False)
class TriageResult:
    """Per-pair failure types, their counts, and mAP@k with each type fixed (§5).

    The per-pair fields are aligned arrays over every easy or hard pair, sorted by (q, i);
    a pair listed both easy and hard appears once, labelled ``easy``.
    """

    setup: str
    k: int
    iou: float
    iou_kind: str
    protocol: str
    benchmark: str
    q: np.ndarray  # (n,) int64 query index
    i: np.ndarray  # (n,) int64 database index
    names: list[str]  # database image names
    label: np.ndarray  # (n,) "easy" | "hard"
    rank: np.ndarray  # (n,) int64 0-based position in the ranking, -1 = absent
    adj_rank: np.ndarray  # (n,) int64 junk-free position, -1 = absent or not a positive
    bbox: np.ndarray  # (n,) float, NaN = the pair has no IoU (no prediction)
    seg: np.ndarray
    failure: np.ndarray  # (n,) object: a FAILURES name, or None (not a positive here)
    ignored: np.ndarray  # (n,) bool: q is an ignored query (not in mAP@k)
    counts: dict[str, int]
    map_at_k: float
    recovered: dict[str, float]  # FIXES name -> mAP@k with that fix applied (§5)
    hard_negatives: list[HardNegative]
    warnings: list[BenchWarning] = field(default_factory=list)

    @property
    def gain(self) -> dict[str, float]:
        """``recovered[fix] - map_at_k`` for every fix (may be negative, see §5)."""
        return {f: v - self.map_at_k for f, v in self.recovered.items()}

    def __len__(self) -> int:
        return int(self.q.size)

    def rows(self) -> list[dict]:
        """One JSON-ready dict per pair (NaN and -1 become None)."""
        out = []
        for n in range(len(self)):
            r, a = int(self.rank[n]), int(self.adj_rank[n])
            out.append({"q": int(self.q[n]), "i": int(self.i[n]), "name": self.names[n],
                        "label": str(self.label[n]), "rank": r if r >= 0 else None,
                        "adj_rank": a if a >= 0 else None, "bbox": _num(self.bbox[n]),
                        "seg": _num(self.seg[n]), "failure": self.failure[n],
                        "ignored": bool(self.ignored[n])})
        return out


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _protocol_name(protocol) -> str:
    return Protocol.of(protocol).name


def check_options(*, setup: str, k: int, iou: float, iou_kind: str, protocol) -> str | None:
    """The reason the options are invalid, or None.

    *protocol* is a preset name or a :class:`bench.protocol.Protocol`; ``iou_kind="seg"``
    needs a protocol whose mAP@k thresholds the seg IoU (the strict preset).
    """
    if setup not in TRIAGE_SETUPS:
        return f"--setup must be one of {', '.join(TRIAGE_SETUPS)}, got {setup!r}"
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        return f"--k must be a positive integer, got {k!r}"
    if isinstance(iou, bool) or not isinstance(iou, (int, float, np.floating)) \
            or not (0.0 <= float(iou) <= 1.0):
        return f"--iou must be a number in [0, 1], got {iou!r}"
    if iou_kind not in ("bbox", "seg"):
        return f"--iou-kind must be bbox or seg, got {iou_kind!r}"
    try:
        proto = Protocol.of(protocol)
    except ValueError:
        return f"--protocol must be official or strict, got {protocol!r}"
    if iou_kind not in proto.threshold_iou:
        return ("--iou-kind seg needs --protocol strict (the official mAP@k thresholds the "
                "bbox IoU)")
    return None


# ---------------------------------------------------------------- per-query facts

@dataclass(frozen=True, eq=False)
class _Query:
    pos_ids: np.ndarray  # the setup's positives, unique, sorted
    raw: np.ndarray  # their 0-based positions in the ranking, -1 = absent
    adj: np.ndarray  # junk-free positions, -1 = absent
    n_free: int  # k_q = min(k, D_q): positions of the top k (see _moved_positions)


def _query_facts(scan: RankScan, gnd: Gnd, setup: str, q: int, k: int) -> _Query:
    positives, junk_ids = setup_lists(gnd, setup, q)
    pos_ids = np.unique(positives).astype(np.int64)
    # raw positions of this query's easy and hard images (each found at most once)
    found_ids = np.concatenate([scan.ids["easy"][q], scan.ids["hard"][q]])
    found_pos = np.concatenate([scan.pos["easy"][q], scan.pos["hard"][q]])
    raw = np.full(pos_ids.size, -1, dtype=np.int64)
    if found_ids.size and pos_ids.size:
        at = np.searchsorted(pos_ids, found_ids)
        at_c = np.minimum(at, pos_ids.size - 1)
        hit = pos_ids[at_c] == found_ids
        raw[at_c[hit]] = found_pos[hit]
    junk_cats = ("junk",) if setup == "medium" else ("junk", "easy")
    junk_pos = np.unique(np.concatenate([scan.pos[c][q] for c in junk_cats]))
    adj = np.where(raw >= 0, raw - np.searchsorted(junk_pos, raw, side="left"), -1)
    n_universe = max(scan.n_rows, gnd.n_db)
    d_q = n_universe - int(np.unique(junk_ids).size)
    return _Query(pos_ids, raw, adj.astype(np.int64), max(0, min(k, d_q)))


def _moved_positions(f: _Query, k: int) -> np.ndarray:
    """Junk-free positions of q's positives (aligned with ``f.pos_ids``) after the missed
    ones were moved into the top k (§5 'missed'): the found positives keep their
    positions; the missed ones, in their original order (by rank, then those absent from
    the ranking by database index), take the last of the k_q top positions not held by a
    found positive; any left over follow at k_q, k_q + 1, ..."""
    found = (f.adj >= 0) & (f.adj < k)
    miss = np.flatnonzero(~found)
    out = f.adj.copy()
    if miss.size == 0:
        return out
    m_raw = f.raw[miss]
    miss = miss[np.lexsort((f.pos_ids[miss], np.where(m_raw < 0, np.iinfo(np.int64).max,
                                                        m_raw)))]
    free = np.setdiff1d(np.arange(f.n_free, dtype=np.int64), f.adj[found])
    c = min(miss.size, free.size)
    out[miss[:c]] = free[free.size - c:]
    out[miss[c:]] = f.n_free + np.arange(miss.size - c, dtype=np.int64)
    return out


_T = np.asarray(THRESHOLDS, dtype=np.float64)[:, None]


def _ap_per_threshold(pos: np.ndarray, val: np.ndarray, all_positives: bool = False
                      ) -> np.ndarray:
    """AP of one query at every mAP@k threshold (NaN where the query leaves the mean).

    *pos*: junk-free positions of the setup's positives (-1 = not ranked); *val*: their
    IoUs (0 without a prediction). A positive is a hit at t when its IoU > t (§2.3); AP is
    the trapezoid of §1 step 3 over the hits, N = all hits (ranked or not), NaN without
    any (``Protocol.n_at_threshold="surviving"``), or with *all_positives* N = all the
    setup's positives (``"all"``: AP_t = 0 without a hit; NaN only without positives).
    """
    surv = val[None, :] > _T
    n = np.full(len(THRESHOLDS), pos.size) if all_positives else surv.sum(axis=1)
    ranked = pos >= 0
    order = np.argsort(pos[ranked], kind="stable")
    r = pos[ranked][order].astype(np.float64)
    s = surv[:, ranked][:, order]
    j = np.cumsum(s, axis=1)
    p0 = np.where(r == 0, 1.0, (j - 1) / np.maximum(r, 1.0))
    p1 = j / (r + 1.0)
    ap = np.where(s, (p0 + p1) / 2.0, 0.0).sum(axis=1)
    return np.where(n > 0, ap / np.maximum(n, 1), np.nan)


def _map_at_k(pos: list[np.ndarray], val: list[np.ndarray], ignored: frozenset,
              ignored_in_denominator: bool, all_positives: bool = False) -> float:
    """mAP@k of §2 from per-query positions and IoUs of the setup's positives: the same
    number as :func:`bench.metrics.pixel.map_at_k` (tests/test_triage.py checks it), in
    one vectorised pass over the thresholds per query (nine are needed per triage)."""
    nq = len(pos)
    total = np.zeros(len(THRESHOLDS))
    empty = np.zeros(len(THRESHOLDS))
    for q in range(nq):
        if q in ignored:
            continue
        ap = _ap_per_threshold(pos[q], val[q], all_positives)
        e = np.isnan(ap)
        empty += e
        total += np.where(e, 0.0, ap)
    n_ign = len([q for q in ignored if q < nq]) if not ignored_in_denominator else 0
    denom = nq - empty - n_ign
    with np.errstate(divide="ignore", invalid="ignore"):
        map_t = np.where(denom > 0, total / np.where(denom > 0, denom, 1.0), np.nan)
    return float(np.mean(map_t))


def _hard_negatives(gnd: Gnd, ranks: np.ndarray, setup: str, n: int, ignored: frozenset
                    ) -> list[HardNegative]:
    """The *n* top-ranked negatives across queries, by junk-free rank, then q, then rank.

    Reads only the first ``n + (most labelled images of a query)`` rows of *ranks*.
    """
    nq = gnd.n_queries
    if n <= 0 or nq == 0:
        return []
    labelled = [np.concatenate([gnd.easy[q], gnd.hard[q], gnd.junk[q]]) for q in range(nq)]
    h = min(ranks.shape[0], n + max(lab.size for lab in labelled))
    head = np.asarray(ranks[:h]).astype(np.int64)
    cand: list[tuple[int, int, int, int]] = []
    for q in range(nq):
        col = head[:, q]
        junk = np.isin(col, setup_lists(gnd, setup, q)[1])
        before = np.cumsum(junk) - junk
        neg = np.flatnonzero(~np.isin(col, labelled[q]))[:n]
        cand += [(int(p - before[p]), q, int(p), int(col[p])) for p in neg.tolist()]
    cand.sort()
    return [HardNegative(q=q, i=i, name=image_name(gnd, i), rank=p, adj_rank=a,
                         ignored=q in ignored) for a, q, p, i in cand[:n]]


# ---------------------------------------------------------------- the pure entry point

def triage(gnd: Gnd, ranks: np.ndarray | None, pairs: dict[Pair, tuple[float, float]], *,
           scan: RankScan | None = None, setup: str = "medium", k: int = 100,
           iou: float = 0.5, iou_kind: str = "bbox", protocol="official",
           benchmark: str | None = None, n_hard_negatives: int = N_HARD_NEGATIVES,
           warnings: list[BenchWarning] | None = None) -> TriageResult:
    """Failure type of every easy or hard pair and mAP@k with each type fixed (§5).

    Parameters
    ----------
    gnd : the Revisited ground truth.
    ranks : ``(n_rows, n_queries)`` ranks (may be memory-mapped; only the first rows are
        read, for the hard negatives); None gives no hard negatives (then *scan* is needed).
    pairs : ``{(q, i): (bbox IoU, seg IoU)}`` of the pairs that have a prediction, as
        :func:`bench.metrics.pixel.compute_pair_ious` returns under the same *protocol*
        (``PixelResult.pairs``); a pair absent from it is ``no_region`` / IoU 0.
    scan : the :class:`RankScan` of *ranks* when already made (saves the pass over ranks).
    setup : ``"medium"`` (positives easy + hard) or ``"hard"`` (positives hard).
    k : cut-off of the taxonomy, in junk-free positions.
    iou : threshold t of ``ok`` (IoU > t) against ``mislocalised``.
    iou_kind : ``"bbox"``; ``"seg"`` only under the strict protocol.
    protocol, benchmark : as for :func:`bench.metrics.pixel.map_at_k` (benchmark default:
        from the gnd name).
    """
    why = check_options(setup=setup, k=k, iou=iou, iou_kind=iou_kind, protocol=protocol)
    if why:
        raise ValueError(why)
    k, t = int(k), float(iou)
    bm = benchmark if benchmark is not None else benchmark_for(gnd.name)
    if bm not in IGNORED_QUERIES:
        raise ValueError(f"benchmark must be one of {sorted(IGNORED_QUERIES)}, got {bm!r}")
    ignored = IGNORED_QUERIES[bm]
    if scan is None:
        if ranks is None:
            raise ValueError("give ranks or scan")
        scan = scan_ranks(ranks, gnd)
    col = 0 if iou_kind == "bbox" else 1
    nq = gnd.n_queries
    facts = [_query_facts(scan, gnd, setup, q, k) for q in range(nq)]

    # ---- one row per easy or hard pair; per query, the failure and IoU of each positive
    qs, is_, labels, raws, adjs, fails = [], [], [], [], [], []
    pos_fail: list[list[str]] = []
    pos_val: list[np.ndarray] = []
    for q in range(nq):
        easy = np.unique(gnd.easy[q]).astype(np.int64)
        every = np.unique(np.concatenate([easy, gnd.hard[q]]).astype(np.int64))
        # raw position of every easy or hard image of q (positives or not in this setup)
        found_ids = np.concatenate([scan.ids["easy"][q], scan.ids["hard"][q]])
        found_pos = np.concatenate([scan.pos["easy"][q], scan.pos["hard"][q]])
        raw_all = np.full(every.size, -1, dtype=np.int64)
        if found_ids.size:
            raw_all[np.searchsorted(every, found_ids)] = found_pos
        f = facts[q]
        adj_all = np.full(every.size, -1, dtype=np.int64)
        is_pos = np.isin(every, f.pos_ids)
        is_easy = np.isin(every, easy)
        adj_all[is_pos] = f.adj  # pos_ids is a sorted subset of every
        pf: list[str] = []
        pv: list[float] = []
        for n, i in enumerate(every.tolist()):
            qs.append(q)
            is_.append(i)
            labels.append("easy" if is_easy[n] else "hard")
            raws.append(int(raw_all[n]))
            adjs.append(int(adj_all[n]))
            if not is_pos[n]:
                fails.append(None)
                continue
            a = int(adj_all[n])
            v = pairs.get((q, i))
            x = 0.0 if v is None else float(v[col])
            if a < 0 or a >= k:
                kind = "missed"
            elif v is None:
                kind = "no_region"
            elif x > t:
                kind = "ok"
            elif x <= WRONG_PLACE_MAX:
                kind = "wrong_place"
            else:
                kind = "mislocalised"
            fails.append(kind)
            pf.append(kind)
            pv.append(x)
        pos_fail.append(pf)
        pos_val.append(np.asarray(pv, dtype=np.float64))
    qa = np.asarray(qs, dtype=np.int64)
    ia = np.asarray(is_, dtype=np.int64)
    iou_rows = [pairs.get((q, i)) for q, i in zip(qs, is_, strict=True)]
    bbox = np.array([math.nan if v is None else v[0] for v in iou_rows], dtype=np.float64)
    seg = np.array([math.nan if v is None else v[1] for v in iou_rows], dtype=np.float64)
    failure = np.empty(len(fails), dtype=object)
    failure[:] = fails
    counts = {name: int(sum(1 for x in fails if x == name)) for name in FAILURES}

    # ---- mAP@k and the oracle fixes
    in_denom = Protocol.of(protocol).ignored_in_denominator
    all_pos = Protocol.of(protocol).n_at_threshold == "all"
    adj = [f.adj for f in facts]
    moved = [_moved_positions(f, k) for f in facts]

    def mapk(positions: list[np.ndarray], values: list[np.ndarray]) -> float:
        return _map_at_k(positions, values, ignored, in_denom, all_pos)

    def iou_one(types: tuple[str, ...] | None) -> list[np.ndarray]:
        if types is None:
            return [np.ones_like(v) for v in pos_val]
        return [np.where(np.isin(np.asarray(pf, dtype=object), types), 1.0, v)
                if pf else v for pf, v in zip(pos_fail, pos_val, strict=True)]

    base = mapk(adj, pos_val)
    every_one = iou_one(None)
    recovered = {"missed": mapk(moved, pos_val)}
    for name in (*LOCALISATION, "ok"):
        recovered[name] = mapk(adj, iou_one((name,)))
    recovered[LOCALISATION_TYPES] = mapk(adj, iou_one(LOCALISATION))
    recovered["localisation"] = mapk(adj, every_one)
    recovered["all"] = mapk(moved, every_one)

    negs = (_hard_negatives(gnd, ranks, setup, n_hard_negatives, ignored)
            if ranks is not None else [])
    return TriageResult(
        setup=setup, k=k, iou=t, iou_kind=iou_kind, protocol=_protocol_name(protocol),
        benchmark=bm, q=qa, i=ia, names=[image_name(gnd, i) for i in is_],
        label=np.asarray(labels, dtype="<U4"), rank=np.asarray(raws, dtype=np.int64),
        adj_rank=np.asarray(adjs, dtype=np.int64), bbox=bbox, seg=seg, failure=failure,
        ignored=np.isin(qa, list(ignored)), counts=counts, map_at_k=base,
        recovered=recovered, hard_negatives=negs, warnings=list(warnings or []))


def triage_json(res: TriageResult) -> dict:
    """The JSON of ``python -m bench triage --json`` (fractions, NaN as null)."""
    return {
        "setup": res.setup, "k": res.k, "iou": res.iou, "iou_kind": res.iou_kind,
        "protocol": res.protocol, "benchmark": res.benchmark,
        "pairs": res.rows(),
        "counts": dict(res.counts),
        "recovered": {f: _num(v) for f, v in res.recovered.items()},
        "gain": {f: _num(v) for f, v in res.gain.items()},
        "mAP@k": _num(res.map_at_k),
        "hard_negatives": [{"q": h.q, "i": h.i, "name": h.name, "rank": h.rank,
                            "adj_rank": h.adj_rank, "ignored": h.ignored}
                           for h in res.hard_negatives],
        "warnings": [str(w) for w in res.warnings],
    }


# ---------------------------------------------------------------- files in

def run_triage(gnd_path: PathLike, *, pair_labels: PathLike, labels_root: PathLike | None,
               matches: PathLike, ranks_path: PathLike, setup: str = "medium", k: int = 100,
               iou: float = 0.5, iou_kind: str = "bbox", protocol: str = "official",
               benchmark: str | None = None) -> tuple[Gnd, TriageResult]:
    """Read the inputs of ``python -m bench pixel`` (ranks required) and triage them.

    Invalid options raise :class:`BenchError` naming the option.
    """
    why = check_options(setup=setup, k=k, iou=iou, iou_kind=iou_kind, protocol=protocol)
    if why:
        raise BenchError("invalid option", "the command line", why)
    gnd = load_gnd(gnd_path)
    inputs = load_pixel_inputs(gnd, pair_labels=pair_labels, labels_root=labels_root,
                               matches=matches)
    ranks = load_ranks(ranks_path, gnd)
    scan = scan_ranks(ranks, gnd, path=ranks_path)
    pairs = compute_pair_ious(gnd, inputs.gt, inputs.preds, protocol=protocol,
                              image_sizes=inputs.sizes)
    res = triage(gnd, ranks, pairs, scan=scan, setup=setup, k=k, iou=iou, iou_kind=iou_kind,
                 protocol=protocol, benchmark=benchmark, warnings=inputs.warnings)
    return gnd, res


# ---------------------------------------------------------------- command line

def _pct(x: float | None) -> str:
    return "   n/a" if x is None else f"{100 * x:6.2f}"


def print_triage(d: dict, n_negatives: int = 10) -> None:
    """The table of ``python -m bench triage`` (without ``--json``) from :func:`triage_json`."""
    n_pos = sum(d["counts"].values())
    print(f"triage: {d['setup']} setup, k={d['k']}, ok = {d['iou_kind']} IoU > {d['iou']:g}, "
          f"protocol {d['protocol']}, benchmark {d['benchmark']}")
    print(f"{n_pos} positive pairs; mAP@k {_pct(d['mAP@k']).strip()}")
    print(f"{'failure':14} {'pairs':>6} {'share':>7} {'mAP@k if fixed':>15} {'gain':>8}")
    for name in FAILURES:
        n = d["counts"][name]
        share = f"{100 * n / n_pos:6.1f}%" if n_pos else "    n/a"
        fixed = gain = ""
        if name in d["recovered"]:
            fixed = _pct(d["recovered"][name])
            g = d["gain"][name]
            gain = "n/a" if g is None else f"{100 * g:+.2f}"
        print(f"{name:14} {n:>6} {share:>7} {fixed:>15} {gain:>8}")
    for name, what in ((LOCALISATION_TYPES, "no_region + wrong_place + mislocalised"),
                       ("localisation", "localisation (every positive IoU 1)"),
                       ("all", "all (missed moved, every IoU 1)")):
        g = d["gain"][name]
        print(f"fix {what:39} {_pct(d['recovered'][name]):>6} "
              f"{'n/a' if g is None else f'{100 * g:+.2f}':>8}")
    print("(percent; a fix can lower mAP@k: see docs/PROTOCOLS.md §5)")
    negs = d["hard_negatives"][:n_negatives]
    if negs:
        print(f"top-ranked negatives (first {len(negs)} of {len(d['hard_negatives'])}; "
              "rank = 0-based position, junk-free in brackets):")
        for h in negs:
            print(f"  q {h['q']:>3}  rank {h['rank']:>5} ({h['adj_rank']:>5})  {h['name']}")
    if d["warnings"]:
        print(f"{len(d['warnings'])} warnings (see stderr)")


def cli_triage(args) -> None:
    """``python -m bench triage``: run, print warnings to stderr, then JSON or the table."""
    _, res = run_triage(args.gnd, pair_labels=args.pair_labels, labels_root=args.labels_root,
                        matches=args.matches, ranks_path=args.ranks, setup=args.setup,
                        k=args.k, iou=args.iou, iou_kind=args.iou_kind,
                        protocol=args.protocol, benchmark=args.benchmark)
    d = triage_json(res)
    for w in d["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        json.dump(d, sys.stdout)
    else:
        print_triage(d)


__all__ = ["FAILURES", "FIXES", "LOCALISATION", "LOCALISATION_TYPES", "HardNegative", "TriageResult",
           "check_options", "cli_triage", "print_triage", "run_triage", "triage",
           "triage_json"]
