"""How full the device is while a batch runs: the other half of why batching is fast.

- On CUDA, NVML (``nvidia-ml-py``, an optional dependency) gives the GPU's
  utilisation (the share of the last sample period in which a kernel ran)
  and its memory in use, read as each batch ends. Without the package the
  probe says so, and the plot shows that sentence instead of a number.
- On the CPU, the share of the cores that the model's threads kept busy
  during the batch: the CPU time of this thread and of the threads Python
  did not start (torch's intra-op pool), over wall time times cores. The
  decode pool and the window are Python threads and are left out. Read
  from ``/proc/self/task`` on Linux; elsewhere there is no reading.
- On request, the number of CUDA kernels one batch launches, from one batch
  run under ``torch.profiler``: a model that launches hundreds of small
  kernels per image gains the most from batching.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch

NVML_MISSING = "GPU utilisation needs nvidia-ml-py (pip install 'batch-classifier[gpu]')"
NO_CPU_READING = "the share of cores busy is read from /proc, which this system does not have"
KERNELS_NEED_CUDA = "counting CUDA kernels needs a CUDA device"
RUN_SAMPLE_INTERVAL_S = 0.25
"""A run reads the device's occupancy for one batch in this long at most (``SampledProbe``)."""
_TASKS = "/proc/self/task"


@dataclass(frozen=True)
class Occupancy:
    """How busy the device was during one batch (or one batch size of a sweep), or why that cannot be read."""

    kind: Literal["gpu", "cpu"]
    busy_percent: float | None
    """GPU utilisation from NVML, or the share of all cores busy in the model's threads; None: see ``note``."""
    memory_used_mb: float | None = None
    """The GPU's memory in use by every process (NVML); None on the CPU."""
    note: str = ""
    """Why there is no reading (NVML not installed, no /proc), for a plot to say instead of a number."""

    def describe(self) -> str:
        if self.busy_percent is None:
            return self.note
        if self.kind == "gpu":
            memory = f", {self.memory_used_mb:,.0f} MB in use" if self.memory_used_mb is not None else ""
            return f"GPU {self.busy_percent:.0f}% busy{memory} (NVML)"
        return f"{self.busy_percent:.0f}% of {os.cpu_count()} cores busy in the model's threads"


class OccupancyProbe(Protocol):
    """Brackets a stretch of model work; ``stop`` gives the reading for it (None if that reading failed)."""

    def start(self) -> None: ...

    def stop(self) -> Occupancy | None: ...


class NoProbe:
    """Nothing can be read on this device: every reading is the note saying why."""

    def __init__(self, kind: Literal["gpu", "cpu"], note: str) -> None:
        self._missing = Occupancy(kind, None, note=note)

    def start(self) -> None:
        pass

    def stop(self) -> Occupancy | None:
        return self._missing


class NvmlProbe:
    """GPU utilisation and memory in use, read through NVML when the batch ends."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle

    def start(self) -> None:
        pass  # NVML keeps its own sample window; the reading at the end covers the batch

    def stop(self) -> Occupancy | None:
        try:
            rates = self._nvml.nvmlDeviceGetUtilizationRates(self._handle)
            memory = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
        except Exception:  # noqa: BLE001 - a driver hiccup costs one reading, never the run
            return None
        return Occupancy("gpu", float(rates.gpu), memory.used / 2**20)


class SampledProbe:
    """Reads ``probe`` for one batch every ``interval_s`` at most, so a run of small batches pays nothing.

    A reading costs a few file reads (about 0.3 ms on Linux, more on a loaded
    machine): on every batch of a tiny model that would be a visible share of
    its time. The batches in between get no reading, and averages skip them.
    """

    def __init__(self, probe: OccupancyProbe, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._probe = probe
        self._interval_s = interval_s
        self._clock = clock
        self._last = -math.inf
        self._armed = False

    def start(self) -> None:
        self._armed = self._clock() - self._last >= self._interval_s
        if self._armed:
            self._probe.start()

    def stop(self) -> Occupancy | None:
        if not self._armed:
            return None
        self._armed = False
        self._last = self._clock()
        return self._probe.stop()


def thread_cpu_seconds(tasks: str = _TASKS) -> dict[int, float]:
    """CPU time (user + system) of each thread of this process, by native thread id."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds: dict[int, float] = {}
    for name in os.listdir(tasks):
        try:
            with open(os.path.join(tasks, name, "stat"), encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        seconds[int(name)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return seconds


class CpuThreadsProbe:
    """The share of all cores busy in the model's threads: this one and those Python did not start."""

    def __init__(
        self,
        read: Callable[[], dict[int, float]] = thread_cpu_seconds,
        python_threads: Callable[[], Iterable[int | None]] = lambda: (t.native_id for t in threading.enumerate()),
        cores: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._read = read
        self._python_threads = python_threads
        self._cores = cores or os.cpu_count() or 1
        self._clock = clock
        self._before: dict[int, float] = {}
        self._began = 0.0

    def start(self) -> None:
        self._before = self._read()
        self._began = self._clock()

    def stop(self) -> Occupancy | None:
        wall = self._clock() - self._began
        after = self._read()
        if wall <= 0:
            return None
        here = threading.get_native_id()
        others = {tid for tid in self._python_threads() if tid is not None} - {here}
        busy = sum(after[tid] - self._before.get(tid, 0.0) for tid in after if tid not in others)
        return Occupancy("cpu", min(100.0, 100 * busy / (wall * self._cores)))


def probe_for(device: torch.device, nvml_loader: Callable[[], Any] | None = None) -> OccupancyProbe:
    """The probe that can read this device, or one that says why none can."""
    if device.type == "cuda":
        return _nvml_probe(device, nvml_loader or _import_nvml)
    if device.type == "cpu":
        return CpuThreadsProbe() if os.path.isdir(_TASKS) else NoProbe("cpu", NO_CPU_READING)
    return NoProbe("gpu", f"no occupancy reading for {device.type} devices")


def _import_nvml() -> Any:
    import pynvml  # nvidia-ml-py: optional, CUDA machines only

    return pynvml


def _nvml_probe(device: torch.device, load: Callable[[], Any]) -> OccupancyProbe:
    try:
        nvml = load()
    except ImportError:
        return NoProbe("gpu", NVML_MISSING)
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByPciBusId(_pci_bus_id(device))
    except Exception as error:  # noqa: BLE001 - NVML raises its own types; any of them means no reading
        return NoProbe("gpu", f"NVML cannot read this GPU: {error}")
    return NvmlProbe(nvml, handle)


def _pci_bus_id(device: torch.device) -> str:
    """The PCI address NVML knows the device by (CUDA's numbering can differ from NVML's)."""
    properties = torch.cuda.get_device_properties(device)
    return f"{properties.pci_domain_id:08X}:{properties.pci_bus_id:02X}:{properties.pci_device_id:02X}.0"


def count_kernels(run_batch: Callable[[], object], device: torch.device) -> int:
    """The CUDA kernels one call of ``run_batch`` launches, counted by ``torch.profiler``."""
    if device.type != "cuda":
        raise ValueError(KERNELS_NEED_CUDA)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as profiled:
        run_batch()
        torch.cuda.synchronize(device)
    return kernels_in(profiled.events())


def kernels_in(events: Iterable[Any]) -> int:
    """Kernel launches among a profile's device events: copies and memsets are not kernels."""
    return sum(
        1
        for event in events
        if getattr(event, "device_type", None) == torch.autograd.DeviceType.CUDA
        and not str(event.name).startswith(("Memcpy", "Memset", "[memory]"))
    )
