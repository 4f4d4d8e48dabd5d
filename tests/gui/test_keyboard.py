"""Pause and Cancel from the keyboard wherever focus is, and a paused run that says so."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from batch_classifier.engine.devices import MemoryReading
from batch_classifier.engine.records import BatchStats, ImageResult
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity
from batch_classifier.gui.worker import BatchRows

from .conftest import drop_paths, write_images

TIMEOUT_MS = 60_000


def running(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    write_images(tmp_path / "pile", 2000)
    window.controls.set_batch_size(2)
    with qtbot.waitSignal(window.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "pile"])


def focus(qtbot: QtBot, widget: QWidget) -> None:
    widget.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus, timeout=5000)


def test_pause_and_cancel_work_from_the_filter_box_and_space_still_types(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    running(qtbot, window, tmp_path)
    edit = window.results_view.filter_edit
    focus(qtbot, edit)
    qtbot.keyClicks(edit, "a b")
    assert edit.text() == "a b", "Space types a space in a text field"
    assert not window.session.paused

    qtbot.keyClick(edit, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert window.session.paused and window.pause_action.isChecked()
    qtbot.keyClick(edit, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert not window.session.paused

    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS) as finished:
        qtbot.keyClick(edit, Qt.Key.Key_Escape)
    assert finished.args[0].cancelled


def test_space_pauses_wherever_it_does_not_type(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    running(qtbot, window, tmp_path)
    for widget in (window.results_view.table, window.controls.batch_slider, window.controls.model_combo):
        focus(qtbot, widget)
        qtbot.keyClick(widget, Qt.Key.Key_Space)
        assert window.session.paused, f"Space pauses with focus on {type(widget).__name__}"
        qtbot.keyClick(widget, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
        assert not window.session.paused
    spin = window.controls.max_wait_spin
    focus(qtbot, spin)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        qtbot.keyClick(spin, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)


def test_the_tooltip_names_both_pause_shortcuts(window: MainWindow) -> None:
    tip = window.pause_action.toolTip()
    assert "Space" in tip and "Ctrl+P" in tip
    assert [key.toString() for key in window.pause_action.shortcuts()] == ["Space", "Ctrl+P"]


def test_paused_shows_paused_with_no_rate_or_eta_even_as_the_last_batch_lands(window: MainWindow) -> None:
    progress = window.progress
    progress.start_run()
    progress.set_total(100)
    progress.add_images(10)
    progress.paused()
    assert progress.label.text() == "Paused at 10 of 100"
    progress.add_images(4)  # the batch that was in flight when Pause was pressed
    assert progress.label.text() == "Paused at 14 of 100"
    assert "img/s" not in progress.label.text() and "ETA" not in progress.label.text()
    assert progress.bar.value() == 14
    progress.resumed()
    assert "Paused" not in progress.label.text()


def test_a_batch_that_decoded_nothing_leaves_the_memory_label_alone(window: MainWindow) -> None:
    def batch(images: int, memory_mb: float) -> BatchRows:
        stats = BatchStats(
            0, 4, images, 4 - images, 1.0, 0.0, 1.0, 2.0, 10.0,
            MemoryReading(memory_mb, memory_mb, "process") if images else None, False, 0.0,
        )
        rows = tuple(ImageResult(n, f"/x/{memory_mb}-{n}.png", "error", error="bad") for n in range(4 - images))
        return BatchRows(rows, (None,) * len(rows), stats)

    window._on_batch(batch(4, 512.0))
    assert "512 MB" in window.memory_label.text()
    window._on_batch(batch(0, 0.0))
    assert "512 MB" in window.memory_label.text(), "no 'Process memory 0 MB' for a batch of unreadable files"
