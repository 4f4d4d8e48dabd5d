"""From a drop to a CSV: real drag-and-drop events produce rows, and Export writes them all."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication, QFileDialog
from pytestqt.qtbot import QtBot

from batch_classifier.engine.csv_output import header
from batch_classifier.engine.sources import display_path
from batch_classifier.gui import settings as keys
from batch_classifier.gui.app import FileOpenForwarder
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.results_model import FILE, LABEL, STATUS
from batch_classifier.gui.session import Activity
from batch_classifier.gui.settings import Settings

from .conftest import TINY_LABELS, drop_paths, write_images

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """What the user drops (two files, a folder of three, a file that is not an image) and the expected rows."""
    files = write_images(tmp_path / "loose", 2)
    folder_images = write_images(tmp_path / "folder", 3)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is not a PNG", encoding="utf-8")
    dropped = [*files, tmp_path / "folder", not_an_image]
    expected = [*files, *folder_images, not_an_image]
    return dropped, expected


def run_drop(qtbot: QtBot, window: MainWindow, dropped: list[Path]) -> None:
    with qtbot.waitSignal(window.session.run_finished, timeout=RUN_TIMEOUT_MS):
        drop_paths(window.drop_zone, dropped)
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=RUN_TIMEOUT_MS)


def test_dropping_files_and_folders_produces_one_row_each(
    qtbot: QtBot, window: MainWindow, inputs: tuple[list[Path], list[Path]]
) -> None:
    dropped, expected = inputs
    run_drop(qtbot, window, dropped)

    rows = window.results.results()
    assert [row.path for row in rows] == [str(path) for path in expected]
    ok = [row for row in rows if row.status == "ok"]
    errors = [row for row in rows if row.status == "error"]
    assert len(ok) == 5 and all(row.label in TINY_LABELS for row in ok)
    assert [Path(row.path).name for row in errors] == ["notes.png"]
    assert errors[0].error, "an error row must say why"
    assert all(row.thumbnail is None for row in rows), "tensors must not be kept for every row"
    # the view shows the error's reason in place of a label, and the status
    error_row = len(rows) - 1
    assert window.results_view.proxy.index(error_row, STATUS).data() == "error"
    assert window.results_view.proxy.index(error_row, LABEL).data() == errors[0].error
    assert window.results_view.count_label.text().endswith("· 1 error")


def test_errors_only_filter_and_text_filter(
    qtbot: QtBot, window: MainWindow, inputs: tuple[list[Path], list[Path]]
) -> None:
    dropped, _ = inputs
    run_drop(qtbot, window, dropped)
    window.results_view.errors_only.setChecked(True)
    assert window.results_view.proxy.rowCount() == 1
    window.results_view.errors_only.setChecked(False)
    qtbot.keyClicks(window.results_view.filter_edit, "IMAGE-00001")  # case-insensitive; loose/ and folder/ have one each
    qtbot.waitUntil(lambda: window.results_view.proxy.rowCount() == 2, timeout=5000)
    assert {window.results_view.proxy.index(row, FILE).data() for row in range(2)} == {"image-00001.png"}
    qtbot.keyClicks(window.results_view.filter_edit, "x")
    qtbot.waitUntil(lambda: window.results_view.proxy.rowCount() == 0, timeout=5000)
    assert "0 shown" in window.results_view.count_label.text()


def test_export_writes_every_row_with_the_cli_columns(
    qtbot: QtBot, window: MainWindow, settings: Settings, inputs: tuple[list[Path], list[Path]],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    dropped, expected = inputs
    assert not window.export_action.isEnabled(), "nothing to export yet"
    run_drop(qtbot, window, dropped)
    window.results_view.errors_only.setChecked(True)  # filters apply to the view, never to the export

    export_folder = tmp_path / "exports"
    export_folder.mkdir()
    target = export_folder / "results.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), "CSV files (*.csv)"))
    assert window.export_action.isEnabled()
    window.export_action.trigger()

    with open(target, encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == header(len(TINY_LABELS), corrections=True), (
        "the command line's columns, top-k lowered to the model's classes, then the window's corrected_label"
    )
    body = [dict(zip(table[0], row)) for row in table[1:]]
    assert [row["path"] for row in body] == [display_path(str(path)) for path in expected]
    assert [row["status"] for row in body] == ["ok"] * 5 + ["error"]
    assert all(row["label"] in TINY_LABELS and 0 < float(row["confidence"]) <= 1 for row in body[:5])
    assert body[5]["error"] and not body[5]["label"]
    assert {row["device"] for row in body[:5]} == {"cpu"}
    assert settings.get(keys.EXPORT_FOLDER) == str(export_folder)


def test_files_macos_opens_with_the_app_are_classified(
    qtbot: QtBot, window: MainWindow, inputs: tuple[list[Path], list[Path]]
) -> None:
    """Finder's "Open With" and drops on the Dock icon arrive as QFileOpenEvent on the application."""
    dropped, expected = inputs
    app = QApplication.instance()
    forwarder = FileOpenForwarder(window)
    app.installEventFilter(forwarder)
    try:
        with qtbot.waitSignal(window.session.run_finished, timeout=RUN_TIMEOUT_MS):
            for path in dropped:
                QApplication.sendEvent(app, QFileOpenEvent(str(path)))
        qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE and not window.session.pending,
                        timeout=RUN_TIMEOUT_MS)
    finally:
        app.removeEventFilter(forwarder)
    assert sorted(row.path for row in window.results.results()) == sorted(str(path) for path in expected)


def test_export_never_writes_over_an_input(
    qtbot: QtBot, window: MainWindow, inputs: tuple[list[Path], list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if the user confirms replacing it in the file dialog, a photo being classified is not a CSV target."""
    dropped, expected = inputs
    run_drop(qtbot, window, dropped)
    photo = expected[0]
    before = photo.read_bytes()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(photo), "CSV files (*.csv)"))
    monkeypatch.setattr(MainWindow, "_report", lambda self, message: self.statusBar().showMessage(message))
    window.export_action.trigger()
    assert photo.read_bytes() == before
    assert "one of the inputs" in window.statusBar().currentMessage()
