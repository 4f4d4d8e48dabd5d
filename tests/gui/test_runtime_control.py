"""The runtime choice in the window (issue 16): used by the run, shown as the engine decided, remembered."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from batch_classifier.engine.devices import MemoryReading
from batch_classifier.engine.runtimes import RUNTIME_CHOICES
from batch_classifier.engine.sweep import SweepPoint, SweepResult
from batch_classifier.gui import settings as keys
from batch_classifier.gui.controls import RunControls
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity
from batch_classifier.gui.settings import Settings

from .conftest import drop_paths, write_images
from .test_plots import REDRAW_MS, curve_points

RUN_TIMEOUT_MS = 60_000


def test_auto_runs_on_onnxruntime_and_the_window_shows_it(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    assert window.controls.runtime_combo.currentData() == "auto"
    with qtbot.waitSignal(window.session.run_finished, timeout=RUN_TIMEOUT_MS):
        drop_paths(window.drop_zone, write_images(tmp_path / "in", 2))
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=RUN_TIMEOUT_MS)
    assert [row.runtime for row in window.results.results()] == ["onnxruntime", "onnxruntime"]
    assert window.device_label.text().endswith("· onnxruntime")


def test_the_chosen_runtime_is_used_by_the_run(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    combo = window.controls.runtime_combo
    with qtbot.waitSignal(window.controls.config_changed, timeout=5000):
        combo.setCurrentIndex(combo.findData("torch"))
    with qtbot.waitSignal(window.session.run_finished, timeout=RUN_TIMEOUT_MS):
        drop_paths(window.drop_zone, write_images(tmp_path / "in", 2))
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=RUN_TIMEOUT_MS)
    assert [row.runtime for row in window.results.results()] == ["torch", "torch"]
    assert window.device_label.text().endswith("· torch")


def test_the_runtime_choice_round_trips_through_the_settings(qtbot: QtBot, tmp_path: Path) -> None:
    path = str(tmp_path / "settings.ini")
    for choice in RUNTIME_CHOICES:
        controls = RunControls(Settings(QSettings(path, QSettings.Format.IniFormat)), [], ["cpu"])
        qtbot.addWidget(controls)
        controls.runtime_combo.setCurrentIndex(controls.runtime_combo.findData(choice))
        controls.save()
        reopened = RunControls(Settings(QSettings(path, QSettings.Format.IniFormat)), [], ["cpu"])
        qtbot.addWidget(reopened)
        assert reopened.runtime_combo.currentData() == choice
        assert reopened.run_config().runtime == choice
        assert Settings(QSettings(path, QSettings.Format.IniFormat)).get(keys.RUNTIME) == choice


def test_a_stale_runtime_setting_falls_back_to_auto(qtbot: QtBot, tmp_path: Path) -> None:
    store = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    store.set(keys.RUNTIME, "tensorrt")
    controls = RunControls(store, [], ["cpu"])
    qtbot.addWidget(controls)
    assert controls.run_config().runtime == "auto"


def _sweep(plots, runtime: str, rates: dict[int, float]) -> None:
    memory = MemoryReading(800.0, 800.0, "process")
    points = tuple(SweepPoint(size, rate, 1.0, 1.0, memory, runtime=runtime) for size, rate in rates.items())
    plots.start_sweep()
    for point in points:
        plots.add_sweep_point(point)
    plots.finish_sweep(SweepResult(points, best_batch_size=max(rates, key=rates.get), sequential_images_per_s=rates[1]))


def test_the_sweep_plot_keeps_one_sweep_per_runtime(qtbot: QtBot, window: MainWindow) -> None:
    plots = window.plots
    _sweep(plots, "torch", {1: 40.0, 2: 60.0})
    _sweep(plots, "onnxruntime", {1: 120.0, 2: 150.0})
    qtbot.waitUntil(lambda: curve_points(plots.other_sweep_curve)[1] == [40.0, 60.0], timeout=REDRAW_MS)
    assert curve_points(plots.sweep_size_curve)[1] == [120.0, 150.0]
    assert "sweep on torch" in plots.size_legend.entries()
    assert "Best on onnxruntime" in plots.sweep_label.text()
    _sweep(plots, "onnxruntime", {1: 110.0, 2: 140.0})  # measured again: replaces its own, keeps torch's
    qtbot.waitUntil(lambda: curve_points(plots.sweep_size_curve)[1] == [110.0, 140.0], timeout=REDRAW_MS)
    assert curve_points(plots.other_sweep_curve)[1] == [40.0, 60.0]
