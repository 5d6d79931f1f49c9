"""A synthetic Revisited-style dataset for the user-study design and model tests
(docs/PROTOCOLS.md §7): many queries, ground-truth regions of random size and place on
images of different sizes, a method that predicts a region on part of the positives and
on some hard negatives, and hard-negative rankings. Seeded: the same data every run."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from bench.formats.revisited import load_gnd


def quad(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A random convex quadrilateral inside a w x h image (an axis-aligned box with
    jittered corners), 2-40% of the image's width and height."""
    bw, bh = rng.uniform(0.1, 0.6) * w, rng.uniform(0.1, 0.6) * h
    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    pts = np.array([[x0, y0], [x0 + bw, y0], [x0 + bw, y0 + bh], [x0, y0 + bh]])
    return pts + rng.uniform(-0.05, 0.05, size=(4, 2)) * [bw, bh]


def polygon_area(p: np.ndarray) -> float:
    """Shoelace area of one simple polygon (written here, independent of bench)."""
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def synthetic(tmp_path: Path, *, n_queries: int = 70, n_db: int = 400, seed: int = 3,
              pred_share: float = 0.7, own_negative_share: float = 0.5) -> dict:
    """The dataset: per query 4 easy, 3 hard, 1 junk; method ``m1`` predicts a region on
    *pred_share* of the positives and on the first hard negative of *own_negative_share*
    of the queries; ``hard[q]`` lists (i, rank) of 10 top-ranked images of which the
    first 3 are positives and the rest negatives."""
    rng = np.random.default_rng(seed)
    sizes = {i: (int(rng.integers(700, 1300)), int(rng.integers(500, 1000)))
             for i in range(n_db)}
    g, hard = [], {}
    for q in range(n_queries):
        idx = rng.permutation(n_db)
        g.append({"easy": idx[:4].tolist(), "hard": idx[4:7].tolist(),
                  "junk": idx[7:8].tolist(), "bbx": [1.0, 2.0, 30.0, 40.0]})
        hard[q] = [(int(i), r) for r, i in enumerate(idx[[0, 4, 1] + list(range(8, 15))])]
    path = tmp_path / f"gnd_rsyn{n_queries}.pkl"
    with open(path, "wb") as f:
        pickle.dump({"imlist": [f"db{k}" for k in range(n_db)],
                     "qimlist": [f"q{k}" for k in range(n_queries)], "gnd": g}, f)
    gnd = load_gnd(path)
    pos = sorted((q, int(i)) for q in range(n_queries) for i in g[q]["easy"] + g[q]["hard"])
    gt = {p: [quad(rng, *sizes[p[1]])] for p in pos}
    m1 = {p: (quad(rng, *sizes[p[1]]) if rng.random() < pred_share else None) for p in pos}
    for q in range(n_queries):
        if rng.random() < own_negative_share:
            i = hard[q][3][0]  # the best-ranked negative
            m1[(q, i)] = quad(rng, *sizes[i])
    ious = {"m1": {p: (0.6, 0.55) if m1[p] is not None else (0.0, 0.0) for p in pos}}
    return {"gnd": gnd, "g": g, "gt": gt, "preds": {"m1": m1}, "ious": ious, "pos": pos,
            "sizes": sizes, "hard": hard}
