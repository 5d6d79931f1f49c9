"""bench/ against the plain reference (tests/reference.py) on many seeded random cases.

Tolerance: 1e-12 for every number (both sides compute the same rational numbers in
float64): revisited AP / mAP / mP@k, bbox and seg IoU, mIoU, mAP@k, mAP_t, GPR1200 AP /
mAP / subsets. For seg IoU the reference fills every polygon with ``cv2.fillPoly`` on
the full canvas, as the released code does; bench re-implements that fill without
OpenCV, and the two agree pixel for pixel (checked polygon by polygon below).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bench.evaluate as evaluate
import bench.formats.revisited as bench_formats
import bench.geometry as geometry
import bench.metrics.gpr1200 as bench_gpr
import bench.metrics.pixel as bench_pixel
import bench.metrics.revisited as bench_revisited
from bench.errors import BenchError
from tests import fixtures
from tests.reference import (
    IGNORED_QUERIES,
    THRESHOLDS,
    _truncate,
    ref_fill_polygon,
    ref_gpr1200,
    ref_map_at_k,
    ref_miou,
    ref_pair_iou,
    ref_revisited,
    threshold_key,
)

EXACT = 1e-12


def same(a, b, tol=EXACT) -> bool:
    """Equal within tol, NaN equal to NaN."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


def assert_same_list(a, b, tol=EXACT, what=""):
    a, b = list(a), list(b)
    assert len(a) == len(b), what
    bad = [(k, x, y) for k, (x, y) in enumerate(zip(a, b, strict=True)) if not same(x, y, tol)]
    assert not bad, f"{what}: first mismatches (index, bench, reference) {bad[:5]}"


# ------------------------------------------------------------------------------- revisited


def _compare_revisited(gnd_path, ranks_in, gnd_dicts, ranks_arr, protocol):
    gnd = bench_formats.load_gnd(gnd_path)
    res = bench_revisited.evaluate_revisited(ranks_in(gnd), gnd, protocol=protocol)
    ref = ref_revisited(ranks_arr, gnd_dicts, protocol=protocol)
    for setup in ("easy", "medium", "hard"):
        assert_same_list(res[setup].ap, ref[setup]["ap"], what=f"{setup} AP")
        assert same(res[setup].mAP, ref[setup]["mAP"]), setup
        for k in (1, 5, 10):
            assert same(res[setup].mP[k], ref[setup]["mP@k"][k]), (setup, k)


@pytest.mark.parametrize("seed", range(40))
def test_revisited_random(seed, tmp_path):
    rng = np.random.default_rng(1000 + seed)
    n_q = int(rng.integers(1, 9))
    n_db = int(rng.integers(3, 50))
    n_extra = int(rng.integers(0, 12)) if seed % 3 == 0 else 0  # distractors beyond imlist
    total = n_db + n_extra
    # truncated on odd seeds; a truncated file may still hold distractors when it has
    # more rows than imlist (indices < max(n_rows, len(imlist)))
    n_rows = total if seed % 2 == 0 else int(rng.integers(1, total + 1))
    dtype = np.int32 if seed % 4 == 1 else np.int64
    files = fixtures.make_random_revisited(rng, tmp_path, n_q, n_db, n_rows=n_rows,
                                           n_extra=n_extra, p_empty=0.25, dtype=dtype)
    for protocol in ("official", "strict"):
        _compare_revisited(files.gnd_path,
                           lambda g, f=files: bench_formats.load_ranks(f.ranks_path, g),
                           files.gnd, files.ranks, protocol)


@settings(max_examples=150, deadline=None)
@given(
    n_db=st.integers(1, 25),
    data=st.data(),
    protocol=st.sampled_from(["official", "strict"]),
)
def test_revisited_single_query_hypothesis(n_db, data, protocol):
    """Arbitrary easy / hard / junk lists (overlapping, repeated) and truncated rankings."""
    idx = st.integers(0, n_db - 1)
    easy = data.draw(st.lists(idx, max_size=6))
    hard = data.draw(st.lists(idx, max_size=6))
    junk = data.draw(st.lists(idx, max_size=6))
    perm = data.draw(st.permutations(list(range(n_db))))
    n_rows = data.draw(st.integers(1, n_db))
    ranks = np.array(perm[:n_rows], dtype=np.int64)[:, None]
    gnd_dicts = [{"easy": easy, "hard": hard, "junk": junk, "bbx": [0, 0, 1, 1]}]
    with tempfile.TemporaryDirectory() as d:
        path = fixtures.write_gnd_pickle(Path(d) / "gnd_rtest.pkl",
                                         fixtures.names("db", n_db), ["q"], gnd_dicts)
        _compare_revisited(path, lambda g: ranks, gnd_dicts, ranks, protocol)


def _gnd_with(tmp_path, n_db, n_q=3):
    gnd_dicts = [{"easy": [q], "hard": [(q + 1) % n_db], "junk": [(q + 2) % n_db]}
                 for q in range(n_q)]
    path = fixtures.write_gnd_pickle(tmp_path / "gnd_rtest.pkl", fixtures.names("db", n_db),
                                     fixtures.names("q", n_q), gnd_dicts)
    return bench_formats.load_gnd(path), gnd_dicts


def _full_ranks(rng, n_rows, n_q):
    return np.stack([rng.permutation(n_rows) for _ in range(n_q)], axis=1)


def test_revisited_with_distractors_matches_reference(tmp_path):
    """Full rankings over imlist + distractors (the R1M layout), several row blocks."""
    rng = np.random.default_rng(77)
    gnd, gnd_dicts = _gnd_with(tmp_path, 40, 5)
    ranks = _full_ranks(rng, 40_000, 5).astype(np.int32)  # > one row block of 1 MB
    ref = ref_revisited(ranks, gnd_dicts, protocol="official")
    # row-major, column-major, and the transposed layout seen through .T
    for arr in (ranks, np.asfortranarray(ranks), np.ascontiguousarray(ranks.T).T):
        res = bench_revisited.evaluate_revisited(arr, gnd, protocol="official")
        for setup in ("easy", "medium", "hard"):
            assert_same_list(res[setup].ap, ref[setup]["ap"], what=setup)
            for k in (1, 5, 10):
                assert same(res[setup].mP[k], ref[setup]["mP@k"][k]), (setup, k)


@pytest.mark.parametrize("case", ["distractor-twice", "imlist-image-missing", "two-swaps",
                                  "imlist-twice-truncated", "column-order"])
def test_revisited_duplicates_are_errors(tmp_path, case):
    """docs/PROTOCOLS.md §1: an index listed twice in one column is an error, also among
    distractors (found by count, sum and sum of squares) and in a column-major file."""
    rng = np.random.default_rng(5)
    n_db, n_rows, n_q = 30, 500, 3
    gnd, _ = _gnd_with(tmp_path, n_db, n_q)
    ranks = _full_ranks(rng, n_rows, n_q)
    col = 1
    c = ranks[:, col]
    pos = {int(v): i for i, v in enumerate(c)}
    if case == "distractor-twice":  # 300 replaced by a second 301
        c[pos[300]] = 301
        dup = 301
    elif case == "imlist-image-missing":  # image 7 replaced by a second distractor 400
        c[pos[7]] = 400
        dup = 400
    elif case == "two-swaps":  # 100, 103 replaced by 101, 102: same count and sum
        c[pos[100]], c[pos[103]] = 101, 102
        dup = 101
    elif case == "imlist-twice-truncated":  # no distractors: 12 listed twice
        ranks = np.stack([rng.permutation(n_db)[:20] for _ in range(n_q)], axis=1)
        ranks[5, col] = ranks[9, col]
        dup = int(ranks[9, col])
    else:  # the same duplicate in a Fortran-order array (columns contiguous)
        c[pos[300]] = 301
        ranks = np.asfortranarray(ranks)
        dup = 301
    with pytest.raises(BenchError, match=rf"duplicate.*column {col} lists database index {dup} 2"):
        bench_revisited.scan_ranks(ranks, gnd, path="r.npy")


@pytest.mark.parametrize("bad", [-1, 500, 2**31 - 1])
def test_revisited_out_of_range_names_the_column(tmp_path, bad):
    rng = np.random.default_rng(6)
    gnd, _ = _gnd_with(tmp_path, 30, 3)
    ranks = _full_ranks(rng, 500, 3).astype(np.int32)
    ranks[123, 2] = bad
    with pytest.raises(BenchError, match=rf"out of range.*column 2 holds database index {bad}"):
        bench_revisited.scan_ranks(ranks, gnd, path="r.npy")


# ------------------------------------------------------------------------- pixel: one pair


def _random_pairs(rng, n, lo, hi):
    out = []
    while len(out) < n:
        w, h = int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
        shapes = fixtures.random_gt_shapes(rng, w, h)
        kind, pred = fixtures.random_prediction(rng, w, h, shapes)
        if pred is not None:
            out.append((kind, w, h, pred, shapes))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_pair_iou_small_shapes(seed):
    """bbox and seg IoU exact, official and strict canvases."""
    rng = np.random.default_rng(500 + seed)
    for kind, w, h, pred, shapes in _random_pairs(rng, 60, 10, 120):
        for protocol in ("official", "strict"):
            rb, rs = ref_pair_iou(pred, shapes, protocol, (w, h))
            bb, bs = bench_pixel.pair_iou(pred, shapes, protocol=protocol, image_size=(w, h))
            assert abs(bb - rb) <= EXACT, (kind, protocol, pred.tolist(), shapes)
            assert abs(bs - rs) <= EXACT, (kind, protocol, pred.tolist(), shapes, bs, rs)


def test_fill_equals_reference_fill():
    """Polygon by polygon, on the full canvas: bench's fill is the reference's
    cv2.fillPoly, pixel for pixel (on a 200 px canvas and on a 60 px one that cuts
    most polygons)."""
    rng = np.random.default_rng(77)
    n_checked = 0
    for _kind, _w, _h, pred, shapes in _random_pairs(rng, 150, 10, 120):
        for poly in [pred, *shapes]:
            v = _truncate(poly)
            for size in (200, 60):
                ref = ref_fill_polygon(v, size, size)
                b = geometry.polygon_mask(np.array(v, dtype=np.int64), (0, 0), (size, size),
                                          geometry.Canvas(size, size))
                assert np.array_equal(ref, b), (v, size)
            n_checked += 1
    assert n_checked > 300


def test_seg_iou_realistic_sizes():
    rng = np.random.default_rng(9)
    for kind, w, h, pred, shapes in _random_pairs(rng, 25, 300, 700):
        for protocol in ("official", "strict"):
            rb, rs = ref_pair_iou(pred, shapes, protocol, (w, h))
            bb, bs = bench_pixel.pair_iou(pred, shapes, protocol=protocol, image_size=(w, h))
            assert abs(bb - rb) <= EXACT, (kind, protocol)
            assert abs(bs - rs) <= EXACT, (kind, protocol, bs, rs)


# --------------------------------------------------------------- pixel: whole benchmark


@pytest.fixture(scope="module")
def pixel70(tmp_path_factory):
    """70 queries (so the ignored queries 56, 63 / 57, 59 exist), 24 database images."""
    root = tmp_path_factory.mktemp("pixel70")
    return fixtures.make_random_pixel_benchmark(np.random.default_rng(70), root, 70, 24,
                                                max_easy=3, max_hard=3, max_junk=3)


@pytest.fixture(scope="module")
def ref_pair_ious(pixel70):
    """Reference (bbox, seg) of every predicted easy/hard pair, per protocol."""
    b = pixel70
    out = {}
    for protocol in ("official", "strict"):
        out[protocol] = {
            pair: ref_pair_iou(b.preds[pair], b.gt[pair], protocol, b.image_sizes[pair])
            for pair in b.pairs() if b.preds[pair] is not None
        }
    return out


def _check_pixel_result(res, b, ref_pairs, protocol, benchmark, ranks):
    # the same predicted pairs, same bbox and seg IoU
    assert set(res.pairs) == set(ref_pairs)
    for pair, (rb, rs) in ref_pairs.items():
        bb, bs = res.pairs[pair]
        assert abs(bb - rb) <= EXACT, pair
        assert abs(bs - rs) <= EXACT, pair
    # aggregation from bench's own per-pair IoUs: exact
    pairs = {k: (float(v[0]), float(v[1])) for k, v in res.pairs.items()}
    miou = ref_miou(b.gnd, pairs, protocol)
    ignored = IGNORED_QUERIES[benchmark]
    ref_img = ref_revisited(ranks, b.gnd) if ranks is not None else None
    for setup in ("medium", "hard"):
        r = res.setups[setup]
        assert same(r.miou_bbox, miou[setup]["bbox"]), setup
        assert same(r.miou_seg, miou[setup]["seg"]), setup
        assert_same_list(r.per_query_bbox, miou[setup]["per_query_bbox"], what="per-query bbox")
        assert_same_list(r.per_query_seg, miou[setup]["per_query_seg"], what="per-query seg")
        if ranks is None:
            continue
        m, per_t = ref_map_at_k(ranks, b.gnd, pairs, setup, ignored, protocol, "bbox")
        assert same(r.map_at_k, m), (setup, r.map_at_k, m)
        assert set(r.map_t) == {threshold_key(t) for t in THRESHOLDS}
        for t in THRESHOLDS:
            assert same(r.map_t[threshold_key(t)], per_t[t]), (setup, t)
        assert same(r.image_map, ref_img[setup]["mAP"]), setup
        if protocol == "strict":
            m, per_t = ref_map_at_k(ranks, b.gnd, pairs, setup, ignored, protocol, "seg")
            assert same(r.map_at_k_seg, m), (setup, "seg")
            for t in THRESHOLDS:
                assert same(r.map_t_seg[threshold_key(t)], per_t[t]), (setup, "seg", t)


@pytest.mark.parametrize("protocol", ["official", "strict"])
@pytest.mark.parametrize("benchmark", ["proxford", "prparis", "none"])
def test_pixel_benchmark_in_memory(pixel70, ref_pair_ious, protocol, benchmark):
    b = pixel70
    gnd = bench_formats.load_gnd(b.gnd_path)
    res = bench_pixel.evaluate_pixel(gnd, b.gt, b.preds, ranks=b.ranks, protocol=protocol,
                                     benchmark=benchmark, image_sizes=b.image_sizes)
    # sanity: the generator produced what the quirks need
    assert {"missing", "empty"} <= set(b.pred_kinds.values())
    _check_pixel_result(res, b, ref_pair_ious[protocol], protocol, benchmark, b.ranks)


@pytest.mark.parametrize("protocol", ["official", "strict"])
def test_pixel_benchmark_from_disk(pixel70, ref_pair_ious, protocol):
    """The released folder layout read by bench's readers gives the reference's numbers."""
    import bench.evaluate as evaluate
    b = pixel70
    _, res = evaluate.run_pixel(b.gnd_path, pair_labels=b.pair_labels_path,
                                labels_root=b.labels_root, matches=b.matches_path,
                                ranks_path=b.ranks_path, protocol=protocol)
    assert res.benchmark == "proxford"  # from the gnd name roxford5k
    _check_pixel_result(res, b, ref_pair_ious[protocol], protocol, "proxford", b.ranks)


@pytest.mark.parametrize("seed", range(3))
def test_pixel_truncated_ranks_with_distractors(pixel70, ref_pair_ious, seed):
    b = pixel70
    rng = np.random.default_rng(300 + seed)
    n_db = len(b.imlist)
    n_extra = 10
    ranks = fixtures.make_random_ranks(rng, n_db, len(b.qimlist),
                                       n_rows=int(rng.integers(5, n_db + n_extra)),
                                       n_extra=n_extra)
    gnd = bench_formats.load_gnd(b.gnd_path)
    for protocol in ("official", "strict"):
        res = bench_pixel.evaluate_pixel(gnd, b.gt, b.preds, ranks=ranks, protocol=protocol,
                                         benchmark="proxford", image_sizes=b.image_sizes)
        _check_pixel_result(res, b, ref_pair_ious[protocol], protocol, "proxford", ranks)


def test_pixel_without_ranks_has_no_map(pixel70, ref_pair_ious):
    b = pixel70
    gnd = bench_formats.load_gnd(b.gnd_path)
    res = bench_pixel.evaluate_pixel(gnd, b.gt, b.preds, protocol="official",
                                     benchmark="proxford")
    _check_pixel_result(res, b, ref_pair_ious["official"], "official", "proxford", None)
    assert res.setups["medium"].map_at_k is None


# ------------------------------------------------------------------------------- GPR1200


def _random_labels(rng, n_cat):
    counts = rng.integers(1, 6, size=n_cat)
    return np.repeat(np.arange(n_cat), counts)


def _compare_gpr(res, ref):
    assert_same_list(res.ap, ref["ap"], what="GPR AP")
    assert same(res.mAP, ref["mAP"])
    assert set(res.subsets) == set(ref["subsets"])
    for k, v in ref["subsets"].items():
        assert same(res.subsets[k], v), k


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("seed", range(8))
def test_gpr_embeddings_random(seed, metric):
    rng = np.random.default_rng(900 + seed)
    labels = _random_labels(rng, 6 * int(rng.integers(1, 3)))
    emb = rng.normal(size=(labels.size, int(rng.integers(2, 12))))
    if seed % 2:
        emb *= rng.uniform(0.1, 10, size=(labels.size, 1))  # different norms: dot != cosine
    res = bench_gpr.evaluate_gpr1200(labels, embeddings=emb, metric=metric)
    _compare_gpr(res, ref_gpr1200(labels.tolist(), emb, metric))


def _tie_embeddings(rng, n):
    """Rows drawn from a few vectors whose normalised forms and all dot products are exact
    in float64 (axis vectors and (+-1, +-1, +-1, +-1), scaled by powers of two), so
    duplicated rows tie exactly under every metric, whatever the summation order."""
    base = [np.eye(4)[k] * s for k in range(4) for s in (1.0, -2.0)]
    base += [np.array([1.0, 1.0, -1.0, 1.0]) * 0.5, np.array([1.0, -1.0, 1.0, 1.0]) * 4.0]
    base = np.array(base)
    return base[rng.integers(0, len(base), size=n)]


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_gpr_exact_ties_broken_by_index(metric):
    rng = np.random.default_rng(11)
    labels = np.repeat(np.arange(12), 3)
    emb = _tie_embeddings(rng, labels.size)
    res = bench_gpr.evaluate_gpr1200(labels, embeddings=emb, metric=metric, protocol="strict")
    _compare_gpr(res, ref_gpr1200(labels.tolist(), emb, metric))


def _copies(rng, n_rows, n_base, d):
    """Rows that are copies of a few random rows, each scaled by a power of two: copies
    have equal cosine similarities (scaling by 2^k is exact), distinct base rows differ
    far beyond rounding, so the only ties are between copies."""
    base = rng.normal(size=(n_base, d))
    pick = rng.integers(0, n_base, size=n_rows)
    scale = 2.0 ** rng.integers(-3, 4, size=n_rows)
    return base[pick] * scale[:, None], pick


@pytest.mark.parametrize("seed", range(6))
def test_gpr_cosine_duplicate_rows_tie(seed):
    """Copies of a row (exact, or scaled by 2^k) have equal cosine similarities, so
    docs/PROTOCOLS.md §3 orders them by index. A BLAS product alone may give two identical
    columns results one ulp apart (depending on where they fall in its tiles); bench
    scores each distinct database row once, so copies always tie."""
    rng = np.random.default_rng(11 + seed)
    labels = np.repeat(np.arange(12), 3)
    emb, pick = _copies(rng, labels.size, 7, int(rng.integers(3, 9)))
    assert np.unique(pick).size < labels.size  # there are copies to tie
    res = bench_gpr.evaluate_gpr1200(labels, embeddings=emb, metric="cosine", protocol="strict")
    _compare_gpr(res, ref_gpr1200(labels.tolist(), emb, "cosine"))


def test_gpr_copies_tie_however_blas_tiles_them():
    """Many copies spread over a block wider than BLAS tiles (n = 600, blocks of 256
    queries): every copy of the query ties with it, so a query's copies come right after
    the copies of lower index. Checked against a plain ranking on exact cosines."""
    rng = np.random.default_rng(3)
    n = 600
    labels = np.repeat(np.arange(60), 10)
    emb, pick = _copies(rng, n, 40, 16)
    res = bench_gpr.evaluate_gpr1200(labels, embeddings=emb, metric="cosine", protocol="strict")
    base = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    # exact ties: rows with the same base row; others ordered by a float64 cosine that
    # differs from bench's by ~1e-16 while distinct rows differ by far more
    ap = []
    for q in range(n):
        sim = base @ base[q]
        sim[pick == pick[q]] = sim[q]  # copies: mathematically equal, make them tie
        order = np.lexsort((np.arange(n), -sim))
        hits = np.flatnonzero(labels[order] == labels[q])
        ap.append(float(np.mean((np.arange(hits.size) + 1) / (hits + 1))))
    assert_same_list(res.ap, ap, what="GPR AP with copies")


@pytest.mark.parametrize("seed", range(10))
def test_gpr_indices_random(seed):
    rng = np.random.default_rng(1200 + seed)
    labels = _random_labels(rng, 12)
    n = labels.size
    k = int(rng.integers(1, n + 1))
    idx = np.stack([rng.permutation(n)[:k] for _ in range(n)])
    res = bench_gpr.evaluate_gpr1200(labels, indices=idx)
    _compare_gpr(res, ref_gpr1200(labels.tolist(), indices=idx))


def test_gpr_real_size_subsets_blocks_of_2000():
    """n = 12,000 (1,200 categories x 10): subsets are position blocks of 2,000."""
    rng = np.random.default_rng(12000)
    labels = np.repeat(np.arange(1200), 10)
    idx = rng.integers(0, labels.size, size=(labels.size, 4))
    idx[:, 0] = np.arange(labels.size)  # itself first
    res = bench_gpr.evaluate_gpr1200(labels, indices=idx)
    _compare_gpr(res, ref_gpr1200(labels.tolist(), indices=idx))


@pytest.mark.parametrize("mode", ["embeddings", "indices"])
def test_gpr_from_images_folder(tmp_path, mode):
    import bench.evaluate as evaluate
    rng = np.random.default_rng(5)
    ordered = fixtures.write_gpr_images(tmp_path / "images", 12, 3, rng=rng)
    labels = fixtures.gpr_labels_from_names(ordered)
    if mode == "embeddings":
        emb = rng.normal(size=(len(labels), 5))
        path = fixtures.write_embeddings(tmp_path / "emb.npy", emb)
        imgs, res = evaluate.run_gpr1200(tmp_path / "images", embeddings=path, metric="cosine")
        ref = ref_gpr1200(labels, emb, "cosine")
    else:
        idx = np.stack([rng.permutation(len(labels))[:7] for _ in labels])
        path = fixtures.write_indices(tmp_path / "idx.npy", idx)
        imgs, res = evaluate.run_gpr1200(tmp_path / "images", indices=path)
        ref = ref_gpr1200(labels, indices=idx)
    assert list(imgs.names) == ordered
    _compare_gpr(res, ref)


# ------------------------------------------------------- GPR1200: magnitude, zeros, near ties


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("scale, dtype", [(1e20, np.float32), (1e-30, np.float32),
                                          (1e300, np.float64), (1e-300, np.float64)])
def test_gpr_any_magnitude_gives_the_same_map(metric, scale, dtype):
    """Scaling every embedding by one factor changes no ranking, so the numbers are those
    of the unscaled embeddings (docs/PROTOCOLS.md §3); no norm or product overflows
    (float32 x 1e20 used to give 550% with l2 and a wrong cosine)."""
    rng = np.random.default_rng(31)
    labels = _random_labels(rng, 12)
    emb = rng.normal(size=(labels.size, 6))
    emb *= rng.uniform(0.5, 2, size=(labels.size, 1))
    scaled = (emb.astype(dtype) * dtype(scale)).astype(dtype)
    assert np.isfinite(scaled).all() and np.abs(scaled).max() > 0
    ref = ref_gpr1200(labels.tolist(), scaled.astype(np.float64) / scale, metric)
    res = bench_gpr.evaluate_gpr1200(labels, embeddings=scaled, metric=metric,
                                     protocol="strict")
    _compare_gpr(res, ref)
    assert 0.0 <= res.mAP <= 1.0


def test_gpr_cosine_rows_of_wildly_different_norms():
    """Cosine ignores each row's norm: rows scaled by 1e-300 .. 1e300 rank as unscaled."""
    rng = np.random.default_rng(32)
    labels = _random_labels(rng, 12)
    emb = rng.normal(size=(labels.size, 5))
    wild = emb * (10.0 ** rng.integers(-300, 301, size=(labels.size, 1)))
    _compare_gpr(bench_gpr.evaluate_gpr1200(labels, embeddings=wild, metric="cosine",
                                            protocol="strict"),
                 ref_gpr1200(labels.tolist(), emb, "cosine"))


def test_gpr_zero_row_under_cosine_is_an_error_naming_the_row():
    labels = np.repeat(np.arange(6), 2)
    emb = np.random.default_rng(3).normal(size=(12, 4))
    emb[7] = 0.0
    with pytest.raises(BenchError, match=r"zero.*emb\.npy.*row 7 is all zeros"):
        bench_gpr.evaluate_gpr1200(labels, embeddings=emb, metric="cosine", path="emb.npy")
    # dot and l2 are defined for a zero vector: same numbers as the plain reference
    for metric in ("dot", "l2"):
        _compare_gpr(bench_gpr.evaluate_gpr1200(labels, embeddings=emb, metric=metric),
                     ref_gpr1200(labels.tolist(), emb, metric))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_gpr_non_finite_is_an_error_naming_the_row(value):
    labels = np.repeat(np.arange(6), 2)
    emb = np.random.default_rng(4).normal(size=(12, 4))
    emb[9, 2] = value
    for metric in ("cosine", "dot", "l2"):
        with pytest.raises(BenchError, match=r"non-finite.*row 9"):
            bench_gpr.evaluate_gpr1200(labels, embeddings=emb, metric=metric)


def test_gpr_zero_row_from_disk_names_the_file_row(tmp_path):
    """Through an order file, the message names the row of the .npy file."""
    rng = np.random.default_rng(5)
    ordered = fixtures.write_gpr_images(tmp_path / "images", 6, 2, rng=rng)
    order = list(reversed(ordered))  # embeddings saved in reverse file order
    (tmp_path / "order.txt").write_text("\n".join(order))
    emb = rng.normal(size=(len(order), 4)).astype(np.float32)
    emb[3] = 0.0
    path = fixtures.write_embeddings(tmp_path / "emb.npy", emb)
    with pytest.raises(BenchError, match=r"emb\.npy.*row 3 \(image 8 in evaluation order\)"):
        evaluate.run_gpr1200(tmp_path / "images", embeddings=path, metric="cosine",
                             order=tmp_path / "order.txt")


def test_gpr_float32_x_1e20_from_disk(tmp_path):
    """The reported case: float32 embeddings x 1e20 in a file give the unscaled numbers."""
    rng = np.random.default_rng(8)
    ordered = fixtures.write_gpr_images(tmp_path / "images", 12, 3, rng=rng)
    labels = fixtures.gpr_labels_from_names(ordered)
    emb = rng.normal(size=(len(labels), 5)).astype(np.float32)
    path = fixtures.write_embeddings(tmp_path / "emb.npy", emb * np.float32(1e20))
    for metric in ("cosine", "dot", "l2"):
        _, res = evaluate.run_gpr1200(tmp_path / "images", embeddings=path, metric=metric,
                                      protocol="strict")
        _compare_gpr(res, ref_gpr1200(labels, emb.astype(np.float64), metric))


def test_gpr_near_ties_below_float32_are_ordered_in_float64():
    """Scores that differ only beyond float32 precision are ranked by their float64 value:
    the counting runs on float32 copies and counts such near ties again in float64.
    Dot scores of nudged copies differ to first order (~1e-9), which float64 resolves
    and float32 does not."""
    rng = np.random.default_rng(9)
    n = 48
    labels = np.repeat(np.arange(16), 3)
    base = rng.normal(size=(n, 8))
    base[1::2] = base[0::2] + 1e-9 * rng.normal(size=(n // 2, 8))
    s64 = base @ base.T
    s32 = s64.astype(np.float32)
    near = (s32[:, 0::2] == s32[:, 1::2]) & (s64[:, 0::2] != s64[:, 1::2])
    assert near.sum() > n  # the case really occurs, many times
    _compare_gpr(bench_gpr.evaluate_gpr1200(labels, embeddings=base, metric="dot",
                                            protocol="strict"),
                 ref_gpr1200(labels.tolist(), base, "dot"))


def test_positive_positions_with_float32_copy_is_exact():
    """The counting kernel on float32 copies with float64 re-counts equals a plain
    lexsort on (-score64, index), including exact float64 ties and near ties."""
    rng = np.random.default_rng(10)
    b, n, k = 40, 96, 6  # n a multiple of 8: the popcount path
    s64 = rng.normal(size=(b, n))
    s64[:, 1::3] = s64[:, 0::3] + rng.choice([0.0, 1e-12, -1e-12], size=(b, n // 3))
    pos = np.stack([rng.choice(n, size=k, replace=False) for _ in range(b)])
    pos[::5, -1] = -1  # padding
    got = bench_gpr.positive_positions(s64.astype(np.float32), pos, exact=s64)
    for r in range(b):
        order = np.lexsort((np.arange(n), -s64[r]))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        want = [rank[p] if p >= 0 else n for p in pos[r]]
        assert got[r].tolist() == want, r
    # and on float64 alone (exact ties by index)
    assert np.array_equal(bench_gpr.positive_positions(s64, pos), got)
