"""A small benchmark in the GPR1200 file format (not GPR1200 data).

Each category is one bundled picture (or one distinct region of a large one), seen
through ten random views: crop, scale, flip, brightness, contrast and saturation, and
sometimes gray. Categories come in six contiguous blocks of equal size, which the
GPR1200 protocol reads as its six subsets (docs/PROTOCOLS.md section 3, "other sizes").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from bench.demo.baselines import global_descriptor
from bench.demo.sources import Box, region

Progress = Callable[[float, str], None]

# Six blocks of five (label, source, region); the small demo takes the first of each.
CATEGORIES: tuple[tuple[tuple[str, str, Box | None], ...], ...] = (
    (("astronaut", "astronaut", None), ("rocket", "rocket", None),
     ("cameraman", "camera", None), ("motorcycle", "motorcycle", (0, 150, 741, 500)),
     ("garage shelves", "motorcycle", (0, 0, 741, 150))),
    (("cat", "chelsea", None), ("horse silhouette", "horse", None),
     ("grass", "grass", None), ("gravel", "gravel", None), ("moon surface", "moon", None)),
    (("coffee cup", "coffee", None), ("clock", "clock", None), ("coins", "coins", None),
     ("logo", "logo", None), ("colour wheel", "colorwheel", None)),
    (("printed page", "page", None), ("handwritten text", "text", None),
     ("checkerboard", "checkerboard", None), ("phantom", "shepp_logan_phantom", None),
     ("blobs", "binary_blobs", None)),
    (("tissue, upper left", "immunohistochemistry", (0, 0, 256, 256)),
     ("tissue, lower right", "immunohistochemistry", (256, 256, 512, 512)),
     ("tissue, lower left", "immunohistochemistry", (0, 256, 256, 512)),
     ("cell", "cell", None), ("faces", "faces", None)),
    (("deep field, upper left", "hubble_deep_field", (0, 0, 500, 436)),
     ("deep field, upper right", "hubble_deep_field", (500, 0, 1000, 436)),
     ("deep field, lower half", "hubble_deep_field", (0, 436, 1000, 872)),
     ("retina, left", "retina", (0, 300, 705, 1100)),
     ("retina, right", "retina", (705, 300, 1411, 1100))),
)

PER_CATEGORY = 10


def categories(n: int) -> list[tuple[str, str, Box | None]]:
    """The first ``n`` categories in block order (``n`` = 6 takes one per block)."""
    if n % 6 or not 6 <= n <= 6 * len(CATEGORIES[0]):
        raise ValueError(f"the GPR demo needs 6..30 categories, a multiple of 6, not {n}")
    per = n // 6
    return [cat for block in CATEGORIES for cat in block[:per]]


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")


def view(img: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One random view of ``img``: crop, scale, flip and photometric changes."""
    h, w = img.shape[:2]
    area = rng.uniform(0.35, 1.0)
    aspect = np.exp(rng.uniform(np.log(0.75), np.log(1.33)))
    cw = int(min(w, np.sqrt(area * w * h * aspect)))
    ch = int(min(h, np.sqrt(area * w * h / aspect)))
    x = int(rng.integers(0, w - cw + 1))
    y = int(rng.integers(0, h - ch + 1))
    pil = Image.fromarray(np.ascontiguousarray(img[y:y + ch, x:x + cw]))
    long_side = int(rng.integers(160, 257))
    s = long_side / max(pil.size)
    pil = pil.resize((max(8, round(pil.width * s)), max(8, round(pil.height * s))),
                     Image.Resampling.BILINEAR, reducing_gap=2.0)
    if rng.random() < 0.5:
        pil = ImageOps.mirror(pil)
    pil = ImageEnhance.Brightness(pil).enhance(rng.uniform(0.7, 1.3))
    pil = ImageEnhance.Contrast(pil).enhance(rng.uniform(0.7, 1.3))
    pil = ImageEnhance.Color(pil).enhance(rng.uniform(0.5, 1.5))
    if rng.random() < 0.1:
        pil = pil.convert("L").convert("RGB")
    return pil


def build_gpr(out: Path, n_categories: int, seed: int, progress: Progress | None = None,
              start: float = 0.0, stop: float = 1.0) -> None:
    """Write ``out/images/{c}_{name}.jpg``, ``out/GPR1200_categoryNumber_to_text.json`` and
    ``out/embeddings/global.npy`` (global descriptors, in file order)."""
    cats = categories(n_categories)
    (out / "images").mkdir(parents=True)
    (out / "embeddings").mkdir()
    texts = {}
    descs = []
    for c, (label, source, box) in enumerate(cats):
        texts[str(c)] = label
        img = region(source, box)
        for j in range(PER_CATEGORY):
            rng = np.random.default_rng([seed, 2, c, j])
            pil = view(img, rng)
            path = out / "images" / f"{c}_{_slug(label)}-{j:02d}.jpg"
            pil.save(path, quality=90)
            with Image.open(path) as im:  # describe what is on disk
                descs.append(global_descriptor(np.asarray(im.convert("RGB"))))
        if progress is not None:
            progress(start + (stop - start) * (c + 1) / len(cats),
                     f"GPR demo category {c + 1}/{len(cats)}")
    (out / "GPR1200_categoryNumber_to_text.json").write_text(json.dumps(texts, indent=1))
    np.save(out / "embeddings" / "global.npy", np.stack(descs).astype(np.float32))
