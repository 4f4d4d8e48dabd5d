"""The preprocessing choice in the window: explained in one line, used by the run, remembered."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from batch_classifier.engine.fidelity import DEFAULT_PREPROCESS, PREPROCESS_HELP
from batch_classifier.gui import settings as keys
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity
from batch_classifier.gui.settings import Settings

from .conftest import drop_paths, write_images

RUN_TIMEOUT_MS = 60_000


def test_the_chosen_mode_is_explained_used_by_the_run_and_remembered(
    qtbot: QtBot, window: MainWindow, settings: Settings, tmp_path: Path
) -> None:
    combo, note = window.controls.preprocess_combo, window.controls.preprocess_note
    assert combo.currentData() == DEFAULT_PREPROCESS
    assert note.text()[1:] == PREPROCESS_HELP[DEFAULT_PREPROCESS][1:]
    with qtbot.waitSignal(window.controls.config_changed, timeout=5000):
        combo.setCurrentIndex(combo.findData("fast"))
    assert note.text()[1:] == PREPROCESS_HELP["fast"][1:]

    with qtbot.waitSignal(window.session.run_finished, timeout=RUN_TIMEOUT_MS):
        drop_paths(window.drop_zone, write_images(tmp_path / "in", 2))
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=RUN_TIMEOUT_MS)
    assert [row.preprocess for row in window.results.results()] == ["fast", "fast"]

    window.controls.save()
    assert settings.get(keys.PREPROCESS) == "fast"
