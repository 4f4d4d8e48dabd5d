"""What a model wants as input, where that is known without torch: resampling names and the bundled model.

torchvision's ``InterpolationMode`` values and timm's config strings are the
same words ("bilinear", "bicubic", ...); one table reads both, so a model's
preprocessing comes from its library and never from a guess.

The bundled model's input is known here, before torch or the model has
loaded, so the command line can start decoding while they load; every other
model says its input only once loaded (a torchvision weights entry, timm's
config, the user's file).
"""

from __future__ import annotations

from PIL import Image

from .decode import InputSpec

DEFAULT_MODEL = "efficientnet_lite0"
# EfficientNet-Lite was trained on inputs scaled to [-1, 1]: (x - 127) / 128.
LITE0_SPEC = InputSpec(resize_size=256, crop_size=224, mean=(0.498,) * 3, std=(0.502,) * 3)

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


def spec_before_loading(model: str) -> InputSpec | None:
    """The input ``model`` will ask for, if that is known before it loads (as ``models.load_model`` gives it); else None."""
    return LITE0_SPEC if model == DEFAULT_MODEL else None
