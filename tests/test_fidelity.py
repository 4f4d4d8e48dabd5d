"""The reference grid and the preprocessing modes, checked against torchvision itself.

Geometry: for odd sizes, the resized size and the crop's place (padding
included) equal what torchvision's ``Resize`` and ``CenterCrop`` do to an
image whose pixels hold their own coordinates. Pixels: ``exact`` equals the
torchvision transform bit for bit on real photos of several sizes and
modes; ``fast`` stays within the bound ``benchmarks/fidelity.py`` measured;
the batched GPU path (run on the CPU here) cuts on the same grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image, ImageOps

import corpus
from batch_classifier.engine import fidelity
from batch_classifier.engine.decode import InputSpec, load_pixels
from batch_classifier.engine.gpu_decode import decode_on_device, read_jpeg
from batch_classifier.engine.pipeline import START_ERRORS, Classifier, RunConfig
from support import tiny_classifier

SPEC = InputSpec()
ODD_SIZES = [
    (640, 480),  # landscape
    (480, 640),  # portrait
    (100, 50),  # smaller than the crop: upscaled
    (10, 10),
    (1, 40),  # one pixel wide: the long side is 256 x 40
    (40, 1),
    (257, 256),  # resized width 257: the margin 33 is odd, round(16.5) is 16 (halves to even)
    (259, 256),  # round(17.5) is 18
    (301, 199),  # the long side truncated: 256 * 301 / 199 = 387.2
    (1600, 1199),
    (225, 224),
]
SPECS = [
    SPEC,
    InputSpec(resize_size=232, crop_size=224),  # torchvision's resnet50 V2 weights
    InputSpec(resize_size=199, crop_size=224),  # a crop larger than the resized image: padded with black, 12 + 13
    InputSpec(resize_size=224, crop_size=224),
]


def torchvision_cut(width: int, height: int, spec: InputSpec) -> np.ndarray:
    """(crop, crop, 2): the 1-based (row, column) of the resized image at each crop pixel, 0 where padded."""
    resized_height, resized_width = T.Resize(spec.resize_size, T.InterpolationMode.NEAREST)(
        torch.zeros(1, height, width)
    ).shape[-2:]
    rows, columns = torch.meshgrid(
        torch.arange(1, resized_height + 1), torch.arange(1, resized_width + 1), indexing="ij"
    )
    return T.CenterCrop(spec.crop_size)(torch.stack([rows, columns])).permute(1, 2, 0).numpy()


def our_cut(width: int, height: int, spec: InputSpec) -> np.ndarray:
    grid = fidelity.reference_grid(width, height, spec.resize_size, spec.crop_size)
    offsets = np.arange(spec.crop_size)
    rows, columns = grid.top + offsets + 1, grid.left + offsets + 1
    rows[(rows < 1) | (rows > grid.height)] = 0
    columns[(columns < 1) | (columns > grid.width)] = 0
    cut = np.zeros((spec.crop_size, spec.crop_size, 2), dtype=np.int64)
    cut[..., 0], cut[..., 1] = rows[:, None], columns[None, :]
    cut[(cut[..., 0] == 0) | (cut[..., 1] == 0)] = 0
    return cut


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: f"{spec.resize_size}-{spec.crop_size}")
@pytest.mark.parametrize("size", ODD_SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_the_grid_is_torchvisions(size: tuple[int, int], spec: InputSpec) -> None:
    np.testing.assert_array_equal(our_cut(*size, spec), torchvision_cut(*size, spec))


def reference(path: Path, spec: InputSpec = SPEC) -> np.ndarray:
    """The validation script's model input: Pillow, EXIF orientation, RGB, Resize, CenterCrop."""
    interpolation = {Image.Resampling.BICUBIC: T.InterpolationMode.BICUBIC}.get(
        spec.resample, T.InterpolationMode.BILINEAR
    )
    transform = T.Compose(
        [T.Resize(spec.resize_size, interpolation, antialias=True), T.CenterCrop(spec.crop_size)]
    )
    with Image.open(path) as image:
        return np.asarray(transform(ImageOps.exif_transpose(image).convert("RGB")))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real photos in several sizes, modes and formats, with the bundled ones as they are."""
    folder = tmp_path_factory.mktemp("photos")
    rocket = Image.open(corpus.SAMPLE_PHOTO).convert("RGB")  # 640x427
    cat = Image.open(corpus.SAMPLES / "chelsea.png").convert("RGB")  # 451x300
    big = rocket.resize((1700, 1134), Image.Resampling.BICUBIC)
    made = {
        "big.jpg": (big, {"quality": 90}),
        "cmyk-big.jpg": (big.convert("CMYK"), {"quality": 90}),
        "portrait.jpg": (cat.transpose(Image.Transpose.ROTATE_90), {"quality": 90}),
        "small.png": (rocket.resize((150, 100)), {}),
        "strip.png": (rocket.crop((300, 0, 301, 60)), {}),
        "grey.jpg": (rocket.convert("L"), {"quality": 90}),
        "palette.png": (cat.quantize(64), {}),
        "palette.gif": (rocket.convert("P"), {}),
        "cmyk.jpg": (cat.convert("CMYK"), {"quality": 90}),
        "cmyk.tif": (rocket.convert("CMYK"), {}),
    }
    paths = {name: folder / name for name in made}
    for name, (image, options) in made.items():
        image.save(paths[name], **options)
    for orientation in (3, 6, 8):
        paths[f"exif-{orientation}.jpg"] = corpus.exif_rotated(folder / f"exif-{orientation}.jpg", rocket, orientation)
    paths["exif-6-big.jpg"] = corpus.exif_rotated(folder / "exif-6-big.jpg", big, 6)
    for sample in sorted(corpus.SAMPLES.glob("*.*g")):
        paths[sample.name] = sample
    return paths


def test_the_photos_cover_the_modes_asked_for(photos: dict[str, Path]) -> None:
    modes = set()
    for path in photos.values():
        with Image.open(path) as image:
            modes.add(image.mode)
    assert {"RGB", "L", "P", "CMYK"} <= modes


@pytest.mark.parametrize("spec", [SPEC, InputSpec(resample=Image.Resampling.BICUBIC), SPECS[2]],
                         ids=["bilinear", "bicubic", "padded"])
def test_exact_is_torchvision_bit_for_bit(photos: dict[str, Path], spec: InputSpec) -> None:
    for name, path in photos.items():
        pixels, _ = load_pixels(str(path), spec, thumbnail=False, preprocess="exact")
        assert np.array_equal(pixels, reference(path, spec)), f"{name} differs from torchvision's transform"


FAST_MEAN_BOUND = 0.45
FAST_PIXEL_BOUND = 12
"""Absolute difference from the reference, out of 255: the mean per image and the worst pixel.
benchmarks/fidelity.py measured a mean of 0.27 over the bundled photos and 200 JPEGs of 1600x1200
(at most 0.32 for one image) and 7 for the worst pixel; scaling down to 1/4 (draft factor 1)
gives means of 0.50 to 0.95."""


def test_fast_stays_within_its_measured_bound(photos: dict[str, Path]) -> None:
    drafted = 0
    for name, path in photos.items():
        fast, _ = load_pixels(str(path), SPEC, thumbnail=False, preprocess="fast")
        exact = reference(path)
        difference = np.abs(fast.astype(int) - exact)
        assert difference.mean() <= FAST_MEAN_BOUND, f"{name}: fast differs by {difference.mean():.2f}/255 on average"
        assert difference.max() <= FAST_PIXEL_BOUND, f"{name}: a pixel differs by {difference.max()}"
        drafted += not np.array_equal(fast, exact)
    assert drafted == 3, "only the three big JPEGs are decoded at a smaller scale"


def test_a_strip_too_long_to_resize_whole_is_cut_from_the_crop_alone(
    photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond EXACT_RESIZED_PIXELS only the crop is resampled: the same grid, within one level."""
    monkeypatch.setattr(fidelity, "EXACT_RESIZED_PIXELS", 100)
    for name, path in photos.items():
        pixels, thumbnail = load_pixels(str(path), SPEC, preprocess="exact")
        difference = np.abs(pixels.astype(int) - reference(path))
        assert difference.max() <= 1 and difference.mean() < 0.5, name
        assert thumbnail is not None and max(thumbnail.shape[:2]) <= 64


def tensor_reference(path: Path) -> np.ndarray:
    """torchvision's pipeline on tensors, as a GPU script would run it: decode, turn upright, resize, crop."""
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    image = decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB, apply_exif_orientation=True).float()
    cut = TF.center_crop(TF.resize(image, [SPEC.resize_size], antialias=True), [SPEC.crop_size])
    return cut.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_the_batched_gpu_path_cuts_on_the_reference_grid(photos: dict[str, Path]) -> None:
    """Run on the CPU device: the same code as on CUDA, equal to torchvision's tensor pipeline."""
    names = ["big.jpg", "portrait.jpg", "grey.jpg", "exif-6.jpg", "exif-8.jpg", "rocket.jpg", "rocket.jpg"]
    results = decode_on_device([read_jpeg(str(photos[name])) for name in names], SPEC, torch.device("cpu"))
    for name, result in zip(names, results):
        assert result is not None, name
        expected = tensor_reference(photos[name])
        assert np.array_equal(result[0].numpy(), expected), f"{name} is not cut as torchvision cuts it"
        assert np.abs(result[0].numpy().astype(int) - reference(photos[name])).mean() < 1.0, name


def test_the_gpu_path_leaves_a_strip_too_long_to_resize_whole_to_pillow(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "long.jpg"
    Image.new("RGB", (8, 200), (230, 20, 20)).save(photo, quality=95)
    monkeypatch.setattr(fidelity, "EXACT_RESIZED_PIXELS", 256 * 256 * 20)
    assert decode_on_device([read_jpeg(str(photo))], SPEC, torch.device("cpu")) == [None]
    classifier = tiny_classifier(tiny_model)
    classifier.jpeg_device = torch.device("cpu")
    rows = []
    classifier.classify([str(photo)], on_batch=lambda outcome: rows.extend(outcome.results))
    assert [(row.status, row.label, row.preprocess) for row in rows] == [("ok", "red", "exact")]


def test_an_unknown_mode_is_refused_before_anything_runs(tiny_model) -> None:
    with pytest.raises(START_ERRORS) as refused:
        Classifier(RunConfig(model=str(tiny_model.path), labels=str(tiny_model.labels), preprocess="sloppy"))
    assert "unknown preprocessing 'sloppy'" in str(refused.value)
