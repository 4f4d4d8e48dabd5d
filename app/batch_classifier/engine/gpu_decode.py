"""Decode JPEGs on the GPU (nvjpeg) in one batched call, then resize and crop there.

On an H100 this decodes about six times faster than 16 Pillow threads, which
makes it the end-to-end ceiling. A batched ``decode_jpeg`` fails as a whole
if one file is bad, so a failed batch is retried file by file, and a file the
GPU cannot decode goes back to the Pillow path (which gives the real reason).
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn.functional as F

from .decode import THUMBNAIL_SIZE, InputSpec, crop_box

# torchvision 0.29 deprecates its codecs in favour of TorchCodec and says so on
# every call; nvjpeg through decode_jpeg still works across the supported range.
warnings.filterwarnings(
    "ignore", message="The image decoding and encoding capabilities of TorchVision", category=DeprecationWarning
)
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


def _model_input(image: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """The centre crop at the model's size, as the Pillow path cuts it."""
    _, height, width = image.shape
    left, top, right, bottom = crop_box(width, height, spec)
    region = image[:, int(top) : max(int(top) + 1, round(bottom)), int(left) : max(int(left) + 1, round(right))]
    return _resize(region, spec.crop_size, spec.crop_size)


def _thumbnail(image: torch.Tensor) -> torch.Tensor:
    _, height, width = image.shape
    shrink = THUMBNAIL_SIZE / max(height, width)
    return _resize(image, max(1, round(height * shrink)), max(1, round(width * shrink)))


def _thumbnails_to_host(thumbnails: list[torch.Tensor]) -> list[torch.Tensor]:
    """One device-to-host copy for all thumbnails: each ``.cpu()`` alone would synchronise."""
    if not thumbnails:
        return []
    flat = torch.cat([thumbnail.reshape(-1) for thumbnail in thumbnails]).cpu()
    pieces = flat.split([thumbnail.numel() for thumbnail in thumbnails])
    return [piece.view(thumbnail.shape) for piece, thumbnail in zip(pieces, thumbnails)]


def _decode_each(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """The batched call first; if it fails, file by file, so one bad file costs only itself."""
    from torchvision.io import ImageReadMode, decode_jpeg  # here only: a second of start-up

    try:
        return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True))
    except RuntimeError:
        decoded: list[torch.Tensor | None] = []
        for data in encoded:
            try:
                decoded.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True))
            except RuntimeError:
                decoded.append(None)
        return decoded


def decode_on_device(
    encoded: list[torch.Tensor], spec: InputSpec, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """(HWC uint8 model input on ``device``, thumbnail on the host) per input; None where the GPU failed."""
    if not encoded:
        return []
    decoded = _decode_each(encoded, device)
    images = [image for image in decoded if image is not None]
    inputs = iter([_model_input(image, spec) for image in images])
    thumbnails = iter(_thumbnails_to_host([_thumbnail(image) for image in images]))
    return [None if image is None else (next(inputs), next(thumbnails)) for image in decoded]
