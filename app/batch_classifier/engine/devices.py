"""Which device to run on, what to call it, and how much memory a batch took.

CUDA reports the allocator's peak (allocated and reserved, which differ: the
caching allocator keeps freed blocks); elsewhere the honest figure available
is the process's resident set, and callers are told which one they got.
"""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass
from typing import Literal

import torch

from .choices import DEVICE_CHOICES

# Real photos drive some activations into denormal floats, which x86 cores
# process up to 100x slower: measured 1,670 ms instead of 15 ms for one image
# through EfficientNet-Lite0 on a 2-core CPU. The flag lives in each thread's
# floating-point state and new threads inherit it, so it is set here, where
# every route to a model (the pipeline, the runner, the sweep) first imports
# torch, before the model's worker threads (OpenMP, the GUI's worker) exist.
torch.set_flush_denormal(True)


class DeviceUnavailable(Exception):
    """The device the user named does not exist on this machine."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def available_devices() -> list[str]:
    """Devices usable right now, best first; ``cpu`` is always there."""
    found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if _mps_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceUnavailable(f"unknown device {name!r}: use {', '.join(DEVICE_CHOICES)} or one such as cuda:1") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device {name!r} is not available: this machine has no usable CUDA GPU")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DeviceUnavailable(f"device {name!r} is not available: {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not _mps_available():
        raise DeviceUnavailable(f"device {name!r} is not available on this machine")
    if device.type not in ("cuda", "mps", "cpu"):
        raise DeviceUnavailable(f"device {name!r} is not supported (use cuda, mps or cpu)")
    return device


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``name`` on ``device``; None means plain fp32.

    ``auto`` is bf16 on GPUs that do it natively, fp16 on older CUDA GPUs, and
    fp32 on CPU, where autocast is slower than fp32 for these models.
    """
    if name == "fp32":
        return None
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        return torch.float16
    if name != "auto":
        raise ValueError(f"unknown precision {name!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


_SLOW_ON_CPU = {
    torch.float16: "fp16 on the CPU is emulated and slow (18x slower than fp32 in our measurement)",
    torch.bfloat16: "bf16 on the CPU is slower than fp32 on most CPUs (3x in our measurement)",
}


def precision_note(autocast_dtype: torch.dtype | None, device: torch.device) -> str:
    """A one-line warning when the precision asked for is known to be slow on this device, else ""."""
    note = _SLOW_ON_CPU.get(autocast_dtype, "") if device.type == "cpu" else ""
    return f"{note}; fp32 (or auto) is faster there" if note else ""


def precision_name(autocast_dtype: torch.dtype | None) -> str:
    """The name ``resolve_precision`` was given for a dtype, as shown to people."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[autocast_dtype]


def device_label(device: torch.device) -> str:
    """A name a person recognises: the GPU's model, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({cpu_name()}, {os.cpu_count()} cores)"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def process_rss_mb() -> float:
    """Current resident set of this process in MB (peak where current is unknown)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


MemoryKind = Literal["cuda", "process"]
_MEMORY_LABELS: dict[MemoryKind, str] = {"cuda": "Peak GPU memory", "process": "Process memory"}
_MEMORY_CAVEATS: dict[MemoryKind, str] = {"cuda": "", "process": " (no CUDA)"}


def memory_kind(device: torch.device) -> MemoryKind:
    """What a memory reading on ``device`` measures: the CUDA allocator's peaks, or the process's resident set."""
    return "cuda" if device.type == "cuda" else "process"


@dataclass(frozen=True)
class MemoryReading:
    """One memory reading and what it measures; the only place a kind of reading is named for a person.

    On CUDA the allocator's peaks since the last reset (allocated by tensors,
    reserved from the device); elsewhere the process's resident set, in both
    fields, since a CPU has nothing finer to say.
    """

    allocated_mb: float
    reserved_mb: float
    kind: MemoryKind

    @property
    def label(self) -> str:
        """What is measured, in two or three words ("Peak GPU memory"), for a title that adds its own axis."""
        return label_for(self.kind)

    @property
    def caption(self) -> str:
        """The label with the caveat a reader needs on its own ("Process memory (no CUDA)")."""
        return caption_for(self.kind)

    def describe(self) -> str:
        """The reading in one line: the caption, then the amounts."""
        if self.kind == "cuda":
            return f"{self.caption}: {self.allocated_mb:,.0f} MB allocated · {self.reserved_mb:,.0f} MB reserved"
        return f"{self.caption}: {self.allocated_mb:,.0f} MB"


def caption_for(kind: MemoryKind) -> str:
    """The caption of a kind of reading before any reading exists (a command line's header)."""
    return _MEMORY_LABELS[kind] + _MEMORY_CAVEATS[kind]


def label_for(kind: MemoryKind) -> str:
    """The label of a kind of reading (a plot's title before it holds a reading of its own)."""
    return _MEMORY_LABELS[kind]


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> MemoryReading:
    """Peak since the last reset on CUDA; the process's resident set elsewhere."""
    if memory_kind(device) == "cuda":
        return MemoryReading(
            torch.cuda.max_memory_allocated(device) / 2**20,
            torch.cuda.max_memory_reserved(device) / 2**20,
            "cuda",
        )
    rss = process_rss_mb()
    return MemoryReading(rss, rss, "process")


def synchronize(device: torch.device) -> None:
    """Wait for the work this thread queued, so a timer measures the work and not its launch.

    Only the current stream: a device-wide sync would also wait for the JPEGs
    the feeder thread is decoding on its own stream, and undo the overlap.
    """
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()
