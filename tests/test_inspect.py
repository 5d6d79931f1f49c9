"""bench.inspect: the per-query views agree with the ground truth and with the metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import inspect as bi
from bench.demo import build_demo
from bench.evaluate import load_pixel_inputs, run_gpr1200
from bench.formats.revisited import load_gnd, load_ranks
from bench.metrics.pixel import evaluate_pixel
from bench.metrics.revisited import evaluate_revisited, scan_ranks


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """The small demo, built once per test session (shared with test_app / test_browser)."""
    return build_demo(tmp_path_factory.getbasetemp() / "small_demo", scale="small")


@pytest.fixture(scope="session")
def loaded(small_demo):
    g = load_gnd(small_demo.gnd)
    m = small_demo.methods["local-sp"]
    ranks = load_ranks(m["ranks"], g)
    scan = scan_ranks(ranks, g)
    return g, ranks, scan, m


def test_top_k_labels_follow_the_ground_truth(loaded):
    g, ranks, _, _ = loaded
    for q in range(g.n_queries):
        items = bi.top_k(ranks, g, q, 10, setup="hard")
        assert [it.db for it in items] == ranks[:10, q].tolist()
        assert [it.rank for it in items] == list(range(1, 11))
        for it in items:
            want = ("easy" if it.db in g.easy[q] else "hard" if it.db in g.hard[q]
                    else "junk" if it.db in g.junk[q] else "negative")
            assert it.label == want
            assert it.name == g.imlist[it.db]
            # hard setup: positives = hard; easy and junk are junk
            assert it.role == {"hard": "positive", "easy": "junk", "junk": "junk",
                               "negative": "negative"}[it.label]


@pytest.mark.parametrize("setup", ["easy", "medium", "hard"])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_missed_positives_are_the_positives_below_k(loaded, setup, k):
    g, ranks, scan, _ = loaded
    for q in range(g.n_queries):
        pos = {"easy": g.easy[q], "hard": g.hard[q],
               "medium": np.concatenate([g.easy[q], g.hard[q]])}[setup]
        col = ranks[:, q].tolist()
        want = sorted((col.index(i) + 1, i) for i in pos.tolist() if col.index(i) + 1 > k)
        got = [(it.rank, it.db) for it in bi.missed_positives(scan, g, q, k, setup=setup)]
        assert got == want
        stats = bi.query_stats(evaluate_revisited(scan, g)[setup], scan, g, q, setup=setup,
                               ks=(k,))
        assert stats.found_in_top[k] + len(got) == len(set(pos.tolist()))


def test_missed_positives_of_a_truncated_ranking(loaded):
    g, ranks, _, _ = loaded
    short = np.ascontiguousarray(ranks[:5])
    scan = scan_ranks(short, g)
    for q in range(g.n_queries):
        missed = bi.missed_positives(scan, g, q, 5, setup="medium")
        in_col = set(short[:, q].tolist())
        pos = set(np.concatenate([g.easy[q], g.hard[q]]).tolist())
        assert {it.db for it in missed} == pos - in_col
        assert all(it.rank is None for it in missed)


def test_pr_points_integrate_to_the_ap(loaded):
    g, _, scan, _ = loaded
    res = evaluate_revisited(scan, g)
    for setup in ("easy", "medium", "hard"):
        for q in range(g.n_queries):
            rec, prec = bi.pr_points(scan, g, setup, q)
            if res[setup].n_pos[q] == 0:
                continue
            # trapezoids between consecutive points, starting from precision 1 at recall 0
            # (docs/PROTOCOLS.md §1 step 3), give the AP
            n = res[setup].n_pos[q]
            j = np.arange(1, rec.size + 1)
            r = np.round(j / prec - 1).astype(int)  # adjusted positions back
            p0 = np.where(r == 0, 1.0, (j - 1) / np.maximum(r, 1))
            ap = float(np.sum((p0 + prec) / 2) / n)
            assert ap == pytest.approx(res[setup].ap[q], abs=1e-12)
            assert np.allclose(rec, j / n)


def test_query_pairs_and_iou_values(small_demo, loaded):
    g, _, scan, m = loaded
    inputs = load_pixel_inputs(g, pair_labels=small_demo.pair_labels,
                               labels_root=small_demo.labels_root, matches=m["matches"])
    res = evaluate_pixel(g, inputs.gt, inputs.preds, ranks=scan, image_sizes=inputs.sizes)
    for q in range(g.n_queries):
        rows = bi.query_pairs(g, q, result=res, gt=inputs.gt, preds=inputs.preds,
                              ranks=bi.rank_lookup(scan, q))
        assert {r.db for r in rows} == set(np.concatenate([g.easy[q], g.hard[q]]).tolist())
        ranked = [r.rank for r in rows if r.rank is not None]
        assert ranked == sorted(ranked)
        for r in rows:
            assert (r.bbox is None) == ((q, r.db) not in res.pairs)
            if r.bbox is not None:
                assert (r.bbox, r.seg) == res.pairs[(q, r.db)]
    b, s, missing = bi.setup_iou_values(g, res, "medium")
    n_pairs = sum(len(set(np.concatenate([g.easy[q], g.hard[q]]).tolist()))
                  for q in range(g.n_queries))
    assert b.size + missing == n_pairs and s.size == b.size


def test_metric_table_marks_and_explains_differences():
    off = {"mAP medium": 0.5, "mP@5 medium": 0.8, "mIoU bbox medium": 0.4,
           "mIoU seg hard": None, "mAP@k hard": 0.3}
    strict = {"mAP medium": 0.5, "mP@5 medium": 0.6, "mIoU bbox medium": 0.4,
              "mIoU seg hard": 0.2, "mAP@k hard": 0.30001}
    rows = {r.metric: r for r in bi.metric_table(off, strict)}
    assert not rows["mAP medium"].differs and rows["mAP medium"].why == ""
    assert rows["mP@5 medium"].differs and "kq" in rows["mP@5 medium"].why
    assert not rows["mIoU bbox medium"].differs
    assert rows["mIoU seg hard"].differs and "canvas" in rows["mIoU seg hard"].why
    assert not rows["mAP@k hard"].differs  # below the printed precision
    assert "easy pairs" in bi.why_different("mIoU seg medium")
    assert "easy pairs" not in bi.why_different("mIoU seg hard")


def test_gpr_views_match_the_metric(small_demo, tmp_path):
    inputs = bi.load_gpr_inputs(small_demo.gpr_images, embeddings=small_demo.gpr_embeddings)
    imgs, res = run_gpr1200(small_demo.gpr_images, embeddings=small_demo.gpr_embeddings)
    assert inputs.images.names == imgs.names
    cats = imgs.categories
    for q in range(0, imgs.n, 7):
        idx, sims, same = bi.gpr_neighbours(inputs, q, imgs.n)
        assert idx[0] == q or sims[0] == pytest.approx(sims[list(idx).index(q)])
        assert np.array_equal(same, cats[idx] == cats[q])
        hits = np.flatnonzero(same)
        ap = float(np.mean((np.arange(hits.size) + 1) / (hits + 1)))
        assert ap == pytest.approx(res.ap[q], abs=1e-9)
    rows = bi.category_rows(imgs, res)
    assert [r.mean_ap for r in rows] == sorted(r.mean_ap for r in rows)
    assert rows[0].text == imgs.category_text.get(rows[0].category, "")
    assert sum(r.n_images for r in rows) == imgs.n
    worst = bi.worst_categories(imgs, res, 2)
    assert worst == rows[:2]
    # indices mode with an order file: rows come back in file order, like run_gpr1200
    order = list(reversed(imgs.names))
    (tmp_path / "order.txt").write_text("\n".join(order))
    emb = np.load(small_demo.gpr_embeddings)
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    rev = x[::-1]
    nn = np.argsort(-(rev @ rev.T), axis=1, kind="stable")[:, :5]
    np.save(tmp_path / "idx.npy", nn)
    inp = bi.load_gpr_inputs(small_demo.gpr_images, indices=tmp_path / "idx.npy",
                             order=tmp_path / "order.txt")
    _, res_idx = run_gpr1200(small_demo.gpr_images, indices=tmp_path / "idx.npy",
                             order=tmp_path / "order.txt")
    for q in range(imgs.n):
        _, _, same = bi.gpr_neighbours(inp, q, 5)
        hits = np.flatnonzero(same)
        ap = float(np.mean((np.arange(hits.size) + 1) / (hits + 1))) if hits.size else 0.0
        assert ap == pytest.approx(res_idx.ap[q], abs=1e-12)
    assert not math.isnan(res_idx.mAP)
