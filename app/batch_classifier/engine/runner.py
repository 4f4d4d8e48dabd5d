"""The thread that owns the model and the device: uint8 pixels in, top-k out.

Pixels travel as uint8 (4x fewer bytes than float32), from pinned memory
with a non-blocking copy, and become normalised floats on the device. The
model runs channels_last under ``inference_mode``, with autocast on CUDA.
Out of memory is not an error here: the batch is split and retried, and the
cap that worked is remembered, so no image is ever dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .devices import MemoryReading, peak_memory, reset_peak_memory, synchronize
from .models import LoadedModel

OUT_OF_MEMORY = -1
"""The class index reported for an image that did not fit in memory even alone."""


@dataclass(frozen=True)
class Scores:
    """Top-k of one forward pass, on the CPU: (images, k) confidences and class indices.

    An image that does not fit in memory even alone has index -1 in every
    column: the caller turns it into an error row.
    """

    confidences: torch.Tensor
    indices: torch.Tensor
    copy_ms: float
    forward_ms: float
    memory: MemoryReading


class Runner:
    """Runs batches through one model on one device; call from one thread only."""

    runtime = "torch"
    """The name of what runs the model, written in every row (the ``runtime`` column)."""

    def __init__(
        self, model: LoadedModel, device: torch.device, autocast_dtype: torch.dtype | None, top_k: int
    ) -> None:
        self.model = model
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.top_k = max(1, min(top_k, len(model.labels)))
        self.oom_cap: int | None = None
        self.module = model.module.to(device).to(memory_format=torch.channels_last).eval()
        spec = model.spec
        self._mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1) * 255

    def _to_device(self, pixels: torch.Tensor) -> torch.Tensor:
        """NHWC uint8 on the host to normalised NCHW (channels_last) floats on the device."""
        if self.device.type == "cuda" and pixels.device.type == "cpu":
            pixels = pixels.pin_memory().to(self.device, non_blocking=True)
        else:
            pixels = pixels.to(self.device)
        # NHWC permuted is already channels_last; normalising in place saves two batch-sized allocations.
        images = pixels.permute(0, 3, 1, 2).float().sub_(self._mean).div_(self._std)
        return images.contiguous(memory_format=torch.channels_last)

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is not None:
            with torch.autocast(self.device.type, dtype=self.autocast_dtype):
                logits = self.module(batch)
        else:
            logits = self.module(batch)
        return logits.float().softmax(dim=1).topk(self.top_k, dim=1)

    def run(self, pixels: torch.Tensor) -> Scores:
        """Classify an NHWC uint8 batch (host or device); splits it on out-of-memory.

        A split batch lowers ``oom_cap`` to the half that was retried, for the
        caller to apply to the batcher: the next batches then fit first time.
        """
        reset_peak_memory(self.device)
        copy_ms = forward_ms = 0.0
        confidences: list[torch.Tensor] = []
        indices: list[torch.Tensor] = []
        pending = [pixels]
        while pending:
            part = pending.pop(0)
            if self.oom_cap is not None and len(part) > self.oom_cap:
                pending[:0] = list(part.split(self.oom_cap))
                continue
            try:
                with torch.inference_mode():
                    started = time.perf_counter()
                    batch = self._to_device(part)
                    synchronize(self.device)
                    copied = time.perf_counter()
                    top = self._forward(batch)
                    part_conf, part_idx = top.values.cpu(), top.indices.cpu()
                    finished = time.perf_counter()
            except torch.OutOfMemoryError:
                batch = top = None  # let the allocator reclaim before retrying
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(part) == 1:
                    confidences.append(torch.zeros(1, self.top_k))
                    indices.append(torch.full((1, self.top_k), OUT_OF_MEMORY, dtype=torch.long))
                    continue
                half = (len(part) + 1) // 2
                self.oom_cap = half if self.oom_cap is None else min(self.oom_cap, half)
                pending[:0] = [part[:half], part[half:]]
                continue
            copy_ms += (copied - started) * 1000
            forward_ms += (finished - copied) * 1000
            confidences.append(part_conf)
            indices.append(part_idx)
        return Scores(torch.cat(confidences), torch.cat(indices), copy_ms, forward_ms, peak_memory(self.device))
