"""One curve per model on a throughput-per-batch-size and a memory-per-batch-size plot.

The comparison's plots (``Compare models…``), kept apart from the live
run's ``plots.py``: they share its log2 batch-size axis and its legend,
which is a line of text under each plot and so never covers the data,
whatever the size of the window. A model's curve grows point by point as
the sweep measures it; when the model is done its best size is ringed.
Colours are those of ``bench --models --plot``, so the window and the PNG
read alike.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg  # binds to PySide6: the package's __init__ imported it first
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from ..engine.compare import ModelSweep
from ..engine.sweep import SweepPoint
from ..engine.sweep_chart import PALETTE
from .plot_parts import BatchSizeAxis, Legend, follow_palette


def shown_name(model: str) -> str:
    """A registry name as it is, a model file by its file name."""
    return Path(model).name if Path(model).suffix else model


class _ModelCurve:
    def __init__(self, colour: QColor, throughput: pg.PlotDataItem, memory: pg.PlotDataItem,
                 best: pg.ScatterPlotItem) -> None:
        self.colour = colour
        self.throughput, self.memory, self.best = throughput, memory, best
        self.points: list[SweepPoint] = []
        self.legend = ""


class ModelCurves(QWidget):
    """The two comparison plots side by side, a legend under each."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.size_plot = pg.PlotWidget(axisItems={"bottom": BatchSizeAxis()})
        self.memory_plot = pg.PlotWidget(axisItems={"bottom": BatchSizeAxis()})
        self.size_legend, self.memory_legend = Legend(), Legend()
        for plot, unit in ((self.size_plot, "img/s"), (self.memory_plot, "MB")):
            plot.setLabel("bottom", "batch size (log2)")
            plot.setLabel("left", unit)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setMinimumWidth(220)
        self._titles = {self.size_plot: "Throughput", self.memory_plot: "Memory"}
        self._curves: dict[str, _ModelCurve] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for plot, legend in ((self.size_plot, self.size_legend), (self.memory_plot, self.memory_legend)):
            panel = QVBoxLayout()
            panel.addWidget(plot, 1)
            panel.addWidget(legend)
            layout.addLayout(panel, 1)
            legend.installEventFilter(self)
        self._apply_palette()

    @property
    def models(self) -> list[str]:
        """The models drawn, in the order they started."""
        return list(self._curves)

    def curve(self, model: str) -> _ModelCurve:
        return self._curves[model]

    def clear(self) -> None:
        for plot in (self.size_plot, self.memory_plot):
            plot.clear()
        self._curves.clear()
        self.size_legend.set_entries([])
        self.memory_legend.set_entries([])

    def start_model(self, model: str) -> None:
        """A model is about to be measured: its curve (and legend entry) appears, empty."""
        if model in self._curves:
            return
        colour = QColor(*PALETTE[len(self._curves) % len(PALETTE)])
        pen = pg.mkPen(colour, width=2)
        throughput, memory = (
            plot.plot([], [], pen=pen, symbol="o", symbolSize=6, symbolBrush=colour, symbolPen=None, antialias=False)
            for plot in (self.size_plot, self.memory_plot)
        )
        best = pg.ScatterPlotItem(size=14, pen=pg.mkPen(colour, width=2), brush=None, symbol="o")
        self.size_plot.addItem(best)
        self._curves[model] = _ModelCurve(colour, throughput, memory, best)
        self._curves[model].legend = shown_name(model)
        self._render_legends()

    def add_point(self, model: str, point: SweepPoint) -> None:
        self.start_model(model)
        curve = self._curves[model]
        curve.points.append(point)
        measured = [p for p in curve.points if p.measured]
        sizes = np.log2(np.asarray([p.batch_size for p in measured], dtype=float))
        curve.throughput.setData(sizes, [p.images_per_s for p in measured])
        curve.memory.setData(sizes, [p.memory.allocated_mb for p in measured])
        if measured:  # the engine names the reading (short: a long title would widen a narrow plot)
            self._titles[self.memory_plot] = measured[-1].memory.label
            self._apply_palette()
        self._span()

    def finish_model(self, sweep: ModelSweep) -> None:
        """Ring the model's best size, and name it with its batching gain in the legend."""
        curve = self._curves.get(sweep.requested)
        best = sweep.best_point
        if curve is None or best is None:
            return
        curve.best.setData([math.log2(best.batch_size)], [best.images_per_s])
        curve.legend = f"{shown_name(sweep.requested)}: best {best.batch_size}, gain {sweep.batching_gain:.2f}x"
        self._render_legends()

    def _render_legends(self) -> None:
        """Both legends, one entry per model; two files of one name are told apart by their number."""
        size_entries: list[tuple[str, str, QColor]] = []
        memory_entries: list[tuple[str, str, QColor]] = []
        for number, (model, curve) in enumerate(self._curves.items(), 1):
            duplicate = [shown_name(other) for other in self._curves].count(shown_name(model)) > 1
            tag = f" #{number}" if duplicate else ""
            size_entries.append((curve.legend.replace(shown_name(model), shown_name(model) + tag, 1), "━●", curve.colour))
            memory_entries.append((shown_name(model) + tag, "━●", curve.colour))
        self.size_legend.set_entries(size_entries)
        self.memory_legend.set_entries(memory_entries)
        for legend in (self.size_legend, self.memory_legend):
            self._fit(legend)

    @staticmethod
    def _fit(legend: Legend) -> None:
        legend.setMinimumHeight(max(0, legend.heightForWidth(legend.width())))

    def _span(self) -> None:
        sizes = [p.batch_size for curve in self._curves.values() for p in curve.points if p.measured]
        largest = max([8, *sizes])
        for plot in (self.size_plot, self.memory_plot):
            plot.setXRange(-0.5, math.log2(largest) + 0.5, padding=0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """A legend that wraps takes the lines it needs from its plot: nested layouts would give it one."""
        if watched in (self.size_legend, self.memory_legend) and event.type() == QEvent.Type.Resize:
            self._fit(watched)
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        """Drawn in the window's colours, as the live plots are, so light and dark themes both read."""
        text = self.palette().color(QPalette.ColorRole.Text)
        for plot, title in self._titles.items():
            follow_palette(plot, self.palette())
            plot.setTitle(title, color=text.name())
