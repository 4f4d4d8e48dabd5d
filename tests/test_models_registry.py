"""The registry: what it lists, each torchvision model's own preprocessing, weights fetched safely."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from batch_classifier.engine import weights_cache
from batch_classifier.engine.models import (
    DEFAULT_MODEL,
    FEATURED_TORCHVISION,
    ModelLoadError,
    list_models,
    load_model,
)
from batch_classifier.engine.weights_cache import WeightsUnavailable, checkpoint_path, fetch


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch"


def test_registry_lists_default_first_then_featured() -> None:
    entries = list_models()
    assert entries[0].name == DEFAULT_MODEL and entries[0].offline_ready and entries[0].source == "bundled"
    names = [entry.name for entry in entries]
    assert names[1 : 1 + len(FEATURED_TORCHVISION)] == list(FEATURED_TORCHVISION)
    assert len(names) == len(set(names))


def test_offline_status_follows_the_torch_cache(torch_home: Path) -> None:
    def resnet18_ready() -> bool:
        return next(entry for entry in list_models() if entry.name == "resnet18").offline_ready

    assert not resnet18_ready()
    cached = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in")
    assert resnet18_ready()


@pytest.mark.parametrize(
    ("name", "resize", "crop"),
    [("resnet18", 256, 224), ("mobilenet_v3_large", 232, 224), ("efficientnet_b0", 256, 224),
     ("convnext_tiny", 236, 224), ("vit_b_16", 256, 224), ("resnet50", 232, 224)],
)
def test_featured_models_build_with_their_own_preprocessing(name: str, resize: int, crop: int) -> None:
    loaded = load_model(name, pretrained=False)
    assert (loaded.spec.resize_size, loaded.spec.crop_size) == (resize, crop)
    assert len(loaded.labels) == 1000 and loaded.labels[0] == "tench"
    assert not loaded.module.training


def test_default_model_uses_lite0_normalisation() -> None:
    loaded = load_model(DEFAULT_MODEL)
    assert loaded.spec.mean == (0.498,) * 3 and loaded.spec.std == (0.502,) * 3
    assert loaded.spec.crop_size == 224 and len(loaded.labels) == 1000


def test_unknown_model_is_one_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="unknown model 'resnet9000'"):
        load_model("resnet9000")


def test_missing_weights_offline_name_the_file_and_folder(torch_home: Path) -> None:
    with pytest.raises(WeightsUnavailable) as raised:
        load_model("resnet18", allow_download=False)
    message = str(raised.value)
    assert "resnet18-f37072fd.pth" in message and str(torch_home / "hub" / "checkpoints") in message


def fake_weights(folder: Path, payload: bytes, right_hash: bool = True) -> str:
    prefix = hashlib.sha256(payload if right_hash else b"other").hexdigest()[:8]
    source = folder / f"tiny-{prefix}.pth"
    source.write_bytes(payload)
    return source.as_uri()


def test_fetch_downloads_into_the_torch_cache_with_progress(torch_home: Path, tmp_path: Path) -> None:
    url = fake_weights(tmp_path, b"x" * 3_000_000)
    seen: list[tuple[int, int | None]] = []
    target = fetch(url, on_progress=lambda done, total: seen.append((done, total)))
    assert target == checkpoint_path(url) and target.parent == torch_home / "hub" / "checkpoints"
    assert target.read_bytes() == b"x" * 3_000_000
    assert seen[-1][0] == 3_000_000 and len(seen) >= 2
    assert not list(target.parent.glob("*.partial"))


def test_fetch_refuses_a_download_whose_checksum_is_wrong(torch_home: Path, tmp_path: Path) -> None:
    url = fake_weights(tmp_path, b"tampered", right_hash=False)
    with pytest.raises(WeightsUnavailable, match="checksum"):
        fetch(url)
    assert not checkpoint_path(url).exists()
    assert not list(checkpoint_path(url).parent.glob("*.partial"))


def test_fetch_without_network_says_where_to_put_the_file(torch_home: Path, monkeypatch) -> None:
    def offline(*_args, **_kwargs):
        raise weights_cache.urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(weights_cache.urllib.request, "urlopen", offline)
    url = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    with pytest.raises(WeightsUnavailable, match="put it there"):
        fetch(url)
