"""The smaller things a user meets: sort and follow keep rows in sight, export what is shown, say what did
not happen, remember each dialog's folder, fp16 marked slow on the CPU, About, the sweep's fallback."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from batch_classifier import __version__
from batch_classifier.engine.devices import MemoryReading
from batch_classifier.engine.records import BatchStats, ImageResult, Prediction
from batch_classifier.gui import settings as keys
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.results_model import FILE
from batch_classifier.gui.session import Activity
from batch_classifier.gui.settings import Settings
from batch_classifier.gui.worker import SWEEP_ON_SAMPLES, BatchRows

from .conftest import drop_paths

pytestmark = pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")

TIMEOUT_MS = 60_000


def fill(window: MainWindow, count: int, first: int = 0) -> None:
    """``count`` rows delivered as a run delivers a batch: every tenth an error, confidences all different."""
    rows = tuple(
        ImageResult(n, f"/photos/p{n:04d}.png", "error", error="bad")
        if n % 10 == 3 else ImageResult(n, f"/photos/p{n:04d}.png", "ok", (Prediction("cat", (n % 97) / 100),))
        for n in range(first, first + count)
    )
    stats = BatchStats(0, count, count, 0, 1.0, 0.0, 1.0, 2.0, 10.0, MemoryReading(100.0, 100.0, "process"), False, 0.0)
    window._on_batch(BatchRows(rows, (None,) * count, stats))


def visible(window: MainWindow, source_row: int) -> bool:
    table = window.results_view.table
    index = window.results_view.proxy.mapFromSource(window.results.index(source_row, FILE))
    return table.viewport().rect().intersects(table.visualRect(index))


def test_sorting_keeps_the_selected_row_in_sight_or_goes_to_the_top(qtbot: QtBot, window: MainWindow) -> None:
    fill(window, 400)
    table = window.results_view.table
    header = table.horizontalHeader()
    chosen = 390
    table.selectRow(window.results_view.proxy.mapFromSource(window.results.index(chosen, FILE)).row())
    table.scrollToTop()
    header.setSortIndicator(1, Qt.SortOrder.DescendingOrder)  # as a click on "File" does
    qtbot.waitUntil(lambda: visible(window, chosen), timeout=5000)

    table.setCurrentIndex(QModelIndex())
    table.scrollToBottom()
    header.setSortIndicator(3, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: table.verticalScrollBar().value() == 0, timeout=5000)


def test_follow_new_rows_scrolls_to_each_batch(qtbot: QtBot, window: MainWindow) -> None:
    fill(window, 200)
    assert not visible(window, 199), "not followed: new rows arrive out of sight"
    window.results_view.follow.setChecked(True)
    fill(window, 50, first=200)
    qtbot.waitUntil(lambda: visible(window, 249), timeout=5000)


def test_export_offers_shown_rows_only_when_a_filter_is_active(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(window, 40)
    assert window.export_action.isEnabled() and not window.export_shown_action.isEnabled()
    window.results_view.errors_only.setChecked(True)
    assert window.export_shown_action.isEnabled()
    target = tmp_path / "errors.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    window.export_shown_action.trigger()
    with open(target, encoding="utf-8", newline="") as handle:
        exported = [row["path"] for row in csv.DictReader(handle)]
    assert exported == [f"/photos/p{n:04d}.png" for n in (3, 13, 23, 33)]
    assert window._unexported, "the rows not shown are still not exported"
    window.results_view.errors_only.setChecked(False)
    assert not window.export_shown_action.isEnabled()


def test_double_click_without_an_image_viewer_says_so(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(window, 3)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)
    index = window.results_view.proxy.index(1, FILE)
    window.results_view.table.doubleClicked.emit(index)
    assert window.statusBar().currentMessage() == "No application to open p0001.png with was found."


def test_fp16_and_bf16_are_marked_slow_when_the_cpu_would_run_them(window: MainWindow) -> None:
    combo = window.controls.precision_combo
    cpu = window.controls.device_combo.findData("cpu")
    window.controls.device_combo.setCurrentIndex(cpu)
    fp16 = combo.findData("fp16")
    assert combo.itemText(fp16) == "fp16  (slow on the CPU)"
    assert "slower than fp32" in combo.itemData(fp16, Qt.ItemDataRole.ToolTipRole)
    assert combo.itemText(combo.findData("fp32")) == "fp32"


def test_each_file_dialog_starts_in_its_own_folder(
    qtbot: QtBot, window: MainWindow, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos, exports = tmp_path / "photos" / "trip", tmp_path / "exports"
    photos.mkdir(parents=True)
    exports.mkdir()
    started_in: list[str] = []

    def existing_directory(parent: object, caption: str, folder: str) -> str:
        started_in.append(folder)
        return str(photos)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", existing_directory)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (started_in.append(args[2]) or str(exports / "r.csv"), ""))
    window.open_folder()
    fill(window, 2)
    window.choose_export_file()
    window.open_folder()
    assert started_in[-1] == str(photos.parent), "Open folder starts where folders were added, not where the CSV went"
    assert started_in[1] == str(tmp_path / "batch-classifier-results.csv")
    assert settings.get(keys.EXPORT_FOLDER) == str(exports)
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)


def test_about_names_versions_device_and_licences(window: MainWindow) -> None:
    window.about_action.trigger()
    text = window.about_box.text()
    for expected in (__version__, torch.__version__, "CUDA", "Device", "Apache-2.0", "CC0", "public domain"):
        assert expected in text
    window.about_box.close()


def test_the_sweep_with_only_unreadable_files_queued_measures_the_samples(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_text("not a PNG", encoding="utf-8")
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [broken])
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.session.sweep_finished, timeout=TIMEOUT_MS) as finished:
        with qtbot.waitSignal(window.session.note, timeout=TIMEOUT_MS) as note:
            window.sweep_action.trigger()
    assert note.args == [SWEEP_ON_SAMPLES]
    assert finished.args[0].best_batch_size is not None
    assert SWEEP_ON_SAMPLES in window.statusBar().currentMessage()
