"""The demo builder: synthesis, ground truth, both baselines, the GPR-format demo, and
the atomic write (temporary sibling folder, renamed onto the root at the end)."""

from __future__ import annotations

import io
import json
import os
import pickle
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.demo import DEMO_VERSION, METHODS, demo_is_built, demo_paths, synth
from bench.demo import baselines as bl
from bench.demo.gpr import build_gpr
from bench.demo.sources import QUERIES, QuerySpec, load, resize

Progress = Callable[[float, str], None]

SEED = 20240611
DATASET = "rdemo"  # image level; the pixel-level name is "p" + DATASET
QUERY_LONG_SIDE = 384
DB_SIZES = ((384, 288), (384, 288), (288, 384), (384, 384), (384, 256))  # (width, height)
# Hard cases combine one or two strong changes; cycled so every query gets a mix.
HARD_COMBOS = (("occlusion",), ("small", "rotation"), ("tilt", "light"), ("frame",),
               ("occlusion", "rotation"), ("small",), ("tilt",), ("light", "occlusion"),
               ("rotation", "frame"), ("small", "light"))
TOP_LEVEL = {"pixel_retrieval_benchmarks", "results", "gpr1200", "README.txt", ".complete"}


@dataclass(frozen=True)
class Scale:
    n_queries: int
    n_easy: int
    n_hard: int
    n_junk: int
    n_negatives: int
    n_gpr_categories: int


SCALE_SPECS = {
    "full": Scale(n_queries=12, n_easy=4, n_hard=3, n_junk=1, n_negatives=40,
                  n_gpr_categories=30),
    "small": Scale(n_queries=4, n_easy=3, n_hard=2, n_junk=1, n_negatives=6,
                   n_gpr_categories=6),
}

README_SIGNATURE = "Synthetic demo data for the image / pixel retrieval workbench"
README = README_SIGNATURE + """ (demo version {version}).

This is NOT a real benchmark and none of it comes from Revisited Oxford/Paris,
PROxford/PRParis or GPR1200. It is made from the photographs bundled with scikit-image
(skimage.data: astronaut, coffee, chelsea, camera, logo, rocket, ...), in the same file
layout and formats as the released benchmarks, so the workbench can be tried without
downloading anything.

- pixel_retrieval_benchmarks/revisitop/data/rdemo: {n_q} queries (an object cut from a
  bundled photograph, with its bounding box) and {n_db} database images. Positives are
  the query object pasted into other scenes through a known homography (scale,
  rotation, perspective), with lighting changes and occluders: easy = mild, hard =
  strong change, small or heavily occluded, junk = barely visible. The rest are
  negatives. Ground-truth polygons (labelme files under demo/labels) are the object's
  outline mapped through the same homography, clipped to the image, occluders cut out.
- results/: two baseline methods in the released results layout: local-sp (ORB
  features + RANSAC homography; localises the object) and global-hist (colour and
  gradient histograms; predicts the whole image).
- gpr1200/: {n_cat} categories x 10 views in the GPR1200 file format (six contiguous
  blocks of categories stand for the six subsets), with global-hist embeddings.

Built deterministically (seed {seed}) by `python -m bench demo` ({scale} scale).
Point the workbench at the real downloaded benchmarks instead to get real numbers.
"""


@dataclass
class Scene:
    level: str  # easy | hard | junk | negative
    query: int  # -1 for a negative
    factors: tuple[str, ...]
    plan_index: int


def _plan(scale: Scale) -> list[Scene]:
    scenes: list[Scene] = []
    for q in range(scale.n_queries):
        for _ in range(scale.n_easy):
            scenes.append(Scene("easy", q, (), len(scenes)))
        for k in range(scale.n_hard):  # the first is a zoomed-in view filling the frame
            combo = ("zoom", "light") if k == 0 else HARD_COMBOS[
                (q * (scale.n_hard - 1) + k - 1) % len(HARD_COMBOS)]
            scenes.append(Scene("hard", q, combo, len(scenes)))
        for _ in range(scale.n_junk):
            scenes.append(Scene("junk", q, (), len(scenes)))
    for _ in range(scale.n_negatives):
        scenes.append(Scene("negative", -1, (), len(scenes)))
    order = np.random.default_rng([SEED, 0]).permutation(len(scenes))
    return [scenes[k] for k in order]


def _query_image(spec: QuerySpec) -> tuple[np.ndarray, list[float]]:
    """The query image (its region, long side ``QUERY_LONG_SIDE``) and its bbx."""
    rx1, ry1, rx2, ry2 = spec.region
    img = load(spec.source)[ry1:ry2, rx1:rx2]
    s = QUERY_LONG_SIDE / max(rx2 - rx1, ry2 - ry1)
    w, h = round((rx2 - rx1) * s), round((ry2 - ry1) * s)
    ox1, oy1, ox2, oy2 = spec.obj
    bbx = [float(min(w, max(0, round((v - o) * s))))
           for v, o in ((ox1, rx1), (oy1, ry1), (ox2, rx1), (oy2, ry1))]
    bbx[1], bbx[3] = min(bbx[1], h), min(bbx[3], h)
    return resize(np.ascontiguousarray(img), w, h), bbx


def _jpeg(img: np.ndarray, path: Path, quality: int = 90) -> None:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    path.write_bytes(buf.getvalue())


def _labelme(shapes: list[np.ndarray], label: str, image_name: str, width: int,
             height: int) -> dict:
    return {
        "version": "5.0.1",
        "flags": {},
        "shapes": [{"label": label,
                    "points": [[float(x), float(y)] for x, y in
                               np.clip(np.round(s, 2), 0, [width - 1, height - 1])],
                    "group_id": None, "shape_type": "polygon", "flags": {}}
                   for s in shapes],
        "imagePath": f"../../revisitop/data/{DATASET}/jpg/{image_name}.jpg",
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }


def build_into(out: Path, scale_name: str, progress: Progress) -> dict:
    """Write a complete demo (except ``.complete``) into the empty folder ``out``.

    Returns summary counts. Progress runs from 0 to 0.99."""
    scale = SCALE_SPECS[scale_name]
    paths = demo_paths(out)
    paths.images.mkdir(parents=True)
    label_dir = paths.labels_root / "demo" / "labels"
    label_dir.mkdir(parents=True)

    # ---- queries
    specs = QUERIES[:scale.n_queries]
    qnames = [f"query_{s.name}" for s in specs]
    objects, bbxs = [], []
    for spec, name in zip(specs, qnames, strict=True):
        qimg, bbx = _query_image(spec)
        _jpeg(qimg, paths.images / f"{name}.jpg", quality=92)
        x1, y1, x2, y2 = (int(v) for v in bbx)
        objects.append(np.ascontiguousarray(qimg[y1:y2, x1:x2]))
        bbxs.append(bbx)
    progress(0.02, "queries written")

    # ---- database scenes
    scenes = _plan(scale)
    n_db = len(scenes)
    imlist = [f"demo_{i:04d}" for i in range(n_db)]
    gnd = [{"easy": [], "hard": [], "junk": [], "bbx": bbxs[q]} for q in range(len(specs))]
    pair2label: dict[str, str] = {}
    sizes: list[tuple[int, int]] = []
    n_multi = 0
    for i, sc in enumerate(scenes):
        rng = np.random.default_rng([SEED, 1, sc.plan_index])
        width, height = DB_SIZES[int(rng.integers(len(DB_SIZES)))]
        if "zoom" in sc.factors:  # the frame takes the object's aspect
            oh, ow = objects[sc.query].shape[:2]
            short = int(np.clip(round(384 * min(oh, ow) / max(oh, ow)), 192, 384))
            width, height = (384, short) if ow >= oh else (short, 384)
        canvas = synth.background(rng, width, height)
        if sc.query >= 0:
            spec = specs[sc.query]
            pl = synth.place_object(canvas, objects[sc.query], spec.shape, sc.level, rng,
                                    sc.factors)
            gnd[sc.query][sc.level].append(i)
            if sc.level in ("easy", "hard"):
                rel = f"demo/labels/{qnames[sc.query]}__{imlist[i]}.json"
                doc = _labelme(pl.shapes, spec.name, imlist[i], width, height)
                (paths.labels_root / rel).write_text(json.dumps(doc))
                pair2label[f"{sc.query}_{i}"] = rel
                n_multi += len(pl.shapes) > 1
        canvas += rng.normal(0.0, 1.5 / 255.0, canvas.shape)
        _jpeg(synth.to_uint8(canvas), paths.images / f"{imlist[i]}.jpg")
        sizes.append((width, height))
        if i % 4 == 0 or i == n_db - 1:
            progress(0.02 + 0.23 * (i + 1) / n_db, f"scene {i + 1}/{n_db}")
    with open(paths.gnd, "wb") as f:
        pickle.dump({"imlist": imlist, "qimlist": qnames, "gnd": gnd}, f,
                    protocol=pickle.HIGHEST_PROTOCOL)
    np.save(paths.pair_labels, pair2label, allow_pickle=True)

    # ---- baselines, on the JPEG files as written
    db_imgs = [bl.load_rgb(paths.images / f"{n}.jpg") for n in imlist]
    q_imgs = [bl.load_rgb(paths.images / f"{n}.jpg") for n in qnames]
    db_desc = np.stack([bl.global_descriptor(im) for im in db_imgs])
    q_desc = np.stack([bl.global_descriptor(bl.load_rgb(paths.images / f"{n}.jpg", b))
                       for n, b in zip(qnames, bbxs, strict=True)])
    glob = bl.run_global_hist(q_desc, db_desc, sizes)
    progress(0.28, "global descriptors")
    feats = bl.extract_all(q_imgs + db_imgs, bbxs + [None] * n_db, progress, 0.28, 0.7)
    local = bl.run_local_sp(feats[:len(q_imgs)], feats[len(q_imgs):], bbxs, sizes,
                            glob.scores, progress, 0.7, 0.85)
    for method, res in (("local-sp", local), ("global-hist", glob)):
        mp = paths.methods[method]
        mp["ranks"].parent.mkdir(parents=True)
        mp["matches"].parent.mkdir(parents=True)
        np.save(mp["ranks"], res.ranks)
        np.save(mp["matches"], dict(sorted(res.matches.items(), key=_pair_key)),
                allow_pickle=True)

    # ---- GPR-format demo
    build_gpr(out / "gpr1200", scale.n_gpr_categories, SEED, progress, 0.85, 0.99)

    counts = {
        "queries": len(specs),
        "database": n_db,
        "easy": sum(len(g["easy"]) for g in gnd),
        "hard": sum(len(g["hard"]) for g in gnd),
        "junk": sum(len(g["junk"]) for g in gnd),
        "labelled_pairs": len(pair2label),
        "multi_shape_pairs": n_multi,
        "gpr_categories": scale.n_gpr_categories,
        "gpr_images": scale.n_gpr_categories * 10,
    }
    (out / "README.txt").write_text(README.format(
        version=DEMO_VERSION, n_q=len(specs), n_db=n_db, n_cat=scale.n_gpr_categories,
        seed=SEED, scale=scale_name))
    return counts


def _pair_key(item: tuple[str, object]) -> tuple[int, int]:
    _, q, _, i = item[0].split("_")
    return int(q), int(i)


# --------------------------------------------------------------------------- atomic


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temps(root: Path) -> None:
    """Delete temporary siblings of ``root`` (``.tmp-`` builds, ``.old-`` trash) left by
    processes that are gone."""
    for kind in ("tmp", "old"):
        prefix = f".{root.name}.{kind}-"
        for p in root.parent.glob(prefix + "*"):
            try:
                pid = int(p.name[len(prefix):].split("-")[0])
            except ValueError:
                continue
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(p, ignore_errors=True)


def _looks_like_demo(root: Path) -> bool:
    """An empty folder, or one this builder wrote (its README or ``.complete``): the only
    folders a build may replace, so a mistyped ``--out`` never deletes anyone's data."""
    entries = list(root.iterdir())
    if not entries:
        return True
    if not all(p.name in TOP_LEVEL for p in entries):
        return False
    try:
        readme = (root / "README.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        readme = ""
    return readme.startswith(README_SIGNATURE) or (root / ".complete").is_file()


def _discard(root: Path) -> None:
    """Move ``root`` aside, then delete it (so ``root`` is free at once)."""
    trash = root.parent / f".{root.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.replace(root, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _finished(root: Path, scale: str) -> bool:
    if not demo_is_built(root):
        return False
    try:
        return json.loads((root / ".complete").read_text()).get("scale") == scale
    except (OSError, ValueError, AttributeError):
        return False


def build_atomically(root: Path, *, scale: str, progress: Progress | None,
                     force: bool = False) -> dict:
    """Build into ``.{root.name}.tmp-<pid>-<rand>`` next to ``root``, write ``.complete``
    last, then rename onto ``root`` (replacing an unfinished or older demo there)."""
    report = progress or (lambda fraction, message: None)
    t0 = time.perf_counter()
    if root.exists() and not (root.is_dir() and _looks_like_demo(root)):
        raise FileExistsError(
            f"{root} exists and is not a demo folder; choose a new or empty folder "
            "(the demo builder only ever replaces its own output)")
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        report(0.0, "building the demo")
        counts = build_into(tmp, scale, report)
        info = {"version": DEMO_VERSION, "scale": scale, "seed": SEED,
                "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.perf_counter() - t0, 2), "counts": counts,
                "methods": list(METHODS)}
        (tmp / ".complete").write_text(json.dumps(info, indent=1))
        if not force and _finished(root, scale):
            # another process finished the same build meanwhile: keep it, drop ours
            shutil.rmtree(tmp, ignore_errors=True)
            report(1.0, "demo ready")
            return info
        if root.exists():
            _discard(root)
        try:
            os.replace(tmp, root)
        except OSError:
            # another process finished first: keep its build if it is complete
            if not demo_is_built(root):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report(1.0, "demo ready")
    return info
