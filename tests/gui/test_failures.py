"""Failures the user must be told about, without a crash: weights that cannot be fetched, a bad model."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from batch_classifier.engine import models
from batch_classifier.engine.weights_cache import ProgressCallback, WeightsUnavailable
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity
from batch_classifier.gui.settings import Settings

from .conftest import TINY_LABELS, drop_paths, write_images

# A QMessageBox has a fixed size, which the offscreen platform plugin can only warn it does not pass on.
pytestmark = pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")

TIMEOUT_MS = 60_000
OFFLINE = "weights not available offline: expected /nowhere/resnet18.pth"


def open_warnings() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


def test_unavailable_weights_are_reported_and_the_window_recovers(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: tuple[str, str]
) -> None:
    def offline_fetch(url: str, on_progress: ProgressCallback | None = None) -> Path:
        if on_progress is not None:
            on_progress(3 * 2**20, 40 * 2**20)  # some progress first, as a download cut off part-way
        raise WeightsUnavailable(OFFLINE)

    monkeypatch.setattr(models, "fetch", offline_fetch)
    combo = window.controls.model_combo
    assert "(download)" in combo.itemText(combo.findData("resnet18")), "models needing a download are marked"
    progress: list[tuple[int, int]] = []
    window.session.download_progress.connect(lambda done, total: progress.append((done, total)))
    combo.setCurrentIndex(combo.findData("resnet18"))
    with qtbot.waitSignal(window.session.failed, timeout=TIMEOUT_MS) as failed:
        combo.activated.emit(combo.currentIndex())  # as if picked with the mouse
    assert failed.args == [OFFLINE]
    assert progress == [(3 * 2**20, 40 * 2**20)]
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)
    assert window.statusBar().currentMessage() == OFFLINE
    warnings = open_warnings()
    assert [box.text() for box in warnings] == [OFFLINE], "a dialog says it too, without blocking"
    warnings[0].close()

    window.controls.use_model_file(*tiny_model)  # pick a model that works: the next drop runs
    write_images(tmp_path / "after", 3)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "after"])
    assert [row.label in TINY_LABELS for row in window.results.results()] == [True] * 3


def test_a_run_whose_model_fails_keeps_its_inputs_for_start(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, tiny_model: tuple[str, str]
) -> None:
    model, _ = tiny_model
    wrong_labels = tmp_path / "two.txt"
    wrong_labels.write_text("a\nb\n", encoding="utf-8")
    window.controls.use_model_file(model, str(wrong_labels))
    write_images(tmp_path / "images", 5)
    with qtbot.waitSignal(window.session.failed, timeout=TIMEOUT_MS) as failed:
        drop_paths(window.drop_zone, [tmp_path / "images"])
    assert "has 2 labels but the model has 4 outputs" in failed.args[0]
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)
    for box in open_warnings():
        box.close()
    assert window.results.rowCount() == 0
    assert window.session.pending == 1 and window.start_action.isEnabled()

    window.controls.use_model_file(*tiny_model)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        window.start_action.trigger()
    assert window.results.rowCount() == 5


def test_a_dropped_folder_without_images_is_reported_and_the_queue_goes_on(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, tiny_model: tuple[str, str]
) -> None:
    """No images is not a failure to hold the queue for: it is said once, and the next inputs run."""
    window.controls.use_model_file(*tiny_model)
    empty = tmp_path / "empty"
    empty.mkdir()
    images = tmp_path / "images"
    write_images(images, 3)
    with qtbot.waitSignal(window.session.nothing_found, timeout=TIMEOUT_MS) as nothing:
        with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
            drop_paths(window.drop_zone, [empty])
            drop_paths(window.drop_zone, [images])  # queued behind the empty folder
    assert nothing.args[0].startswith(f"No images found in '{empty}'")
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)
    assert window.results.rowCount() == 3
    assert window.session.pending == 0, "the empty folder is not queued again"
    assert [box.text() for box in open_warnings()] == [nothing.args[0]]
    for box in open_warnings():
        box.close()


def test_a_model_that_cannot_load_falls_back_to_the_last_one_that_worked(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: tuple[str, str]
) -> None:
    def offline_fetch(url: str, on_progress: ProgressCallback | None = None) -> Path:
        raise WeightsUnavailable(OFFLINE)

    monkeypatch.setattr(models, "fetch", offline_fetch)
    with qtbot.waitSignal(window.session.model_ready, timeout=TIMEOUT_MS):
        window.session.request_load()
    combo = window.controls.model_combo
    combo.setCurrentIndex(combo.findData("resnet18"))
    with qtbot.waitSignal(window.session.model_ready, timeout=TIMEOUT_MS) as ready:  # the working model, again
        with qtbot.waitSignal(window.session.failed, timeout=TIMEOUT_MS):
            combo.activated.emit(combo.currentIndex())
    assert ready.args[0].requested == tiny_model[0]
    assert combo.currentData() == tiny_model[0], "the failed choice does not stick"
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)
    said = [box.text() for box in open_warnings()]
    assert said == [f"{OFFLINE}\nBack to tiny.pt, the last model that loaded."], "said once, with where it went"

    write_images(tmp_path / "after", 3)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "after"])
    assert [row.label in TINY_LABELS for row in window.results.results()] == [True] * 3
    assert len(open_warnings()) == 1, "the next action raises no new popup"
    for box in open_warnings():
        box.close()


def test_offline_only_models_that_need_a_download_are_marked(
    qtbot: QtBot, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = models.list_models()
    resnet18 = next(info for info in cached if info.name == "resnet18")
    Path(resnet18.detail).parent.mkdir(parents=True)
    Path(resnet18.detail).write_bytes(b"weights")  # in the cache: works offline
    main = MainWindow(settings)
    combo = main.controls.model_combo
    assert combo.itemText(combo.findData("resnet18")) == "resnet18"
    assert combo.itemText(combo.findData("resnet50")).endswith("(download)")
    main.controls.model_loaded("resnet50")  # downloaded and loaded: cached from now on
    assert combo.itemText(combo.findData("resnet50")) == "resnet50"
    assert main.close()
    main.deleteLater()
