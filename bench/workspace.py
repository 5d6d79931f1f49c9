"""Discovery of datasets and methods in a folder laid out like the released code.

```
<root>/pixel_retrieval_benchmarks/revisitop/data/<dataset>/gnd_<dataset>.pkl   (e.g. roxford5k)
<root>/pixel_retrieval_benchmarks/revisitop/data/<dataset>/jpg/                (images, optional)
<root>/pixel_retrieval_benchmarks/<short>_pair2labelpath.npy                   (oxford, paris, ...)
<root>/results/image-level/<method>/r<short>.npy                               (ranks)
<root>/results/pixel-level/<method>/matching_result/pr<short>.npy              (pixel result)
```
The gnd may also sit anywhere below the root (the revisitop download keeps it in
``data/datasets/<dataset>/``); images are looked for in a ``jpg/`` folder beside it, or in
the folder given as *images_dir*. The labels root and the results root may be given
separately when they are not under one root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.formats.revisited import dataset_short_name

_MAX_DEPTH = 6


@dataclass(frozen=True)
class MethodFiles:
    name: str
    ranks: Path | None = None
    matches: Path | None = None


@dataclass(frozen=True)
class DatasetFiles:
    name: str  # roxford5k
    short: str  # oxford
    gnd: Path
    labels_root: Path | None = None
    pair_labels: Path | None = None
    images: Path | None = None
    methods: dict[str, MethodFiles] = field(default_factory=dict)

    @property
    def has_pixel_labels(self) -> bool:
        return self.pair_labels is not None


def _find(root: Path, pattern: str, depth: int = _MAX_DEPTH) -> list[Path]:
    out: list[Path] = []
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if len(d.parts) - base >= depth:
            dirnames[:] = []
        # never descend into image folders or virtual environments (they can be huge)
        dirnames[:] = [n for n in dirnames if n not in {"jpg", "jpeg", ".venv", ".git",
                                                          "node_modules", "images"}]
        out.extend(d / f for f in filenames if Path(f).match(pattern))
    return sorted(out)


def _results_root(root: Path) -> Path | None:
    for cand in (root / "results", root):
        if (cand / "image-level").is_dir() or (cand / "pixel-level").is_dir():
            return cand
    return None


def _labels_root(root: Path) -> Path:
    cand = root / "pixel_retrieval_benchmarks"
    return cand if cand.is_dir() else root


def discover(root: str | os.PathLike, *, images_dir: str | os.PathLike | None = None,
             results_root: str | os.PathLike | None = None,
             labels_root: str | os.PathLike | None = None) -> list[DatasetFiles]:
    """List the datasets (one per ``gnd_*.pkl``) and, for each, the methods with results."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BenchError("missing folder", root,
                         "no such folder; give the folder that holds pixel_retrieval_benchmarks/ "
                         "and results/")
    gnds = _find(root, "gnd_*.pkl")
    if not gnds:
        raise BenchError("no dataset found", root,
                         "no gnd_<dataset>.pkl below this folder (expected e.g. "
                         "pixel_retrieval_benchmarks/revisitop/data/roxford5k/gnd_roxford5k.pkl)")
    lroot = Path(labels_root) if labels_root else _labels_root(root)
    rroot = Path(results_root) if results_root else _results_root(root)
    out = []
    for g in gnds:
        name = g.stem[4:]
        short = dataset_short_name(name)
        pl = lroot / f"{short}_pair2labelpath.npy"
        images = None
        if images_dir:
            cand = [Path(images_dir) / name / "jpg", Path(images_dir) / "jpg", Path(images_dir)]
            images = next((c for c in cand if c.is_dir()), None)
        elif (g.parent / "jpg").is_dir():
            images = g.parent / "jpg"
        methods: dict[str, MethodFiles] = {}
        if rroot is not None:
            names = set()
            for level in ("image-level", "pixel-level"):
                if (rroot / level).is_dir():
                    names |= {p.name for p in (rroot / level).iterdir() if p.is_dir()}
            for m in sorted(names):
                ranks = rroot / "image-level" / m / f"r{short}.npy"
                matches = rroot / "pixel-level" / m / "matching_result" / f"pr{short}.npy"
                mf = MethodFiles(m, ranks if ranks.is_file() else None,
                                 matches if matches.is_file() else None)
                if mf.ranks or mf.matches:
                    methods[m] = mf
        out.append(DatasetFiles(name=name, short=short, gnd=g,
                                labels_root=lroot if pl.is_file() else None,
                                pair_labels=pl if pl.is_file() else None,
                                images=images, methods=methods))
    return out
