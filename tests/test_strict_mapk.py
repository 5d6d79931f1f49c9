"""Strict mAP@k (docs/PROTOCOLS.md §2.3, ``Protocol.n_at_threshold="all"``).

At each threshold t a query keeps all the setup's positives in N; a positive whose IoU is
at or below t is no hit and ranks as an ordinary image, so a query with nothing localised
above t has AP_t = 0 and stays in the mean: every strict mAP_t is defined wherever the
setup has a positive, and it never rises with t. The official rule (N = the positives
above t, a query without any leaves the mean of t) is the released code's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bench.compare import per_query_map_at_k
from bench.formats.revisited import Gnd
from bench.metrics.pixel import map_at_k
from bench.metrics.revisited import scan_ranks
from bench.protocol import OFFICIAL, STRICT, THRESHOLDS, threshold_key
from tests import fixtures
from tests.reference import ref_map_at_k


def make_gnd(g: list[dict], n_db: int) -> Gnd:
    return Gnd(path=Path("gnd_rtest.pkl"), name="rtest",
               imlist=[f"db_{i}" for i in range(n_db)],
               qimlist=[f"q_{q}" for q in range(len(g))],
               easy=[np.asarray(x["easy"], dtype=np.int64) for x in g],
               hard=[np.asarray(x["hard"], dtype=np.int64) for x in g],
               junk=[np.asarray(x["junk"], dtype=np.int64) for x in g],
               bbx=[None] * len(g))


# ---------------------------------------------------------------- by hand

# Three queries over four database images, medium setup, no ignored query.
#   q0: easy [1], hard [2], junk [3]; ranking [0, 1, 3, 2]; IoU of (0,1) 0.9, (0,2) 0.6.
#       Junk 3 sits before 2, so the adjusted positions are 1 -> 1 and 2 -> 3 - 1 = 2.
#       t = .50, .55: hits at r = 1, 2: terms (0/1 + 1/2)/2 = 1/4, (1/2 + 2/3)/2 = 7/12;
#           AP = (1/4 + 7/12) / 2 = 5/12 under both rules (N = 2 either way).
#       t = .60 .. .85 (6 thresholds; 0.6 > 0.6 fails): only 1 hits, term 1/4;
#           official N = 1 -> 1/4; strict N = 2 -> 1/8.
#       t = .90, .95 (0.9 > 0.9 fails): no hit: official empty (leaves); strict AP 0.
#   q1: easy [0]; ranking [0, 1, 2, 3]; IoU 0.52: hit at t = .50 only (AP 1);
#       t >= .55: official empty, strict AP 0.    <- the query empty at t
#   q2: hard [3]; ranking [3, 0, 1, 2]; IoU 1.0: AP 1 at every t.
# official mAP_t: .50 (5/12 + 1 + 1)/3 = 29/36; .55 (5/12 + 1)/2 = 17/24;
#   .60-.85 (1/4 + 1)/2 = 5/8; .90, .95 1/1 = 1 (it RISES with t: the empty queries left)
#   mAP@k = (29/36 + 17/24 + 6 * 5/8 + 2 * 1) / 10 = (58 + 51 + 270 + 144) / 720 = 523/720.
# strict mAP_t (D = 3 at every t): .50 29/36; .55 (5/12 + 0 + 1)/3 = 17/36;
#   .60-.85 (1/8 + 0 + 1)/3 = 3/8; .90, .95 (0 + 0 + 1)/3 = 1/3
#   mAP@k = (29/36 + 17/36 + 6 * 3/8 + 2/3) / 10 = (46 + 81 + 24) / 360 = 151/360.
# per-query strict v_q = mean over t: q0 (2 * 5/12 + 6 * 1/8) / 10 = 19/120; q1 1/10;
#   q2 1; their mean (19 + 12 + 120) / 360 = 151/360 = the strict mAP@k.
HAND_G = [{"easy": [1], "hard": [2], "junk": [3]},
          {"easy": [0], "hard": [], "junk": []},
          {"easy": [], "hard": [3], "junk": []}]
HAND_RANKS = np.array([[0, 0, 3], [1, 1, 0], [3, 2, 1], [2, 3, 2]])
HAND_IOUS = {(0, 1): (0.9, 0.9), (0, 2): (0.6, 0.6), (1, 0): (0.52, 0.52), (2, 3): (1.0, 1.0)}


def _hand():
    gnd = make_gnd(HAND_G, 4)
    return gnd, scan_ranks(HAND_RANKS, gnd)


def test_hand_case_official():
    gnd, scan = _hand()
    m, mt, per_q = map_at_k(scan, gnd, HAND_IOUS, "medium", protocol="official",
                            benchmark="none")
    want = [29 / 36, 17 / 24] + [5 / 8] * 6 + [1.0, 1.0]
    assert [mt[threshold_key(t)] for t in THRESHOLDS] == pytest.approx(want, abs=1e-12)
    assert m == pytest.approx(523 / 720, abs=1e-12)
    assert np.isnan(per_q[1:, 1]).all() and np.isnan(per_q[8:, 0]).all()  # empty queries


def test_hand_case_strict_keeps_the_empty_query_at_zero():
    gnd, scan = _hand()
    m, mt, per_q = map_at_k(scan, gnd, HAND_IOUS, "medium", protocol="strict",
                            benchmark="none")
    want = [29 / 36, 17 / 36] + [3 / 8] * 6 + [1 / 3, 1 / 3]
    assert [mt[threshold_key(t)] for t in THRESHOLDS] == pytest.approx(want, abs=1e-12)
    assert m == pytest.approx(151 / 360, abs=1e-12)
    assert per_q[:, 0] == pytest.approx([5 / 12] * 2 + [1 / 8] * 6 + [0, 0], abs=1e-12)
    assert per_q[:, 1] == pytest.approx([1.0] + [0.0] * 9, abs=1e-12)
    assert (per_q[:, 2] == 1.0).all()
    # the comparison's per-query value (§6.1) is exactly the summand of strict mAP@k
    v = per_query_map_at_k(per_q, np.array([2, 1, 1]))
    assert v == pytest.approx([19 / 120, 1 / 10, 1.0], abs=1e-12)
    assert float(np.mean(v)) == pytest.approx(m, abs=1e-12)
    # the reference implementation, written from the protocol text, agrees
    ref_m, ref_t = ref_map_at_k(HAND_RANKS, HAND_G, HAND_IOUS, "medium", set(), "strict")
    assert ref_m == pytest.approx(151 / 360, abs=1e-12)
    assert [ref_t[t] for t in THRESHOLDS] == pytest.approx(want, abs=1e-12)


def test_a_query_without_positives_is_still_left_out():
    # hard setup: q1 and q0 have no hard positive (q0's hard [2] only in HAND_G[0];
    # here we drop it): NaN, out of the mean; q2 AP 1 -> strict mAP@k 1.
    g = [{"easy": [1], "hard": [], "junk": [3]}] + HAND_G[1:]
    gnd = make_gnd(g, 4)
    m, _, per_q = map_at_k(scan_ranks(HAND_RANKS, gnd), gnd, HAND_IOUS, "hard",
                           protocol="strict", benchmark="none")
    assert np.isnan(per_q[:, :2]).all() and m == 1.0
    # and a setup without any positive at all: undefined (NaN), not 0
    gnd = make_gnd([{"easy": [1], "hard": [], "junk": []}], 4)
    m, mt, _ = map_at_k(scan_ranks(HAND_RANKS[:, :1], gnd), gnd, {}, "hard",
                        protocol="strict", benchmark="none")
    assert math.isnan(m) and all(math.isnan(v) for v in mt.values())


# ---------------------------------------------------------------- random cases

BOUNDARY = [0.0, 0.5, 0.55, 0.6, 0.75, 0.9, 0.95, 1.0]


def _random_case(seed: int):
    rng = np.random.default_rng(4000 + seed)
    n_q = int(rng.integers(3, 12))
    n_db = int(rng.integers(8, 40))
    g = fixtures.make_random_gnd(rng, n_q, n_db, max_easy=4, max_hard=4, max_junk=3,
                                 p_empty=0.15)
    n_rows = n_db if seed % 3 else int(rng.integers(1, n_db + 1))  # some truncated
    ranks = np.stack([rng.permutation(n_db)[:n_rows] for _ in range(n_q)], axis=1)
    ious = {}
    for q, x in enumerate(g):
        for i in list(x["easy"]) + list(x["hard"]):
            if rng.random() < 0.2:
                continue  # unpredicted: IoU 0
            ious[(q, int(i))] = tuple(float(rng.choice(BOUNDARY)) if rng.random() < 0.4
                                      else float(rng.random()) for _ in range(2))
    return g, n_db, ranks, ious


@pytest.mark.parametrize("seed", range(40))
def test_strict_map_t_never_rises_with_t(seed):
    g, n_db, ranks, ious = _random_case(seed)
    gnd = make_gnd(g, n_db)
    scan = scan_ranks(ranks, gnd)
    for setup in ("medium", "hard"):
        for kind, col in (("bbox", 0), ("seg", 1)):
            m, mt, per_q = map_at_k(scan, gnd, ious, setup, protocol="strict",
                                    benchmark="none", iou_kind=kind)
            vals = [mt[threshold_key(t)] for t in THRESHOLDS]
            has_pos = [bool(list(x["easy"]) + list(x["hard"])) if setup == "medium"
                       else bool(list(x["hard"])) for x in g]
            if not any(has_pos):
                assert math.isnan(m)
                continue
            assert all(math.isfinite(v) for v in vals) and math.isfinite(m)
            assert all(b <= a for a, b in zip(vals, vals[1:], strict=False)), vals
            # per query too, and defined for every query with a positive
            ok = np.array(has_pos)
            assert np.isfinite(per_q[:, ok]).all() and np.isnan(per_q[:, ~ok]).all()
            assert (np.diff(per_q[:, ok], axis=0) <= 0).all()
            ref_m, ref_t = ref_map_at_k(ranks, g, {p: v[col] for p, v in ious.items()},
                                        setup, set(), "strict")
            assert m == pytest.approx(ref_m, abs=1e-12)
            assert vals == pytest.approx([ref_t[t] for t in THRESHOLDS], abs=1e-12)
            # the comparison's per-query values average to exactly this number
            v = per_query_map_at_k(per_q, np.where(ok, 1, 0))
            assert float(np.nanmean(v)) == pytest.approx(m, abs=1e-12)


# ---------------------------------------------------------------- real-size-like data


def test_strict_map_at_k_is_a_number_on_real_size_like_data():
    """70 queries (2 ignored, PROxford), 5,000 database images, box-like IoUs that never
    pass 0.95 (as real predictions rarely do): every strict mAP_t is a number, the one
    at 0.95 is 0, while the old strict rule (queries empty at t leave, ignored queries
    too) left D_0.95 = 0 and mAP@k undefined."""
    rng = np.random.default_rng(70)
    n_q, n_db = 70, 5_000
    g = fixtures.make_random_gnd(rng, n_q, n_db, max_easy=15, max_hard=15, max_junk=10,
                                 min_easy=1, min_hard=1)
    gnd = make_gnd(g, n_db)
    ranks = np.stack([rng.permutation(n_db) for _ in range(n_q)], axis=1)
    for q, x in enumerate(g):  # a decent method: its positives near the top
        pos = np.array(list(x["easy"]) + list(x["hard"]))
        col = ranks[:, q]
        rest = col[~np.isin(col, pos)]
        ranks[:, q] = np.concatenate([rest[:3], rng.permutation(pos), rest[3:]])
    ious = {(q, int(i)): (min(0.94, float(b)), min(0.94, float(b) * 0.9))
            for q, x in enumerate(g) for i in list(x["easy"]) + list(x["hard"])
            if rng.random() < 0.85 for b in [rng.beta(6, 2)]}
    scan = scan_ranks(ranks, gnd)
    old_rule = STRICT.replace(n_at_threshold="surviving")
    for setup in ("medium", "hard"):
        for kind in ("bbox", "seg"):
            m, mt, _ = map_at_k(scan, gnd, ious, setup, protocol="strict",
                                benchmark="proxford", iou_kind=kind)
            assert math.isfinite(m) and 0 < m < 1
            assert all(math.isfinite(v) for v in mt.values()) and mt["0.95"] == 0.0
            old, old_t, _ = map_at_k(scan, gnd, ious, setup, protocol=old_rule,
                                     benchmark="proxford", iou_kind=kind)
            assert math.isnan(old) and math.isnan(old_t["0.95"])
        # official: the released rule (ignored queries in the denominator: 0/2 at 0.95)
        m, mt, _ = map_at_k(scan, gnd, ious, setup, protocol=OFFICIAL, benchmark="proxford")
        ref_m, _ = ref_map_at_k(ranks, g, {p: v[0] for p, v in ious.items()}, setup,
                                {56, 63}, "official")
        assert m == pytest.approx(ref_m, abs=1e-12) and mt["0.95"] == 0.0


def test_undefined_values_say_why():
    """The app's cards print "—" for NaN with the reason of bench.metrics.pixel
    .undefined_reasons: a setup without any positive (strict), and officially a threshold
    where every query is empty."""
    from bench.metrics.pixel import evaluate_pixel, undefined_reasons

    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=np.float64)
    # one query, easy [1] only: the hard setup has no positive at all
    gnd = make_gnd([{"easy": [1], "hard": [], "junk": []}], 3)
    ranks = np.array([[1], [0], [2]])
    gt, preds = {(0, 1): [square]}, {(0, 1): square * 0.5}  # IoU 0.25: never a hit
    for protocol in ("official", "strict"):
        res = evaluate_pixel(gnd, gt, preds, ranks=ranks, protocol=protocol,
                             benchmark="none", image_sizes={(0, 1): (10, 10)})
        hard = res.setups["hard"]
        assert math.isnan(hard.map_at_k) and math.isnan(hard.image_map)
        why = undefined_reasons(hard, protocol, "hard")
        assert "no evaluated query has a positive in the hard setup" in why["map_at_k"]
        assert "no query has a positive" in why["image_map"]
        assert "no query has a pair in the hard setup" in why["miou_bbox"]
        med = res.setups["medium"]
        why = undefined_reasons(med, protocol, "medium")
        if protocol == "official":  # the only query is empty at every t: 0 / 0
            assert math.isnan(med.map_at_k)
            assert "at t = 0.50 no query has a positive localised above t" in why["map_at_k"]
        else:  # strict: AP_t = 0, a number
            assert med.map_at_k == 0.0 and "map_at_k" not in why


def test_app_cards_say_why_a_value_is_undefined(tmp_path_factory, monkeypatch):
    """A benchmark folder whose queries have no hard positive: the hard cards show "—"
    and a caption saying why (no positive in the setup), under both protocols."""
    from bench.demo import build_demo
    from tests.test_app import app, ok

    base = tmp_path_factory.getbasetemp()
    demo = build_demo(base / "small_demo", scale="small")
    monkeypatch.setenv("BENCH_DEMO_DIR", str(demo.root))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(base / "app_cache"))
    monkeypatch.setenv("BENCH_DATA_ROOTS", str(base))
    root = tmp_path_factory.mktemp("nohard")
    fixtures.make_random_pixel_benchmark(np.random.default_rng(3), root, 4, 12,
                                         min_hard=0, max_hard=0)
    for protocol in ("official", "strict"):
        at = ok(app(src="folder", root=root, proto=protocol))
        cards = {}
        for m in at.metric:
            cards.setdefault(m.label, []).append(m.value)
        assert cards["mAP · hard"] == ["—"]
        text = "\n".join(c.value for c in at.caption)
        assert "no query has a positive in the hard setup" in text
        assert "no evaluated query has a positive in the hard setup" in text
