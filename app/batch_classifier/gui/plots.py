"""Four live plots that show what batching does and why, and the batch-size sweep.

(a) throughput over time, (b) throughput per batch size, (c) memory: the
CUDA allocator's peaks per batch size, or, without CUDA, the process's
resident memory over time (it does not depend on the batch size on a CPU,
so plotting it per batch size would only show the order sizes were tried),
(d) time per image by stage per batch size, with the fixed cost in words
(``stage_plot.py``).

Each batch is filed under the number of images it held, the number the CSV's
``batch_size`` column gives its rows; a batch that decoded nothing is left
out. Each run has its own time axis, starting at its first batch, with the
run before it greyed behind; a pause breaks the line instead of bridging it.

Batches only append to bounded buffers (cheap, on every batch); a 10 Hz
timer redraws by ``setData`` on curves created once, without antialiasing and
without symbols on the long series. Each tick redraws at most one plot, and
only one that changed, taking turns with the time plot (so it moves at 5 Hz):
repainting a pyqtgraph plot is Python work on the GUI thread, and three at
once on a busy 2-core machine is a visible stall.

Legends are text below each plot, never over the data, and titles are one
short line; below ``SIDE_BY_SIDE_WIDTH`` the plots go into tabs, so the pane
holds from the window's minimum size up.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg  # binds to PySide6: the package's __init__ imported it first
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette, QPen, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..engine.devices import MemoryKind, label_for
from ..engine.records import BatchStats
from ..engine.runtimes import RUNTIME_CHOICES
from ..engine.stage_times import STAGES
from ..engine.sweep import LARGEST_SWEEP_POWER, SweepPoint, SweepResult
from .plot_parts import BatchSizeAxis, Legend, follow_palette
from .stage_plot import IDLE_TEXT as STAGE_IDLE_TEXT
from .stage_plot import STAGE_COLOURS, StageBars

TICK_MS = 100
HISTORY = 4000
"""Batches kept for the time plot; older ones scroll away."""
ROLLING = 10
"""Batches in the rolling mean drawn over the noisy per-batch throughput."""
PLOT_MIN_WIDTH = 300
"""Narrower than this, a plot's title, ticks and legend no longer fit side by side with the others."""
SIDE_BY_SIDE_WIDTH = 4 * PLOT_MIN_WIDTH + 18
_TIME, _SIZE, _MEMORY, _STAGES = "time", "size", "memory", "stages"
_ALL = (_TIME, _SIZE, _MEMORY, _STAGES)
_PER_SIZE = (_SIZE, _MEMORY, _STAGES)
_TITLES = {_TIME: "Throughput over time", _SIZE: "Throughput per size", _STAGES: "Time per image by stage"}
_SUMMARY_BESIDE_WIDTH = 260
"""In a tab the stage plot's words stand beside it, this wide at most: below it they would take its height."""
_ANY_WIDTH = 16_777_215  # QWIDGETSIZE_MAX
_STAGES_TAB = "Stages"
"""The stage plot's tab: four full titles would not fit side by side in the tab bar at the minimum window size."""
_IDLE_TEXT = "Throughput per batch size fills in as batches run; the sweep measures every power of two."
SYMBOLS_BELOW = 60
"""A per-batch series shorter than this is drawn with a dot per batch, so a short run's few batches show."""

# Mid-tone colours that stay legible on a white and on a near-black background.
LIVE = QColor(41, 128, 215)
SWEEP = QColor(230, 126, 34)
RESERVED = QColor(155, 89, 182)
BEST = QColor(39, 174, 96)
WARMUP = QColor(149, 165, 166)
OOM = QColor(231, 76, 60)
EARLIER = QColor(149, 165, 166, 150)
"""The run before this one, drawn behind it."""


def _pen(color: QColor, width: float = 1.5, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = pg.mkPen(color, width=width)
    pen.setStyle(style)
    pen.setCosmetic(True)
    return pen


class _Series:
    """Points over a run's time, bounded; a NaN pair breaks the line where the run paused."""

    def __init__(self) -> None:
        self.times: deque[float] = deque(maxlen=HISTORY)
        self.values: deque[float] = deque(maxlen=HISTORY)

    def append(self, time_s: float, value: float) -> None:
        self.times.append(time_s)
        self.values.append(value)

    def break_line(self) -> None:
        if self.values and not math.isnan(self.values[-1]):
            self.append(math.nan, math.nan)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.fromiter(self.times, dtype=float, count=len(self.times)),
            np.fromiter(self.values, dtype=float, count=len(self.values)),
        )

    def __bool__(self) -> bool:
        return bool(self.values)


@dataclass
class _Run:
    """One run's batches over its own time axis, from its first batch."""

    first_batch_at: float | None = None
    last_index: int = -1
    throughput: _Series = field(default_factory=_Series)
    warmup: _Series = field(default_factory=_Series)
    memory: _Series = field(default_factory=_Series)
    resumed: bool = False
    """Set when the run resumes after a pause: the next batch starts a new stretch of line."""


@dataclass
class _SizeStats:
    """What the live runs measured at one batch size (images per batch)."""

    throughput_sum: float = 0.0
    throughput_batches: int = 0
    allocated_mb: float = 0.0
    reserved_mb: float = 0.0
    memory_batches: int = 0


@dataclass
class _Buffers:
    """Everything the plots draw, bounded: this run and the one before, and one entry per batch size."""

    run: _Run = field(default_factory=_Run)
    earlier: _Run | None = None
    per_size: dict[int, _SizeStats] = field(default_factory=dict)
    sweep: list[SweepPoint] = field(default_factory=list)
    other_sweep: list[SweepPoint] = field(default_factory=list)
    """The last sweep on the other runtime (torch or ONNX Runtime), drawn beside this one so both show."""
    replaced_sweep: list[SweepPoint] = field(default_factory=list)
    """The sweep a new one replaces, until the new one's runtime is known."""
    best: int | None = None
    memory_kind: MemoryKind | None = None
    """What the last reading measured; None until a batch has run the model."""


def _other_sweep_entry(runtime: str) -> str:
    return f"sweep on {runtime}"


def _log2(sizes: list[int]) -> np.ndarray:
    return np.log2(np.asarray(sizes, dtype=float))


def _rolling_mean(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ROLLING consecutive batches, restarted after each break in the line."""
    out_times: list[np.ndarray] = []
    out_values: list[np.ndarray] = []
    kernel = np.ones(ROLLING) / ROLLING
    breaks = np.flatnonzero(np.isnan(values))
    for segment_times, segment_values in zip(np.split(times, breaks), np.split(values, breaks)):
        keep = ~np.isnan(segment_values)
        segment_times, segment_values = segment_times[keep], segment_values[keep]
        if len(segment_values) >= ROLLING:
            if out_times:
                out_times.append(np.array([math.nan]))
                out_values.append(np.array([math.nan]))
            out_times.append(segment_times[ROLLING - 1 :])
            out_values.append(np.convolve(segment_values, kernel, mode="valid"))
    if not out_times:
        return np.empty(0), np.empty(0)
    return np.concatenate(out_times), np.concatenate(out_values)


def _finite(values: np.ndarray) -> list[float]:
    return values[~np.isnan(values)].tolist()


def _span_sizes(plot: pg.PlotWidget, sizes: list[int]) -> None:
    """From batch size 1 to the largest size drawn (at least 8), so one point still reads against its neighbours."""
    largest = max([8, *sizes])
    plot.setXRange(-0.5, math.log2(largest) + 0.5, padding=0)


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
        self._memory_kind_shown: MemoryKind | None = None
        self._actor_peaks: list[str] = []
        self._titles: dict[pg.PlotWidget, str] = {}

        self.time_plot = pg.PlotWidget()
        self.size_plot = pg.PlotWidget(axisItems={"bottom": BatchSizeAxis()})
        self.memory_axis = BatchSizeAxis()
        self.memory_plot = pg.PlotWidget(axisItems={"bottom": self.memory_axis})
        self.stage_plot = pg.PlotWidget(axisItems={"bottom": BatchSizeAxis()})
        self.time_legend, self.size_legend, self.memory_legend = Legend(), Legend(), Legend()
        self.stage_legend = Legend()
        self.stage_summary = QLabel(STAGE_IDLE_TEXT)
        self.stage_summary.setWordWrap(True)
        self.stage_summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
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
        self.sweep_label = QLabel(_IDLE_TEXT)
        self.sweep_label.setWordWrap(True)

        header = QHBoxLayout()
        header.addWidget(self.find_button)
        header.addWidget(self.use_button)
        header.addWidget(self.sweep_label, 1)
        self._panels = [
            self._panel(plot, legend)
            for plot, legend in (
                (self.time_plot, self.time_legend),
                (self.size_plot, self.size_legend),
                (self.memory_plot, self.memory_legend),
            )
        ]
        self._stage_box = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self._panels.append(self._stage_panel())
        self._row = QWidget()
        row_layout = QHBoxLayout(self._row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        row_layout.setSpacing(6)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self._arrangement = QStackedWidget()
        self._arrangement.addWidget(self._row)
        self._arrangement.addWidget(self.tabs)
        self._side_by_side: bool | None = None
        self._arrange(side_by_side=False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self._arrangement, 1)
        self._set_title(self.time_plot, _TITLES[_TIME])
        self._set_title(self.size_plot, _TITLES[_SIZE])
        self._set_title(self.stage_plot, _TITLES[_STAGES])
        self._show_memory_kind(None)
        self._apply_palette()

        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    # --- construction --------------------------------------------------------------------

    @staticmethod
    def _panel(plot: pg.PlotWidget, legend: Legend) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(plot, 1)
        layout.addWidget(legend)
        plot.setMinimumSize(PLOT_MIN_WIDTH - 40, 130)
        return panel

    def _stage_panel(self) -> QWidget:
        """The stage plot with its words below it (side by side) or beside it (in a tab, where height is short)."""
        panel = QWidget()
        panel.setLayout(self._stage_box)
        self._stage_box.setContentsMargins(0, 0, 0, 0)
        self._stage_box.setSpacing(6)
        self._stage_box.addWidget(self._panel(self.stage_plot, self.stage_legend), 1)
        self._stage_box.addWidget(self.stage_summary)
        return panel

    def _setup_axes(self) -> None:
        self.time_plot.setToolTip(
            "Images per second of each batch of the current run, from its first batch; the run before it is "
            "greyed behind. Warm-up batches are not counted. A pause leaves a gap."
        )
        self.time_plot.setLabel("bottom", "seconds into the run")
        self.time_plot.setLabel("left", "img/s")
        self.size_plot.setToolTip(
            "Mean images per second of the batches that held each number of images, and the sweep's measurement "
            "at each power of two."
        )
        self.size_plot.setLabel("bottom", "images per batch (log₂)")
        self.size_plot.setLabel("left", "img/s")
        self.memory_plot.setLabel("left", "MB")
        self.stage_plot.setToolTip(
            "Milliseconds per image in each stage, per batch size, warm-up left out: decode is what the model "
            "waited for, copy is host to device, forward is the model, rest is the batch's remaining work. "
            "Left bar: the runs; right bar, stippled: the sweep (images decoded up front, so no decode)."
        )
        self.stage_plot.setLabel("bottom", "images per batch (log₂)")
        self.stage_plot.setLabel("left", "ms per image")
        for plot in self._plots():
            item = plot.getPlotItem()
            item.showGrid(x=False, y=True, alpha=0.25)  # vertical grid lines cost a third of each repaint
            item.setMenuEnabled(False)
            item.hideButtons()
            item.setMouseEnabled(x=False, y=False)  # live plots follow their data; a stray drag must not freeze them
            for side in ("left", "bottom"):
                item.getAxis(side).enableAutoSIPrefix(False)
            item.setDownsampling(auto=True, mode="peak")
            item.setClipToView(True)
        for plot in (self.size_plot, self.stage_plot):
            plot.setLimits(xMin=-0.5, xMax=LARGEST_SWEEP_POWER + 0.5)
        for plot in (self.time_plot, self.size_plot, self.stage_plot):
            plot.setLimits(yMin=0)  # throughput is drawn from zero: a 5 % wobble must not look like a cliff
            plot.enableAutoRange(axis="y", enable=False)

    def _create_items(self) -> None:
        """Every curve once; refreshing only calls setData."""
        self.earlier_curve = self.time_plot.plot(pen=_pen(EARLIER, 1), antialias=False, connect="finite")
        self.throughput_curve = self.time_plot.plot(pen=_pen(LIVE, 1), antialias=False, connect="finite")
        self.rolling_curve = self.time_plot.plot(pen=_pen(SWEEP, 2), antialias=False, connect="finite")
        self.warmup_points = self.time_plot.plot(
            pen=None, symbol="o", symbolSize=7, symbolBrush=None, symbolPen=_pen(WARMUP, 1.5), antialias=False
        )
        self.time_legend.set_entry("per batch", "━", LIVE)
        self.time_legend.set_entry(f"mean of {ROLLING}", "━", SWEEP)
        self.time_legend.set_entry("warm-up (not counted)", "○", WARMUP)
        self.time_legend.set_entry("previous run", "━", EARLIER, shown=False)

        self.live_size_curve = self.size_plot.plot(
            pen=_pen(LIVE, 1.5), symbol="o", symbolSize=8, symbolBrush=LIVE, symbolPen=None, antialias=False
        )
        self.sweep_size_curve = self.size_plot.plot(
            pen=_pen(SWEEP, 1.5), symbol="s", symbolSize=8, symbolBrush=SWEEP, symbolPen=None, antialias=False
        )
        self.other_sweep_curve = self.size_plot.plot(
            pen=_pen(EARLIER, 1.5, Qt.PenStyle.DashLine), symbol="s", symbolSize=7, symbolBrush=EARLIER,
            symbolPen=None, antialias=False,
        )
        self.oom_points = self.size_plot.plot(
            pen=None, symbol="x", symbolSize=11, symbolBrush=OOM, symbolPen=_pen(OOM, 2), antialias=False
        )
        self.best_line = pg.InfiniteLine(
            angle=90, movable=False, pen=_pen(BEST, 2, Qt.PenStyle.DashLine),
            label="best", labelOpts={"position": 0.92, "color": BEST, "movable": False},
        )
        self.best_line.setVisible(False)
        self.size_plot.addItem(self.best_line, ignoreBounds=True)
        self.size_legend.set_entry("runs (mean)", "●", LIVE)
        self.size_legend.set_entry("sweep", "■", SWEEP)
        for runtime in RUNTIME_CHOICES[1:]:
            self.size_legend.set_entry(_other_sweep_entry(runtime), "■", EARLIER, shown=False)
        self.size_legend.set_entry("out of memory", "✕", OOM, shown=False)

        self.allocated_curve = self.memory_plot.plot(
            pen=_pen(LIVE, 1.5), symbol="o", symbolSize=7, symbolBrush=LIVE, symbolPen=None, antialias=False
        )
        self.reserved_curve = self.memory_plot.plot(
            pen=_pen(RESERVED, 1.5, Qt.PenStyle.DashLine), symbol="t", symbolSize=7,
            symbolBrush=RESERVED, symbolPen=None, antialias=False,
        )
        self.earlier_memory_curve = self.memory_plot.plot(pen=_pen(EARLIER, 1), antialias=False, connect="finite")
        self.process_memory_curve = self.memory_plot.plot(pen=_pen(LIVE, 1.5), antialias=False, connect="finite")

        self.stage_bars = StageBars(self.stage_plot)
        for stage in STAGES:
            self.stage_legend.set_entry(stage, "■", STAGE_COLOURS[stage])
        self.stage_legend.set_entry("sweep", "▨", self.palette().color(QPalette.ColorRole.Text))

    # --- arrangement -----------------------------------------------------------------------

    @property
    def side_by_side(self) -> bool:
        return bool(self._side_by_side)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._arrange(event.size().width() >= SIDE_BY_SIDE_WIDTH)
        super().resizeEvent(event)

    def _arrange(self, side_by_side: bool) -> None:
        """The four plots in a row when there is room for them, else one at a time in tabs."""
        if side_by_side == self._side_by_side:
            return
        self._side_by_side = side_by_side
        self._stage_box.setDirection(
            QBoxLayout.Direction.TopToBottom if side_by_side else QBoxLayout.Direction.LeftToRight
        )
        self.stage_summary.setMaximumWidth(_SUMMARY_BESIDE_WIDTH if not side_by_side else _ANY_WIDTH)
        row = self._row.layout()
        current = self.tabs.currentIndex()
        while self.tabs.count():
            self.tabs.removeTab(0)
        for panel in self._panels:
            row.removeWidget(panel)
        for panel, plot in zip(self._panels, self._plots()):
            if side_by_side:
                row.addWidget(panel, 1)
            else:
                self.tabs.addTab(panel, "")
            self._set_title(plot, self._titles.get(plot, ""))
        if side_by_side:
            for panel in self._panels:
                panel.show()  # a page taken out of the tabs may have been hidden there
        else:
            self.tabs.setCurrentIndex(max(0, current))
        self._arrangement.setCurrentWidget(self._row if side_by_side else self.tabs)

    def _plots(self) -> tuple[pg.PlotWidget, pg.PlotWidget, pg.PlotWidget, pg.PlotWidget]:
        return self.time_plot, self.size_plot, self.memory_plot, self.stage_plot

    def title(self, plot: pg.PlotWidget) -> str:
        """What ``plot`` shows, in the words of its title (side by side) or its tab (in tabs)."""
        return self._titles[plot]

    def _set_title(self, plot: pg.PlotWidget, text: str) -> None:
        """Over the plot when side by side; in tabs the tab says it, and the plot keeps the height."""
        self._titles[plot] = text
        if self.side_by_side:
            plot.setTitle(text, color=self.palette().color(QPalette.ColorRole.Text).name())
        else:
            plot.setTitle(None)
            self.tabs.setTabText(self._plots().index(plot), _STAGES_TAB if plot is self.stage_plot else text)

    # --- feeding ---------------------------------------------------------------------------

    def add_batch(self, stats: BatchStats) -> None:
        """Record one batch; drawn at the next tick. Called for every batch, so kept O(1)."""
        data = self._data
        if stats.batch_index <= data.run.last_index:  # the engine numbers each run's batches from 0
            data.earlier = data.run if data.run.throughput or data.run.memory else data.earlier
            data.run = _Run()
        run = data.run
        run.last_index = stats.batch_index
        self.stage_bars.add_batch(stats)
        self._dirty.update(_ALL)
        if stats.memory is None or not stats.images:
            return  # nothing decoded: no throughput, and no memory that a batch size could explain
        if run.first_batch_at is None:
            run.first_batch_at = stats.finished_at
        if run.resumed:
            run.throughput.break_line()
            run.memory.break_line()
            run.resumed = False
        elapsed = stats.finished_at - run.first_batch_at
        at_size = data.per_size.setdefault(stats.images, _SizeStats())
        if stats.warmup:
            run.warmup.append(elapsed, stats.images_per_s)
        else:
            run.throughput.append(elapsed, stats.images_per_s)
            at_size.throughput_sum += stats.images_per_s
            at_size.throughput_batches += 1
        data.memory_kind = stats.memory.kind
        if stats.memory.kind == "cuda":
            at_size.allocated_mb = max(at_size.allocated_mb, stats.memory.allocated_mb)
            at_size.reserved_mb = max(at_size.reserved_mb, stats.memory.reserved_mb)
            at_size.memory_batches += 1
        else:
            run.memory.append(elapsed, stats.memory.allocated_mb)

    def set_paused(self, paused: bool) -> None:
        """The time a run stands still is a gap, not a line from the batch before the pause to the next.

        The break goes in at resume: a batch already in flight when Pause was
        pressed still belongs to the stretch before it.
        """
        if not paused:
            self._data.run.resumed = True

    def start_sweep(self) -> None:
        self._data.replaced_sweep = self._data.sweep or self._data.replaced_sweep
        self._data.sweep = []
        self._data.best = None
        self.use_button.setEnabled(False)
        self.use_button.setText("Use batch size …")
        self.sweep_label.setText("Measuring each batch size…")
        self.stage_bars.set_sweep([])
        self._dirty.update(_PER_SIZE)

    def _keep_other_runtime(self, runtime: str) -> None:
        """A new sweep on ``runtime`` has begun: the one it replaces stays drawn if it ran on the other runtime."""
        replaced = self._data.replaced_sweep
        if replaced and replaced[0].runtime != runtime:
            self._data.other_sweep = replaced
        self._data.replaced_sweep = []

    def add_sweep_point(self, point: SweepPoint) -> None:
        if not self._data.sweep:
            self._keep_other_runtime(point.runtime)
        self._data.sweep.append(point)
        self._data.memory_kind = point.memory.kind
        self.sweep_label.setText(f"Measured batch size {point.batch_size}: {point.describe()}…")
        self.stage_bars.set_sweep(self._data.sweep)
        self._dirty.update(_PER_SIZE)

    def finish_sweep(self, result: SweepResult) -> None:
        if result.points and not self._data.sweep:
            self._keep_other_runtime(result.points[0].runtime)
        self._data.sweep = list(result.points)
        self._data.best = result.best_batch_size
        self.stage_bars.set_sweep(result.points)
        if result.best_batch_size is None:
            self.sweep_label.setText("The sweep measured nothing usable.")
        else:
            best = result.best_point
            assert best is not None  # the best size is one of the points
            self.sweep_label.setText(
                f"Best on {best.runtime}: batch size <b>{best.batch_size}</b>, {best.images_per_s:,.0f} img/s "
                f"({result.speedup(best):.1f}× one image at a time); within 5 % of the fastest, the smallest wins."
            )
            self.use_button.setText(f"Use batch size {best.batch_size}")
            self.use_button.setEnabled(True)
        self._dirty.update(_PER_SIZE)

    def show_kernels(self, batch_size: int, kernels: int) -> None:
        self.stage_bars.set_kernels(batch_size, kernels)
        self._dirty.add(_STAGES)

    def sweep_stopped(self, reason: str) -> None:
        self.sweep_label.setText(reason)

    def clear(self) -> None:
        self._data = _Buffers()
        self.stage_bars.clear()
        self.use_button.setEnabled(False)
        self.use_button.setText("Use batch size …")
        self.sweep_label.setText(_IDLE_TEXT)
        self._dirty.update(_ALL)

    def _use_best(self) -> None:
        if self._data.best is not None:
            self.use_batch_size.emit(self._data.best)

    # --- drawing ---------------------------------------------------------------------------

    def _tick(self) -> None:
        """Redraw one changed plot: the time plot every other tick, the others in between."""
        self._turn += 1
        order = (_TIME, _SIZE, _TIME, _MEMORY, _TIME, _STAGES)
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
        elif name == _MEMORY:
            self._redraw_memory()
        else:
            self._redraw_stages()

    def _redraw_stages(self) -> None:
        sizes, tallest = self.stage_bars.redraw()
        _span_sizes(self.stage_plot, sizes)
        _range_from_zero(self.stage_plot, [tallest])
        self.stage_summary.setText(self.stage_bars.summary())

    def _redraw_time(self) -> None:
        data = self._data
        times, throughput = data.run.throughput.arrays()
        short = len(times) < SYMBOLS_BELOW
        self.throughput_curve.setData(
            times, throughput, connect="finite", symbol="o" if short else None, symbolSize=4,
            symbolBrush=LIVE, symbolPen=None,
        )
        self.rolling_curve.setData(*_rolling_mean(times, throughput), connect="finite")
        warmup_times, warmup_throughput = data.run.warmup.arrays()
        self.warmup_points.setData(warmup_times, warmup_throughput)
        earlier_times, earlier_throughput = data.earlier.throughput.arrays() if data.earlier else ([], [])
        self.earlier_curve.setData(earlier_times, earlier_throughput, connect="finite")
        self.time_legend.set_entry("previous run", "━", EARLIER, shown=len(earlier_times) > 0)
        _range_from_zero(
            self.time_plot, [*_finite(throughput), *warmup_throughput.tolist(), *_finite(np.asarray(earlier_throughput))]
        )

    def _redraw_size(self) -> None:
        data = self._data
        measured = sorted(size for size, stats in data.per_size.items() if stats.throughput_batches)
        live = [data.per_size[s].throughput_sum / data.per_size[s].throughput_batches for s in measured]
        self.live_size_curve.setData(_log2(measured), live)
        fine = [p for p in data.sweep if p.measured]
        self.sweep_size_curve.setData(_log2([p.batch_size for p in fine]), [p.images_per_s for p in fine])
        other = [p for p in data.other_sweep if p.measured]
        self.other_sweep_curve.setData(_log2([p.batch_size for p in other]), [p.images_per_s for p in other])
        for runtime in RUNTIME_CHOICES[1:]:
            shown = bool(other) and other[0].runtime == runtime
            self.size_legend.set_entry(_other_sweep_entry(runtime), "■", EARLIER, shown=shown)
        failed = [p.batch_size for p in data.sweep if p.out_of_memory]
        self.oom_points.setData(_log2(failed), [0.0] * len(failed))
        self.size_legend.set_entry("out of memory", "✕", OOM, shown=bool(failed))
        _range_from_zero(self.size_plot, [*live, *(p.images_per_s for p in [*fine, *other])])
        _span_sizes(self.size_plot, [*measured, *(p.batch_size for p in [*data.sweep, *other])])
        if data.best is not None:
            self.best_line.setValue(math.log2(data.best))
            self.best_line.label.setFormat(f"best: {data.best}")
        self.best_line.setVisible(data.best is not None)

    def _redraw_memory(self) -> None:
        data = self._data
        if data.memory_kind != self._memory_kind_shown:
            self._show_memory_kind(data.memory_kind)
        if data.memory_kind == "cuda":
            self._redraw_memory_per_size()
            empty: list[float] = []
            self.process_memory_curve.setData(empty, empty)
            self.earlier_memory_curve.setData(empty, empty)
        else:
            self.allocated_curve.setData([], [])
            self.reserved_curve.setData([], [])
            self.process_memory_curve.setData(*data.run.memory.arrays(), connect="finite")
            earlier = data.earlier.memory.arrays() if data.earlier else ([], [])
            self.earlier_memory_curve.setData(*earlier, connect="finite")
            self.memory_legend.set_entry("previous run", "━", EARLIER, shown=len(earlier[0]) > 0)

    def _redraw_memory_per_size(self) -> None:
        """Peak memory per size, from the runs and the sweep (the larger reading wins)."""
        data = self._data
        allocated: dict[int, float] = {}
        reserved: dict[int, float] = {}
        for size, stats in data.per_size.items():
            if stats.memory_batches:
                allocated[size], reserved[size] = stats.allocated_mb, stats.reserved_mb
        for point in data.sweep:
            if point.measured and point.memory.kind == "cuda":
                allocated[point.batch_size] = max(allocated.get(point.batch_size, 0.0), point.memory.allocated_mb)
                reserved[point.batch_size] = max(reserved.get(point.batch_size, 0.0), point.memory.reserved_mb)
        sizes = sorted(allocated)
        self.allocated_curve.setData(_log2(sizes), [allocated[s] for s in sizes])
        self.reserved_curve.setData(_log2(sizes), [reserved[s] for s in sizes])
        _span_sizes(self.memory_plot, sizes)

    def show_actor_peaks(self, peaks: list[str]) -> None:
        """A cluster run: each point is one Ray actor's reading, each actor's peak listed on hover ([] ends it)."""
        was_cluster, self._actor_peaks = bool(self._actor_peaks), peaks
        if was_cluster and not peaks:
            self._show_memory_kind(self._memory_kind_shown)  # a run of this machine: its own words again
        else:
            self._label_actor_peaks()

    def _label_actor_peaks(self) -> None:
        """Title, legend and hover of the memory plot for a cluster run; a run on this machine gets its line back.

        Each point of a cluster run is one actor's reading, so without a GPU
        the readings are dots: a line would zigzag from one actor's process
        to another's. The title stays short enough for its tab at 1024 px.
        """
        kind = self._memory_kind_shown
        on_cluster = bool(self._actor_peaks) and kind is not None
        self.process_memory_curve.setPen(None if on_cluster else _pen(LIVE, 1.5))
        self.process_memory_curve.setSymbol("o" if on_cluster else None)
        if not on_cluster:
            return
        self.process_memory_curve.setSymbolSize(4)
        self.process_memory_curve.setSymbolPen(None)
        self.process_memory_curve.setSymbolBrush(LIVE)
        self._set_title(self.memory_plot, f"{label_for(kind)} per Ray actor")
        if kind == "cuda":
            why = "The highest peak of any actor at each batch size.\n"
        else:
            why = "The actors have no GPU, so there is no GPU peak: each dot is one actor's process memory (RSS).\n"
            self.memory_legend.set_entries([("each actor's RSS (no GPU, so no GPU peak)", "●", LIVE)])
        self.memory_plot.setToolTip(why + "Each actor's peak so far:\n" + "\n".join(self._actor_peaks))

    def _show_memory_kind(self, kind: MemoryKind | None) -> None:
        """Say what the memory plot shows: nothing yet, the CUDA allocator's peaks, or the process's RSS."""
        self._memory_kind_shown = kind
        per_size = kind == "cuda"
        axis = "per batch size" if per_size else "over time"
        self._set_title(self.memory_plot, "Memory" if kind is None else f"{label_for(kind)} {axis}")
        self.memory_axis.per_batch_size(per_size)
        self.memory_plot.setLimits(
            xMin=-0.5 if per_size else None, xMax=LARGEST_SWEEP_POWER + 0.5 if per_size else None
        )
        if kind == "cuda":
            self.memory_plot.setLabel("bottom", "images per batch (log₂)")
            self.memory_plot.setToolTip(
                "The CUDA caching allocator's peaks while batches of each size ran: allocated by tensors, and "
                "reserved from the device (what other programs cannot use)."
            )
            self.memory_legend.set_entries([("peak allocated", "●", LIVE), ("peak reserved", "▲", RESERVED)])
        elif kind == "process":
            self.memory_plot.setLabel("bottom", "seconds into the run")
            self.memory_plot.setToolTip(
                "No CUDA device: the resident memory (RSS) of this whole process after each batch. It does not "
                "depend on the batch size here, so it is drawn over time."
            )
            self.memory_legend.set_entries([("resident memory (RSS)", "━", LIVE)])
            self.memory_legend.set_entry("previous run", "━", EARLIER, shown=False)
        else:
            self.memory_plot.setLabel("bottom", "")
            self.memory_plot.setToolTip("Filled in once a batch has run: what it shows depends on the device.")
            self.memory_legend.set_entries([])
            self.memory_legend.setText("Shown once a batch has run.")
        self._label_actor_peaks()

    # --- palette ---------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        """pyqtgraph draws black on its own; follow the window's palette so light and dark both read."""
        for plot in self._plots():
            follow_palette(plot, self.palette())
            self._set_title(plot, self._titles[plot])
        self._dirty.update(_ALL)
