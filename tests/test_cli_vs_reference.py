"""`python -m bench ... --json` on real-format fixtures against the plain reference.

JSON shapes as in issue 2: revisited {setup: {mAP, mP@k {"1","5","10"}, ap}}; pixel
{medium|hard: {mIoU {bbox, seg}, per_query {bbox, seg}, mAP, mAP@k, mAP_t}, pairs, warnings};
gpr1200 {mAP, subsets, ap}. NaN is null.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import fixtures
from tests.reference import (
    GPR_SUBSETS,
    THRESHOLDS,
    ref_gpr1200,
    ref_map_at_k,
    ref_miou,
    ref_pair_iou,
    ref_revisited,
    threshold_key,
)

ROOT = Path(__file__).resolve().parents[1]
EXACT = 1e-12


def run_cli(*args) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench", *map(str, args), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def same(a, b, tol=EXACT) -> bool:
    """JSON value a (None = NaN) against float b."""
    if a is None:
        return math.isnan(b)
    return not math.isnan(b) and abs(a - b) <= tol


@pytest.mark.parametrize("protocol", ["official", "strict"])
def test_cli_revisited(tmp_path, protocol):
    rng = np.random.default_rng(31)
    files = fixtures.make_random_revisited(rng, tmp_path, 9, 30, n_rows=25, p_empty=0.3)
    out = run_cli("revisited", "--gnd", files.gnd_path, "--ranks", files.ranks_path,
                  "--protocol", protocol)
    ref = ref_revisited(files.ranks, files.gnd, protocol=protocol)
    for setup in ("easy", "medium", "hard"):
        assert same(out[setup]["mAP"], ref[setup]["mAP"])
        assert set(out[setup]["mP@k"]) >= {"1", "5", "10"}
        for k in (1, 5, 10):
            assert same(out[setup]["mP@k"][str(k)], ref[setup]["mP@k"][k])
        assert len(out[setup]["ap"]) == 9
        for a, b in zip(out[setup]["ap"], ref[setup]["ap"], strict=True):
            assert same(a, b)


@pytest.mark.parametrize("protocol", ["official", "strict"])
def test_cli_pixel_released_layout(pixel_benchmark, protocol):
    b = pixel_benchmark
    out = run_cli("pixel", "--gnd", b.gnd_path, "--labels-root", b.labels_root,
                  "--pair-labels", b.pair_labels_path, "--matches", b.matches_path,
                  "--ranks", b.ranks_path, "--benchmark", "proxford", "--protocol", protocol)
    # pairs: every easy or hard pair that has a prediction
    predicted = {(q, i) for q, i in b.pairs() if b.preds[(q, i)] is not None}
    assert set(out["pairs"]) == {f"{q}_{i}" for q, i in predicted}
    assert isinstance(out["warnings"], list)
    pairs = {}
    for q, i in predicted:
        v = out["pairs"][f"{q}_{i}"]
        rb, rs = ref_pair_iou(b.preds[(q, i)], b.gt[(q, i)], protocol, b.image_sizes[(q, i)])
        assert same(v["bbox"], rb)
        assert same(v["seg"], rs)  # the reference fills with cv2.fillPoly, as released
        pairs[(q, i)] = (v["bbox"], v["seg"])
    miou = ref_miou(b.gnd, pairs, protocol)
    img = ref_revisited(b.ranks, b.gnd)
    for setup in ("medium", "hard"):
        d = out[setup]
        assert same(d["mIoU"]["bbox"], miou[setup]["bbox"])
        assert same(d["mIoU"]["seg"], miou[setup]["seg"])
        for a, r in zip(d["per_query"]["bbox"], miou[setup]["per_query_bbox"], strict=True):
            assert same(a, r)
        for a, r in zip(d["per_query"]["seg"], miou[setup]["per_query_seg"], strict=True):
            assert same(a, r)
        m, per_t = ref_map_at_k(b.ranks, b.gnd, pairs, setup, {56, 63}, protocol, "bbox")
        assert same(d["mAP@k"], m)
        assert set(d["mAP_t"]) == {threshold_key(t) for t in THRESHOLDS}
        for t in THRESHOLDS:
            assert same(d["mAP_t"][threshold_key(t)], per_t[t])
        assert same(d["mAP"], img[setup]["mAP"])


def test_cli_pixel_without_ranks_has_no_map(pixel_benchmark):
    b = pixel_benchmark
    out = run_cli("pixel", "--gnd", b.gnd_path, "--labels-root", b.labels_root,
                  "--pair-labels", b.pair_labels_path, "--matches", b.matches_path)
    for setup in ("medium", "hard"):
        assert "mIoU" in out[setup] and "per_query" in out[setup]
        assert "mAP@k" not in out[setup] and "mAP_t" not in out[setup]


@pytest.mark.parametrize("mode", ["cosine", "dot", "l2", "indices"])
def test_cli_gpr1200(gpr_folder, tmp_path, mode):
    images, ordered = gpr_folder
    labels = fixtures.gpr_labels_from_names(ordered)
    rng = np.random.default_rng(4)
    if mode == "indices":
        idx = np.stack([rng.permutation(len(labels))[:5] for _ in labels])
        path = fixtures.write_indices(tmp_path / "idx.npy", idx)
        out = run_cli("gpr1200", "--images", images, "--indices", path)
        ref = ref_gpr1200(labels, indices=idx)
    else:
        emb = rng.normal(size=(len(labels), 6)) * rng.uniform(0.5, 2, size=(len(labels), 1))
        path = fixtures.write_embeddings(tmp_path / "emb.npy", emb)
        out = run_cli("gpr1200", "--images", images, "--embeddings", path, "--metric", mode)
        ref = ref_gpr1200(labels, emb, mode)
    assert same(out["mAP"], ref["mAP"])
    assert list(out["subsets"]) == list(GPR_SUBSETS)
    for k in GPR_SUBSETS:
        assert same(out["subsets"][k], ref["subsets"][k])
    assert len(out["ap"]) == len(labels)
    for a, r in zip(out["ap"], ref["ap"], strict=True):
        assert same(a, r)


def test_cli_gpr1200_order_file(gpr_folder, tmp_path):
    """Embeddings saved in another order + an order file give the file-order numbers."""
    images, ordered = gpr_folder
    labels = fixtures.gpr_labels_from_names(ordered)
    rng = np.random.default_rng(8)
    emb = rng.normal(size=(len(labels), 4))
    perm = rng.permutation(len(labels))
    shuffled_names = [ordered[k] for k in perm]
    (tmp_path / "order.txt").write_text("\n".join(shuffled_names) + "\n")
    path = fixtures.write_embeddings(tmp_path / "emb.npy", emb[perm])
    out = run_cli("gpr1200", "--images", images, "--embeddings", path,
                  "--order", tmp_path / "order.txt")
    ref = ref_gpr1200(labels, emb, "cosine")
    assert same(out["mAP"], ref["mAP"])
    # subsets are blocks of categories in file order (not in the order file's order)
    for k in GPR_SUBSETS:
        assert same(out["subsets"][k], ref["subsets"][k]), k
    # "ap": one value per image in file order
    for a, r in zip(out["ap"], ref["ap"], strict=True):
        assert same(a, r)
