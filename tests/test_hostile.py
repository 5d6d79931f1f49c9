"""Hostile files (issue 7, engine side): nothing a file holds crashes the CLI, exhausts
memory, blocks, or reads outside the data.

Every payload is built here, by the test. Each CLI run is a subprocess with a 1.5 GB
address-space cap (``resource.setrlimit`` in ``preexec_fn``) and a 60 s time-out, so a
regression fails (MemoryError, time-out) instead of taking the machine down. Expected
outcome: exit 2 with a last stderr line ``error: <what> in <file>: <why>`` naming the
file, or exit 0 with a warning naming the pair (and the file).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import thumbs
from bench.errors import BenchError
from bench.formats import safe_pickle
from tests import fixtures

resource = pytest.importorskip("resource")  # POSIX only (memory cap)

ROOT = Path(__file__).resolve().parents[1]
MEMORY_CAP = 1536 << 20  # bytes of address space for each CLI run
HAS_FIFO = hasattr(os, "mkfifo")

# numpy's reconstructor, reached through the public pickling protocol of an array
RECONSTRUCT = np.arange(1).__reduce__()[0]


def _cap_memory() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_bench(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, preexec_fn=_cap_memory,
                          env=full_env)


def info(proc) -> str:
    return f"\nexit {proc.returncode}\nargs: {proc.args}\nstderr:\n{proc.stderr[-3000:]}"


def assert_error(proc, path, why: str = "", what: str = "") -> str:
    """Exit 2, no traceback, last stderr line ``error: <what> in <path>: <why>``."""
    assert proc.returncode == 2, info(proc)
    assert "Traceback" not in proc.stderr, info(proc)
    for sign in ("out of memory", "MemoryError"):
        assert sign not in proc.stderr, f"reached the memory cap{info(proc)}"
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), info(proc)
    sep = f" in {path}: "
    assert sep in last, f"the error line does not name {path}{info(proc)}"
    w, y = last[len("error: "):].split(sep, 1)
    if what:
        assert re.search(what, w, re.I), f"<what> {w!r} !~ /{what}/{info(proc)}"
    if why:
        assert re.search(why, y, re.I), f"<why> {y!r} !~ /{why}/{info(proc)}"
    return y


def assert_pair_warning(proc, pair: str, file, why: str = "") -> dict:
    """Exit 0, valid JSON, a warning (JSON and stderr) naming *pair* and *file*."""
    assert proc.returncode == 0, info(proc)
    assert "Traceback" not in proc.stderr, info(proc)
    out = json.loads(proc.stdout)
    hits = [w for w in out["warnings"] if f"pair {pair} " in w and str(file) in w]
    assert hits, f"no warning names pair {pair} and {file}: {out['warnings']}{info(proc)}"
    if why:
        assert any(re.search(why, w, re.I) for w in hits), f"{hits} !~ /{why}/"
    assert any(f"pair {pair} " in ln and str(file) in ln for ln in proc.stderr.splitlines()
               if ln.startswith("warning")), info(proc)
    return out


# --------------------------------------------------------------------- building payloads


class Call:
    """Pickles as ``func(*args)`` (then ``BUILD state`` when given)."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        if self.state is None:
            return self.func, self.args
        return self.func, self.args, self.state


def op_str(s: str) -> bytes:  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def nested_imlist_gnd(depth: int) -> bytes:
    """A protocol-2 gnd pickle whose imlist is a list nested *depth* deep."""
    nest = b"]" * depth + b"a" * (depth - 1)  # EMPTY_LIST x depth, APPEND x depth-1
    return (b"\x80\x02}(" + op_str("imlist") + nest + op_str("qimlist") + b"]"
            + op_str("gnd") + b"]" + b"u.")


def structured_object_array() -> Call:
    """Point 1: a structured dtype with an object field, made through dtype BUILD, and an
    array of it from 16 raw bytes: 8 bytes of the file become an object pointer."""
    fields = {"p": (np.dtype("O"), 0), "f": (np.dtype("f8"), 8)}
    # flags 0: numpy is told the dtype holds no objects, so it takes raw bytes
    dt = Call(np.dtype, ("V16", False, True), (3, "|", None, ("p", "f"), fields, 16, 1, 0))
    return Call(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (1,), dt, False, b"A" * 16))


PAYLOADS = {
    # point 1
    "structured-object-dtype": (lambda: pickle.dumps(structured_object_array(), protocol=2),
                                r"dtype"),
    "structured-dtype-in-a-gnd": (lambda: pickle.dumps(
        {"imlist": ["a"], "qimlist": [], "gnd": [], "x": np.dtype([("p", "O")])}, protocol=2),
        r"dtype"),
    "void-array": (lambda: pickle.dumps(np.zeros(2, dtype="V8"), protocol=2), r"dtype"),
    "datetime-array": (lambda: pickle.dumps(np.zeros(2, dtype="M8[s]"), protocol=3), r"dtype"),
    # point 2
    "list-range": (lambda: pickle.dumps(Call(list, (range(150_000_000),)), protocol=2),
                   r"refused to load .*range"),
    "list-bytes": (lambda: pickle.dumps(Call(list, (Call(bytes, (3_000_000_000,)),)),
                                        protocol=2), r"bytes\(\)"),
    "bytearray-int": (lambda: pickle.dumps(Call(bytearray, (3_000_000_000,)), protocol=2),
                      r"bytes\(\)"),
    "reconstruct-uninitialised": (
        lambda: pickle.dumps(Call(RECONSTRUCT, (np.ndarray, (1_500_000_000,), b"b")),
                             protocol=2), r"array without state"),
    "reconstruct-state-too-short": (
        lambda: pickle.dumps(Call(RECONSTRUCT, (np.ndarray, (0,), b"b"),
                                  (1, (1_500_000_000,), np.dtype("u1"), False, b"x")),
                             protocol=2), r"bytes"),
    "memo-index-bomb": (lambda: b"\x80\x02]r\xff\xff\xff\x7f.", r"memo index"),
    "self-cycle": (lambda: pickle.dumps(_cyclic(), protocol=2), r"cycle"),
    # point 6
    "codec-unknown": (lambda: pickle.dumps(Call(_codecs_encode(), ("x", "no-such-codec")),
                                           protocol=2), r"encoding"),
    "codec-zlib": (lambda: pickle.dumps(Call(_codecs_encode(), (b"x" * 10, "zlib_codec")),
                                        protocol=2), r"encoding"),
    "bytes-hex": (lambda: pickle.dumps(Call(bytes, ("x", "hex")), protocol=2), r"encoding"),
    "imlist-200000-deep": (lambda: nested_imlist_gnd(200_000), r"nested|deep"),
    "int-of-5000-digits": (lambda: b"\x80\x02cbuiltins\nint\n" + op_str("9" * 5000)
                           + b"\x85R.", r"int\(\)"),
    "long-text-5000-digits": (lambda: b"L" + b"9" * 5000 + b"L\n.", r"digits|int|limit"),
    "persistent-id": (lambda: b"\x80\x02X\x01\x00\x00\x00aQ.", r"persistent"),
}


def _codecs_encode():
    import codecs

    return codecs.encode


def _cyclic():
    a: list = []
    a.append(a)
    return {"imlist": a, "qimlist": [], "gnd": []}


def test_payloads_are_live(tmp_path):
    """Self-check: under a plain unpickler the payloads do what the issue says."""
    # point 1: numpy builds an object field from raw bytes (touching it would crash:
    # the child leaves with os._exit before the array is freed)
    data = PAYLOADS["structured-object-dtype"][0]()
    code = ("import pickle, sys, os; a = pickle.loads(sys.stdin.buffer.read()); "
            "print(a.dtype.fields['p'][0].kind, a.dtype.hasobject); sys.stdout.flush(); "
            "os._exit(0)")
    proc = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True,
                          timeout=60, preexec_fn=_cap_memory)
    # an object field that numpy was told holds no objects: raw bytes become pointers
    assert proc.stdout.decode().strip() == "O False", proc.stderr
    # point 2: the range bomb is a real list(range(...)) call (checked on a small range)
    small = pickle.dumps(Call(list, (range(5),)), protocol=2)
    assert pickle.loads(small) == [0, 1, 2, 3, 4]
    assert b"range" in PAYLOADS["list-range"][0]() and len(PAYLOADS["list-range"][0]()) < 80
    # the deep imlist really is nested 200,000 deep
    obj = pickle.loads(PAYLOADS["imlist-200000-deep"][0]())
    depth, x = 0, obj["imlist"]
    while isinstance(x, list) and x:
        depth, x = depth + 1, x[0]
    assert depth == 200_000 - 1
    # the codec payload reaches the named codec
    with pytest.raises(LookupError):
        pickle.loads(PAYLOADS["codec-unknown"][0]())


# --------------------------------------------------------------------- shared inputs

N_Q, N_DB = 2, 6
SQUARE = [[10.0, 10.0], [40.0, 10.0], [40.0, 40.0], [10.0, 40.0]]
PIX_GND = [
    {"easy": [1], "hard": [2, 3], "junk": [4], "bbx": [0, 0, 10, 10]},
    {"easy": [0, 5], "hard": [3], "junk": [], "bbx": [0, 0, 10, 10]},
]
PAIRS = {f"{q}_{i}" for q, g in enumerate(PIX_GND) for i in g["easy"] + g["hard"]}


def write_pixel_base(root: Path) -> dict[str, Path]:
    imlist, qimlist = fixtures.names("db", N_DB), fixtures.names("query", N_Q)
    gt, matches = {}, {}
    for q, g in enumerate(PIX_GND):
        for i in g["easy"] + g["hard"]:
            gt[(q, i)] = [np.array(SQUARE)]
            matches[fixtures.match_key(q, i)] = fixtures.box_corners(12, 11, 38 + q, 39)
    ranks = np.array([np.roll(np.arange(N_DB), k) for k in range(N_Q)]).T
    return fixtures.write_released_layout(
        root, dataset="oxford", method="m", imlist=imlist, qimlist=qimlist, gnd=PIX_GND,
        ranks=ranks, gt=gt, db_sizes=[(64, 64)] * N_DB, matches=matches)


def pixel_argv(p: dict[str, Path], **override) -> list:
    a = {"--gnd": p["gnd_path"], "--labels-root": p["labels_root"],
         "--pair-labels": p["pair_labels_path"], "--matches": p["matches_path"]}
    a.update(override)
    return ["pixel", *[x for kv in a.items() for x in kv], "--json"]


def rev_gnd(tmp_path: Path, data: bytes) -> tuple[list, Path]:
    gnd = tmp_path / "gnd_roxford5k.pkl"
    gnd.write_bytes(data)
    ranks = fixtures.write_ranks(tmp_path / "ranks.npy", np.arange(3).reshape(3, 1))
    return ["revisited", "--gnd", gnd, "--ranks", ranks], gnd


def set_pair_label(p: dict[str, Path], pair: str, value) -> None:
    m = dict(np.load(p["pair_labels_path"], allow_pickle=True).item())  # our own file
    m[pair] = value
    fixtures.write_pair2labelpath(p["pair_labels_path"], m)


# --------------------------------------------------------------------- pickle payloads


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_payload_as_gnd(tmp_path, name):
    make, why = PAYLOADS[name]
    argv, gnd = rev_gnd(tmp_path, make())
    assert_error(run_bench(*argv), gnd, why)


@pytest.mark.parametrize("name", ["structured-object-dtype", "list-range", "list-bytes",
                                  "reconstruct-uninitialised", "codec-unknown", "bytes-hex"])
def test_payload_inside_an_object_npy(tmp_path, name):
    """The same payloads as a value of an np.save'd matches dict (object .npy)."""
    p = write_pixel_base(tmp_path)
    inner = {"structured-object-dtype": structured_object_array(),
             "list-range": Call(list, (range(150_000_000),)),
             "list-bytes": Call(list, (Call(bytes, (3_000_000_000,)),)),
             "reconstruct-uninitialised": Call(RECONSTRUCT, (np.ndarray, (1_500_000_000,), b"b")),
             "codec-unknown": Call(_codecs_encode(), ("x", "no-such-codec")),
             "bytes-hex": Call(bytes, ("x", "hex"))}[name]
    m = np.load(p["matches_path"], allow_pickle=True).item()  # our own file
    m[fixtures.match_key(0, 1)] = inner
    np.save(p["matches_path"], m, allow_pickle=True)
    assert_error(run_bench(*pixel_argv(p)), p["matches_path"], PAYLOADS[name][1])


def test_gnd_easy_as_a_string(tmp_path):
    gnd = [{"easy": "5", "hard": [], "junk": []}]
    data = pickle.dumps({"imlist": fixtures.names("db", 8), "qimlist": ["q0"], "gnd": gnd})
    argv, path = rev_gnd(tmp_path, data)
    assert_error(run_bench(*argv), path, r"gnd\[0\]\['easy'\].*integer")


@pytest.mark.parametrize("value", [[True], [[1]], [10**5000], [1.5], "0", b"1"],
                         ids=["bool", "nested", "int-5000-digits", "fraction", "str", "bytes"])
def test_gnd_index_not_an_integer(tmp_path, value):
    gnd = [{"easy": value, "hard": [], "junk": []}]
    data = pickle.dumps({"imlist": fixtures.names("db", 8), "qimlist": ["q0"], "gnd": gnd})
    argv, path = rev_gnd(tmp_path, data)
    assert_error(run_bench(*argv), path, r"gnd\[0\]\['easy'\]")


def test_gnd_name_of_5000_digits(tmp_path):
    data = pickle.dumps({"imlist": [10**5000], "qimlist": ["q0"], "gnd": [{}]})
    argv, path = rev_gnd(tmp_path, data)
    assert_error(run_bench(*argv), path, r"imlist\[0\]")


def test_item_cap_and_size_cap(tmp_path):
    data = pickle.dumps({"imlist": fixtures.names("db", 2000), "qimlist": ["q"],
                         "gnd": [{"easy": [0]}]})
    argv, path = rev_gnd(tmp_path, data)
    assert_error(run_bench(*argv, "--max-items", "500"), path, r"--max-items")
    assert_error(run_bench(*argv, env={"BENCH_MAX_ITEMS": "500"}), path, r"BENCH_MAX_ITEMS")
    assert_error(run_bench(*argv, "--max-file-mb", "0.01"), path, r"cap.*--max-file-mb")
    assert_error(run_bench(*argv, env={"BENCH_MAX_FILE_MB": "0.01"}), path, r"BENCH_MAX_FILE_MB")
    proc = run_bench(*argv, "--max-file-mb", "1", "--max-items", "100000", "--json")
    assert proc.returncode == 0, info(proc)  # raised caps: the same file is read


# --------------------------------------------------------------------- .npy versions


def _npy_v(path: Path, arr: np.ndarray, version: tuple[int, int]) -> Path:
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, arr, version=version)
    return path


def test_npy_version_3_is_read(tmp_path):
    p = write_pixel_base(tmp_path)
    ranks = np.load(p["ranks_path"])
    v3 = _npy_v(tmp_path / "v3.npy", ranks, (3, 0))
    assert v3.read_bytes()[6:8] == b"\x03\x00"
    a = run_bench("revisited", "--gnd", p["gnd_path"], "--ranks", p["ranks_path"], "--json")
    b = run_bench("revisited", "--gnd", p["gnd_path"], "--ranks", v3, "--json")
    assert a.returncode == 0 and b.returncode == 0, info(b)
    assert json.loads(a.stdout) == json.loads(b.stdout)


@pytest.mark.parametrize("version", [b"\x04\x00", b"\x01\x05", b"\x00\x00", b"\xff\xff"])
def test_npy_bad_version(tmp_path, version):
    p = write_pixel_base(tmp_path)
    data = bytearray(p["ranks_path"].read_bytes())
    data[6:8] = version
    bad = tmp_path / "bad.npy"
    bad.write_bytes(bytes(data))
    proc = run_bench("revisited", "--gnd", p["gnd_path"], "--ranks", bad)
    assert_error(proc, bad, r"version|not a numpy")


def test_npy_huge_shape_is_truncated(tmp_path):
    """A header promising 4e9 x 4e9 int64 in a 200-byte file: refused before any read."""
    p = write_pixel_base(tmp_path)
    bad = tmp_path / "huge.npy"
    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (4000000000, 4000000000), }"
    header = header.ljust(117) + "\n"
    bad.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
                    + b"\x00" * 64)
    proc = run_bench("revisited", "--gnd", p["gnd_path"], "--ranks", bad)
    assert_error(proc, bad, r"truncated")


def test_npy_structured_numeric_is_refused(tmp_path):
    p = write_pixel_base(tmp_path)
    bad = tmp_path / "s.npy"
    np.save(bad, np.zeros(3, dtype=[("a", "<i8"), ("b", "<f8")]))
    assert_error(run_bench("revisited", "--gnd", p["gnd_path"], "--ranks", bad), bad, r"dtype")


# --------------------------------------------------------------------- label paths


def test_label_paths_outside_the_root(tmp_path):
    """``..``, absolute paths, /dev/zero, a link out to a valid labelme and a FIFO inside
    the root: each pair is skipped with a warning naming it; nothing outside is read."""
    p = write_pixel_base(tmp_path / "bench")
    outside = tmp_path / "outside"
    # a valid label outside the root, that would give the pair IoU 1 with its prediction
    fixtures.write_labelme(outside / "secret.json", [fixtures.box_corners(12, 11, 38, 39)],
                           64, 64)
    root = p["labels_root"]
    (root / "oxford_labels" / "link_out.json").symlink_to(outside / "secret.json")
    (root / "oxford_labels" / "link_dev.json").symlink_to("/dev/zero")
    cases = {
        "0_1": "../../outside/secret.json",
        "0_2": str(outside / "secret.json"),
        "1_0": "oxford_labels/link_out.json",
        "1_5": "oxford_labels/link_dev.json",
    }
    if HAS_FIFO:
        os.mkfifo(root / "oxford_labels" / "fifo.json")
        cases["1_3"] = "oxford_labels/fifo.json"
    for pair, rel in cases.items():
        set_pair_label(p, pair, rel)
    proc = run_bench(*pixel_argv(p))
    for pair, rel in cases.items():
        file = p["pair_labels_path"] if rel != "oxford_labels/fifo.json" else (
            root / "oxford_labels" / "fifo.json")
        out = assert_pair_warning(proc, pair, file, r"outside|FIFO|regular")
        assert pair not in out["pairs"], f"{pair} was scored from a refused label"
    assert set(out["pairs"]) == PAIRS - set(cases)


def test_label_file_caps_and_hostile_json(tmp_path):
    p = write_pixel_base(tmp_path)
    root = p["labels_root"]
    labels = {
        "0_1": ("deep.json", '{"shapes": ' + "[" * 100_000 + "]" * 100_000 + "}",
                r"nested|deep"),
        "0_2": ("digits.json", '{"shapes": [{"points": [[' + "9" * 5000 + ", 1]]}]}",
                r"JSON|digit|limit"),
        "0_3": ("big.json", json.dumps({**fixtures.labelme_document([SQUARE], 64, 64),
                                        "imageData": "A" * (2 << 20)}), r"cap.*--max-file-mb"),
        "1_0": ("latin1.json", b'{"shapes": "\xff\xfe"}', r"UTF-8"),
    }
    for pair, (name, text, _) in labels.items():
        f = root / "oxford_labels" / name
        f.write_bytes(text if isinstance(text, bytes) else text.encode())
        set_pair_label(p, pair, f"oxford_labels/{name}")
    proc = run_bench(*pixel_argv(p), "--max-file-mb", "1")
    for pair, (name, _, why) in labels.items():
        out = assert_pair_warning(proc, pair, root / "oxford_labels" / name, why)
        assert pair not in out["pairs"]
    assert set(out["pairs"]) == PAIRS - set(labels)


@pytest.mark.parametrize("value", [float("inf"), 1e30, -5, True, "64"],
                         ids=["Infinity", "1e30", "negative", "true", "string"])
def test_image_width_not_a_size(tmp_path, value):
    """Strict protocol reads imageWidth: an unusable one is a warning, the size is taken
    as unknown and the pair is still scored."""
    p = write_pixel_base(tmp_path)
    f = p["labels_root"] / "oxford_labels" / "w.json"
    doc = fixtures.labelme_document([SQUARE], 64, 64)
    doc["imageWidth"] = value
    f.write_text(json.dumps(doc))  # Infinity is written as the bare token Infinity
    set_pair_label(p, "0_1", "oxford_labels/w.json")
    proc = run_bench(*pixel_argv(p, **{"--protocol": "strict"}))
    out = assert_pair_warning(proc, "0_1", f, r"imageWidth")
    assert "0_1" in out["pairs"] and 0 <= out["pairs"]["0_1"]["seg"] <= 1


def test_keys_of_5000_digits(tmp_path):
    p = write_pixel_base(tmp_path)
    set_pair_label(p, "9" * 5000 + "_1", "oxford_labels/x.json")
    m = np.load(p["matches_path"], allow_pickle=True).item()
    m["qimlist_" + "9" * 5000 + "_imlist_1"] = np.array(SQUARE)
    m[10**5000] = np.array(SQUARE)
    np.save(p["matches_path"], m, allow_pickle=True)
    proc = run_bench(*pixel_argv(p))
    assert proc.returncode == 0, info(proc)
    out = json.loads(proc.stdout)
    assert set(out["pairs"]) == PAIRS
    assert any(str(p["pair_labels_path"]) in w and "q_i" in w for w in out["warnings"])
    assert any(str(p["matches_path"]) in w and "2 keys" in w for w in out["warnings"])


# --------------------------------------------------------------------- not regular files


@pytest.mark.skipif(not HAS_FIFO, reason="no FIFOs on this system")
@pytest.mark.parametrize("flag", ["--gnd", "--ranks", "--pair-labels", "--matches"])
def test_fifo_as_pixel_input(tmp_path, flag):
    p = write_pixel_base(tmp_path / "b")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    argv = pixel_argv(p, **{flag: fifo})
    if flag == "--ranks":
        argv = ["revisited", "--gnd", p["gnd_path"], "--ranks", fifo]
    assert_error(run_bench(*argv), fifo, r"FIFO")


@pytest.mark.skipif(not HAS_FIFO, reason="no FIFOs on this system")
@pytest.mark.parametrize("flag", ["--embeddings", "--indices", "--order"])
def test_fifo_as_gpr_input(tmp_path, flag):
    images = tmp_path / "images"
    fixtures.write_gpr_images(images, 2, 2, rng=np.random.default_rng(0))
    emb = fixtures.write_embeddings(tmp_path / "e.npy", np.eye(4, dtype=np.float32))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    argv = ["gpr1200", "--images", images]
    argv += ["--embeddings", emb, "--order", fifo] if flag == "--order" else [flag, fifo]
    assert_error(run_bench(*argv), fifo, r"FIFO")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_device_as_gnd(tmp_path):
    ranks = fixtures.write_ranks(tmp_path / "ranks.npy", np.zeros((3, 1), np.int64))
    assert_error(run_bench("revisited", "--gnd", "/dev/zero", "--ranks", ranks), "/dev/zero",
                 r"device")


def test_folder_named_like_an_image(tmp_path):
    images = tmp_path / "images"
    fixtures.write_gpr_images(images, 2, 2, rng=np.random.default_rng(0))
    (images / "0_zz.jpg").mkdir()
    emb = fixtures.write_embeddings(tmp_path / "e.npy",
                                    np.random.default_rng(1).normal(size=(4, 3)))
    proc = run_bench("gpr1200", "--images", images, "--embeddings", emb, "--json")
    assert proc.returncode == 0, info(proc)
    assert json.loads(proc.stdout)["n_images"] == 4


def test_gpr_category_of_5000_digits(tmp_path):
    images = tmp_path / "images"
    fixtures.write_gpr_images(images, 2, 2, rng=np.random.default_rng(0))
    emb = fixtures.write_embeddings(tmp_path / "e.npy", np.eye(4, dtype=np.float32))
    order = tmp_path / "order.txt"
    order.write_text("\n".join(["9" * 5000 + "_a.jpg", "0_b.jpg", "1_c.jpg", "1_d.jpg"]))
    assert_error(run_bench("gpr1200", "--images", images, "--embeddings", emb, "--order",
                           order), order, r"category")


# --------------------------------------------------------------------- in-process units


def test_loader_rebuilds_what_it_admits(tmp_path):
    """Independent check of the stand-ins: values equal what numpy pickled."""
    arrays = {"be": np.arange(5, dtype=">i4"), "u": np.array(["ab", "c"]),
              "s": np.array([b"x", b"yz"]), "f": np.asfortranarray(np.arange(6.).reshape(2, 3)),
              "b": np.array([True, False]), "c": np.array([1 + 2j], dtype=np.complex64)}
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{proto}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=proto))
        got = safe_pickle.load_pickle(path)
        for k, a in arrays.items():
            assert got[k].dtype == a.dtype and got[k].shape == a.shape, (proto, k)
            assert got[k].tolist() == a.tolist(), (proto, k)


def test_depth_limit_allows_ordinary_nesting(tmp_path):
    ok: list = [1]
    for _ in range(50):
        ok = [ok]
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(ok))
    assert safe_pickle.load_pickle(path) == ok
    path.write_bytes(b"\x80\x02" + b"]" * 150 + b"a" * 149 + b".")
    with pytest.raises(BenchError, match="nested"):
        safe_pickle.load_pickle(path)


def test_shared_references_are_linear(tmp_path):
    """A DAG of 60 levels with two references each (2^60 paths) is read in linear time."""
    data = b"\x80\x02]q\x00"  # l0 = []  memo 0
    for k in range(1, 60):
        data += b"](" + b"h" + bytes([k - 1]) + b"h" + bytes([k - 1]) + b"e" + b"q" + bytes([k])
    data += b"."
    path = tmp_path / "dag.pkl"
    path.write_bytes(data)
    got = safe_pickle.load_pickle(path)
    assert got[0] is got[1]


def test_resolve_image_stays_in_the_folder(tmp_path):
    folder = tmp_path / "jpg"
    fixtures.write_tiny_jpeg(folder / "a.jpg")
    fixtures.write_tiny_jpeg(tmp_path / "secret.jpg")
    (folder / "sub").mkdir()
    fixtures.write_tiny_jpeg(folder / "sub" / "b.jpg")
    (folder / "out.jpg").symlink_to(tmp_path / "secret.jpg")
    (folder / "in.jpg").symlink_to(folder / "a.jpg")
    (folder / "dir.jpg").mkdir()
    assert thumbs.resolve_image(folder, "a") == folder / "a.jpg"
    assert thumbs.resolve_image(folder, "sub/b") == folder / "sub" / "b.jpg"
    assert thumbs.resolve_image(folder, "in") == folder / "in.jpg"
    for bad in ["../secret", "../secret.jpg", str(tmp_path / "secret.jpg"),
                str(tmp_path / "secret"), "out", "out.jpg", "sub/../../secret", "dir",
                "a\x00", "", "~/secret"]:
        assert thumbs.resolve_image(folder, bad) is None, bad


@pytest.mark.skipif(not HAS_FIFO, reason="no FIFOs on this system")
def test_images_never_open_a_fifo(tmp_path):
    """A FIFO named like an image is neither resolved nor opened (a child process, so a
    regression times out instead of hanging the test run)."""
    folder = tmp_path / "jpg"
    folder.mkdir()
    os.mkfifo(folder / "f.jpg")
    code = ("import sys; from bench import thumbs; "
            f"print(thumbs.resolve_image({str(folder)!r}, 'f'), "
            f"thumbs.open_image({str(folder / 'f.jpg')!r}), "
            f"thumbs.image_size({str(folder / 'f.jpg')!r}), "
            f"thumbs.file_key({str(folder / 'f.jpg')!r}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, preexec_fn=_cap_memory)
    assert proc.stdout.split() == ["None"] * 4, proc.stderr


# ---------------------------------------------------------------- images bounded by pixels
# (issue 19 item 2; docs/PROTOCOLS.md §8 rule 9). Every decode of bench goes through
# bench.formats.images: the header's size is checked against the caps before any pixel is
# decoded, and a picture wanted small is decoded small (JPEG draft, reduce otherwise).

MB = 1 << 20

# Runs in a child under the address-space cap; prints what each image function gave and
# the growth of the peak resident memory (VmHWM) over the process after its imports.
_IMAGE_CHILD = """
import json, sys
from PIL import Image, JpegImagePlugin, PngImagePlugin  # noqa: F401 (imports, not the request)
from bench import render, thumbs
from bench.errors import BenchError
from bench.formats import images

def hwm():
    with open("/proc/self/status") as fh:
        return int([ln for ln in fh if ln.startswith("VmHWM")][0].split()[1]) * 1024

path, name, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = hwm()
out = {}
def call(key, fn):
    try:
        out[key] = ["ok", repr(fn())]
    except BenchError as exc:
        out[key] = ["error", str(exc), type(exc).__name__]
call("decode", lambda: images.decode(path, target=target).size)
call("probe", lambda: images.probe(path))
call("load_thumbnail", lambda: thumbs.load_thumbnail(path)[1])
call("load_scaled", lambda: thumbs.load_scaled(path, max_side=1600)[0].size)
out["open_image"] = thumbs.open_image(path, max_side=target) is None
out["image_size"] = thumbs.image_size(path)
out["thumbnail"] = list(thumbs.thumbnail(path, name).size)
out["tile_bytes"] = len(thumbs.tile_jpeg(path, name, (200, 0, 0), badge="#1"))
out["growth"] = hwm() - base
out["peak"] = hwm()
print(json.dumps(out))
"""


def run_image_functions(path, target: int = 200, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-c", _IMAGE_CHILD, str(path), Path(path).name,
                           str(target)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          preexec_fn=_cap_memory, env={**os.environ, **(env or {})})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, info(proc)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def image_bombs(tmp_path_factory):
    d = tmp_path_factory.mktemp("image_bombs")
    return {
        # 169 megapixels of RGBA (2.7 GB decoded) in about 657 KB
        "square": fixtures.write_constant_png(d / "square.png", 13000, 13000),
        # 10^8 pixels in one column (grey): the tall case
        "tall": fixtures.write_constant_png(d / "tall.png", 1, 10**8, channels=1),
        # 1 megapixel in one row: under the pixel cap, above the side cap
        "strip": fixtures.write_constant_png(d / "strip.png", 1_000_000, 1, channels=1),
    }


def test_13000_square_png_is_refused_from_its_header(image_bombs):
    path = image_bombs["square"]
    assert 600_000 < path.stat().st_size < 700_000  # the 657 KB file
    out = run_image_functions(path)
    for key in ("decode", "probe", "load_thumbnail", "load_scaled"):
        kind, msg, cls = out[key]
        assert kind == "error" and cls == "ImageTooLarge", out
        assert msg.startswith(f"image too large in {path}: 13,000 x 13,000 px = 169.0 MP"), msg
        assert "--max-pixels" in msg and "BENCH_MAX_PIXELS" in msg
    assert out["open_image"] is True and out["image_size"] is None
    assert out["thumbnail"] == [thumbs.THUMB_PX, thumbs.THUMB_PX]  # the placeholder tile
    assert out["tile_bytes"] > 0
    # the whole request (every function above) costs no pixel buffer
    assert out["peak"] < 300 * MB, out
    assert out["growth"] < 20 * MB, out


def test_placeholder_note_names_the_size(image_bombs):
    path = image_bombs["square"]
    with pytest.raises(BenchError) as e:
        thumbs.load_thumbnail(path)
    note = thumbs.problem_note(e.value)
    assert note == "too large: 13,000 x 13,000 px (cap 40.0 MP)"
    tile = thumbs.thumbnail(path, "square.png")
    assert tile.size == (thumbs.THUMB_PX, thumbs.THUMB_PX)
    colours = tile.getcolors(1 << 16)
    assert colours is not None and len(colours) > 2  # grey tile with text drawn on it


def test_tall_image_is_refused_by_the_pixel_cap_and_by_the_side_cap(image_bombs):
    path = image_bombs["tall"]
    out = run_image_functions(path)
    kind, msg, cls = out["decode"]
    assert cls == "ImageTooLarge" and "1 x 100,000,000 px = 100.0 MP" in msg, msg
    assert out["peak"] < 300 * MB and out["thumbnail"] == [thumbs.THUMB_PX] * 2
    # with the pixel cap raised, the side cap still refuses it, still from the header
    out = run_image_functions(path, env={"BENCH_MAX_PIXELS": "200000000"})
    kind, msg, cls = out["decode"]
    assert cls == "ImageTooLarge" and "a side of 100,000,000 px is above the cap of 30,000" \
        in msg, msg
    assert out["peak"] < 300 * MB, out


def test_side_cap_alone(image_bombs):
    from bench.formats import images

    path = image_bombs["strip"]
    with pytest.raises(images.ImageTooLarge, match=r"1,000,000 x 1 px: a side of 1,000,000 px"):
        images.decode(path, target=200)
    assert images.decode(path, target=200, max_side=2_000_000).size == (200, 1)


def test_pixel_cap_is_settable(tmp_path, monkeypatch):
    from bench.formats import images

    path = fixtures.write_constant_png(tmp_path / "a.png", 300, 200, channels=3)
    assert images.decode(path).size == (300, 200)
    with pytest.raises(images.ImageTooLarge, match="300 x 200 px = 60,000 px, above the cap "
                                                   "of 50,000 px"):
        images.decode(path, max_pixels=50_000)
    monkeypatch.setenv("BENCH_MAX_PIXELS", "50000")
    with pytest.raises(images.ImageTooLarge):
        images.probe(path)
    assert thumbs.image_size(path) is None
    monkeypatch.setenv("BENCH_MAX_PIXELS", "lots")
    with pytest.raises(BenchError, match=r"\$BENCH_MAX_PIXELS: 'lots' must be a positive"):
        images.limits()
    monkeypatch.delenv("BENCH_MAX_PIXELS")
    assert images.limits() == (images.DEFAULT_MAX_PIXELS, images.DEFAULT_MAX_SIDE)


def test_cli_image_caps_are_validated(tmp_path):
    f = fixtures.make_random_revisited(np.random.default_rng(0), tmp_path, 3, 10)
    proc = run_bench("revisited", "--gnd", f.gnd_path, "--ranks", f.ranks_path,
                     "--max-pixels", "0")
    assert_error(proc, "--max-pixels/--max-side", "must be positive")


@pytest.mark.parametrize("channels,side,bound", [(3, 6000, 1.6), (4, 4000, 2.7)],
                         ids=["rgb-36MP", "rgba-16MP"])
def test_reduced_decoding_bounds_memory_below_the_cap(tmp_path, channels, side, bound):
    """An image under the cap but far larger than wanted: decoded once (Pillow keeps RGB
    and RGBA at 4 bytes a pixel), shrunk in its own mode before any colour conversion
    (docs/PROTOCOLS.md §8 rule 9); with alpha, Pillow shrinks a premultiplied copy. The
    worst call (``load_scaled`` to 1600 px: a Lanczos pass without ``reduce``) measured
    1.5x (RGB) and 2.6x (RGBA) the decoded size; converting to RGB first, as before,
    costs about 3.6x for RGBA."""
    path = fixtures.write_constant_png(tmp_path / "big.png", side, side, channels=channels,
                                       level=1)
    decoded = side * side * 4
    out = run_image_functions(path)
    assert out["decode"] == ["ok", "(200, 200)"], out
    assert out["load_thumbnail"] == ["ok", f"({side}, {side})"]
    assert out["load_scaled"] == ["ok", "(1600, 1600)"]
    assert out["growth"] < bound * decoded, (out["growth"] / decoded, out)


def test_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    """``draft``: a 6000 x 4000 JPEG (96 MB decoded: Pillow's RGB is 4 bytes a pixel)
    decoded at 1/8 scale for a thumbnail and at 1/2 for the 1600 px pair view (24 MB,
    the largest call here; measured 44 MB of growth in all)."""
    from PIL import Image

    path = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 4000), (90, 140, 30)).save(path, quality=80)
    out = run_image_functions(path)
    assert out["decode"] == ["ok", "(200, 133)"], out
    assert out["load_scaled"] == ["ok", "(1600, 1067)"], out
    assert out["growth"] < 70 * MB, out  # a full decode alone is 96 MB


def test_formats_outside_the_list_are_not_tried(tmp_path):
    """An EPS file (Pillow's EPS plugin runs Ghostscript) named like a JPEG is refused as
    not an image, before any plugin but the listed formats' sees it."""
    from bench.formats import images

    path = tmp_path / "x.jpg"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(BenchError, match=r"unreadable image in .*x\.jpg: not an image in a "
                                         r"known format \(JPEG, PNG"):
        images.decode(path)
    assert thumbs.open_image(path) is None


def test_truncated_png_is_unreadable_not_a_crash(tmp_path):
    from bench.formats import images

    full = fixtures.write_constant_png(tmp_path / "full.png", 2000, 2000, channels=3)
    cut = tmp_path / "cut.png"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BenchError, match=r"unreadable image in .*cut\.png"):
        images.decode(cut, target=100)
    assert thumbs.thumbnail(cut, "cut.png").size == (thumbs.THUMB_PX, thumbs.THUMB_PX)
