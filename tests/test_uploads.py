"""Methods from uploaded result files (``bench.uploads`` and the app's upload panel).

A good file becomes a method that discovery, the command line and the app's method lists
see at once; a malformed or hostile file is refused with the reader's own message (the
one the command line prints for the same bytes) and leaves every folder exactly as it
was: each test snapshots the tree (paths, sizes, mtimes, contents) before and after.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import uploads
from bench.errors import BenchError
from bench.formats.pixel import load_matches
from bench.formats.revisited import load_gnd, load_ranks
from bench.metrics.revisited import evaluate_revisited, scan_ranks
from bench.workspace import DatasetFiles, discover
from tests.test_app import small_demo as small_demo  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]
A = "local-sp"


def npy_bytes(arr, *, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def tree(folder: Path) -> dict[str, tuple]:
    """Everything below *folder* (hidden files too): kind, size, mtime and content hash;
    ``{}`` when the folder does not exist."""
    out = {}
    if not folder.exists():
        return out
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir", st.st_mtime_ns)
        else:
            out[rel] = ("file", st.st_size, st.st_mtime_ns,
                        hashlib.sha256(p.read_bytes()).hexdigest())
    return out


class Evil:
    """Unpickling this runs a shell command (it must never be unpickled)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_matches(marker: Path) -> bytes:
    return npy_bytes(np.array({"qimlist_0_imlist_1": Evil(marker)}, dtype=object),
                     allow_pickle=True)


def reader_error(tmp_path: Path, data: bytes, read) -> BenchError:
    """The error the command line's reader gives for the same bytes in a file."""
    f = tmp_path / "same_bytes.npy"
    f.write_bytes(data)
    with pytest.raises(BenchError) as e:
        read(f)
    f.unlink()
    return e.value


@pytest.fixture
def demo_copy(small_demo, tmp_path):  # noqa: F811
    root = tmp_path / "bench"
    shutil.copytree(small_demo.root, root)
    return root


@pytest.fixture
def ds(demo_copy) -> DatasetFiles:
    return discover(demo_copy)[0]


def other_ranks(demo_copy: Path) -> np.ndarray:
    """A valid ranking unlike both methods': local-sp's with each column's order reversed."""
    r = np.load(demo_copy / "results" / "image-level" / A / "rdemo.npy")
    return np.ascontiguousarray(r[::-1])


# ---------------------------------------------------------------- bench.uploads

@pytest.mark.parametrize("name", ["a", "my-method", "v1.2_final", "X" * 64, "0abc"])
def test_good_names(name):
    assert uploads.check_name(f" {name} ") == name


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "-x", "a/b", "a b", "X" * 65,
                                  "é", "../../etc", "a\x00b"])
def test_bad_names(name):
    with pytest.raises(BenchError) as e:
        uploads.check_name(name)
    assert e.value.what == "bad method name"


def test_good_files_are_stored_where_discovery_and_the_cli_find_them(demo_copy, ds):
    ranks = other_ranks(demo_copy)
    matches = (demo_copy / "results/pixel-level/global-hist/matching_result/prdemo.npy"
               ).read_bytes()
    rr = uploads.results_root_for(demo_copy, ds)
    assert rr == demo_copy / "results"
    stored = uploads.store_method("mine", ds, rr, ranks=("r.npy", npy_bytes(ranks)),
                                  matches=("m.npy", io.BytesIO(matches)))
    assert stored.files == {"ranks": rr / "image-level/mine/rdemo.npy",
                            "matches": rr / "pixel-level/mine/matching_result/prdemo.npy"}
    assert not stored.replaced
    found = discover(demo_copy)[0].methods["mine"]
    assert found.ranks == stored.files["ranks"] and found.matches == stored.files["matches"]
    assert np.array_equal(np.load(found.ranks), ranks)
    assert found.matches.read_bytes() == matches
    assert not list(rr.rglob(".upload-*"))  # no temporary file left
    # the command line reads it like any other method
    out = subprocess.run([sys.executable, "-m", "bench", "compare", str(demo_copy),
                          "--dataset", "rdemo", "--methods", "mine", A, "--json",
                          "--permutations", "200"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    g = load_gnd(ds.gnd)
    rev = evaluate_revisited(scan_ranks(ranks, g), g)
    assert got["metrics"]["mAP/medium"]["mine"] == pytest.approx(rev["medium"].mAP, abs=1e-12)


def test_hostile_pickle_is_refused_with_the_readers_message(demo_copy, ds, tmp_path):
    marker = tmp_path / "owned"
    data = evil_matches(marker)
    before = tree(demo_copy)
    with pytest.raises(BenchError) as e:
        uploads.store_method("evil", ds, demo_copy / "results", matches=("evil.npy", data))
    want = reader_error(tmp_path, data, lambda f: load_matches(f, n_queries=4, n_db=30))
    assert (e.value.what, e.value.why) == (want.what, want.why)
    assert e.value.file == "evil.npy" and "refused" in e.value.what
    assert tree(demo_copy) == before
    assert not marker.exists()


@pytest.mark.parametrize("arr, what", [
    (np.zeros((3, 7), dtype=np.int64), "wrong array shape"),
    (np.zeros((30, 4), dtype=np.float32), "wrong ranks dtype"),
    (np.full((30, 4), 999, dtype=np.int64), None),  # index out of range (scan_ranks)
    (np.zeros((30, 4), dtype=np.int64), None),  # an index listed twice
])
def test_bad_ranks_are_refused_and_nothing_is_written(demo_copy, ds, tmp_path, arr, what):
    data = npy_bytes(arr)
    before = tree(demo_copy)
    with pytest.raises(BenchError) as e:
        uploads.store_method("bad", ds, demo_copy / "results", ranks=("bad.npy", data))
    g = load_gnd(ds.gnd)
    want = reader_error(tmp_path, data, lambda f: scan_ranks(load_ranks(f, g), g, path=f))
    assert (e.value.what, e.value.why.replace("bad.npy", "F")) == (
        want.what, want.why.replace(str(tmp_path / "same_bytes.npy"), "F"))
    if what:
        assert e.value.what == what
    assert tree(demo_copy) == before


@pytest.mark.parametrize("data", [b"", b"not a numpy file at all", npy_bytes(np.arange(
    120).reshape(30, 4))[:-50]])
def test_unreadable_bytes_are_refused(demo_copy, ds, data):
    before = tree(demo_copy)
    with pytest.raises(BenchError) as e:
        uploads.store_method("bad", ds, demo_copy / "results", ranks=("x.npy", data))
    assert "unreadable" in e.value.what and e.value.file == "x.npy"
    assert tree(demo_copy) == before


def test_a_bad_second_file_stores_neither(demo_copy, ds, tmp_path):
    before = tree(demo_copy)
    with pytest.raises(BenchError):
        uploads.store_method("half", ds, demo_copy / "results",
                             ranks=("good.npy", npy_bytes(other_ranks(demo_copy))),
                             matches=("evil.npy", evil_matches(tmp_path / "owned")))
    assert tree(demo_copy) == before
    assert "half" not in discover(demo_copy)[0].methods


def test_size_cap(demo_copy, ds, monkeypatch):
    data = npy_bytes(other_ranks(demo_copy))
    before = tree(demo_copy)
    with pytest.raises(BenchError) as e:
        uploads.store_method("big", ds, demo_copy / "results", ranks=("big.npy", data),
                             max_bytes=len(data) - 1)
    assert e.value.what == "upload too large"
    with pytest.raises(BenchError):  # a stream of unknown size is cut while written
        uploads.store_method("big", ds, demo_copy / "results",
                             ranks=("big.npy", io.BufferedReader(io.BytesIO(data))),
                             max_bytes=len(data) - 1)
    monkeypatch.setenv(uploads.ENV_MAX_MB, "0.0001")
    with pytest.raises(BenchError) as e:
        uploads.store_method("big", ds, demo_copy / "results", ranks=("big.npy", data))
    assert uploads.ENV_MAX_MB in e.value.why
    assert tree(demo_copy) == before
    monkeypatch.setenv(uploads.ENV_MAX_MB, "lots")
    with pytest.raises(BenchError):
        uploads.max_upload_bytes()


def test_existing_names_replace_and_protected(demo_copy, ds):
    rr = demo_copy / "results"
    first = npy_bytes(other_ranks(demo_copy))
    with pytest.raises(BenchError) as e:  # a method of the folder
        uploads.store_method(A, ds, rr, ranks=("r.npy", first))
    assert "already exists" in e.value.why
    uploads.store_method("mine", ds, rr, ranks=("r.npy", first))
    ds2 = discover(demo_copy)[0]
    second = npy_bytes(np.load(ds2.methods[A].ranks))
    with pytest.raises(BenchError):
        uploads.store_method("mine", ds2, rr, ranks=("r.npy", second))
    # a file already at the target counts as taken even when `existing` omits it
    with pytest.raises(BenchError):
        uploads.store_method("mine", ds2, rr, ranks=("r.npy", second), existing=())
    assert (rr / "image-level/mine/rdemo.npy").read_bytes() == first
    stored = uploads.store_method("mine", ds2, rr, ranks=("r.npy", second), replace=True)
    assert stored.replaced == [rr / "image-level/mine/rdemo.npy"]
    assert (rr / "image-level/mine/rdemo.npy").read_bytes() == second
    with pytest.raises(BenchError) as e:
        uploads.store_method("mine", ds2, rr, ranks=("r.npy", second), replace=True,
                             protected={"mine"})
    assert "do not replace" in e.value.why


def test_results_root_of_other_layouts(small_demo, tmp_path):  # noqa: F811
    ranks = npy_bytes(other_ranks(small_demo.root))
    # (1) no results folder yet: <root>/results
    bare = tmp_path / "bare"
    shutil.copytree(small_demo.root / "pixel_retrieval_benchmarks",
                    bare / "pixel_retrieval_benchmarks")
    ds = discover(bare)[0]
    assert not ds.methods
    rr = uploads.results_root_for(bare, ds)
    assert rr == bare / "results"
    uploads.store_method("m1", ds, rr, ranks=("r.npy", ranks))
    assert discover(bare)[0].methods["m1"].ranks == rr / "image-level/m1/rdemo.npy"
    # (2) pointed at pixel_retrieval_benchmarks/: results beside it
    prb = bare / "pixel_retrieval_benchmarks"
    ds = discover(prb)[0]
    assert uploads.results_root_for(prb, ds) == bare / "results"
    # (3) the root is the results folder itself (image-level/ directly below it)
    flat = tmp_path / "flat"
    shutil.copytree(small_demo.root / "pixel_retrieval_benchmarks",
                    flat / "pixel_retrieval_benchmarks")
    shutil.copytree(small_demo.root / "results" / "image-level", flat / "image-level")
    ds = discover(flat)[0]
    ds = DatasetFiles(**{**ds.__dict__, "methods": {}})  # as if it had no method yet
    rr = uploads.results_root_for(flat, ds)
    assert rr == flat
    uploads.store_method("m2", ds, rr, ranks=("r.npy", ranks))
    assert discover(flat)[0].methods["m2"].ranks == flat / "image-level/m2/rdemo.npy"


def test_r1m_names():
    ds = DatasetFiles(name="roxford5k+R1M", short="oxford", gnd=Path("g.pkl"), variant="R1M")
    assert uploads.target_path(Path("R"), ds, "m", "ranks") == Path(
        "R/image-level/m/R1Moxford.npy")
    assert uploads.target_path(Path("R"), ds, "m", "matches") == Path(
        "R/pixel-level/m/matching_result/pR1Moxford.npy")
    ds = DatasetFiles(name="roxford5k", short="oxford", gnd=Path("g.pkl"))
    assert uploads.target_path(Path("R"), ds, "m", "ranks").name == "roxford.npy"
    assert uploads.target_path(Path("R"), ds, "m", "matches").name == "proxford.npy"


def test_demo_uploads_are_merged_and_linked_for_the_cli(small_demo, tmp_path):  # noqa: F811
    up = tmp_path / "uploads"
    base = discover(small_demo.root)
    ds = base[0]
    rr = uploads.demo_results_root(up)
    assert uploads.discover_with_uploads(small_demo.root, rr)[0].methods == ds.methods
    uploads.store_method("mine", ds, rr, ranks=("r.npy", npy_bytes(other_ranks(
        small_demo.root))), protected=set(ds.methods))
    merged = uploads.discover_with_uploads(small_demo.root, rr)[0]
    assert list(merged.methods) == [*ds.methods, "mine"]
    assert merged.methods["mine"].ranks == rr / "image-level/mine/rdemo.npy"
    assert merged.gnd == ds.gnd  # the demo's own ground truth
    uploads.link_benchmark(up, small_demo.root)
    out = subprocess.run([sys.executable, "-m", "bench", "discover", str(up), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)["datasets"]["rdemo"]["methods"]
    assert got == {"mine": {"ranks": str(rr / "image-level/mine/rdemo.npy"), "matches": None}}


# ---------------------------------------------------------------- the app's upload panel

streamlit = pytest.importorskip("streamlit")

from tests.test_app import app, ok, page, text_of  # noqa: E402


@pytest.fixture
def app_env(small_demo, tmp_path_factory, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("BENCH_DEMO_DIR", str(small_demo.root))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "app_cache"))
    monkeypatch.setenv("BENCH_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))
    up = tmp_path / "uploads"
    monkeypatch.setenv("BENCH_UPLOAD_DIR", str(up))
    return up


def upload(at, name: str, *, ranks: bytes | None = None, matches: bytes | None = None,
           replace: bool = False):
    ups = at.file_uploader
    assert len(ups) == 2
    if ranks is not None:
        ups[0].set_value(("ranks.npy", ranks, "application/octet-stream"))
    if matches is not None:
        ups[1].set_value(("matches.npy", matches, "application/octet-stream"))
    at.text_input(key="up_name").input(name)
    if replace:
        at.checkbox(key="up_replace").check()
    return ok(at.button(key="up_add").click().run())


def test_an_uploaded_file_becomes_a_method_at_once(app_env, small_demo):  # noqa: F811
    up = app_env
    at = page(app(m=A), "compare")
    assert "mine" not in at.selectbox(key="w_m").options
    data = npy_bytes(other_ranks(small_demo.root))
    at = upload(at, "mine", ranks=data)
    assert "Added method **mine**" in text_of(at)
    # in the sidebar's list and compared at once (B), no restart
    assert "mine" in at.selectbox(key="w_m").options
    assert at.selectbox(key="w_m2_cmp").value == "mine"
    target = up / "results" / "image-level" / "mine" / "rdemo.npy"
    assert target.read_bytes() == data
    g = load_gnd(small_demo.gnd)
    rev = evaluate_revisited(scan_ranks(np.load(target), g), g)
    shown = {m.label: m.value for m in at.metric}
    rev_a = evaluate_revisited(scan_ranks(load_ranks(small_demo.methods[A]["ranks"], g), g), g)
    d = rev_a["medium"].ap - rev["medium"].ap
    assert shown["Mean Δ (A − B)"] == f"{100 * np.nanmean(d):+.2f}"
    # the command line sees it (the uploads folder links the demo's benchmark)
    out = subprocess.run([sys.executable, "-m", "bench", "discover", str(up), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "mine" in json.loads(out.stdout)["datasets"]["rdemo"]["methods"]
    # a new session after the caches are gone (a restart) still lists it
    streamlit.cache_data.clear()
    streamlit.cache_resource.clear()
    fresh = page(app(), "compare")
    assert "mine" in fresh.selectbox(key="w_m").options
    # the same name again: refused unless "replace" is ticked; the demo's own never
    at = upload(at, "mine", ranks=data)
    assert "already exists" in text_of(at)
    at = upload(at, A, ranks=data, replace=True)
    assert "do not replace" in text_of(at)
    assert target.read_bytes() == data


def test_a_hostile_upload_is_refused_and_nothing_is_stored(app_env, tmp_path):
    up = app_env
    marker = tmp_path / "owned"
    at = page(app(m=A), "compare")
    before = tree(tmp_path)
    data = evil_matches(marker)
    at = upload(at, "evil", matches=data)
    assert tree(tmp_path) == before and not up.exists() and not marker.exists()
    want = reader_error(tmp_path, data, lambda f: load_matches(f))
    shown = "\n".join(e.value for e in at.error)
    assert f"{want.what} in matches.npy: {want.why}" in shown
    assert "Nothing was stored." in text_of(at)
    assert "evil" not in at.selectbox(key="w_m").options


def test_a_wrong_shape_upload_into_a_folder_source(app_env, demo_copy, tmp_path):
    at = page(app(src="folder", root=demo_copy, m=A), "compare")
    before = tree(demo_copy)
    data = npy_bytes(np.zeros((3, 7), dtype=np.int64))
    at = upload(at, "wrong", ranks=data)
    g = load_gnd(next(demo_copy.rglob("gnd_rdemo.pkl")))
    want = reader_error(tmp_path, data, lambda f: load_ranks(f, g))
    assert f"{want.what} in ranks.npy: {want.why}" in "\n".join(e.value for e in at.error)
    assert tree(demo_copy) == before
    assert "wrong" not in at.selectbox(key="w_m").options
    # and a good one lands in the folder's own results/
    at = upload(at, "right", ranks=npy_bytes(other_ranks(demo_copy)))
    assert (demo_copy / "results/image-level/right/rdemo.npy").is_file()
    assert "right" in at.selectbox(key="w_m").options

