"""Write a synthetic benchmark at the real size, in the layout the released code ships.

    .venv/bin/python benchmarks/make_realsize.py [--out DIR] [--quick] [--images N]
                                                 [--seed S] [--force] [--json]

For the app and engine benchmarks: the files have the sizes and formats of the real
downloads (ROxford5k + R1M + PROxford), their contents are made up (seeded, so every run
writes the same bytes). **No number computed on it says anything about a real method.**

```
DIR/pixel_retrieval_benchmarks/revisitop/data/roxford5k/gnd_roxford5k.pkl
        70 queries, 4,993 database names like the real ones (all_souls_000013, ...),
        easy / hard / junk lists (about 1,000 easy + hard pairs in all; some queries
        without easy positives; each query's own image is junk), query boxes
DIR/pixel_retrieval_benchmarks/revisitop/data/revisitop1m.txt
        1,001,001 relative jpg paths (the R1M distractors)
DIR/pixel_retrieval_benchmarks/oxford_pair2labelpath.npy    "q_i" -> oxford/<q>/<name>.json
DIR/pixel_retrieval_benchmarks/oxford/<q>/<name>.json       labelme, 6-30 vertex polygons
        on ~1024 x 768 images, some with two shapes; imageWidth / imageHeight set
DIR/pixel_retrieval_benchmarks/queries/oxford/<q>.json      the query box as a labelme polygon
DIR/results/image-level/plain/roxford.npy                    4,993 x 70 int32 ranks
DIR/results/pixel-level/plain/matching_result/proxford.npy   boxes and polygons, some missing
DIR/results/image-level/withr1m/roxford.npy                  a better method: 4,993 x 70
DIR/results/image-level/withr1m/R1Moxford.npy                1,004,993 x 70 int32 (281 MB)
DIR/results/pixel-level/withr1m/matching_result/proxford.npy
DIR/results/pixel-level/withr1m/matching_result/pR1Moxford.npy
```

The R1M ranks have 1,004,993 rows (``imlist`` and the first 1,000,000 distractors: the size
the engine benchmark and README quote); the last 1,001 lines of ``revisitop1m.txt`` are
absent from the ranking, which the evaluation allows (a truncated ranking). Each R1M
column is a fixed random permutation of the rows rolled by a per-query shift, with the top
of the method's 5k ranking swapped into the first positions and a query-dependent number
of distractors between them: no sort over a million rows.

``--images N`` also writes JPEGs (at the size the labels declare, drawn at 256 px and
scaled up): the query images, the first N database images, and the distractors among the
first 20 results of the first five queries (``revisitop/data/jpg/<line>``).
``pR1Moxford.npy`` holds the 5k pairs' predictions and those of top-ranked database images;
``--distractor-keys`` adds predictions keyed on distractor indices (a method that localises
in its R1M top results would write them; ``bench.formats.pixel.load_matches`` refuses keys
past ``imlist`` at present). ``--quick``: 1,000 database images, about 300 pairs, 3,001 distractor lines and
2,000 ranked distractors (for tests).

The folder is written beside DIR under a temporary name and renamed into place at the
end; a finished folder holds ``realsize.json`` (parameters and files). Run again with the
same parameters, it is found and kept; ``--force`` rebuilds it. A folder without
``realsize.json`` is never replaced. Default DIR: ``$XDG_CACHE_HOME`` (or ``~/.cache``)
``/bench-workbench/realsize-v1`` (``realsize-quick-v1`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

VERSION = 1
DATASET, SHORT = "roxford5k", "oxford"
MARKER = "realsize.json"
LANDMARKS = ["all_souls", "ashmolean", "balliol", "bodleian", "christ_church", "cornmarket",
             "hertford", "keble", "magdalen", "pitt_rivers", "radcliffe_camera"]
# queries per landmark (70 in all, as ROxford5k)
QUERIES = [8, 6, 5, 7, 8, 5, 6, 6, 5, 5, 9]
SIZES = [(1024, 768)] * 14 + [(768, 1024)] * 5 + [(1024, 683), (683, 1024), (1024, 576),
                                                  (1024, 680), (765, 1024), (1024, 1024)]


@dataclass(frozen=True)
class Params:
    n_q: int = 70
    n_db: int = 4_993
    pairs: int = 1_000  # easy + hard pairs in all (about)
    distractor_lines: int = 1_001_001
    ranked_distractors: int = 1_000_000
    images: int = 0
    seed: int = 0
    distractor_keys: bool = False  # pR1Moxford.npy keys on distractor indices too
    version: int = VERSION


def quick_params(seed: int = 0, images: int = 0, distractor_keys: bool = False) -> Params:
    return Params(n_db=1_000, pairs=300, distractor_lines=3_001, ranked_distractors=2_000,
                  images=images, seed=seed, distractor_keys=distractor_keys)


# ---------------------------------------------------------------- ground truth

def make_names(rng: np.random.Generator, n_db: int) -> tuple[list[str], np.ndarray]:
    """Database names like Oxford 5k's: <landmark>_<6 digits> for about a quarter of them
    (landmark id per image), the rest oxford_<6 digits> (landmark -1)."""
    per = np.maximum(rng.multinomial(int(n_db * 0.26), np.full(len(LANDMARKS),
                                                                1 / len(LANDMARKS))), 30)
    names, lm = [], []
    for k, (name, n) in enumerate(zip(LANDMARKS, per, strict=True)):
        nums = np.sort(rng.choice(999_999, size=int(n), replace=False)) + 1
        names += [f"{name}_{v:06d}" for v in nums]
        lm += [k] * int(n)
    rest = n_db - len(names)
    nums = np.sort(rng.choice(999_999, size=rest, replace=False)) + 1
    names += [f"oxford_{v:06d}" for v in nums]
    lm += [-1] * rest
    return names, np.asarray(lm)


def make_gnd(rng: np.random.Generator, p: Params, names: list[str], lm: np.ndarray,
             sizes: list[tuple[int, int]]) -> tuple[list[str], list[dict], list[int]]:
    """qimlist, gnd (easy/hard/junk/bbx per query) and the query's own database index."""
    qlm = np.repeat(np.arange(len(LANDMARKS)), QUERIES)[: p.n_q]
    if qlm.size < p.n_q:
        qlm = np.concatenate([qlm, rng.integers(0, len(LANDMARKS), p.n_q - qlm.size)])
    # positives per query: skewed (a few queries have many), scaled to about p.pairs
    raw = rng.lognormal(0.0, 0.8, p.n_q)
    n_pos = np.maximum(np.round(raw / raw.sum() * p.pairs).astype(int), 2)
    qimlist, gnd, own = [], [], []
    for q in range(p.n_q):
        pool = np.flatnonzero(lm == qlm[q])
        me = int(rng.choice(pool))
        pool = pool[pool != me]
        npos = int(min(n_pos[q], pool.size - 3))
        chosen = rng.permutation(pool)
        pos = chosen[:npos]
        # some queries without easy positives (as in ROxford, whose easy setup skips them)
        n_easy = 0 if q % 23 == 5 else int(round(npos * rng.uniform(0.2, 0.7)))
        easy, hard = np.sort(pos[:n_easy]), np.sort(pos[n_easy:])
        n_junk = int(rng.integers(3, 25))
        junk_pool = np.concatenate([chosen[npos:npos + n_junk // 2],
                                    rng.choice(np.flatnonzero(lm == -1), n_junk - n_junk // 2,
                                               replace=False)])
        junk = np.sort(np.unique(np.concatenate([junk_pool, [me]])))
        w, h = sizes[me]
        bw, bh = rng.uniform(0.25, 0.7) * w, rng.uniform(0.25, 0.7) * h
        x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        bbx = np.round(np.array([x1, y1, x1 + bw, y1 + bh]), 1)
        qimlist.append(names[me])
        gnd.append({"bbx": bbx, "easy": easy.tolist(), "hard": hard.tolist(),
                    "junk": junk.tolist()})
        own.append(me)
    return qimlist, gnd, own


def star_polygon(rng: np.random.Generator, cx: float, cy: float, r: float, n: int
                 ) -> np.ndarray:
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.55, 1.0, n)
    return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang) * rng.uniform(0.7, 1.0)],
                    axis=1)


def gt_shapes(rng: np.random.Generator, w: int, h: int) -> list[np.ndarray]:
    """1 polygon (2 for about one pair in eight), 6-30 vertices, inside the image."""
    out = []
    for k in range(1 if rng.random() > 0.12 else 2):
        r = min(w, h) * (rng.uniform(0.12, 0.4) if k == 0 else rng.uniform(0.06, 0.15))
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        poly = star_polygon(rng, cx, cy, r, int(rng.integers(6, 31)))
        poly[:, 0] = np.clip(poly[:, 0], 0, w - 1)
        poly[:, 1] = np.clip(poly[:, 1], 0, h - 1)
        out.append(np.round(poly, 2))
    return out


def labelme(shapes: list[np.ndarray], w: int, h: int, image_path: str, label: str) -> str:
    doc = {"version": "4.5.6", "flags": {},
           "shapes": [{"label": label, "points": s.tolist(), "group_id": None,
                       "shape_type": "polygon", "flags": {}} for s in shapes],
           "imagePath": image_path, "imageData": None, "imageHeight": int(h),
           "imageWidth": int(w)}
    return json.dumps(doc)


# ---------------------------------------------------------------- methods

def predict(rng: np.random.Generator, shapes: list[np.ndarray], w: int, h: int,
            quality: float) -> np.ndarray | list | None:
    """A prediction for one pair: None (missing key), [] (empty), a box or a polygon near
    the truth (worse with lower *quality*), or a wrong region."""
    u = rng.random()
    if u < 0.12 * (1.2 - quality):
        return None
    if u < 0.16 * (1.2 - quality):
        return []
    pts = np.concatenate(shapes)
    x1, y1 = pts.min(axis=0)
    x2, y2 = pts.max(axis=0)
    sw, sh = x2 - x1, y2 - y1
    if rng.random() < 0.1 * (1.5 - quality):  # somewhere else
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        return np.round(star_polygon(rng, cx, cy, min(w, h) * 0.15, 8), 1)
    noise = (1.05 - quality) * 0.35
    if rng.random() < 0.55 - 0.25 * quality:  # a box (its 4 corners)
        dx1, dy1, dx2, dy2 = rng.normal(0, noise, 4) * np.array([sw, sh, sw, sh])
        bx1, by1, bx2, by2 = x1 + dx1, y1 + dy1, x2 + dx2, y2 + dy2
        return np.round(np.array([[bx1, by1], [bx2, by1], [bx2, by2], [bx1, by2]]), 1)
    s = shapes[0]
    c = s.mean(axis=0)
    scale = 1 + rng.normal(0, noise)
    shift = rng.normal(0, noise * 0.5, 2) * np.array([sw, sh])
    poly = (s - c) * scale + c + shift + rng.normal(0, 0.02 * max(sw, sh), s.shape)
    return np.round(poly, 1)


def ranks_5k(rng: np.random.Generator, n_db: int, gnd: list[dict], lm: np.ndarray,
             qlm: list[int], quality: float) -> np.ndarray:
    """(n_db, n_q) int32: argsort of noisy scores, positives lifted by *quality*."""
    cols = []
    for q, g in enumerate(gnd):
        s = rng.normal(0, 1, n_db)
        s[lm == qlm[q]] += 0.6 * quality
        s[g["easy"]] += rng.normal(2.0 + 3.5 * quality, 1.0, len(g["easy"]))
        s[g["hard"]] += rng.normal(1.0 + 3.0 * quality, 1.4, len(g["hard"]))
        s[g["junk"]] += rng.normal(2.0, 1.0, len(g["junk"]))
        cols.append(np.argsort(-s, kind="stable"))
    return np.stack(cols, axis=1).astype(np.int32)


def write_r1m_ranks(path: Path, rng: np.random.Generator, r5k: np.ndarray, n_rows: int,
                    head: int = 400, chunk: int = 1 << 16) -> None:
    """(n_rows, n_q) int32 ranks over imlist + distractors, written in row chunks.

    Column q = P rolled by s_q (P a fixed random permutation of range(n_rows)), then the
    first *head* images of the 5k ranking column are swapped to positions that leave
    Poisson(lambda_q) distractors between consecutive ones. Swaps keep every column a
    permutation."""
    n_db, n_q = r5k.shape
    perm = rng.permutation(n_rows).astype(np.int32)
    inv = np.empty(n_rows, dtype=np.int64)
    inv[perm] = np.arange(n_rows)
    shift = rng.integers(0, n_rows, n_q)
    rows_all, cols_all, vals_all = [], [], []
    for q in range(n_q):
        s = int(shift[q])
        lam = float(rng.uniform(0.02, 0.6))
        items = r5k[:head, q].astype(np.int64)
        targets = np.arange(items.size) + np.cumsum(rng.poisson(lam, items.size))
        val_at: dict[int, int] = {}
        pos_of: dict[int, int] = {}
        for t, item in zip(targets.tolist(), items.tolist(), strict=True):
            if t >= n_rows:
                break
            p_item = pos_of.get(item, (int(inv[item]) + s) % n_rows)
            v_t = val_at.get(t, int(perm[(t - s) % n_rows]))
            if p_item == t:
                continue
            val_at[t], val_at[p_item] = item, v_t
            pos_of[item], pos_of[v_t] = t, p_item
        rows_all.append(np.fromiter(val_at.keys(), np.int64, len(val_at)))
        vals_all.append(np.fromiter(val_at.values(), np.int64, len(val_at)))
        cols_all.append(np.full(len(val_at), q, dtype=np.int64))
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.int32, shape=(n_rows, n_q))
    for r0 in range(0, n_rows, chunk):
        r1 = min(r0 + chunk, n_rows)
        idx = (np.arange(r0, r1)[:, None] - shift[None, :]) % n_rows
        mm[r0:r1] = perm[idx]
    mm[np.concatenate(rows_all), np.concatenate(cols_all)] = np.concatenate(vals_all)
    mm.flush()
    del mm


def write_distractor_list(path: Path, rng: np.random.Generator, n: int) -> list[str]:
    """n lines ``<2 hex>/<32 hex>.jpg``; returns the first 64 for checks."""
    lut = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((n, 40), dtype=np.uint8)
    step = 200_000
    with open(path, "wb") as f:
        for a in range(0, n, step):
            b = min(a + step, n)
            hx = lut[rng.integers(0, 16, (b - a, 32), dtype=np.uint8)]
            blk = out[: b - a]
            blk[:, 0:2] = hx[:, 0:2]
            blk[:, 2] = ord("/")
            blk[:, 3:35] = hx
            blk[:, 35:39] = np.frombuffer(b".jpg", dtype=np.uint8)
            blk[:, 39] = 10
            f.write(blk.tobytes())
    with open(path, "rb") as f:
        return [line.decode().strip() for _, line in zip(range(64), f, strict=False)]


# ---------------------------------------------------------------- images

def write_jpeg(path: Path, rng: np.random.Generator, w: int, h: int,
               shapes: list[np.ndarray] | None = None, box=None, color=(200, 120, 40)) -> None:
    """Noise and a few shapes drawn at 256 px, scaled to w x h; the object region (shapes
    or box, in w x h coordinates) is filled with *color* so overlays land on it."""
    from PIL import Image, ImageDraw

    k = 256 / max(w, h)
    sw, sh = max(int(round(w * k)), 1), max(int(round(h * k)), 1)
    base = rng.integers(60, 190, 3)
    grad = np.linspace(0.7, 1.2, sh)[:, None, None]
    arr = np.clip(base[None, None, :] * grad + rng.normal(0, 18, (sh, sw, 3)), 0, 255)
    img = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):
        x, y = rng.uniform(0, sw), rng.uniform(0, sh)
        r = rng.uniform(8, 50)
        d.ellipse([x - r, y - r, x + r, y + r * rng.uniform(0.5, 1.5)],
                  fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    for s in shapes or []:
        d.polygon([(float(x) * k, float(y) * k) for x, y in s], fill=color, outline=(0, 0, 0))
    if box is not None:
        x1, y1, x2, y2 = (float(v) * k for v in box)
        d.rectangle([x1, y1, x2, y2], fill=color, outline=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.resize((w, h), Image.BILINEAR).save(path, quality=85)


# ---------------------------------------------------------------- the build

def default_out(quick: bool) -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    name = f"realsize-quick-v{VERSION}" if quick else f"realsize-v{VERSION}"
    return Path(cache).expanduser() / "bench-workbench" / name


def _save_dict(path: Path, d: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, d, allow_pickle=True)


def build(tmp: Path, p: Params, log=print) -> dict:
    """Write everything under *tmp*; return the paths (relative to *tmp*) and timings."""
    rng = np.random.default_rng(p.seed)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    prb = tmp / "pixel_retrieval_benchmarks"
    data = prb / "revisitop" / "data"
    gdir = data / DATASET
    gdir.mkdir(parents=True)

    names, lm = make_names(rng, p.n_db)
    sizes = [SIZES[int(i)] for i in rng.integers(0, len(SIZES), p.n_db)]
    qimlist, gnd, own = make_gnd(rng, p, names, lm, sizes)
    qlm = [int(lm[i]) for i in own]
    with open(gdir / f"gnd_{DATASET}.pkl", "wb") as f:
        pickle.dump({"imlist": names, "qimlist": qimlist, "gnd": gnd}, f)
    n_pairs = sum(len(g["easy"]) + len(g["hard"]) for g in gnd)

    # pixel labels
    mapping: dict[str, str] = {}
    shapes_of: dict[tuple[int, int], list[np.ndarray]] = {}
    for q, g in enumerate(gnd):
        (prb / SHORT / str(q)).mkdir(parents=True, exist_ok=True)
        for i in sorted(g["easy"] + g["hard"]):
            w, h = sizes[i]
            shapes = gt_shapes(rng, w, h)
            shapes_of[(q, i)] = shapes
            rel = f"{SHORT}/{q}/{names[i]}.json"
            (prb / rel).write_text(labelme(shapes, w, h,
                                           f"../../revisitop/data/{DATASET}/jpg/{names[i]}.jpg",
                                           LANDMARKS[qlm[q]]))
            mapping[f"{q}_{i}"] = rel
        w, h = sizes[own[q]]
        x1, y1, x2, y2 = gnd[q]["bbx"].tolist()
        qdoc = labelme([np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])], w, h,
                       f"../../../revisitop/data/{DATASET}/jpg/{qimlist[q]}.jpg", "query")
        (prb / "queries" / SHORT).mkdir(parents=True, exist_ok=True)
        (prb / "queries" / SHORT / f"{q}.json").write_text(qdoc)
    _save_dict(prb / f"{SHORT}_pair2labelpath.npy", mapping)
    timings["gnd + labels"] = time.perf_counter() - t0

    # methods
    res = tmp / "results"
    files: dict[str, dict[str, str]] = {}
    r5k_of: dict[str, np.ndarray] = {}
    for method, quality in (("plain", 0.55), ("withr1m", 0.85)):
        t = time.perf_counter()
        r5k = ranks_5k(rng, p.n_db, gnd, lm, qlm, quality)
        r5k_of[method] = r5k
        img = res / "image-level" / method
        img.mkdir(parents=True)
        np.save(img / "roxford.npy", r5k)
        preds: dict[str, object] = {}
        for (q, i), shapes in shapes_of.items():
            w, h = sizes[i]
            pr = predict(rng, shapes, w, h, quality)
            if pr is not None:
                preds[f"qimlist_{q}_imlist_{i}"] = pr
        pos = {(q, i) for q, g in enumerate(gnd) for i in g["easy"] + g["hard"]}
        for q in range(p.n_q):  # predictions for top-ranked negatives too (ignored)
            for i in r5k[:20, q].tolist():
                if (q, i) not in pos:
                    w, h = sizes[i]
                    preds[f"qimlist_{q}_imlist_{i}"] = np.round(star_polygon(
                        rng, w / 2, h / 2, min(w, h) / 4, 4), 1)
        _save_dict(res / "pixel-level" / method / "matching_result" / "proxford.npy", preds)
        files[method] = {"ranks": str((img / "roxford.npy").relative_to(tmp)),
                         "matches": f"results/pixel-level/{method}/matching_result/proxford.npy"}
        if method == "withr1m":
            t1 = time.perf_counter()
            n_rows = p.n_db + p.ranked_distractors
            rpath = img / "R1Moxford.npy"
            write_r1m_ranks(rpath, rng, r5k, n_rows)
            timings["R1M ranks"] = time.perf_counter() - t1
            r1m = np.load(rpath, mmap_mode="r")
            preds_r1m = {f"qimlist_{q}_imlist_{i}": preds[f"qimlist_{q}_imlist_{i}"]
                         for q, i in sorted(pos) if f"qimlist_{q}_imlist_{i}" in preds}
            for q in range(p.n_q):
                for i in np.asarray(r1m[:20, q]).tolist():
                    if (q, i) not in pos and (i < p.n_db or p.distractor_keys):
                        w, h = sizes[i] if i < p.n_db else (1024, 768)
                        preds_r1m[f"qimlist_{q}_imlist_{i}"] = np.round(star_polygon(
                            rng, w / 2, h / 2, min(w, h) / 4, 4), 1)
            del r1m
            _save_dict(res / "pixel-level" / method / "matching_result" / "pR1Moxford.npy",
                       preds_r1m)
            files[method]["r1m_ranks"] = str(rpath.relative_to(tmp))
            files[method]["r1m_matches"] = (f"results/pixel-level/{method}/matching_result/"
                                            "pR1Moxford.npy")
        timings[method] = time.perf_counter() - t
    t = time.perf_counter()
    first = write_distractor_list(data / "revisitop1m.txt", rng, p.distractor_lines)
    timings["revisitop1m.txt"] = time.perf_counter() - t

    n_images = 0
    if p.images:
        t = time.perf_counter()
        jpg = gdir / "jpg"
        want = set(own) | set(range(min(p.images, p.n_db)))
        pos_shapes: dict[int, list[np.ndarray]] = {}
        for (_, i), s in shapes_of.items():
            pos_shapes.setdefault(i, s)
        for i in sorted(want):
            w, h = sizes[i]
            q = own.index(i) if i in own else None
            write_jpeg(jpg / f"{names[i]}.jpg", rng, w, h, shapes=pos_shapes.get(i),
                       box=gnd[q]["bbx"] if q is not None else None)
            n_images += 1
        r1m = np.load(res / "image-level" / "withr1m" / "R1Moxford.npy", mmap_mode="r")
        lines = (data / "revisitop1m.txt").read_text().splitlines() if p.distractor_lines \
            <= 10_000 else None
        dist = sorted({int(i) - p.n_db for i in np.asarray(r1m[:20, :5]).ravel().tolist()
                       if i >= p.n_db})
        del r1m
        if dist:
            if lines is None:
                with open(data / "revisitop1m.txt", "rb") as f:
                    need, lines_d = set(dist), {}
                    for j, line in enumerate(f):
                        if j in need:
                            lines_d[j] = line.decode().strip()
                        if j >= dist[-1]:
                            break
            else:
                lines_d = {j: lines[j] for j in dist}
            for j in dist:
                write_jpeg(data / "jpg" / lines_d[j], rng, 1024, 768, color=(90, 90, 200))
                n_images += 1
        timings["images"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return {
        "params": asdict(p),
        "n_pairs": n_pairs,
        "n_images_written": n_images,
        "gnd": str((gdir / f"gnd_{DATASET}.pkl").relative_to(tmp)),
        "labels_root": "pixel_retrieval_benchmarks",
        "pair_labels": f"pixel_retrieval_benchmarks/{SHORT}_pair2labelpath.npy",
        "distractors": str((data / "revisitop1m.txt").relative_to(tmp)),
        "first_distractors": first[:3],
        "methods": files,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def make(out: Path, p: Params, *, force: bool = False, log=print) -> tuple[dict, bool]:
    """Build into a temporary sibling of *out* and rename it into place. Returns the
    manifest and whether it was built (False: found, same parameters)."""
    out = out.expanduser().absolute()
    marker = out / MARKER
    if out.exists():
        old = None
        if marker.is_file():
            try:
                old = json.loads(marker.read_text())
            except (OSError, ValueError):
                old = None
        if old is None and any(out.iterdir()):
            raise FileExistsError(f"{out} exists and was not written by this script "
                                  f"(no {MARKER}); choose another --out")
        if old is not None and old.get("params") == asdict(p) and not force:
            return old, False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        manifest = build(tmp, p, log=log)
        manifest["bytes"] = _du(tmp)
        (tmp / MARKER).write_text(json.dumps(manifest, indent=1))
        if out.exists():
            trash = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(trash)
            tmp.rename(out)
            shutil.rmtree(trash)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest, True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="folder to write (default: the cache folder)")
    ap.add_argument("--quick", action="store_true", help="a smaller version (for tests)")
    ap.add_argument("--images", type=int, default=0, metavar="N",
                    help="also write JPEGs: queries, the first N database images and a few "
                         "distractors")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--distractor-keys", action="store_true",
                    help="pR1Moxford.npy also holds predictions for top-ranked distractors "
                         "(keys with an index past imlist)")
    ap.add_argument("--force", action="store_true", help="rebuild even if built")
    ap.add_argument("--json", action="store_true", help="print the manifest as JSON")
    a = ap.parse_args(argv)
    p = (quick_params(a.seed, a.images, a.distractor_keys) if a.quick
         else Params(images=a.images, seed=a.seed, distractor_keys=a.distractor_keys))
    out = Path(a.out) if a.out else default_out(a.quick)
    t = time.perf_counter()
    try:
        manifest, built = make(out, p, force=a.force)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t
    out = out.expanduser().absolute()
    if a.json:
        print(json.dumps({"root": str(out), "built": built, "seconds": round(dt, 2),
                          **manifest}))
        return 0
    print(f"{'built' if built else 'found'} {out} in {dt:.1f} s "
          f"({manifest['bytes'] / 2**20:.0f} MiB, {manifest['n_pairs']} pairs)")
    print(f"  gnd          {out / manifest['gnd']}")
    print(f"  pair labels  {out / manifest['pair_labels']}")
    print(f"  distractors  {out / manifest['distractors']}")
    for m, f in manifest["methods"].items():
        for k, v in f.items():
            print(f"  {m:8} {k:12} {out / v}")
    if built:
        print("  timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in
                                         manifest["timings_s"].items()))
    print(f"  discover with: python -m bench discover {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into head
        sys.exit(0)
