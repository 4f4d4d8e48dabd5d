"""The window shows what the engine decided about misbehaving models: error rows, and its own summary line."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from batch_classifier.engine.runner import NON_FINITE
from batch_classifier.gui.main_window import MainWindow
from support import write_colour_images
from unreadable_trees import deny_listing

from .conftest import drop_paths

TIMEOUT_MS = 60_000


def run_in_window(qtbot: QtBot, window: MainWindow, model, folder: Path):  # type: ignore[no-untyped-def]
    window.controls.use_model_file(str(model.path), str(model.labels))
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS) as finished:
        drop_paths(window.drop_zone, [folder])
    return finished.args[0]


def test_non_finite_scores_show_as_errors_in_the_detail_pane(qtbot: QtBot, window: MainWindow, misbehaving_model,
                                                            tmp_path: Path) -> None:
    """The first row (selected as it arrives) has NaN scores: the pane shows its reason, and raises nothing."""
    write_colour_images(tmp_path / "in", ["red", "green"])
    summary = run_in_window(qtbot, window, misbehaving_model("nan_on_red"), tmp_path / "in")
    rows = window.results.results()
    assert [(row.status, row.error) for row in rows] == [("error", NON_FINITE), ("ok", "")]
    assert NON_FINITE in window.detail.text.text()
    assert summary.errors == 1
    assert window.statusBar().toolTip() == f"Done: {summary.describe()}", "the engine's summary, word for word"


def test_the_window_keeps_every_row_when_the_model_raises_on_some(qtbot: QtBot, window: MainWindow,
                                                                misbehaving_model, tmp_path: Path) -> None:
    write_colour_images(tmp_path / "in", ["red", "blue", "green", "blue"])
    summary = run_in_window(qtbot, window, misbehaving_model("raises_on_blue"), tmp_path / "in")
    rows = window.results.results()
    assert [row.status for row in rows] == ["ok", "error", "ok", "error"]
    assert all("cannot handle blue" in row.error for row in rows if row.status == "error")
    assert (summary.images, summary.errors) == (4, 2)


@pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")  # the message box says it
def test_dropping_an_unreadable_folder_says_why_it_has_nothing(qtbot: QtBot, window: MainWindow, tmp_path: Path,
                                                              monkeypatch) -> None:
    locked = tmp_path / "locked"
    write_colour_images(locked, ["red"])
    deny_listing(monkeypatch, locked)
    with qtbot.waitSignal(window.session.nothing_found, timeout=TIMEOUT_MS) as nothing:
        drop_paths(window.drop_zone, [locked])
    assert nothing.args == [f"Nothing to classify in '{locked}': cannot read folder '{locked}': permission denied"]
    for box in QApplication.topLevelWidgets():
        if isinstance(box, QMessageBox):
            box.close()
