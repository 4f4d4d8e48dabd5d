"""One row per path, the newest: Start after Cancel continues, Run again replaces, Clear forgets."""

from __future__ import annotations

import csv
from pathlib import Path

from pytestqt.qtbot import QtBot

from batch_classifier.engine.records import ImageResult
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity
from batch_classifier.gui.worker import NOTHING_LEFT, BatchRows

from .conftest import drop_paths, write_images

TIMEOUT_MS = 60_000
IMAGES = 300


def wait_idle(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=TIMEOUT_MS)


def cancelled_part_way(qtbot: QtBot, window: MainWindow, folder: Path) -> int:
    """Drop ``folder``, cancel after the first batches: how many rows the table holds then."""
    window.controls.set_batch_size(4)
    with qtbot.waitSignal(window.session.batch_done, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [folder])
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS) as finished:
        window.cancel_action.trigger()
    assert finished.args[0].cancelled
    wait_idle(qtbot, window)
    done = window.results.rowCount()
    assert 0 < done < IMAGES
    return done


def test_start_after_cancel_classifies_only_what_is_missing(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    paths = [str(path) for path in write_images(tmp_path / "pile", IMAGES)]
    done = cancelled_part_way(qtbot, window, tmp_path / "pile")
    second: list[ImageResult] = []
    window.session.batch_done.connect(lambda rows: second.extend(rows.results))

    assert window.start_action.isEnabled()
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS) as finished:
        window.start_action.trigger()
    wait_idle(qtbot, window)

    assert not finished.args[0].cancelled
    assert len(second) == IMAGES - done, "the second run classified only what had no row"
    rows = window.results.results()
    assert sorted(row.path for row in rows) == sorted(paths), "every path once"
    assert window.progress.bar.maximum() == IMAGES - done, "the total counts what this run had to do"

    target = tmp_path / "out.csv"
    window.export_csv(str(target))
    with open(target, encoding="utf-8", newline="") as handle:
        exported = [row["path"] for row in csv.DictReader(handle)]
    assert len(exported) == len(set(exported)) == IMAGES


def test_start_with_nothing_missing_says_so_and_adds_nothing(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    write_images(tmp_path / "few", 3)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "few"])
    wait_idle(qtbot, window)
    with qtbot.waitSignal(window.session.note, timeout=TIMEOUT_MS) as note:
        window.start_action.trigger()
    assert note.args == [NOTHING_LEFT]
    wait_idle(qtbot, window)
    assert window.results.rowCount() == 3
    assert window.statusBar().currentMessage() == NOTHING_LEFT


def test_run_again_replaces_each_row_with_the_newest(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    paths = [str(path) for path in write_images(tmp_path / "few", 12)]
    broken = tmp_path / "broken.png"
    broken.write_text("not a PNG", encoding="utf-8")
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "few", broken])
    wait_idle(qtbot, window)
    assert window.results.rowCount() == 13 and window.results.error_count == 1

    window.controls.set_batch_size(2)
    rerun: list[BatchRows] = []
    window.session.batch_done.connect(rerun.append)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        window.run_again_action.trigger()
    wait_idle(qtbot, window)

    assert sum(len(rows.results) for rows in rerun) == 13, "Run again classifies every input again"
    rows = window.results.results()
    assert [row.path for row in rows] == [*paths, str(broken)], "each path keeps its place, once"
    assert {row.batch_size for row in rows if row.status == "ok"} <= {1, 2}, "the rows are the new run's"
    assert window.results.error_count == 1, "a replaced error row is not counted twice"
    assert "13 images · 1 error" in window.results_view.count_label.text()


def test_clear_forgets_the_inputs_and_resets_the_progress(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    write_images(tmp_path / "few", 5)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "few"])
    wait_idle(qtbot, window)
    assert window.progress.bar.text() == "5 / 5"

    window.clear_action.trigger()
    assert window.results.rowCount() == 0
    assert window.progress.bar.text() == "" and window.progress.label.text() == "Ready"
    assert window.memory_label.text() == ""
    assert not window.start_action.isEnabled(), "Start has nothing to run until new inputs arrive"
    assert not window.run_again_action.isEnabled()
    window.start()  # even asked directly, nothing old runs again
    assert window.session.activity is Activity.IDLE and window.results.rowCount() == 0

    write_images(tmp_path / "new", 2)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT_MS):
        drop_paths(window.drop_zone, [tmp_path / "new"])
    wait_idle(qtbot, window)
    assert {Path(row.path).parent.name for row in window.results.results()} == {"new"}
