"""The knobs that move during a run: the batch-size slider and Pause."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from batch_classifier.engine.records import BatchStats
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity
from batch_classifier.gui.worker import BatchRows

from .conftest import drop_paths, write_images

TIMEOUT_MS = 60_000
SMALL, LARGE = 4, 16


def test_moving_the_slider_mid_run_changes_the_next_batch(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "many", 600)
    window.controls.set_batch_size(SMALL)
    window.controls.max_wait_spin.setValue(100.0)  # long enough for a batch of 16 to fill from one decoder
    seen: list[BatchRows] = []
    window.session.batch_done.connect(seen.append)

    with qtbot.waitSignal(window.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "many"])
    window.pause_action.trigger()  # hold the run still while the slider moves: no race with its end
    assert window.session.paused and window.pause_action.isChecked()

    slider = window.controls.batch_slider
    assert 2**slider.value() == SMALL
    slider.setFocus()
    with qtbot.waitSignal(window.controls.batch_size_changed, timeout=5000) as changed:
        qtbot.keyClick(slider, Qt.Key.Key_Right)  # 8
        qtbot.keyClick(slider, Qt.Key.Key_Right)  # 16; the debounce sends one value
    assert changed.args == [LARGE]
    assert window.controls.batch_spin.value() == LARGE

    delivered_before_resume = len(seen)
    window.pause_action.trigger()
    assert not window.session.paused
    qtbot.waitUntil(lambda: any(rows.stats.images > SMALL for rows in seen), timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS) as finished:
        window.cancel_action.trigger()
    assert finished.args[0].cancelled

    stats: list[BatchStats] = [rows.stats for rows in seen]
    caps = [batch.batch_size for batch in stats]
    assert caps[0] == SMALL
    assert set(caps) == {SMALL, LARGE}
    first_large = caps.index(LARGE)
    assert caps[first_large:] == [LARGE] * (len(caps) - first_large), "the new size holds once applied"
    # at most the one batch already formed when Resume was pressed still has the old cap
    assert first_large <= delivered_before_resume + 1
    assert all(batch.images <= SMALL for batch in stats[:first_large])
    assert max(batch.images for batch in stats[first_large:]) > SMALL
    grown = [result for rows in seen[first_large:] for result in rows.results]
    assert max(result.batch_size for result in grown) > SMALL
    assert window.results.rowCount() == sum(len(rows.results) for rows in seen) < len(images)


def test_pause_then_resume_finishes_every_row(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    write_images(tmp_path / "some", 200)
    window.controls.set_batch_size(8)
    with qtbot.waitSignal(window.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "some"])
    window.pause_action.trigger()
    assert window.session.paused and window.session.activity is Activity.RUNNING
    assert "Paused" in window.progress.label.text()
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS) as finished:
        window.pause_action.trigger()
    assert not finished.args[0].cancelled
    assert window.results.rowCount() == 200
    assert window.progress.bar.value() == 200
    assert not window.pause_action.isChecked()


def test_a_slider_drag_applies_once_where_it_settles(qtbot: QtBot, window: MainWindow) -> None:
    """Dragging from 4 to 32, resting on 8 and 16 on the way, sends 32 alone, at release."""
    from batch_classifier.gui.controls import SLIDER_DEBOUNCE_MS

    controls = window.controls
    controls.set_batch_size(SMALL)
    qtbot.wait(2 * SLIDER_DEBOUNCE_MS)
    sent: list[int] = []
    controls.batch_size_changed.connect(sent.append)
    slider = controls.batch_slider
    slider.setSliderDown(True)  # the mouse holds the handle
    for position in (3, 4, 5):  # 8, 16, 32, each held longer than the debounce
        slider.setSliderPosition(position)
        assert controls.batch_spin.value() == 2**position, "the number follows the handle while it moves"
        qtbot.wait(2 * SLIDER_DEBOUNCE_MS)
    assert sent == [], "nothing applies while the handle is held"
    with qtbot.waitSignal(controls.batch_size_changed, timeout=5000):
        slider.setSliderDown(False)
    assert sent == [32]
