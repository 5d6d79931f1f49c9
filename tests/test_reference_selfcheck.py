"""Hand-computed cases that pin the plain reference (tests/reference.py) itself.

If these pass, the reference says what docs/PROTOCOLS.md says on small cases one can check
with pencil and paper; the comparison tests then extend that trust to random inputs.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from tests import fixtures
from tests.reference import (
    THRESHOLDS,
    _truncate,
    ref_fill_polygon,
    ref_gpr1200,
    ref_map_at_k,
    ref_miou,
    ref_pair_iou,
    ref_revisited,
    ref_revisited_ap,
    ref_revisited_pk,
    ref_revisited_pk_strict,
)

COL = [3, 7, 1, 9, 2]  # a 5-item ranking: position 0 holds image 3, ...


# ----------------------------------------------------------------------------- section 1


def test_ap_five_items_no_junk():
    # positives {3, 1, 2} sit at positions 0, 2, 4; N = 3
    # j=1 r=0: P0 = 1,   P1 = 1/1 -> 1
    # j=2 r=2: P0 = 1/2, P1 = 2/3 -> 7/12
    # j=3 r=4: P0 = 2/4, P1 = 3/5 -> 11/20
    # AP = (1 + 7/12 + 11/20) / 3 = (60 + 35 + 33) / 180 = 32/45
    assert ref_revisited_ap(COL, {3, 1, 2}, set()) == pytest.approx(32 / 45, abs=1e-15)


def test_ap_five_items_with_junk():
    # junk {7} at position 1 moves the later positives up: adjusted r = 0, 1, 3
    # j=1 r=0 -> 1; j=2 r=1: P0 = 1/1, P1 = 2/2 -> 1; j=3 r=3: P0 = 2/3, P1 = 3/4 -> 17/24
    # AP = (1 + 1 + 17/24) / 3 = 65/72
    assert ref_revisited_ap(COL, {3, 1, 2}, {7}) == pytest.approx(65 / 72, abs=1e-15)


def test_ap_truncated_ranking_counts_missing_positive():
    # positive 42 is not in the (truncated) ranking but N = 4: AP = (128/60) / 4 = 8/15
    assert ref_revisited_ap(COL, {3, 1, 2, 42}, set()) == pytest.approx(8 / 15, abs=1e-15)
    # nothing found at all: AP 0, not NaN
    assert ref_revisited_ap(COL, {42}, set()) == 0.0


def test_ap_without_positives_is_nan():
    assert math.isnan(ref_revisited_ap(COL, [], {7}))


def test_pk_official_quirk_and_strict():
    # one positive at rank 1: s = [1]; official kq = min(1, 5) = 1 -> P@5 = 1/1
    assert ref_revisited_pk(COL, {3}, set(), 5) == 1.0
    assert ref_revisited_pk_strict(COL, {3}, set(), 5) == pytest.approx(1 / 5)
    # s = [1, 3, 5]: P@10 official kq = min(5, 10) = 5 -> 3/5; strict 3/10
    assert ref_revisited_pk(COL, {3, 1, 2}, set(), 10) == pytest.approx(3 / 5)
    assert ref_revisited_pk_strict(COL, {3, 1, 2}, set(), 10) == pytest.approx(3 / 10)
    # s = [3, 5]: P@1 kq = min(5, 1) = 1 -> #{s <= 1} = 0; P@5 kq = 5 -> 2/5
    assert ref_revisited_pk(COL, {1, 2}, set(), 1) == 0.0
    assert ref_revisited_pk(COL, {1, 2}, set(), 5) == pytest.approx(2 / 5)
    # junk {7, 1}: positives {3, 2} at positions 0, 4 -> adjusted 0, 2 -> s = [1, 3]
    # P@5: kq = min(3, 5) = 3 -> 2/3
    assert ref_revisited_pk(COL, {3, 2}, {7, 1}, 5) == pytest.approx(2 / 3)
    # no positive found in a truncated ranking: 0
    assert ref_revisited_pk(COL, {42}, set(), 5) == 0.0


def test_revisited_setups_and_queries_without_positives_excluded():
    ranks = np.array([[3, 0], [7, 1], [1, 2], [9, 3], [2, 4]])
    gnd = [
        {"easy": [3], "hard": [1, 2], "junk": [7]},
        {"easy": [], "hard": [], "junk": [0]},  # no positives in any setup
    ]
    out = ref_revisited(ranks, gnd)
    # medium: positives {3, 1, 2}, junk {7} -> 65/72 (see above); query 1 is NaN, left out
    assert out["medium"]["mAP"] == pytest.approx(65 / 72)
    assert math.isnan(out["medium"]["ap"][1])
    # easy: positives {3}, junk {7, 1, 2}: r = 0 -> AP 1
    assert out["easy"]["mAP"] == pytest.approx(1.0)
    # hard: positives {1, 2}, junk {7, 3}: positions 2, 4 -> adjusted 0, 2
    # j=1 r=0 -> 1; j=2 r=2: P0 = 1/2, P1 = 2/3 -> 7/12; AP = (1 + 7/12)/2 = 19/24
    assert out["hard"]["mAP"] == pytest.approx(19 / 24)
    # hard P@5: s = [1, 3] -> kq = 3 -> 2/3
    assert out["hard"]["mP@k"][5] == pytest.approx(2 / 3)
    assert out["hard"]["mP@k"][1] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- section 2


def test_truncation_toward_zero():
    assert _truncate([[2.9, -0.5], [-1.5, 0.99]]) == [(2, 0), (-1, 0)]


def test_thin_triangle_fill_is_opencvs():
    # (3,5), (1,8), (5,1): OpenCV draws the edges with 8-connected lines walked from the
    # end with the smaller x, exact halves rounding back toward it; edge (5,1)-(3,5) has
    # halves at y = 2 (x = 4.5 -> 4) and y = 4 (x = 3.5 -> 3). The fill adds no pixel
    # (see tests/test_geometry.py for the crossings): 8 pixels, one per row.
    mask = ref_fill_polygon([(3, 5), (1, 8), (5, 1)], 10, 10)
    ys, xs = np.nonzero(mask)
    assert sorted(zip(xs.tolist(), ys.tolist(), strict=True)) == [
        (1, 8), (2, 6), (2, 7), (3, 4), (3, 5), (4, 2), (4, 3), (5, 1)]


def test_triangle_fill_with_boundary():
    # triangle (0,0), (4,0), (0,4): pixels with x, y >= 0 and x + y <= 4 -> 1+2+3+4+5 = 15;
    # the hypotenuse pixels (4,0), (3,1), (2,2), (1,3), (0,4) come from the line
    mask = ref_fill_polygon([(0, 0), (4, 0), (0, 4)], 10, 10)
    assert mask.sum() == 15
    assert all(mask[y, x] for x, y in [(4, 0), (3, 1), (2, 2), (1, 3), (0, 4)])


def test_fill_on_a_smaller_canvas_drops_the_rest():
    # a 6 x 6 square 0..5 on a 4 x 3 canvas: columns 0..3 of rows 0..2
    mask = ref_fill_polygon([(0, 0), (5, 0), (5, 5), (0, 5)], 4, 3)
    assert mask.shape == (3, 4) and mask.all()
    assert ref_fill_polygon([(0, 0), (5, 0), (5, 5)], 0, 0).shape == (0, 0)


def test_square_iou_official_clips_at_s():
    # pred square 0..3 (16 px), gt square 2..5. S = 5, so coordinate 5 is off-canvas and
    # the gt keeps 2..4 (9 px). Intersection 2..3 x 2..3 = 4; union 16 + 9 - 4 = 21.
    pred = [[0, 0], [3, 0], [3, 3], [0, 3]]
    gt = [[[2, 2], [5, 2], [5, 5], [2, 5]]]
    bbox, seg = ref_pair_iou(pred, gt)
    assert bbox == pytest.approx(4 / 21) and seg == pytest.approx(4 / 21)
    # strict, 10 x 10 image: gt keeps 2..5 (16 px): 4 / (16 + 16 - 4) = 1/7
    bbox, seg = ref_pair_iou(pred, gt, protocol="strict", image_size=(10, 10))
    assert bbox == pytest.approx(1 / 7) and seg == pytest.approx(1 / 7)


def test_box_reaching_s_is_cut():
    # pred box x 0..10, y 0..2; gt box x 0..4, y 0..2; S = 10 -> pred keeps x 0..9:
    # 10 * 3 = 30 px, gt 5 * 3 = 15 px, all inside the pred -> IoU 15/30 = 0.5
    # (without the cut it would be 15/33)
    pred = [[0, 0], [10, 0], [10, 2], [0, 2]]
    gt = [[[0, 0], [4, 0], [4, 2], [0, 2]]]
    assert ref_pair_iou(pred, gt) == (pytest.approx(0.5), pytest.approx(0.5))


def test_triangle_vs_box_seg_and_bbox():
    # triangle (15 px) inside box 0..4 (25 px). strict 10 x 10: seg 15/25, bbox 1.
    # official: S = 4 drops x = 4 and y = 4: triangle 13 px, box 16 px -> seg 13/16, bbox 1
    tri = [[0, 0], [4, 0], [0, 4]]
    box = [[[0, 0], [4, 0], [4, 4], [0, 4]]]
    assert ref_pair_iou(tri, box, protocol="strict", image_size=(10, 10)) == (
        pytest.approx(1.0), pytest.approx(0.6))
    assert ref_pair_iou(tri, box) == (pytest.approx(1.0), pytest.approx(13 / 16))


def test_truncation_in_pair_iou():
    # pred corners truncate to (2,2), (0,2), (0,0), (2,0): a 3 x 3 square (9 px); rounding
    # would give 3 x 3 -> 4 x 4. gt 0..5 with S = 5 keeps 0..4 (25 px). IoU = 9/25.
    pred = [[2.9, 2.9], [0.5, 2.9], [-0.5, -0.5], [2.9, -0.9]]
    gt = [[[0, 0], [5, 0], [5, 5], [0, 5]]]
    assert ref_pair_iou(pred, gt) == (pytest.approx(9 / 25), pytest.approx(9 / 25))


def test_gt_union_of_shapes_and_empty_union():
    # two disjoint gt squares 0..1 (4 px) and 3..4 (4 px), S = 4 cuts the second to 3..3
    # (1 px). pred = first square -> seg 4 / 5; bbox: gt box 0..3 (16 px), pred box 4 px
    gt = [[[0, 0], [1, 0], [1, 1], [0, 1]], [[3, 3], [4, 3], [4, 4], [3, 4]]]
    bbox, seg = ref_pair_iou([[0, 0], [1, 0], [1, 1], [0, 1]], gt)
    assert seg == pytest.approx(4 / 5) and bbox == pytest.approx(4 / 16)
    # everything off a strict canvas: union empty -> 0 by our convention
    assert ref_pair_iou([[20, 20], [25, 20], [25, 25]], [[[30, 30], [35, 30], [35, 35]]],
                        protocol="strict", image_size=(10, 10)) == (0.0, 0.0)


def test_miou_official_skips_easy_without_prediction():
    gnd = [{"easy": [1, 2], "hard": [3], "junk": []}]
    ious = {(0, 1): (0.5, 0.4), (0, 3): (0.9, 0.8)}  # easy pair (0, 2) not predicted
    out = ref_miou(gnd, ious, "official")
    # medium: hard 0.9 + easy 0.5; (0, 2) skipped -> 0.7 (seg: (0.8 + 0.4)/2 = 0.6)
    assert out["medium"]["bbox"] == pytest.approx(0.7)
    assert out["medium"]["seg"] == pytest.approx(0.6)
    assert out["hard"]["bbox"] == pytest.approx(0.9)
    strict = ref_miou(gnd, ious, "strict")
    # strict: (0, 2) counts 0 -> (0.9 + 0.5 + 0) / 3
    assert strict["medium"]["bbox"] == pytest.approx(1.4 / 3)
    # hard pair without prediction counts 0 in both
    out = ref_miou(gnd, {(0, 1): (0.5, 0.4)}, "official")
    assert out["hard"]["bbox"] == 0.0 and out["medium"]["bbox"] == pytest.approx(0.25)


def test_miou_empty_query_makes_official_nan():
    gnd = [{"easy": [1], "hard": [], "junk": []}, {"easy": [], "hard": [2], "junk": []}]
    out = ref_miou(gnd, {(1, 2): (1.0, 1.0)}, "official")
    # query 0: medium list empty (its easy pair was skipped) -> NaN -> mean NaN
    assert math.isnan(out["medium"]["bbox"])
    # hard: query 0 has no hard pair -> NaN too
    assert math.isnan(out["hard"]["bbox"])


def test_thresholds():
    assert THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_map_at_k_ignored_queries_and_strict_threshold():
    # four queries, query 3 ignored; every positive ranked first (AP 1 when it survives)
    ranks = np.array([[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1], [3, 0, 1, 2]])
    gnd = [{"easy": [], "hard": [q], "junk": []} for q in range(4)]
    # bbox IoUs: q0 0.9 (survives t <= 0.85), q1 exactly 0.6 (survives only 0.50, 0.55:
    # IoU > t is strict), q2 1.0 (always), q3 ignored. Seg IoUs all 0 (official ignores).
    ious = {(0, 0): (0.9, 0.0), (1, 1): (0.6, 0.0), (2, 2): (1.0, 0.0), (3, 3): (1.0, 0.0)}
    m, per_t = ref_map_at_k(ranks, gnd, ious, "medium", {3}, "official", "bbox")
    # t = .50, .55: sum 3, no empty, denominator 4 -> 3/4
    # t = .60 .. .85 (6 values): sum 2, 1 empty -> 2/3
    # t = .90, .95: sum 1, 2 empty -> 1/2
    assert per_t[0.5] == pytest.approx(0.75) and per_t[0.55] == pytest.approx(0.75)
    assert per_t[0.6] == pytest.approx(2 / 3) and per_t[0.85] == pytest.approx(2 / 3)
    assert per_t[0.9] == pytest.approx(0.5)
    assert m == pytest.approx((2 * 0.75 + 6 * 2 / 3 + 2 * 0.5) / 10)  # 0.65
    # strict: the ignored query leaves the denominator too (3 queries), and N = 1 (all
    # positives) at every t, so a query whose positive fails t has AP_t = 0 and stays:
    # t = .50, .55: 1 + 1 + 1 -> 3/3; t = .60 .. .85: 1 + 0 + 1 -> 2/3;
    # t = .90, .95: 0 + 0 + 1 -> 1/3; mAP@k = (2 * 1 + 6 * 2/3 + 2 * 1/3) / 10 = 2/3
    m, per_t = ref_map_at_k(ranks, gnd, ious, "medium", {3}, "strict", "bbox")
    assert per_t[0.5] == pytest.approx(1.0) and per_t[0.85] == pytest.approx(2 / 3)
    assert per_t[0.9] == pytest.approx(1 / 3) and per_t[0.95] == pytest.approx(1 / 3)
    assert m == pytest.approx(2 / 3)
    # strict with seg IoU: every positive fails -> AP_t = 0 for all three -> 0, a number
    m, per_t = ref_map_at_k(ranks, gnd, ious, "medium", {3}, "strict", "seg")
    assert m == 0.0 and all(v == 0.0 for v in per_t.values())


def test_map_at_k_failed_positive_is_not_junk():
    # one query, positives 5 (IoU 0.3, fails) and 6 (IoU 0.8); ranking [5, 6]:
    # 5 is neither positive nor junk, so 6 sits at position 1 -> AP = (1/1)(P0 + P1)/2 with
    # r = 1: P0 = 0/1, P1 = 1/2 -> 1/4 (had 5 been junk, AP would be 1)
    ranks = np.array([[5], [6]])
    gnd = [{"easy": [5, 6], "hard": [], "junk": []}]
    _, per_t = ref_map_at_k(ranks, gnd, {(0, 5): 0.3, (0, 6): 0.8}, "medium")
    assert per_t[0.5] == pytest.approx(0.25)
    assert per_t[0.75] == pytest.approx(0.25)
    # at t = 0.80, 0.8 > 0.8 fails: the only query is empty -> 0 / (1 - 1): NaN
    assert math.isnan(per_t[0.8])
    # strict: N = 2 (both positives) at every t; 6 the only hit at position 1 ->
    # AP = (1/2)(0/1 + 1/2)/2 = 1/8; at t = 0.80 no hit -> AP 0 (defined)
    _, per_t = ref_map_at_k(ranks, gnd, {(0, 5): 0.3, (0, 6): 0.8}, "medium",
                            protocol="strict")
    assert per_t[0.5] == pytest.approx(0.125) and per_t[0.75] == pytest.approx(0.125)
    assert per_t[0.8] == 0.0 and per_t[0.95] == 0.0


# ----------------------------------------------------------------------------- section 3


def test_gpr_query_itself_is_a_positive():
    # cosine to e0: e0 1, e2 0.8, e1 0.6, e3 0 -> ranked [0, 2, 1, 3]
    # labels [0, 0, 1, 1]: positives of q0 at positions 0 and 2 -> AP = (1/1 + 2/3)/2 = 5/6
    # (without itself the positive would be at position 1 of 3 -> 1/2)
    emb = np.array([[1, 0], [0.6, 0.8], [0.8, 0.6], [0, 1]], dtype=np.float64)
    out = ref_gpr1200([0, 0, 1, 1], emb, "cosine")
    assert out["ap"][0] == pytest.approx(5 / 6)


def test_gpr_metrics_differ():
    # dot on unnormalised vectors: e1 scaled by 10 becomes the top match of q0 (dot 6 > 1)
    emb = np.array([[1, 0], [6, 8], [0.8, 0.6], [0, 1]], dtype=np.float64)
    assert ref_gpr1200([0, 0, 1, 1], emb, "dot")["ap"][0] == pytest.approx(1.0)  # [1, 0, ...]
    # cosine ignores the scale: still [0, 2, 1, 3] -> 5/6
    assert ref_gpr1200([0, 0, 1, 1], emb, "cosine")["ap"][0] == pytest.approx(5 / 6)
    # l2 from e0: e0 0, e2 0.63, e3 1.41, e1 9.43 -> [0, 2, 3, 1]: positions 0, 3 ->
    # (1 + 2/4)/2 = 3/4
    assert ref_gpr1200([0, 0, 1, 1], emb, "l2")["ap"][0] == pytest.approx(0.75)


def test_gpr_ties_broken_by_index():
    # all vectors equal: every similarity ties, the order is 0, 1, 2, 3 for every query
    emb = np.ones((4, 3))
    out = ref_gpr1200([0, 1, 1, 0], emb, "cosine")
    # q0: positives 0, 3 at positions 0, 3 -> (1 + 2/4)/2 = 3/4
    # q1: positives 1, 2 at positions 1, 2 -> (1/2 + 2/3)/2 = 7/12
    assert out["ap"] == [pytest.approx(0.75), pytest.approx(7 / 12), pytest.approx(7 / 12),
                         pytest.approx(0.75)]


def test_gpr_indices_normalised_by_found():
    labels = [0, 0, 0, 1, 1, 1]
    idx = np.array([
        [0, 3, 4],  # one positive found at 0 -> 1 (not 1/3)
        [3, 4, 0],  # one positive found at 2 -> (1/3)/1
        [3, 4, 5],  # none found -> 0
        [3, 0, 4],  # q3 (label 1): 3 at 0, 4 at 2 -> (1 + 2/3)/2 = 5/6
        [4, 5, 3],  # all three -> 1
        [5, 4, 0],  # 5 at 0, 4 at 1 -> 1
    ])
    out = ref_gpr1200(labels, indices=idx)
    assert out["ap"] == [pytest.approx(v) for v in [1, 1 / 3, 0, 5 / 6, 1, 1]]
    assert out["mAP"] == pytest.approx((1 + 1 / 3 + 0 + 5 / 6 + 1 + 1) / 6)


def test_gpr_subsets_six_blocks_of_categories():
    # 12 categories x 2 images, indices = perfect: AP 1 for categories 0-5, 0 for 6-11
    labels = [c for c in range(12) for _ in range(2)]
    idx = []
    for q, c in enumerate(labels):
        if c < 6:
            idx.append([2 * c, 2 * c + 1])
        else:
            idx.append([(q + 2) % 24 if labels[(q + 2) % 24] != c else (q + 4) % 24])
    out = ref_gpr1200(labels, indices=idx)
    # blocks of 2 categories: landmarks {0,1}, inat {2,3}, sketch {4,5} -> 1; the rest 0
    assert out["subsets"] == {"landmarks": 1.0, "inat": 1.0, "sketch": 1.0, "instre": 0.0,
                              "sop": 0.0, "faces": 0.0}
    assert out["mAP"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- fixtures


def test_fixture_formats_roundtrip(tmp_path, pixel_benchmark):
    import json

    b = pixel_benchmark
    with open(b.gnd_path, "rb") as f:
        obj = pickle.load(f)  # our own file, written by fixtures.write_gnd_pickle
    assert set(obj) == {"imlist", "qimlist", "gnd"}
    assert set(obj["gnd"][0]) == {"easy", "hard", "junk", "bbx"}
    assert b.gnd_path.name == "gnd_roxford5k.pkl"
    assert b.gnd_path.relative_to(b.root).as_posix() == (
        "pixel_retrieval_benchmarks/revisitop/data/roxford5k/gnd_roxford5k.pkl")
    mapping = np.load(b.pair_labels_path, allow_pickle=True).item()
    assert set(mapping) == {f"{q}_{i}" for q, i in b.pairs()}
    doc = json.loads((b.labels_root / next(iter(mapping.values()))).read_text())
    assert doc["version"] == "4.5.6" and doc["shapes"][0]["shape_type"] == "polygon"
    matches = np.load(b.matches_path, allow_pickle=True).item()
    kinds = list(b.pred_kinds.values())
    assert "empty" in kinds and "missing" in kinds
    for (q, i), kind in b.pred_kinds.items():
        key = fixtures.match_key(q, i)
        if kind == "missing":
            assert key not in matches
        elif kind == "empty":
            assert len(matches[key]) == 0
        else:
            assert np.asarray(matches[key]).shape[1] == 2
    assert np.load(b.ranks_path).shape == (len(b.imlist), len(b.qimlist))
    assert b.matches_path.relative_to(b.root).as_posix() == (
        "results/pixel-level/randmethod/matching_result/proxford.npy")


def test_gpr_folder_order(gpr_folder):
    images, ordered = gpr_folder
    on_disk = sorted(p.name for p in images.iterdir())
    assert sorted(ordered) == on_disk
    cats = fixtures.gpr_labels_from_names(ordered)
    assert cats == sorted(cats) and len(set(cats)) == 12


def test_revisited_fixture_format(revisited_files):
    f = revisited_files
    with open(f.gnd_path, "rb") as fh:
        obj = pickle.load(fh)  # our own file
    assert obj["imlist"] == f.imlist and obj["qimlist"] == f.qimlist
    assert [g["easy"] for g in obj["gnd"]] == [g["easy"] for g in f.gnd]
    assert all(len(g["bbx"]) == 4 for g in obj["gnd"])
    ranks = np.load(f.ranks_path)
    assert ranks.shape == (len(f.imlist), len(f.qimlist))
    assert np.issubdtype(ranks.dtype, np.integer)
    # each column is a permutation of the database
    assert all(sorted(ranks[:, q]) == list(range(len(f.imlist))) for q in range(ranks.shape[1]))
