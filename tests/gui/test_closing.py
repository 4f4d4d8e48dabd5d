"""Closing the window mid-run: the worker stops cooperatively, no row is lost, settings are saved."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from batch_classifier.gui import settings as keys
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.settings import Settings

from .conftest import CLOSE_TIMEOUT_MS, drop_paths, write_images

TIMEOUT_MS = 60_000


def test_closing_mid_run_stops_the_worker_and_keeps_the_rows(
    qtbot: QtBot, settings: Settings, tmp_path: Path
) -> None:
    write_images(tmp_path / "many", 2000)
    main = MainWindow(settings)
    main.show()
    qtbot.waitExposed(main)
    thread = main.session._thread
    emitted: list[int] = []  # counted in the worker thread, as the worker emits: what "no lost rows" means
    main.session._worker.batch_done.connect(
        lambda rows: emitted.append(len(rows.results)), Qt.ConnectionType.DirectConnection
    )
    main.controls.set_batch_size(8)

    with qtbot.waitSignal(main.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(main.drop_zone, [tmp_path / "many"])
    with qtbot.waitSignal(main.session.stopped, timeout=CLOSE_TIMEOUT_MS):
        assert not main.close(), "a busy window finishes the batch in flight before it closes"
        assert main.isVisible()
    qtbot.waitUntil(lambda: not main.isVisible(), timeout=CLOSE_TIMEOUT_MS)

    assert thread.isFinished() and not thread.isRunning()
    rows = main.results.rowCount()
    assert 0 < rows < 2000, "the run was cancelled part-way"
    assert rows == sum(emitted), "every batch the worker delivered is in the table"
    assert [result.index for result in main.results.results()] == list(range(rows))
    assert settings.has(keys.GEOMETRY) and settings.get(keys.BATCH_SIZE) == 8
    main.deleteLater()


def test_closing_while_paused_still_stops(qtbot: QtBot, settings: Settings, tmp_path: Path) -> None:
    write_images(tmp_path / "some", 300)
    main = MainWindow(settings)
    main.show()
    with qtbot.waitSignal(main.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(main.drop_zone, [tmp_path / "some"])
    main.pause_action.trigger()
    main.close()
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
