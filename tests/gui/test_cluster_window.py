"""The window's "Ray cluster" device: an address that is remembered, a run shown as a local one is, one-device
measurements refused in one line.

A cluster run starts an actor that imports torch, so there is one run here
and it checks everything a run shows, on the Ray instance the window starts
for itself; the refusals use the session's cluster, which the window finds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from batch_classifier.engine.cluster import ONE_DEVICE_ONLY, RAY_DEVICE
from batch_classifier.engine.devices import available_devices
from batch_classifier.engine.models import list_models
from batch_classifier.gui.controls import RunControls
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity
from batch_classifier.gui.settings import Settings

from .conftest import close_window, drop_paths, write_images

pytest.importorskip("ray")
pytest.importorskip("pyarrow")
RUN_TIMEOUT_MS = 240_000  # a cluster run starts an actor that imports torch
LOAD_TIMEOUT_MS = 60_000
REDRAW_MS = 3000


def test_the_address_field_belongs_to_the_cluster_choice_and_is_remembered(qtbot: QtBot, settings: Settings) -> None:
    """On the panel alone: choosing the cluster in a window would start connecting to it."""
    controls = RunControls(settings, list_models(), available_devices())
    qtbot.addWidget(controls)
    assert controls.ray_address_edit.isHidden(), "hidden while a device of this machine is chosen"
    assert controls.run_config().cluster is None
    with qtbot.waitSignal(controls.config_changed):
        controls.device_combo.setCurrentIndex(controls.device_combo.findData(RAY_DEVICE))
    assert not controls.ray_address_edit.isHidden()
    assert controls.run_config().cluster == "", "empty: RAY_ADDRESS, else a local instance"
    controls.ray_address_edit.setText("ray://head.example:10001")
    with qtbot.waitSignal(controls.config_changed):
        controls.ray_address_edit.editingFinished.emit()
    with qtbot.assertNotEmitted(controls.config_changed):
        controls.ray_address_edit.editingFinished.emit()  # the same cluster: nothing to set up again
    config = controls.run_config()
    assert config.cluster == "ray://head.example:10001" and config.device == "auto"
    controls.save()
    again = RunControls(settings, list_models(), available_devices())
    qtbot.addWidget(again)
    assert again.device_combo.currentData() == RAY_DEVICE and not again.ray_address_edit.isHidden()
    assert again.run_config().cluster == "ray://head.example:10001"
    again.device_combo.setCurrentIndex(again.device_combo.findData("cpu"))
    assert again.ray_address_edit.isHidden() and again.run_config().cluster is None


def _choose(qtbot: QtBot, window: MainWindow, device: str) -> None:
    """Choose ``device`` (a device of this machine, or the cluster) and wait until the model is ready there."""
    controls = window.controls
    with qtbot.waitSignal(window.session.model_ready, timeout=LOAD_TIMEOUT_MS):
        controls.device_combo.setCurrentIndex(controls.device_combo.findData(device))
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=LOAD_TIMEOUT_MS)


@pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")  # the close question
def test_a_run_on_a_ray_instance_of_its_own_shows_rows_progress_plots_and_each_actors_memory(
    no_ray_instance, qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    """No address: the worker starts a local Ray instance, and ends it when the cluster is left or the window closes."""
    images = write_images(tmp_path / "in", 12)
    _choose(qtbot, window, RAY_DEVICE)
    assert no_ray_instance.is_initialized()
    assert window.device_label.text().startswith("Ray (1 CPU actor)")
    with qtbot.waitSignal(window.session.run_finished, timeout=RUN_TIMEOUT_MS):
        drop_paths(window.drop_zone, images)
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=RUN_TIMEOUT_MS)
    assert window.results.rowCount() == len(images)
    assert window.progress.bar.value() == window.progress.bar.maximum() == len(images)
    assert "MB process memory, highest of 1 Ray actor without a GPU, so no GPU peak" in window.memory_label.text()
    assert " pid " in window.memory_label.toolTip(), "each actor's peak, by name"
    plots = window.plots
    for curve in (plots.throughput_curve, plots.live_size_curve, plots.process_memory_curve):
        qtbot.waitUntil(lambda curve=curve: _points(curve) > 0, timeout=REDRAW_MS)  # drawn on the plots' timer
    assert plots.title(plots.memory_plot).endswith("per Ray actor")
    assert "no GPU peak" in plots.memory_plot.toolTip() and " pid " in plots.memory_plot.toolTip()
    assert plots.process_memory_curve.opts["symbol"] == "o", "dots: each is one actor's reading"
    _choose(qtbot, window, "cpu")
    assert not no_ray_instance.is_initialized(), "the instance the worker started ends with the cluster choice"
    _choose(qtbot, window, RAY_DEVICE)
    assert no_ray_instance.is_initialized()
    close_window(qtbot, window)
    assert not no_ray_instance.is_initialized(), "and with the window"


def _points(curve) -> int:
    x, _ = curve.getData()
    return 0 if x is None else len(x)


@pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")  # the refusal's message box
def test_measurements_of_one_device_refuse_the_cluster_in_one_line(
    ray_instance, qtbot: QtBot, window: MainWindow
) -> None:
    """The sweep, one by one vs batched and the kernel count each time one device: a cluster is not one.

    Ray is already attached here (the session's cluster): the window uses it, and leaves it running.
    """
    _choose(qtbot, window, RAY_DEVICE)
    assert window.device_label.text().startswith("Ray (2 CPU actors)"), "the cluster found, not one of its own"
    said: list[str] = []
    window.session.failed.connect(said.append)
    for ask in (window.session.find_best_batch_size, lambda: window.session.compare_one_by_one(2),
                lambda: window.session.count_kernels(2)):
        with qtbot.waitSignal(window.session.idle, timeout=LOAD_TIMEOUT_MS):
            ask()
    assert said == [ONE_DEVICE_ONLY] * 3
    assert window._compare_refusal().startswith("This measures one device")
    _choose(qtbot, window, "cpu")
    assert ray_instance.is_initialized(), "a Ray the window found is left alone"
