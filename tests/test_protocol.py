"""bench.protocol: each field of Protocol switched on its own, against a case computed by
hand (docs/PROTOCOLS.md §4), plus the presets, the name lookup and the shared constants.

Every test starts from a preset and changes ONE field, so a field that stopped being
read (or a branch on the preset's name that came back) fails here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest

import bench.formats.revisited as bench_formats
import bench.metrics.pixel as bench_pixel
import bench.metrics.revisited as bench_revisited
from bench import protocol as P
from bench.protocol import OFFICIAL, STRICT, Protocol
from tests import fixtures

SQUARE10 = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=np.float64)
TRIANGLE = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float64)
HALF = np.array([[0, 0], [10, 0], [10, 5], [0, 5]], dtype=np.float64)  # IoU 0.6 vs SQUARE10


def make_gnd(tmp_path, gnd_dicts, n_db, name="rtest"):
    path = fixtures.write_gnd_pickle(tmp_path / f"gnd_{name}.pkl", fixtures.names("db", n_db),
                                     fixtures.names("q", len(gnd_dicts)), gnd_dicts)
    return bench_formats.load_gnd(path)


# ------------------------------------------------------------------ the object itself


def test_presets_differ_in_every_field():
    for f in dataclasses.fields(Protocol):
        assert getattr(OFFICIAL, f.name) != getattr(STRICT, f.name), f.name


def test_official_preset_values():
    # the released code's rules, as listed in docs/PROTOCOLS.md §4
    assert OFFICIAL == Protocol(canvas="square", unpredicted_easy="skip",
                                empty_query="nan_mean", ignored_in_denominator=True,
                                threshold_iou=("bbox",), pk_rule="official_kq",
                                n_at_threshold="surviving", gpr_scores="released")
    assert STRICT == Protocol(canvas="image", unpredicted_easy="zero",
                              empty_query="leave_out", ignored_in_denominator=False,
                              threshold_iou=("bbox", "seg"), pk_rule="textbook",
                              n_at_threshold="all", gpr_scores="exact")


def test_of_accepts_names_and_objects():
    assert Protocol.of("official") is OFFICIAL
    assert Protocol.of("strict") is STRICT
    custom = OFFICIAL.replace(canvas="image")
    assert Protocol.of(custom) is custom
    for bad in ("Official", "", None, 1, "lenient"):
        with pytest.raises(ValueError, match="official"):
            Protocol.of(bad)


def test_name_of_presets_and_custom():
    assert OFFICIAL.name == "official" and STRICT.name == "strict"
    assert OFFICIAL.replace(pk_rule="textbook").name == "custom"
    # a custom object equal to a preset is named after it
    assert Protocol().name == "official"


@pytest.mark.parametrize("field, value", [
    ("canvas", "round"), ("unpredicted_easy", "drop"), ("empty_query", "zero"),
    ("ignored_in_denominator", "yes"), ("threshold_iou", ("seg",)),
    ("threshold_iou", ("bbox", "bbox")), ("threshold_iou", ()), ("pk_rule", "kq"),
    ("n_at_threshold", "survivors"), ("gpr_scores", "float32"),
])
def test_invalid_field_values_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        OFFICIAL.replace(**{field: value})


def test_protocol_is_frozen_and_hashable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        OFFICIAL.canvas = "image"  # type: ignore[misc]
    assert len({OFFICIAL, STRICT, Protocol()}) == 2
    assert OFFICIAL.replace(threshold_iou=["bbox", "seg"]).threshold_iou == ("bbox", "seg")


# ------------------------------------------------------------------ one field at a time


def test_canvas_field():
    # pred box x 0..10, y 0..2 (33 px); gt box x 0..4, y 0..2 (15 px), inside it.
    # square: S = 10, x = 10 falls off: pred 30 px -> IoU 15/30 = 0.5 (bbox and seg)
    # image 20 x 20: nothing cut -> 15/33
    pred = np.array([[0, 0], [10, 0], [10, 2], [0, 2]], dtype=np.float64)
    gt = [np.array([[0, 0], [4, 0], [4, 2], [0, 2]], dtype=np.float64)]
    for base, expect_square, expect_image in ((OFFICIAL, 0.5, 15 / 33), (STRICT, 0.5, 15 / 33)):
        sq = base.replace(canvas="square")
        im = base.replace(canvas="image")
        assert bench_pixel.pair_iou(pred, gt, protocol=sq, image_size=(20, 20)) == \
            pytest.approx((expect_square, expect_square), abs=1e-12)
        assert bench_pixel.pair_iou(pred, gt, protocol=im, image_size=(20, 20)) == \
            pytest.approx((expect_image, expect_image), abs=1e-12)
    # the image canvas without a known image size falls back to the square
    assert bench_pixel.pair_iou(pred, gt, protocol=OFFICIAL.replace(canvas="image")) == \
        pytest.approx((0.5, 0.5), abs=1e-12)
    # the explicit-mask view uses the same rule
    p = pred.astype(np.int64)
    g = [s.astype(np.int64) for s in gt]
    assert bench_pixel.pair_canvas(p, g, OFFICIAL, (20, 20)).width == 10
    assert bench_pixel.pair_canvas(p, g, OFFICIAL.replace(canvas="image"), (20, 20)).width == 20


def test_unpredicted_easy_field(tmp_path):
    # query 0: easy 1 (IoU 0.6), easy 2 (no prediction), hard 3 (IoU 1); canvas 0..9 both ways
    # skip: medium [1.0, 0.6] -> 0.8;  zero: [1.0, 0.6, 0.0] -> 1.6/3; hard 1.0 either way
    gnd = make_gnd(tmp_path, [{"easy": [1, 2], "hard": [3], "junk": []}], 4)
    gt = {(0, 1): [SQUARE10], (0, 2): [SQUARE10], (0, 3): [SQUARE10]}
    preds = {(0, 1): HALF, (0, 3): SQUARE10}
    sizes = {p: (10, 10) for p in gt}
    for base in (OFFICIAL, STRICT):
        skip = bench_pixel.evaluate_pixel(gnd, gt, preds, protocol=base.replace(
            unpredicted_easy="skip"), benchmark="none", image_sizes=sizes)
        zero = bench_pixel.evaluate_pixel(gnd, gt, preds, protocol=base.replace(
            unpredicted_easy="zero"), benchmark="none", image_sizes=sizes)
        assert skip.setups["medium"].miou_bbox == pytest.approx(0.8, abs=1e-12)
        assert zero.setups["medium"].miou_bbox == pytest.approx(1.6 / 3, abs=1e-12)
        assert zero.setups["medium"].miou_seg == pytest.approx(1.6 / 3, abs=1e-12)
        assert skip.setups["hard"].miou_bbox == zero.setups["hard"].miou_bbox == 1.0
    # miou() itself, called with the strings
    pairs = {(0, 1): (0.6, 0.6), (0, 3): (1.0, 1.0)}
    assert bench_pixel.miou(gnd, pairs, "medium", protocol="official")[0][0] == \
        pytest.approx(0.8, abs=1e-12)
    assert bench_pixel.miou(gnd, pairs, "medium", protocol="strict")[0][0] == \
        pytest.approx(1.6 / 3, abs=1e-12)


def test_empty_query_field(tmp_path):
    # q0: one easy pair, unpredicted -> under "skip" its medium list is empty (NaN);
    # q1: one hard pair, perfect (1.0). nan_mean -> NaN; leave_out -> 1.0.
    # With "zero" for the easy pair q0 is 0, not empty: both rules give 0.5.
    gnd = make_gnd(tmp_path, [{"easy": [1], "hard": [], "junk": []},
                              {"easy": [], "hard": [2], "junk": []}], 3)
    gt = {(0, 1): [SQUARE10], (1, 2): [SQUARE10]}
    preds = {(1, 2): SQUARE10}
    off = OFFICIAL.replace(empty_query="nan_mean")
    lo = OFFICIAL.replace(empty_query="leave_out")
    r_nan = bench_pixel.evaluate_pixel(gnd, gt, preds, protocol=off, benchmark="none")
    r_lo = bench_pixel.evaluate_pixel(gnd, gt, preds, protocol=lo, benchmark="none")
    assert math.isnan(r_nan.setups["medium"].miou_bbox)
    assert r_lo.setups["medium"].miou_bbox == pytest.approx(1.0, abs=1e-12)
    assert r_lo.setups["medium"].miou_seg == pytest.approx(1.0, abs=1e-12)
    # hard: q0 has no hard pair (empty) under both easy rules
    assert math.isnan(r_nan.setups["hard"].miou_bbox)
    assert r_lo.setups["hard"].miou_bbox == pytest.approx(1.0, abs=1e-12)
    st_nan = bench_pixel.evaluate_pixel(gnd, gt, preds, benchmark="none",
                                        protocol=STRICT.replace(empty_query="nan_mean"),
                                        image_sizes={(0, 1): (10, 10), (1, 2): (10, 10)})
    assert st_nan.setups["medium"].miou_bbox == pytest.approx(0.5, abs=1e-12)
    assert math.isnan(st_nan.setups["hard"].miou_bbox)
    # the aggregation on its own
    assert math.isnan(bench_pixel.aggregate_miou(np.array([np.nan, 1.0]), "official"))
    assert bench_pixel.aggregate_miou(np.array([np.nan, 1.0, 0.5]), "strict") == 0.75
    assert math.isnan(bench_pixel.aggregate_miou(np.array([np.nan]), "strict"))


def _diagonal(tmp_path, n_q):
    """n_q queries, query q's only (hard) positive is image q, ranked first, predicted
    perfectly: every non-ignored query has AP 1 at every threshold."""
    gnd = make_gnd(tmp_path, [{"easy": [], "hard": [q], "junk": []} for q in range(n_q)],
                   n_q, name="roxford5k")
    ranks = np.stack([np.roll(np.arange(n_q), -q) for q in range(n_q)], axis=1)
    gt = {(q, q): [SQUARE10] for q in range(n_q)}
    preds = {(q, q): SQUARE10 for q in range(n_q)}
    return gnd, ranks, gt, preds, {(q, q): (10, 10) for q in range(n_q)}


def test_ignored_in_denominator_field(tmp_path):
    # 64 queries, PROxford ignores 56 and 63: True -> 62/64 at every t; False -> 62/62
    gnd, ranks, gt, preds, sizes = _diagonal(tmp_path, 64)
    scan = bench_revisited.scan_ranks(ranks, gnd)
    pairs = bench_pixel.compute_pair_ious(gnd, gt, preds, protocol="official")
    for base in (OFFICIAL, STRICT):
        keep = base.replace(ignored_in_denominator=True)
        drop = base.replace(ignored_in_denominator=False)
        for setup in ("medium", "hard"):
            m, mt, per_q = bench_pixel.map_at_k(scan, gnd, pairs, setup, protocol=keep,
                                                benchmark="proxford")
            assert m == pytest.approx(62 / 64, abs=1e-12)
            assert mt["0.95"] == pytest.approx(62 / 64, abs=1e-12)
            assert np.isnan(per_q[:, [56, 63]]).all() and (per_q[:, :56] == 1).all()
            m, _, _ = bench_pixel.map_at_k(scan, gnd, pairs, setup, protocol=drop,
                                           benchmark="proxford")
            assert m == pytest.approx(1.0, abs=1e-12)
        # PRParis ignores 57 and 59 instead; "none" ignores nothing
        assert bench_pixel.map_at_k(scan, gnd, pairs, "hard", protocol=keep,
                                    benchmark="prparis")[0] == pytest.approx(62 / 64, abs=1e-12)
        assert bench_pixel.map_at_k(scan, gnd, pairs, "hard", protocol=keep,
                                    benchmark="none")[0] == pytest.approx(1.0, abs=1e-12)


def test_threshold_iou_field(tmp_path):
    # q0: positive 0 predicted by the triangle (bbox IoU 1, seg IoU 0.64: 64 of the 100
    # canvas pixels), ranked second behind a negative -> AP 0.25; q1: perfect -> AP 1.
    # bbox: both survive every t -> 0.625. seg: q0 survives t <= 0.60 (3 thresholds);
    # above, n_at_threshold "surviving": q0 is empty and leaves -> (3 * 0.625 + 7 * 1) / 10
    # = 0.8875 (mAP_t 1); "all": q0 has AP_t 0 -> (3 * 0.625 + 7 * 0.5) / 10 = 0.5375.
    gnd = make_gnd(tmp_path, [{"easy": [0], "hard": [], "junk": []},
                              {"easy": [1], "hard": [], "junk": []}], 3)
    ranks = np.array([[2, 1], [0, 0], [1, 2]])
    gt = {(0, 0): [SQUARE10], (1, 1): [SQUARE10]}
    preds = {(0, 0): TRIANGLE, (1, 1): SQUARE10}
    sizes = {p: (10, 10) for p in gt}
    for base in (OFFICIAL, STRICT):
        bbox_only = bench_pixel.evaluate_pixel(
            gnd, gt, preds, ranks=ranks, benchmark="none", image_sizes=sizes,
            protocol=base.replace(threshold_iou=("bbox",)))
        both = bench_pixel.evaluate_pixel(
            gnd, gt, preds, ranks=ranks, benchmark="none", image_sizes=sizes,
            protocol=base.replace(threshold_iou=("bbox", "seg")))
        for r in (bbox_only, both):
            assert r.setups["medium"].map_at_k == pytest.approx(0.625, abs=1e-12)
        assert bbox_only.setups["medium"].map_at_k_seg is None
        assert bbox_only.setups["medium"].map_t_seg is None
        surviving = base.n_at_threshold == "surviving"
        assert both.setups["medium"].map_at_k_seg == pytest.approx(
            0.8875 if surviving else 0.5375, abs=1e-12)
        assert both.setups["medium"].map_t_seg["0.60"] == pytest.approx(0.625, abs=1e-12)
        assert both.setups["medium"].map_t_seg["0.65"] == pytest.approx(
            1.0 if surviving else 0.5, abs=1e-12)
        seg_ap = both.setups["medium"].per_query_ap_t_seg  # (thresholds, queries)
        assert bbox_only.setups["medium"].per_query_ap_t_seg is None
        assert seg_ap[:3, 0] == pytest.approx([0.25] * 3, abs=1e-12)
        assert (np.isnan(seg_ap[3:, 0]).all() if surviving else (seg_ap[3:, 0] == 0).all())
        assert (seg_ap[:, 1] == 1.0).all()


def test_n_at_threshold_field(tmp_path):
    # one query, easy {1, 2}; ranking [0, 1, 2] (image 0 a negative); bbox IoU of pair 1
    # is 0.6 (HALF), of pair 2 is 1. Positions 1 and 2.
    # t <= 0.55: both hit -> AP = ((0/1 + 1/2)/2 + (1/2 + 2/3)/2) / 2 = (1/4 + 7/12) / 2
    #   = 5/12 under both rules.
    # t >= 0.60 (8 thresholds): only 2 is a hit, at position 2, 1 an ordinary image.
    #   "surviving": N = 1 -> AP = (0/2 + 1/3)/2 = 1/6;
    #   "all":       N = 2 -> AP = 1/12.
    # mAP@k: surviving (2 * 5/12 + 8 * 1/6) / 10 = 13/60; all (2 * 5/12 + 8/12) / 10 = 3/20.
    # A second query whose only positive has IoU 0.5 (rows 0..4 of 10: 50/100; 0.5 > t
    # fails at every t >= 0.50): "surviving" -> empty at every t, it leaves; "all" ->
    # AP_t = 0, it halves every mAP_t.
    gnd = make_gnd(tmp_path, [{"easy": [1, 2], "hard": [], "junk": []},
                              {"easy": [0], "hard": [], "junk": []}], 3)
    ranks = np.array([[0, 0], [1, 1], [2, 2]])
    fifty = np.array([[0, 0], [10, 0], [10, 4], [0, 4]], dtype=np.float64)  # IoU 0.5
    gt = {(0, 1): [SQUARE10], (0, 2): [SQUARE10], (1, 0): [SQUARE10]}
    preds = {(0, 1): HALF, (0, 2): SQUARE10, (1, 0): fifty}
    scan = bench_revisited.scan_ranks(ranks, gnd)
    for base in (OFFICIAL, STRICT):
        pairs = bench_pixel.compute_pair_ious(gnd, gt, preds, protocol=base,
                                              image_sizes={p: (10, 10) for p in gt})
        surv = base.replace(n_at_threshold="surviving")
        allp = base.replace(n_at_threshold="all")
        m, mt, per_q = bench_pixel.map_at_k(scan, gnd, pairs, "medium", protocol=surv)
        assert m == pytest.approx(13 / 60, abs=1e-12)
        assert mt["0.60"] == pytest.approx(1 / 6, abs=1e-12) and np.isnan(per_q[:, 1]).all()
        m, mt, per_q = bench_pixel.map_at_k(scan, gnd, pairs, "medium", protocol=allp)
        assert m == pytest.approx(3 / 20 / 2, abs=1e-12)
        assert mt["0.50"] == pytest.approx(5 / 24, abs=1e-12)
        assert per_q[:, 0] == pytest.approx([5 / 12] * 2 + [1 / 12] * 8, abs=1e-12)
        assert (per_q[:, 1] == 0).all()


def test_pk_rule_field(tmp_path):
    # positives {1, 2} at positions 2, 4 of [3, 7, 1, 9, 2]: 1-based s = [3, 5]
    # official_kq: P@1 = 0/1; P@5: kq = 5 -> 2/5; P@10: kq = min(5, 10) = 5 -> 2/5
    # textbook:    P@1 = 0;   P@5 = 2/5;           P@10 = 2/10
    ranks = np.array([[3], [7], [1], [9], [2]])
    gnd = make_gnd(tmp_path, [{"easy": [1, 2], "hard": [], "junk": []}], 10)
    for base in (OFFICIAL, STRICT):
        kq = bench_revisited.evaluate_revisited(ranks, gnd, protocol=base.replace(
            pk_rule="official_kq"))["easy"]
        tb = bench_revisited.evaluate_revisited(ranks, gnd, protocol=base.replace(
            pk_rule="textbook"))["easy"]
        assert (kq.mP[1], kq.mP[5], kq.mP[10]) == pytest.approx((0.0, 0.4, 0.4), abs=1e-12)
        assert (tb.mP[1], tb.mP[5], tb.mP[10]) == pytest.approx((0.0, 0.4, 0.2), abs=1e-12)
        assert kq.mAP == tb.mAP  # AP does not depend on the protocol
    adj = np.array([2, 4])
    assert bench_revisited.precision_at_k(adj, 10, protocol="official") == pytest.approx(0.4)
    assert bench_revisited.precision_at_k(adj, 10, protocol="strict") == pytest.approx(0.2)


def test_custom_protocol_is_named_custom(tmp_path):
    gnd = make_gnd(tmp_path, [{"easy": [1], "hard": [], "junk": []}], 2)
    res = bench_pixel.evaluate_pixel(gnd, {(0, 1): [SQUARE10]}, {(0, 1): SQUARE10},
                                     protocol=OFFICIAL.replace(canvas="image"),
                                     benchmark="none")
    assert res.protocol == "custom" and res.rules == OFFICIAL.replace(canvas="image")
    assert bench_pixel.evaluate_pixel(gnd, {}, {}, protocol="strict",
                                      benchmark="none").protocol == "strict"


# ------------------------------------------------------------------ shared constants


def test_shared_constants():
    assert P.PROTOCOLS == ("official", "strict")
    assert P.SETUPS == ("easy", "medium", "hard")
    assert P.METRICS == ("cosine", "dot", "l2")
    assert P.THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    assert [P.threshold_key(t) for t in P.THRESHOLDS[:2]] == ["0.50", "0.55"]
    assert P.IGNORED_QUERIES == {"proxford": {56, 63}, "prparis": {57, 59}, "none": set()}
    assert P.SETUP_LABELS == {"easy": (("easy",), ("junk", "hard")),
                              "medium": (("easy", "hard"), ("junk",)),
                              "hard": (("hard",), ("junk", "easy"))}
    assert all(e == e.lower() and e.startswith(".") for e in P.IMAGE_EXTS)
    assert [P.benchmark_for(n) for n in ("roxford5k", "rparis6k", "rdemo")] == \
        ["proxford", "prparis", "none"]
    # the metric modules re-export the same objects (one definition)
    import bench.metrics.gpr1200 as gpr
    assert bench_pixel.THRESHOLDS is P.THRESHOLDS
    assert bench_pixel.IGNORED_QUERIES is P.IGNORED_QUERIES
    assert gpr.METRICS is P.METRICS
    with pytest.raises(ValueError, match="setup"):
        P.setup_labels("medium-hard")


def test_no_branch_on_the_protocol_name_in_bench():
    """Every rule is read from a Protocol field; bench/ never compares a protocol with a
    preset's name (the CLI and the app pass the names through Protocol.of)."""
    root = Path(__file__).resolve().parents[1] / "bench"
    pattern = re.compile(r"""protocol\w*\s*[!=]=\s*["'](official|strict)["']""")
    hits = [f"{p.relative_to(root.parent)}:{i}" for p in root.rglob("*.py")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if pattern.search(line)]
    assert not hits, hits
