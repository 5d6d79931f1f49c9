"""GPR1200 under each protocol (docs/PROTOCOLS.md §3 'Scores under each protocol').

Official = the released computation: the test restates the released GPR1200
``eval/utils.py`` (numpy version) below, independently of ``bench``: scores
``features_Q @ features_DB.T`` in the embeddings' own dtype (with ``features_Q`` the same
array, as ``compute_mean_average_precision`` passes it), ``np.argsort(...)[:, ::-1]``,
``get_average_precision_score``'s AP. The released order among *exactly* equal scores
is numpy's unstable sort's (not specified); the protocol fixes it as "lower index
first", so a second restatement orders exact ties that way. Under official, bench's
per-query AP equals the literal restatement wherever the order of exact ties cannot
matter, and the tie-fixed restatement everywhere.

Strict keeps exact float64 scores: near ties in float32 are ordered by their float64
value, copies always tie, any magnitude gives the unscaled numbers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bench.evaluate as evaluate
import bench.metrics.gpr1200 as bench_gpr
from bench.errors import BenchError
from bench.protocol import OFFICIAL, STRICT
from tests import fixtures
from tests.reference import ref_gpr1200

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------ the released code, restated


def released_scores(features: np.ndarray, metric: str) -> np.ndarray:
    """``get_sorted_distances(features_DB=features)``'s matrix: higher = more similar
    ("cosine" is the plain product; "L2" is returned negated so both sort descending)."""
    if metric == "cosine":
        return features @ features.T  # features_Q is features_DB
    return -np.linalg.norm(features[:, None, :] - features[None, :, :], axis=2)


def released_ranking(scores: np.ndarray, metric: str) -> np.ndarray:
    """The released order: ``np.argsort(similarities)[:, ::-1]`` for "cosine",
    ``np.argsort(dists)`` for "L2" (default, unstable sort)."""
    if metric == "cosine":
        return np.argsort(scores, axis=1)[:, ::-1]
    return np.argsort(-scores, axis=1)


def index_tie_ranking(scores: np.ndarray) -> np.ndarray:
    """The same scores, higher first, exact ties by lower index."""
    n = scores.shape[1]
    return np.stack([np.lexsort((np.arange(n), -row)) for row in scores])


def released_ap(y_true: np.ndarray) -> float:
    """``get_average_precision_score(y_true)`` with k = None."""
    n_positive = int(np.sum(y_true.astype(int) == 1))
    if n_positive == 0:
        return 0.0
    score, seen = 0.0, 0
    for i in np.where(y_true.astype(int) == 1)[0]:
        seen += 1
        score += seen / (i + 1.0)
    return score / n_positive


def released_aps(categories: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``compute_mean_average_precision``'s list of APs from the ranked indices."""
    return np.array([released_ap(categories[indices[i]] == categories[i])
                     for i in range(len(indices))])


def _released_input(F: np.ndarray, metric: str) -> tuple[np.ndarray, str]:
    """What the released code is given for our metric: dot -> the rows as they are
    ("cosine"); cosine -> rows normalised in their own dtype first; l2 -> "L2"."""
    if metric == "dot":
        return F, "cosine"
    if metric == "cosine":
        return F / np.linalg.norm(F, axis=1, keepdims=True), "cosine"
    return F, "L2"


def tie_ambiguous(scores: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Queries whose released AP depends on the unspecified order of exact ties: some
    positive's score exactly equals some non-positive's."""
    pos = categories[:, None] == categories[None, :]
    return np.array([np.isin(scores[q][pos[q]], scores[q][~pos[q]]).any()
                     for q in range(scores.shape[0])])


# ------------------------------------------------------------ data with near ties


def near_tie_embeddings(seed: int = 7, n: int = 600, d: int = 24, n_cat: int = 60,
                        dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Normalised clustered rows; 30 rows replaced by a copy of an image of another
    category with 4 entries moved by up to 8 units in the last place (their scores with
    that image's category differ from its own by about one float32 unit: float32 rounds
    many of them together, and reverses some, while float64 tells them apart), and 6
    rows by exact copies of another category's image."""
    rng = np.random.default_rng(seed)
    cats = np.repeat(np.arange(n_cat), n // n_cat)
    centres = rng.normal(size=(n_cat, d))
    F = centres[cats] * 0.35 + rng.normal(size=(n, d))
    F = (F / np.linalg.norm(F, axis=1, keepdims=True)).astype(dtype)
    rows = rng.choice(n, size=36, replace=False)
    for t, j in enumerate(rows):
        p = int(rng.integers(n))
        while cats[p] == cats[j]:
            p = int(rng.integers(n))
        v = F[p].copy()
        if t >= 30:
            F[j] = v  # an exact copy
            continue
        k = rng.choice(d, size=4, replace=False)
        v[k] = v[k] + rng.integers(-8, 9, size=4) * np.spacing(v[k])
        F[j] = v.astype(dtype)
    return F, cats


# ------------------------------------------------------------ hand-computed case


def test_hand_example_float32_tie_official_vs_strict():
    """Three 1-d float32 embeddings, dot (u = 2^-23, float32's unit at 1):
    image 0 = 1.5 (category 0), image 1 = 1.5 + 2u (category 0), image 2 = 1.5 + 3u
    (category 1). Query 0's exact scores: 2.25 (itself), 2.25 + 3u (image 1, a positive),
    2.25 + 4.5u (image 2, a negative). In float32 (unit 2u in [2, 4)) images 1 and 2 both
    round to 2.25 + 4u: an exact tie that float64 does not have.
      strict (float64): order 2, 1, 0 -> positives at positions 1 and 2:
        AP = (1/2) (1/2 + 2/3) = 7/12;
      official (float32, the tie by index: 1 before 2): order 1, 2, 0 -> positives at 0
        and 2: AP = (1/2) (1/1 + 2/3) = 5/6.
    """
    u = np.float32(2.0 ** -23)
    F = np.array([[1.5], [1.5 + 2 * u], [1.5 + 3 * u]], dtype=np.float32)
    cats = np.array([0, 0, 1])
    s32 = F @ F.T
    s64 = F.astype(np.float64) @ F.astype(np.float64).T
    assert s32[0, 1] == s32[0, 2] and s64[0, 1] < s64[0, 2]  # rounded together
    off = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot", protocol="official")
    st = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot", protocol="strict")
    assert off.ap[0] == pytest.approx(5 / 6, abs=1e-12)
    assert st.ap[0] == pytest.approx(7 / 12, abs=1e-12)
    # image 1 (category 0): itself 2.25+6u (float32 2.25+6u), image 2 2.25+7.5u (float32
    # 2.25+8u), image 0 2.25+3u -> order 2, 1, 0 under both: positives at 1, 2:
    # AP = (1/2)(1/2 + 2/3) = 7/12; image 2: itself first -> AP 1.
    for r in (off, st):
        assert r.ap[1] == pytest.approx(7 / 12, abs=1e-12) and r.ap[2] == 1.0
    # the tie-fixed restatement agrees with official
    want = released_aps(cats, index_tie_ranking(released_scores(F, "cosine")))
    assert np.abs(off.ap - want).max() <= 1e-12


# ------------------------------------------------------------ official = released


@pytest.mark.parametrize("metric", ["dot", "cosine", "l2"])
def test_official_equals_released_code_on_near_ties(metric):
    F, cats = near_tie_embeddings()
    feats, rmetric = _released_input(F, metric)
    S = released_scores(feats, rmetric)
    assert S.dtype == np.float32  # the released product stays float32
    literal = released_aps(cats, released_ranking(S, rmetric))
    fixed = released_aps(cats, index_tie_ranking(S))
    off = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric=metric, protocol="official")
    st = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric=metric, protocol="strict")
    amb = tie_ambiguous(S, cats)
    differs = np.abs(off.ap - st.ap) > 1e-6
    # the data really has near ties that matter, both kinds: exact float32 ties between a
    # positive and a non-positive, and float32 orders that differ from float64's
    assert amb.sum() >= 20 and (differs & amb).sum() >= 5
    if metric != "l2":  # (l2 distances of these rows rarely reverse)
        assert (differs & ~amb).sum() >= 3
    # official = the literal released code wherever its tie order cannot matter
    assert np.abs(off.ap[~amb] - literal[~amb]).max() <= 1e-6
    # and = the released scores with exact ties by index, on every query
    assert np.abs(off.ap - fixed).max() <= 1e-12
    assert off.mAP == pytest.approx(float(np.mean(fixed)), abs=1e-12)


def test_official_float64_embeddings_use_a_float64_product():
    F, cats = near_tie_embeddings(seed=8, dtype=np.float64)
    F = F + 1e-12 * np.random.default_rng(0).normal(size=F.shape)  # float64 near ties
    S = released_scores(F, "cosine")
    assert S.dtype == np.float64
    off = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot", protocol="official")
    amb = tie_ambiguous(S, cats)
    literal = released_aps(cats, released_ranking(S, "cosine"))
    assert np.abs(off.ap[~amb] - literal[~amb]).max() <= 1e-6
    assert np.abs(off.ap - released_aps(cats, index_tie_ranking(S))).max() <= 1e-12


def test_official_in_row_blocks_above_the_memory_cap(monkeypatch):
    """Above FULL_PRODUCT_BYTES the product is made per block of 256 query rows (the
    same formula; its last bits may differ from the one-call product)."""
    F, cats = near_tie_embeddings(seed=9)
    monkeypatch.setattr(bench_gpr, "FULL_PRODUCT_BYTES", 0)
    sc = bench_gpr.prepare_released(F, "dot")
    assert sc.full is None
    off = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot", protocol="official")
    S = np.vstack([F[s:s + 256] @ F.T for s in range(0, F.shape[0], 256)])
    assert np.abs(off.ap - released_aps(cats, index_tie_ranking(S))).max() <= 1e-12


def test_the_gpr_scores_field_alone_switches_the_scores():
    F, cats = near_tie_embeddings(seed=10)
    off = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot", protocol=OFFICIAL)
    st = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot", protocol=STRICT)
    assert np.abs(off.ap - st.ap).max() > 1e-6
    a = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot",
                                   protocol=OFFICIAL.replace(gpr_scores="exact"))
    b = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot",
                                   protocol=STRICT.replace(gpr_scores="released"))
    assert np.array_equal(a.ap, st.ap) and np.array_equal(b.ap, off.ap)


# ------------------------------------------------------------ strict: exact ties


@pytest.mark.parametrize("metric", ["dot", "cosine", "l2"])
def test_strict_orders_near_ties_in_float64_and_copies_tie(metric):
    """Strict = the plain reference (float64 scores summed in Python, ranked by
    (-score, index)): float32 near ties ordered by float64, exact copies tied and ordered
    by index."""
    F, cats = near_tie_embeddings(n=240, n_cat=24, seed=11)
    st = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric=metric, protocol="strict")
    ref = ref_gpr1200(cats.tolist(), F.astype(np.float64), metric)
    assert np.abs(st.ap - np.array(ref["ap"])).max() <= 1e-12


def test_strict_copies_tie_official_follows_the_product():
    """Query 0's positive 1 and the negative 2 are exact copies: strict ranks the lower
    index first (1 before 2) whatever BLAS does; official uses the released product's
    bits, equal to the restatement's."""
    F, cats = near_tie_embeddings(n=240, n_cat=24, seed=12)
    copies = [(a, b) for a in range(len(F)) for b in range(a + 1, len(F))
              if np.array_equal(F[a], F[b])]
    assert copies
    st = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot", protocol="strict")
    s = F.astype(np.float64) @ F.astype(np.float64).T
    for a, b in copies:
        s[:, b] = s[:, a]  # copies: mathematically equal scores
    assert np.abs(st.ap - released_aps(cats, index_tie_ranking(s))).max() <= 1e-12
    off = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric="dot", protocol="official")
    assert np.abs(off.ap - released_aps(cats, index_tie_ranking(F @ F.T))).max() <= 1e-12


def test_strict_any_magnitude_official_overflow_is_an_error():
    """x * 2^66 (exact in float32) ranks as x under strict; x * 1e20 (the issue's case)
    and x * 2^66 overflow float32 in the product (|x_i|^2 ~ 1e40 > 3.4e38): official
    refuses them, naming the file and suggesting strict."""
    F, cats = near_tie_embeddings(n=120, n_cat=12, seed=13)
    pow2 = (F * np.float32(2.0 ** 66)).astype(np.float32)
    big = (F * np.float32(1e20)).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isfinite(big).all() and not np.isfinite(big[:1] @ big.T).all()
    for metric in ("dot", "cosine", "l2"):
        base = bench_gpr.evaluate_gpr1200(cats, embeddings=F, metric=metric, protocol="strict")
        scaled = bench_gpr.evaluate_gpr1200(cats, embeddings=pow2, metric=metric,
                                            protocol="strict")
        assert np.array_equal(base.ap, scaled.ap), metric
        for x in (big, pow2):
            with pytest.raises(BenchError, match=r"float32 overflow.*emb\.npy.*row 0.*"
                                                 r"--protocol strict"):
                bench_gpr.evaluate_gpr1200(cats, embeddings=x, metric=metric,
                                           protocol="official", path="emb.npy")


def test_overflow_from_disk_names_the_file_and_suggests_strict(tmp_path):
    """The CLI: official exits 2 with one error line naming the file and --protocol
    strict; strict gives the unscaled numbers."""
    rng = np.random.default_rng(14)
    ordered = fixtures.write_gpr_images(tmp_path / "images", 6, 3, rng=rng)
    labels = fixtures.gpr_labels_from_names(ordered)
    emb = rng.normal(size=(len(labels), 5)).astype(np.float32)
    path = fixtures.write_embeddings(tmp_path / "big.npy", emb * np.float32(1e20))
    with pytest.raises(BenchError, match=r"big\.npy.*--protocol strict"):
        evaluate.run_gpr1200(tmp_path / "images", embeddings=path, metric="dot")
    base = [sys.executable, "-m", "bench", "gpr1200", "--images", str(tmp_path / "images"),
            "--embeddings", str(path), "--metric", "dot", "--json"]
    proc = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "big.npy" in proc.stderr and "--protocol strict" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(base + ["--protocol", "strict"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json
    d = json.loads(proc.stdout)
    ref = ref_gpr1200(labels, emb.astype(np.float64), "dot")
    assert d["protocol"] == "strict"
    assert np.abs(np.array(d["ap"]) - np.array(ref["ap"])).max() <= 1e-12


# ------------------------------------------------------------ the app


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    from bench.demo import build_demo

    return build_demo(tmp_path_factory.getbasetemp() / "small_demo", scale="small")


def test_app_gpr_source_offers_the_protocol(small_demo, tmp_path_factory, monkeypatch):
    """The GPR1200 source's sidebar has the Protocol radio; each choice shows the engine's
    number for that protocol and says which scores it used."""
    from tests.test_app import app, metrics, ok

    monkeypatch.setenv("BENCH_DEMO_DIR", str(small_demo.root))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "app_cache"))
    monkeypatch.setenv("BENCH_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))
    at = ok(app(src="gpr", gimages=small_demo.gpr_images, gfile=small_demo.gpr_embeddings))
    for protocol in ("official", "strict"):
        at.radio(key="w_proto").set_value(protocol).run()
        ok(at)
        _, res = evaluate.run_gpr1200(small_demo.gpr_images,
                                      embeddings=small_demo.gpr_embeddings, protocol=protocol)
        assert metrics(at)["mAP"] == [f"{100 * res.mAP:.2f}%"]
        assert any(f"{protocol} scores" in c.value for c in at.caption)
