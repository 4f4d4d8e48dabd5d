"""GUI test setup: a tiny TorchScript model, isolated settings, and a guard against leaked threads.

The guard is the napari idea: a window that leaves its worker QThread
running is the bug behind "QThread: Destroyed while thread is still
running", so any test that leaves one fails, however it ended.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import shiboken6
import torch
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QThread, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from batch_classifier.gui import settings as keys
from batch_classifier.gui import main_window
from batch_classifier.gui.app import freeze_startup_objects
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.settings import Settings

TINY_LABELS = ("cat", "dog", "bird", "fish")
CLOSE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="session", autouse=True)
def frozen_startup_objects() -> None:
    """As ``run_gui`` does once per process: tests measure the same GUI thread a user gets."""
    freeze_startup_objects()


@pytest.fixture(autouse=True)
def no_running_qthreads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if any QThread it started is still running when it ends."""
    started: list[QThread] = []
    original_start = QThread.start

    def recording_start(thread: QThread, *args: object) -> None:
        started.append(thread)
        original_start(thread, *args)

    monkeypatch.setattr(QThread, "start", recording_start)
    yield
    running = [thread for thread in started if shiboken6.isValid(thread) and thread.isRunning()]
    for thread in running:  # stop them so one leak does not cascade into the next tests
        thread.quit()
        thread.wait(5000)
    assert not running, f"test left QThread(s) running: {[t.objectName() or repr(t) for t in running]}"


@pytest.fixture(autouse=True)
def journal_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's windows keep their journals in its own folder, never in the user's."""
    folder = tmp_path / "journal"
    monkeypatch.setattr(main_window, "default_folder", lambda: folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A 4-class TorchScript model (mean colour -> linear) and its labels: loads in milliseconds."""
    folder = tmp_path_factory.mktemp("tiny-model")
    module = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 4))
    model_path = folder / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.10+ deprecates TorchScript; users still have it
        torch.jit.script(module).save(str(model_path))
    labels_path = folder / "labels.txt"
    labels_path.write_text("\n".join(TINY_LABELS) + "\n", encoding="utf-8")
    return str(model_path), str(labels_path)


@pytest.fixture
def settings(tmp_path: Path, tiny_model: tuple[str, str]) -> Settings:
    """Settings in a temporary INI file, preset to the tiny model on the CPU."""
    store = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    model, labels = tiny_model
    store.set(keys.MODEL, model)
    store.set(keys.LABELS, labels)
    store.set(keys.DEVICE, "cpu")
    for folder in (keys.OPEN_FILES_FOLDER, keys.OPEN_FOLDER_FOLDER, keys.EXPORT_FOLDER, keys.MODEL_FOLDER):
        store.set(folder, str(tmp_path))
    return store


@pytest.fixture
def window(qtbot: QtBot, settings: Settings) -> Iterator[MainWindow]:
    main = MainWindow(settings)
    main.show()
    qtbot.waitExposed(main)
    yield main
    close_window(qtbot, main)
    main.deleteLater()


def close_window(qtbot: QtBot, main: MainWindow) -> None:
    """Close as a user would, discarding rows not exported; a busy window finishes its batch first."""
    if main.isVisible() and not main.close():
        if main.close_question is not None:
            main.close_question.button(QMessageBox.StandardButton.Discard).click()
        qtbot.waitUntil(lambda: not main.isVisible(), timeout=CLOSE_TIMEOUT_MS)


def png_bytes(size: int = 16, colour: tuple[int, int, int] = (200, 40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "PNG")
    return buffer.getvalue()


def write_images(folder: Path, count: int) -> list[Path]:
    """``count`` tiny PNGs: one encoding written under many names, so 10,000 take a second."""
    folder.mkdir(parents=True, exist_ok=True)
    data = png_bytes()
    paths = [folder / f"image-{number:05d}.png" for number in range(count)]
    for path in paths:
        path.write_bytes(data)
    return paths


def drop_paths(widget: QWidget, paths: list[Path]) -> None:
    """Drag ``paths`` over ``widget`` and drop them, as a file manager does: real Qt drag events."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    centre = widget.rect().center()
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(
        centre, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the drop zone refused a drag carrying file URLs"
    drop = QDropEvent(QPointF(centre), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    assert drop.isAccepted(), "the drop zone did not accept the drop"
