"""Three live plots that show what batching does, and the batch-size sweep.

(a) throughput over time, (b) throughput per batch size, (c) peak memory per
batch size. Batches only append to bounded buffers (cheap, on every batch);
a 10 Hz timer redraws by ``setData`` on curves created once, without
antialiasing and without symbols on the long series. Each tick redraws at
most one plot, and only one that changed, taking turns with the time plot
(so it moves at 5 Hz): repainting a pyqtgraph plot is Python work on the GUI
thread, and three at once on a busy 2-core machine is a visible stall.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg  # binds to PySide6: the package's __init__ imported it first
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..engine.records import BatchStats
from ..engine.sweep import SweepPoint, SweepResult

TICK_MS = 100
HISTORY = 4000
"""Batches kept for the time plot; older ones scroll away."""
ROLLING = 10
"""Batches in the rolling mean drawn over the noisy per-batch throughput."""
_MAX_POWER = 10  # batch sizes 1 .. 1024
_TIME, _SIZE, _MEMORY = "time", "size", "memory"
_ALL = (_TIME, _SIZE, _MEMORY)
_PER_SIZE = (_SIZE, _MEMORY)
_LEGEND_TEXT = "8pt"

# Mid-tone colours that stay legible on a white and on a near-black background.
LIVE = QColor(41, 128, 215)
SWEEP = QColor(230, 126, 34)
RESERVED = QColor(155, 89, 182)
BEST = QColor(39, 174, 96)
WARMUP = QColor(149, 165, 166)
OOM = QColor(231, 76, 60)


def _pen(color: QColor, width: float = 1.5, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = pg.mkPen(color, width=width)
    pen.setStyle(style)
    pen.setCosmetic(True)
    return pen


@dataclass
class _SizeStats:
    """What the live run measured at one batch size."""

    throughput_sum: float = 0.0
    throughput_batches: int = 0
    allocated_mb: float = 0.0
    reserved_mb: float = 0.0


@dataclass
class _Buffers:
    """Everything the plots draw, bounded: a ring of recent batches and one entry per batch size."""

    times: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    throughput: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    warmup_times: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    warmup_throughput: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    per_size: dict[int, _SizeStats] = field(default_factory=dict)
    sweep: list[SweepPoint] = field(default_factory=list)
    best: int | None = None
    memory_kind: str | None = None
    started: float | None = None


class _Log2Axis(pg.AxisItem):
    """Batch sizes on a log2 scale, labelled with the sizes themselves (1, 2, 4 … 1024)."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.setTicks(
            [
                [(power, str(2**power)) for power in range(0, _MAX_POWER + 1, 2)],
                [(power, str(2**power)) for power in range(1, _MAX_POWER + 1, 2)],
            ]
        )


def _log2(sizes: list[int]) -> np.ndarray:
    return np.log2(np.asarray(sizes, dtype=float))


def _range_from_zero(plot: pg.PlotWidget, values: list[float]) -> None:
    plot.setYRange(0, max(values, default=0) * 1.1 or 1.0, padding=0)


class BatchPlots(QWidget):
    """The plots plus the sweep's buttons; emits what the user asks for, runs nothing itself."""

    find_best_requested = Signal()
    use_batch_size = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._data = _Buffers()
        self._dirty: set[str] = set()
        self._turn = 0
        self._memory_kind_shown: str | None = None

        self.time_plot = pg.PlotWidget()
        self.size_plot = pg.PlotWidget(axisItems={"bottom": _Log2Axis()})
        self.memory_plot = pg.PlotWidget(axisItems={"bottom": _Log2Axis()})
        self._setup_axes()
        self._create_items()

        self.find_button = QPushButton("Find best batch size")
        self.find_button.setToolTip(
            "Measure throughput at each batch size on this device, using the queued (or sample) images"
        )
        self.find_button.clicked.connect(self.find_best_requested)
        self.use_button = QPushButton("Use batch size …")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._use_best)
        self.sweep_label = QLabel("Throughput and memory per batch size fill in as batches run.")
        self.sweep_label.setWordWrap(True)

        header = QHBoxLayout()
        header.addWidget(self.find_button)
        header.addWidget(self.use_button)
        header.addWidget(self.sweep_label, 1)
        plots = QHBoxLayout()
        plots.setSpacing(6)
        for plot in (self.time_plot, self.size_plot, self.memory_plot):
            plot.setMinimumSize(220, 180)
            plots.addWidget(plot, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addLayout(plots, 1)
        self._show_memory_kind(None)
        self._apply_palette()

        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    # --- construction --------------------------------------------------------------------

    def _setup_axes(self) -> None:
        self.time_plot.setTitle("Throughput over time<br><small>per batch; warm-up batches excluded</small>")
        self.time_plot.setLabel("bottom", "time since first batch", units="s")
        self.time_plot.setLabel("left", "throughput", units="img/s")
        self.size_plot.setTitle("Throughput per batch size<br><small>live run (mean) and sweep</small>")
        self.size_plot.setLabel("bottom", "batch size (log₂ scale)")
        self.size_plot.setLabel("left", "throughput", units="img/s")
        self.memory_plot.setLabel("bottom", "batch size (log₂ scale)")
        self.memory_plot.setLabel("left", "peak memory", units="MB")
        for plot in (self.time_plot, self.size_plot, self.memory_plot):
            item = plot.getPlotItem()
            item.showGrid(x=False, y=True, alpha=0.25)  # vertical grid lines cost a third of each repaint
            item.setMenuEnabled(False)
            item.hideButtons()
            item.setMouseEnabled(x=False, y=False)  # live plots follow their data; a stray drag must not freeze them
            for side in ("left", "bottom"):
                item.getAxis(side).enableAutoSIPrefix(False)
            item.getAxis("left").setWidth(58)  # a label growing a digit must not re-lay out the plot
            item.setDownsampling(auto=True, mode="peak")
            item.setClipToView(True)
        for plot in (self.size_plot, self.memory_plot):
            plot.setLimits(xMin=-0.5, xMax=_MAX_POWER + 0.5)
        for plot in (self.time_plot, self.size_plot):
            plot.setLimits(yMin=0)  # throughput is drawn from zero: a 5 % wobble must not look like a cliff
            plot.enableAutoRange(axis="y", enable=False)

    def _create_items(self) -> None:
        """Every curve once; refreshing only calls setData."""
        self.time_legend = self.time_plot.addLegend(offset=(-8, -8), labelTextSize=_LEGEND_TEXT)
        self.throughput_curve = self.time_plot.plot(
            pen=_pen(LIVE, 1), antialias=False, name="per batch"
        )
        self.rolling_curve = self.time_plot.plot(
            pen=_pen(SWEEP, 2), antialias=False, name=f"mean of {ROLLING} batches"
        )
        self.warmup_points = self.time_plot.plot(
            pen=None, symbol="o", symbolSize=7, symbolBrush=None, symbolPen=_pen(WARMUP, 1.5),
            antialias=False, name="warm-up (excluded)",
        )

        self.size_legend = self.size_plot.addLegend(offset=(-8, 8), labelTextSize=_LEGEND_TEXT)
        self.live_size_curve = self.size_plot.plot(
            pen=_pen(LIVE, 1.5), symbol="o", symbolSize=8, symbolBrush=LIVE, symbolPen=None,
            antialias=False, name="live run (mean)",
        )
        self.sweep_size_curve = self.size_plot.plot(
            pen=_pen(SWEEP, 1.5), symbol="s", symbolSize=8, symbolBrush=SWEEP, symbolPen=None,
            antialias=False, name="sweep",
        )
        self.oom_points = self.size_plot.plot(
            pen=None, symbol="x", symbolSize=11, symbolBrush=OOM, symbolPen=_pen(OOM, 2),
            antialias=False,  # in the legend only once a size has run out of memory
        )
        self.best_line = pg.InfiniteLine(
            angle=90, movable=False, pen=_pen(BEST, 2, Qt.PenStyle.DashLine),
            label="best", labelOpts={"position": 0.92, "color": BEST, "movable": False},
        )
        self.best_line.setVisible(False)
        self.size_plot.addItem(self.best_line, ignoreBounds=True)

        self.memory_legend = self.memory_plot.addLegend(offset=(8, 8), labelTextSize=_LEGEND_TEXT)
        self.allocated_curve = self.memory_plot.plot(
            pen=_pen(LIVE, 1.5), symbol="o", symbolSize=7, symbolBrush=LIVE, symbolPen=None,
            antialias=False,
        )
        self.reserved_curve = self.memory_plot.plot(
            pen=_pen(RESERVED, 1.5, Qt.PenStyle.DashLine), symbol="t", symbolSize=7,
            symbolBrush=RESERVED, symbolPen=None, antialias=False,
        )

    # --- feeding ---------------------------------------------------------------------------

    def add_batch(self, stats: BatchStats) -> None:
        """Record one batch; drawn at the next tick. Called for every batch, so kept O(1)."""
        data = self._data
        if data.started is None:
            data.started = stats.finished_at
        elapsed = stats.finished_at - data.started
        if stats.warmup:
            data.warmup_times.append(elapsed)
            data.warmup_throughput.append(stats.images_per_s)
        elif stats.images:
            data.times.append(elapsed)
            data.throughput.append(stats.images_per_s)
        at_size = data.per_size.setdefault(stats.batch_size, _SizeStats())
        if not stats.warmup and stats.images:
            at_size.throughput_sum += stats.images_per_s
            at_size.throughput_batches += 1
        at_size.allocated_mb = max(at_size.allocated_mb, stats.peak_allocated_mb)
        at_size.reserved_mb = max(at_size.reserved_mb, stats.peak_reserved_mb)
        data.memory_kind = stats.memory_kind
        self._dirty.update(_ALL)

    def start_sweep(self) -> None:
        self._data.sweep.clear()
        self._data.best = None
        self.use_button.setEnabled(False)
        self.use_button.setText("Use batch size …")
        self.sweep_label.setText("Measuring each batch size…")
        self._dirty.update(_PER_SIZE)

    def add_sweep_point(self, point: SweepPoint) -> None:
        self._data.sweep.append(point)
        self._data.memory_kind = point.memory_kind
        text = "out of memory" if point.out_of_memory else f"{point.images_per_s:,.0f} img/s"
        self.sweep_label.setText(f"Measured batch size {point.batch_size}: {text}…")
        self._dirty.update(_PER_SIZE)

    def finish_sweep(self, result: SweepResult) -> None:
        self._data.sweep = list(result.points)
        self._data.best = result.best_batch_size
        if result.best_batch_size is None:
            self.sweep_label.setText("The sweep measured nothing usable.")
        else:
            best = next(p for p in result.points if p.batch_size == result.best_batch_size)
            speedup = best.images_per_s / result.sequential_images_per_s if result.sequential_images_per_s else 0
            self.sweep_label.setText(
                f"Best: batch size <b>{best.batch_size}</b>, {best.images_per_s:,.0f} img/s "
                f"({speedup:.1f}× one image at a time); within 5 % of the fastest, the smallest wins."
            )
            self.use_button.setText(f"Use batch size {best.batch_size}")
            self.use_button.setEnabled(True)
        self._dirty.update(_PER_SIZE)

    def sweep_stopped(self, reason: str) -> None:
        self.sweep_label.setText(reason)

    def clear(self) -> None:
        self._data = _Buffers()
        self.use_button.setEnabled(False)
        self.use_button.setText("Use batch size …")
        self.sweep_label.setText("Throughput and memory per batch size fill in as batches run.")
        self._dirty.update(_ALL)

    def _use_best(self) -> None:
        if self._data.best is not None:
            self.use_batch_size.emit(self._data.best)

    # --- drawing ---------------------------------------------------------------------------

    def _tick(self) -> None:
        """Redraw one changed plot: the time plot every other tick, the others in between."""
        self._turn += 1
        order = (_TIME, _SIZE, _TIME, _MEMORY)
        for offset in range(len(order)):
            name = order[(self._turn + offset) % len(order)]
            if name in self._dirty:
                self._dirty.discard(name)
                self._redraw(name)
                return

    def _redraw(self, name: str) -> None:
        if name == _TIME:
            self._redraw_time()
        elif name == _SIZE:
            self._redraw_size()
        else:
            self._redraw_memory()

    def _redraw_time(self) -> None:
        data = self._data
        times = np.fromiter(data.times, dtype=float, count=len(data.times))
        throughput = np.fromiter(data.throughput, dtype=float, count=len(data.throughput))
        self.throughput_curve.setData(times, throughput)
        if len(throughput) >= ROLLING:
            kernel = np.ones(ROLLING) / ROLLING
            self.rolling_curve.setData(times[ROLLING - 1 :], np.convolve(throughput, kernel, mode="valid"))
        else:
            self.rolling_curve.setData([], [])
        self.warmup_points.setData(list(data.warmup_times), list(data.warmup_throughput))
        _range_from_zero(self.time_plot, [*data.throughput, *data.warmup_throughput])

    def _redraw_size(self) -> None:
        data = self._data
        measured = sorted(size for size, stats in data.per_size.items() if stats.throughput_batches)
        self.live_size_curve.setData(
            _log2(measured), [data.per_size[s].throughput_sum / data.per_size[s].throughput_batches for s in measured]
        )
        fine = [p for p in data.sweep if not p.out_of_memory]
        self.sweep_size_curve.setData(_log2([p.batch_size for p in fine]), [p.images_per_s for p in fine])
        failed = [p.batch_size for p in data.sweep if p.out_of_memory]
        self.oom_points.setData(_log2(failed), [0.0] * len(failed))
        in_legend = any(sample.item is self.oom_points for sample, _ in self.size_legend.items)
        if failed and not in_legend:
            self.size_legend.addItem(self.oom_points, "out of memory")
        elif in_legend and not failed:
            self.size_legend.removeItem(self.oom_points)
        live = [data.per_size[s].throughput_sum / data.per_size[s].throughput_batches for s in measured]
        _range_from_zero(self.size_plot, [*live, *(p.images_per_s for p in fine)])
        if data.best is not None:
            self.best_line.setValue(math.log2(data.best))
            self.best_line.label.setFormat(f"best: {data.best}")
        self.best_line.setVisible(data.best is not None)

    def _redraw_memory(self) -> None:
        """Peak memory per size, from the run and the sweep (the larger reading wins)."""
        data = self._data
        sweep = [p for p in data.sweep if not p.out_of_memory]
        allocated: dict[int, float] = {}
        reserved: dict[int, float] = {}
        for size, stats in data.per_size.items():
            allocated[size], reserved[size] = stats.allocated_mb, stats.reserved_mb
        for point in sweep:
            allocated[point.batch_size] = max(allocated.get(point.batch_size, 0.0), point.peak_allocated_mb)
            reserved[point.batch_size] = max(reserved.get(point.batch_size, 0.0), point.peak_reserved_mb)
        sizes = sorted(allocated)
        cuda = data.memory_kind == "cuda"
        self.allocated_curve.setData(_log2(sizes), [allocated[s] for s in sizes])
        self.reserved_curve.setData(_log2(sizes) if cuda else [], [reserved[s] for s in sizes] if cuda else [])
        if data.memory_kind != self._memory_kind_shown:
            self._show_memory_kind(data.memory_kind)

    def _show_memory_kind(self, kind: str | None) -> None:
        """Say what the memory plot measures: the CUDA allocator's peaks, or the process's RSS."""
        self._memory_kind_shown = kind
        legend = self.memory_legend
        legend.removeItem(self.allocated_curve)
        legend.removeItem(self.reserved_curve)
        if kind == "process":
            self.memory_plot.setTitle("Memory per batch size<br><small>process memory (no CUDA)</small>")
            self.memory_plot.setLabel("left", "process resident memory", units="MB")
            legend.addItem(self.allocated_curve, "process RSS")
        else:
            subtitle = "CUDA allocator peaks" if kind else "filled in by runs and sweeps"
            self.memory_plot.setTitle(f"Peak memory per batch size<br><small>{subtitle}</small>")
            self.memory_plot.setLabel("left", "peak memory", units="MB")
            legend.addItem(self.allocated_curve, "peak allocated")
            legend.addItem(self.reserved_curve, "peak reserved")
        text = self.palette().color(QPalette.ColorRole.Text)
        for _, label in legend.items:
            label.setText(label.text, color=text.name())

    # --- palette ---------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        """pyqtgraph draws black on its own; follow the window's palette so light and dark both read."""
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        for plot, legend in (
            (self.time_plot, self.time_legend),
            (self.size_plot, self.size_legend),
            (self.memory_plot, self.memory_legend),
        ):
            plot.setBackground(background)
            item = plot.getPlotItem()
            item.titleLabel.setAttr("color", text.name())
            item.titleLabel.setText(item.titleLabel.text)
            for side in ("left", "bottom"):
                axis = item.getAxis(side)
                axis.setPen(text)
                axis.setTextPen(text)
            legend.setLabelTextColor(text)
            for _, label in legend.items:
                label.setText(label.text)  # setLabelTextColor only stores the colour
            legend.setBrush(pg.mkBrush(background.red(), background.green(), background.blue(), 200))
            legend.setPen(pg.mkPen(palette.color(QPalette.ColorRole.Mid)))
        self._dirty.update(_ALL)
