"""timm models: the pretrained config's preprocessing and labels, and weights from the Hugging Face cache.

Offline and with random weights: the "cached" weights are written into a
stand-in cache folder laid out as huggingface_hub lays it out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from batch_classifier import cli
from batch_classifier.engine.models import ModelLoadError, list_models, load_model
from batch_classifier.engine.timm_models import FEATURED_TIMM, timm_spec
from batch_classifier.engine.weights_cache import WeightsUnavailable

timm = pytest.importorskip("timm")
huggingface_hub = pytest.importorskip("huggingface_hub")

NAME = "resnet18.a1_in1k"


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, and no network: the hub library's own offline mode."""
    cache = tmp_path / "hf-hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def _cache_weights(cache: Path, repo_id: str, state: dict[str, torch.Tensor]) -> Path:
    """Put a weights file where huggingface_hub keeps the main revision of ``repo_id``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file(state, str(snapshot / "model.safetensors"))
    return snapshot / "model.safetensors"


def test_random_weights_come_with_the_pretrained_config() -> None:
    loaded = load_model(f"timm/{NAME}", pretrained=False)
    config = timm.data.resolve_model_data_config(timm.create_model(NAME, pretrained=False))
    assert config["crop_pct"] == 0.95 and config["interpolation"] == "bicubic"
    assert (loaded.spec.crop_size, loaded.spec.resize_size) == (224, 235)  # floor(224 / 0.95)
    assert loaded.spec.mean == config["mean"] and loaded.spec.std == config["std"]
    assert loaded.spec.resample.name == "BICUBIC"
    assert len(loaded.labels) == 1000 and loaded.labels[0].startswith("tench")
    assert loaded.name == f"timm/{NAME}" and not loaded.module.training


def test_label_names_of_the_config_win(monkeypatch: pytest.MonkeyPatch) -> None:
    create = timm.create_model

    def with_label_names(name: str, **kwargs):  # type: ignore[no-untyped-def]
        overlay = {"label_names": ["cat", "dog"], "num_classes": 2}
        return create(name, **kwargs, num_classes=2, pretrained_cfg_overlay=overlay)

    monkeypatch.setattr(timm, "create_model", with_label_names)
    assert load_model(f"timm/{NAME}", pretrained=False).labels == ("cat", "dog")


def test_cached_weights_load_without_the_network(hf_cache: Path) -> None:
    original = timm.create_model(NAME, pretrained=False).eval()
    _cache_weights(hf_cache, f"timm/{NAME}", original.state_dict())
    loaded = load_model(f"timm/{NAME}", allow_download=False)
    images = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(images), original(images))


@pytest.mark.parametrize("allow_download", [False, True], ids=["no-download", "download-fails"])
def test_missing_weights_offline_name_the_cache_folder(hf_cache: Path, allow_download: bool) -> None:
    with pytest.raises(WeightsUnavailable) as raised:
        load_model(f"timm/{NAME}", allow_download=allow_download)
    message = str(raised.value)
    assert f"timm/{NAME} not available offline" in message and str(hf_cache) in message
    assert "\n" not in message


def test_unknown_timm_model_is_one_line() -> None:
    with pytest.raises(ModelLoadError, match="unknown timm model 'resnet9000'"):
        load_model("timm/resnet9000", pretrained=False)


def test_crop_modes_without_an_equivalent_are_refused() -> None:
    squashed = timm.create_model(NAME, pretrained=False, pretrained_cfg_overlay={"crop_mode": "squash"})
    with pytest.raises(ModelLoadError, match="'squash' cropping"):
        timm_spec(squashed)


def test_featured_timm_models_are_listed_with_their_cache(hf_cache: Path, capsys: pytest.CaptureFixture) -> None:
    _cache_weights(hf_cache, f"timm/{FEATURED_TIMM[0]}", {"stand-in": torch.zeros(1)})
    listed = {entry.name: entry for entry in list_models() if entry.source == "timm"}
    assert list(listed) == [f"timm/{name}" for name in FEATURED_TIMM]
    assert listed[f"timm/{FEATURED_TIMM[0]}"].offline_ready
    assert not listed[f"timm/{FEATURED_TIMM[1]}"].offline_ready
    assert listed[f"timm/{FEATURED_TIMM[1]}"].detail == str(hf_cache)
    assert cli.main(["models"]) == 0
    printed = capsys.readouterr().out
    assert f"timm/{FEATURED_TIMM[1]}" in printed and str(hf_cache) in printed


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "http://hub.invalid"], ids=["refused", "no-dns"])
def test_command_line_without_cached_weights_says_one_line_at_once(
    hf_cache: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    """A hub that cannot be reached is found out before the download, which would retry for a minute."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    samples = str(Path(__file__).resolve().parent.parent / "resources" / "samples")
    assert cli.main(["classify", samples, "--model", f"timm/{NAME}", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and str(hf_cache) in captured.err and "cannot be reached" in captured.err
