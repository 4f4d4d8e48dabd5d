"""Each model route's preprocessing is its library's own, checked on the real sample photos.

The reference is the library's transform (torchvision's ``weights.transforms()``,
``timm.data.create_transform`` on the pretrained config); ours is the decoder
in ``exact`` mode followed by the runner's own normalisation. The uint8 crop
must be the reference's exactly, and the normalised tensor within 1e-3.
Offline only the bundled model has trained weights, so top-1 agreement is
checked on it; the other routes are checked on pixels and tensors, with
random weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image, ImageOps

from batch_classifier.engine.decode import load_pixels
from batch_classifier.engine.models import DEFAULT_MODEL, LoadedModel, _torchvision_weights, load_model
from batch_classifier.engine.runner import Runner
from batch_classifier.engine.runtimes.torch_forward import TorchForward

SAMPLES = sorted(path for path in (Path(__file__).resolve().parent.parent / "resources" / "samples").iterdir()
                 if path.suffix in (".jpg", ".png"))
TORCHVISION = ("resnet18", "mobilenet_v3_large")
TIMM = ("timm/resnet18.a1_in1k", "timm/convnext_tiny.fb_in22k_ft_in1k")


def _photo(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def _ours(loaded: LoadedModel, path: Path) -> tuple[np.ndarray, torch.Tensor]:
    """The decoder's exact crop, and the tensor the runner makes of it for the model."""
    pixels, _ = load_pixels(str(path), loaded.spec, thumbnail=False, preprocess="exact")
    runner = Runner(loaded, torch.device("cpu"), TorchForward(loaded.module, torch.device("cpu"), None), top_k=1)
    return pixels, runner._to_device(torch.from_numpy(pixels)[None])[0]


def _torchvision_reference(name: str, photo: Image.Image) -> tuple[np.ndarray, torch.Tensor]:
    transform = _torchvision_weights(name).transforms()
    resized = F.resize(photo, transform.resize_size, interpolation=transform.interpolation, antialias=True)
    return np.asarray(F.center_crop(resized, transform.crop_size)), transform(photo)


def _timm_reference(loaded: LoadedModel, photo: Image.Image) -> tuple[np.ndarray, torch.Tensor]:
    timm = pytest.importorskip("timm")
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(loaded.module))
    geometry = transform.transforms[:2]  # Resize, CenterCrop: what comes before the tensor
    crop = photo
    for step in geometry:
        crop = step(crop)
    return np.asarray(crop), transform(photo)


@pytest.fixture(scope="module", params=[*TORCHVISION, *TIMM])
def route(request: pytest.FixtureRequest) -> tuple[str, LoadedModel]:
    if request.param.startswith("timm/"):
        pytest.importorskip("timm")
    return request.param, load_model(request.param, pretrained=False)


@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_crop_and_tensor_are_the_librarys(route: tuple[str, LoadedModel], path: Path) -> None:
    name, loaded = route
    photo = _photo(path)
    if name.startswith("timm/"):
        reference_crop, reference = _timm_reference(loaded, photo)
    else:
        reference_crop, reference = _torchvision_reference(name, photo)
    crop, tensor = _ours(loaded, path)
    assert crop.shape == reference_crop.shape
    assert np.array_equal(crop, reference_crop), f"{int(np.abs(crop.astype(int) - reference_crop).max())} levels off"
    torch.testing.assert_close(tensor, reference, rtol=0, atol=1e-3)


def test_bundled_model_agrees_with_its_reference_script_on_top1() -> None:
    """The bundled weights are real, so here the check is the answer itself."""
    loaded = load_model(DEFAULT_MODEL)
    mean, std = loaded.spec.mean, loaded.spec.std
    references, ours = [], []
    for path in SAMPLES:
        photo = _photo(path)
        resized = F.resize(photo, loaded.spec.resize_size, interpolation=F.InterpolationMode.BILINEAR, antialias=True)
        reference = F.normalize(F.to_dtype(F.to_image(F.center_crop(resized, loaded.spec.crop_size)), torch.float32,
                                           scale=True), mean, std)
        references.append(reference)
        ours.append(_ours(loaded, path)[1])
    with torch.inference_mode():
        expected = loaded.module(torch.stack(references)).argmax(dim=1)
        got = loaded.module(torch.stack(ours)).argmax(dim=1)
    assert got.tolist() == expected.tolist()
