"""Sort into folders… from the window: preview makes nothing, sort places each image by its label,
its correction or the threshold, never replaces a file the user has there, and leaves a manifest."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from batch_classifier.engine.sorting import UNKNOWN_FOLDER, undo_sort
from batch_classifier.gui.main_window import MainWindow

from .test_review import run_drop, tiny_model, tree  # noqa: F401 - fixtures: the colour model, class folders

SORT_TIMEOUT_MS = 30_000


def correct(window: MainWindow, name: str, label: str) -> None:
    row = next(r for r in range(window.results.rowCount()) if Path(window.results.result(r).path).name == name)
    window.results.set_correction(row, label)


def test_preview_then_sort_with_a_correction_a_threshold_and_a_taken_name(
    qtbot: QtBot, window: MainWindow, tree: Path, tmp_path: Path  # noqa: F811
) -> None:
    run_drop(qtbot, window, [tree])
    correct(window, "c.png", "blue")  # the green image in blue/: the person says blue
    into = tmp_path / "sorted"
    users_file = into / "red" / "a.png"
    users_file.parent.mkdir(parents=True)
    users_file.write_bytes(b"the user's own file")

    assert window.review.sort_action.isEnabled()
    window.review.sort_action.trigger()
    dialog = window.review.sort_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.folder_edit.setText(str(into))
    dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData("hardlink"))
    rows = {Path(row.path).name: row for row in window.results.results()}
    sure = max(rows.values(), key=lambda row: row.confidence)
    # Just above the least sure image: it goes to _unknown/, the rest by label.
    least = min((row for name, row in rows.items() if name != "c.png"), key=lambda row: row.confidence)
    dialog.threshold_spin.setValue(least.confidence * 100 + 1)
    assert sure.confidence * 100 > dialog.threshold_spin.value(), "the threshold must leave the sure ones"

    qtbot.mouseClick(dialog.preview_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.outcome is not None and not dialog.busy, timeout=SORT_TIMEOUT_MS)
    preview = dialog.outcome
    assert preview.dry_run and preview.manifest is None
    assert sorted(os.listdir(into)) == ["red"] and os.listdir(into / "red") == ["a.png"], "a preview makes nothing"
    expected = {name: row.label for name, row in rows.items()}
    expected["c.png"] = "blue"
    expected[Path(least.path).name] = UNKNOWN_FOLDER
    assert {Path(p.source).name: p.folder for p in preview.placed} == expected
    assert "Nothing was made" in dialog.summary.toPlainText()

    qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.outcome is not preview and not dialog.busy, timeout=SORT_TIMEOUT_MS)
    outcome = dialog.outcome
    assert not outcome.dry_run and not outcome.skipped and outcome.manifest.is_file()
    assert {Path(p.source).name: p.folder for p in outcome.placed} == expected
    assert dialog.progress.value() == dialog.progress.maximum()
    assert users_file.read_bytes() == b"the user's own file", "a name already taken is never replaced"
    for placed in outcome.placed:
        assert os.path.samefile(placed.source, placed.target), "hard links: the same file, a second name"
        assert Path(placed.target).parent == into / placed.folder
    assert expected["a.png"] == "red", "the saturated red image is the model's surest"
    assert [Path(p.target).name for p in outcome.placed if p.renamed] == ["a (2).png"]
    text = dialog.summary.toPlainText()
    assert "undo with: batch-classifier sort --undo" in text and str(outcome.manifest) in text

    undone = undo_sort(outcome.manifest)
    assert undone.removed_files == len(outcome.placed)
    assert users_file.read_bytes() == b"the user's own file"
    assert all(Path(row.path).is_file() for row in rows.values()), "the photos themselves are untouched"
    dialog.close()


def test_a_destination_that_is_a_file_is_refused_in_one_line(
    qtbot: QtBot, window: MainWindow, tree: Path, tmp_path: Path  # noqa: F811
) -> None:
    run_drop(qtbot, window, [tree])
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x", encoding="utf-8")
    dialog = window.review.open_sort_dialog()
    dialog.folder_edit.setText(str(not_a_folder))
    qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.busy, timeout=SORT_TIMEOUT_MS)
    assert "exists and is not a folder" in dialog.summary.toPlainText()
    assert dialog.outcome is None and not_a_folder.read_text(encoding="utf-8") == "x"
    dialog.close()
