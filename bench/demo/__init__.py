"""The embedded demo benchmark: synthetic pixel-retrieval and GPR-format data made from
the photographs bundled with scikit-image, plus two baseline methods' results.

It is written in the released benchmarks' layouts (revisitop ``gnd_*.pkl``, PROxford
``*_pair2labelpath.npy`` and labelme files, ``results/`` folders, GPR1200 image names),
so the same readers and discovery code serve the demo and the real data::

    ROOT/pixel_retrieval_benchmarks/revisitop/data/rdemo/gnd_rdemo.pkl
    ROOT/pixel_retrieval_benchmarks/revisitop/data/rdemo/jpg/<name>.jpg
    ROOT/pixel_retrieval_benchmarks/demo_pair2labelpath.npy
    ROOT/pixel_retrieval_benchmarks/demo/labels/<query>__<image>.json
    ROOT/results/image-level/<method>/rdemo.npy
    ROOT/results/pixel-level/<method>/matching_result/prdemo.npy
    ROOT/gpr1200/images/{category}_{name}.jpg
    ROOT/gpr1200/GPR1200_categoryNumber_to_text.json
    ROOT/gpr1200/embeddings/global.npy
    ROOT/README.txt
    ROOT/.complete          (written last; its presence marks a finished build)

This module imports nothing heavy: finding a finished demo takes milliseconds; the
builder (``bench.demo.build``) is imported only when a build is needed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEMO_VERSION = 1
METHODS = ("local-sp", "global-hist")
SCALES = ("full", "small")

__all__ = ["DEMO_VERSION", "METHODS", "DemoPaths", "build_demo", "default_demo_dir",
           "demo_is_built", "demo_paths"]


def default_demo_dir() -> Path:
    """``$BENCH_DEMO_DIR`` if set, else ``($XDG_CACHE_HOME or ~/.cache)/bench-workbench/
    demo-v{DEMO_VERSION}``."""
    env = os.environ.get("BENCH_DEMO_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "bench-workbench" / f"demo-v{DEMO_VERSION}"


@dataclass(frozen=True)
class DemoPaths:
    """Where the files of a demo build live (whether or not they exist yet)."""

    root: Path
    gnd: Path
    labels_root: Path
    pair_labels: Path
    images: Path
    methods: dict[str, dict[str, Path]] = field(hash=False)
    gpr_images: Path
    gpr_embeddings: Path
    gpr_category_text: Path

    def to_json(self) -> dict:
        """The paths as strings, in the shape ``python -m bench demo --json`` prints."""
        return {
            "gnd": str(self.gnd),
            "labels_root": str(self.labels_root),
            "pair_labels": str(self.pair_labels),
            "images": str(self.images),
            "methods": {name: {"ranks": str(p["ranks"]), "matches": str(p["matches"])}
                        for name, p in self.methods.items()},
            "gpr": {"images": str(self.gpr_images), "embeddings": str(self.gpr_embeddings)},
        }


def demo_paths(root: Path) -> DemoPaths:
    """The layout of a demo rooted at ``root`` (pure path arithmetic)."""
    root = Path(root)
    labels_root = root / "pixel_retrieval_benchmarks"
    data = labels_root / "revisitop" / "data" / "rdemo"
    results = root / "results"
    return DemoPaths(
        root=root,
        gnd=data / "gnd_rdemo.pkl",
        labels_root=labels_root,
        pair_labels=labels_root / "demo_pair2labelpath.npy",
        images=data / "jpg",
        methods={m: {"ranks": results / "image-level" / m / "rdemo.npy",
                     "matches": results / "pixel-level" / m / "matching_result" / "prdemo.npy"}
                 for m in METHODS},
        gpr_images=root / "gpr1200" / "images",
        gpr_embeddings=root / "gpr1200" / "embeddings" / "global.npy",
        gpr_category_text=root / "gpr1200" / "GPR1200_categoryNumber_to_text.json",
    )


def _marker(root: Path) -> dict | None:
    try:
        info = json.loads((Path(root) / ".complete").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def demo_is_built(root: Path, scale: str | None = None) -> bool:
    """True only for a finished build of this ``DEMO_VERSION``: ``ROOT/.complete`` is
    valid JSON naming this version, and the files it promises exist."""
    info = _marker(root)
    if info is None or info.get("version") != DEMO_VERSION:
        return False
    if scale is not None and info.get("scale") != scale:
        return False
    p = demo_paths(root)
    needed = [p.gnd, p.pair_labels, p.images, p.gpr_embeddings, p.gpr_category_text,
              *(f for m in p.methods.values() for f in m.values())]
    return all(f.exists() for f in needed)


def build_demo(root: Path | None = None, *, scale: str = "full",
               progress: Callable[[float, str], None] | None = None,
               force: bool = False) -> DemoPaths:
    """Build the demo into ``root`` (default: :func:`default_demo_dir`) unless a finished
    build of the same version and ``scale`` is there already (then return at once).

    The build goes into a temporary sibling folder that is renamed onto ``root`` at the
    end, so a killed build never looks finished; a stale unfinished ``root`` is replaced.
    ``scale="small"`` makes a much smaller demo through the same code (for tests).
    ``progress(fraction, message)`` is called along the way (fraction 0..1).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    root = Path(root) if root is not None else default_demo_dir()
    root = root.expanduser().absolute()
    if not force and demo_is_built(root, scale):
        if progress is not None:
            progress(1.0, "demo ready")
        return demo_paths(root)
    from bench.demo.build import build_atomically

    build_atomically(root, scale=scale, progress=progress, force=force)
    return demo_paths(root)
