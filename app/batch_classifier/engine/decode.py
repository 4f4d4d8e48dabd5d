"""Read one image file into uint8 pixels at the model's input size, or say why not.

Runs in a thread pool: Pillow releases the GIL while it decodes. The pixels
are cut on the model's reference grid (``fidelity.py``): in ``exact`` mode the
crop equals torchvision's ``Resize`` + ``CenterCrop`` bit for bit; in ``fast``
mode JPEG draft mode lets the decoder scale by 1/2, 1/4 or 1/8 during the DCT
first. A strip thousands of pixels long is resampled only where the crop
keeps it, so it costs no more memory than a photo. Any failure becomes a
one-line reason; nothing here raises. It needs no torch (the pixels are numpy
arrays), so the command line decodes the first images while torch loads.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .fidelity import DEFAULT_PREPROCESS, draft_request, reference_grid
from .records import DecodedImage

# Refuse images whose header claims more pixels than this before decoding a
# byte: twice Pillow's own warning threshold, about a 13,000 x 13,000 scan.
MAX_PIXELS = 2 * 89_478_485
THUMBNAIL_SIZE = 64
_WIDE_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the image a quarter


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


def load_pixels(
    path: str, spec: InputSpec, thumbnail: bool = True, preprocess: str = DEFAULT_PREPROCESS
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode ``path`` to (model input HWC uint8, thumbnail HWC uint8 if asked for); raise DecodeError.

    The model input is cut on the reference grid of the upright image's full
    size, whatever scale a ``fast`` JPEG draft decoded it at.
    """
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
            if image.format == "JPEG" and (request := draft_request(width, height, spec.resize_size, preprocess)):
                image.draft("RGB", request)
            image.load()
            if image.getexif().get(ExifTags.Base.Orientation) in _SWAPPING_ORIENTATIONS:
                width, height = height, width  # the grid is the upright image's, at its full size
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
    grid = reference_grid(width, height, spec.resize_size, spec.crop_size)
    if grid.whole_image_fits:
        resized = rgb.resize((grid.width, grid.height), spec.resample)
        pixels = resized.crop(grid.box)  # outside the image, Pillow fills black, as the reference pads
    else:
        resized = rgb
        pixels = rgb.resize((spec.crop_size, spec.crop_size), spec.resample, box=grid.source_box(*rgb.size))
    if not thumbnail:
        return np.array(pixels), None
    resized.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.BILINEAR)
    return np.array(pixels), np.array(resized)


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


def decode_file(
    index: int, path: str, spec: InputSpec, thumbnail: bool = True, preprocess: str = DEFAULT_PREPROCESS
) -> DecodedImage:
    """Decode one input for the batcher; any failure becomes an error record."""
    started = time.perf_counter()
    try:
        pixels, small = load_pixels(path, spec, thumbnail, preprocess)
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
        pixels=pixels,
        decode_ms=(time.perf_counter() - started) * 1000,
        thumbnail=small,
    )
