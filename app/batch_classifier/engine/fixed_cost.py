"""The fixed cost of a batch, measured: fit ``t(n) = a + b*n`` to the forward time of batches of n images.

``a`` is what every batch pays whatever its size (kernel launches, Python and
framework overhead, transfers), ``b`` what each image adds. The fit says why
batching is fast in one line: ``a`` is spread over more images, until the
time per image ``a/n + b`` is within 10% of ``b``, beyond which batching gains
little. On a CPU the model often does not follow this shape (the time per
image rises once a batch's activations outgrow the caches), and then the fit
says so rather than give a fixed cost that would mislead.

The fit weighs each size by its own time (least squares on relative
errors), so batch 1's few milliseconds count as much as batch 1024's
hundreds: the fixed cost is read where it matters, at the small sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

POOR_FIT = 0.10
"""The fit is poor when it misses the measured times by more than this, relative (root mean square)."""
GAIN_LEFT = 0.10
"""The line names the batch size beyond which batching gains less than this."""
_NEGLIGIBLE_FIXED_COST = 0.05
_VISIBLE_PER_IMAGE = 0.05
"""The cost per image shows when it makes at least this share of the largest batch's time."""
"""A negative fixed cost within this fraction of the smallest measured time is noise, read as zero."""


@dataclass(frozen=True)
class FixedCostFit:
    """``forward_ms(n) = per_batch_ms + per_image_ms * n``, fitted to the sizes measured, and how well it fits."""

    per_batch_ms: float
    per_image_ms: float
    residual_ms: float
    """Root mean square of measured minus fitted forward time, over the sizes."""
    relative_residual: float
    """The same relative to each measured time (0.05 is 5%)."""
    sizes: tuple[int, ...]
    measured_ms: tuple[float, ...]
    """The forward time of one batch at each size, as fitted."""

    @property
    def poor(self) -> bool:
        """Whether a fixed cost plus a cost per image does not explain these times."""
        return self.relative_residual > POOR_FIT or self.per_batch_ms < -_NEGLIGIBLE_FIXED_COST * min(self.measured_ms)

    @property
    def gains_little_beyond(self) -> int | None:
        """The batch size beyond which the time per image is within 10% of its limit ``b``; None if ``b`` is not positive."""
        if self.per_image_ms * self.sizes[-1] < _VISIBLE_PER_IMAGE * self.measured_ms[-1]:
            return None
        return max(1, math.ceil(max(0.0, self.per_batch_ms) / (GAIN_LEFT * self.per_image_ms)))

    def describe(self) -> str:
        """One line a person understands, or why there is no such line here."""
        if self.poor:
            first, last = self.measured_ms[0] / self.sizes[0], self.measured_ms[-1] / self.sizes[-1]
            misses = (
                f" (the fit t(n) = a + b*n misses by {self.relative_residual:.0%})"
                if self.relative_residual > POOR_FIT
                else ""
            )
            per_image = f"from {_ms(first)} ms at batch {self.sizes[0]} to {_ms(last)} ms at batch {self.sizes[-1]}"
            if last > first:
                return (
                    f"no fixed cost per batch to spread here{misses}: the forward time per image rises {per_image}, "
                    "as on a CPU when a batch outgrows the caches"
                )
            return f"no fixed cost per batch explains these times{misses}: the forward time per image goes {per_image}"
        fixed = _ms(max(0.0, self.per_batch_ms))
        beyond = self.gains_little_beyond
        if beyond is None:
            return (
                f"about {fixed} ms per batch whatever its size, and no cost per image shows up to batch "
                f"{self.sizes[-1]}: the device is not full yet, bigger batches still gain"
            )
        per_image = f"{_ms(self.per_image_ms)} ms per image"
        if beyond <= 1:
            return f"almost no cost per batch ({fixed} ms) beside {per_image}: batching gains less than 10% at any size here"
        return f"about {fixed} ms per batch whatever its size, plus {per_image}: batching beyond {beyond} gains less than 10% here"

    def report(self) -> dict[str, object]:
        """The fit for a JSON document."""
        return {
            "per_batch_ms": self.per_batch_ms,
            "per_image_ms": self.per_image_ms,
            "residual_ms": self.residual_ms,
            "relative_residual": self.relative_residual,
            "poor": self.poor,
            "gains_little_beyond": None if self.poor else self.gains_little_beyond,
            "sizes": list(self.sizes),
            "forward_ms": list(self.measured_ms),
            "summary": self.describe(),
        }


def fit_fixed_cost(samples: Sequence[tuple[int, float]]) -> FixedCostFit | None:
    """Fit ``(batch size, forward ms of one batch)`` pairs; None with fewer than two sizes (nothing to fit).

    Several samples at one size are averaged first, so a long run at one size
    does not outweigh the others.
    """
    by_size: dict[int, list[float]] = {}
    for size, milliseconds in samples:
        if size > 0 and milliseconds > 0 and math.isfinite(milliseconds):
            by_size.setdefault(size, []).append(milliseconds)
    if len(by_size) < 2:
        return None
    sizes = tuple(sorted(by_size))
    times = tuple(sum(by_size[size]) / len(by_size[size]) for size in sizes)
    # Weighted least squares with weights 1/t²: minimise the relative error at each size.
    weights = [1 / (t * t) for t in times]
    s_w = sum(weights)
    s_n = sum(w * n for w, n in zip(weights, sizes))
    s_nn = sum(w * n * n for w, n in zip(weights, sizes))
    s_t = sum(w * t for w, t in zip(weights, times))
    s_nt = sum(w * n * t for w, n, t in zip(weights, sizes, times))
    determinant = s_w * s_nn - s_n * s_n
    per_image = (s_w * s_nt - s_n * s_t) / determinant
    per_batch = (s_t - per_image * s_n) / s_w
    misses = [t - (per_batch + per_image * n) for n, t in zip(sizes, times)]
    return FixedCostFit(
        per_batch_ms=per_batch,
        per_image_ms=per_image,
        residual_ms=math.sqrt(sum(m * m for m in misses) / len(misses)),
        relative_residual=math.sqrt(sum((m / t) ** 2 for m, t in zip(misses, times)) / len(misses)),
        sizes=sizes,
        measured_ms=times,
    )


def _ms(value: float) -> str:
    """Milliseconds with about three significant figures, never in exponent notation."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fixed_cost_line(fit: FixedCostFit | None) -> str:
    """The line every front end shows (bench's table, its PNG, the window's stage plot)."""
    if fit is None:
        return "fixed cost: measure at least two batch sizes to see it"
    return f"fixed cost: {fit.describe()}"
