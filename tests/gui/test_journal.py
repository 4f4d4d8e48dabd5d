"""The window's journal: rows on disk per batch, offered back after a kill, gone after a clean close."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from batch_classifier.engine.records import ImageResult, Prediction
from batch_classifier.gui.journal import Journal, orphans, read_rows
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity
from batch_classifier.gui.settings import Settings
from batch_classifier.gui.signals import SignalCloser

from .conftest import TINY_LABELS, close_window, drop_paths, write_images

pytestmark = pytest.mark.qt_log_ignore(r"^This plugin does not support propagateSizeHints\(\)$")

TIMEOUT_MS = 60_000
KILL_TIMEOUT_S = 120


def row(name: str, label: str = "cat", status: str = "ok") -> ImageResult:
    predictions = (Prediction(label, 0.75), Prediction("dog", 0.25)) if status == "ok" else ()
    return ImageResult(0, f"/photos/{name}", status, predictions, "" if status == "ok" else "bad", "tiny", "cpu", 2)


def test_rows_survive_a_torn_last_line_and_the_newest_row_of_a_path_wins(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append([row("a.png"), row("b.png", status="error")])
    journal.append([row("b.png", "dog"), row("\udcff-not-utf8.png")])
    journal.flush()
    with open(journal.path, "a", encoding="utf-8") as handle:
        handle.write('{"kind": "rows", "rows": [["/photos/c.png", "ok"')  # a kill in the middle of a write
    rows, exported = read_rows(journal.path)
    assert [(r.path, r.label, r.status) for r in rows] == [
        ("/photos/a.png", "cat", "ok"), ("/photos/b.png", "dog", "ok"), ("/photos/\udcff-not-utf8.png", "cat", "ok"),
    ]
    assert rows[0].predictions == (Prediction("cat", 0.75), Prediction("dog", 0.25))
    assert not exported
    journal.close(keep=True)


def test_an_export_marks_done_a_clear_forgets_and_a_clean_close_removes(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    assert not journal.path.exists(), "a window that never ran leaves no file"
    journal.append([row("a.png")])
    journal.mark_done()
    journal.flush()
    assert read_rows(journal.path)[1], "exported"
    journal.append([row("b.png")])
    journal.flush()
    assert read_rows(journal.path) == ((row("a.png"), row("b.png")), False), "rows after an export are not"
    journal.mark_cleared()
    journal.append([row("c.png")])
    journal.flush()
    assert read_rows(journal.path)[0] == (row("c.png"),)
    journal.close(keep=False)
    assert not journal.path.exists()


def test_a_live_windows_journal_is_never_offered_and_a_dead_ones_is(tmp_path: Path) -> None:
    live = Journal(tmp_path)
    live.append([row("a.png")])
    live.flush()
    assert orphans(tmp_path) == [], "its window is still open (the lock is held)"
    live.close(keep=True)  # as a kill leaves it: rows on disk, lock gone
    found = orphans(tmp_path)
    assert [orphan.path for orphan in found] == [live.path]
    assert found[0].rows == (row("a.png"),)


def test_a_new_window_offers_the_rows_back_and_restore_puts_them_in_the_table(
    qtbot: QtBot, settings: Settings, journal_folder: Path
) -> None:
    killed = Journal(journal_folder)
    killed.append([row("a.png"), row("b.png")])
    killed.close(keep=True)
    main = MainWindow(settings)
    main.show()
    main.offer_restore()
    assert main.restore_question is not None and "2 rows" in main.restore_question.text()
    restore = next(b for b in main.restore_question.buttons() if b.text() == "&Restore")
    restore.click()
    assert [r.path for r in main.results.results()] == ["/photos/a.png", "/photos/b.png"]
    assert main.export_action.isEnabled()
    assert not killed.path.exists(), "restored rows now live in this window's own journal"
    main.journal.flush()
    assert read_rows(main.journal.path)[0] == (row("a.png"), row("b.png"))
    close_window(qtbot, main)
    main.deleteLater()


def test_discard_drops_the_orphan(qtbot: QtBot, window: MainWindow, journal_folder: Path) -> None:
    killed = Journal(journal_folder)
    killed.append([row("a.png")])
    killed.close(keep=True)
    window.offer_restore()
    window.restore_question.button(QMessageBox.StandardButton.Discard).click()
    assert window.results.rowCount() == 0 and not killed.path.exists()


def test_a_signal_closes_without_a_dialog_and_keeps_the_journal(
    qtbot: QtBot, settings: Settings, tmp_path: Path, journal_folder: Path
) -> None:
    """SIGTERM, SIGHUP, Ctrl-C: the same close request, delivered through the event loop."""
    write_images(tmp_path / "few", 6)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        main = MainWindow(settings)
        closer = SignalCloser(main.close_for_signal)
        main.show()
        try:
            with qtbot.waitSignal(main.session.run_finished, timeout=TIMEOUT_MS):
                drop_paths(main.drop_zone, [tmp_path / "few"])
            qtbot.waitUntil(lambda: main.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)
            os.kill(os.getpid(), signum)
            qtbot.waitUntil(lambda: not main.isVisible(), timeout=TIMEOUT_MS)
        finally:
            closer.uninstall()
        assert main.close_question is None, "no dialog for a signal"
        assert main.closed_by_signal == signum
        assert read_rows(main.journal.path)[0], "the rows wait for the next start"
        main.deleteLater()
    assert len(orphans(journal_folder)) == 3


def test_sigterm_mid_run_keeps_the_rows_for_the_next_window(
    qtbot: QtBot, tmp_path: Path, tiny_model: tuple[str, str], settings: Settings
) -> None:
    """The real process, killed as a logout or ``kill`` does, and its rows restored in a new window."""
    model, labels = tiny_model
    write_images(tmp_path / "pile", 3000)
    config, data = tmp_path / "config", tmp_path / "data"
    ini = QSettings(str(config / "BatchClassifier" / "Batch Classifier.conf"), QSettings.Format.IniFormat)
    for key, value in (("run/model", model), ("run/labels", labels), ("run/device", "cpu"), ("run/batch_size", 2)):
        ini.setValue(key, value)
    ini.sync()
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(config),
                   "XDG_DATA_HOME": str(data)}
    process = subprocess.Popen(
        [sys.executable, "-m", "batch_classifier", str(tmp_path / "pile")],
        env=environment, stderr=subprocess.PIPE, text=True,
    )
    folder = data / "BatchClassifier" / "Batch Classifier" / "journal"
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while not any(path.stat().st_size > 2000 for path in folder.glob("*.jsonl")) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=KILL_TIMEOUT_S)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr

    [journal_file] = folder.glob("*.jsonl")
    kept = [json.loads(line) for line in journal_file.read_text(encoding="utf-8").splitlines()]
    kept_paths = [cells[0] for record in kept for cells in record["rows"]]
    assert 0 < len(kept_paths) < 3000, "killed mid-run, with rows on disk"

    main = MainWindow(settings, journal_folder=folder)
    main.show()
    main.offer_restore()
    next(b for b in main.restore_question.buttons() if b.text() == "&Restore").click()
    restored = main.results.results()
    assert [r.path for r in restored] == kept_paths
    assert all(r.status == "ok" and r.label in TINY_LABELS for r in restored)
    close_window(qtbot, main)
    main.deleteLater()


def test_a_restored_session_exports_each_rows_runtime_and_preprocessing(
    qtbot: QtBot, settings: Settings, journal_folder: Path, tmp_path: Path
) -> None:
    killed = Journal(journal_folder)
    killed.append([replace(row("a.png"), runtime="torch", preprocess="fast")])
    killed.flush()
    with open(killed.path, "a", encoding="utf-8") as handle:  # a line from before rows kept them
        handle.write(json.dumps({"kind": "rows", "rows": [["/photos/b.png", "ok", "", "tiny", "cpu", 2, []]]}) + "\n")
    killed.close(keep=True)
    main = MainWindow(settings)
    main.show()
    main.offer_restore()
    assert main.restore_question is not None
    next(b for b in main.restore_question.buttons() if b.text() == "&Restore").click()
    target = tmp_path / "restored.csv"
    assert main.export_csv(str(target)) == 2
    with open(target, encoding="utf-8", newline="") as handle:
        exported = {Path(line["path"]).name: line for line in csv.DictReader(handle)}
    assert (exported["a.png"]["runtime"], exported["a.png"]["preprocess"]) == ("torch", "fast")
    assert (exported["b.png"]["runtime"], exported["b.png"]["preprocess"]) == ("", "")
    close_window(qtbot, main)
    main.deleteLater()


def test_corrections_are_journalled_and_a_new_row_of_the_path_keeps_them(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append([row("a.png"), row("b.png"), row("c.png")])
    journal.record_correction("/photos/a.png", "dog")
    journal.record_correction("/photos/b.png", "dog")
    journal.record_correction("/photos/b.png", "")  # taken back
    journal.mark_done()
    journal.flush()
    assert read_rows(journal.path)[1], "exported after the corrections"
    journal.append([row("a.png", "bird")])  # run again: the correction is about the image, not the run
    journal.record_correction("/photos/c.png", "cat")
    journal.flush()
    rows, exported = read_rows(journal.path)
    assert [(r.path, r.label, r.corrected_label) for r in rows] == [
        ("/photos/b.png", "cat", ""), ("/photos/c.png", "cat", "cat"), ("/photos/a.png", "bird", "dog"),
    ]
    assert not exported, "a correction after the export is not exported"
    journal.mark_done()
    journal.record_correction("/photos/c.png", "")
    journal.flush()
    assert not read_rows(journal.path)[1], "nor is taking one back"
    journal.mark_cleared()
    journal.append([row("a.png")])
    journal.flush()
    assert read_rows(journal.path)[0] == (row("a.png"),), "Clear forgets the corrections with the rows"
    journal.close(keep=False)


def test_a_correction_survives_a_signal_close_and_a_restore(
    qtbot: QtBot, settings: Settings, journal_folder: Path, tmp_path: Path
) -> None:
    killed = Journal(journal_folder)
    killed.append([row("a.png"), row("b.png")])
    killed.flush()
    with open(killed.path, "a", encoding="utf-8") as handle:  # a line from before rows kept corrections
        handle.write(json.dumps({"kind": "rows", "rows": [["/photos/c.png", "ok", "", "tiny", "cpu", 2, []]]}) + "\n")
    killed.close(keep=True)
    first = MainWindow(settings)
    first.show()
    first.offer_restore()
    next(b for b in first.restore_question.buttons() if b.text() == "&Restore").click()
    first.export_csv(str(tmp_path / "before.csv"))
    first.results.set_correction(1, "dog")  # what Review's "Correct label" does to the selected row
    assert first._must_ask(), "a correction not exported is asked about, as rows are"
    first.close_for_signal(signal.SIGTERM)
    assert not first.isVisible()
    first.deleteLater()

    second = MainWindow(settings)
    second.show()
    second.offer_restore()
    assert second.restore_question is not None, "the correction was not exported: the journal is offered"
    next(b for b in second.restore_question.buttons() if b.text() == "&Restore").click()
    restored = {Path(r.path).name: r.corrected_label for r in second.results.results()}
    assert restored == {"a.png": "", "b.png": "dog", "c.png": ""}
    assert second.results.corrections == 1
    second.journal.flush()
    assert [r.corrected_label for r in read_rows(second.journal.path)[0]] == ["", "dog", ""], "journalled again"
    target = tmp_path / "after.csv"
    second.export_csv(str(target))
    with open(target, encoding="utf-8", newline="") as handle:
        assert [line["corrected_label"] for line in csv.DictReader(handle)] == ["", "dog", ""]
    close_window(qtbot, second)
    second.deleteLater()
