"""The fourth plot: where each image's time goes, per batch size, and the fixed cost in words.

Stacked bars on the log2 batch-size axis of the other per-size plot: decode
(what the model waited for), copy, forward and the rest, in ms per image.
At each size the live runs' bar stands on the left and the sweep's, stippled,
on the right. Below, the fixed-cost line and how busy the device was. The
numbers and the words are the engine's (``stage_times.py``,
``fixed_cost.py``, ``occupancy.py``); this module only draws them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor

from ..engine.fixed_cost import fixed_cost_line
from ..engine.occupancy import Occupancy
from ..engine.records import BatchStats
from ..engine.stage_times import STAGES, StageAccumulator, StageTimes, fit_stage_times, stage_times_of_sweep
from ..engine.sweep import SweepPoint

STAGE_COLOURS = {
    "decode": QColor(230, 126, 34),
    "copy": QColor(155, 89, 182),
    "forward": QColor(41, 128, 215),
    "rest": QColor(149, 165, 166),
}
_RUNS, _SWEEP = "runs", "sweep"
_BAR = 0.36
"""Width of one bar in log2 units: two side by side fill most of the space between powers of two."""
_GAP = 0.03
IDLE_TEXT = "Fills in as batches run and when the sweep measures: where each image's time goes."


def _brush(stage: str, source: str) -> QBrush:
    if source == _RUNS:
        return QBrush(STAGE_COLOURS[stage])
    return QBrush(STAGE_COLOURS[stage], Qt.BrushStyle.Dense4Pattern)


class StageBars:
    """The bars of one plot, fed per batch and by the sweep; ``redraw`` draws what it holds."""

    def __init__(self, plot: pg.PlotWidget) -> None:
        self._plot = plot
        self._runs = StageAccumulator()
        self._sweep: list[StageTimes] = []
        self._occupancy: Occupancy | None = None
        self._kernels: tuple[int, int] | None = None
        self._bars: dict[tuple[str, str], pg.BarGraphItem] = {}
        for source in (_RUNS, _SWEEP):
            for stage in STAGES:
                pen = pg.mkPen(STAGE_COLOURS[stage], width=1) if source == _SWEEP else None
                bar = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], brush=_brush(stage, source), pen=pen)
                plot.addItem(bar)
                self._bars[(source, stage)] = bar

    def add_batch(self, stats: BatchStats) -> None:
        self._runs.add(stats)
        if stats.occupancy is not None and not stats.warmup:
            self._occupancy = stats.occupancy

    def set_sweep(self, points: Sequence[SweepPoint]) -> None:
        self._sweep = stage_times_of_sweep(points)
        reading = next((point.occupancy for point in reversed(points) if point.occupancy is not None), None)
        self._occupancy = reading or self._occupancy

    def set_kernels(self, batch_size: int, kernels: int) -> None:
        """What one profiled batch launched (``occupancy.count_kernels``), said under the plot."""
        self._kernels = (batch_size, kernels)

    def clear(self) -> None:
        self._runs.clear()
        self._sweep = []
        self._occupancy = None
        self._kernels = None

    def run_times(self) -> list[StageTimes]:
        return self._runs.times()

    def sweep_times(self) -> list[StageTimes]:
        return list(self._sweep)

    def redraw(self) -> tuple[list[int], float]:
        """Set every bar from the data; the sizes drawn and the tallest bar, for the plot's ranges."""
        tallest = 0.0
        sizes: list[int] = []
        for source, times, offset in ((_RUNS, self.run_times(), -_GAP - _BAR), (_SWEEP, self._sweep, _GAP)):
            x0 = np.log2(np.asarray([entry.batch_size for entry in times], dtype=float)) + offset
            bottom = np.zeros(len(times))
            for position, stage in enumerate(STAGES):
                height = np.asarray([entry.stages()[position] for entry in times], dtype=float)
                self._bars[(source, stage)].setOpts(x0=x0, x1=x0 + _BAR, y0=bottom, y1=bottom + height)
                bottom = bottom + height
            tallest = max([tallest, *bottom.tolist()])
            sizes += [entry.batch_size for entry in times]
        return sizes, tallest

    def summary(self) -> str:
        """The fixed-cost line (the sweep's when there is one: it times the device alone) and the occupancy."""
        lines = []
        for name, times in (("Sweep", self._sweep), ("Runs", self.run_times())):
            if len(times) >= 2:
                lines.append(f"{name}: {fixed_cost_line(fit_stage_times(times))}.")
                break
        else:
            if self._sweep or self.run_times():
                lines.append(f"{fixed_cost_line(None).capitalize()}.")
        if self._occupancy is not None and self._occupancy.describe():
            lines.append(f"Device: {self._occupancy.describe()}.")
        if self._kernels is not None:
            lines.append(f"One batch of {self._kernels[0]} launches {self._kernels[1]:,} CUDA kernels.")
        return " ".join(lines) or IDLE_TEXT
