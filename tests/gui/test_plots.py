"""The batching plots: fed per batch and by the sweep, drawn on their timer, labelled honestly."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from batch_classifier.engine.records import BatchStats
from batch_classifier.engine.sweep import SweepPoint, SweepResult
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.plots import BatchPlots

REDRAW_MS = 3000


def stats(index: int, size: int, images_per_s: float, memory_kind: str = "process", mb: float = 900.0) -> BatchStats:
    return BatchStats(
        batch_index=index, batch_size=size, images=size, errors=0, decode_ms=1.0, copy_ms=1.0, forward_ms=5.0,
        total_ms=10.0, images_per_s=images_per_s, peak_allocated_mb=mb, peak_reserved_mb=mb * 1.5,
        memory_kind=memory_kind, warmup=index == 0, finished_at=1000.0 + index,
    )


def curve_points(curve) -> tuple[list[float], list[float]]:
    x, y = curve.getData()
    return ([] if x is None else list(x)), ([] if y is None else list(y))


def test_live_batches_fill_all_three_plots(qtbot: QtBot) -> None:
    plots = BatchPlots()
    qtbot.addWidget(plots)
    for index, (size, speed) in enumerate([(4, 5.0), (4, 100.0), (4, 120.0), (16, 300.0), (16, 340.0)]):
        plots.add_batch(stats(index, size, speed, mb=900.0 + index))

    qtbot.waitUntil(lambda: len(curve_points(plots.live_size_curve)[0]) == 2, timeout=REDRAW_MS)
    x, y = curve_points(plots.live_size_curve)
    assert x == [2.0, 4.0], "batch sizes 4 and 16 on a log2 axis"
    assert y == [110.0, 320.0], "mean throughput per size, the warm-up batch left out"
    qtbot.waitUntil(lambda: len(curve_points(plots.throughput_curve)[0]) == 4, timeout=REDRAW_MS)
    assert curve_points(plots.warmup_points)[1] == [5.0], "the warm-up batch is shown apart"
    qtbot.waitUntil(lambda: len(curve_points(plots.allocated_curve)[0]) == 2, timeout=REDRAW_MS)
    assert curve_points(plots.allocated_curve)[1] == [902.0, 904.0]
    assert "process memory (no CUDA)" in plots.memory_plot.getPlotItem().titleLabel.text
    assert curve_points(plots.reserved_curve)[0] == [], "no CUDA: reserved is not a separate reading"
    assert [label.text for _, label in plots.memory_legend.items] == ["process RSS"]


def test_cuda_memory_shows_allocated_and_reserved(qtbot: QtBot) -> None:
    plots = BatchPlots()
    qtbot.addWidget(plots)
    plots.add_batch(stats(1, 256, 9000.0, memory_kind="cuda", mb=2048.0))
    qtbot.waitUntil(lambda: len(curve_points(plots.reserved_curve)[0]) == 1, timeout=REDRAW_MS)
    assert curve_points(plots.reserved_curve)[1] == [3072.0]
    title = plots.memory_plot.getPlotItem().titleLabel.text
    assert "CUDA" in title and "no CUDA" not in title
    legend = [label.text for _, label in plots.memory_legend.items]
    assert legend == ["peak allocated", "peak reserved"]


def test_sweep_marks_the_best_and_one_click_applies_it(qtbot: QtBot, window: MainWindow) -> None:
    plots = window.plots
    points = (
        SweepPoint(1, 40.0, 25.0, 30.0, 800.0, 800.0, "process"),
        SweepPoint(2, 70.0, 28.0, 31.0, 810.0, 810.0, "process"),
        SweepPoint(4, 72.0, 55.0, 60.0, 830.0, 830.0, "process"),
        SweepPoint(8, 0.0, 0.0, 0.0, 0.0, 0.0, "process", out_of_memory=True),
    )
    plots.start_sweep()
    for point in points:
        plots.add_sweep_point(point)
    plots.finish_sweep(SweepResult(points, best_batch_size=2, sequential_images_per_s=40.0))

    qtbot.waitUntil(lambda: plots.best_line.isVisible(), timeout=REDRAW_MS)
    assert plots.best_line.value() == 1.0  # log2(2)
    assert curve_points(plots.sweep_size_curve)[1] == [40.0, 70.0, 72.0]
    assert curve_points(plots.oom_points)[0] == [3.0]
    assert "out of memory" in [label.text for _, label in plots.size_legend.items]
    assert plots.use_button.isEnabled() and plots.use_button.text() == "Use batch size 2"
    assert "1.8×" in plots.sweep_label.text()

    with qtbot.waitSignal(window.controls.batch_size_changed, timeout=REDRAW_MS) as applied:
        plots.use_button.click()
    assert applied.args == [2]
    assert window.controls.batch_size() == 2 and window.controls.batch_slider.value() == 1
