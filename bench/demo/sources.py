"""The bundled photographs the demo is made from (``skimage.data``, all offline).

Every picture here ships inside the scikit-image wheel; nothing is downloaded. The
functions return RGB ``uint8`` arrays. Query objects and background regions are given
in the coordinates of the original bundled image, so a reader can check them against
``skimage.data.<name>()`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image
from skimage import data

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 (PIL crop semantics: x2, y2 excluded)


def to_rgb(img: np.ndarray) -> np.ndarray:
    """Any bundled image (bool, gray, float, RGBA) -> RGB uint8."""
    a = np.asarray(img)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = a.astype(np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = ((a - lo) / (hi - lo if hi > lo else 1.0) * 255.0 + 0.5).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:  # composite on white
        alpha = a[:, :, 3:4].astype(np.float64) / 255.0
        a = (a[:, :, :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(a[:, :, :3])


def _faces_mosaic() -> np.ndarray:
    faces = data.lfw_subset()[:100]  # the first 100 are faces, 25 x 25 each
    rows = [np.concatenate(list(faces[r * 16:(r + 1) * 16]), axis=1) for r in range(6)]
    return np.concatenate(rows, axis=0)  # 150 x 400


_LOADERS = {
    "astronaut": data.astronaut,
    "coffee": data.coffee,
    "chelsea": data.chelsea,
    "rocket": data.rocket,
    "coins": data.coins,
    "camera": data.camera,
    "page": data.page,
    "logo": data.logo,
    "immunohistochemistry": data.immunohistochemistry,
    "retina": data.retina,
    "hubble_deep_field": data.hubble_deep_field,
    "motorcycle": lambda: data.stereo_motorcycle()[0],
    "brick": data.brick,
    "grass": data.grass,
    "gravel": data.gravel,
    "moon": data.moon,
    "cell": data.cell,
    "text": data.text,
    "clock": data.clock,
    "colorwheel": data.colorwheel,
    "horse": lambda: ~data.horse(),
    "shepp_logan_phantom": data.shepp_logan_phantom,
    "checkerboard": data.checkerboard,
    "microaneurysms": data.microaneurysms,
    "binary_blobs": lambda: data.binary_blobs(length=256, blob_size_fraction=0.08, rng=7),
    "faces": _faces_mosaic,
}


@cache
def load(name: str) -> np.ndarray:
    """A bundled image as RGB uint8 (cached; treat as read-only)."""
    img = to_rgb(_LOADERS[name]())
    img.setflags(write=False)
    return img


@dataclass(frozen=True)
class QuerySpec:
    """One query: ``region`` of bundled image ``source`` is the query image, ``obj`` the
    object inside it (both in the original image's pixels); ``shape`` is ``"rect"`` (the
    whole box is the object) or ``"ellipse"`` (the ellipse inscribed in the box)."""

    name: str
    source: str
    region: Box
    obj: Box
    shape: str = "rect"


# Order matters: the small demo uses the first four.
QUERIES: tuple[QuerySpec, ...] = (
    QuerySpec("astronaut", "astronaut", (0, 0, 512, 512), (120, 10, 380, 330)),
    QuerySpec("coffee", "coffee", (0, 0, 600, 400), (175, 5, 430, 300)),
    QuerySpec("chelsea", "chelsea", (0, 0, 451, 300), (95, 10, 380, 295)),
    QuerySpec("camera", "camera", (0, 0, 512, 512), (40, 50, 330, 330)),
    QuerySpec("logo", "logo", (0, 0, 500, 500), (8, 8, 492, 492), "ellipse"),
    QuerySpec("rocket", "rocket", (0, 0, 640, 427), (230, 30, 470, 427)),
    QuerySpec("coins", "coins", (0, 0, 384, 303), (8, 8, 208, 162)),
    QuerySpec("shelves", "motorcycle", (300, 0, 741, 300), (525, 0, 741, 118)),
    QuerySpec("motorcycle", "motorcycle", (0, 0, 741, 500), (60, 170, 660, 480)),
    QuerySpec("gland", "immunohistochemistry", (0, 0, 512, 512), (280, 260, 500, 500)),
    QuerySpec("optic_disc", "retina", (0, 250, 800, 1050), (20, 420, 420, 880)),
    QuerySpec("galaxies", "hubble_deep_field", (0, 0, 520, 420), (90, 70, 420, 340)),
)

# Background regions: never overlapping any query object (nor the query image, where it
# is cut from a larger picture), so a background never holds a query object by accident.
BACKGROUNDS: tuple[tuple[str, Box | None], ...] = (
    ("brick", None),
    ("grass", None),
    ("gravel", None),
    ("moon", None),
    ("cell", None),
    ("text", None),
    ("clock", None),
    ("colorwheel", None),
    ("horse", None),
    ("shepp_logan_phantom", None),
    ("faces", None),
    ("checkerboard", None),
    ("binary_blobs", None),
    ("hubble_deep_field", (520, 420, 1000, 872)),
    ("retina", (820, 200, 1411, 1200)),
    ("immunohistochemistry", (0, 0, 270, 250)),
    ("coffee", (0, 110, 170, 400)),
    ("camera", (340, 330, 512, 512)),
    ("motorcycle", (0, 0, 400, 160)),
    ("page", None),
    ("rocket", (0, 0, 225, 427)),
    ("astronaut", (0, 0, 100, 300)),
)


def region(name: str, box: Box | None) -> np.ndarray:
    """The given region of a bundled image (the whole image for ``None``)."""
    img = load(name)
    if box is None:
        return img
    x1, y1, x2, y2 = box
    return img[y1:y2, x1:x2]


def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Antialiased resize of an RGB uint8 array to ``width`` x ``height`` (PIL)."""
    if img.shape[1] == width and img.shape[0] == height:
        return np.array(img)
    pil = Image.fromarray(img)
    return np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0))
