"""Where each image's time goes, per batch size: decode, copy, forward and the rest, in ms per image.

The bars that show why batching is fast. A batch's time is split into:

- **decode**: what the model waited for decoded images (the batcher's wait),
  not the decode threads' total, which overlaps the model's work and would
  count the same second several times;
- **copy**: host to device (and the uint8-to-float conversion);
- **forward**: the model, softmax and top-k;
- **rest**: the remainder of the batch (stacking, checking, building rows).

Each is divided by the images the model ran. Warm-up batches and batches
that decoded nothing are left out, as in every other figure. From a sweep the
images are decoded up front, so its decode is zero: it shows the device alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .fixed_cost import FixedCostFit, fit_fixed_cost
from .records import BatchStats
from .sweep import SweepPoint

STAGES = ("decode", "copy", "forward", "rest")


@dataclass(frozen=True)
class StageTimes:
    """The mean time per image of each stage, over the batches that held ``batch_size`` images."""

    batch_size: int
    batches: int
    decode_ms: float
    copy_ms: float
    forward_ms: float
    rest_ms: float
    busy_percent: float | None = None
    """How busy the device was during these batches (``occupancy.py``), where it can be read."""

    @property
    def total_ms(self) -> float:
        return self.decode_ms + self.copy_ms + self.forward_ms + self.rest_ms

    @property
    def forward_batch_ms(self) -> float:
        """The forward time of one whole batch: what the fixed-cost fit is fitted to."""
        return self.forward_ms * self.batch_size

    def stages(self) -> tuple[float, float, float, float]:
        """The four stages in the order of ``STAGES``."""
        return self.decode_ms, self.copy_ms, self.forward_ms, self.rest_ms

    def report(self) -> dict[str, object]:
        return {
            "batch_size": self.batch_size,
            "batches": self.batches,
            "per_image_ms": dict(zip(STAGES, self.stages())),
            "busy_percent": self.busy_percent,
        }


@dataclass
class _Sums:
    batches: int = 0
    images: int = 0
    decode_ms: float = 0.0
    copy_ms: float = 0.0
    forward_ms: float = 0.0
    rest_ms: float = 0.0
    busy_sum: float = 0.0
    busy_batches: int = 0


class StageAccumulator:
    """Stage times of a run's batches, grouped by the images each held; O(1) per batch.

    Not shared between threads: the window feeds it on its GUI thread, the
    command line on its own.
    """

    def __init__(self) -> None:
        self._sums: dict[int, _Sums] = {}

    def add(self, stats: BatchStats) -> None:
        """Count one batch, unless it was a warm-up or ran nothing."""
        if stats.warmup or not stats.images:
            return
        sums = self._sums.setdefault(stats.images, _Sums())
        sums.batches += 1
        sums.images += stats.images
        sums.decode_ms += stats.wait_ms
        sums.copy_ms += stats.copy_ms
        sums.forward_ms += stats.forward_ms
        sums.rest_ms += max(0.0, stats.total_ms - stats.copy_ms - stats.forward_ms)
        if stats.occupancy is not None and stats.occupancy.busy_percent is not None:
            sums.busy_sum += stats.occupancy.busy_percent
            sums.busy_batches += 1

    def clear(self) -> None:
        self._sums.clear()

    def times(self) -> list[StageTimes]:
        """One entry per batch size, smallest first."""
        return [
            StageTimes(
                batch_size=size,
                batches=sums.batches,
                decode_ms=sums.decode_ms / sums.images,
                copy_ms=sums.copy_ms / sums.images,
                forward_ms=sums.forward_ms / sums.images,
                rest_ms=sums.rest_ms / sums.images,
                busy_percent=sums.busy_sum / sums.busy_batches if sums.busy_batches else None,
            )
            for size, sums in sorted(self._sums.items())
        ]


def stage_times_of_batches(batches: Iterable[BatchStats]) -> list[StageTimes]:
    """Stage times of a whole run's batch stats (the command line's, or a test's)."""
    accumulator = StageAccumulator()
    for stats in batches:
        accumulator.add(stats)
    return accumulator.times()


def stage_times_of_sweep(points: Iterable[SweepPoint]) -> list[StageTimes]:
    """Stage times of the sizes a sweep measured; decode is zero, the sweep decodes up front."""
    return [
        StageTimes(
            batch_size=point.batch_size,
            batches=1,
            decode_ms=0.0,
            copy_ms=point.copy_ms / point.batch_size,
            forward_ms=point.forward_ms / point.batch_size,
            rest_ms=max(0.0, point.latency_p50_ms - point.copy_ms - point.forward_ms) / point.batch_size,
            busy_percent=point.occupancy.busy_percent if point.occupancy is not None else None,
        )
        for point in sorted(points, key=lambda point: point.batch_size)
        if point.measured
    ]


def fit_stage_times(times: Sequence[StageTimes]) -> FixedCostFit | None:
    """The fixed-cost fit of the forward time per batch, over the sizes measured."""
    return fit_fixed_cost([(entry.batch_size, entry.forward_batch_ms) for entry in times])
