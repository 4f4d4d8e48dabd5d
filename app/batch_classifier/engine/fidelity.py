"""The reference crop grid and the preprocessing modes, shared by the CPU and GPU decoders.

A model's own validation script resizes the short side with torchvision's
``Resize(resize_size)`` and cuts ``CenterCrop(crop_size)``: the resized size
is an integer (the long side truncated) and the crop's offsets are rounded
(Python's ``round``, halves to even). Predictions equal the script's only if
the pixels are cut on that same grid, so both decoders ask this module where
to cut and never work it out themselves. timm's evaluation transform ends in
the same two torchvision transforms, so its grid is this one too.

The modes say how the source pixels are obtained before that grid is applied:
``exact`` decodes every pixel, so on the CPU the crop is the reference's bit
for bit; ``fast`` lets a JPEG decoder scale by 1/2, 1/4 or 1/8 during the DCT,
never below ``FAST_DRAFT_FACTOR`` times the resize size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PREPROCESS_CHOICES = ("exact", "fast")
DEFAULT_PREPROCESS = "exact"
"""``benchmarks/fidelity.py`` measured ``fast`` at 99.5 % top-1 agreement with
the reference on 204 photos: over the 99 % target by one image, too thin a
margin to give up results that equal a validation script's (see the README)."""

PREPROCESS_HELP = {
    "exact": "the model's reference preprocessing, pixel for pixel (every JPEG pixel decoded)",
    "fast": "big JPEGs decoded at 1/2 scale or less: 40% less decode work, 99.5% of top-1 labels unchanged",
}
"""One line per mode, for ``--help`` and the window."""

FAST_DRAFT_FACTOR = 2
"""In ``fast`` mode the JPEG decoder may scale down while the short side stays
at least this many times the resize size (1/4 scale or more would be faster
and cost more agreement; see ``benchmarks/fidelity.py``)."""

EXACT_RESIZED_PIXELS = 16 * 2**20
"""The largest resized image that is made whole before cropping. Beyond it
(a strip thousands of times longer than wide) only the crop is resampled:
the same grid within one level per pixel, without gigabytes of memory."""


@dataclass(frozen=True)
class CropGrid:
    """Where the reference transform cuts one image: resize to ``width`` x ``height``, then take the crop.

    ``left`` and ``top`` place the crop in the resized image; they are
    negative when the crop is larger than the resized image, which the
    reference pads with black.
    """

    width: int
    height: int
    left: int
    top: int
    crop: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The crop in the resized image's pixels: (left, top, right, bottom)."""
        return (self.left, self.top, self.left + self.crop, self.top + self.crop)

    @property
    def whole_image_fits(self) -> bool:
        """Whether the resized image is small enough to be made whole, as the reference makes it."""
        return self.width * self.height <= EXACT_RESIZED_PIXELS

    def source_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The crop in the pixels of a source image of ``width`` x ``height`` (which may be a draft of the original)."""
        scale_x, scale_y = width / self.width, height / self.height
        left, top, right, bottom = self.box
        return (left * scale_x, top * scale_y, right * scale_x, bottom * scale_y)


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """torchvision's ``Resize(short_side)`` output size: the short side set, the long side truncated.

    The expression is torchvision's own (``int(size * long / short)``), so
    its floating-point rounding is the same too.
    """
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = short_side, int(short_side * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def crop_offset(size: int, crop: int) -> int:
    """torchvision's ``center_crop`` offset along one side of ``size`` pixels.

    A crop larger than the side pads it, the smaller half of the padding
    first; otherwise the offset is ``round`` of half the margin, which in
    Python rounds halves to even.
    """
    if crop > size:
        return -((crop - size) // 2)
    return int(round((size - crop) / 2.0))


def reference_grid(width: int, height: int, resize_size: int, crop_size: int) -> CropGrid:
    """The grid of ``Resize(resize_size)`` then ``CenterCrop(crop_size)`` for an upright image of that size."""
    new_width, new_height = resized_size(width, height, resize_size)
    return CropGrid(
        new_width, new_height, crop_offset(new_width, crop_size), crop_offset(new_height, crop_size), crop_size
    )


def draft_request(width: int, height: int, resize_size: int, preprocess: str) -> tuple[int, int] | None:
    """The size to ask a JPEG decoder for (Pillow's ``draft``), or None to decode every pixel.

    The decoder picks the smallest DCT scale that still gives at least this
    size, so the short side never falls below ``FAST_DRAFT_FACTOR`` x
    ``resize_size``.
    """
    if preprocess != "fast":
        return None
    scale = min(width, height) / (FAST_DRAFT_FACTOR * resize_size)
    if scale <= 1:
        return None
    return (math.ceil(width / scale), math.ceil(height / scale))
