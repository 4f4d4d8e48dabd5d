"""Find the best batch size by measuring it: the experiment behind "batching is fast".

The same decoded images run one by one and then batched at each size, timed
with the device synchronised and warm-up excluded. Bigger is not always
better (on a CPU small batches often win), so the answer comes from this
machine, not from a rule of thumb.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from dataclasses import dataclass

import torch

from .decode import decode_file
from .devices import MemoryReading
from .occupancy import Occupancy
from .pipeline import Classifier
from .runner import OUT_OF_MEMORY
from .sources import UnreadableCallback, iter_sources

# Within this fraction of the fastest, prefer the smaller batch: same speed,
# lower latency and memory.
_GOOD_ENOUGH = 0.95
LARGEST_SWEEP_SIZE = 1024
"""The largest size a sweep tries by default (on CUDA). The window's batch-size slider and its per-size
axes reach this far, so the size a sweep recommends can always be shown and applied."""
LARGEST_SWEEP_POWER = LARGEST_SWEEP_SIZE.bit_length() - 1
"""log2 of LARGEST_SWEEP_SIZE: the last stop of the slider and of the log2 batch-size axes."""


@dataclass(frozen=True)
class SweepPoint:
    """One batch size measured: its speed, latency and memory (zero amounts where it did not run)."""

    batch_size: int
    images_per_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    memory: MemoryReading
    out_of_memory: bool = False
    failure: str = ""
    """Why this size could not be measured other than memory: the model raised, or gave no usable scores."""
    runtime: str = "torch"
    """What ran the model (``runtimes/choice.py``): the window keeps one sweep per runtime, to show both."""
    copy_ms: float = 0.0
    """Median host-to-device copy of one batch; with ``forward_ms`` the stage times (``stage_times.py``)."""
    forward_ms: float = 0.0
    """Median forward time of one batch: what the fixed-cost fit is fitted to."""
    occupancy: Occupancy | None = None
    """How busy the device was over the repeats (``occupancy.py``), or why that cannot be read."""

    @property
    def measured(self) -> bool:
        """Whether this size ran and its numbers mean something."""
        return not self.out_of_memory and not self.failure

    def describe(self) -> str:
        """What this size gave, in a few words for a person."""
        if self.out_of_memory:
            return "out of memory"
        return self.failure or f"{self.images_per_s:,.0f} img/s"

    def report(self) -> dict[str, object]:
        """The point as the flat JSON object ``bench --json`` has always written."""
        return {
            "batch_size": self.batch_size,
            "images_per_s": self.images_per_s,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "peak_allocated_mb": self.memory.allocated_mb,
            "peak_reserved_mb": self.memory.reserved_mb,
            "memory_kind": self.memory.kind,
            "out_of_memory": self.out_of_memory,
            "failure": self.failure,
            "copy_ms": self.copy_ms,
            "forward_ms": self.forward_ms,
            "busy_percent": self.occupancy.busy_percent if self.occupancy is not None else None,
            "occupancy": self.occupancy.describe() if self.occupancy is not None else "",
        }


@dataclass(frozen=True)
class SweepResult:
    points: tuple[SweepPoint, ...]
    best_batch_size: int | None
    sequential_images_per_s: float

    def speedup(self, point: SweepPoint) -> float:
        """``point``'s throughput over one image at a time: what batching buys at that size (0 if batch 1 is unmeasured)."""
        return point.images_per_s / self.sequential_images_per_s if self.sequential_images_per_s > 0 else 0.0

    @property
    def best_point(self) -> SweepPoint | None:
        return next((point for point in self.points if point.batch_size == self.best_batch_size), None)


@dataclass(frozen=True)
class SweepBudget:
    """How long to measure each size: enough repeats for a stable median, bounded in time."""

    warmup: int
    min_repeats: int
    max_repeats: int
    min_seconds: float

    @classmethod
    def for_device(cls, device: torch.device) -> SweepBudget:
        if device.type == "cpu":
            return cls(warmup=1, min_repeats=2, max_repeats=8, min_seconds=0.5)
        return cls(warmup=3, min_repeats=5, max_repeats=50, min_seconds=0.5)


def default_sweep_sizes(device: torch.device) -> list[int]:
    top = {"cpu": 64, "mps": 256}.get(device.type, LARGEST_SWEEP_SIZE)
    return [2**power for power in range(top.bit_length()) if 2**power <= top]


def best_batch_size(points: Sequence[SweepPoint]) -> int | None:
    """The smallest size whose throughput is within 5% of the fastest."""
    measured = [point for point in points if point.measured and point.images_per_s > 0]
    if not measured:
        return None
    fastest = max(point.images_per_s for point in measured)
    return min(point.batch_size for point in measured if point.images_per_s >= _GOOD_ENOUGH * fastest)


def images_to_measure(
    paths: Iterable[str | os.PathLike[str]],
    limit: int,
    recursive: bool = True,
    on_unreadable: UnreadableCallback | None = None,
) -> list[str]:
    """The first ``limit`` images under ``paths``, walked as a run walks them (folders included).

    The sweep repeats its images to fill big batches, so it needs no more
    than the largest batch, and decoding a whole folder up front would only
    cost time and memory.
    """
    return [item.path for item in islice(iter_sources(paths, recursive, on_unreadable=on_unreadable), limit)]


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class NothingToMeasure(ValueError):
    """None of the images given to the sweep could be decoded (the window then measures its samples)."""


def decode_for_sweep(classifier: Classifier, paths: Sequence[str]) -> list[torch.Tensor]:
    """Decode once up front, so the sweep times the device and not the disk."""
    spec = classifier.model.spec
    decoded = [decode_file(index, str(path), spec, thumbnail=False) for index, path in enumerate(paths)]
    pixels = [torch.from_numpy(image.pixels) for image in decoded if image.pixels is not None]
    if not pixels:
        raise NothingToMeasure("none of the images for the sweep could be decoded")
    return pixels


def repeated(pixels: Sequence[torch.Tensor], count: int) -> list[torch.Tensor]:
    """``count`` images from ``pixels``, cyclically: a few distinct images fill a batch of any size."""
    return [pixels[index % len(pixels)] for index in range(count)]


def measure_batch_size(
    classifier: Classifier, pixels: Sequence[torch.Tensor], batch_size: int, budget: SweepBudget
) -> SweepPoint:
    """Time one batch size; images repeat cyclically to fill a batch larger than the set."""
    runner = classifier.runner
    batch = torch.stack(repeated(pixels, batch_size))
    cap_before = runner.oom_cap
    latencies: list[float] = []
    copies: list[float] = []
    forwards: list[float] = []
    memory = None
    started = time.perf_counter()
    classifier.occupancy.start()
    for repeat in range(budget.warmup + budget.max_repeats):
        began = time.perf_counter()
        scores = runner.run(batch)
        elapsed = time.perf_counter() - began
        if runner.oom_cap != cap_before or OUT_OF_MEMORY in scores.errors:
            runner.oom_cap = cap_before
            return SweepPoint(
                batch_size, 0.0, 0.0, 0.0, _nothing(scores.memory), out_of_memory=True, runtime=runner.runtime
            )
        failure = scores.raised or next((error for error in scores.errors if error), "")
        if failure:
            return SweepPoint(
                batch_size, 0.0, 0.0, 0.0, _nothing(scores.memory), failure=failure, runtime=runner.runtime
            )
        memory = scores.memory
        if repeat < budget.warmup:
            started = time.perf_counter()
            classifier.occupancy.start()
            continue
        latencies.append(elapsed)
        copies.append(scores.copy_ms)
        forwards.append(scores.forward_ms)
        if len(latencies) >= budget.min_repeats and time.perf_counter() - started >= budget.min_seconds:
            break
    assert memory is not None
    occupancy = classifier.occupancy.stop()
    median = statistics.median(latencies)
    return SweepPoint(
        batch_size=batch_size,
        images_per_s=batch_size / median,
        latency_p50_ms=median * 1000,
        latency_p95_ms=_percentile(latencies, 0.95) * 1000,
        memory=memory,
        runtime=runner.runtime,
        copy_ms=statistics.median(copies),
        forward_ms=statistics.median(forwards),
        occupancy=occupancy,
    )


def _nothing(reading: MemoryReading) -> MemoryReading:
    """A size that did not run has no memory of its own to report: zero amounts, the reading's kind."""
    return MemoryReading(0.0, 0.0, reading.kind)


def sweep_batch_sizes(
    classifier: Classifier,
    paths: Sequence[str],
    sizes: Sequence[int],
    on_point: Callable[[SweepPoint], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    budget: SweepBudget | None = None,
) -> SweepResult:
    """Measure each size in ascending order; stop cleanly at the first size that runs out of memory or fails."""
    pixels = decode_for_sweep(classifier, paths)
    budget = budget or SweepBudget.for_device(classifier.device)
    ordered = sorted(set(max(1, size) for size in sizes) | {1})
    points: list[SweepPoint] = []
    for size in ordered:
        if should_stop():
            break
        point = measure_batch_size(classifier, pixels, size, budget)
        points.append(point)
        if on_point is not None:
            on_point(point)
        if point.out_of_memory or point.failure:
            break
    sequential = next((point.images_per_s for point in points if point.batch_size == 1), 0.0)
    return SweepResult(tuple(points), best_batch_size(points), sequential)
