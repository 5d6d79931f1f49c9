"""The embedded demo (bench.demo): layout and formats, exact ground truth inside the
images, determinism, atomic builds, and both baselines through the engine's CLI.

Builds the small demo (same code path as the full one) once per module, plus one more
build that is first interrupted and then rebuilt (which doubles as the determinism
check). The thresholds on the baselines are sanity bounds for the issue's claims
(spatial verification localises, the global descriptor does not), not pinned values.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.demo import (
    DEMO_VERSION,
    METHODS,
    build_demo,
    default_demo_dir,
    demo_is_built,
    demo_paths,
)

REPO = Path(__file__).resolve().parents[1]


def _load_npy_dict(path: Path) -> dict:
    return np.load(path, allow_pickle=True).item()  # our own files, in a test


def _gnd(paths) -> dict:
    with open(paths.gnd, "rb") as f:
        return pickle.load(f)


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(paths, progress calls, seconds) of one small build."""
    root = tmp_path_factory.mktemp("demo") / "demo-small"
    calls: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    paths = build_demo(root, scale="small", progress=lambda f, m: calls.append((f, m)))
    return paths, calls, time.perf_counter() - t0


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory, demo):
    """A second small build into a folder holding a stale unfinished demo (no .complete)
    and a dead build's temp folder; the first attempt is interrupted by its progress
    callback. Returns (paths, details) of the state along the way."""
    first, _, _ = demo
    base = tmp_path_factory.mktemp("rebuild")
    root = base / "demo"
    # a half-written demo: the first build's files without its .complete marker
    (root / "results").mkdir(parents=True)
    (root / "README.txt").write_text((first.root / "README.txt").read_text())
    (root / "results" / "partial.npy").write_bytes(b"\x93NUMPY")
    stale_tmp = base / f".demo.tmp-{_dead_pid()}-deadbeef"
    (stale_tmp / "results").mkdir(parents=True)
    details = {"stale_tmp": stale_tmp, "built_before": demo_is_built(root)}

    n = 0

    def interrupting(fraction: float, message: str) -> None:
        nonlocal n
        n += 1
        if n == 8:
            raise _Stop(message)

    with pytest.raises(_Stop):
        build_demo(root, scale="small", progress=interrupting)
    details["built_after_interrupt"] = demo_is_built(root)
    details["tmp_after_interrupt"] = sorted(p.name for p in base.glob(".demo.tmp-*"))
    details["root_after_interrupt"] = sorted(p.name for p in root.iterdir())
    paths = build_demo(root, scale="small")
    details["tmp_after_build"] = sorted(p.name for p in base.glob(".*"))
    return paths, details


# --------------------------------------------------------------------------- layout


def test_layout_matches_released_benchmarks(demo):
    paths, _, _ = demo
    root = paths.root
    assert paths == demo_paths(root)
    data = root / "pixel_retrieval_benchmarks" / "revisitop" / "data" / "rdemo"
    assert paths.gnd == data / "gnd_rdemo.pkl" and paths.gnd.is_file()
    assert paths.images == data / "jpg" and paths.images.is_dir()
    assert paths.labels_root == root / "pixel_retrieval_benchmarks"
    assert paths.pair_labels == paths.labels_root / "demo_pair2labelpath.npy"
    for m in ("local-sp", "global-hist"):
        assert paths.methods[m]["ranks"] == root / "results" / "image-level" / m / "rdemo.npy"
        assert paths.methods[m]["matches"] == (
            root / "results" / "pixel-level" / m / "matching_result" / "prdemo.npy")
        assert paths.methods[m]["ranks"].is_file() and paths.methods[m]["matches"].is_file()
    assert paths.gpr_images == root / "gpr1200" / "images"
    assert paths.gpr_embeddings == root / "gpr1200" / "embeddings" / "global.npy"
    assert paths.gpr_category_text == root / "gpr1200" / "GPR1200_categoryNumber_to_text.json"
    readme = (root / "README.txt").read_text()
    assert "synthetic" in readme.lower() and "scikit-image" in readme and "NOT a real" in readme
    info = json.loads((root / ".complete").read_text())
    assert info["version"] == DEMO_VERSION and info["scale"] == "small" and "built" in info


def test_to_json_shape(demo):
    paths, _, _ = demo
    d = paths.to_json()
    assert set(d) == {"gnd", "labels_root", "pair_labels", "images", "methods", "gpr"}
    assert set(d["methods"]) == set(METHODS) == {"local-sp", "global-hist"}
    assert all(set(v) == {"ranks", "matches"} for v in d["methods"].values())
    assert set(d["gpr"]) == {"images", "embeddings"}
    assert d["gnd"] == str(paths.gnd)
    json.dumps(d)  # plain strings only


def test_gnd_format_and_counts(demo):
    paths, _, _ = demo
    g = _gnd(paths)
    assert set(g) == {"imlist", "qimlist", "gnd"}
    imlist, qimlist = g["imlist"], g["qimlist"]
    assert len(qimlist) == 4 and len(imlist) == 30
    assert not set(imlist) & set(qimlist)
    assert len(set(imlist)) == len(imlist)
    for name in imlist + qimlist:
        assert "." not in name and (paths.images / f"{name}.jpg").is_file()
    assert len(g["gnd"]) == len(qimlist)
    for q, entry in enumerate(g["gnd"]):
        assert set(entry) == {"easy", "hard", "junk", "bbx"}
        e, h, j = (set(entry[k]) for k in ("easy", "hard", "junk"))
        assert e and h and j and not (e & h or e & j or h & j)
        assert all(isinstance(i, int) and 0 <= i < len(imlist) for i in e | h | j)
        x1, y1, x2, y2 = entry["bbx"]
        assert all(isinstance(v, float) for v in entry["bbx"])
        with Image.open(paths.images / f"{qimlist[q]}.jpg") as im:
            w, h_ = im.size
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h_
    positives = set().union(*(set(x["easy"]) | set(x["hard"]) | set(x["junk"])
                              for x in g["gnd"]))
    assert len(imlist) - len(positives) >= 6  # negatives


def test_every_pair_polygon_lies_inside_its_image(demo):
    paths, _, _ = demo
    g = _gnd(paths)
    pair2label = _load_npy_dict(paths.pair_labels)
    expected = {f"{q}_{i}" for q, x in enumerate(g["gnd"]) for i in x["easy"] + x["hard"]}
    assert set(pair2label) == expected  # one per easy or hard pair, none for junk
    n_shapes = []
    for key, rel in pair2label.items():
        q, i = map(int, key.split("_"))
        assert not Path(rel).is_absolute() and rel.startswith("demo/labels/")
        label_path = paths.labels_root / rel
        doc = json.loads(label_path.read_text())
        assert doc["version"] and doc["flags"] == {} and doc["imageData"] is None
        image = (label_path.parent / doc["imagePath"]).resolve()
        assert image == (paths.images / f"{g['imlist'][i]}.jpg").resolve()
        with Image.open(image) as im:
            assert im.size == (doc["imageWidth"], doc["imageHeight"])
        w, h = doc["imageWidth"], doc["imageHeight"]
        assert doc["shapes"]
        n_shapes.append(len(doc["shapes"]))
        for s in doc["shapes"]:
            assert s["shape_type"] == "polygon" and s["group_id"] is None
            pts = np.asarray(s["points"], dtype=float)
            assert pts.ndim == 2 and pts.shape[1] == 2 and len(pts) >= 3
            assert pts.min() >= 0 and pts[:, 0].max() <= w - 1 and pts[:, 1].max() <= h - 1
            assert _polygon_area(pts) > 4
    assert max(n_shapes) >= 1


def test_band_occluder_splits_the_object_into_two_shapes():
    # the pixels x = 40..50 are hidden; the visible pixel centres are x <= 39 and x >= 51
    from bench.demo import synth

    poly = np.array([[10.0, 10.0], [90.0, 10.0], [90.0, 60.0], [10.0, 60.0]])
    pieces = synth.subtract_rect(poly, (40, 0, 50, 99))
    assert len(pieces) == 2
    assert sum(_polygon_area(p) for p in pieces) == pytest.approx(29 * 50 + 39 * 50)


def test_ranks_and_matches_formats(demo):
    paths, _, _ = demo
    g = _gnd(paths)
    n_db, n_q = len(g["imlist"]), len(g["qimlist"])
    sizes = []
    for name in g["imlist"]:
        with Image.open(paths.images / f"{name}.jpg") as im:
            sizes.append(im.size)
    for m in METHODS:
        ranks = np.load(paths.methods[m]["ranks"])
        assert ranks.shape == (n_db, n_q) and np.issubdtype(ranks.dtype, np.integer)
        for q in range(n_q):
            assert sorted(ranks[:, q]) == list(range(n_db))
        matches = _load_npy_dict(paths.methods[m]["matches"])
        assert matches
        for key, pts in matches.items():
            _, q, _, i = key.split("_")
            q, i = int(q), int(i)
            assert key == f"qimlist_{q}_imlist_{i}" and q < n_q and i < n_db
            pts = np.asarray(pts, dtype=float)
            assert pts.ndim == 2 and pts.shape[1] == 2 and len(pts) >= 3
            w, h = sizes[i]
            assert pts.min() >= 0 and pts[:, 0].max() <= w - 1 and pts[:, 1].max() <= h - 1
    glob = _load_npy_dict(paths.methods["global-hist"]["matches"])
    w, h = sizes[0]
    assert np.array_equal(glob["qimlist_0_imlist_0"], [[0, 0], [w - 1, 0], [w - 1, h - 1],
                                                        [0, h - 1]])
    local = _load_npy_dict(paths.methods["local-sp"]["matches"])
    localised = [k for k in local if not np.allclose(
        np.ptp(local[k], axis=0), np.subtract(sizes[int(k.split("_")[3])], 1))]
    assert localised  # spatial verification predicts boxes smaller than the image


def test_gpr_demo(demo):
    paths, _, _ = demo
    names = sorted(p.name for p in paths.gpr_images.iterdir())
    assert len(names) == 60
    cats = [int(n.split("_")[0]) for n in names]
    assert sorted(set(cats)) == list(range(6)) and all(cats.count(c) == 10 for c in range(6))
    text = json.loads(paths.gpr_category_text.read_text())
    assert set(text) == {str(c) for c in range(6)}
    emb = np.load(paths.gpr_embeddings)
    assert emb.dtype == np.float32 and emb.shape[0] == 60 and np.all(np.isfinite(emb))
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_files_pass_the_engine_readers(demo):
    from bench.formats.gpr1200 import load_embeddings, load_gpr_images
    from bench.formats.pixel import load_labels, load_matches, load_pair_labels
    from bench.formats.revisited import load_gnd, load_ranks
    from bench.workspace import discover

    paths, _, _ = demo
    gnd = load_gnd(paths.gnd)
    assert gnd.name == "rdemo" and gnd.short == "demo"
    assert gnd.n_queries == 4 and gnd.n_db == 30
    pairs, warns = load_pair_labels(paths.pair_labels, paths.labels_root,
                                    n_queries=gnd.n_queries, n_db=gnd.n_db)
    assert not warns
    labels, warns = load_labels(pairs)
    assert not warns and len(labels) == len(pairs)
    for m in METHODS:
        load_ranks(paths.methods[m]["ranks"], gnd)
        _, warns = load_matches(paths.methods[m]["matches"], n_queries=gnd.n_queries,
                                n_db=gnd.n_db)
        assert not warns
    imgs = load_gpr_images(paths.gpr_images)
    assert imgs.n == 60 and len(imgs.category_text) == 6
    load_embeddings(paths.gpr_embeddings, imgs.n)
    found = {d.name: d for d in discover(paths.root)}
    assert set(found) == {"rdemo"}
    ds = found["rdemo"]
    assert ds.pair_labels == paths.pair_labels and ds.images == paths.images
    assert set(ds.methods) == set(METHODS)
    for m in METHODS:
        assert ds.methods[m].ranks == paths.methods[m]["ranks"]
        assert ds.methods[m].matches == paths.methods[m]["matches"]


# --------------------------------------------------------------------------- build


def test_progress_is_reported(demo):
    _, calls, seconds = demo
    fractions = [f for f, _ in calls]
    assert len(calls) >= 20 and all(isinstance(m, str) and m for _, m in calls)
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] == 1.0
    assert seconds < 60  # the small build takes a few seconds


def test_second_start_is_instant_and_does_not_rebuild(demo):
    paths, _, _ = demo
    stamp = (paths.root / ".complete").stat().st_mtime_ns
    t0 = time.perf_counter()
    again = build_demo(paths.root, scale="small")
    assert time.perf_counter() - t0 < 1.0
    assert again == paths and (paths.root / ".complete").stat().st_mtime_ns == stamp


def test_demo_is_built_needs_a_valid_marker(tmp_path, demo):
    paths, _, _ = demo
    assert demo_is_built(paths.root)
    assert not demo_is_built(tmp_path)
    assert not demo_is_built(tmp_path / "missing")
    (tmp_path / ".complete").write_text(json.dumps({"version": DEMO_VERSION}))
    assert not demo_is_built(tmp_path)  # marker without the files
    copy = tmp_path / "copy"
    shutil.copytree(paths.root, copy)
    assert demo_is_built(copy)
    (copy / ".complete").write_text("{not json")
    assert not demo_is_built(copy)
    (copy / ".complete").write_text(json.dumps({"version": DEMO_VERSION + 1}))
    assert not demo_is_built(copy)
    (copy / ".complete").unlink()
    assert not demo_is_built(copy)


def test_interrupted_build_is_rebuilt(rebuilt):
    paths, details = rebuilt
    assert not details["built_before"]
    assert not details["built_after_interrupt"]
    assert details["tmp_after_interrupt"] == []  # the interrupted temp folder is gone
    # the stale unfinished root is left untouched until a build completes
    assert ".complete" not in details["root_after_interrupt"]
    assert demo_is_built(paths.root)
    assert not (paths.root / "results" / "partial.npy").exists()
    assert details["tmp_after_build"] == []  # dead build's temp folder cleaned up too
    assert not details["stale_tmp"].exists()


def test_two_builds_are_identical(demo, rebuilt):
    first, _, _ = demo
    second, _ = rebuilt
    assert _gnd(first) == _gnd(second)
    assert _load_npy_dict(first.pair_labels) == _load_npy_dict(second.pair_labels)
    for m in METHODS:
        assert np.array_equal(np.load(first.methods[m]["ranks"]),
                              np.load(second.methods[m]["ranks"]))
        a = _load_npy_dict(first.methods[m]["matches"])
        b = _load_npy_dict(second.methods[m]["matches"])
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    for rel in sorted(_load_npy_dict(first.pair_labels).values()):
        assert (first.labels_root / rel).read_text() == (second.labels_root / rel).read_text()
    for p in sorted(first.images.iterdir()):
        assert p.read_bytes() == (second.images / p.name).read_bytes()
    assert np.array_equal(np.load(first.gpr_embeddings), np.load(second.gpr_embeddings))


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(FileExistsError):
        build_demo(tmp_path, scale="small")
    assert (tmp_path / "mine.txt").read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_bad_scale_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        build_demo(tmp_path / "x", scale="huge")


def test_default_demo_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_DEMO_DIR", str(tmp_path / "here"))
    assert default_demo_dir() == tmp_path / "here"
    monkeypatch.delenv("BENCH_DEMO_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_demo_dir() == tmp_path / "cache" / "bench-workbench" / f"demo-v{DEMO_VERSION}"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_demo_dir() == (tmp_path / "home" / ".cache" / "bench-workbench"
                                  / f"demo-v{DEMO_VERSION}")


def test_importing_bench_demo_stays_light():
    code = ("import sys, bench.demo; "
            "print(any(m.startswith(('skimage', 'scipy')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- CLI


def _cli(*args: object) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench", *map(str, args), "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _pixel(paths, method: str, protocol: str = "official") -> dict:
    return _cli("pixel", "--gnd", paths.gnd, "--labels-root", paths.labels_root,
                "--pair-labels", paths.pair_labels,
                "--matches", paths.methods[method]["matches"],
                "--ranks", paths.methods[method]["ranks"], "--protocol", protocol)


@pytest.mark.parametrize("protocol", ["official", "strict"])
def test_baselines_evaluate_through_the_cli(demo, protocol):
    paths, _, _ = demo
    local, glob = _pixel(paths, "local-sp", protocol), _pixel(paths, "global-hist", protocol)
    for d in (local, glob):
        assert not d["warnings"]
        for setup in ("medium", "hard"):
            r = d[setup]
            for v in (r["mIoU"]["bbox"], r["mIoU"]["seg"], r["mAP"], r["mAP@k"]):
                assert v is not None and 0 <= v <= 1
    # spatial verification localises; the global descriptor predicts the whole image
    assert local["medium"]["mAP@k"] > glob["medium"]["mAP@k"] + 0.2
    assert local["medium"]["mIoU"]["seg"] > glob["medium"]["mIoU"]["seg"] + 0.1
    assert local["medium"]["mAP"] > 0.3


def test_revisited_cli_on_the_baselines(demo):
    paths, _, _ = demo
    res = {m: _cli("revisited", "--gnd", paths.gnd, "--ranks", paths.methods[m]["ranks"])
           for m in METHODS}
    for d in res.values():
        for setup in ("easy", "medium", "hard"):
            assert 0 <= d[setup]["mAP"] <= 1
    assert max(d["medium"]["mAP"] for d in res.values()) > 0.3


def test_gpr_cli_on_the_demo_embeddings(demo):
    paths, _, _ = demo
    d = _cli("gpr1200", "--images", paths.gpr_images, "--embeddings", paths.gpr_embeddings)
    assert 0.1 < d["mAP"] <= 1
    assert len(d["subsets"]) == 6


def test_demo_cli_reports_the_built_demo(demo):
    paths, _, _ = demo
    t0 = time.perf_counter()
    d = _cli("demo", "--out", paths.root, "--small")
    assert time.perf_counter() - t0 < 20  # a subprocess; the lookup itself is instant
    assert d == paths.to_json()
