"""Images from disk for the app: name lookup, safe opening, and a thumbnail disk cache.

Thumbnails are made once and kept under ``cache_root()/thumbs/`` as JPEG files named by a
hash of the source's absolute path, size and modification time and the thumbnail size, so
a changed image gets a new thumbnail and an old one is simply never read again. A
missing or unreadable image never raises: callers get ``None`` (or a placeholder tile).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

from PIL import Image

from bench import render
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
    """The image in RGB, or ``None`` when it is missing, unreadable or absurdly large.

    With *max_side*, JPEG decoding uses PIL's draft mode (a cheap DCT-domain downscale)
    and the result is scaled down to at most *max_side* pixels on its longer side.
    Only a regular file is opened (a FIFO or device path gives ``None``, never a hang).
    """
    if path is None or not is_regular_file(path):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if max_side is not None and im.format == "JPEG":
                    im.draft("RGB", (max_side, max_side))
                im.load()
                img = render.ensure_rgb(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError):
        return None
    if max_side is not None:
        img = render.fit(img, max_side)
    return img


def image_size(path: str | os.PathLike | None) -> tuple[int, int] | None:
    """``(width, height)`` from the file header (no decoding), ``None`` if unreadable
    or not a regular file."""
    if path is None or not is_regular_file(path):
        return None
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def thumbnail_file(path: str | os.PathLike | None, *, px: int = THUMB_PX,
                   cache: Path | None = None) -> Path | None:
    """The cached thumbnail (longer side <= *px*) of an image file, made on first use.

    Returns ``None`` when the source is missing or unreadable (nothing is cached then).
    The file is written to a temporary name and renamed, so a reader never sees half a
    thumbnail, even with several sessions making the same one.
    """
    key = file_key(path)
    if key is None:
        return None
    digest = hashlib.sha1(f"{key[0]}|{key[1]}|{key[2]}|{px}|{_VERSION}".encode()).hexdigest()
    root = cache or cache_root()
    out = root / "thumbs" / digest[:2] / f"{digest}.jpg"
    if out.is_file():
        return out
    img = open_image(path, max_side=px)
    if img is None:
        return None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            img.save(fh, format="JPEG", quality=88)
        os.replace(tmp, out)
    except OSError:  # read-only cache: still show the image
        return None
    return out


def thumbnail(path: str | os.PathLike | None, name: str, *, px: int = THUMB_PX) -> Image.Image:
    """The thumbnail image of *path*, or a placeholder tile naming *name*."""
    tf = thumbnail_file(path, px=px)
    img = open_image(tf) if tf is not None else None
    if img is None:
        img = open_image(path, max_side=px) if path is not None else None
    if img is None:
        note = "image not found" if file_key(path) is None else "unreadable image"
        return render.placeholder(name, size=px, note=note)
    return img


@lru_cache(maxsize=4096)
def _tile(key: FileKey | None, path: str | None, name: str, color: render.RGB,
          badge: str | None, size: int, caption: tuple[str, ...]) -> bytes:
    img = thumbnail(path, name) if key is not None else render.placeholder(
        name, size=size, note="image not found")
    tile = render.framed(img, color, size=size, badge=badge, caption=caption)
    return render.jpeg_bytes(tile, quality=88)


def tile_jpeg(path: str | os.PathLike | None, name: str, color: render.RGB, *,
              badge: str | None = None, size: int = TILE_PX,
              caption: tuple[str, ...] | list[str] = ()) -> bytes:
    """JPEG bytes of a framed square tile (see :func:`bench.render.framed`) for a grid.

    Kept in memory by (file identity, colour, badge, size, caption) on top of the disk
    cache, so re-showing a grid costs one ``stat`` per image.
    """
    key = file_key(path)
    return _tile(key, str(path) if key is not None else None, name, tuple(color), badge, size,
                 tuple(caption))


__all__ = ["THUMB_PX", "TILE_PX", "cache_root", "file_key", "image_size", "open_image", "resolve_image",
           "thumbnail", "thumbnail_file", "tile_jpeg"]
