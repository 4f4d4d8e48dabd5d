"""The runner: owns the model and the device, uint8 pixels in, top-k out.

It is no thread of its own: the thread that calls ``Classifier.classify``
(the command line's main thread, the window's worker thread) runs every
batch through it, and so is the one thread that touches the model and the
CUDA context.

Pixels travel as uint8 (4x fewer bytes than float32), from pinned memory
with a non-blocking copy, and become normalised floats on the device, laid
out as the runtime wants them. What runs the model is a ``ModelForward``
(``engine/runtimes``: torch, or ONNX Runtime on the CPU), called under
``inference_mode``; everything around it is the same for both. Out of memory is not an error here: the batch is split and retried, and the
cap that worked is remembered, so no image is ever dropped. A model that
raises on a batch is retried in halves too, to find the images it fails on
(without touching that cap: only memory sets it), and what the model gives
back is checked, so a row never claims scores the model did not give.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from .decode import InputSpec
from .devices import MemoryReading, peak_memory, reset_peak_memory, synchronize
from .models import LoadedModel, last_error_line
from .runtimes import ModelForward

OUT_OF_MEMORY = "out of memory even for a single image"
NON_FINITE = "the model returned non-finite scores"
_log = logging.getLogger(__name__)


class _BadOutput(Exception):
    """The model ran but gave something other than one row of scores per image: its rows cannot be read."""


@dataclass(frozen=True)
class Scores:
    """Top-k of one forward pass, on the CPU: (images, k) confidences and class indices.

    ``errors`` has one entry per image: empty where its scores are real,
    otherwise why it has none (its confidences and indices are then zeros).
    ``raised`` is the first exception the model raised on this batch, even
    when its halves then ran: the batch did not run as one, which a
    measurement of its speed must know.
    """

    confidences: torch.Tensor
    indices: torch.Tensor
    errors: tuple[str, ...]
    copy_ms: float
    forward_ms: float
    memory: MemoryReading
    raised: str = ""


def input_scale(spec: InputSpec, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's mean and std on the 0-255 scale, shaped to broadcast over an NCHW batch."""
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1) * 255
    return mean, std


def normalised(
    pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, memory_format: torch.memory_format
) -> torch.Tensor:
    """NHWC uint8 to normalised NCHW floats in ``memory_format``, on the pixels' device."""
    # NHWC permuted is already channels_last; normalising in place saves two batch-sized allocations.
    images = pixels.permute(0, 3, 1, 2).float().sub_(mean).div_(std)
    return images.contiguous(memory_format=memory_format)


class Runner:
    """Runs batches through one model on one device; call from one thread only."""

    def __init__(self, model: LoadedModel, device: torch.device, forward: ModelForward, top_k: int) -> None:
        self.model = model
        self.device = device
        self.forward = forward
        self.top_k = max(1, min(top_k, len(model.labels)))
        self.oom_cap: int | None = None
        self._mean, self._std = input_scale(model.spec, device)

    @property
    def runtime(self) -> str:
        """The name of what runs the model, written in every row (the ``runtime`` column)."""
        return self.forward.name

    def _to_device(self, pixels: torch.Tensor) -> torch.Tensor:
        """NHWC uint8 on the host to normalised NCHW floats on the device, in the runtime's layout."""
        if self.device.type == "cuda" and pixels.device.type == "cpu":
            pixels = pixels.pin_memory().to(self.device, non_blocking=True)
        else:
            pixels = pixels.to(self.device)
        return normalised(pixels, self._mean, self._std, self.forward.memory_format)

    def _check(self, output: object, images: int) -> torch.Tensor:
        """The model's output as (images, classes) float scores, or ``_BadOutput`` saying what is wrong with it."""
        classes = len(self.model.labels)
        if not isinstance(output, torch.Tensor):
            raise _BadOutput(f"the model returned {type(output).__name__}, not a tensor of scores")
        if tuple(output.shape) != (images, classes):
            raise _BadOutput(
                f"the model returned scores of shape {tuple(output.shape)} for {images} images; "
                f"expected ({images}, {classes})"
            )
        return output.float()

    def run(self, pixels: torch.Tensor) -> Scores:
        """Classify an NHWC uint8 batch (host or device); splits it on out-of-memory or an exception.

        A split for memory lowers ``oom_cap`` to the half that was retried,
        for the caller to apply to the batcher: the next batches then fit
        first time. An image that fails alone gets its reason in ``errors``.
        """
        reset_peak_memory(self.device)
        count = len(pixels)
        confidences = torch.zeros(count, self.top_k)
        indices = torch.zeros(count, self.top_k, dtype=torch.long)
        errors = [""] * count
        raised = ""
        copy_ms = forward_ms = 0.0
        pending = [(0, pixels)]  # (position of the part's first image, the part)
        while pending:
            start, part = pending.pop(0)
            if self.oom_cap is not None and len(part) > self.oom_cap:
                pending[:0] = [(start + offset, piece) for offset, piece in _pieces(part, self.oom_cap)]
                continue
            try:
                with torch.inference_mode():
                    began = time.perf_counter()
                    batch = self._to_device(part)
                    synchronize(self.device)
                    copied = time.perf_counter()
                    scores = self._check(self.forward(batch), len(part))
                    finite = torch.isfinite(scores).all(dim=1)
                    top = scores.softmax(dim=1).topk(self.top_k, dim=1)
                    part_conf, part_idx, part_finite = top.values.cpu(), top.indices.cpu(), finite.cpu()
                    finished = time.perf_counter()
            except torch.OutOfMemoryError:
                batch = scores = top = None  # let the allocator reclaim before retrying
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(part) == 1:
                    errors[start] = OUT_OF_MEMORY
                    continue
                halves = _halves(start, part)
                half = len(halves[0][1])
                self.oom_cap = half if self.oom_cap is None else min(self.oom_cap, half)
                pending[:0] = halves
                continue
            except _BadOutput as bad:
                errors[start : start + len(part)] = [str(bad)] * len(part)
                continue
            except Exception as error:  # the user's model may raise anything, on some batches only
                batch = scores = top = None
                message = f"the model failed: {last_error_line(error)}"
                _log.debug("the model raised on %d images", len(part), exc_info=True)
                raised = raised or message
                if len(part) == 1:
                    errors[start] = message
                    continue
                pending[:0] = _halves(start, part)
                continue
            copy_ms += (copied - began) * 1000
            forward_ms += (finished - copied) * 1000
            confidences[start : start + len(part)] = part_conf
            indices[start : start + len(part)] = part_idx
            for offset in torch.nonzero(~part_finite).flatten().tolist():
                errors[start + offset] = NON_FINITE
        return Scores(confidences, indices, tuple(errors), copy_ms, forward_ms, peak_memory(self.device), raised)


def _pieces(part: torch.Tensor, size: int) -> list[tuple[int, torch.Tensor]]:
    """``part`` cut into pieces of at most ``size`` images, each with its offset in ``part``."""
    return [(offset, part[offset : offset + size]) for offset in range(0, len(part), size)]


def _halves(start: int, part: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """``part`` (whose first image is at ``start``) as two halves to retry, the larger first."""
    half = (len(part) + 1) // 2
    return [(start, part[:half]), (start + half, part[half:])]
