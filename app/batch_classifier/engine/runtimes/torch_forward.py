"""The torch forward: the module itself, channels_last, with autocast on GPUs."""

from __future__ import annotations

import torch


class TorchForward:
    """Runs the module on its device; the reference every other runtime is checked against."""

    name = "torch"
    memory_format = torch.channels_last

    def __init__(self, module: torch.nn.Module, device: torch.device, autocast_dtype: torch.dtype | None) -> None:
        self.module = module.to(device).to(memory_format=torch.channels_last).eval()
        self.device = device
        self.autocast_dtype = autocast_dtype

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is not None:
            with torch.autocast(self.device.type, dtype=self.autocast_dtype):
                return self.module(batch)
        return self.module(batch)
