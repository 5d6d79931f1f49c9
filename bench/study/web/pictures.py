"""The pictures of a trial as the participant screens send them (docs/PROTOCOLS.md §7).

A picture is the query image with its box, or the database image with what the trial's
condition draws on it (the ground-truth region, a method's polygon, a decoy, or nothing),
scaled to a *size class* (the longer side at most 640, 960, 1280 or 1920 pixels; the page
asks for the smallest class that covers its viewport). Each picture is rendered once
(per server disk: ``<cache>/study-web/``, written atomically, shared by the processes of
a server; and per process in a small in-memory LRU) and served as JPEG with
``Cache-Control: immutable`` and an ``ETag`` of its content hash.

A picture's address is an opaque reference: the first 24 hex digits of SHA-256 over the
study's definition stamp (its name, creation time and seed: not shown to participants),
the trial, the role (query or database), the condition and the size class. The server
rebuilds the table reference -> picture from the study definition (no state), so any
server process can serve any picture; the reference says nothing about the trial (not
its kind, not its pair, not its condition).

Images are opened through the one decoder, :mod:`bench.formats.images` (docs/PROTOCOLS.md
§8): the header's size is checked against its pixel caps before anything is decoded (a
13000 x 13000 PNG is refused without decoding a pixel), decoding is reduced (JPEG draft,
``reduce``), and every picture is at most the size class.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench import render, thumbs
from bench.errors import BenchError
from bench.formats import images
from bench.study.design import StudyDefinition, StudyTrial, find_dataset

__all__ = ["SIZES", "Picture", "PictureSpec", "image_size", "picture",
           "references", "size_class", "trial_pictures"]

SIZES = (640, 960, 1280, 1920)
RENDER_VERSION = "1"
JPEG_QUALITY = 88
_MEM_ENTRIES = 512

@dataclass(frozen=True)
class PictureSpec:
    """What one picture shows: a trial's query (``role="q"``) or database image
    (``role="d"``) in *condition*, at size class *size*."""

    trial: str
    role: str
    condition: str | None
    size: int


@dataclass(frozen=True)
class Picture:
    jpeg: bytes
    etag: str  # quoted content hash


def size_class(vw: float | None, vh: float | None, dpr: float | None) -> int:
    """The smallest size class covering half the viewport width or its height in device
    pixels (each image gets a column; the images are as tall as the viewport allows)."""
    try:
        need = max(float(vw) / 2, float(vh)) * max(min(float(dpr or 1), 3.0), 1.0)
    except (TypeError, ValueError):
        return SIZES[1]
    if not np.isfinite(need):
        return SIZES[1]
    for s in SIZES:
        if s >= need:
            return s
    return SIZES[-1]


def _stamp(d: StudyDefinition) -> str:
    return f"{RENDER_VERSION}|{d.study}|{d.created}|{d.seed}|{d.dataset}"


def _ref(d: StudyDefinition, spec: PictureSpec) -> str:
    text = f"{_stamp(d)}|{spec.trial}|{spec.role}|{spec.condition}|{spec.size}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


_TABLES: dict[str, dict[str, PictureSpec]] = {}
_TABLES_LOCK = threading.Lock()


def references(d: StudyDefinition) -> dict[str, PictureSpec]:
    """reference -> spec for every picture the study can show (built once per process)."""
    key = _stamp(d)
    with _TABLES_LOCK:
        t = _TABLES.get(key)
    if t is not None:
        return t
    t = {}
    for trial in (*d.trials, *d.practice):
        conds = (trial.condition,) if trial.practice else d.conditions
        for size in SIZES:
            qs = PictureSpec(trial.id, "q", None, size)
            t[_ref(d, qs)] = qs
            for c in conds:
                ds = PictureSpec(trial.id, "d", c, size)
                t[_ref(d, ds)] = ds
    with _TABLES_LOCK:
        _TABLES[key] = t
    return t


def trial_pictures(d: StudyDefinition, trial: StudyTrial, size: int) -> tuple[str, str]:
    """The references of the query and the database picture of *trial* (with its
    condition) at size class *size*."""
    cond = trial.condition
    return (_ref(d, PictureSpec(trial.id, "q", None, size)),
            _ref(d, PictureSpec(trial.id, "d", cond, size)))


# ---------------------------------------------------------------- files

_FOLDERS: dict[tuple[str, str], Path | None] = {}


def _root_key(d: StudyDefinition) -> str:
    """Where the dataset lies: its root, or (no root) the demo folder in force now, which
    ``$BENCH_DEMO_DIR`` may change: a key without it would serve another demo's files."""
    if d.root is not None:
        return str(d.root)
    from bench.demo import default_demo_dir

    return f"demo:{default_demo_dir()}"


def images_folder(d: StudyDefinition) -> Path | None:
    k = (d.dataset, _root_key(d))
    if k not in _FOLDERS:
        try:
            _FOLDERS[k] = find_dataset(d.dataset, d.root).images
        except Exception:  # noqa: BLE001 - a missing dataset shows "cannot be shown"
            return None
    return _FOLDERS[k]


_FILES: dict[tuple, Path | None] = {}


def image_file(d: StudyDefinition, name: str) -> Path | None:
    """The file of image *name* inside the dataset's images folder (None if missing or
    outside it; remembered per process)."""
    k = (d.dataset, _root_key(d), name)
    if k in _FILES:
        return _FILES[k]
    p = _image_file(d, name)
    if p is not None:
        if len(_FILES) > 100_000:
            _FILES.clear()
        _FILES[k] = p
    return p


def _image_file(d: StudyDefinition, name: str) -> Path | None:
    folder = images_folder(d)
    p = thumbs.resolve_image(folder, name)
    if p is None:
        return None
    try:
        if not Path(os.path.realpath(p)).is_relative_to(os.path.realpath(folder)):
            return None
    except (OSError, ValueError):
        return None
    return p


_SIZES_CACHE: dict[tuple, tuple[int, int] | None] = {}


def image_size(d: StudyDefinition, name: str) -> tuple[int, int] | None:
    """``(w, h)`` of image *name* from its header (no decoding); None when missing,
    unreadable or above the decoder's caps (:func:`bench.formats.images.probe`)."""
    p = image_file(d, name)
    key = thumbs.file_key(p)
    if key is None:
        return None
    if key not in _SIZES_CACHE:
        try:
            _SIZES_CACHE[key] = images.probe(p)
        except BenchError:
            _SIZES_CACHE[key] = None
    return _SIZES_CACHE[key]


def open_capped(path: Path, max_side: int) -> Image.Image | None:
    """The image in RGB, at most *max_side* on its longer side, through the one decoder
    (:func:`bench.formats.images.open_image`: the caps checked on the header before any
    pixel is decoded, reduced decoding); None when it refuses or cannot read it."""
    return images.open_image(path, max_side=max_side)


def _render(d: StudyDefinition, spec: PictureSpec) -> bytes | None:
    trial = _trial(d, spec.trial)
    if trial is None:
        return None
    name = trial.query if spec.role == "q" else trial.image
    path = image_file(d, name)
    size = image_size(d, name)
    if path is None or size is None:
        return None
    img = open_capped(path, spec.size)
    if img is None:
        return None
    s = img.width / size[0]
    if spec.role == "q":
        box = None if trial.query_box is None else [v * s for v in trial.query_box]
        img = render.draw_box(img, box)
    else:
        style, shapes = trial.annotation(spec.condition)
        shapes = [np.asarray(p, dtype=np.float64) * s for p in shapes]
        if style == "ground_truth" and shapes:
            img = render.overlay(img, shapes, None)
        elif style == "prediction" and shapes:
            img = render.overlay(img, [], shapes[0])
        elif shapes:  # another drawn style (a decoy): outlined as a prediction
            img = render.overlay(img, [], shapes[0])
    return render.jpeg_bytes(img, quality=JPEG_QUALITY)


def _trial(d: StudyDefinition, trial_id: str) -> StudyTrial | None:
    try:
        return d.trial(trial_id)
    except KeyError:
        return next((t for t in d.practice if t.id == trial_id), None)


_MEM: OrderedDict[str, Picture] = OrderedDict()
_MEM_LOCK = threading.Lock()


def _disk_dir() -> Path:
    return thumbs.cache_root() / "study-web"


def cached(ref: str) -> Picture | None:
    """The picture of *ref* if this process holds it in memory (no I/O: for the event
    loop). The reference is study-specific: the caller checks it belongs to the study."""
    with _MEM_LOCK:
        return _MEM.get(ref)


def picture(d: StudyDefinition, ref: str) -> Picture | None:
    """The picture of reference *ref* of study *d* (rendered on first use); None when
    the reference is not one of the study's or its image cannot be shown."""
    spec = references(d).get(ref)
    if spec is None:
        return None
    with _MEM_LOCK:
        pic = _MEM.get(ref)
        if pic is not None:
            _MEM.move_to_end(ref)
            return pic
    trial = _trial(d, spec.trial)
    name = None if trial is None else (trial.query if spec.role == "q" else trial.image)
    fkey = thumbs.file_key(image_file(d, name)) if name else None
    if fkey is None:
        return None
    disk_key = hashlib.sha256(f"{ref}|{fkey}".encode()).hexdigest()[:32]
    path = _disk_dir() / f"{disk_key}.jpg"
    data = None
    try:
        data = path.read_bytes()
    except OSError:
        pass
    if not data:
        data = _render(d, spec)
        if data is None:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError:
            pass  # served from memory; rendered again by another process
    pic = Picture(data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')
    with _MEM_LOCK:
        _MEM[ref] = pic
        while len(_MEM) > _MEM_ENTRIES:
            _MEM.popitem(last=False)
    return pic
