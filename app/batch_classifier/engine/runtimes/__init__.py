"""What runs the model's forward pass: torch, or ONNX Runtime on the CPU.

The runner (``engine/runner.py``) keeps everything around the forward pass
(the copy to the device, normalisation, top-k, splitting a batch that fails)
and hands the normalised batch to a ``ModelForward``. ``choice.py`` is the one
place that decides which forward a run gets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: the command line reads the choices before torch has loaded
    import torch

RUNTIME_CHOICES = ("auto", "torch", "onnxruntime")
RUNTIME_HELP = (
    "auto: ONNX Runtime on the CPU when the model exports and matches torch, torch otherwise and on GPUs; "
    "torch: always PyTorch; onnxruntime: ONNX Runtime (CPU only)"
)


class ModelForward(Protocol):
    """One forward pass: a normalised NCHW float batch in, (images, classes) scores out.

    A forward that runs out of memory raises ``torch.OutOfMemoryError``, so
    the runner splits the batch the same way whatever runs it.
    """

    name: str
    """Written in every row's ``runtime`` column."""
    memory_format: torch.memory_format
    """The layout the forward wants its input in, so the runner lays it out once."""

    def __call__(self, batch: torch.Tensor) -> torch.Tensor: ...
