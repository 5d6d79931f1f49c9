"""The one restricted unpickler (bench/formats/safe_pickle.py), issue 2 point 2.

It must rebuild builtin containers and scalars, numpy arrays (numeric and object dtype),
numpy scalars and dtypes, pickled with any protocol, and the real formats written by
tests/fixtures.py; it must refuse every other global (os.system, subprocess.Popen,
builtins.eval, ...) with a BenchError naming the file and the refused class, without
running anything. No other module of the project may unpickle a user's file.
"""

from __future__ import annotations

import ast
import functools
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

import bench.errors as errors
import bench.formats.safe_pickle as safe_pickle
from tests import fixtures

load_pickle = safe_pickle.load_pickle
load_npy = safe_pickle.load_npy
BenchError = errors.BenchError

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = list(range(2, pickle.HIGHEST_PROTOCOL + 1))


class Reduce:
    """Pickles as ``func(*args)``: what a malicious file looks like."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def dump(tmp_path: Path, obj, protocol: int = pickle.HIGHEST_PROTOCOL, name="x.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def global_pickle(module: str, name: str, arg: str, *, stack_global: bool = False) -> bytes:
    """A hand-made pickle calling ``module.name(arg)``; it needs neither to be importable.

    ``stack_global`` uses the protocol 4 STACK_GLOBAL opcode instead of protocol 0 GLOBAL
    (both go through Unpickler.find_class).
    """
    if stack_global:
        def s(text: str) -> bytes:
            b = text.encode()
            return b"\x8c" + bytes([len(b)]) + b  # SHORT_BINUNICODE

        return (b"\x80\x04" + s(module) + s(name) + b"\x93"  # PROTO 4, STACK_GLOBAL
                + s(arg) + b"\x85" + b"R" + b".")  # TUPLE1, REDUCE, STOP
    return f"c{module}\n{name}\n(V{arg}\ntR.".encode()


def same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
                and all(same(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist(),
                                                    strict=True)))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return (type(a) is type(b) and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, float) and a != a:
        return isinstance(b, float) and b != b
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------- admitted


BUILTINS = {
    "dict": {"a": 1, 2: "b", (1, 2): [3]},
    "list": [1, 2.5, "x", None],
    "tuple": (1, (2, 3), ()),
    "str": "héllo",
    "bytes": b"\x00\xffbytes",
    "int": 12345678901234567890,
    "negative_int": -7,
    "float": 1.25,
    "nan": float("nan"),
    "bool": True,
    "none": None,
    "nested": {"gnd": [{"easy": [1, 2], "bbx": [0.5, 1.0, 2.0, 3.5]}], "x": (b"", "", 0)},
}


@pytest.mark.parametrize("protocol", list(range(0, pickle.HIGHEST_PROTOCOL + 1)))
@pytest.mark.parametrize("kind", list(BUILTINS))
def test_admits_builtins(tmp_path, kind, protocol):
    obj = BUILTINS[kind]
    assert same(load_pickle(dump(tmp_path, obj, protocol)), obj)


ARRAYS = {
    "float32": np.arange(6, dtype=np.float32).reshape(2, 3),
    "float64": np.linspace(0, 1, 5),
    "int32": np.arange(-3, 3, dtype=np.int32),
    "int64": np.arange(10, dtype=np.int64).reshape(5, 2),
    "uint8": np.arange(5, dtype=np.uint8),
    "bool": np.array([True, False]),
    "complex": np.array([1 + 2j]),
    "unicode": np.array(["ab", "c"]),
    "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    "empty": np.zeros((0, 2), dtype=np.int64),
    "object_lists": np.array([[1, 2], [3]], dtype=object),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", list(ARRAYS))
def test_admits_numpy_arrays_in_a_pickle(tmp_path, kind, protocol):
    arr = ARRAYS[kind]
    got = load_pickle(dump(tmp_path, {"arr": arr}, protocol))
    assert same(got["arr"], arr)


SCALARS = {
    "float32": np.float32(1.5),
    "float64": np.float64(-2.25),
    "int64": np.int64(7),
    "int32": np.int32(-3),
    "bool_": np.bool_(True),
    "dtype": np.dtype("float32"),
    "dtype_int64": np.dtype(np.int64),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", list(SCALARS))
def test_admits_numpy_scalars_and_dtypes(tmp_path, kind, protocol):
    obj = SCALARS[kind]
    got = load_pickle(dump(tmp_path, [obj], protocol))[0]
    assert type(got) is type(obj) and got == obj


def test_npy_of_a_dict(tmp_path):
    d = {"0_1": "labels/a.json", "qimlist_0_imlist_1": np.array([[1.0, 2.0], [3.0, 4.0]]),
         "s": np.float32(1.5), "i": np.int64(3), "empty": []}
    np.save(tmp_path / "d.npy", d, allow_pickle=True)
    assert same(load_npy(tmp_path / "d.npy"), d)


def test_npy_object_array_of_lists(tmp_path):
    arr = np.empty(3, dtype=object)
    arr[:] = [[1, 2], [3], []]
    np.save(tmp_path / "o.npy", arr, allow_pickle=True)
    got = load_npy(tmp_path / "o.npy")
    assert isinstance(got, np.ndarray) and got.dtype == object
    assert got.tolist() == [[1, 2], [3], []]


@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
def test_npy_numeric(tmp_path, mmap):
    arr = np.arange(12, dtype=np.int32).reshape(4, 3)
    np.save(tmp_path / "n.npy", arr)
    got = load_npy(tmp_path / "n.npy", mmap=mmap)
    assert got.dtype == np.int32 and np.array_equal(got, arr)


def test_real_gnd_pickle(tmp_path):
    rng = np.random.default_rng(1)
    gnd = fixtures.make_random_gnd(rng, 4, 20)
    path = fixtures.write_gnd_pickle(tmp_path / "gnd_roxford5k.pkl", fixtures.names("db", 20),
                                     fixtures.names("q", 4), gnd)
    got = load_pickle(path)
    assert got["imlist"] == fixtures.names("db", 20)
    assert got["qimlist"] == fixtures.names("q", 4)
    assert [g["easy"] for g in got["gnd"]] == [g["easy"] for g in gnd]


def test_real_pixel_files(pixel_benchmark):
    b = pixel_benchmark
    pairs = load_npy(b.pair_labels_path)
    assert isinstance(pairs, dict) and pairs and all(isinstance(v, str) for v in pairs.values())
    matches = load_npy(b.matches_path)
    assert matches.keys() == b.matches.keys()
    for k, v in b.matches.items():
        assert np.array_equal(np.asarray(matches[k]), np.asarray(v))
    assert np.array_equal(load_npy(b.ranks_path), b.ranks)
    gnd = load_pickle(b.gnd_path)
    assert gnd["imlist"] == b.imlist


def test_real_gpr_arrays(tmp_path):
    emb = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    idx = np.arange(36).reshape(6, 6) % 6
    assert np.array_equal(load_npy(fixtures.write_embeddings(tmp_path / "e.npy", emb)), emb)
    assert np.array_equal(load_npy(fixtures.write_indices(tmp_path / "i.npy", idx)), idx)


# --------------------------------------------------------------------- refused


def _refused_payloads(marker: Path) -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """id -> (pickle bytes, accepted spellings of the refused class in the message)."""
    cmd = f"touch {marker}"
    out = {
        "os.system": (pickle.dumps(Reduce(os.system, (cmd,)), protocol=2),
                      ("posix.system", "os.system")),
        "os.system-proto5": (pickle.dumps(Reduce(os.system, (cmd,)), protocol=5),
                             ("posix.system", "os.system")),
        "subprocess.Popen": (pickle.dumps(Reduce(subprocess.Popen, (["touch", str(marker)],))),
                             ("subprocess.Popen",)),
        "builtins.eval": (pickle.dumps(Reduce(eval, (f"open({str(marker)!r}, 'w')",))),
                          ("builtins.eval",)),
        "builtins.exec": (global_pickle("builtins", "exec", f"open({str(marker)!r}, 'w')"),
                          ("builtins.exec",)),
        "builtins.getattr": (pickle.dumps(Reduce(getattr, ("text", "upper"))),
                             ("builtins.getattr",)),
        "builtins.__import__": (global_pickle("builtins", "__import__", "os"),
                                ("builtins.__import__",)),
        "functools.partial": (pickle.dumps(Reduce(functools.partial, (print,))),
                              ("functools.partial",)),
        "numpy.load": (global_pickle("numpy", "load", str(marker)), ("numpy.load",)),
        "numpy.testing.runstring": (
            global_pickle("numpy.testing._private.utils", "runstring",
                          f"open({str(marker)!r}, 'w')"),
            ("numpy.testing._private.utils.runstring",)),
        "numpy.f2py.diagnose.run_command": (
            global_pickle("numpy.f2py.diagnose", "run_command", cmd),
            ("numpy.f2py.diagnose.run_command",)),
        "os.system-stack_global": (global_pickle("os", "system", cmd, stack_global=True),
                                   ("os.system",)),
        "posix.system-global": (global_pickle("posix", "system", cmd), ("posix.system",)),
    }
    return out


REFUSED_IDS = list(_refused_payloads(Path("m")))


def test_payload_is_live(tmp_path):
    """Self-check: the os.system payload really runs under a plain pickle.loads."""
    marker = tmp_path / "plain-pickle-ran"
    pickle.loads(_refused_payloads(marker)["os.system"][0])  # on purpose
    assert marker.exists()


def _check_refused(exc: BenchError, path: Path, names: tuple[str, ...]) -> None:
    assert exc.file == str(path), exc
    assert "refused" in str(exc).lower(), exc
    assert any(n in str(exc) for n in names), f"{exc} does not name any of {names}"


@pytest.mark.parametrize("case", REFUSED_IDS)
def test_refuses_pickle(tmp_path, case):
    marker = tmp_path / "marker"
    data, names = _refused_payloads(marker)[case]
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(BenchError) as info:
        load_pickle(path)
    _check_refused(info.value, path, names)
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("wrap", ["dict", "object_array"])
@pytest.mark.parametrize("case", ["os.system", "subprocess.Popen", "builtins.eval"])
def test_refuses_object_npy(tmp_path, case, wrap):
    marker = tmp_path / "marker"
    target = {"os.system": (os.system, (f"touch {marker}",)),
              "subprocess.Popen": (subprocess.Popen, (["touch", str(marker)],)),
              "builtins.eval": (eval, (f"open({str(marker)!r}, 'w')",))}[case]
    evil = Reduce(*target)
    path = tmp_path / "evil.npy"
    if wrap == "dict":
        np.save(path, {"qimlist_0_imlist_1": evil}, allow_pickle=True)
    else:
        arr = np.empty(2, dtype=object)
        arr[0], arr[1] = [1, 2], evil
        np.save(path, arr, allow_pickle=True)
    assert not marker.exists()
    with pytest.raises(BenchError) as info:
        load_npy(path)
    names = _refused_payloads(marker)[case][1]
    _check_refused(info.value, path, names)
    assert not marker.exists(), "the payload ran"


def test_refused_npy_through_mmap(tmp_path):
    """mmap=True (the ranks reader) must not bypass the restricted unpickler."""
    marker = tmp_path / "marker"
    np.save(tmp_path / "r.npy", np.array([Reduce(os.system, (f"touch {marker}",))],
                                          dtype=object), allow_pickle=True)
    with pytest.raises(BenchError) as info:
        load_npy(tmp_path / "r.npy", mmap=True)
    _check_refused(info.value, tmp_path / "r.npy", ("posix.system", "os.system"))
    assert not marker.exists()


# ------------------------------------------- no other unpickling anywhere in the project


_PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib"}
_NP = {"np", "numpy"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def unsafe_calls(source: str) -> list[str]:
    """Lines that unpickle: pickle.load/loads/Unpickler (also via ``from pickle import``),
    np.load with allow_pickle other than a literal False, pandas.read_pickle, and any
    ``allow_pickle=True`` outside ``np.save``/``np.savez`` (saving is harmless)."""
    tree = ast.parse(source)
    from_pickle = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _PICKLE_MODULES:
            from_pickle |= {a.asname or a.name for a in node.names
                            if a.name in ("load", "loads", "Unpickler")}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("load", "loads", "Unpickler"):
            if _dotted(node.value).split(".")[0] in _PICKLE_MODULES:
                found.append(f"line {node.lineno}: {_dotted(node)}")
        if isinstance(node, ast.Name) and node.id in from_pickle:
            found.append(f"line {node.lineno}: {node.id} (from pickle)")
        if isinstance(node, ast.Attribute) and node.attr == "read_pickle":
            found.append(f"line {node.lineno}: {_dotted(node)}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        for kw in node.keywords:
            if kw.arg != "allow_pickle":
                continue
            literal_false = isinstance(kw.value, ast.Constant) and kw.value.value is False
            is_save = name.split(".")[-1] in ("save", "savez", "savez_compressed")
            if not literal_false and not is_save:
                found.append(f"line {node.lineno}: {name}(allow_pickle=...)")
    return sorted(found, key=lambda h: int(h.split(":")[0].split()[1]))


def test_scanner_finds_unpickling():
    src = ("import pickle\nimport numpy as np\nfrom pickle import loads as L\n"
           "a = pickle.load(f)\nb = np.load(p, allow_pickle=True)\nc = L(b)\n"
           "d = np.load(p, mmap_mode='r', allow_pickle=flag)\n"
           "np.save(p, obj, allow_pickle=True)\ne = np.load(p)\n"
           "f = np.load(p, allow_pickle=False)\n")
    hits = unsafe_calls(src)
    assert [h.split(":")[0] for h in hits] == ["line 4", "line 5", "line 6", "line 7"], hits


def _project_files() -> list[Path]:
    files = sorted((ROOT / "bench").rglob("*.py"))
    if (ROOT / "app.py").is_file():
        files.append(ROOT / "app.py")
    if (ROOT / "pages").is_dir():
        files += sorted((ROOT / "pages").rglob("*.py"))
    allowed = ROOT / "bench" / "formats" / "safe_pickle.py"
    return [f for f in files if f != allowed]


@pytest.mark.parametrize("path", _project_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_other_unpickling(path):
    hits = unsafe_calls(path.read_text(encoding="utf-8"))
    assert not hits, f"{path.relative_to(ROOT)} unpickles outside safe_pickle.py: {hits}"
