"""Inputs that are the same file are counted: the window says how many it skipped, once (issue 22, item 7)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from batch_classifier.gui.main_window import MainWindow

from .conftest import drop_paths, write_images

TIMEOUT_MS = 60_000


def test_a_folder_of_symlinks_to_fewer_files_says_how_many_it_skipped(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's 900 symlinks to 300 files, in small: 12 names for 4 files."""
    originals = write_images(tmp_path / "originals", 4)
    links = tmp_path / "links"
    links.mkdir()
    for copy in range(3):
        for image in originals:
            (links / f"{copy}-{image.name}").symlink_to(image)
    caplog.set_level(logging.INFO, logger="batch_classifier.gui.main_window")

    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [links])

    assert window.results.rowCount() == 4
    said = "8 skipped as duplicates of the same file"
    assert window.statusBar().currentMessage().count(said) == 1, window.statusBar().currentMessage()
    assert [record.getMessage().count(said) for record in caplog.records if said in record.getMessage()] == [1]
