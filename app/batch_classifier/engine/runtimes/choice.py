"""Which runtime runs the model: the one place that decides (``--runtime``, the window's control).

``auto`` takes ONNX Runtime on the CPU when the model exports and passes the
parity check, and torch everywhere else (GPUs, MPS, autocast precisions,
models that do not export). ``onnxruntime`` asks for it outright: it runs on
the CPU in fp32 only, so other devices and precisions are refused, and a
model that does not export falls back to torch as under ``auto``; it also
tries the export again where the cache remembers a failure, which ``auto``
takes as it is (``onnx_export.py``). Every fallback is one line that says
why, for the front end to show.
"""

from __future__ import annotations

import torch

from ..models import LoadedModel
from ..runner import input_scale, normalised
from . import RUNTIME_CHOICES, ModelForward
from .export_process import ExportFailed
from .onnx_export import StageCallback, prepared_session
from .onnx_forward import OnnxForward
from .torch_forward import TorchForward

PROBE_IMAGES = 3
_PROBE_SEED = 20240617


def probe_batch(model: LoadedModel) -> torch.Tensor:
    """Fixed random images, normalised as the runner normalises real ones, for the parity check."""
    size = model.spec.crop_size
    generator = torch.Generator().manual_seed(_PROBE_SEED)
    pixels = torch.randint(0, 256, (PROBE_IMAGES, size, size, 3), generator=generator, dtype=torch.uint8)
    return normalised(pixels, *input_scale(model.spec, torch.device("cpu")), torch.contiguous_format)


def choose_forward(
    model: LoadedModel,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    requested: str,
    threads: int,
    on_stage: StageCallback | None = None,
) -> tuple[ModelForward, str]:
    """The forward for this run and a one-line note when it is not the runtime asked for ("" otherwise).

    Raises ``ValueError`` for a combination that cannot work (ONNX Runtime on a GPU or in half precision).
    """
    if requested not in RUNTIME_CHOICES:
        raise ValueError(f"unknown runtime {requested!r} (choose {', '.join(RUNTIME_CHOICES)})")
    if requested == "onnxruntime" and device.type != "cpu":
        raise ValueError(f"the onnxruntime runtime runs on the CPU only, not {device.type}: use --runtime auto or torch")
    if requested == "onnxruntime" and autocast_dtype is not None:
        raise ValueError("the onnxruntime runtime runs in fp32 only: use --precision auto or fp32, or --runtime torch")
    reference = TorchForward(model.module, device, autocast_dtype)
    if requested == "torch" or device.type != "cpu" or autocast_dtype is not None:
        return reference, ""
    try:
        session = prepared_session(
            model.module, model.spec.crop_size, reference, probe_batch(model), threads, on_stage,
            retry_failure=requested == "onnxruntime",
        )
    except ExportFailed as why:
        return reference, f"running on torch, not ONNX Runtime: {why}"
    return OnnxForward(session), ""
