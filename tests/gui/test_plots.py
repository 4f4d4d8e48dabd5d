"""The batching plots: fed per batch and by the sweep, drawn on their timer, labelled honestly."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from pytestqt.qtbot import QtBot

from batch_classifier.engine.devices import MemoryKind, MemoryReading
from batch_classifier.engine.records import BatchStats
from batch_classifier.engine.sweep import SweepPoint, SweepResult
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.plots import BatchPlots

REDRAW_MS = 3000


def stats(
    index: int,
    size: int,
    images_per_s: float,
    memory_kind: MemoryKind = "process",
    mb: float = 900.0,
    images: int | None = None,
    at: float | None = None,
) -> BatchStats:
    images = size if images is None else images
    return BatchStats(
        batch_index=index, batch_size=size, images=images, errors=size - images, decode_ms=1.0, copy_ms=1.0,
        forward_ms=5.0, total_ms=10.0, images_per_s=images_per_s if images else 0.0, 
        memory=MemoryReading(mb, mb * 1.5, memory_kind) if images else None, warmup=index == 0,
        finished_at=1000.0 + index if at is None else at,
    )


def curve_points(curve) -> tuple[list[float], list[float]]:
    x, y = curve.getData()
    return ([] if x is None else list(x)), ([] if y is None else list(y))


def drawn(curve) -> tuple[list[float], list[float]]:
    """The points of a curve, without the NaN pairs that break its line."""
    x, y = curve_points(curve)
    return [v for v in x if not math.isnan(v)], [v for v in y if not math.isnan(v)]


def shown_plots(qtbot: QtBot, width: int = 1400, height: int = 420) -> BatchPlots:
    plots = BatchPlots()
    qtbot.addWidget(plots)
    plots.setFixedSize(width, height)  # a top level whose constraints change makes offscreen Qt warn
    plots.show()
    qtbot.waitExposed(plots)
    return plots


def test_live_batches_fill_all_three_plots(qtbot: QtBot) -> None:
    plots = shown_plots(qtbot)
    for index, (size, speed) in enumerate([(4, 5.0), (4, 100.0), (4, 120.0), (16, 300.0), (16, 340.0)]):
        plots.add_batch(stats(index, size, speed, mb=900.0 + index))

    qtbot.waitUntil(lambda: len(curve_points(plots.live_size_curve)[0]) == 2, timeout=REDRAW_MS)
    x, y = curve_points(plots.live_size_curve)
    assert x == [2.0, 4.0], "batch sizes 4 and 16 on a log2 axis"
    assert y == [110.0, 320.0], "mean throughput per size, the warm-up batch left out"
    qtbot.waitUntil(lambda: len(curve_points(plots.throughput_curve)[0]) == 4, timeout=REDRAW_MS)
    assert curve_points(plots.throughput_curve)[0] == [1.0, 2.0, 3.0, 4.0], "seconds since the run's first batch"
    assert curve_points(plots.warmup_points)[1] == [5.0], "the warm-up batch is shown apart"
    qtbot.waitUntil(lambda: len(curve_points(plots.process_memory_curve)[0]) == 5, timeout=REDRAW_MS)
    assert curve_points(plots.process_memory_curve) == ([0.0, 1.0, 2.0, 3.0, 4.0], [900.0, 901.0, 902.0, 903.0, 904.0])


def test_each_batch_is_filed_under_the_images_it_held(qtbot: QtBot) -> None:
    """A batch formed under a cap of 32 that held 16 images is a batch of 16, as its CSV rows say;
    a batch whose files all failed to decode ran nothing and is left out of every plot."""
    plots = shown_plots(qtbot)
    plots.add_batch(stats(0, 32, 50.0, memory_kind="cuda", mb=100.0, images=16))
    plots.add_batch(stats(1, 32, 400.0, memory_kind="cuda", mb=300.0, images=16))
    plots.add_batch(stats(2, 32, 900.0, memory_kind="cuda", mb=500.0, images=32))
    plots.add_batch(stats(3, 32, 0.0, memory_kind="cuda", mb=0.0, images=0))

    qtbot.waitUntil(lambda: len(curve_points(plots.live_size_curve)[0]) == 2, timeout=REDRAW_MS)
    assert curve_points(plots.live_size_curve) == ([4.0, 5.0], [400.0, 900.0])
    qtbot.waitUntil(lambda: len(curve_points(plots.allocated_curve)[0]) == 2, timeout=REDRAW_MS)
    assert curve_points(plots.allocated_curve) == ([4.0, 5.0], [300.0, 500.0]), "no 0 MB point for the empty batch"
    assert curve_points(plots.throughput_curve)[0] == [1.0, 2.0], "the empty batch has no throughput point"


def test_each_run_has_its_own_time_axis_and_a_pause_leaves_a_gap(qtbot: QtBot) -> None:
    plots = shown_plots(qtbot)
    for index in range(5):  # a first run, then the window stays idle for an hour
        plots.add_batch(stats(index, 4, 100.0 + index, at=1000.0 + index))
    for index in range(3):  # the second run
        plots.add_batch(stats(index, 8, 200.0 + index, at=5000.0 + index))
    plots.set_paused(True)  # a minute's pause after its third batch
    plots.set_paused(False)
    for index in range(3, 5):
        plots.add_batch(stats(index, 8, 200.0 + index, at=5060.0 + index))

    qtbot.waitUntil(lambda: len(drawn(plots.throughput_curve)[0]) == 4, timeout=REDRAW_MS)
    x, y = curve_points(plots.throughput_curve)
    assert x[:2] == [1.0, 2.0], "the second run's time starts at its own first batch"
    assert math.isnan(x[2]) and math.isnan(y[2]), "the line breaks at the pause"
    assert x[3:] == [63.0, 64.0], "and the time axis keeps the pause as a gap"
    assert plots.throughput_curve.opts["connect"] == "finite"
    assert drawn(plots.earlier_curve) == ([1.0, 2.0, 3.0, 4.0], [101.0, 102.0, 103.0, 104.0]), "greyed behind"
    assert "previous run" in plots.time_legend.entries()
    assert drawn(plots.warmup_points)[0] == [0.0], "only this run's warm-up batch"


def test_without_cuda_memory_is_drawn_over_time_and_says_so(qtbot: QtBot) -> None:
    plots = shown_plots(qtbot)
    qtbot.wait(3 * 100)
    assert plots.title(plots.memory_plot) == "Memory" and "CUDA" not in plots.memory_plot.toolTip(), "no CUDA wording before a batch ran"

    plots.add_batch(stats(0, 4, 20.0, mb=900.0))
    plots.add_batch(stats(1, 4, 0.0, mb=0.0, images=0))  # four unreadable files: nothing ran
    plots.add_batch(stats(2, 4, 60.0, mb=910.0))
    qtbot.waitUntil(lambda: len(curve_points(plots.process_memory_curve)[0]) == 2, timeout=REDRAW_MS)
    assert curve_points(plots.process_memory_curve) == ([0.0, 2.0], [900.0, 910.0])
    assert curve_points(plots.allocated_curve)[0] == [], "not per batch size: on a CPU it does not depend on it"
    assert plots.title(plots.memory_plot) == "Process memory over time"
    assert plots.memory_plot.getPlotItem().titleLabel.text == "Process memory over time"
    assert plots.memory_legend.entries() == ["resident memory (RSS)"]
    assert plots.memory_plot.getPlotItem().getAxis("bottom").labelText == "seconds into the run"


def test_cuda_memory_shows_allocated_and_reserved(qtbot: QtBot) -> None:
    plots = shown_plots(qtbot)
    plots.add_batch(stats(1, 256, 9000.0, memory_kind="cuda", mb=2048.0))
    qtbot.waitUntil(lambda: len(curve_points(plots.reserved_curve)[0]) == 1, timeout=REDRAW_MS)
    assert curve_points(plots.reserved_curve) == ([8.0], [3072.0])
    assert plots.title(plots.memory_plot) == "Peak GPU memory per batch size"
    assert plots.memory_legend.entries() == ["peak allocated", "peak reserved"]
    assert curve_points(plots.process_memory_curve)[0] == []


def tick_label_rects(axis: pg.AxisItem) -> list[QRectF]:
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [rect for rect, _, _ in texts]


def test_axis_titles_clear_their_tick_labels(qtbot: QtBot) -> None:
    plots = shown_plots(qtbot, 1400, 360)
    for index in range(1, 12):
        plots.add_batch(stats(index, 2**index % 1024 or 1, 12_345.0 * index, memory_kind="process", mb=14_000.0))
    qtbot.waitUntil(lambda: len(curve_points(plots.throughput_curve)[0]) == 11, timeout=REDRAW_MS)

    def overlaps() -> list[str]:
        found = []
        for plot in (plots.time_plot, plots.size_plot, plots.memory_plot):
            for side in ("left", "bottom"):
                axis = plot.getPlotItem().getAxis(side)
                title = axis.label.mapRectToParent(axis.label.boundingRect())
                margin = axis.label.document().documentMargin()
                title = title.adjusted(margin, margin, -margin, -margin)  # the text, not its padding
                ticks = tick_label_rects(axis)
                assert ticks, f"{side} axis of {plot.getPlotItem().titleLabel.text} has tick labels"
                if any(rect.intersects(title) for rect in ticks):
                    found.append(f"{side} axis title of {plot.getPlotItem().titleLabel.text} overlaps its ticks")
        return found

    # Every plot redrawn with its widest tick labels: on a loaded machine the redraws come later than 500 ms.
    def no_overlap() -> None:
        assert overlaps() == []  # the last failure is what a timeout shows

    qtbot.waitUntil(no_overlap, timeout=REDRAW_MS)


def test_sweep_marks_the_best_and_one_click_applies_it(qtbot: QtBot, window: MainWindow) -> None:
    plots = window.plots
    points = (
        SweepPoint(1, 40.0, 25.0, 30.0, MemoryReading(800.0, 800.0, "process")),
        SweepPoint(2, 70.0, 28.0, 31.0, MemoryReading(810.0, 810.0, "process")),
        SweepPoint(4, 72.0, 55.0, 60.0, MemoryReading(830.0, 830.0, "process")),
        SweepPoint(8, 0.0, 0.0, 0.0, MemoryReading(0.0, 0.0, "process"), out_of_memory=True),
    )
    plots.start_sweep()
    for point in points:
        plots.add_sweep_point(point)
    plots.finish_sweep(SweepResult(points, best_batch_size=2, sequential_images_per_s=40.0))

    qtbot.waitUntil(lambda: plots.best_line.isVisible(), timeout=REDRAW_MS)
    assert plots.best_line.value() == 1.0  # log2(2)
    assert curve_points(plots.sweep_size_curve)[1] == [40.0, 70.0, 72.0]
    assert curve_points(plots.oom_points)[0] == [3.0]
    assert "out of memory" in plots.size_legend.entries()
    assert plots.use_button.isEnabled() and plots.use_button.text() == "Use batch size 2"
    assert "1.8×" in plots.sweep_label.text()

    with qtbot.waitSignal(window.controls.batch_size_changed, timeout=REDRAW_MS) as applied:
        plots.use_button.click()
    assert applied.args == [2]
    assert window.controls.batch_size() == 2 and window.controls.batch_slider.value() == 1
