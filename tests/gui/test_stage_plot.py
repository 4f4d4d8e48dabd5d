"""The fourth plot (issue 21): time per image by stage, from the runs and the sweep, and the fixed cost in words."""

from __future__ import annotations

import math

import pytest
from pytestqt.qtbot import QtBot

from batch_classifier.engine.devices import MemoryReading
from batch_classifier.engine.fixed_cost import fixed_cost_line
from batch_classifier.engine.occupancy import KERNELS_NEED_CUDA, NVML_MISSING, Occupancy
from batch_classifier.engine.records import BatchStats
from batch_classifier.engine.stage_times import STAGES, fit_stage_times, stage_times_of_batches
from batch_classifier.engine.sweep import SweepPoint, SweepResult
from batch_classifier.engine.versus import VersusResult
from batch_classifier.gui.session import Activity

from .test_plots import REDRAW_MS, shown_plots

MEMORY = MemoryReading(900.0, 900.0, "process")
VERSUS_MS = 60_000


def batch(index: int, images: int, forward_ms: float, occupancy: Occupancy | None = None) -> BatchStats:
    return BatchStats(
        batch_index=index, batch_size=images, images=images, errors=0, decode_ms=50.0, copy_ms=0.5 * images,
        forward_ms=forward_ms, total_ms=forward_ms + 0.5 * images + 2.0, images_per_s=1000.0 * images / forward_ms,
        memory=MEMORY, warmup=index == 0, finished_at=1000.0 + index, wait_ms=1.5 * images, occupancy=occupancy,
    )


def drawn_stacks(plots, source: str) -> dict[float, list[float]]:
    """Bar centre on the log2 axis -> the four stage heights, from the bars as drawn."""
    stacks: dict[float, list[float]] = {}
    for stage in STAGES:
        opts = plots.stage_bars._bars[(source, stage)].opts
        for x0, x1, y0, y1 in zip(opts["x0"], opts["x1"], opts["y0"], opts["y1"]):
            stacks.setdefault(round(float(x0 + x1) / 2), []).append(float(y1 - y0))
    return stacks


def test_live_batches_become_stacked_bars_of_their_own_stage_times(qtbot: QtBot) -> None:
    plots = shown_plots(qtbot, 1400, 460)
    batches = [batch(0, 4, 400.0), batch(1, 4, 40.0), batch(2, 4, 44.0), batch(3, 8, 72.0), batch(4, 16, 130.0)]
    for stats in batches:
        plots.add_batch(stats)
    qtbot.waitUntil(lambda: len(drawn_stacks(plots, "runs")) == 3, timeout=REDRAW_MS)
    expected = {math.log2(entry.batch_size): list(entry.stages()) for entry in stage_times_of_batches(batches)}
    drawn = drawn_stacks(plots, "runs")
    assert sorted(drawn) == sorted(expected), "one bar per batch size, warm-up left out"
    for centre, heights in expected.items():  # pytest.approx takes no dict of lists since pytest 9.2
        assert drawn[centre] == pytest.approx(heights), "each bar is its stage times"
    fit = fit_stage_times(stage_times_of_batches(batches))
    assert f"Runs: {fixed_cost_line(fit)}." in plots.stage_summary.text()
    assert plots.title(plots.stage_plot) == "Time per image by stage"
    assert plots.stage_legend.entries() == ["decode", "copy", "forward", "rest", "sweep"]


def test_after_a_sweep_its_bars_stand_beside_and_its_fit_is_the_one_said(qtbot: QtBot) -> None:
    plots = shown_plots(qtbot, 1400, 460)
    plots.add_batch(batch(0, 4, 400.0))
    plots.add_batch(batch(1, 4, 40.0))
    points = tuple(
        SweepPoint(n, 1000 * n / (3.5 + 2.1 * n), 3.5 + 2.1 * n, 4 + 2.2 * n, MEMORY, copy_ms=0.1 * n, forward_ms=3 + 2 * n)
        for n in (1, 2, 4, 8)
    )
    plots.start_sweep()
    for point in points:
        plots.add_sweep_point(point)
    plots.finish_sweep(SweepResult(points, 8, points[0].images_per_s))
    qtbot.waitUntil(lambda: len(drawn_stacks(plots, "sweep")) == 4, timeout=REDRAW_MS)
    assert drawn_stacks(plots, "sweep")[3.0] == pytest.approx([0.0, 0.1, 19 / 8, 0.5 / 8]), "no decode in a sweep"
    assert "Sweep: fixed cost: about 3.00 ms per batch whatever its size, plus 2.00 ms per image" in plots.stage_summary.text()
    plots.clear()
    qtbot.waitUntil(lambda: not drawn_stacks(plots, "sweep") and not drawn_stacks(plots, "runs"), timeout=REDRAW_MS)


def test_without_nvidia_ml_py_the_plot_says_so(qtbot: QtBot) -> None:
    plots = shown_plots(qtbot, 1400, 460)
    missing = Occupancy("gpu", None, note=NVML_MISSING)
    plots.add_batch(batch(0, 4, 400.0, missing))
    plots.add_batch(batch(1, 4, 40.0, missing))
    qtbot.waitUntil(lambda: NVML_MISSING in plots.stage_summary.text(), timeout=REDRAW_MS)
    plots.add_batch(batch(2, 4, 40.0, Occupancy("cpu", 48.0)))
    qtbot.waitUntil(lambda: "48% of" in plots.stage_summary.text(), timeout=REDRAW_MS)


@pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")  # the message box, offscreen
def test_one_by_one_vs_batched_on_the_bundled_photos_gives_two_times_and_a_ratio(qtbot: QtBot, window) -> None:
    """Nothing queued: the action measures the sample photos, at the batch size of the controls."""
    window.controls.set_batch_size(4)
    qtbot.waitUntil(window.versus_action.isEnabled, timeout=VERSUS_MS)
    with qtbot.waitSignal(window.session.versus_finished, timeout=VERSUS_MS) as finished:
        window.versus_action.trigger()
    result: VersusResult = finished.args[0]
    assert (result.images, result.batch_size) == (4, 4)
    assert result.one_by_one_s > 0 and result.batched_s > 0 and result.ratio == result.one_by_one_s / result.batched_s
    qtbot.waitUntil(lambda: window.versus_box is not None and window.versus_box.isVisible(), timeout=VERSUS_MS)
    text = window.versus_box.text()
    assert "4 images one by one" in text and "in batches of 4" in text and "batched is " in text and "why: " in text
    window.versus_box.close()
    assert not window.kernels_action.isEnabled(), "kernels are counted on CUDA only"
    assert KERNELS_NEED_CUDA in window.kernels_action.toolTip()


@pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")  # the failure's message box
def test_counting_kernels_off_cuda_fails_in_one_line_and_the_session_goes_idle(qtbot: QtBot, window) -> None:
    """The action is disabled without CUDA; the job itself still says why, should it be asked."""
    qtbot.waitUntil(window.versus_action.isEnabled, timeout=VERSUS_MS)
    with qtbot.waitSignal(window.session.failed, timeout=VERSUS_MS) as failed:
        window.session.count_kernels(2)
    assert failed.args == [KERNELS_NEED_CUDA]
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=VERSUS_MS)
