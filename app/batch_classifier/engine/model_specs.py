"""Library names for resampling filters, as the decoder's Pillow filters.

torchvision's ``InterpolationMode`` values and timm's config strings are the
same words ("bilinear", "bicubic", ...); one table reads both, so a model's
preprocessing comes from its library and never from a guess.
"""

from __future__ import annotations

from PIL import Image

_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def resampling(name: str) -> Image.Resampling:
    """The Pillow filter for a library's interpolation name; bilinear for "random" and other training-only modes."""
    return _FILTERS.get(name.lower(), Image.Resampling.BILINEAR)
