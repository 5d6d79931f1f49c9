"""Every quirk of docs/PROTOCOLS.md as a small case computed by hand, run through bench/.

Each test states its hand computation in comments; the numbers are not taken from what
the code prints.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import bench.formats.revisited as bench_formats
import bench.metrics.gpr1200 as bench_gpr
import bench.metrics.pixel as bench_pixel
import bench.metrics.revisited as bench_revisited
from tests import fixtures

SQUARE10 = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=np.float64)


def make_gnd(tmp_path, gnd_dicts, n_db, name="rtest"):
    path = fixtures.write_gnd_pickle(tmp_path / f"gnd_{name}.pkl", fixtures.names("db", n_db),
                                     fixtures.names("q", len(gnd_dicts)), gnd_dicts)
    return bench_formats.load_gnd(path)


# ------------------------------------------------------------------- section 2: one pair


def test_canvas_clipping_at_s():
    # pred box x 0..10, y 0..2; gt box x 0..4, y 0..2. S = 10, so x = 10 is off-canvas:
    # pred keeps 10 x 3 = 30 px, gt 5 x 3 = 15 px inside it -> IoU 15/30 = 0.5
    pred = np.array([[0, 0], [10, 0], [10, 2], [0, 2]], dtype=np.float64)
    gt = [np.array([[0, 0], [4, 0], [4, 2], [0, 2]], dtype=np.float64)]
    bbox, seg = bench_pixel.pair_iou(pred, gt, protocol="official")
    assert bbox == pytest.approx(0.5, abs=1e-12)
    assert seg == pytest.approx(0.5, abs=1e-12)
    # strict, 20 x 20 image: nothing cut -> 15 / 33
    bbox, seg = bench_pixel.pair_iou(pred, gt, protocol="strict", image_size=(20, 20))
    assert bbox == pytest.approx(15 / 33, abs=1e-12)
    assert seg == pytest.approx(15 / 33, abs=1e-12)


def test_canvas_clipping_cuts_the_ground_truth():
    # pred square 0..3 (16 px), gt square 2..5: S = 5 keeps gt 2..4 (9 px);
    # intersection 2..3 x 2..3 = 4 -> 4 / (16 + 9 - 4) = 4/21
    pred = np.array([[0, 0], [3, 0], [3, 3], [0, 3]], dtype=np.float64)
    gt = [np.array([[2, 2], [5, 2], [5, 5], [2, 5]], dtype=np.float64)]
    bbox, seg = bench_pixel.pair_iou(pred, gt)
    assert bbox == pytest.approx(4 / 21, abs=1e-12) and seg == pytest.approx(4 / 21, abs=1e-12)


def test_truncation_of_coordinates():
    # pred corners (2.9, 2.9), (0.5, 2.9), (-0.5, -0.5), (2.9, -0.9) truncate toward zero to
    # (2, 2), (0, 2), (0, 0), (2, 0): a 3 x 3 square (9 px). Rounding would give 4 x 4.
    # gt 0..5 with S = 5 keeps 0..4 (25 px) -> IoU 9/25 for bbox and seg
    pred = np.array([[2.9, 2.9], [0.5, 2.9], [-0.5, -0.5], [2.9, -0.9]])
    gt = [np.array([[0, 0], [5, 0], [5, 5], [0, 5]], dtype=np.float64)]
    bbox, seg = bench_pixel.pair_iou(pred, gt)
    assert bbox == pytest.approx(9 / 25, abs=1e-12) and seg == pytest.approx(9 / 25, abs=1e-12)
    # S itself comes from truncated coordinates: a gt point at 5.99 gives S = 5, not 6
    gt = [np.array([[0, 0], [5.99, 0], [5.99, 5.99], [0, 5.99]])]
    bbox, _ = bench_pixel.pair_iou(pred, gt)
    assert bbox == pytest.approx(9 / 25, abs=1e-12)


def test_seg_fills_with_boundary():
    # triangle (0,0), (10,0), (0,10) against the square 0..10; S = 10 keeps 0..9.
    # Triangle pixels (x + y <= 10, boundary included) inside 0..9: for x = 0..9 the column
    # holds min(9, 10 - x) + 1 pixels: 10 + 10 + 9 + 8 + ... + 2 = 64. Square: 100 px.
    # seg IoU = 64/100; bbox IoU = 1 (both boxes are 0..9 after clipping)
    tri = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float64)
    bbox, seg = bench_pixel.pair_iou(tri, [SQUARE10])
    assert bbox == pytest.approx(1.0, abs=1e-12)
    assert seg == pytest.approx(0.64, abs=1e-12)


# --------------------------------------------------------------------- section 2: mIoU


def test_easy_pair_without_prediction_is_skipped(tmp_path):
    # query 0: easy 1 (IoU 0.6), easy 2 (no prediction), hard 3 (IoU 1)
    # pred for (0,1): x 0..10, y 0..5 -> clipped to x 0..9 (S = 10): 10 x 6 = 60 px inside
    # the gt square's 100 px -> 0.6 (bbox and seg).
    # official medium: [1.0 (hard), 0.6 (easy 1)]; easy 2 skipped -> 0.8; hard: 1.0
    # strict medium: [1.0, 0.6, 0] -> 1.6/3
    gnd = make_gnd(tmp_path, [{"easy": [1, 2], "hard": [3], "junk": []}], 4)
    gt = {(0, 1): [SQUARE10], (0, 2): [SQUARE10], (0, 3): [SQUARE10]}
    preds = {(0, 1): np.array([[0, 0], [10, 0], [10, 5], [0, 5]], dtype=np.float64),
             (0, 3): SQUARE10.copy()}
    sizes = {p: (10, 10) for p in gt}  # strict canvas 0..9 too: same clipping
    off = bench_pixel.evaluate_pixel(gnd, gt, preds, protocol="official", benchmark="none")
    assert off.setups["medium"].miou_bbox == pytest.approx(0.8, abs=1e-12)
    assert off.setups["medium"].miou_seg == pytest.approx(0.8, abs=1e-12)
    assert off.setups["hard"].miou_bbox == pytest.approx(1.0, abs=1e-12)
    st = bench_pixel.evaluate_pixel(gnd, gt, preds, protocol="strict", benchmark="none",
                                    image_sizes=sizes)
    assert st.setups["medium"].miou_bbox == pytest.approx(1.6 / 3, abs=1e-12)
    assert st.setups["hard"].miou_bbox == pytest.approx(1.0, abs=1e-12)
    # (0, 2) has no prediction: it is not among the evaluated pairs
    assert set(off.pairs) == {(0, 1), (0, 3)}


def test_hard_pair_without_prediction_counts_zero(tmp_path):
    # query 0: hard 1 (IoU 1), hard 2 (empty prediction) -> hard and medium (1 + 0)/2 = 0.5
    gnd = make_gnd(tmp_path, [{"easy": [], "hard": [1, 2], "junk": []}], 3)
    gt = {(0, 1): [SQUARE10], (0, 2): [SQUARE10]}
    preds = {(0, 1): SQUARE10.copy(), (0, 2): None}
    res = bench_pixel.evaluate_pixel(gnd, gt, preds, protocol="official", benchmark="none")
    assert res.setups["hard"].miou_bbox == pytest.approx(0.5, abs=1e-12)
    assert res.setups["medium"].miou_seg == pytest.approx(0.5, abs=1e-12)


def test_query_with_empty_list_makes_official_miou_nan(tmp_path):
    # query 0 has one easy pair, unpredicted: its medium list is empty -> NaN, and the
    # official mean over queries is NaN. Its hard list is empty too. Strict counts the
    # easy pair as 0 (medium 0 for query 0); hard list still empty -> left out in strict.
    gnd = make_gnd(tmp_path, [{"easy": [1], "hard": [], "junk": []},
                              {"easy": [], "hard": [2], "junk": []}], 3)
    gt = {(0, 1): [SQUARE10], (1, 2): [SQUARE10]}
    preds = {(1, 2): SQUARE10.copy()}
    off = bench_pixel.evaluate_pixel(gnd, gt, preds, protocol="official", benchmark="none")
    assert math.isnan(off.setups["medium"].miou_bbox)
    assert math.isnan(off.setups["medium"].per_query_bbox[0])
    assert off.setups["medium"].per_query_bbox[1] == pytest.approx(1.0)
    st = bench_pixel.evaluate_pixel(gnd, gt, preds, protocol="strict", benchmark="none",
                                    image_sizes={(0, 1): (10, 10), (1, 2): (10, 10)})
    assert st.setups["medium"].miou_bbox == pytest.approx(0.5, abs=1e-12)  # (0 + 1) / 2


# -------------------------------------------------------------------- section 2: mAP@k


def _diagonal_setup(tmp_path, n_q):
    """n_q queries, query q's only (hard) positive is image q, ranked first; every pair is
    predicted perfectly (IoU 1), so every non-ignored query has AP 1 at every t."""
    gnd = make_gnd(tmp_path, [{"easy": [], "hard": [q], "junk": []} for q in range(n_q)],
                   n_q, name="roxford5k")
    ranks = np.stack([np.roll(np.arange(n_q), -q) for q in range(n_q)], axis=1)
    gt = {(q, q): [SQUARE10] for q in range(n_q)}
    preds = {(q, q): SQUARE10.copy() for q in range(n_q)}
    sizes = {(q, q): (10, 10) for q in range(n_q)}
    return gnd, ranks, gt, preds, sizes


def test_ignored_queries_stay_in_denominator(tmp_path):
    # 64 queries, PROxford ignores 56 and 63. Official: mAP_t = 62 * 1 / (64 - 0) = 62/64
    # at every t, so mAP@k = 0.96875. Strict: 62 / (64 - 2) = 1. benchmark "none": 1.
    gnd, ranks, gt, preds, sizes = _diagonal_setup(tmp_path, 64)
    off = bench_pixel.evaluate_pixel(gnd, gt, preds, ranks=ranks, protocol="official",
                                     benchmark="proxford")
    for setup in ("medium", "hard"):
        assert off.setups[setup].map_at_k == pytest.approx(62 / 64, abs=1e-12)
        assert off.setups[setup].map_t["0.50"] == pytest.approx(62 / 64, abs=1e-12)
        assert off.setups[setup].map_t["0.95"] == pytest.approx(62 / 64, abs=1e-12)
        # the image-level mAP beside it is not affected: 1
        assert off.setups[setup].image_map == pytest.approx(1.0, abs=1e-12)
    st = bench_pixel.evaluate_pixel(gnd, gt, preds, ranks=ranks, protocol="strict",
                                    benchmark="proxford", image_sizes=sizes)
    assert st.setups["medium"].map_at_k == pytest.approx(1.0, abs=1e-12)
    # PRParis ignores 57 and 59 instead: also 62/64 officially
    par = bench_pixel.evaluate_pixel(gnd, gt, preds, ranks=ranks, protocol="official",
                                     benchmark="prparis")
    assert par.setups["hard"].map_at_k == pytest.approx(62 / 64, abs=1e-12)
    none = bench_pixel.evaluate_pixel(gnd, gt, preds, ranks=ranks, protocol="official",
                                      benchmark="none")
    assert none.setups["hard"].map_at_k == pytest.approx(1.0, abs=1e-12)
    # the gnd is named roxford5k: the default benchmark is proxford
    default = bench_pixel.evaluate_pixel(gnd, gt, preds, ranks=ranks, protocol="official")
    assert default.setups["hard"].map_at_k == pytest.approx(62 / 64, abs=1e-12)


def test_bbox_iou_used_in_map_at_k(tmp_path):
    # query 0: positive 0 predicted by the triangle (bbox IoU 1, seg IoU 0.64, see above),
    #          ranked second behind image 2 (not positive, not junk):
    #          AP = (1/1) * (P0 + P1)/2 with r = 1: P0 = 0/1, P1 = 1/2 -> 0.25
    # query 1: positive 1 perfect (IoU 1), ranked first -> AP 1
    # bbox (official): both survive every t -> mAP_t = (0.25 + 1)/2 = 0.625 = mAP@k
    # seg (strict reports it too): query 0 survives t = 0.50, 0.55, 0.60 (0.64 > t) ->
    #   0.625 there; for t >= 0.65 its positive is no hit, N stays 1 (strict §2.3): AP 0,
    #   so mAP_t = (0 + 1)/2 = 0.5. mAP@k_seg = (3 * 0.625 + 7 * 0.5) / 10 = 0.5375
    #   (the old rule, query 0 leaving the mean above 0.60, gave (3 * 0.625 + 7) / 10).
    gnd = make_gnd(tmp_path, [{"easy": [0], "hard": [], "junk": []},
                              {"easy": [1], "hard": [], "junk": []}], 3)
    ranks = np.array([[2, 1], [0, 0], [1, 2]])
    gt = {(0, 0): [SQUARE10], (1, 1): [SQUARE10]}
    preds = {(0, 0): np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float64),
             (1, 1): SQUARE10.copy()}
    sizes = {p: (10, 10) for p in gt}
    off = bench_pixel.evaluate_pixel(gnd, gt, preds, ranks=ranks, protocol="official",
                                     benchmark="none")
    assert off.pairs[(0, 0)][1] == pytest.approx(0.64, abs=1e-12)
    assert off.setups["medium"].map_at_k == pytest.approx(0.625, abs=1e-12)
    st = bench_pixel.evaluate_pixel(gnd, gt, preds, ranks=ranks, protocol="strict",
                                    benchmark="none", image_sizes=sizes)
    assert st.setups["medium"].map_at_k == pytest.approx(0.625, abs=1e-12)
    assert st.setups["medium"].map_at_k_seg == pytest.approx(0.5375, abs=1e-12)
    assert st.setups["medium"].map_t_seg["0.60"] == pytest.approx(0.625, abs=1e-12)
    assert st.setups["medium"].map_t_seg["0.65"] == pytest.approx(0.5, abs=1e-12)


def test_iou_threshold_is_strict_and_failed_positives_are_not_junk(tmp_path):
    # one query, easy 1 with IoU exactly 0.6 (pred x 0..10, y 0..5 -> 60/100), easy 2 with
    # IoU 1; ranking [1, 2, 0].
    # t = 0.50, 0.55: both survive, positions 0, 1 -> AP 1
    # t >= 0.60: 0.6 > 0.6 fails; image 1 is then neither positive nor junk, so image 2
    #   stays at position 1: AP = (0/1 + 1/2)/2 = 0.25 (were it junk, AP would be 1)
    # mAP@k = (2 * 1 + 8 * 0.25) / 10 = 0.4
    gnd = make_gnd(tmp_path, [{"easy": [1, 2], "hard": [], "junk": []}], 3)
    ranks = np.array([[1], [2], [0]])
    gt = {(0, 1): [SQUARE10], (0, 2): [SQUARE10]}
    preds = {(0, 1): np.array([[0, 0], [10, 0], [10, 5], [0, 5]], dtype=np.float64),
             (0, 2): SQUARE10.copy()}
    res = bench_pixel.evaluate_pixel(gnd, gt, preds, ranks=ranks, benchmark="none")
    r = res.setups["medium"]
    assert r.map_t["0.55"] == pytest.approx(1.0, abs=1e-12)
    assert r.map_t["0.60"] == pytest.approx(0.25, abs=1e-12)
    assert r.map_at_k == pytest.approx(0.4, abs=1e-12)


def test_map_at_k_unpredicted_positive_has_iou_zero(tmp_path):
    # query 0: easy 1 predicted perfectly, easy 2 not predicted (IoU 0: never survives),
    # junk 0. Ranking [2, 0, 1]: image 2 is neither, junk 0 removed -> image 1 at adjusted
    # position 1 -> AP = (0/1 + 1/2)/2 = 0.25 at every t. (In mIoU the same easy pair is
    # skipped; here it is simply not a positive.)
    gnd = make_gnd(tmp_path, [{"easy": [1, 2], "hard": [], "junk": [0]}], 3)
    ranks = np.array([[2], [0], [1]])
    gt = {(0, 1): [SQUARE10], (0, 2): [SQUARE10]}
    preds = {(0, 1): SQUARE10.copy()}
    res = bench_pixel.evaluate_pixel(gnd, gt, preds, ranks=ranks, benchmark="none")
    assert res.setups["medium"].map_at_k == pytest.approx(0.25, abs=1e-12)
    assert res.setups["medium"].miou_bbox == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------------ section 1


def test_revisited_queries_without_positives_excluded(tmp_path):
    # q0: ranking [3, 7, 1, 9, 2], positives easy {3}, hard {1, 2}, junk {7}
    #   medium: adjusted 0, 1, 3 -> AP = 65/72 (1 + 1 + (2/3 + 3/4)/2) / 3
    # q1: no easy and no hard -> NaN, left out: medium mAP = 65/72
    ranks = np.array([[3, 0], [7, 1], [1, 2], [9, 3], [2, 4]])
    gnd = make_gnd(tmp_path, [{"easy": [3], "hard": [1, 2], "junk": [7]},
                              {"easy": [], "hard": [], "junk": [0]}], 10)
    res = bench_revisited.evaluate_revisited(ranks, gnd)
    assert math.isnan(res["medium"].ap[1])
    assert res["medium"].mAP == pytest.approx(65 / 72, abs=1e-12)
    # hard: positives {1, 2}, junk {7, 3}: positions 2, 4 -> adjusted 0, 2:
    #   AP = (1 + (1/2 + 2/3)/2) / 2 = 19/24
    assert res["hard"].mAP == pytest.approx(19 / 24, abs=1e-12)
    assert not math.isnan(res["hard"].mP[5])


def test_revisited_pk_quirk(tmp_path):
    # positives {1, 2} at positions 2, 4 of [3, 7, 1, 9, 2]: s = [3, 5]
    # official P@1: kq = min(5, 1) = 1 -> 0/1 = 0; P@5: kq = 5 -> 2/5;
    #          P@10: kq = min(5, 10) = 5 -> 2/5 (textbook 2/10)
    ranks = np.array([[3], [7], [1], [9], [2]])
    gnd = make_gnd(tmp_path, [{"easy": [1, 2], "hard": [], "junk": []}], 10)
    off = bench_revisited.evaluate_revisited(ranks, gnd, protocol="official")["easy"]
    assert off.mP[1] == 0.0
    assert off.mP[5] == pytest.approx(0.4, abs=1e-12)
    assert off.mP[10] == pytest.approx(0.4, abs=1e-12)
    st = bench_revisited.evaluate_revisited(ranks, gnd, protocol="strict")["easy"]
    assert st.mP[10] == pytest.approx(0.2, abs=1e-12)


def test_revisited_truncated_ranking_counts_missing_positives(tmp_path):
    # ranking [3, 7, 1, 9, 2] (5 of 50 images); positives {3, 1, 2, 42}: 42 missing, N = 4
    # AP = (1 + 7/12 + 11/20) / 4 = 8/15
    ranks = np.array([[3], [7], [1], [9], [2]])
    gnd = make_gnd(tmp_path, [{"easy": [3, 1, 2, 42], "hard": [], "junk": []}], 50)
    res = bench_revisited.evaluate_revisited(ranks, gnd)
    assert res["easy"].mAP == pytest.approx(8 / 15, abs=1e-12)


# ------------------------------------------------------------------------ section 3


def test_gpr_query_itself_is_a_positive():
    # cosine to e0: e0 1, e2 0.8, e1 0.6, e3 0 -> ranked [0, 2, 1, 3]; labels [0, 0, 1, 1]
    # q0's positives (0 itself and 1) at positions 0, 2 -> AP = (1/1 + 2/3)/2 = 5/6
    # (were the query excluded: positive 1 at position 1 -> 1/2)
    emb = np.array([[1, 0], [0.6, 0.8], [0.8, 0.6], [0, 1]], dtype=np.float64)
    res = bench_gpr.evaluate_gpr1200(np.array([0, 0, 1, 1]), embeddings=emb, metric="cosine")
    assert res.ap[0] == pytest.approx(5 / 6, abs=1e-12)


def test_gpr_indices_normalised_by_positives_found():
    labels = np.array([0, 0, 0, 1, 1, 1])
    idx = np.array([
        [0, 3, 4],  # 1 positive found, at position 0 -> 1/1 = 1 (not 1/3)
        [3, 4, 0],  # 1 found at position 2 -> (1/3) / 1
        [3, 4, 5],  # none found -> 0
        [3, 0, 4],  # 3 at 0, 4 at 2 -> (1 + 2/3)/2 = 5/6
        [4, 5, 3],  # all -> 1
        [5, 4, 0],  # 5 at 0, 4 at 1 -> 1
    ])
    res = bench_gpr.evaluate_gpr1200(labels, indices=idx)
    assert res.ap.tolist() == pytest.approx([1, 1 / 3, 0, 5 / 6, 1, 1], abs=1e-12)
    assert res.mAP == pytest.approx((1 + 1 / 3 + 5 / 6 + 1 + 1) / 6, abs=1e-12)


def test_gpr_subsets_blocks_of_categories():
    # 12 categories x 2 images; indices put the image itself and its twin first for
    # categories 0-5 (AP 1), and only other categories for 6-11 (AP 0).
    # Six blocks of 2 categories: landmarks {0,1}, inat {2,3}, sketch {4,5} -> 1; rest 0
    labels = np.repeat(np.arange(12), 2)
    idx = np.empty((24, 2), dtype=np.int64)
    for q in range(24):
        c = labels[q]
        idx[q] = [2 * c, 2 * c + 1] if c < 6 else [0, 1]
    res = bench_gpr.evaluate_gpr1200(labels, indices=idx)
    assert res.subsets == pytest.approx({"landmarks": 1.0, "inat": 1.0, "sketch": 1.0,
                                         "instre": 0.0, "sop": 0.0, "faces": 0.0})
    assert res.mAP == pytest.approx(0.5, abs=1e-12)


def test_gpr_subsets_when_categories_do_not_divide_by_six():
    # 8 categories x 1 image, indices: categories 0-3 find themselves (AP 1), 4-7 do not (0).
    # Block b holds categories floor(8b/6) .. floor(8(b+1)/6) - 1:
    # landmarks {0}, inat {1}, sketch {2, 3}, instre {4}, sop {5}, faces {6, 7}
    labels = np.arange(8)
    idx = np.array([[q] if q < 4 else [(q + 1) % 8] for q in range(8)])
    res = bench_gpr.evaluate_gpr1200(labels, indices=idx)
    assert res.subsets == pytest.approx({"landmarks": 1.0, "inat": 1.0, "sketch": 1.0,
                                         "instre": 0.0, "sop": 0.0, "faces": 0.0})
    assert res.subset_of.tolist() == [0, 1, 2, 2, 3, 4, 5, 5]


def test_pair_beyond_the_canvas_cap_is_a_warning_not_a_crash(tmp_path):
    # a prediction at 100,000 px (within the readers' +-2^20 but far past the rasteriser's
    # canvas cap): that pair counts as not predicted (hard: IoU 0), with a warning naming it;
    # the other pair (IoU 1) is scored. Hard mIoU = (1 + 0) / 2.
    from bench.geometry import MAX_CANVAS_SIDE
    gnd = make_gnd(tmp_path, [{"easy": [], "hard": [1, 2], "junk": []}], 3)
    far = SQUARE10 + 2 * MAX_CANVAS_SIDE
    gt = {(0, 1): [SQUARE10], (0, 2): [SQUARE10]}
    preds = {(0, 1): SQUARE10.copy(), (0, 2): far}
    res = bench_pixel.evaluate_pixel(gnd, gt, preds, benchmark="none", matches_path="m.npy")
    assert set(res.pairs) == {(0, 1)}
    assert res.setups["hard"].miou_bbox == pytest.approx(0.5, abs=1e-12)
    assert [w.pair for w in res.warnings] == ["0_2"] and res.warnings[0].file == "m.npy"
