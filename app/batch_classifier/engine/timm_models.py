"""timm models (``--model timm/<name>``), with the preprocessing and labels of their pretrained config.

timm is an optional extra: nothing here imports it until a timm model is
asked for, and the registry lists the featured names only when it is
installed. Weights live in the Hugging Face cache, where timm's own download
puts them; a cached file is loaded from disk (safetensors, or a weights-only
``torch.load``) without asking the network, so an offline machine with the
weights works and one without them gets one line naming the cache folder.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import socket
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from .decode import InputSpec
from .model_errors import ModelLoadError, first_line
from .model_specs import resampling
from .weights_cache import WeightsUnavailable

TIMM_PREFIX = "timm/"
FEATURED_TIMM = (
    "convnext_tiny.fb_in22k_ft_in1k",
    "efficientnet_b0.ra_in1k",
    "mobilenetv3_large_100.ra_in1k",
    "resnet50.a1_in1k",
    "vit_base_patch16_224.augreg2_in21k_ft_in1k",
)
# What timm's hub download looks for, safest first.
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_REACH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TimmEntry:
    """A featured timm model as the registry lists it."""

    name: str
    cached: Path | None
    cache_dir: Path


def is_timm_name(name: str) -> bool:
    return name.startswith(TIMM_PREFIX)


def timm_installed() -> bool:
    return importlib.util.find_spec("timm") is not None


def _timm() -> ModuleType:
    try:
        import timm
    except ImportError:
        raise ModelLoadError(
            "timm models need the optional timm extra: pip install 'batch-classifier[timm]'"
        ) from None
    return timm


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache (``$HF_HUB_CACHE``, else ``~/.cache/huggingface/hub``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_weights(repo_id: str) -> Path | None:
    """The weights file of ``repo_id`` in the Hugging Face cache, if one is there."""
    from huggingface_hub import try_to_load_from_cache

    for filename in _WEIGHT_FILES:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=hf_cache_dir())
        if isinstance(found, str):
            return Path(found)
    return None


def featured_timm() -> list[TimmEntry]:
    """The featured names with their cached weights; empty when timm is not installed."""
    if not timm_installed():
        return []
    return [TimmEntry(name, cached_weights(TIMM_PREFIX + name), hf_cache_dir()) for name in FEATURED_TIMM]


def _create(name: str, **kwargs: Any) -> torch.nn.Module:
    timm = _timm()
    if not timm.is_model(name):
        raise ModelLoadError(f"unknown timm model {name!r} (timm.list_models() lists them)")
    try:
        return timm.create_model(name, **kwargs)
    except (RuntimeError, ValueError, TypeError, KeyError) as error:
        raise ModelLoadError(f"cannot build timm model {name}: {first_line(error)}") from None


def load_timm(
    name: str, pretrained: bool, allow_download: bool
) -> tuple[torch.nn.Module, InputSpec, tuple[str, ...] | None]:
    """``timm/<name>``: the model, its preprocessing, and its label names when it has any."""
    arch = name.removeprefix(TIMM_PREFIX)
    if not pretrained:
        module = _create(arch, pretrained=False)
        return module, timm_spec(module), timm_labels(module)
    config = _timm().models.get_pretrained_cfg(arch)
    repo_id = getattr(config, "hf_hub_id", None) or name
    cached = cached_weights(repo_id)
    if cached is not None:
        module = _create(arch, pretrained=True, pretrained_cfg_overlay={"file": str(cached)})
    elif not allow_download or (unreachable := _unreachable_hub()):
        why = "" if not allow_download else f", and {unreachable}"
        raise WeightsUnavailable(
            f"weights for {name} not available offline: not in the Hugging Face cache {hf_cache_dir()}{why}"
        )
    else:
        try:
            with _hub_warnings_silenced():
                module = _create(arch, pretrained=True)
        except ModelLoadError:
            raise
        except Exception as error:  # no network, hub errors, timeouts: each library raises its own
            raise WeightsUnavailable(
                f"weights for {name} not available offline: not in the Hugging Face cache {hf_cache_dir()} "
                f"and the download failed ({first_line(error)})"
            ) from None
    return module, timm_spec(module), timm_labels(module)


def _unreachable_hub() -> str | None:
    """Why the hub cannot be reached, found in seconds; None when it can (or a proxy decides).

    The hub library retries a failed connection with back-off for about a
    minute per file before it gives up; an offline user should hear at once.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=_REACH_TIMEOUT_S).close()
    except OSError as error:
        return f"{endpoint.hostname} cannot be reached ({error.strerror or first_line(error)})"
    return None


@contextmanager
def _hub_warnings_silenced() -> Iterator[None]:
    """The hub logs each failed request as a warning; the one line raised after it says it all."""
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub_logger.setLevel(level)


def build_timm_architecture(arch: str, num_classes: int | None) -> tuple[torch.nn.Module, InputSpec]:
    """A timm architecture with random weights, for a fine-tuned state_dict to fill."""
    extra = {} if num_classes is None else {"num_classes": num_classes}
    module = _create(arch, pretrained=False, **extra)
    return module, timm_spec(module)


def timm_spec(module: torch.nn.Module) -> InputSpec:
    """The model's pretrained config as the decoder's geometry: the numbers timm's eval transform uses.

    timm resizes the short side to ``floor(size / crop_pct)`` and centre-crops
    ``size``; that is exactly ``InputSpec``. Its other crop modes (squash,
    border) and non-square inputs have no equivalent here, so they are refused
    rather than silently preprocessed another way.
    """
    config = _timm().data.resolve_model_data_config(module)
    _, height, width = config["input_size"]
    crop_mode = config.get("crop_mode", "center")
    if crop_mode != "center" or height != width:
        raise ModelLoadError(
            f"this timm model wants {crop_mode!r} cropping to {height}x{width}; only a centre crop "
            "of a square is supported"
        )
    return InputSpec(
        resize_size=math.floor(height / config["crop_pct"]),
        crop_size=int(height),
        mean=tuple(float(value) for value in config["mean"]),
        std=tuple(float(value) for value in config["std"]),
        resample=resampling(str(config["interpolation"])),
    )


def timm_labels(module: torch.nn.Module) -> tuple[str, ...] | None:
    """The config's own label names, else the ImageNet subset its class count matches, else None."""
    config = getattr(module, "pretrained_cfg", None) or {}
    names = config.get("label_names")
    if names:
        return tuple(str(name) for name in names)
    data = _timm().data
    subset = data.infer_imagenet_subset(module)
    if not subset:
        return None
    info = data.ImageNetInfo(subset)
    return tuple(info.index_to_description(index) for index in range(info.num_classes()))
