"""Closing the window: a person is asked about rows not exported, the worker stops cooperatively, no row is lost."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox
from pytestqt.qtbot import QtBot

from batch_classifier.gui import settings as keys
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity
from batch_classifier.gui.settings import Settings
from batch_classifier.gui.worker import BatchRows

from .conftest import CLOSE_TIMEOUT_MS, drop_paths, write_images

# A QMessageBox has a fixed size, which the offscreen platform plugin can only warn it does not pass on.
pytestmark = pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")

TIMEOUT_MS = 60_000


def answer(main: MainWindow, button: QMessageBox.StandardButton) -> None:
    assert main.close_question is not None, "closing should have asked"
    main.close_question.button(button).click()


def finished_run(qtbot: QtBot, main: MainWindow, folder: Path) -> None:
    with qtbot.waitSignal(main.session.run_finished, timeout=TIMEOUT_MS):
        drop_paths(main.drop_zone, [folder])
    qtbot.waitUntil(lambda: main.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)


def test_closing_mid_run_asks_and_discard_stops_the_worker_keeping_the_rows(
    qtbot: QtBot, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_images(tmp_path / "many", 2000)
    main = MainWindow(settings)
    main.show()
    qtbot.waitExposed(main)
    thread = main.session._thread
    emitted: list[int] = []  # counted in the worker's delivery thread, as it posts: what "no lost rows" means
    post = main.session.post

    def counting_post(signal: object, *args: object) -> None:
        emitted.extend(len(rows.results) for rows in args if isinstance(rows, BatchRows))
        post(signal, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(main.session, "post", counting_post)
    main.controls.set_batch_size(8)

    with qtbot.waitSignal(main.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(main.drop_zone, [tmp_path / "many"])
    assert not main.close(), "a run in progress is part of the question"
    assert "A run is in progress" in main.close_question.text()
    answer(main, QMessageBox.StandardButton.Cancel)
    assert main.isVisible() and main.session.activity is Activity.RUNNING, "Cancel keeps the window and the run"

    with qtbot.waitSignal(main.session.stopped, timeout=CLOSE_TIMEOUT_MS):
        assert not main.close()
        answer(main, QMessageBox.StandardButton.Discard)
        assert main.isVisible(), "a busy window finishes the batch in flight before it closes"
    qtbot.waitUntil(lambda: not main.isVisible(), timeout=CLOSE_TIMEOUT_MS)

    assert thread.isFinished() and not thread.isRunning()
    rows = main.results.rowCount()
    assert 0 < rows < 2000, "the run was cancelled part-way"
    assert rows == sum(emitted), "every batch the worker delivered is in the table"
    assert [result.index for result in main.results.results()] == list(range(rows))
    assert settings.has(keys.GEOMETRY) and settings.get(keys.BATCH_SIZE) == 8
    main.deleteLater()


def test_export_on_close_writes_every_row_including_the_batch_in_flight(
    qtbot: QtBot, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal_folder: Path
) -> None:
    write_images(tmp_path / "many", 2000)
    target = tmp_path / "closing.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), "CSV files (*.csv)"))
    main = MainWindow(settings)
    main.show()
    main.controls.set_batch_size(8)
    with qtbot.waitSignal(main.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(main.drop_zone, [tmp_path / "many"])
    assert not main.close()
    answer(main, QMessageBox.StandardButton.Save)  # "Export…"
    qtbot.waitUntil(lambda: not main.isVisible(), timeout=CLOSE_TIMEOUT_MS)

    with open(target, encoding="utf-8", newline="") as handle:
        exported = [row["path"] for row in csv.DictReader(handle)]
    assert exported == [result.path for result in main.results.results()], "the last batch is in the export too"
    assert 0 < len(exported) < 2000
    assert list(journal_folder.glob("*.jsonl")) == [], "exported and closed: nothing left to restore"
    main.deleteLater()


def test_closing_with_unexported_rows_asks_and_cancel_keeps_the_window(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    write_images(tmp_path / "few", 3)
    finished_run(qtbot, window, tmp_path / "few")
    assert not window.close()
    assert "3 result rows have not been exported" in window.close_question.text()
    answer(window, QMessageBox.StandardButton.Cancel)
    assert window.isVisible() and window.results.rowCount() == 3
    assert window.close_question is None


def test_nothing_to_lose_closes_without_a_dialog(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    write_images(tmp_path / "few", 3)
    finished_run(qtbot, window, tmp_path / "few")
    window.export_csv(str(tmp_path / "done.csv"))
    assert window.close(), "everything was exported: nothing to ask"
    assert window.close_question is None


def test_a_scripted_window_never_asks(qtbot: QtBot, settings: Settings, tmp_path: Path) -> None:
    write_images(tmp_path / "few", 3)
    main = MainWindow(settings, quiet=True)
    main.show()
    finished_run(qtbot, main, tmp_path / "few")
    assert main.close()
    assert main.close_question is None
    main.deleteLater()


def test_closing_while_paused_still_stops(qtbot: QtBot, settings: Settings, tmp_path: Path) -> None:
    write_images(tmp_path / "some", 300)
    main = MainWindow(settings)
    main.show()
    with qtbot.waitSignal(main.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(main.drop_zone, [tmp_path / "some"])
    main.pause_action.trigger()
    main.close()
    answer(main, QMessageBox.StandardButton.Discard)
    qtbot.waitUntil(lambda: not main.isVisible(), timeout=CLOSE_TIMEOUT_MS)
    assert main.session._thread.isFinished()
    main.deleteLater()


def test_settings_are_remembered(qtbot: QtBot, settings: Settings) -> None:
    first = MainWindow(settings)
    first.controls.set_batch_size(64)
    first.controls.max_wait_spin.setValue(12.5)
    first.controls.precision_combo.setCurrentIndex(first.controls.precision_combo.findData("fp32"))
    assert first.close()
    assert not settings.get(keys.GEOMETRY).isEmpty()

    second = MainWindow(settings)
    assert second.controls.batch_size() == 64
    assert 2 ** second.controls.batch_slider.value() == 64
    assert second.controls.max_wait_spin.value() == 12.5
    config = second.controls.run_config()
    assert (config.precision, config.device, config.batch_size) == ("fp32", "cpu", 64)
    assert config.model == settings.get(keys.MODEL) and config.labels == settings.get(keys.LABELS)
    assert second.close()
    first.deleteLater()
    second.deleteLater()
