"""Decode JPEGs on the GPU (nvjpeg) in batched calls, then resize and crop there on the reference grid.

On an H100 this decodes about six times faster than 16 Pillow threads, which
makes it the end-to-end ceiling, so the work around nvjpeg is kept to a few
kernel launches per batch rather than per image: photos of the same size
(most of any camera's folder) are resized, cropped and thumbnailed as one
stacked tensor, on the grid of the model's reference transform (``fidelity.py``).
nvjpeg and the GPU's resampling are not bit-identical to libjpeg-turbo and
Pillow, so this path is held to top-1 agreement with the CPU's ``exact``
mode instead (``benchmarks/fidelity.py``); the preprocessing mode does not
change it, as nvjpeg always decodes every pixel. Device memory is bounded by
the pixel counts the headers claim, so a batch of 24-megapixel photos is
decoded a slice at a time.

A batched ``decode_jpeg`` fails as a whole if one file is bad, so a failed
call is halved until the bad file stands alone; a file the GPU cannot decode
goes back to the Pillow path, which gives the real reason. On CUDA,
``decode_jpeg`` ignores ``apply_exif_orientation``, so the orientation is read
from the header with the size and applied here, on every device alike.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from PIL import ExifTags, Image

from .decode import MAX_PIXELS, THUMBNAIL_SIZE, InputSpec, open_regular_file
from .fidelity import reference_grid
from .records import EncodedJpeg

JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})  # MPO: a camera's JPEG with extra frames after the first

PIXELS_PER_DECODE_CALL = 128_000_000
"""Decoded pixels one nvjpeg call may hold (384 MB of RGB): about 65 photos of
2 megapixels, or 5 of 24 megapixels, so big photos cannot fill a small GPU."""

FLOAT_BYTES_PER_RESIZE = 256 * 2**20
"""Float32 working memory one stacked crop-and-resize may use."""


# What Pillow's ImageOps.exif_transpose does for each EXIF orientation, on CHW tensors.
_UPRIGHT: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {
    2: lambda image: image.flip(-1),
    3: lambda image: image.flip(-2, -1),
    4: lambda image: image.flip(-2),
    5: lambda image: image.transpose(-2, -1),
    6: lambda image: image.rot90(-1, (-2, -1)),
    7: lambda image: image.transpose(-2, -1).flip(-2, -1),
    8: lambda image: image.rot90(1, (-2, -1)),
}


def wants_gpu_decode(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in JPEG_EXTENSIONS


def read_jpeg(path: str) -> EncodedJpeg | None:
    """The file's bytes and what its header says, or None when the Pillow path should take it.

    None covers everything the GPU should not try: not a regular file, not a
    JPEG, a header beyond the decompression-bomb limit. The Pillow path then
    decodes it or writes the reason into the row. The header is read first,
    so such a file is never read whole here.
    """
    try:
        with open_regular_file(path) as handle:
            with Image.open(handle) as image:  # the header only; Pillow leaves a handle it was given open
                width, height = image.size
                image_format = image.format
                orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
            if image_format not in _JPEG_FORMATS or not 0 < width * height <= MAX_PIXELS:
                return None
            handle.seek(0)
            data = handle.read()
    except Exception:  # whatever the reason, the Pillow path meets it again and words it for the row
        return None
    if not isinstance(orientation, int):  # a malformed tag: Pillow's own path ignores it too
        orientation = 1
    return EncodedJpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), width, height, orientation)


def decode_on_device(
    encoded: Sequence[EncodedJpeg], spec: InputSpec, device: torch.device, thumbnails: bool = True
) -> list[tuple[torch.Tensor, torch.Tensor | None] | None]:
    """(HWC uint8 model input on ``device``, HWC uint8 thumbnail on the host or None) per input.

    None in place of the pair where the GPU could not decode the file, or
    where the resized image would be too big to make whole (a strip far longer
    than wide, which the Pillow path resamples only where it crops). Without
    ``thumbnails`` the full-size images are only cropped, which on the GPU
    halves the work around nvjpeg. On CUDA the work runs on a stream of its
    own and is finished on return: the model's stream, busy with the previous
    batch meanwhile, never waits for nvjpeg, and the caller may hand the
    tensors to any thread.
    """
    if device.type != "cuda":
        return _decode_and_resize(encoded, spec, device, thumbnails)
    stream = torch.cuda.Stream(device)  # from PyTorch's pool: cheap, nothing to destroy
    with torch.cuda.stream(stream):
        results = _decode_and_resize(encoded, spec, device, thumbnails)
    stream.synchronize()
    return results


def _decode_and_resize(
    encoded: Sequence[EncodedJpeg], spec: InputSpec, device: torch.device, thumbnails: bool
) -> list[tuple[torch.Tensor, torch.Tensor | None] | None]:
    inputs: list[torch.Tensor | None] = [None] * len(encoded)
    small: list[torch.Tensor | None] = [None] * len(encoded)
    resizable = [
        index
        for index, jpeg in enumerate(encoded)
        if reference_grid(jpeg.width, jpeg.height, spec.resize_size, spec.crop_size).whole_image_fits
    ]
    for run in _slices_within([encoded[index] for index in resizable], PIXELS_PER_DECODE_CALL):
        call = [resizable[position] for position in run]
        decoded = [
            None if image is None else _upright(image, encoded[index].orientation)
            for index, image in zip(call, _decode_batch([encoded[index].data for index in call], device))
        ]
        for group in _same_shape_groups(call, decoded):
            model_inputs, thumbnail_batch = _resized([image for _, image in group], spec, thumbnails)
            for position, (index, _) in enumerate(group):
                inputs[index] = model_inputs[position]
                if thumbnail_batch is not None:
                    small[index] = thumbnail_batch[position]
    on_host = iter(_to_host([thumbnail for thumbnail in small if thumbnail is not None]))
    return [
        None if model_input is None else (model_input, next(on_host) if thumbnails else None) for model_input in inputs
    ]


def _slices_within(encoded: Sequence[EncodedJpeg], pixel_budget: int) -> Iterator[list[int]]:
    """Consecutive runs of indices whose claimed pixels fit the budget (a bigger image goes alone)."""
    run: list[int] = []
    pixels = 0
    for index, jpeg in enumerate(encoded):
        size = jpeg.width * jpeg.height
        if run and pixels + size > pixel_budget:
            yield run
            run, pixels = [], 0
        run.append(index)
        pixels += size
    if run:
        yield run


def _decode_batch(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """One batched call; on failure, each half again, so k bad files among n cost about 2k log2(n) calls.

    Running out of device memory is a failure like any other here: the halves
    need less, and a single image that still fails goes to Pillow.
    """
    from torchvision.io import ImageReadMode, decode_jpeg  # here only: a second of start-up

    try:
        return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=False))
    except RuntimeError:  # torch.OutOfMemoryError included
        if len(data) == 1:
            return [None]
        half = len(data) // 2
        return _decode_batch(data[:half], device) + _decode_batch(data[half:], device)


def _upright(image: torch.Tensor, orientation: int) -> torch.Tensor:
    turn = _UPRIGHT.get(orientation)
    return image if turn is None else turn(image)


def _same_shape_groups(
    indices: list[int], decoded: list[torch.Tensor | None]
) -> Iterator[list[tuple[int, torch.Tensor]]]:
    """Decoded images by shape, each group cut so its float working copy fits FLOAT_BYTES_PER_RESIZE."""
    by_shape: dict[tuple[int, ...], list[tuple[int, torch.Tensor]]] = defaultdict(list)
    for index, image in zip(indices, decoded):
        if image is not None:
            by_shape[tuple(image.shape)].append((index, image))
    for shape, members in by_shape.items():
        per_group = max(1, FLOAT_BYTES_PER_RESIZE // (4 * shape[0] * shape[1] * shape[2]))
        for start in range(0, len(members), per_group):
            yield members[start : start + per_group]


def _interpolate(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """NCHW to float NCHW of the given size, antialiased like Pillow's resize (and torchvision's on tensors)."""
    return F.interpolate(images.float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def _to_hwc_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float NCHW to contiguous uint8 NHWC, so each image taken from it later is a plain view, not a copy."""
    return images.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _resized(
    images: list[torch.Tensor], spec: InputSpec, thumbnails: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Model inputs (and thumbnails) of CHW images of one shape, cut on the reference grid.

    As the reference does, the whole image is resized and the crop taken
    from it (one padding call crops, or pads with black where the crop is
    larger than the image); the thumbnails are made from the resized images.
    """
    height, width = images[0].shape[-2:]
    grid = reference_grid(width, height, spec.resize_size, spec.crop_size)
    resized = _interpolate(torch.stack(images), grid.height, grid.width)
    left, top, right, bottom = grid.box
    model_inputs = _to_hwc_uint8(F.pad(resized, (-left, right - grid.width, -top, bottom - grid.height)))
    if not thumbnails:
        return model_inputs, None
    shrink = THUMBNAIL_SIZE / max(grid.height, grid.width)
    small = _interpolate(resized, max(1, round(grid.height * shrink)), max(1, round(grid.width * shrink)))
    return model_inputs, _to_hwc_uint8(small)


def _to_host(thumbnails: list[torch.Tensor]) -> list[torch.Tensor]:
    """One device-to-host copy for all thumbnails: each ``.cpu()`` alone would synchronise."""
    if not thumbnails:
        return []
    flat = torch.cat([thumbnail.reshape(-1) for thumbnail in thumbnails]).cpu()
    pieces = flat.split([thumbnail.numel() for thumbnail in thumbnails])
    return [piece.view(thumbnail.shape) for piece, thumbnail in zip(pieces, thumbnails)]
