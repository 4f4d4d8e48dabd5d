"""The run does not wait for the pile to be counted: rows first, the total when the count comes back."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from batch_classifier.engine import sources
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity

from .conftest import drop_paths, write_images

TIMEOUT_MS = 60_000
IMAGES = 400
"""Enough that the run is still going when the first batch reaches the window, on any machine."""


def test_rows_arrive_before_the_count_and_the_total_follows(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_images(tmp_path / "pile", IMAGES)
    walked = threading.Event()
    real_count = sources.count_sources

    def slow_share(*args, **kwargs):  # type: ignore[no-untyped-def]
        walked.wait(timeout=30)  # the count's walk of a network share, still going
        return real_count(*args, **kwargs)

    monkeypatch.setattr(sources, "count_sources", slow_share)  # only the background count calls it
    window.controls.set_batch_size(4)
    with qtbot.waitSignal(window.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "pile"])
    window.pause_action.trigger()  # so the run cannot end before the count does, however fast this machine
    assert window.progress.bar.maximum() == 0, "the bar is busy until the count comes back"
    assert 0 < window.results.rowCount() < IMAGES, "rows came before the count"
    with qtbot.waitSignal(window.session.run_total, timeout=TIMEOUT_MS) as counted:
        walked.set()
    assert counted.args == [IMAGES]
    assert window.progress.bar.maximum() == IMAGES
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)
    assert window.results.rowCount() == IMAGES
    assert (window.progress.bar.maximum(), window.progress.bar.value()) == (IMAGES, IMAGES)
    assert window.progress.bar.text() == f"{IMAGES} / {IMAGES}"
