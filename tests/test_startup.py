"""Start-up at the floor (issue 19): each ``python -m bench`` subcommand imports only what
it uses (``bench/cli.py``, docs/PROTOCOLS.md §8).

Each check runs the real command line in a fresh interpreter, the way ``python -m bench``
runs (``runpy`` of the ``bench`` package as ``__main__``), and then prints the names in
``sys.modules``; no timing is asserted (the times are in ``benchmarks/bench_engine.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import fixtures

ROOT = Path(__file__).resolve().parents[1]

# python -m bench <args>, then the sorted module names as the last stdout line
_WRAPPER = """
import json, runpy, sys
sys.argv = ["bench", *sys.argv[1:]]
try:
    runpy.run_module("bench", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print()
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""

#: What a revisited evaluation never needs (issue 19 item 3).
NOT_FOR_REVISITED = ("scipy", "skimage", "PIL", "streamlit", "pandas", "cv2", "plotly",
                     "bench.metrics.pixel", "bench.metrics.gpr1200", "bench.formats.pixel",
                     "bench.formats.gpr1200", "bench.geometry", "bench.study", "bench.triage",
                     "bench.compare", "bench.render", "bench.thumbs", "bench.workspace",
                     "bench.demo", "bench.api")


def run_cli(*args) -> tuple[int, str, set[str]]:
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    out = proc.stdout.rstrip().splitlines()
    info = json.loads(out[-1])
    return info["exit"], "\n".join(out[:-1]), set(info["modules"])


def loaded(modules: set[str], prefix: str) -> list[str]:
    return sorted(m for m in modules if m == prefix or m.startswith(prefix + "."))


@pytest.fixture(scope="module")
def revisited_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("startup")
    return fixtures.make_random_revisited(np.random.default_rng(19), folder, 6, 40)


@pytest.mark.parametrize("fmt", [(), ("--json",)], ids=["table", "json"])
def test_revisited_imports_only_its_own_modules(revisited_files, fmt):
    code, out, modules = run_cli("revisited", "--gnd", revisited_files.gnd_path, "--ranks",
                                 revisited_files.ranks_path, *fmt)
    assert code == 0, out
    assert ("medium" in out) if not fmt else json.loads(out)["medium"]["mAP"] is not None
    for name in NOT_FOR_REVISITED:
        assert not loaded(modules, name), f"revisited imported {loaded(modules, name)}"
    # what it does need is there (the dump is of the process that ran the evaluation)
    for name in ("numpy", "bench.cli", "bench.evaluate", "bench.formats.revisited",
                 "bench.metrics.revisited"):
        assert name in modules, name


def test_revisited_with_the_image_caps_still_loads_no_pillow(revisited_files):
    """``--max-pixels`` sets the decoder's cap without importing Pillow."""
    code, out, modules = run_cli("revisited", "--gnd", revisited_files.gnd_path, "--ranks",
                                 revisited_files.ranks_path, "--max-pixels", "1000",
                                 "--max-side", "50")
    assert code == 0, out
    assert "bench.formats.images" in modules
    assert not loaded(modules, "PIL")


def test_pixel_loads_the_pixel_code_but_no_study(tmp_path):
    """The check can fail: the pixel command does import the pixel modules."""
    b = fixtures.make_random_pixel_benchmark(np.random.default_rng(3), tmp_path, 4, 12)
    code, out, modules = run_cli("pixel", "--gnd", b.gnd_path, "--labels-root", b.labels_root,
                                 "--pair-labels", b.pair_labels_path, "--matches",
                                 b.matches_path, "--json")
    assert code == 0, out
    assert "bench.metrics.pixel" in modules and "bench.geometry" in modules
    for name in ("scipy", "bench.study", "bench.metrics.gpr1200", "skimage", "streamlit"):
        assert not loaded(modules, name), f"pixel imported {loaded(modules, name)}"


def test_help_lists_every_command_without_the_study_code():
    code, out, modules = run_cli("--help")
    assert code == 0
    for cmd in ("revisited", "pixel", "triage", "gpr1200", "demo", "study", "discover",
                "compare"):
        assert cmd in out
    assert not loaded(modules, "bench.study") and not loaded(modules, "scipy")


def test_gpr1200_loads_neither_pixel_code_nor_pillow(tmp_path):
    names = fixtures.gpr_file_order(fixtures.write_gpr_images(tmp_path / "images", 6, 3))
    emb = np.random.default_rng(0).normal(size=(len(names), 8)).astype(np.float32)
    fixtures.write_embeddings(tmp_path / "emb.npy", emb)
    code, out, modules = run_cli("gpr1200", "--images", tmp_path / "images", "--embeddings",
                                 tmp_path / "emb.npy", "--json")
    assert code == 0, out
    assert "bench.metrics.gpr1200" in modules
    for name in ("scipy", "skimage", "PIL", "bench.metrics.pixel", "bench.geometry",
                 "bench.study", "streamlit"):
        assert not loaded(modules, name), f"gpr1200 imported {loaded(modules, name)}"


def test_study_options_are_still_parsed():
    proc = subprocess.run([sys.executable, "-m", "bench", "study", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--conditions" in proc.stdout and "--trials" in proc.stdout
