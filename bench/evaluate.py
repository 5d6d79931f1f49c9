"""File paths in, results out: the one place that ties readers to metrics.

The CLI and the app both call these, so every number the app shows is the CLI's number.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.errors import BenchWarning
from bench.protocol import THRESHOLDS, ProtocolLike

# Readers and metrics are imported in the functions that use them, so that
# ``python -m bench revisited`` loads neither the pixel nor the GPR1200 code (issue 19).
if TYPE_CHECKING:
    from bench.formats.gpr1200 import GprImages
    from bench.formats.pixel import Pair
    from bench.formats.revisited import Gnd
    from bench.metrics.gpr1200 import GprResult
    from bench.metrics.pixel import PixelResult
    from bench.metrics.revisited import RevisitedSetupResult

PathLike = str | os.PathLike


@dataclass(frozen=True, eq=False)
class PixelInputs:
    """Everything read from disk for pixel evaluation of one method on one dataset."""

    gt: dict[Pair, list[np.ndarray]]
    sizes: dict[Pair, tuple[int, int] | None]
    preds: dict[Pair, np.ndarray | None]
    warnings: list[BenchWarning] = field(default_factory=list)


def load_ground_truth_labels(gnd: Gnd, pair_labels: PathLike, labels_root: PathLike | None
                             ) -> tuple[dict[Pair, list[np.ndarray]], dict[Pair, tuple[int, int] | None],
                                        dict[Pair, Path], list[BenchWarning]]:
    """Pair label paths and labelme shapes of every easy or hard pair of *gnd*."""
    from bench.formats.pixel import load_labels, load_pair_labels

    paths, warnings = load_pair_labels(pair_labels, labels_root, n_queries=gnd.n_queries,
                                       n_db=gnd.n_db)
    wanted = {(q, int(i)) for q in range(gnd.n_queries)
              for i in np.concatenate([gnd.easy[q], gnd.hard[q]]).tolist()}
    missing = sorted(wanted - set(paths))
    if missing:
        q, i = missing[0]
        warnings.append(BenchWarning(f"{q}_{i}", pair_labels,
                                     f"{len(missing)} easy/hard pairs have no label entry "
                                     f"(first: {q}_{i}); they count as unpredicted"))
    labels, w2 = load_labels({p: paths[p] for p in sorted(wanted & set(paths))})
    warnings += w2
    gt = {p: lab.shapes for p, lab in labels.items()}
    sizes = {p: (lab.width, lab.height) if lab.width and lab.height else None
             for p, lab in labels.items()}
    return gt, sizes, paths, warnings


def load_pixel_inputs(gnd: Gnd, *, pair_labels: PathLike, labels_root: PathLike | None,
                      matches: PathLike) -> PixelInputs:
    from bench.formats.pixel import load_matches

    gt, sizes, _, warnings = load_ground_truth_labels(gnd, pair_labels, labels_root)
    preds, w3 = load_matches(matches, n_queries=gnd.n_queries, n_db=gnd.n_db)
    return PixelInputs(gt=gt, sizes=sizes, preds=preds, warnings=warnings + w3)


def run_revisited(gnd_path: PathLike, ranks_path: PathLike, *,
                  protocol: ProtocolLike = "official"
                  ) -> tuple[Gnd, dict[str, RevisitedSetupResult]]:
    from bench.formats.revisited import load_gnd, load_ranks
    from bench.metrics.revisited import evaluate_revisited

    gnd = load_gnd(gnd_path)
    ranks = load_ranks(ranks_path, gnd)
    return gnd, evaluate_revisited(ranks, gnd, protocol=protocol, path=ranks_path)


def run_pixel(gnd_path: PathLike, *, pair_labels: PathLike, labels_root: PathLike | None,
              matches: PathLike, ranks_path: PathLike | None = None,
              protocol: ProtocolLike = "official", benchmark: str | None = None
              ) -> tuple[Gnd, PixelResult]:
    from bench.formats.revisited import load_gnd, load_ranks
    from bench.metrics.pixel import evaluate_pixel
    from bench.metrics.revisited import scan_ranks

    gnd = load_gnd(gnd_path)
    inputs = load_pixel_inputs(gnd, pair_labels=pair_labels, labels_root=labels_root,
                               matches=matches)
    scan = None
    if ranks_path is not None:
        scan = scan_ranks(load_ranks(ranks_path, gnd), gnd, path=ranks_path)
    res = evaluate_pixel(gnd, inputs.gt, inputs.preds, ranks=scan, protocol=protocol,
                         benchmark=benchmark, image_sizes=inputs.sizes,
                         warnings=inputs.warnings, matches_path=matches)
    return gnd, res


@dataclass(frozen=True, eq=False)
class GprInputs:
    """A GPR1200 run's inputs in file order (embeddings or neighbour indices)."""

    images: GprImages
    embeddings: np.ndarray | None
    indices: np.ndarray | None
    metric: str


def load_gpr_inputs(images: PathLike, *, embeddings: PathLike | None = None,
                    indices: PathLike | None = None, metric: str = "cosine",
                    order: PathLike | None = None) -> GprInputs:
    """Read the images folder (and order file) and the embeddings or indices, rearranged
    into file order (rows follow the order file; so do the indices inside them)."""
    from bench.formats.gpr1200 import load_embeddings, load_gpr_images, load_indices

    imgs = load_gpr_images(images, order)
    if embeddings is not None:
        emb = imgs.to_file_order(load_embeddings(embeddings, imgs.n))
        return GprInputs(imgs, emb, None, metric)
    if indices is None:
        raise ValueError("give embeddings or indices")
    idx = load_indices(indices, imgs.n)
    if imgs.rows is not None:
        file_pos = np.empty(imgs.n, dtype=np.int64)
        file_pos[imgs.rows] = np.arange(imgs.n)
        idx = file_pos[imgs.to_file_order(idx)]
    return GprInputs(imgs, None, idx, metric)


def run_gpr1200(images: PathLike, *, embeddings: PathLike | None = None,
                indices: PathLike | None = None, metric: str = "cosine",
                order: PathLike | None = None, protocol: ProtocolLike = "official"
                ) -> tuple[GprImages, GprResult]:
    """GPR1200 from files (docs/PROTOCOLS.md §3); *protocol* decides how embeddings are
    scored (official: the released product in their own dtype; strict: exact float64)."""
    from bench.metrics.gpr1200 import evaluate_gpr1200

    inp = load_gpr_inputs(images, embeddings=embeddings, indices=indices, metric=metric,
                          order=order)
    return inp.images, evaluate_gpr1200(inp.images.categories, embeddings=inp.embeddings,
                                        metric=metric, indices=inp.indices, path=embeddings,
                                        input_rows=inp.images.rows, protocol=protocol)


# ---------------------------------------------------------------- JSON views

def num(x) -> float | None:
    """A JSON number at full precision; NaN and infinities (not JSON) -> None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def nums(a) -> list[float | None]:
    return [num(v) for v in np.asarray(a, dtype=np.float64).tolist()]


def revisited_json(res: dict[str, RevisitedSetupResult]) -> dict:
    return {setup: {"mAP": num(r.mAP), "mP@k": {str(k): num(v) for k, v in r.mP.items()},
                    "ap": nums(r.ap), "n_positives": r.n_pos.tolist()}
            for setup, r in res.items()}


def pixel_json(res: PixelResult) -> dict:
    out: dict = {"protocol": res.protocol, "benchmark": res.benchmark}
    for setup, r in res.setups.items():
        d: dict = {"mIoU": {"bbox": num(r.miou_bbox), "seg": num(r.miou_seg)},
                   "per_query": {"bbox": nums(r.per_query_bbox), "seg": nums(r.per_query_seg)}}
        if r.map_at_k is not None:
            d["mAP"] = num(r.image_map)
            d["mAP@k"] = num(r.map_at_k)
            d["mAP_t"] = {k: num(v) for k, v in r.map_t.items()}
        if r.map_at_k_seg is not None:
            d["mAP@k_seg"] = num(r.map_at_k_seg)
            d["mAP_t_seg"] = {k: num(v) for k, v in r.map_t_seg.items()}
        out[setup] = d
    out["pairs"] = {f"{q}_{i}": {"bbox": num(b), "seg": num(s)}
                    for (q, i), (b, s) in sorted(res.pairs.items())}
    out["warnings"] = [str(w) for w in res.warnings]
    return out


def gpr_json(imgs: GprImages, res: GprResult) -> dict:
    return {"mAP": num(res.mAP), "subsets": {k: num(v) for k, v in res.subsets.items()},
            "ap": nums(res.ap), "n_images": imgs.n,
            "n_categories": int(np.unique(imgs.categories).size)}


__all__ = ["THRESHOLDS", "PixelInputs", "gpr_json", "load_pixel_inputs", "pixel_json",
           "revisited_json", "run_gpr1200", "run_pixel", "run_revisited"]
