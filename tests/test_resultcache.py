"""Results kept on disk (bench/resultcache.py, used by bench/app/loaders.py): the key
follows the files' stamps (an edit inside the labels folder too) and the code version;
entries read back equal; a hostile entry is never executed, only recomputed."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle

import numpy as np
import pytest

from bench import resultcache as rc
from bench.errors import BenchWarning
from tests import fixtures


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(d))
    monkeypatch.delenv("BENCH_RESULTS_CACHE", raising=False)
    return d


def _same(a, b) -> bool:
    """Structural equality, NaN equal to NaN, array dtypes compared."""
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k])
                                                                   for k in a)
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, BenchWarning):
        return isinstance(b, BenchWarning) and str(a) == str(b)
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return type(a) is type(b) and a == b


def test_cached_computes_once_then_reads_back(cache_dir):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(3.0), (1, 2): [BenchWarning("0_1", "f.npy", "why")]}

    a = rc.cached("demo", ("k", 1), compute)
    b = rc.cached("demo", ("k", 1), compute)
    assert len(calls) == 1
    assert _same(a, b)
    rc.cached("demo", ("k", 2), compute)  # another key: computed
    assert len(calls) == 2


def test_off_switch(cache_dir, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS_CACHE", "0")
    calls = []
    for _ in range(2):
        rc.cached("demo", ("k",), lambda: calls.append(1) or 5)
    assert len(calls) == 2 and not cache_dir.exists()


def test_code_version_is_part_of_the_key(cache_dir, monkeypatch):
    p1 = rc.entry_path("demo", ("k",))
    monkeypatch.setattr(rc, "code_version", lambda: "another version")
    assert rc.entry_path("demo", ("k",)) != p1


def test_hostile_entry_is_recomputed_not_run(cache_dir, tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = rc.entry_path("demo", ("k",))
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(Evil()))
    assert rc.cached("demo", ("k",), lambda: 7) == 7
    assert not marker.exists()
    assert rc.load("demo", ("k",)) == (True, 7)  # rewritten with the computed value


def test_only_bench_dataclasses_are_rebuilt():
    with pytest.raises(ValueError):
        rc.from_plain({"\x00dataclass": "pathlib:Path"})
    with pytest.raises(ValueError):
        rc.from_plain({"\x00dataclass": "bench.errors:BenchError"})  # not a dataclass
    with pytest.raises(TypeError):
        rc.to_plain({"a": object()})


# ---------------------------------------------------------------- through the app's loaders

@pytest.fixture
def bench_files(tmp_path):
    from bench.workspace import discover

    pb = fixtures.make_random_pixel_benchmark(np.random.default_rng(5), tmp_path / "data",
                                              6, 20)
    ds = next(d for d in discover(pb.root) if d.methods)
    return pb, ds, next(iter(ds.methods.values()))


def _clear_memory_caches():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def test_loaders_keep_results_and_follow_the_stamps(cache_dir, bench_files, monkeypatch):
    from bench.app import loaders
    from bench.metrics.pixel import evaluate_pixel

    pb, ds, m = bench_files
    calls = []

    def counted(*a, **kw):
        calls.append(1)
        return evaluate_pixel(*a, **kw)

    monkeypatch.setattr(loaders, "evaluate_pixel", counted)
    _clear_memory_caches()
    first = loaders.pixel(ds, m, "official")
    _clear_memory_caches()  # a new server: only the disk remains
    again = loaders.pixel(ds, m, "official")
    assert len(calls) == 1
    assert _same(first, again)
    assert first.pairs == evaluate_pixel(
        loaders.gnd(ds), *(lambda i: (i.gt, i.preds))(loaders.pixel_inputs(ds, m)),
        ranks=loaders.scan(ds, m), protocol="official",
        image_sizes=loaders.pixel_inputs(ds, m).sizes).pairs

    # one labelme file edited in place: no folder stamp changes, the key does
    labels = _label_paths(pb)
    (q, i) = next(k for k in first.pairs if k in labels and first.pairs[k][0] > 0)
    path = labels[(q, i)]
    before_dir = os.stat(path.parent).st_mtime_ns
    doc = json.loads(path.read_text())
    doc["shapes"][0]["points"] = [[0, 0], [5, 0], [5, 5], [0, 5]]
    path.write_text(json.dumps(doc))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert os.stat(path.parent).st_mtime_ns == before_dir
    _clear_memory_caches()
    edited = loaders.pixel(ds, m, "official")
    assert len(calls) == 2
    assert edited.pairs[(q, i)] != first.pairs[(q, i)]  # the new label's IoU

    # the predictions file touched: recomputed again
    st = os.stat(m.matches)
    os.utime(m.matches, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    _clear_memory_caches()
    loaders.pixel(ds, m, "official")
    assert len(calls) == 3
    _clear_memory_caches()
    loaders.pixel(ds, m, "official")
    assert len(calls) == 3


def _label_paths(pb) -> dict:
    from bench.formats.pixel import load_pair_labels

    paths, _ = load_pair_labels(pb.pair_labels_path, pb.labels_root)
    return paths
