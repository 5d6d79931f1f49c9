"""Images from disk for the app: name lookup, bounded opening, and a thumbnail disk cache.

Every decode goes through :mod:`bench.formats.images` (size from the header first, a
pixel cap, reduced decoding: docs/PROTOCOLS.md §8 rule 9).

Thumbnails are made once and kept under ``cache_root()/thumbs/`` as JPEG files named by a
hash of the source's absolute path, size and modification time and the thumbnail size, so
a changed image gets a new thumbnail and an old one is simply never read again. A
missing, unreadable or too large image never raises: callers get ``None`` (or a
placeholder tile saying why, with the size of a too large one).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from functools import lru_cache
from pathlib import Path

from PIL import Image

from bench import render
from bench.errors import BenchError
from bench.formats import images
from bench.formats.files import is_regular_file, join_under
from bench.protocol import IMAGE_EXTS

THUMB_PX = 200  # stored thumbnail: longer side in pixels
TILE_PX = 180  # framed tile shown in the grids
# extensions tried when a gnd name has none, in both cases
_TRY_EXTS = IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS)
_VERSION = "1"


def cache_root() -> Path:
    """``$BENCH_CACHE_DIR``, else ``($XDG_CACHE_HOME or ~/.cache)/bench-workbench/cache``."""
    env = os.environ.get("BENCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "bench-workbench" / "cache"


FileKey = tuple[str, int, int]


def file_key(path: str | os.PathLike | None) -> FileKey | None:
    """``(absolute path, size, mtime_ns)`` of a regular file, ``None`` if it is not one."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


def resolve_image(folder: str | os.PathLike | None, name: str) -> Path | None:
    """The file of image *name* in *folder*: ``name`` itself if it has an image extension,
    else ``name + ext`` for the usual extensions (Revisited lists names without ``.jpg``).

    ``None`` when there is no folder or no such regular file, and whenever the name
    would lead outside *folder*: an absolute name, a ``..`` part, or a symbolic link
    pointing out of it (checked after resolving every link), so a hostile ground-truth
    file cannot show an image from elsewhere on the server.
    """
    if folder is None or not isinstance(name, str) or not name:
        return None
    cands = [name] if Path(name).suffix.lower() in IMAGE_EXTS else []
    cands += [f"{name}{ext}" for ext in _TRY_EXTS]
    for cand in cands:
        p = join_under(folder, cand)
        if p is not None and is_regular_file(p):
            return p
    return None


def open_image(path: str | os.PathLike | None, *, max_side: int | None = None
               ) -> Image.Image | None:
    """The image in RGB, or ``None`` when it is missing, unreadable or above the pixel
    caps (:func:`bench.formats.images.decode`, docs/PROTOCOLS.md §8 rule 9).

    With *max_side*, decoding is reduced (JPEG draft, ``reduce`` otherwise) and the
    result is at most *max_side* pixels on its longer side. Only a regular file is opened
    (a FIFO or device path gives ``None``, never a hang). :func:`load_image` says why.
    """
    if path is None:
        return None
    try:
        return images.decode(path, target=max_side)
    except BenchError:
        return None


def load_image(path: str | os.PathLike | None, *, max_side: int | None = None
               ) -> Image.Image:
    """As :func:`open_image`, but a refusal raises the decoder's :class:`BenchError`
    (naming the file, and its size when it is above a cap)."""
    if path is None:
        raise BenchError("image not found", "<no file>", "no images folder")
    return images.decode(path, target=max_side)


def load_scaled(path: str | os.PathLike | None, *, max_side: int
                ) -> tuple[Image.Image, tuple[int, int]]:
    """``(image at most *max_side* on its longer side, (width, height) of the original)``,
    decoded at a reduced size (no disk cache: for views larger than a thumbnail).
    Raises the decoder's :class:`BenchError` (missing, unreadable, above the caps)."""
    if path is None:
        raise BenchError("image not found", "<no file>", "no images folder")
    size = images.probe(path)
    return images.decode(path, target=max_side), size


def image_size(path: str | os.PathLike | None) -> tuple[int, int] | None:
    """``(width, height)`` from the file header (no decoding), ``None`` if unreadable,
    not a regular file, or above the pixel caps (then it is never decoded either)."""
    if path is None:
        return None
    try:
        return images.probe(path)
    except BenchError:
        return None


def _thumb_path(key: FileKey, px: int, cache: Path | None) -> Path:
    digest = hashlib.sha1(f"{key[0]}|{key[1]}|{key[2]}|{px}|{_VERSION}".encode()).hexdigest()
    return (cache or cache_root()) / "thumbs" / digest[:2] / f"{digest}.jpg"


def _make_thumbnail_file(path: str | os.PathLike, key: FileKey, px: int,
                         cache: Path | None) -> tuple[Path | None, Image.Image | None]:
    """(cached file, the image if it had to be decoded now); BenchError on refusal."""
    out = _thumb_path(key, px, cache)
    if out.is_file():
        return out, None
    img = images.decode(path, target=px)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            img.save(fh, format="JPEG", quality=88)
        os.replace(tmp, out)
    except OSError:  # read-only cache: still show the image
        return None, img
    return out, img


def thumbnail_file(path: str | os.PathLike | None, *, px: int = THUMB_PX,
                   cache: Path | None = None) -> Path | None:
    """The cached thumbnail (longer side <= *px*) of an image file, made on first use.

    Returns ``None`` when the source is missing, unreadable or above the pixel caps
    (nothing is cached then). The file is written to a temporary name and renamed, so a
    reader never sees half a thumbnail, even with several sessions making the same one.
    """
    key = file_key(path)
    if key is None:
        return None
    try:
        return _make_thumbnail_file(path, key, px, cache)[0]
    except BenchError:
        return None


def load_thumbnail(path: str | os.PathLike | None, *, px: int = THUMB_PX
                   ) -> tuple[Image.Image, tuple[int, int]]:
    """``(thumbnail, (width, height) of the original)``: the cached thumbnail (made on
    first use, decoded at a reduced size) and the header's size, for drawing shapes given
    in image pixels. Raises :class:`BenchError` (missing, unreadable, above the caps:
    docs/PROTOCOLS.md §8 rule 9); the size is checked from the header on every call, so
    raising a cap takes effect at once."""
    key = file_key(path)
    if key is None:
        raise BenchError("image not found", path if path is not None else "<no file>",
                         "no such regular file")
    size = images.probe(path)
    tf, img = _make_thumbnail_file(path, key, px, None)
    if img is None:
        try:
            img = images.decode(tf)
        except BenchError:  # a damaged cache file: decode the source again
            img = images.decode(path, target=px)
    return img, size


def problem_note(exc: BenchError) -> str:
    """The short reason a placeholder tile shows for a refused image (with its size when
    it is above a cap): ``"too large: 13,000 x 13,000 px (cap 40.0 MP)"``."""
    if isinstance(exc, images.ImageTooLarge):
        w, h = exc.size
        px_cap, side_cap = images.limits()
        cap = (f"cap {px_cap / 1e6:,.1f} MP" if w * h > px_cap
               else f"side cap {side_cap:,} px")
        return f"too large: {w:,} x {h:,} px ({cap})"
    return exc.what


def thumbnail(path: str | os.PathLike | None, name: str, *, px: int = THUMB_PX) -> Image.Image:
    """The thumbnail image of *path*, or a placeholder tile naming *name* and why (image
    not found, unreadable, or too large with its size: :func:`problem_note`)."""
    try:
        return load_thumbnail(path, px=px)[0]
    except BenchError as exc:
        return render.placeholder(name, size=px, note=problem_note(exc))


@lru_cache(maxsize=4096)
def _tile(key: FileKey | None, path: str | None, name: str, color: render.RGB,
          badge: str | None, size: int, caption: tuple[str, ...],
          caps: tuple[int, int]) -> bytes:
    img = thumbnail(path, name) if key is not None else render.placeholder(
        name, size=size, note="image not found")
    tile = render.framed(img, color, size=size, badge=badge, caption=caption)
    return render.jpeg_bytes(tile, quality=88)


def tile_jpeg(path: str | os.PathLike | None, name: str, color: render.RGB, *,
              badge: str | None = None, size: int = TILE_PX,
              caption: tuple[str, ...] | list[str] = ()) -> bytes:
    """JPEG bytes of a framed square tile (see :func:`bench.render.framed`) for a grid.

    Kept in memory by (file identity, colour, badge, size, caption, pixel caps) on top of
    the disk cache, so re-showing a grid costs one ``stat`` per image. An image that is
    missing, unreadable or above the pixel caps gives a placeholder tile saying so.
    """
    key = file_key(path)
    try:
        caps = images.limits()
    except BenchError:  # a bad $BENCH_MAX_PIXELS: the tile's placeholder says so
        caps = (0, 0)
    return _tile(key, str(path) if key is not None else None, name, tuple(color), badge, size,
                 tuple(caption), caps)


__all__ = ["THUMB_PX", "TILE_PX", "cache_root", "file_key", "image_size", "load_image",
           "load_scaled", "load_thumbnail", "open_image", "problem_note", "resolve_image", "thumbnail",
           "thumbnail_file", "tile_jpeg"]
