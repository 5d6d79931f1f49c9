"""Discovery of datasets and methods in the released PROxford folder layout, R1M result
names, revisitop1m.txt, symbolic links, unrecognised files and the real-size generator."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.errors import BenchError
from bench.formats.distractors import DistractorList, distractor_entry, load_distractors
from bench.formats.revisited import load_gnd
from bench.formats.safe_pickle import load_npy
from bench.inspect import image_name
from bench.workspace import (
    database_image,
    discover,
    discovery_json,
    discovery_text,
    find_method,
)
from tests import fixtures

ROOT = Path(__file__).resolve().parents[1]


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT,
                          capture_output=True, text=True)


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
    assert o.variant == "" and o.base == "roxford5k" and o.distractors is None


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
    out = _run_cli("discover", str(root), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["datasets"]["roxford5k"]["methods"]["m1"]["ranks"] == str(ox.ranks_path)
    assert data["datasets"]["roxford5k"]["methods"]["m2"]["matches"] is None
    assert data["unrecognised"] == [] and data["root"] == str(root)


def test_discover_errors(tmp_path):
    with pytest.raises(BenchError, match="no such folder"):
        discover(tmp_path / "nope")
    with pytest.raises(BenchError, match="no gnd_"):
        discover(tmp_path)
    out = _run_cli("discover", str(tmp_path))
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith(
        "error: no dataset found in ")


# ---------------------------------------------------------------- R1M result names

N_EXTRA = 9  # distractors in the R1M rankings of the test


@pytest.fixture()
def r1m(tmp_path):
    """Oxford + Paris; R1M results under the released names:
    m1: roxford.npy, proxford.npy, R1Moxford.npy, pR1Moxford.npy
    m2: roxford.npy only
    r1monly: R1Moxford.npy only (its pixel results: none)
    m3 (Paris): rparis.npy, prparis.npy, R1Mparis.npy (no pR1Mparis.npy)
    """
    rng = np.random.default_rng(3)
    ox = fixtures.make_random_pixel_benchmark(rng, tmp_path, 4, 14, dataset="oxford",
                                              method="m1")
    pa = fixtures.make_random_pixel_benchmark(rng, tmp_path, 3, 11, dataset="paris",
                                              method="m3")
    il, pl = tmp_path / "results" / "image-level", tmp_path / "results" / "pixel-level"
    files = {
        "m1_r1m": fixtures.write_ranks(il / "m1" / "R1Moxford.npy",
                                       fixtures.make_random_ranks(rng, 14, 4, n_extra=N_EXTRA)),
        "m1_pr1m": fixtures.write_matching_result(pl / "m1" / "matching_result" /
                                                  "pR1Moxford.npy", ox.matches),
        "m2": fixtures.write_ranks(il / "m2" / "roxford.npy", ox.ranks),
        "r1monly": fixtures.write_ranks(il / "r1monly" / "R1Moxford.npy",
                                        fixtures.make_random_ranks(rng, 14, 4, n_extra=N_EXTRA)),
        "m3_r1m": fixtures.write_ranks(il / "m3" / "R1Mparis.npy",
                                       fixtures.make_random_ranks(rng, 11, 3, n_extra=N_EXTRA)),
    }
    return tmp_path, ox, pa, files


def test_r1m_results_are_a_plus_r1m_dataset(r1m):
    root, ox, pa, f = r1m
    found = discover(root)
    assert [d.name for d in found] == ["roxford5k", "roxford5k+R1M", "rparis6k", "rparis6k+R1M"]
    ds = {d.name: d for d in found}
    o, o1 = ds["roxford5k"], ds["roxford5k+R1M"]
    assert set(o.methods) == {"m1", "m2"}  # r1monly has no 5k result
    assert set(o1.methods) == {"m1", "r1monly"}
    assert (o1.variant, o1.base, o1.short) == ("R1M", "roxford5k", "oxford")
    assert o1.title == "roxford5k + R1M distractors"
    assert o1.gnd == o.gnd == ox.gnd_path and o1.pair_labels == ox.pair_labels_path
    assert o1.methods["m1"].ranks == f["m1_r1m"] and o1.methods["m1"].matches == f["m1_pr1m"]
    assert o1.methods["r1monly"].ranks == f["r1monly"] and o1.methods["r1monly"].matches is None
    # Paris: R1M ranks without pR1Mparis.npy are paired with the 5k pixel results
    p1 = ds["rparis6k+R1M"]
    assert set(p1.methods) == {"m3"}
    assert p1.methods["m3"].ranks == f["m3_r1m"] and p1.methods["m3"].matches == pa.matches_path
    assert found.unrecognised == []
    # no revisitop1m.txt: said so
    assert any("revisitop1m.txt" in n and "roxford5k+R1M" in n for n in found.notes)


def test_r1m_method_evaluates_and_is_found_by_name(r1m):
    from bench.evaluate import run_pixel, run_revisited

    root, ox, _, f = r1m
    found = discover(root)
    o1 = {d.name: d for d in found}["roxford5k+R1M"]
    g, res = run_revisited(o1.gnd, o1.methods["m1"].ranks)
    assert np.isfinite(res["medium"].mAP)
    _, pres = run_pixel(o1.gnd, pair_labels=o1.pair_labels, labels_root=o1.labels_root,
                        matches=o1.methods["m1"].matches, ranks_path=o1.methods["m1"].ranks)
    assert pres.setups["medium"].map_at_k is not None
    # m=r1monly with ds=roxford5k (where it has no results) resolves to the +R1M entry
    ds, m = find_method(found, "r1monly", "roxford5k")
    assert ds.name == "roxford5k+R1M" and m.ranks == f["r1monly"]
    ds, m = find_method(found, "m1", "roxford5k+R1M")
    assert ds.name == "roxford5k+R1M" and m.ranks == f["m1_r1m"]
    ds, m = find_method(found, "m1", "roxford5k")
    assert ds.name == "roxford5k" and m.ranks == ox.ranks_path
    assert find_method(found, "nosuch", "roxford5k") is None


def test_r1m_in_cli(r1m):
    root, _, _, f = r1m
    out = _run_cli("discover", str(root), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    d = data["datasets"]["roxford5k+R1M"]
    assert d["variant"] == "R1M" and d["base"] == "roxford5k"
    assert d["methods"]["m1"]["ranks"] == str(f["m1_r1m"])
    text = _run_cli("discover", str(root))
    assert text.returncode == 0, text.stderr
    assert "roxford5k+R1M   (roxford5k + R1M distractors)" in text.stdout
    assert "results/image-level/m1/R1Moxford.npy" in text.stdout


# ---------------------------------------------------------------- unrecognised files

def test_unrecognised_files_listed_with_expected_name(r1m):
    root, ox, _, _ = r1m
    il, pl = root / "results" / "image-level", root / "results" / "pixel-level"
    stray = {
        il / "m1" / "roxford_old.npy": str(il / "m1" / "roxford.npy"),
        il / "m1" / "R1M_oxford_v2.npy": str(il / "m1" / "R1Moxford.npy"),
        pl / "m1" / "proxford.npy": str(pl / "m1" / "matching_result" / "proxford.npy"),
        pl / "m2" / "matching_result" / "paris_preds.npy":
            str(pl / "m2" / "matching_result" / "prparis.npy"),
        il / "m2" / "ranks.npy": f"{il / 'm2'}/ one of roxford.npy, R1Moxford.npy, "
                                 "rparis.npy, R1Mparis.npy",
    }
    for p in stray:
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.zeros((2, 2), dtype=np.int64))
    (il / "m1" / "notes.txt").write_text("not a results file")  # not .npy: not listed
    found = discover(root)
    got = {u.path: u.expected for u in found.unrecognised}
    assert got == stray
    # a tuple of (path, expected), as callers may unpack it
    path, expected = found.unrecognised[0]
    assert isinstance(path, Path) and isinstance(expected, str)
    out = _run_cli("discover", str(root), "--json")
    data = json.loads(out.stdout)
    assert {u["path"]: u["expected"] for u in data["unrecognised"]} == {
        str(k): v for k, v in stray.items()}
    text = _run_cli("discover", str(root)).stdout
    assert "unrecognised files" in text
    assert "expected: " + str(pl / "m1" / "matching_result" / "proxford.npy") in text
    # the recognised files are unaffected
    assert {d.name: d for d in found}["roxford5k"].methods["m1"].ranks == ox.ranks_path


def test_results_named_after_the_dataset_are_read_with_a_note(r1m):
    root, ox, _, _ = r1m
    il, pl = root / "results" / "image-level", root / "results" / "pixel-level"
    a = fixtures.write_ranks(il / "m5" / "roxford5k.npy", ox.ranks)
    b = fixtures.write_matching_result(pl / "m5" / "matching_result" / "proxford5k.npy",
                                       ox.matches)
    c = fixtures.write_ranks(il / "m5" / "R1Mroxford5k.npy", ox.ranks)
    dup = fixtures.write_ranks(il / "m1" / "roxford5k.npy", ox.ranks)  # beside roxford.npy
    found = discover(root)
    ds = {d.name: d for d in found}
    assert ds["roxford5k"].methods["m5"].ranks == a
    assert ds["roxford5k"].methods["m5"].matches == b
    assert ds["roxford5k+R1M"].methods["m5"].ranks == c
    assert ds["roxford5k+R1M"].methods["m5"].matches == b  # the 5k pixel results
    assert ds["roxford5k"].methods["m1"].ranks == ox.ranks_path  # the released name wins
    assert any(str(a) in n and "roxford.npy" in n for n in found.notes)
    assert any(str(b) in n and "proxford.npy" in n for n in found.notes)
    assert any(str(dup) in n and "ignored" in n for n in found.notes)
    assert found.unrecognised == []


# ---------------------------------------------------------------- links and limits

def test_symlinked_benchmark_folder_is_followed(released, tmp_path):
    src, ox, pa = released
    root = tmp_path / "work"
    root.mkdir()
    (root / "pixel_retrieval_benchmarks").symlink_to(src / "pixel_retrieval_benchmarks",
                                                     target_is_directory=True)
    (root / "results").symlink_to(src / "results", target_is_directory=True)
    found = {d.name: d for d in discover(root)}
    assert set(found) == {"roxford5k", "rparis6k"}
    o = found["roxford5k"]
    assert o.gnd == root / "pixel_retrieval_benchmarks" / ox.gnd_path.relative_to(
        src / "pixel_retrieval_benchmarks")
    assert o.pair_labels is not None and o.pair_labels.resolve() == ox.pair_labels_path.resolve()
    assert o.methods["m1"].ranks.resolve() == ox.ranks_path.resolve()


def test_symlinked_gnd_folder_deep_below_root(released, tmp_path):
    """A link somewhere else than the usual places (found by the walk, not by the probes)."""
    src, ox, _ = released
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "linked").symlink_to(ox.gnd_path.parent, target_is_directory=True)
    found = discover(tmp_path)
    assert [d.name for d in found] == ["roxford5k"]
    assert found[0].gnd == tmp_path / "a" / "b" / "linked" / ox.gnd_path.name


def test_symlink_loop_terminates(released, tmp_path):
    src, ox, _ = released
    deep = tmp_path / "x" / "y"
    deep.mkdir(parents=True)
    (deep / "up").symlink_to(tmp_path, target_is_directory=True)  # x/y/up -> root: a loop
    (deep / "self").symlink_to(deep, target_is_directory=True)
    (tmp_path / "x" / "bench").symlink_to(ox.gnd_path.parent, target_is_directory=True)
    (tmp_path / "x" / "bench2").symlink_to(ox.gnd_path.parent, target_is_directory=True)
    found = discover(tmp_path, max_depth=50)
    # the one real gnd, once, although two links (and the loops) reach it
    assert [d.name for d in found] == ["roxford5k"]
    assert found[0].gnd.resolve() == ox.gnd_path.resolve()
    # ended by the loop guard, not by the entry cap
    assert not any("stopped looking" in n for n in found.notes)


def test_entry_cap_stops_the_walk(tmp_path, released):
    src, ox, _ = released
    flat = tmp_path / "big"
    flat.mkdir()
    for k in range(60):
        (flat / f"f{k:03d}.txt").write_text("")
    with pytest.raises(BenchError, match=r"stopped looking after \d+ entries"):
        discover(tmp_path, max_entries=40)
    # a gnd in one of the usual places is still found, with a note of where the walk stopped
    d = tmp_path / "revisitop" / "data" / "roxford5k"
    d.mkdir(parents=True)
    (d / ox.gnd_path.name).write_bytes(ox.gnd_path.read_bytes())
    found = discover(tmp_path, max_entries=40)
    assert [x.name for x in found] == ["roxford5k"]
    assert any("stopped looking after" in n for n in found.notes)


def test_depth_cap(tmp_path, released):
    src, ox, _ = released
    d = tmp_path.joinpath(*[f"d{k}" for k in range(8)])
    d.mkdir(parents=True)
    (d / ox.gnd_path.name).write_bytes(ox.gnd_path.read_bytes())
    with pytest.raises(BenchError, match="no gnd_"):
        discover(tmp_path)  # 8 levels down: beyond the default 6
    assert [x.name for x in discover(tmp_path, max_depth=8)] == ["roxford5k"]


def test_discovery_pickles_with_its_extras(r1m):
    """The app caches discover() with st.cache_data, which pickles the result."""
    root, *_ = r1m
    found = discover(root)
    back = pickle.loads(pickle.dumps(found))
    assert list(back) == list(found)
    assert back.notes == found.notes and back.unrecognised == found.unrecognised
    assert discovery_json(back) == discovery_json(found)
    assert discovery_text(back) == discovery_text(found)


# ---------------------------------------------------------------- revisitop1m.txt

def _plain_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f.readlines()]


def test_distractor_list_names_and_paths(tmp_path):
    p = tmp_path / "revisitop1m.txt"
    p.write_bytes(b"00/abc.jpg\n01/def.jpg\r\nplain_name\n  spaced/x.png  \n\n02/last.jpg")
    lst = DistractorList(p)
    assert lst._starts is None  # nothing read yet
    expect = _plain_lines(p)
    assert expect == ["00/abc.jpg", "01/def.jpg", "plain_name", "spaced/x.png", "",
                      "02/last.jpg"]
    assert len(lst) == len(expect) and list(lst) == expect
    assert lst[-1] == "02/last.jpg" and lst[1:3] == expect[1:3]
    assert lst.image_path(0) == tmp_path / "jpg" / "00" / "abc.jpg"
    assert lst.image_path(2) == tmp_path / "jpg" / "plain_name.jpg"  # no extension: .jpg
    assert lst.entry(3) == ("spaced/x.png", tmp_path / "jpg" / "spaced" / "x.png")
    with pytest.raises(IndexError):
        lst.name(len(expect))
    # a trailing newline does not make an extra line (as readlines())
    q = tmp_path / "b.txt"
    q.write_bytes(b"a.jpg\nb.jpg\n")
    assert list(DistractorList(q)) == ["a.jpg", "b.jpg"]
    e = tmp_path / "empty.txt"
    e.write_bytes(b"")
    assert len(DistractorList(e)) == 0


def test_distractor_list_bad_files(tmp_path):
    p = tmp_path / "revisitop1m.txt"
    p.write_bytes(b"a.jpg\n\x00\x01binary")
    with pytest.raises(BenchError, match="NUL byte"):
        len(DistractorList(p))
    gone = DistractorList(tmp_path / "later.txt")  # lazy: the constructor reads nothing
    with pytest.raises(BenchError, match="unreadable distractor list"):
        len(gone)
    with pytest.raises(BenchError, match="missing distractor list"):
        load_distractors(tmp_path / "nope.txt")


def test_distractor_list_at_real_size(tmp_path):
    """1,001,001 lines, as the real revisitop1m.txt."""
    n = 1_001_001
    lines = [f"{k % 100:02d}/{k:07d}.jpg" for k in range(n)]
    p = tmp_path / "revisitop1m.txt"
    p.write_text("\n".join(lines) + "\n")
    lst = load_distractors(p)
    assert len(lst) == n
    for j in (0, 1, 4_993, 500_000, n - 1):
        assert lst[j] == lines[j]
    assert load_distractors(p) is lst  # cached while the file is unchanged


def test_image_name_and_database_image_use_the_list(tmp_path, r1m):
    root, ox, _, _ = r1m
    data = ox.gnd_path.parents[1]  # revisitop/data
    lines = [f"{k:02d}/d{k}.jpg" for k in range(N_EXTRA)]
    (data / "revisitop1m.txt").write_text("\n".join(lines) + "\n")
    (data / "jpg" / "03").mkdir(parents=True)
    fixtures.write_tiny_jpeg(data / "jpg" / "03" / "d3.jpg")
    found = discover(root)
    o1 = {d.name: d for d in found}["roxford5k+R1M"]
    assert o1.distractors == data / "revisitop1m.txt"
    assert o1.distractor_images == data / "jpg"
    assert not any("revisitop1m.txt" in n for n in found.notes)
    g = load_gnd(o1.gnd)
    names = o1.distractor_list()
    assert image_name(g, g.n_db + 3, names) == "03/d3.jpg"
    assert image_name(g, g.n_db + 3) == "distractor 3"  # the old call still works
    assert image_name(g, g.n_db + N_EXTRA + 5, names) == f"distractor {N_EXTRA + 5}"
    assert image_name(g, 2, names) == ox.imlist[2]
    assert database_image(o1, g.imlist, g.n_db + 3) == ("03/d3.jpg", data / "jpg" / "03" /
                                                         "d3.jpg")
    assert database_image(o1, g.imlist, 1)[0] == ox.imlist[1]
    assert distractor_entry(g.n_db, g.n_db + 1, None) == ("distractor 1", None)
    # the JSON names it
    d = discovery_json(found)["datasets"]["roxford5k+R1M"]
    assert d["distractors"] == str(data / "revisitop1m.txt")


# ---------------------------------------------------------------- the real-size generator

def _make_quick(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_realsize.py"),
                           "--quick", "--out", str(out), "--json", *extra],
                          cwd=out.parent, capture_output=True, text=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    base = tmp_path_factory.mktemp("realsize")
    out = base / "rs"
    r = _make_quick(out, "--images", "4")
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def test_make_realsize_quick_is_discovered(quick):
    out, man = quick
    assert man["built"] is True
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left
    found = discover(out)
    assert [d.name for d in found] == ["roxford5k", "roxford5k+R1M"]
    o, o1 = found
    prb = out / "pixel_retrieval_benchmarks"
    assert o.gnd == prb / "revisitop" / "data" / "roxford5k" / "gnd_roxford5k.pkl"
    assert o.pair_labels == prb / "oxford_pair2labelpath.npy" and o.labels_root == prb
    assert o.images == prb / "revisitop" / "data" / "roxford5k" / "jpg"
    assert set(o.methods) == {"plain", "withr1m"} and set(o1.methods) == {"withr1m"}
    il, pl = out / "results" / "image-level", out / "results" / "pixel-level"
    assert o1.methods["withr1m"].ranks == il / "withr1m" / "R1Moxford.npy"
    assert o1.methods["withr1m"].matches == pl / "withr1m" / "matching_result" / "pR1Moxford.npy"
    assert o.methods["plain"].matches == pl / "plain" / "matching_result" / "proxford.npy"
    assert o1.distractors == prb / "revisitop" / "data" / "revisitop1m.txt"
    assert found.unrecognised == [] and found.notes == []

    g = load_gnd(o.gnd)
    assert g.n_queries == 70 and g.n_db == 1_000
    n_pairs = sum(len(set(e.tolist()) | set(h.tolist())) for e, h in zip(g.easy, g.hard,
                                                                          strict=True))
    assert n_pairs == man["n_pairs"] and 250 <= n_pairs <= 350
    assert sum(1 for e in g.easy if e.size == 0) >= 1  # queries without easy positives
    # labels: one labelme file per easy/hard pair, with sizes and 6-30 vertex polygons
    mapping = load_npy(o.pair_labels, what="pair labels")
    assert len(mapping) == n_pairs
    doc = json.loads((prb / mapping[next(iter(mapping))]).read_text())
    assert doc["imageWidth"] > 0 and doc["imageHeight"] > 0
    assert all(6 <= len(s["points"]) <= 30 for s in doc["shapes"])

    # the R1M ranks: (n_db + 2,000) x 70 int32, every column a permutation of the rows
    r = np.load(o1.methods["withr1m"].ranks, mmap_mode="r")
    assert r.shape == (1_000 + 2_000, 70) and r.dtype == np.int32
    for q in (0, 41, 69):
        assert np.array_equal(np.sort(np.asarray(r[:, q])), np.arange(r.shape[0]))
    # the distractor list, read independently
    lines = _plain_lines(o1.distractors)
    assert len(lines) == 3_001 and len(o1.distractor_list()) == 3_001
    assert o1.distractor_list()[2_999] == lines[2_999]
    # images: queries, the first 4 database images, distractors in the top 20 of query 0
    assert all((o.images / f"{n}.jpg").is_file() for n in g.qimlist)
    assert all((o.images / f"{n}.jpg").is_file() for n in g.imlist[:4])
    top = sorted({int(i) for i in np.asarray(r[:20, :5]).ravel() if i >= g.n_db})
    assert top, "expected distractors among the top 20 of the first five queries"
    for i in top:
        name, path = database_image(o1, g.imlist, i)
        assert name == lines[i - g.n_db] and path.is_file()


def test_make_realsize_quick_evaluates(quick):
    out, _ = quick
    found = {d.name: d for d in discover(out)}
    o1 = found["roxford5k+R1M"]
    m = o1.methods["withr1m"]
    r = _run_cli("pixel", "--gnd", str(o1.gnd), "--labels-root", str(o1.labels_root),
                 "--pair-labels", str(o1.pair_labels), "--matches", str(m.matches),
                 "--ranks", str(m.ranks), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert 0 < d["medium"]["mAP"] < 1 and 0 < d["medium"]["mIoU"]["seg"] < 1
    for meth in ("plain", "withr1m"):
        mf = found["roxford5k"].methods[meth]
        r = _run_cli("revisited", "--gnd", str(o1.gnd), "--ranks", str(mf.ranks), "--json")
        assert r.returncode == 0, r.stderr


def test_make_realsize_is_deterministic_and_atomic(tmp_path):
    out, other = tmp_path / "rs1", tmp_path / "rs2"
    for d in (out, other):
        r = _make_quick(d)
        assert r.returncode == 0, r.stderr
    for rel in ("pixel_retrieval_benchmarks/revisitop/data/roxford5k/gnd_roxford5k.pkl",
                "pixel_retrieval_benchmarks/oxford_pair2labelpath.npy",
                "pixel_retrieval_benchmarks/revisitop/data/revisitop1m.txt",
                "results/image-level/withr1m/R1Moxford.npy",
                "results/pixel-level/plain/matching_result/proxford.npy"):
        assert _digest(out / rel) == _digest(other / rel), rel
    # same parameters: found, not rebuilt
    r = _make_quick(other)
    assert json.loads(r.stdout)["built"] is False
    # a folder it did not make is never replaced
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    r = _make_quick(foreign)
    assert r.returncode == 2 and "not written by this script" in r.stderr
    assert (foreign / "keep.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["foreign", "rs1", "rs2"]  # no temporary left
