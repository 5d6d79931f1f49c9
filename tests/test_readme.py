"""README's API example runs as written and prints the CLI's official numbers."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README has no python example"
    assert len(blocks[0].strip().splitlines()) <= 12
    return blocks[0]


def _cli(env, *args) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench", *map(str, args), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_readme_api_example_prints_the_official_numbers(tmp_path):
    env = dict(os.environ, BENCH_DEMO_DIR=str(tmp_path / "demo"))
    proc = subprocess.run([sys.executable, "-c", _example()], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2, proc.stdout
    maps = ast.literal_eval(lines[0])
    miou_text, mapk_text = lines[1].rsplit(" ", 1)
    miou, mapk = ast.literal_eval(miou_text), float(mapk_text)

    paths = _cli(env, "demo")
    m = paths["methods"]["local-sp"]
    rev = _cli(env, "revisited", "--gnd", paths["gnd"], "--ranks", m["ranks"])
    assert maps == {s: rev[s]["mAP"] for s in ("easy", "medium", "hard")}
    pix = _cli(env, "pixel", "--gnd", paths["gnd"], "--labels-root", paths["labels_root"],
               "--pair-labels", paths["pair_labels"], "--matches", m["matches"],
               "--ranks", m["ranks"])
    assert pix["protocol"] == "official"
    assert miou == pix["medium"]["mIoU"]
    assert mapk == pix["medium"]["mAP@k"]
