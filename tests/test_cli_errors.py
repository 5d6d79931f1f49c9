"""Bad input on the command line (issue 2, point 5).

Every bad input runs ``python -m bench ...`` as a subprocess and must give exit status 2,
no traceback, and a last stderr line ``error: <what> in <file>: <why>`` where <file> is
the offending path. Per-pair problems (a labelme file with fewer than 3 points or a
non-finite coordinate, a prediction of the wrong shape) must not stop the run: the pair
counts as no prediction and a warning naming the pair and the file goes to the JSON
``warnings`` and to stderr.

All subprocesses of a group are started together (module-scoped fixtures) and each case
is then checked by its own parametrized test.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests import fixtures

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


MEMORY_LIMIT_KB = 4 << 20  # 4 GB of address space for each run (see run_bench)


def run_bench(*args) -> subprocess.CompletedProcess:
    """``python -m bench ARGS`` from the project root.

    On POSIX the run gets ``ulimit -v`` (4 GB): an input that makes bench allocate a huge
    canvas then fails inside the child instead of waking the OOM killer on the test
    machine (a shell wrapper, since preexec_fn is unsafe with threads).
    """
    cmd = [sys.executable, "-m", "bench", *map(str, args)]
    if os.name == "posix":
        cmd = ["sh", "-c", f'ulimit -v {MEMORY_LIMIT_KB} && exec "$0" "$@"', *cmd]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def explain(proc: subprocess.CompletedProcess) -> str:
    args = list(map(str, proc.args))
    shown = " ".join(args[args.index("-m") + 2:]) if "-m" in args else " ".join(args)
    return f"\ncommand: python -m bench {shown}\nstderr:\n{proc.stderr}"


def run_all(argvs: dict[str, list]) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=max(2, min(8, (os.cpu_count() or 2) * 2))) as pool:
        futures = {k: pool.submit(run_bench, *argv) for k, argv in argvs.items()}
        return {k: f.result() for k, f in futures.items()}


class Evil:
    """Unpickles as ``os.system(cmd)``."""

    def __init__(self, cmd: str):
        self.cmd = cmd

    def __reduce__(self):
        return os.system, (self.cmd,)


def strict_json(text: str):
    """json.loads that refuses the non-standard NaN / Infinity literals."""
    def bad(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=bad)


# ------------------------------------------------------------------- shared inputs

N_Q, N_DB = 3, 8
GND = [  # query 2 has no positives (its AP is NaN -> null)
    {"easy": [0, 1], "hard": [2], "junk": [3], "bbx": [0, 0, 10, 10]},
    {"easy": [4], "hard": [5, 6], "junk": [], "bbx": [0, 0, 10, 10]},
    {"easy": [], "hard": [], "junk": [7], "bbx": [0, 0, 10, 10]},
]
N_GPR_CAT, N_GPR_PER = 4, 3
N_GPR = N_GPR_CAT * N_GPR_PER

SQUARE = [[10.0, 10.0], [40.0, 10.0], [40.0, 40.0], [10.0, 40.0]]
PIX_GND = [  # pixel base: 2 queries, 6 database images
    {"easy": [1], "hard": [2, 3], "junk": [4], "bbx": [0, 0, 10, 10]},
    {"easy": [0, 5], "hard": [3], "junk": [], "bbx": [0, 0, 10, 10]},
]


def write_pixel_base(root: Path) -> dict[str, Path]:
    """A small consistent PROxford benchmark in the released layout; every easy or hard
    pair has one square label and a box prediction near it."""
    imlist, qimlist = fixtures.names("db", 6), fixtures.names("query", 2)
    gt, matches = {}, {}
    for q, g in enumerate(PIX_GND):
        for i in g["easy"] + g["hard"]:
            gt[(q, i)] = [np.array(SQUARE)]
            matches[fixtures.match_key(q, i)] = fixtures.box_corners(12, 11, 38 + q, 39)
    ranks = np.array([np.roll(np.arange(6), k) for k in range(2)]).T
    return fixtures.write_released_layout(
        root, dataset="oxford", method="m", imlist=imlist, qimlist=qimlist, gnd=PIX_GND,
        ranks=ranks, gt=gt, db_sizes=[(64, 64)] * 6, matches=matches)


def label_path(paths: dict[str, Path], q: int, i: int) -> Path:
    return paths["labels_root"] / f"oxford_labels/query_{q:04d}_db_{i:04d}.json"


@dataclass
class Shared:
    root: Path
    gnd: Path
    ranks: Path
    images: Path
    emb: Path
    pix: dict[str, Path]

    def pixel_args(self, **override) -> list:
        a = {"--gnd": self.pix["gnd_path"], "--labels-root": self.pix["labels_root"],
             "--pair-labels": self.pix["pair_labels_path"], "--matches": self.pix["matches_path"]}
        a.update(override)
        return ["pixel", *[x for kv in a.items() for x in kv]]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    root = tmp_path_factory.mktemp("cli_shared")
    gnd = fixtures.write_gnd_pickle(root / "gnd_roxford5k.pkl", fixtures.names("db", N_DB),
                                    fixtures.names("query", N_Q), GND)
    ranks = fixtures.write_ranks(root / "ranks.npy",
                                 np.stack([np.roll(np.arange(N_DB), k) for k in range(N_Q)], 1))
    images = root / "images"
    fixtures.write_gpr_images(images, N_GPR_CAT, N_GPR_PER, rng=np.random.default_rng(5))
    emb = fixtures.write_embeddings(
        root / "emb.npy", np.random.default_rng(1).normal(size=(N_GPR, 4)).astype(np.float32))
    return Shared(root, gnd, ranks, images, emb, write_pixel_base(root / "pix"))


# ------------------------------------------------------------------- error cases


@dataclass
class Case:
    """``build(d, shared)`` writes the bad input under d and returns (argv, offending path);
    a list of paths means any of them is an acceptable <file>.

    ``what`` and ``why`` are regular expressions (case-insensitive) that the two parts of
    the message must contain: what makes the message clear to a user.
    """

    id: str
    build: Callable[[Path, Shared], tuple[list, Path | list[Path]]]
    what: str = ""
    why: str = ""
    markers: list[str] = field(default_factory=list)  # files that must not appear (in d)
    skip: str | None = None


def _save(path: Path, arr, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr, **kw)
    return path


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _pickle(path: Path, obj) -> Path:
    path.write_bytes(pickle.dumps(obj))
    return path


def _rev(ranks_path: Path, s: Shared) -> tuple[list, Path]:
    return ["revisited", "--gnd", s.gnd, "--ranks", ranks_path], ranks_path


def _rev_gnd(gnd_path: Path, s: Shared) -> tuple[list, Path]:
    return ["revisited", "--gnd", gnd_path, "--ranks", s.ranks], gnd_path


def _gpr_emb(emb: Path, s: Shared) -> tuple[list, Path]:
    return ["gpr1200", "--images", s.images, "--embeddings", emb], emb


def _gpr_idx(idx: Path, s: Shared) -> tuple[list, Path]:
    return ["gpr1200", "--images", s.images, "--indices", idx], idx


def _good_ranks() -> np.ndarray:
    return np.stack([np.roll(np.arange(N_DB), k) for k in range(N_Q)], 1)


def _ranks_with(value: int, row: int = 3, col: int = 1) -> np.ndarray:
    r = _good_ranks()
    r[row, col] = value
    return r


def _chmod000(d: Path, s: Shared) -> tuple[list, Path]:
    p = Path(fixtures.write_gnd_pickle(d / "gnd_roxford5k.pkl", fixtures.names("db", N_DB),
                                       fixtures.names("query", N_Q), GND))
    p.chmod(0)
    return _rev_gnd(p, s)


def _truncated_gnd(d: Path, s: Shared) -> tuple[list, Path]:
    data = s.gnd.read_bytes()
    p = d / "gnd_roxford5k.pkl"
    p.write_bytes(data[: len(data) // 2])
    return _rev_gnd(p, s)


def _truncated_ranks(d: Path, s: Shared) -> tuple[list, Path]:
    data = s.ranks.read_bytes()
    p = d / "ranks.npy"
    p.write_bytes(data[: len(data) - 20])
    return _rev(p, s)


def _evil_gnd(d: Path, s: Shared) -> tuple[list, Path]:
    return _rev_gnd(_pickle(d / "gnd_roxford5k.pkl", Evil(f"touch {d / 'PWNED'}")), s)


def _evil_npy(kind: str) -> Callable[[Path, Shared], tuple[list, Path]]:
    """An object .npy whose unpickling would run os.system, for --pair-labels,
    --matches, --ranks or --embeddings; 'dict' (np.save of a dict) or an object array."""
    def build(d: Path, s: Shared) -> tuple[list, Path]:
        evil = Evil(f"touch {d / 'PWNED'}")
        p = d / "evil.npy"
        if kind in ("pair-labels", "matches"):
            key = "0_1" if kind == "pair-labels" else "qimlist_0_imlist_1"
            _save(p, {key: evil}, allow_pickle=True)
            return s.pixel_args(**{f"--{kind}": p}), p
        arr = np.empty(2, dtype=object)
        arr[0], arr[1] = [1, 2], evil
        _save(p, arr, allow_pickle=True)
        return (_rev(p, s) if kind == "ranks" else _gpr_emb(p, s))[0], p

    return build


def _evil_npy_array(kind: str) -> Callable[[Path, Shared], tuple[list, Path]]:
    """np.save of an object array (not a dict) holding the payload."""
    def build(d: Path, s: Shared) -> tuple[list, Path]:
        arr = np.empty(2, dtype=object)
        arr[0], arr[1] = "x", Evil(f"touch {d / 'PWNED'}")
        p = _save(d / "evil.npy", arr, allow_pickle=True)
        return s.pixel_args(**{f"--{kind}": p}), p

    return build


def _pair_labels(mapping_or_obj) -> Callable[[Path, Shared], tuple[list, Path]]:
    def build(d: Path, s: Shared) -> tuple[list, Path]:
        p = _save(d / "oxford_pair2labelpath.npy", mapping_or_obj, allow_pickle=True)
        return s.pixel_args(**{"--pair-labels": p}), p

    return build


def _matches(obj) -> Callable[[Path, Shared], tuple[list, Path]]:
    def build(d: Path, s: Shared) -> tuple[list, Path]:
        p = _save(d / "proxford.npy", obj, allow_pickle=True)
        return s.pixel_args(**{"--matches": p}), p

    return build


def _bad_image_name(d: Path, s: Shared) -> tuple[list, Path]:
    images = d / "images"
    fixtures.write_gpr_images(images, 2, 2, rng=np.random.default_rng(0))
    fixtures.write_tiny_jpeg(images / "badname.jpg")
    emb = fixtures.write_embeddings(d / "e.npy", np.ones((5, 3), np.float32))
    # the image itself is the offending path; the folder is accepted too when <why>
    # quotes the name (checked by the case's `why`)
    return ["gpr1200", "--images", images, "--embeddings", emb], [images / "badname.jpg", images]


def _order_file(lines: list[str] | None) -> Callable[[Path, Shared], tuple[list, Path]]:
    def build(d: Path, s: Shared) -> tuple[list, Path]:
        p = d / "order.txt"
        if lines is not None:
            p.write_text("\n".join(lines) + "\n")
        return ["gpr1200", "--images", s.images, "--embeddings", s.emb, "--order", p], p

    return build


def _npy(name: str, arr, runner) -> Callable[[Path, Shared], tuple[list, Path]]:
    def build(d: Path, s: Shared) -> tuple[list, Path]:
        return runner(_save(d / name, arr), s)

    return build


def _pix_ranks_with(value: int) -> np.ndarray:
    r = np.stack([np.arange(6), np.arange(6)[::-1]], 1)
    r[2, 1] = value
    return r


def _emb_with(value: float) -> np.ndarray:
    e = np.random.default_rng(2).normal(size=(N_GPR, 4)).astype(np.float32)
    e[5, 2] = value
    return e


def _idx_with(value) -> np.ndarray:
    idx = np.tile(np.arange(N_GPR), (N_GPR, 1))
    idx[4, 7] = value
    return idx


def _text_file(name: str, runner) -> Callable[[Path, Shared], tuple[list, Path]]:
    def build(d: Path, s: Shared) -> tuple[list, Path]:
        p = d / name
        p.write_text("this is not a pickle or npy file\n")
        return runner(p, s)

    return build


def _missing(name: str, runner) -> Callable[[Path, Shared], tuple[list, Path]]:
    return lambda d, s: runner(d / name, s)


def _folder(name: str, runner) -> Callable[[Path, Shared], tuple[list, Path]]:
    def build(d: Path, s: Shared) -> tuple[list, Path]:
        (d / name).mkdir()
        return runner(d / name, s)

    return build


MISSING = r"missing|not found|no such|does not exist"
NOT_FILE = r"folder|director"
REFUSED = r"posix\.system|os\.system"

CASES = [
    # ---- revisited: files
    Case("gnd-missing", _missing("gnd_roxford5k.pkl", _rev_gnd), MISSING, MISSING),
    Case("gnd-is-a-directory", _folder("gnd_roxford5k.pkl", _rev_gnd), "", NOT_FILE),
    Case("gnd-chmod-000", _chmod000, r"unreadable|permission", r"permission",
         skip="root can read a chmod 000 file" if IS_ROOT else None),
    Case("gnd-not-a-pickle", _text_file("gnd_roxford5k.pkl", _rev_gnd),
         r"unreadable|not a pickle|corrupt", r"pickle|truncated"),
    Case("gnd-truncated-pickle", _truncated_gnd, r"unreadable|truncated|corrupt",
         r"truncated|EOF|end of"),
    Case("gnd-not-a-dict", lambda d, s: _rev_gnd(_pickle(d / "gnd_x.pkl", [1, 2, 3]), s),
         r"ground truth|gnd", r"dict"),
    Case("gnd-lacks-keys", lambda d, s: _rev_gnd(
        _pickle(d / "gnd_x.pkl", {"imlist": ["a"], "qimlist": ["q"]}), s),
        r"ground truth|gnd", r"\bgnd\b"),
    Case("gnd-imlist-not-a-list", lambda d, s: _rev_gnd(
        _pickle(d / "gnd_x.pkl", {"imlist": 5, "qimlist": ["q"], "gnd": [{}]}), s),
        r"ground truth|gnd", r"imlist"),
    Case("gnd-qimlist-none", lambda d, s: _rev_gnd(
        _pickle(d / "gnd_x.pkl", {"imlist": ["a"], "qimlist": None, "gnd": []}), s),
        r"ground truth|gnd", r"qimlist"),
    Case("gnd-gnd-is-a-dict", lambda d, s: _rev_gnd(
        _pickle(d / "gnd_x.pkl", {"imlist": ["a"], "qimlist": ["q"], "gnd": {"easy": [0]}}), s),
        r"ground truth|gnd", r"\blist\b"),
    Case("gnd-index-out-of-range", lambda d, s: _rev_gnd(
        _pickle(d / "gnd_x.pkl", {"imlist": ["a", "b"], "qimlist": ["q"],
                                  "gnd": [{"easy": [0], "hard": [99], "junk": []}]}), s),
        r"out of range", r"\b99\b"),
    Case("gnd-refused-os-system", _evil_gnd, r"refused", REFUSED, markers=["PWNED"]),
    # ---- revisited: ranks
    Case("ranks-missing", _missing("ranks.npy", _rev), MISSING, MISSING),
    Case("ranks-not-npy", _text_file("ranks.npy", _rev), r"unreadable|not a", r"npy|numpy"),
    Case("ranks-truncated", _truncated_ranks, r"unreadable|truncated|corrupt",
         r"truncated|EOF|end of"),
    Case("ranks-empty-file", lambda d, s: _rev(_touch(d / "ranks.npy"), s),
         r"unreadable|empty", r"npy|numpy|empty"),
    Case("ranks-1d", _npy("ranks.npy", np.arange(N_DB), _rev), r"shape",
         rf"2-D|\({N_DB},\)"),
    Case("ranks-wrong-columns", _npy("ranks.npy", np.zeros((N_DB, 5), np.int64), _rev),
         r"shape", rf"\({N_DB}, 5\).*\b{N_Q}\b queries|\b{N_Q}\b queries.*\({N_DB}, 5\)"),
    Case("ranks-float", _npy("ranks.npy", _good_ranks().astype(np.float64), _rev),
         r"dtype|type", r"integer.*float|float.*integer"),
    Case("ranks-negative-index", _npy("ranks.npy", _ranks_with(-3), _rev), r"out of range",
         r"-3\b.*column 1|column 1.*-3\b"),
    Case("ranks-index-too-large", _npy("ranks.npy", _ranks_with(N_DB + 40), _rev),
         r"out of range", rf"\b{N_DB + 40}\b.*column 1|column 1.*\b{N_DB + 40}\b"),
    Case("ranks-duplicate-in-column",
         _npy("ranks.npy", _ranks_with(int(_good_ranks()[0, 1]), row=3, col=1), _rev),
         r"duplicate", rf"column 1\b.*\b{int(_good_ranks()[0, 1])}\b|"
                       rf"\b{int(_good_ranks()[0, 1])}\b.*column 1\b"),
    Case("ranks-refused-object-npy", _evil_npy("ranks"), r"refused", REFUSED,
         markers=["PWNED"]),
    # ---- pixel
    Case("pair-labels-missing", lambda d, s: (s.pixel_args(**{"--pair-labels": d / "p.npy"}),
                                              d / "p.npy"), MISSING, MISSING),
    Case("pair-labels-not-a-dict", _pair_labels(np.array(["0_1", "a.json"])), r"pair",
         r"dict"),
    Case("pair-labels-list-object", _pair_labels(np.array([["0_1"], ["a.json", 1]],
                                                          dtype=object)),
         r"pair", r"dict"),
    Case("pair-labels-outside-dataset", _pair_labels({"0_1": "a.json", "9_1": "b.json"}),
         r"outside|out of range", r"9_1"),
    Case("pair-labels-refused-dict", _evil_npy("pair-labels"), r"refused", REFUSED,
         markers=["PWNED"]),
    Case("pair-labels-refused-object-array", _evil_npy_array("pair-labels"), r"refused",
         REFUSED, markers=["PWNED"]),
    Case("labels-root-missing", lambda d, s: (s.pixel_args(**{"--labels-root": d / "nope"}),
                                              d / "nope"), MISSING, MISSING),
    Case("labels-root-is-a-file", lambda d, s: (s.pixel_args(**{"--labels-root": s.gnd}),
                                                s.gnd), "", r"not a (folder|director)|is a file"),
    Case("matches-missing", lambda d, s: (s.pixel_args(**{"--matches": d / "m.npy"}),
                                          d / "m.npy"), MISSING, MISSING),
    Case("matches-is-a-directory", _folder("proxford.npy", lambda p, s: (
        s.pixel_args(**{"--matches": p}), p)), "", NOT_FILE),
    Case("matches-not-a-dict", _matches(np.zeros((3, 2))), r"match", r"dict"),
    Case("matches-query-outside-dataset",
         _matches({"qimlist_0_imlist_1": SQUARE, "qimlist_7_imlist_1": SQUARE}),
         r"outside|out of range", r"qimlist_7_imlist_1"),
    # an image beyond imlist is an R1M distractor pair: left out with a warning
    # (tests/test_matches_distractors.py)
    Case("matches-refused-dict", _evil_npy("matches"), r"refused", REFUSED,
         markers=["PWNED"]),
    Case("matches-refused-object-array", _evil_npy_array("matches"), r"refused", REFUSED,
         markers=["PWNED"]),
    Case("pixel-ranks-out-of-range",
         lambda d, s: (s.pixel_args(**{"--ranks": _save(d / "r.npy", _pix_ranks_with(50))}),
                       d / "r.npy"), r"out of range", r"\b50\b"),
    # ---- gpr1200
    Case("gpr-images-missing", lambda d, s: (["gpr1200", "--images", d / "images",
                                              "--embeddings", s.emb], d / "images"),
         MISSING, MISSING),
    Case("gpr-images-empty", _folder("images", lambda p, s: (
        ["gpr1200", "--images", p, "--embeddings", s.emb], p)), r"empty|no images", r"image"),
    Case("gpr-bad-image-name", _bad_image_name, r"name", r"badname\.jpg"),
    Case("gpr-order-missing", _order_file(None), MISSING, MISSING),
    Case("gpr-order-bad-name", _order_file(["0_a.jpg", "nocategory.jpg"]), r"name",
         r"nocategory\.jpg"),
    Case("gpr-embeddings-missing", _missing("e.npy", _gpr_emb), MISSING, MISSING),
    Case("gpr-embeddings-is-a-directory", _folder("e.npy", _gpr_emb), "", NOT_FILE),
    Case("gpr-embeddings-count-mismatch",
         _npy("e.npy", np.ones((N_GPR + 1, 4), np.float32), _gpr_emb),
         r"count|mismatch", rf"\b{N_GPR + 1}\b.*\b{N_GPR}\b"),
    Case("gpr-embeddings-1d", _npy("e.npy", np.ones(N_GPR, np.float32), _gpr_emb), r"shape",
         r"\(n, d\)|2-D"),
    Case("gpr-embeddings-nan", _npy("e.npy", _emb_with(np.nan), _gpr_emb),
         r"non-finite|nan", r"row 5\b.*(nan|inf|non-finite)"),
    Case("gpr-embeddings-inf", _npy("e.npy", _emb_with(np.inf), _gpr_emb),
         r"non-finite|inf", r"row 5\b.*(nan|inf|non-finite)"),
    Case("gpr-embeddings-refused-object-npy", _evil_npy("embeddings"), r"refused", REFUSED,
         markers=["PWNED"]),
    Case("gpr-indices-negative", _npy("i.npy", _idx_with(-1), _gpr_idx), r"out of range",
         r"-1\b"),
    Case("gpr-indices-too-large", _npy("i.npy", _idx_with(N_GPR), _gpr_idx), r"out of range",
         rf"\b{N_GPR}\b.*0\.\.{N_GPR - 1}|0\.\.{N_GPR - 1}.*\b{N_GPR}\b"),
    Case("gpr-indices-float", _npy("i.npy", _idx_with(3).astype(np.float64), _gpr_idx),
         r"dtype|type", r"integer.*float|float.*integer"),
    Case("gpr-indices-count-mismatch", _npy("i.npy", _idx_with(3)[:-2], _gpr_idx),
         r"count|mismatch", rf"\b{N_GPR - 2}\b.*\b{N_GPR}\b"),
]
assert len({c.id for c in CASES}) == len(CASES)


@dataclass
class Outcome:
    proc: subprocess.CompletedProcess
    path: Path | list[Path]
    dir: Path


@pytest.fixture(scope="module")
def outcomes(shared, tmp_path_factory) -> dict[str, Outcome]:
    built: dict[str, tuple[list, Path | list[Path], Path]] = {}
    for c in CASES:
        if c.skip:
            continue
        d = tmp_path_factory.mktemp(c.id)
        argv, path = c.build(d, shared)
        built[c.id] = (argv, path, d)
    procs = run_all({k: v[0] for k, v in built.items()})
    return {k: Outcome(procs[k], v[1], v[2]) for k, v in built.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, outcomes):
    if case.skip:
        pytest.skip(case.skip)
    o = outcomes[case.id]
    info = explain(o.proc)
    for m in case.markers:  # first: a refused payload must not have run
        assert not (o.dir / m).exists(), f"the pickle payload ran (created {m}){info}"
    rc = o.proc.returncode
    assert rc == 2, f"exit status {rc}{info}"
    assert "Traceback" not in o.proc.stderr, info
    lines = o.proc.stderr.strip().splitlines()
    assert lines, f"nothing on stderr{info}"
    last = lines[-1]
    assert last.startswith("error: "), f"last stderr line is not 'error: ...'{info}"
    paths = o.path if isinstance(o.path, list) else [o.path]
    seps = [f" in {p}: " for p in paths if f" in {p}: " in last]
    assert seps, f"last stderr line does not name {' or '.join(map(str, paths))} as the file{info}"
    what, why = last[len("error: "):].split(seps[0], 1)
    assert what.strip() and why.strip(), info
    if case.what:
        assert re.search(case.what, what, re.I), f"<what> {what!r} !~ /{case.what}/{info}"
    if case.why:
        assert re.search(case.why, why, re.I), f"<why> {why!r} !~ /{case.why}/{info}"


# ------------------------------------------------------------------- per-pair warnings


def _few_points(paths: dict[str, Path]) -> tuple[str, Path]:
    p = label_path(paths, 0, 2)
    fixtures.write_labelme(p, [SQUARE[:2]], 64, 64)
    return "0_2", p


def _nan_point(paths: dict[str, Path]) -> tuple[str, Path]:
    p = label_path(paths, 1, 3)
    doc = fixtures.labelme_document([SQUARE], 64, 64)
    doc["shapes"][0]["points"][1][0] = float("nan")
    p.write_text(json.dumps(doc))  # writes the bare token NaN, which Python's json accepts
    assert "NaN" in p.read_text()
    return "1_3", p


def _wrong_shape(paths: dict[str, Path]) -> tuple[str, Path]:
    p = paths["matches_path"]
    m = np.load(p, allow_pickle=True).item()  # our own file, written just above
    m[fixtures.match_key(0, 3)] = np.ones((4, 3))
    fixtures.write_matching_result(p, m)
    return "0_3", p


WARNING_CASES = {
    "labelme-fewer-than-3-points": _few_points,
    "labelme-nan-coordinate": _nan_point,
    "prediction-wrong-shape": _wrong_shape,
}


@pytest.fixture(scope="module")
def warning_runs(tmp_path_factory):
    built = {}
    for k, make in WARNING_CASES.items():
        paths = write_pixel_base(tmp_path_factory.mktemp(k))
        pair, bad_file = make(paths)
        argv = ["pixel", "--gnd", paths["gnd_path"], "--labels-root", paths["labels_root"],
                "--pair-labels", paths["pair_labels_path"], "--matches", paths["matches_path"],
                "--ranks", paths["ranks_path"], "--json"]
        built[k] = (argv, pair, bad_file)
    procs = run_all({k: v[0] for k, v in built.items()})
    return {k: (procs[k], built[k][1], built[k][2]) for k in built}


def _names_pair_and_file(text: str, pair: str, file: Path) -> bool:
    return str(file) in text and re.search(rf"(?<![\w.]){pair}(?![\w])",
                                           text.replace(str(file), "")) is not None


@pytest.mark.parametrize("case", list(WARNING_CASES))
def test_per_pair_warning(case, warning_runs):
    proc, pair, bad_file = warning_runs[case]
    info = explain(proc)
    rc = proc.returncode
    assert rc == 0, f"exit status {rc}{info}"
    assert "Traceback" not in proc.stderr, info
    out = strict_json(proc.stdout)
    all_pairs = {f"{q}_{i}" for q, g in enumerate(PIX_GND) for i in g["easy"] + g["hard"]}
    assert pair not in out["pairs"], f"{pair} should count as no prediction{info}"
    assert set(out["pairs"]) == all_pairs - {pair}, f"the other pairs must still count{info}"
    assert any(_names_pair_and_file(w, pair, bad_file) for w in out["warnings"]), (
        f"no JSON warning names pair {pair} and {bad_file}: {out['warnings']}")
    warn_lines = [ln for ln in proc.stderr.splitlines() if ln.lower().startswith("warning")]
    assert any(_names_pair_and_file(ln, pair, bad_file) for ln in warn_lines), (
        f"no stderr warning names pair {pair} and {bad_file}{info}")
    assert isinstance(out["medium"]["mIoU"]["bbox"], float), info


# ------------------------------------------------- one pair with absurd coordinates
# A coordinate far outside a 64 x 64 image (or beyond int64) in one pair must neither stop
# the run nor exhaust memory: exit 0, no traceback or numpy RuntimeWarning; the pair is
# either computed (an IoU in [0, 1] in `pairs`) or skipped with a warning naming it and
# the file.


def _huge_prediction(v: float) -> Callable[[dict[str, Path]], tuple[str, Path]]:
    def make(paths: dict[str, Path]) -> tuple[str, Path]:
        p = paths["matches_path"]
        m = np.load(p, allow_pickle=True).item()  # our own file, written just above
        m[fixtures.match_key(0, 1)] = np.array([[v, v], [0.0, 0.0], [5.0, 5.0]])
        fixtures.write_matching_result(p, m)
        return "0_1", p

    return make


def _huge_label(v: float) -> Callable[[dict[str, Path]], tuple[str, Path]]:
    def make(paths: dict[str, Path]) -> tuple[str, Path]:
        p = label_path(paths, 0, 1)
        fixtures.write_labelme(p, [[[0.0, 0.0], [v, 0.0], [v, v]]], 64, 64)
        return "0_1", p

    return make


EXTREME_CASES = {
    "prediction-coordinate-1e9": _huge_prediction(1e9),
    "prediction-coordinate-1e300": _huge_prediction(1e300),
    "label-coordinate-1e9": _huge_label(1e9),
    "label-coordinate-1e19": _huge_label(1e19),
}


@pytest.fixture(scope="module")
def extreme_runs(tmp_path_factory):
    built = {}
    for k, make in EXTREME_CASES.items():
        paths = write_pixel_base(tmp_path_factory.mktemp(k))
        pair, bad_file = make(paths)
        argv = ["pixel", "--gnd", paths["gnd_path"], "--labels-root", paths["labels_root"],
                "--pair-labels", paths["pair_labels_path"], "--matches", paths["matches_path"],
                "--json"]
        built[k] = (argv, pair, bad_file)
    procs = run_all({k: v[0] for k, v in built.items()})
    return {k: (procs[k], built[k][1], built[k][2]) for k in built}


@pytest.mark.parametrize("case", list(EXTREME_CASES))
def test_one_pair_with_absurd_coordinates(case, extreme_runs):
    proc, pair, bad_file = extreme_runs[case]
    info = explain(proc)
    rc = proc.returncode
    assert rc == 0, f"exit status {rc}{info}"
    assert "Traceback" not in proc.stderr and "RuntimeWarning" not in proc.stderr, info
    out = strict_json(proc.stdout)
    all_pairs = {f"{q}_{i}" for q, g in enumerate(PIX_GND) for i in g["easy"] + g["hard"]}
    assert set(out["pairs"]) >= all_pairs - {pair}, f"the other pairs must still count{info}"
    if pair in out["pairs"]:
        assert all(v is not None and 0 <= v <= 1 for v in out["pairs"][pair].values()), info
    else:
        assert any(_names_pair_and_file(w, pair, bad_file) for w in out["warnings"]), (
            f"{pair} skipped without a warning naming it and {bad_file}{info}")


# ------------------------------------------------------------------- JSON output


@pytest.fixture(scope="module")
def json_runs(shared):
    return run_all({
        "revisited": ["revisited", "--gnd", shared.gnd, "--ranks", shared.ranks, "--json"],
        "pixel": [*shared.pixel_args(), "--ranks", shared.pix["ranks_path"], "--json"],
        "gpr1200": ["gpr1200", "--images", shared.images, "--embeddings", shared.emb, "--json"],
    })


@pytest.mark.parametrize("command", ["revisited", "pixel", "gpr1200"])
def test_json_is_valid(command, json_runs):
    proc = json_runs[command]
    assert proc.returncode == 0, proc.stderr
    out = strict_json(proc.stdout)
    assert isinstance(out, dict) and out


@pytest.mark.parametrize("setup", ["easy", "medium", "hard"])
def test_json_nan_is_null(setup, json_runs):
    out = strict_json(json_runs["revisited"].stdout)
    ap = out[setup]["ap"]
    assert len(ap) == N_Q
    assert ap[2] is None, "query 2 has no positives: its AP is NaN and must be null"
    assert isinstance(out[setup]["mAP"], float), "the mean leaves the NaN query out"
