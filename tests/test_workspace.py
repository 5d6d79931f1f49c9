"""Discovery of datasets and methods in the released PROxford folder layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.errors import BenchError
from bench.workspace import discover
from tests import fixtures

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Oxford and Paris in one root; method 'm1' has both levels, 'm2' only ranks for Oxford."""
    root = tmp_path_factory.mktemp("released")
    rng = np.random.default_rng(7)
    ox = fixtures.make_random_pixel_benchmark(rng, root, 3, 12, dataset="oxford", method="m1")
    pa = fixtures.make_random_pixel_benchmark(rng, root, 4, 15, dataset="paris", method="m1")
    fixtures.write_ranks(root / "results" / "image-level" / "m2" / "roxford.npy", ox.ranks)
    return root, ox, pa


def test_discover_lists_datasets_and_methods(released):
    root, ox, pa = released
    found = {d.name: d for d in discover(root)}
    assert set(found) == {"roxford5k", "rparis6k"}
    o, p = found["roxford5k"], found["rparis6k"]
    assert (o.short, p.short) == ("oxford", "paris")
    assert o.gnd == ox.gnd_path and p.gnd == pa.gnd_path
    assert o.pair_labels == ox.pair_labels_path and o.labels_root == ox.labels_root
    assert set(o.methods) == {"m1", "m2"}
    assert o.methods["m1"].ranks == ox.ranks_path and o.methods["m1"].matches == ox.matches_path
    assert o.methods["m2"].matches is None and o.methods["m2"].ranks is not None
    assert set(p.methods) == {"m1"}  # m2 has nothing for Paris
    assert p.methods["m1"].matches == pa.matches_path


def test_discovered_files_evaluate(released):
    from bench.evaluate import run_pixel

    root, ox, _ = released
    d = {x.name: x for x in discover(root)}["roxford5k"]
    m = d.methods["m1"]
    _, res = run_pixel(d.gnd, pair_labels=d.pair_labels, labels_root=d.labels_root,
                       matches=m.matches, ranks_path=m.ranks)
    assert res.benchmark == "proxford"
    assert res.setups["medium"].map_at_k is not None


def test_discover_cli_json(released):
    root, ox, _ = released
    out = subprocess.run([sys.executable, "-m", "bench", "discover", str(root), "--json"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["roxford5k"]["methods"]["m1"]["ranks"] == str(ox.ranks_path)


def test_discover_errors(tmp_path):
    with pytest.raises(BenchError, match="no such folder"):
        discover(tmp_path / "nope")
    with pytest.raises(BenchError, match="no gnd_"):
        discover(tmp_path)
