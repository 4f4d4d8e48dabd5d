"""The engine decides the batch size of a run the user has not given one; the window only shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from batch_classifier.engine.feeder import read_ahead_window
from batch_classifier.engine.pipeline import DEFAULT_BATCH_SIZE
from batch_classifier.gui import settings as keys
from batch_classifier.engine import cluster
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.settings import Settings
from support import PretendCuda, record_read_ahead_queues

from .conftest import drop_paths, write_images

TIMEOUT_MS = 60_000


def test_a_fresh_profile_runs_at_the_device_default_from_its_first_batch(
    qtbot: QtBot, window: MainWindow, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drop before the model has loaded, on a CUDA-like device, with no batch size chosen or remembered."""
    assert not settings.has(keys.BATCH_SIZE)
    monkeypatch.setattr(cluster, "Classifier", PretendCuda)  # where open_classifier builds the window's classifier
    queues = record_read_ahead_queues(monkeypatch)
    default = DEFAULT_BATCH_SIZE["cuda"]
    write_images(tmp_path / "pile", 300)

    with qtbot.waitSignal(window.session.batch_done, timeout=TIMEOUT_MS) as first:
        drop_paths(window.drop_zone, [tmp_path / "pile"])
    assert first.args[0].stats.batch_size == default, "the first batch may hold a device default's worth"
    assert queues[0].maxsize == read_ahead_window(default, 1) == 2 * default, "read-ahead sized for it at start"
    assert window.controls.batch_size() == default, "the window shows the batch size the engine chose"
    qtbot.waitUntil(lambda: window.results.rowCount() == 300, timeout=TIMEOUT_MS)
