"""One by one versus batched: the article's experiment, done right, on the user's own images.

N images are decoded once, then run through the model one at a time and
as batches of N (or of the largest size that fits in memory), each way once
after a warm-up run, with the device synchronised, so the two times compare
the model and nothing else. The fixed-cost fit of the two forward times is
the explanation: batching pays the per-batch cost once instead of N times.
On a CPU batching can be slower (the ratio below 1): the fit then says the
time per image rises with the batch, rather than claim a fixed cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .fixed_cost import FixedCostFit, fit_fixed_cost
from .pipeline import Classifier
from .sweep import decode_for_sweep, repeated


class VersusFailed(ValueError):
    """The model failed on the images, so the two ways cannot be compared; the message says how."""


@dataclass(frozen=True)
class VersusResult:
    """Both times for the same images, and why they differ."""

    images: int
    distinct: int
    """How many different images those were: fewer than ``images`` when they repeat to make up N."""
    batch_size: int
    """The size the batched way ran at: N, or the largest that fitted in memory."""
    one_by_one_s: float
    batched_s: float
    one_by_one_forward_ms: float
    """Mean forward time of one image alone."""
    batched_forward_ms: float
    """Mean forward time of one batch of ``batch_size``."""
    fit: FixedCostFit | None

    @property
    def ratio(self) -> float:
        """How many times faster batched is (below 1: slower)."""
        return self.one_by_one_s / self.batched_s if self.batched_s > 0 else 0.0

    def describe(self) -> list[str]:
        """The result in a few lines for a person: both times, the ratio, and why."""
        verdict = (
            f"batched is {self.ratio:.2f}x faster" if self.ratio >= 1 else f"batched is {1 / self.ratio:.2f}x slower"
        )
        repeated = f" ({self.distinct} different, repeated)" if self.distinct < self.images else ""
        lines = [
            f"{self.images} images{repeated} one by one: {self.one_by_one_s:.3f} s ({self.images / self.one_by_one_s:,.1f} img/s)",
            f"{self.images} images in batches of {self.batch_size}: {self.batched_s:.3f} s "
            f"({self.images / self.batched_s:,.1f} img/s)",
            verdict,
        ]
        if self.fit is not None:
            lines.append(f"why: {self.fit.describe()}")
        return lines

    def report(self) -> dict[str, object]:
        return {
            "images": self.images,
            "distinct": self.distinct,
            "batch_size": self.batch_size,
            "one_by_one_s": self.one_by_one_s,
            "batched_s": self.batched_s,
            "ratio": self.ratio,
            "one_by_one_forward_ms": self.one_by_one_forward_ms,
            "batched_forward_ms": self.batched_forward_ms,
            "fixed_cost": self.fit.report() if self.fit is not None else None,
            "summary": self.describe(),
        }


def one_by_one_vs_batched(classifier: Classifier, paths: Sequence[str], count: int) -> VersusResult:
    """Run ``count`` images of ``paths`` both ways and time each (warm-up excluded).

    Fewer decodable images than ``count`` repeat to make up the number, as in
    the sweep: the comparison is about the batch, not the photos.
    """
    distinct = decode_for_sweep(classifier, list(paths)[: max(1, count)])
    pixels = repeated(distinct, max(1, count))
    runner = classifier.runner
    cap_before = runner.oom_cap
    try:
        batch = torch.stack(pixels)
        _run(classifier, batch[:1])  # warm-up: first calls allocate, compile and fill caches
        _run(classifier, batch)  # and find the largest batch that fits (the runner splits and remembers)
        size = min(len(pixels), runner.oom_cap or len(pixels))
        began = time.perf_counter()
        alone = [_run(classifier, batch[index : index + 1]) for index in range(len(pixels))]
        one_by_one_s = time.perf_counter() - began
        began = time.perf_counter()
        together = [_run(classifier, batch[start : start + size]) for start in range(0, len(pixels), size)]
        batched_s = time.perf_counter() - began
    finally:
        runner.oom_cap = cap_before  # what this experiment learnt about memory is not the run's business
    alone_ms = sum(alone) / len(alone)
    full = together[: len(pixels) // size] or together  # a last, smaller batch would skew the mean
    together_ms = sum(full) / len(full)
    return VersusResult(
        images=len(pixels),
        distinct=len(distinct),
        batch_size=size,
        one_by_one_s=one_by_one_s,
        batched_s=batched_s,
        one_by_one_forward_ms=alone_ms,
        batched_forward_ms=together_ms,
        fit=fit_fixed_cost([(1, alone_ms), (size, together_ms)]),
    )


def _run(classifier: Classifier, batch: torch.Tensor) -> float:
    """One synchronised batch (``Runner.run`` waits for its results); its forward milliseconds."""
    scores = classifier.runner.run(batch)
    failure = scores.raised or next((error for error in scores.errors if error), "")
    if failure:
        raise VersusFailed(f"cannot compare: {failure}")
    return scores.forward_ms
