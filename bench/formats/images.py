"""The one image decoder: size from the header first, a pixel cap, reduced decoding.

Every image the workbench shows (thumbnails, tiles, the pair view, the error map, the
triage gallery, the study's trials) is decoded here (docs/PROTOCOLS.md §8, rule 9):

1. the file must be a regular file (:func:`bench.formats.files.is_regular_file`);
2. ``PIL.Image.open`` reads only the header, restricted to the formats of
   :data:`FORMATS` (so no plugin that shells out, such as EPS, is ever tried);
3. the header's width and height are checked against two caps **before any pixel is
   decoded**: ``width * height <= max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`, env
   ``BENCH_MAX_PIXELS``, CLI ``--max-pixels``) and ``max(width, height) <= max_side``
   (default :data:`DEFAULT_MAX_SIDE`, env ``BENCH_MAX_SIDE``, CLI ``--max-side``), so a
   13000 x 13000 PNG of 657 KB and a 1 x 10^8 strip are refused at the cost of a header;
4. with a *target* size, decoding is reduced where the format allows it: JPEG by
   ``draft`` (the DCT decodes at 1/2, 1/4 or 1/8 scale), every other format by
   ``Image.reduce`` (box averaging by an integer factor) right after decoding and before
   any colour conversion, then a Lanczos resize to the target.

Decoding memory is therefore bounded by the caps: the decoded image at full size (for
formats without draft; Pillow keeps RGB and RGBA at 4 bytes a pixel) plus what shrinking
it costs (measured, ``tests/test_hostile.py``: at most 1.5x the decoded size without
alpha, 2.6x with alpha, where Pillow shrinks a premultiplied copy), i.e. about 240 MB
(RGB) or 420 MB (RGBA) at the default cap of 40 MP. Colour conversion comes after
shrinking.

Refusals and unreadable files raise :class:`bench.errors.BenchError` naming the file and
its size; callers that show pictures turn it into a placeholder tile with the message
(:func:`bench.thumbs.thumbnail`), never an exception.

This module imports Pillow only when an image is opened, so the CLI can set the caps
without paying for it (docs/PROTOCOLS.md §8).
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from typing import TYPE_CHECKING

from bench.errors import HOSTILE_ERRORS, BenchError
from bench.formats.files import is_regular_file

if TYPE_CHECKING:
    from PIL import Image

#: width * height above which an image is refused before decoding (40 megapixels: the
#: benchmarks' images are about 1 MP (Oxford/Paris, 1024 px) to a few MP (GPR1200)).
DEFAULT_MAX_PIXELS = 40_000_000
#: longer side above which an image is refused (a 1 x 10^7 strip is under the pixel cap
#: but no picture: every thumbnail of it is one pixel wide).
DEFAULT_MAX_SIDE = 30_000
#: Pillow format names :func:`decode` accepts (the extensions of
#: :data:`bench.protocol.IMAGE_EXTS`, plus GIF and TIFF found under those names).
FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF")

_ENV_PIXELS = "BENCH_MAX_PIXELS"
_ENV_SIDE = "BENCH_MAX_SIDE"
_overrides: dict[str, int | None] = {"pixels": None, "side": None}
RAISE = (f"raise the cap with --max-pixels / --max-side or the environment variables "
         f"{_ENV_PIXELS} / {_ENV_SIDE}")


class ImageTooLarge(BenchError):
    """An image whose header size is above the pixel or side cap (nothing was decoded).

    ``size`` is the header's ``(width, height)``."""

    def __init__(self, file: str | os.PathLike, size: tuple[int, int], why: str):
        self.size = size
        super().__init__("image too large", file, why)


def configure(*, max_pixels: int | None = None, max_side: int | None = None) -> None:
    """Set the caps for this process (the CLI calls this with ``--max-pixels`` and
    ``--max-side``); ``None`` leaves a cap to the environment or the default. Also
    exported to the environment, so a server the CLI starts inherits them."""
    for name, v, env in (("pixels", max_pixels, _ENV_PIXELS), ("side", max_side, _ENV_SIDE)):
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"max_{name} must be a positive integer")
            os.environ[env] = str(v)
        _overrides[name] = v


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return None
    try:
        v = int(float(raw)) if raw.lower() != "inf" else None
    except (ValueError, OverflowError):
        v = None
    if v is None or v < 1:
        raise BenchError("bad setting", f"${name}", f"{raw[:40]!r} must be a positive "
                         "whole number of pixels")
    return v


def limits(max_pixels: int | None = None, max_side: int | None = None) -> tuple[int, int]:
    """``(max_pixels, max_side)`` in force: the arguments, else :func:`configure`'s, else
    ``BENCH_MAX_PIXELS`` / ``BENCH_MAX_SIDE``, else the defaults."""
    px = max_pixels or _overrides["pixels"] or _env_int(_ENV_PIXELS) or DEFAULT_MAX_PIXELS
    side = max_side or _overrides["side"] or _env_int(_ENV_SIDE) or DEFAULT_MAX_SIDE
    return int(px), int(side)


def _mp(n: int) -> str:
    return f"{n / 1e6:,.1f} MP" if n >= 100_000 else f"{n:,} px"


def check_size(path: str | os.PathLike, size: tuple[int, int], *,
               max_pixels: int | None = None, max_side: int | None = None) -> None:
    """Raise :class:`ImageTooLarge` when *size* (from the header) is above a cap."""
    w, h = size
    px_cap, side_cap = limits(max_pixels, max_side)
    if w < 1 or h < 1:
        raise BenchError("unreadable image", path, f"the header gives a size of {w} x {h}")
    if w * h > px_cap:
        raise ImageTooLarge(path, (w, h), f"{w:,} x {h:,} px = {_mp(w * h)}, above the cap "
                            f"of {_mp(px_cap)}; nothing was decoded ({RAISE})")
    if max(w, h) > side_cap:
        raise ImageTooLarge(path, (w, h), f"{w:,} x {h:,} px: a side of {max(w, h):,} px is "
                            f"above the cap of {side_cap:,} px; nothing was decoded ({RAISE})")


def _decode_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image

    return (*HOSTILE_ERRORS, OSError, SyntaxError, EOFError, struct.error, zlib.error,
            ZeroDivisionError, Image.DecompressionBombError)


def _open(path: str | os.PathLike) -> Image.Image:
    """``Image.open`` of a regular file, header only; BenchError when it is not one."""
    from PIL import Image

    if not is_regular_file(path):
        raise BenchError("image not found", path, "no such regular file")
    try:
        with warnings.catch_warnings():
            # our caps are the limit; Pillow's bomb error (2x its own cap) is still mapped
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path, formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise BenchError("image too large", path, f"{exc}") from None
    except _decode_errors() as exc:
        raise BenchError("unreadable image", path, _why(exc)) from None


def _why(exc: BaseException) -> str:
    msg = str(exc).splitlines()[0][:200] if str(exc) else ""
    if "cannot identify image file" in msg:
        return f"not an image in a known format ({', '.join(FORMATS)})"
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def probe(path: str | os.PathLike, *, max_pixels: int | None = None,
          max_side: int | None = None) -> tuple[int, int]:
    """``(width, height)`` from the header (no pixel decoded), checked against the caps.

    Raises :class:`BenchError` (missing, not an image) or :class:`ImageTooLarge`."""
    with _open(path) as im:
        size = tuple(int(v) for v in im.size)
    check_size(path, size, max_pixels=max_pixels, max_side=max_side)
    return size  # type: ignore[return-value]


def header_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` from the header, *without* the caps (for labelling an image
    that :func:`probe` refuses). BenchError when it is not an image."""
    with _open(path) as im:
        return int(im.size[0]), int(im.size[1])


def decode(path: str | os.PathLike, *, target: int | None = None,
           max_pixels: int | None = None, max_side: int | None = None) -> Image.Image:
    """The image in RGB (transparency composited on white), decoded within the caps.

    With *target*, the longer side of the result is at most *target* pixels and the
    decoding is reduced as the format allows (JPEG ``draft``; ``reduce`` otherwise),
    never enlarged. Raises :class:`BenchError` naming the file: missing, not an image,
    truncated, or (:class:`ImageTooLarge`) above a cap, with the header's size.
    """
    if target is not None and target < 1:
        raise ValueError("target must be a positive number of pixels")
    from PIL import Image

    from bench import render

    im = _open(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            size = (int(im.size[0]), int(im.size[1]))
            check_size(path, size, max_pixels=max_pixels, max_side=max_side)
            if target is not None and im.format in ("JPEG", "MPO"):  # MPO: a JPEG
                im.draft("RGB", (target, target))  # scale 1/2^k, still >= target
            im.load()
            img: Image.Image = im
            if target is not None and max(img.size) > target and img.mode in _REDUCIBLE:
                # shrink in the decoded mode, before any colour conversion
                factor = max(img.size) // (2 * target)  # keep 2x for the Lanczos pass
                if factor >= 2:
                    img = img.reduce(factor)
                img = _fit_native(img, target)
            img = render.ensure_rgb(img)
            if target is not None:
                img = render.fit(img, target)
            elif img is im:
                img = img.copy()
    except BenchError:
        raise
    except _decode_errors() as exc:
        raise BenchError("unreadable image", path, _why(exc)) from None
    finally:
        im.close()
    return img


def open_image(path: str | os.PathLike, *, max_side: int | None = None,
               max_pixels: int | None = None) -> Image.Image | None:
    """:func:`decode` (*max_side* is its *target*), or ``None`` when it refuses."""
    try:
        return decode(path, target=max_side, max_pixels=max_pixels)
    except BenchError:
        return None


# modes Image.reduce and Image.resize handle (P and 1 are converted first, by ensure_rgb)
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBa", "La", "CMYK", "YCbCr", "I", "F"})


def _fit_native(img: Image.Image, target: int) -> Image.Image:
    """*img* scaled down (Lanczos) to at most *target* on its longer side, in its mode."""
    from PIL import Image

    w, h = img.size
    s = target / max(w, h)
    if s >= 1:
        return img
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)


__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MAX_SIDE", "FORMATS", "ImageTooLarge", "check_size",
           "configure", "decode", "header_size", "limits", "open_image", "probe"]
