"""The installable package: what the wheel holds, and the wheel installed into a fresh
virtual environment outside the checkout (so nothing imports from the work tree) running
the console command, the API and the app.

The fresh environment gets the wheel with ``--no-deps``; its dependencies come from the
test's own environment through a ``.pth`` line (a plain path: the editable install's
finder there is not loaded), so the test needs no download. ``bench`` itself must be
imported from the fresh environment, which the tests check.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests import fixtures

ROOT = Path(__file__).resolve().parents[1]
GENERIC = {"ui", "pages", "tests", "benchmarks", "app", "docs"}


# ---------------------------------------------------------------- the source tree

def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_bench_outside_the_app_never_imports_streamlit():
    """Every module of bench/ but bench/app/ (imports anywhere in the file, functions
    included) stays free of streamlit, so the engine runs where Streamlit is not wanted."""
    bad = []
    files = [p for p in (ROOT / "bench").rglob("*.py") if "app" not in p.relative_to(ROOT / "bench").parts[:1]]
    assert len(files) > 30  # the scan sees the package
    for p in files:
        if _imports(p) & {"streamlit", "streamlit_image_coordinates"}:
            bad.append(str(p.relative_to(ROOT)))
    assert not bad, f"these import streamlit: {bad}"


def test_requirements_are_the_one_list_of_dependencies():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'dependencies = { file = ["requirements.txt"] }' in text
    assert not any(ln.startswith("-") for ln in (ROOT / "requirements-dev.txt").read_text()
                   .splitlines()), "setuptools cannot read -r/-e lines in requirements-dev.txt"


# ---------------------------------------------------------------- the wheel

def _requirement_lines(path: Path) -> list[str]:
    out = []
    for ln in path.read_text().splitlines():
        ln = ln.split("#", 1)[0].strip()
        if ln:
            out.append(ln.replace(" ", ""))
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")  # keep build/ out of the checkout
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(out)], capture_output=True, text=True, timeout=600,
        cwd=build, env=dict(os.environ, PIP_NO_INPUT="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    wheels = list(out.glob("retrieval_workbench-*.whl"))
    assert len(wheels) == 1, list(out.iterdir())
    return wheels[0]


def test_wheel_holds_bench_only_with_its_pages_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"bench"}
    assert not tops & GENERIC
    for must in ("bench/py.typed", "bench/api.py", "bench/cli.py", "bench/app/main.py",
                 "bench/app/streamlit_app.py", "bench/app/pages/query.py",
                 "bench/app/pages/overview.py", "bench/study/web/static/index.html",
                 "bench/study/web/static/app.js", "bench/study/web/static/app.css"):
        assert must in names, must
    pages = {Path(n).name for n in names if n.startswith("bench/app/pages/")}
    assert pages == {p.name for p in (ROOT / "pages").glob("*.py")}
    # every runtime dependency, exactly requirements.txt
    declared = [ln.split(":", 1)[1].strip().replace(" ", "") for ln in meta.splitlines()
                if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert declared == _requirement_lines(ROOT / "requirements.txt")
    assert re.search(r"^retbench = bench\.cli:main$", entry, re.M)


# ---------------------------------------------------------------- installed outside

@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """A fresh venv (outside the checkout) with the wheel; returns its python, its
    console command and a working folder outside the checkout."""
    base = tmp_path_factory.mktemp("fresh")
    venv = base / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                           "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    work = base / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {"python": py, "cmd": venv / "bin" / "retbench", "work": work, "env": env,
            "venv": venv}


def _run(inst: dict, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*map(str, args)], cwd=inst["work"], env=inst["env"],
                          capture_output=True, text=True, timeout=timeout)


def _checkout_cli(*args) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench", *map(str, args), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _installed_cli(inst: dict, *args) -> dict:
    proc = _run(inst, inst["cmd"], *args, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_installed_package_imports_from_the_fresh_environment(installed):
    proc = _run(installed, installed["python"], "-c",
                "import bench, bench.api, bench.cli; print(bench.__file__)")
    assert proc.returncode == 0, proc.stderr
    where = Path(proc.stdout.strip()).resolve()
    assert installed["venv"].resolve() in where.parents
    assert ROOT not in where.parents
    helped = _run(installed, installed["cmd"], "--help")
    assert helped.returncode == 0
    for sub in ("revisited", "pixel", "triage", "gpr1200", "demo", "study", "app",
                "discover", "compare"):
        assert sub in helped.stdout
    assert helped.stdout.startswith("usage: retbench")


_API_REVISITED = """
import json, sys, numpy as np, bench
gnd = bench.load_revisited(sys.argv[1])
print(json.dumps(bench.evaluate_revisited(gnd, np.load(sys.argv[2])).to_dict()))
"""
_API_PIXEL = """
import json, sys, numpy as np, bench
gnd = bench.load_revisited(sys.argv[1])
gt = bench.load_pixel_ground_truth(gnd, sys.argv[2], sys.argv[3])
preds = np.load(sys.argv[4], allow_pickle=True).item()
report = bench.evaluate_pixel(gnd, gt, preds, ranks=np.load(sys.argv[5]))
print(json.dumps(report.to_dict()))
"""
_API_GPR = """
import json, sys, numpy as np, bench
images = bench.load_gpr1200(sys.argv[1])
r = bench.evaluate_gpr1200(images.categories, embeddings=np.load(sys.argv[2]), metric="dot")
print(json.dumps(r.to_dict()))
"""


def _api(inst: dict, script: str, *args) -> dict:
    proc = _run(inst, inst["python"], "-c", script, *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_installed_command_and_api_give_the_checkouts_numbers(installed, tmp_path,
                                                             pixel_benchmark):
    rev = fixtures.make_random_revisited(np.random.default_rng(11), tmp_path, 6, 30)
    want = _checkout_cli("revisited", "--gnd", rev.gnd_path, "--ranks", rev.ranks_path)
    assert _installed_cli(installed, "revisited", "--gnd", rev.gnd_path, "--ranks",
                          rev.ranks_path) == want
    api = _api(installed, _API_REVISITED, rev.gnd_path, rev.ranks_path)
    assert api == {k: v for k, v in want.items() if k != "protocol"}

    b = pixel_benchmark
    args = ("pixel", "--gnd", b.gnd_path, "--labels-root", b.labels_root, "--pair-labels",
            b.pair_labels_path, "--matches", b.matches_path, "--ranks", b.ranks_path)
    want = _checkout_cli(*args)
    assert _installed_cli(installed, *args) == want
    assert _api(installed, _API_PIXEL, b.gnd_path, b.pair_labels_path, b.labels_root,
                b.matches_path, b.ranks_path) == want

    images = tmp_path / "images"
    ordered = fixtures.write_gpr_images(images, 6, 3, rng=np.random.default_rng(5))
    emb = np.random.default_rng(6).normal(size=(len(ordered), 5)).astype(np.float32)
    emb_path = fixtures.write_embeddings(tmp_path / "emb.npy", emb)
    want = _checkout_cli("gpr1200", "--images", images, "--embeddings", emb_path,
                         "--metric", "dot")
    assert _installed_cli(installed, "gpr1200", "--images", images, "--embeddings", emb_path,
                          "--metric", "dot") == want
    api = _api(installed, _API_GPR, images, emb_path)
    assert api["mAP"] == want["mAP"] and api["ap"] == want["ap"]
    assert api["subsets"] == want["subsets"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_installed_app_command_serves_the_app(installed, tmp_path_factory):
    """``retbench app`` from a folder outside the checkout: the server answers its
    health check and the Overview renders in Chromium without an exception."""
    from bench.demo import build_demo

    demo = build_demo(tmp_path_factory.getbasetemp() / "package_demo", scale="small")
    port = _free_port()
    env = dict(installed["env"], BENCH_DEMO_DIR=str(demo.root),
               BENCH_CACHE_DIR=str(tmp_path_factory.mktemp("package_cache")))
    log = open(tmp_path_factory.mktemp("package_log") / "app.log", "wb")
    proc = subprocess.Popen([str(installed["cmd"]), "app", "--port", str(port), "--no-demo"],
                            cwd=installed["work"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None, Path(log.name).read_text()[-3000:]
            assert time.time() < deadline, "the app did not answer its health check"
            time.sleep(0.3)
        with urllib.request.urlopen(url + "/take", timeout=10) as r:  # the study's routes
            assert r.status == 200 and b"<html" in r.read().lower()
        if not os.path.exists("/usr/bin/chromium"):
            pytest.skip("/usr/bin/chromium not found: the page was not rendered")
        sync_api = pytest.importorskip("playwright.sync_api")
        from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                pg = b.new_page(viewport={"width": 1366, "height": 768})
                pg.set_default_timeout(60_000)
                pg.goto(url)
                pg.wait_for_selector('[data-testid="stMetric"]')
                assert pg.locator('[data-testid="stException"]').count() == 0
                assert pg.locator('[data-testid="stMetric"]').count() >= 3
            finally:
                b.close()
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


def test_installed_app_flags_match_the_checkouts_streamlit_config():
    """``retbench app`` has no .streamlit/config.toml beside it: its flags must say what
    the checkout's config says (else the installed app would differ from `make run`)."""
    import tomllib

    from bench.launch import SERVER_FLAGS

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    flags = dict(zip(SERVER_FLAGS[::2], SERVER_FLAGS[1::2], strict=True))
    for section, values in config.items():
        for key, value in values.items():
            if section == "server" and key in ("address", "port"):
                continue  # command-line options of retbench app
            want = str(value).lower() if isinstance(value, bool) else str(value)
            assert flags.get(f"--{section}.{key}") == want, f"{section}.{key}"
