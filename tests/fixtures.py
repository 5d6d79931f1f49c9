"""Writers of the benchmarks' real on-disk formats, and random benchmark generators.

Everything is made by code (nothing downloaded). The formats follow docs/PROTOCOLS.md:
- Revisited gnd pickle: {"imlist", "qimlist", "gnd": [{"easy", "hard", "junk", "bbx"}]}
- labelme JSON (version 4.5.6 layout) with polygon shapes
- ``<short>_pair2labelpath.npy``: np.save of a dict "q_i" -> label path
- matching result: np.save of a dict "qimlist_{q}_imlist_{i}" -> (n, 2) points or []
- ranks .npy: (n_db, n_queries) int
- the released folder layout (pixel_retrieval_benchmarks/..., results/...)
- GPR1200: images/{category}_{name}.jpg, embeddings (n, d), indices (n, k)

This module does not import ``bench``.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATASETS = {
    # short name -> (revisited dataset folder, image-level file stem, pixel-level stem)
    "oxford": ("roxford5k", "roxford", "proxford"),
    "paris": ("rparis6k", "rparis", "prparis"),
}


# ---------------------------------------------------------------------------------------
# Writers of single files
# ---------------------------------------------------------------------------------------


def write_gnd_pickle(path, imlist: list[str], qimlist: list[str], gnd: list[dict]) -> Path:
    """Revisited ground truth, exactly as gnd_roxford5k.pkl: a pickled plain dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "imlist": list(imlist),
        "qimlist": list(qimlist),
        "gnd": [
            {
                "easy": [int(v) for v in g.get("easy", [])],
                "hard": [int(v) for v in g.get("hard", [])],
                "junk": [int(v) for v in g.get("junk", [])],
                "bbx": [float(v) for v in g.get("bbx", [0.0, 0.0, 1.0, 1.0])],
            }
            for g in gnd
        ],
    }
    with open(path, "wb") as f:
        pickle.dump(payload, f)
    return path


def labelme_document(shapes, width: int, height: int, image_path: str = "image.jpg") -> dict:
    """A labelme 4.5.6 document with one polygon shape per entry of ``shapes``."""
    return {
        "version": "4.5.6",
        "flags": {},
        "shapes": [
            {
                "label": "object",
                "points": [[float(x), float(y)] for x, y in shape],
                "group_id": None,
                "shape_type": "polygon",
                "flags": {},
            }
            for shape in shapes
        ],
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }


def write_labelme(path, shapes, width: int, height: int, image_path: str = "image.jpg") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(labelme_document(shapes, width, height, image_path), f, indent=2)
    return path


def write_pair2labelpath(path, mapping: dict[str, str]) -> Path:
    """np.save of a dict "q_i" -> label path (relative to the labels folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, dict(mapping), allow_pickle=True)
    return path


def match_key(q: int, i: int) -> str:
    return f"qimlist_{q}_imlist_{i}"


def write_matching_result(path, matches: dict[str, object]) -> Path:
    """np.save of a dict "qimlist_{q}_imlist_{i}" -> np.array([[x, y], ...]) or []."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, dict(matches), allow_pickle=True)
    return path


def write_ranks(path, ranks) -> Path:
    """(n_db, n_queries) integer ranks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(ranks))
    return path


def write_embeddings(path, embeddings) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(embeddings))
    return path


def write_indices(path, indices) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(indices))
    return path


def write_tiny_jpeg(path, size: int = 8, color=(128, 64, 32)) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path, format="JPEG")
    return path


# ---------------------------------------------------------------------------------------
# GPR1200
# ---------------------------------------------------------------------------------------


def gpr_file_order(file_names: list[str]) -> list[str]:
    """Protocol order: by integer category (the prefix before the first "_"), then by
    file name."""
    return sorted(file_names, key=lambda name: (int(name.split("_", 1)[0]), name))


def write_gpr_images(folder, n_categories: int, per_category: int, rng=None) -> list[str]:
    """images/{category}_{name}.jpg; returns the file names in protocol order.

    Names are shuffled on purpose so that directory order, creation order and protocol
    order all differ; categories are 0..n_categories-1 (so "10_..." sorts after "9_..."
    only numerically).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for c in range(n_categories):
        for k in range(per_category):
            names.append(f"{c}_img{int(rng.integers(0, 10**6)):06d}x{k}.jpg")
    for idx in rng.permutation(len(names)):
        name = names[idx]
        write_tiny_jpeg(folder / name, color=(int(idx) % 256, 0, 0))
    return gpr_file_order(names)


def gpr_labels_from_names(ordered_names: list[str]) -> list[int]:
    return [int(name.split("_", 1)[0]) for name in ordered_names]


# ---------------------------------------------------------------------------------------
# Random ground truth and ranks (Revisited)
# ---------------------------------------------------------------------------------------


def make_random_gnd(
    rng,
    n_q: int,
    n_db: int,
    *,
    max_easy: int = 5,
    max_hard: int = 5,
    max_junk: int = 5,
    p_empty: float = 0.0,
    min_easy: int = 0,
    min_hard: int = 0,
) -> list[dict]:
    """One dict per query with disjoint easy, hard, junk lists of database indices and a
    query box. With probability p_empty a query gets no easy and no hard positives."""
    gnd = []
    for _ in range(n_q):
        n_e = int(rng.integers(min_easy, max_easy + 1))
        n_h = int(rng.integers(min_hard, max_hard + 1))
        n_j = int(rng.integers(0, max_junk + 1))
        if rng.random() < p_empty:
            n_e = n_h = 0
        total = min(n_db, n_e + n_h + n_j)
        chosen = [int(v) for v in rng.choice(n_db, size=total, replace=False)]
        easy = chosen[:n_e]
        hard = chosen[n_e : n_e + n_h]
        junk = chosen[n_e + n_h :]
        x1, y1 = rng.uniform(0, 50, size=2)
        gnd.append(
            {
                "easy": sorted(easy),
                "hard": sorted(hard),
                "junk": sorted(junk),
                "bbx": [float(x1), float(y1), float(x1 + 20.5), float(y1 + 10.25)],
            }
        )
    return gnd


def make_random_ranks(rng, n_db: int, n_q: int, *, n_rows: int | None = None, n_extra: int = 0):
    """(n_rows, n_q) ranks: per column a random ordering of a subset of
    range(n_db + n_extra) (indices >= n_db are distractors). n_rows < n_db + n_extra
    makes a truncated ranking; it then draws from range(max(n_rows, n_db)), the indices
    docs/PROTOCOLS.md section 1 allows in a file of n_rows rows."""
    total = n_db + n_extra
    n_rows = total if n_rows is None else n_rows
    universe = total if n_rows >= total else max(n_rows, n_db)
    ranks = np.empty((n_rows, n_q), dtype=np.int64)
    for q in range(n_q):
        ranks[:, q] = rng.permutation(universe)[:n_rows]
    return ranks


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{k:04d}" for k in range(n)]


# ---------------------------------------------------------------------------------------
# Random polygons and predictions
# ---------------------------------------------------------------------------------------


def random_star_polygon(rng, cx: float, cy: float, radius: float, n_vertices: int,
                        concave: bool) -> np.ndarray:
    """A simple (non-self-intersecting) polygon: vertices at increasing angles around
    (cx, cy); with concave=True the radii vary a lot, which makes reflex vertices."""
    angles = np.sort(rng.uniform(0, 2 * math.pi, size=n_vertices))
    # keep angles distinct enough that the polygon stays simple after rounding
    angles = angles + np.arange(n_vertices) * 1e-3
    if concave:
        radii = radius * rng.uniform(0.25, 1.0, size=n_vertices)
    else:
        radii = radius * rng.uniform(0.85, 1.0, size=n_vertices)
    xs = cx + radii * np.cos(angles)
    ys = cy + radii * np.sin(angles)
    return np.round(np.stack([xs, ys], axis=1), 2)


def box_corners(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def random_gt_shapes(rng, width: int, height: int) -> list[np.ndarray]:
    """1-3 polygons inside (or touching) a width x height image, float coordinates."""
    shapes = []
    for _ in range(int(rng.integers(1, 4))):
        radius = float(rng.uniform(3, max(4.0, min(width, height) / 2.5)))
        cx = float(rng.uniform(radius * 0.5, width - radius * 0.5))
        cy = float(rng.uniform(radius * 0.5, height - radius * 0.5))
        n_v = int(rng.integers(3, 11))
        poly = random_star_polygon(rng, cx, cy, radius, n_v, concave=bool(rng.random() < 0.5))
        poly[:, 0] = np.clip(poly[:, 0], -0.9, width)
        poly[:, 1] = np.clip(poly[:, 1], -0.9, height)
        shapes.append(poly)
    return shapes


def random_prediction(rng, width: int, height: int, gt_shapes) -> tuple[str, np.ndarray | None]:
    """(kind, points): kind in missing, empty, box, near, polygon, offcanvas, negative.

    missing -> no key in the matching result; empty -> []; others -> (n, 2) points.
    """
    kind = rng.choice(
        ["missing", "empty", "box", "near", "polygon", "offcanvas", "negative"],
        p=[0.12, 0.08, 0.2, 0.3, 0.1, 0.1, 0.1],
    )
    kind = str(kind)
    if kind in ("missing", "empty"):
        return kind, None
    gt_all = np.concatenate(gt_shapes)
    gx0, gy0 = gt_all.min(axis=0)
    gx1, gy1 = gt_all.max(axis=0)
    if kind == "box":
        jitter = rng.uniform(-4, 4, size=4)
        return kind, np.round(box_corners(gx0 + jitter[0], gy0 + jitter[1],
                                          gx1 + jitter[2], gy1 + jitter[3]), 2)
    if kind == "near":
        base = gt_shapes[int(rng.integers(len(gt_shapes)))]
        return kind, np.round(base + rng.uniform(-3, 3, size=base.shape), 2)
    if kind == "polygon":
        radius = float(rng.uniform(3, max(4.0, min(width, height) / 2)))
        return kind, random_star_polygon(
            rng, float(rng.uniform(0, width)), float(rng.uniform(0, height)), radius,
            int(rng.integers(3, 12)), concave=bool(rng.random() < 0.5))
    if kind == "offcanvas":
        # reaches beyond the image (and beyond every ground-truth coordinate)
        radius = float(rng.uniform(5, max(6.0, min(width, height) / 2)))
        return kind, random_star_polygon(
            rng, float(width * rng.uniform(0.8, 1.3)), float(height * rng.uniform(0.8, 1.3)),
            radius, int(rng.integers(3, 9)), concave=bool(rng.random() < 0.5))
    # negative: straddles the top-left corner, with coordinates in (-1, 0) and below
    radius = float(rng.uniform(5, max(6.0, min(width, height) / 2)))
    poly = random_star_polygon(rng, float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5)),
                               radius, int(rng.integers(3, 9)), concave=bool(rng.random() < 0.5))
    poly[0] = [-0.5, -0.75]
    return kind, poly


# ---------------------------------------------------------------------------------------
# Whole benchmarks on disk
# ---------------------------------------------------------------------------------------


@dataclass
class PixelBenchmark:
    """A PROxford/PRParis-format benchmark on disk plus the in-memory truth."""

    root: Path  # the folder holding pixel_retrieval_benchmarks/ and results/
    labels_root: Path  # <root>/pixel_retrieval_benchmarks (label paths are relative to it)
    gnd_path: Path
    pair_labels_path: Path
    matches_path: Path
    ranks_path: Path
    method: str
    dataset: str  # "oxford" or "paris"
    imlist: list[str]
    qimlist: list[str]
    gnd: list[dict]
    gt: dict = field(default_factory=dict)  # (q, i) -> list of (m, 2) float arrays
    image_sizes: dict = field(default_factory=dict)  # (q, i) -> (width, height)
    db_sizes: list = field(default_factory=list)  # i -> (width, height)
    preds: dict = field(default_factory=dict)  # (q, i) -> (n, 2) array, or None
    pred_kinds: dict = field(default_factory=dict)  # (q, i) -> kind string
    matches: dict = field(default_factory=dict)  # exactly what was saved
    ranks: np.ndarray | None = None

    @property
    def benchmark(self) -> str:
        return DATASETS[self.dataset][2]

    def pairs(self):
        """Every easy or hard pair (q, i)."""
        for q, g in enumerate(self.gnd):
            for i in list(g["easy"]) + list(g["hard"]):
                yield q, int(i)


def write_released_layout(
    root,
    *,
    dataset: str,
    method: str,
    imlist,
    qimlist,
    gnd,
    ranks,
    gt: dict,
    db_sizes: list,
    matches: dict,
) -> dict[str, Path]:
    """Write the released code's layout under ``root``:

    root/pixel_retrieval_benchmarks/revisitop/data/roxford5k/gnd_roxford5k.pkl
    root/pixel_retrieval_benchmarks/oxford_pair2labelpath.npy
    root/pixel_retrieval_benchmarks/oxford_labels/<q>_<i>.json   (paths in the .npy are
                                                                 relative to ..._benchmarks/)
    root/results/image-level/<method>/roxford.npy
    root/results/pixel-level/<method>/matching_result/proxford.npy
    """
    root = Path(root)
    folder, image_stem, pixel_stem = DATASETS[dataset]
    labels_root = root / "pixel_retrieval_benchmarks"
    gnd_path = write_gnd_pickle(
        labels_root / "revisitop" / "data" / folder / f"gnd_{folder}.pkl", imlist, qimlist, gnd)
    mapping = {}
    for (q, i), shapes in gt.items():
        rel = f"{dataset}_labels/{qimlist[q]}_{imlist[i]}.json"
        w, h = db_sizes[i]
        write_labelme(labels_root / rel, shapes, w, h, image_path=f"../jpg/{imlist[i]}.jpg")
        mapping[f"{q}_{i}"] = rel
    pair_labels_path = write_pair2labelpath(labels_root / f"{dataset}_pair2labelpath.npy",
                                            mapping)
    ranks_path = write_ranks(root / "results" / "image-level" / method / f"{image_stem}.npy",
                             ranks)
    matches_path = write_matching_result(
        root / "results" / "pixel-level" / method / "matching_result" / f"{pixel_stem}.npy",
        matches)
    return {
        "root": root,
        "labels_root": labels_root,
        "gnd_path": gnd_path,
        "pair_labels_path": pair_labels_path,
        "ranks_path": ranks_path,
        "matches_path": matches_path,
    }


def make_random_pixel_benchmark(
    rng,
    root,
    n_q: int,
    n_db: int,
    *,
    dataset: str = "oxford",
    method: str = "randmethod",
    min_size: int = 20,
    max_size: int = 90,
    max_easy: int = 4,
    max_hard: int = 4,
    max_junk: int = 3,
    min_easy: int = 1,
    min_hard: int = 1,
    n_extra_keys: int = 3,
) -> PixelBenchmark:
    """Write a whole consistent small PROxford-format benchmark under ``root``.

    Database image i has a random size (width, height); every easy or hard pair gets a
    labelme file with 1-3 polygons (some concave, some touching the border, float
    coordinates that truncation moves); predictions are a mix of missing keys, empty
    lists, boxes, polygons near the truth, random polygons, polygons reaching beyond the
    image (so S grows past the ground truth) and polygons with negative coordinates.
    A few extra keys for pairs that are neither easy nor hard are added (they must be
    ignored). Ranks are random full permutations of the database.
    """
    root = Path(root)
    imlist = names("db", n_db)
    qimlist = names("query", n_q)
    gnd = make_random_gnd(rng, n_q, n_db, max_easy=max_easy, max_hard=max_hard,
                          max_junk=max_junk, min_easy=min_easy, min_hard=min_hard)
    db_sizes = [(int(rng.integers(min_size, max_size + 1)),
                 int(rng.integers(min_size, max_size + 1))) for _ in range(n_db)]
    gt, image_sizes, preds, kinds, matches = {}, {}, {}, {}, {}
    for q, g in enumerate(gnd):
        for i in list(g["easy"]) + list(g["hard"]):
            w, h = db_sizes[i]
            shapes = random_gt_shapes(rng, w, h)
            gt[(q, i)] = shapes
            image_sizes[(q, i)] = (w, h)
            kind, points = random_prediction(rng, w, h, shapes)
            kinds[(q, i)] = kind
            preds[(q, i)] = points
            if kind == "empty":
                matches[match_key(q, i)] = []
            elif kind != "missing":
                matches[match_key(q, i)] = points
    pair_set = set(gt)
    added = 0
    while added < n_extra_keys and n_q * n_db > len(pair_set) + added:
        q, i = int(rng.integers(n_q)), int(rng.integers(n_db))
        if (q, i) in pair_set or match_key(q, i) in matches:
            continue
        matches[match_key(q, i)] = box_corners(1, 1, 5, 5)
        added += 1
    ranks = make_random_ranks(rng, n_db, n_q)
    paths = write_released_layout(root, dataset=dataset, method=method, imlist=imlist,
                                  qimlist=qimlist, gnd=gnd, ranks=ranks, gt=gt,
                                  db_sizes=db_sizes, matches=matches)
    return PixelBenchmark(
        root=paths["root"], labels_root=paths["labels_root"], gnd_path=paths["gnd_path"],
        pair_labels_path=paths["pair_labels_path"], matches_path=paths["matches_path"],
        ranks_path=paths["ranks_path"], method=method, dataset=dataset, imlist=imlist,
        qimlist=qimlist, gnd=gnd, gt=gt, image_sizes=image_sizes, db_sizes=db_sizes,
        preds=preds, pred_kinds=kinds, matches=matches, ranks=ranks)


@dataclass
class RevisitedFiles:
    gnd_path: Path
    ranks_path: Path
    imlist: list[str]
    qimlist: list[str]
    gnd: list[dict]
    ranks: np.ndarray


def make_random_revisited(rng, folder, n_q: int, n_db: int, *, n_rows: int | None = None,
                          n_extra: int = 0, p_empty: float = 0.1,
                          dtype=np.int64) -> RevisitedFiles:
    """gnd_roxford5k.pkl + ranks .npy in ``folder`` with random content."""
    folder = Path(folder)
    imlist = names("db", n_db)
    qimlist = names("query", n_q)
    gnd = make_random_gnd(rng, n_q, n_db, p_empty=p_empty)
    ranks = make_random_ranks(rng, n_db, n_q, n_rows=n_rows, n_extra=n_extra).astype(dtype)
    gnd_path = write_gnd_pickle(folder / "gnd_roxford5k.pkl", imlist, qimlist, gnd)
    ranks_path = write_ranks(folder / "ranks.npy", ranks)
    return RevisitedFiles(gnd_path, ranks_path, imlist, qimlist, gnd, ranks)


def write_constant_png(path, width: int, height: int, *, channels: int = 4,
                       level: int = 9) -> Path:
    """A PNG of one constant (zero) colour written with zlib, row by row, so it is small on
    disk however many pixels it has: 13000 x 13000 RGBA is about 657 KB (issue 19's
    decompression-size case). *channels*: 1 (grey), 3 (RGB) or 4 (RGBA), 8 bits each."""
    import struct
    import zlib

    color_type = {1: 0, 3: 2, 4: 6}[channels]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" * (1 + width * channels)  # filter byte 0, then zero samples
    per_block = max(1, (1 << 24) // len(row))
    co = zlib.compressobj(level)
    parts, left = [], height
    while left:
        n = min(per_block, left)
        parts.append(co.compress(row * n))
        left -= n
    parts.append(co.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path
