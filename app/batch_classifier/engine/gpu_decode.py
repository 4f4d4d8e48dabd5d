"""Decode JPEGs on the GPU (nvjpeg) in one batched call, then resize and crop there.

On an H100 this decodes about six times faster than 16 Pillow threads, which
makes it the end-to-end ceiling. A batched ``decode_jpeg`` fails as a whole
if one file is bad, so a failed batch is retried file by file, and a file the
GPU cannot decode goes back to the Pillow path (which gives the real reason).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from .decode import THUMBNAIL_SIZE, InputSpec, crop_box

JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})
_JPEG_MAGIC = b"\xff\xd8\xff"


def wants_gpu_decode(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in JPEG_EXTENSIONS


def read_jpeg_bytes(path: str) -> torch.Tensor | None:
    """The file's bytes as a uint8 tensor, or None when it is not a readable JPEG."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if not data.startswith(_JPEG_MAGIC):
        return None
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _resize(region: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """CHW uint8 to HWC uint8 of the given size, antialiased like Pillow's resize."""
    resized = F.interpolate(
        region.unsqueeze(0).float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.squeeze(0).clamp_(0, 255).round_().to(torch.uint8).permute(1, 2, 0)


def _model_input_and_thumbnail(image: torch.Tensor, spec: InputSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The centre crop at the model's size (on the device) and a small thumbnail (on the host)."""
    _, height, width = image.shape
    left, top, right, bottom = crop_box(width, height, spec)
    region = image[:, int(top) : max(int(top) + 1, round(bottom)), int(left) : max(int(left) + 1, round(right))]
    shrink = THUMBNAIL_SIZE / max(height, width)
    thumbnail = _resize(image, max(1, round(height * shrink)), max(1, round(width * shrink)))
    return _resize(region, spec.crop_size, spec.crop_size), thumbnail.cpu()


def decode_on_device(
    encoded: list[torch.Tensor], spec: InputSpec, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """(HWC uint8 model input on ``device``, thumbnail) per input; None where the GPU could not decode it."""
    if not encoded:
        return []
    try:
        decoded: list[torch.Tensor | None] = list(
            decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
        )
    except RuntimeError:
        decoded = []
        for data in encoded:
            try:
                decoded.append(
                    decode_jpeg(data, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
                )
            except RuntimeError:
                decoded.append(None)
    return [None if image is None else _model_input_and_thumbnail(image, spec) for image in decoded]
