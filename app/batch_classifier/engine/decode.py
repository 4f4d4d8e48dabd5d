"""Read one image file into uint8 pixels at the model's input size, or say why not.

Runs in a thread pool: Pillow releases the GIL while it decodes. The work is
arranged so a big photo costs little: JPEG draft mode lets the decoder scale
by 1/2, 1/4 or 1/8 during the DCT, and the resize reads only the pixels that
survive the centre crop, so a 1x20000 strip or a 100 MP scan is as cheap as a
thumbnail. Any failure becomes a one-line reason; nothing here raises.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import time
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .records import DecodedImage

# Refuse images whose header claims more pixels than this before decoding a
# byte: twice Pillow's own warning threshold, about a 13,000 x 13,000 scan.
MAX_PIXELS = 2 * 89_478_485
THUMBNAIL_SIZE = 64
_WIDE_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})

# Pillow warns about odd files (large images below the limit, corrupt EXIF,
# truncated metadata) that this module either decodes anyway or turns into an
# error row; the warnings would only reach a terminal nobody reads. Set once
# here because ``warnings.catch_warnings`` is not safe across decode threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its input: resize the short side, centre crop, normalise."""

    resize_size: int = 256
    crop_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    resample: Image.Resampling = Image.Resampling.BILINEAR


class DecodeError(Exception):
    """A file that cannot become pixels; the message is the row's one-line reason."""


def crop_box(width: int, height: int, spec: InputSpec) -> tuple[float, float, float, float]:
    """The region of the original image that resize-then-centre-crop keeps.

    Resizing the short side to ``resize_size`` scales by ``s``; the crop then
    keeps ``crop_size / s`` original pixels each way around the centre (or the
    whole side, when the image is smaller than the crop).
    """
    scale = spec.resize_size / min(width, height)
    keep_w = min(width, spec.crop_size / scale)
    keep_h = min(height, spec.crop_size / scale)
    left = (width - keep_w) / 2
    top = (height - keep_h) / 2
    return (left, top, left + keep_w, top + keep_h)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB the way a person would expect it to look.

    Transparent pixels go on white (a logo on black is unreadable), 16-bit
    greyscale is scaled rather than clipped, CMYK and palette go through
    Pillow's own conversions.
    """
    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_GREY_MODES:
        return _wide_grey_to_rgb(image)
    if image.mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float32), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_grey_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16- or 32-bit greyscale to 8 bits; Pillow's own conversion clips it to white.

    A 16-bit mode is always scaled by 65535, so a dark 16-bit image stays dark.
    Mode ``I`` does not say its depth: values above 255 mean 16-bit data, else
    8-bit data held in wider integers.
    """
    values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
    peak = 65535 if image.mode != "I" or values.max(initial=0) > 255 else 255
    grey = ((values * 255 + peak // 2) // peak).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def _request_draft(image: Image.Image, spec: InputSpec) -> None:
    """Ask a JPEG decoder to downscale during decode, never below what the crop needs."""
    if image.format != "JPEG":
        return
    width, height = image.size
    scale = min(width, height) / spec.resize_size
    if scale <= 1:
        return
    image.draft("RGB", (math.ceil(width / scale), math.ceil(height / scale)))


def load_pixels(path: str, spec: InputSpec, thumbnail: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode ``path`` to (model input HWC uint8, thumbnail HWC uint8 if asked for); raise DecodeError."""
    try:
        with open_regular_file(path) as handle, Image.open(handle) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DecodeError(
                    f"image too large: {width}x{height} pixels exceeds the "
                    f"{MAX_PIXELS // 1_000_000} megapixel limit (decompression bomb guard)"
                )
            if width < 1 or height < 1:
                raise DecodeError(f"image has no pixels ({width}x{height})")
            _request_draft(image, spec)
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = _to_rgb(upright)
    except DecodeError:
        raise
    except UnidentifiedImageError:
        size = _size_or_none(path)
        reason = "empty file (0 bytes)" if size == 0 else "not an image Pillow can read"
        raise DecodeError(reason) from None
    except Image.DecompressionBombError as error:
        raise DecodeError(f"image too large (decompression bomb guard): {error}") from None
    except OSError as error:
        raise DecodeError(_read_failure(path, error)) from None
    except (SyntaxError, ValueError, EOFError) as error:
        raise DecodeError(f"corrupt or truncated image: {_one_line(error)}") from None
    except MemoryError:
        raise DecodeError("not enough memory to decode this image") from None
    pixels = rgb.resize(
        (spec.crop_size, spec.crop_size), spec.resample, box=crop_box(*rgb.size, spec)
    )
    if not thumbnail:
        return np.array(pixels), None
    small = rgb.copy()
    small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.BILINEAR)
    return np.array(pixels), np.array(small)


def open_regular_file(path: str) -> BinaryIO:
    """Open ``path`` for reading, refusing anything but a regular file.

    A named pipe called ``x.jpg`` would block a decode thread forever on
    ``open`` (and the run with it), so the file is opened non-blocking and its
    type checked before a byte is read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise DecodeError(_read_failure(path, error)) from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise DecodeError(
            "is a folder, not an image file"
            if stat.S_ISDIR(mode)
            else "not a regular file (a pipe, socket or device)"
        )
    return os.fdopen(descriptor, "rb")


def _read_failure(path: str, error: OSError) -> str:
    """The reason for an OSError: the file system's (it has an errno) or Pillow's (it has none)."""
    if error.errno is None:
        return f"corrupt or truncated image: {_one_line(error)}"
    if os.path.isdir(path):  # Windows refuses to open a folder with EACCES
        return "is a folder, not an image file"
    if error.errno == errno.ENOENT:
        return "broken symbolic link" if os.path.islink(path) else "file not found"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.ELOOP:
        return "too many levels of symbolic links (a symlink loop)"
    return f"cannot read file: {error.strerror or _one_line(error)}"


def _size_or_none(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def decode_file(index: int, path: str, spec: InputSpec, thumbnail: bool = True) -> DecodedImage:
    """Decode one input for the batcher; any failure becomes an error record."""
    started = time.perf_counter()
    try:
        pixels, small = load_pixels(path, spec, thumbnail)
    except DecodeError as error:
        return DecodedImage(
            index, path, error=str(error), decode_ms=(time.perf_counter() - started) * 1000
        )
    except Exception as error:  # a Pillow plugin bug must cost one row, not the run
        return DecodedImage(
            index,
            path,
            error=f"could not decode: {_one_line(error)}",
            decode_ms=(time.perf_counter() - started) * 1000,
        )
    return DecodedImage(
        index,
        path,
        pixels=torch.from_numpy(pixels),
        decode_ms=(time.perf_counter() - started) * 1000,
        thumbnail=None if small is None else torch.from_numpy(small),
    )
