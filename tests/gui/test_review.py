"""After the run, in the window: folder truth offered and accepted, the confusion matrix and its cell
filter, the live threshold, and the correction walk with its corrected_label export.

The model is the colour classifier of ``tests/support.py`` (mean colour -> the dominant channel), so
which image gets which label is known; the confidences are read from the rows, never written here.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from batch_classifier.engine.csv_output import header
from batch_classifier.engine.records import UNKNOWN_LABEL
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.results_model import FILE, LABEL, TRUTH
from batch_classifier.gui.session import Activity
from support import COLOUR_LABELS, make_tiny_model

from .conftest import drop_paths

RUN_TIMEOUT_MS = 60_000
# Saturated and washed-out colours: the model is sure of the first, less of the second.
RGB = {"red": (230, 20, 20), "pale-red": (150, 110, 110), "green": (20, 230, 20), "pale-green": (110, 150, 110)}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The colour classifier (red, green, blue, dark) in place of the GUI tests' random one."""
    model = make_tiny_model(tmp_path_factory.mktemp("colour-model"))
    return str(model.path), str(model.labels)


def write(path: Path, colour: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), RGB[colour]).save(path)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Class folders as ImageFolder lays them out: two right, one green image filed under blue, and a
    folder named after no label."""
    root = tmp_path / "photos"
    write(root / "red" / "a.png", "red")
    write(root / "Green" / "b.png", "pale-green")  # another case: still the label green
    write(root / "blue" / "c.png", "green")  # a wrong folder: the matrix shows it
    write(root / "astronaut" / "d.png", "pale-red")  # no such label: no truth, not scored
    return root


def run_drop(qtbot: QtBot, window: MainWindow, paths: list[Path]) -> None:
    with qtbot.waitSignal(window.session.run_finished, timeout=RUN_TIMEOUT_MS):
        drop_paths(window.drop_zone, paths)
    qtbot.waitUntil(lambda: window.session.activity is Activity.IDLE, timeout=RUN_TIMEOUT_MS)


def shown_names(window: MainWindow) -> list[str]:
    proxy = window.results_view.proxy
    return sorted(proxy.index(row, FILE).data() for row in range(proxy.rowCount()))


def test_folder_truth_is_offered_and_the_matrix_filters_the_table(
    qtbot: QtBot, window: MainWindow, tree: Path
) -> None:
    review = window.review
    run_drop(qtbot, window, [tree])
    qtbot.waitUntil(review.truth_offer.isVisible, timeout=10_000)
    assert review.accuracy_view.report is None, "no truth until the user accepts"
    assert window.results_view.table.isColumnHidden(TRUTH)

    qtbot.mouseClick(review.truth_offer.accept_button, Qt.MouseButton.LeftButton)
    # Scored off the GUI thread: the accuracy line follows shortly.
    qtbot.waitUntil(lambda: review.accuracy_label.text().startswith("accuracy: top-1 66.7%"), timeout=5000)
    report = review.assessment.report_now()
    assert not review.truth_offer.isVisible()
    assert window.lower_tabs.currentWidget() is review.accuracy_view
    assert (report.scored, report.top1_correct, report.without_truth) == (3, 2, 1)
    assert report.cell("blue", "green") == 1 and report.cell("green", "green") == 1
    assert [name.name for name in report.unmatched] == ["astronaut"]
    assert review.accuracy_label.text() == f"{report.headline()} · 1 not scored"
    assert not window.results_view.table.isColumnHidden(TRUTH)
    truths = {window.results.result(row).path: window.results.result(row).true_label for row in range(4)}
    assert truths == {
        str(tree / "red" / "a.png"): "red", str(tree / "Green" / "b.png"): "green",
        str(tree / "blue" / "c.png"): "blue", str(tree / "astronaut" / "d.png"): "",
    }

    matrix = review.accuracy_view.matrix
    row, column = report.classes.index("blue"), report.columns.index("green")
    assert matrix.item(row, column).text() == "1"
    assert matrix.verticalHeaderItem(row).text() == "blue"
    rect = matrix.visualItemRect(matrix.item(row, column))
    qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert shown_names(window) == ["c.png"]
    assert window.results_view.proxy.index(0, TRUTH).data() == "blue"
    assert window.export_shown_action.isEnabled(), "a cell filter is a filter: Export shown rows applies"
    assert review.accuracy_view.show_all_button.isVisible()

    # Another cell, then back to every row.
    diagonal = matrix.visualItemRect(matrix.item(report.classes.index("red"), report.columns.index("red")))
    qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=diagonal.center())
    assert shown_names(window) == ["a.png"]
    qtbot.mouseClick(review.accuracy_view.show_all_button, Qt.MouseButton.LeftButton)
    assert shown_names(window) == ["a.png", "b.png", "c.png", "d.png"]
    assert not review.accuracy_view.show_all_button.isVisible()


def test_declined_offer_stays_declined_and_csv_truth_works(
    qtbot: QtBot, window: MainWindow, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    review = window.review
    run_drop(qtbot, window, [tree])
    qtbot.waitUntil(review.truth_offer.isVisible, timeout=10_000)
    qtbot.mouseClick(review.truth_offer.decline_button, Qt.MouseButton.LeftButton)
    review.inputs_changed(window.session.inputs)  # asked again for the same inputs: not offered again
    qtbot.wait(50)
    assert not review.truth_offer.isVisible()

    truth_csv = tmp_path / "truth.csv"
    truth_csv.write_text("path,label\nphotos/astronaut/d.png,red\nphotos/blue/c.png,Blue\n", encoding="utf-8")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(truth_csv), ""))
    review.csv_action.trigger()
    report = review.assessment.report_now()
    assert (report.scored, report.top1_correct) == (2, 1)  # d.png is pale red: right; c.png is green: wrong
    assert report.cell("blue", "green") == 1

    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\n", encoding="utf-8")
    assert not review.use_truth_csv(str(bad))
    assert "needs a header" in window.statusBar().currentMessage()
    assert review.assessment.source == str(truth_csv), "a refused file leaves the truth in force"


def test_threshold_relabels_the_table_live_and_the_export_follows_the_contract(
    qtbot: QtBot, window: MainWindow, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_drop(qtbot, window, [tree])
    rows = window.results.results()
    confidences = sorted(row.confidence for row in rows)
    threshold = (confidences[1] + confidences[2]) / 2  # between the second and third: two rows below it
    below = {row.path for row in rows if row.confidence < threshold}
    assert len(below) == 2

    bar = window.review.threshold_bar
    bar.set_threshold(threshold)
    assert bar.threshold == pytest.approx(round(threshold * 100) / 100)
    threshold = bar.threshold  # the control's own step (whole percents)
    below = {row.path for row in rows if row.confidence < threshold}
    proxy = window.results_view.proxy
    labels = {proxy.index(r, FILE).data(): proxy.index(r, LABEL).data() for r in range(proxy.rowCount())}
    assert {name for name, label in labels.items() if label == UNKNOWN_LABEL} == {Path(p).name for p in below}
    # The count is made off the GUI thread and follows shortly.
    qtbot.waitUntil(lambda: bar.unknown_label.text() == f"{len(below)} of 4 unknown", timeout=5000)
    assert f"{len(below)} of 4 unknown" in window.statusBar().currentMessage()

    target = tmp_path / "out.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    window.export_action.trigger()
    with open(target, encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    by_path = {row["path"]: row for row in table}
    for row in rows:
        cells = by_path[row.path]
        assert cells["status"] == "ok"
        if row.path in below:
            assert cells["label"] == UNKNOWN_LABEL and cells["top1_label"] == row.predictions[0].label
        else:
            assert cells["label"] == row.predictions[0].label and cells["top1_label"] == ""

    bar.set_threshold(0.0)
    assert UNKNOWN_LABEL not in {proxy.index(r, LABEL).data() for r in range(proxy.rowCount())}
    qtbot.waitUntil(lambda: bar.unknown_label.text() == "", timeout=5000)


def test_walking_the_least_sure_rows_and_correcting_them(
    qtbot: QtBot, window: MainWindow, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    review = window.review
    run_drop(qtbot, window, [tree])
    rows = window.results.results()
    order = [row.path for row in sorted(rows, key=lambda row: row.confidence)]
    box = review.correction_box
    assert box.completer.model().stringList() == list(COLOUR_LABELS)

    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)  # Review least sure first
    assert window.results_view.proxy.sortColumn() != -1
    assert window.results.result(window.results_view.current_source_row()).path == order[0]
    assert box.edit.hasFocus()

    box.edit.setText("Dark")  # forgiving, as truth is: the label 'dark'
    qtbot.keyClick(box.edit, Qt.Key.Key_Return)
    assert window.results.result(window.results_view.current_source_row()).path == order[1], "Enter moves on"
    qtbot.keyClick(box.edit, Qt.Key.Key_Down)  # Down skips without setting
    assert window.results.result(window.results_view.current_source_row()).path == order[2]
    qtbot.keyClick(box.edit, Qt.Key.Key_Up)
    box.edit.setText("no such label")
    qtbot.keyClick(box.edit, Qt.Key.Key_Return)
    assert "not a label of this model" in window.statusBar().currentMessage()
    assert window.results.result(window.results_view.current_source_row()).path == order[1], "refused: stays"

    corrected = {row.path: row.corrected_label for row in window.results.results() if row.corrected_label}
    assert corrected == {order[0]: "dark"}
    report = review.assessment.report_now()
    assert (report.scored, report.top1_correct) == (1, 0), "a correction counts as truth"
    assert report.cell("dark", window.results.results()[[r.path for r in rows].index(order[0])].label) == 1

    target = tmp_path / "corrected.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    window.export_action.trigger()
    with open(target, encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == header(len(COLOUR_LABELS), corrections=True) and table[0][-1] == "corrected_label"
    cells = {row[0]: dict(zip(table[0], row)) for row in table[1:]}
    assert {path: row["corrected_label"] for path, row in cells.items() if row["corrected_label"]} == corrected
    assert cells[order[0]]["correct"] == "0"

    # Taken back: no truth left, no report.
    window.results_view._select_proxy_row(0)
    qtbot.mouseClick(box.clear_button, Qt.MouseButton.LeftButton)
    assert not any(row.corrected_label for row in window.results.results())
    assert review.assessment.report_now() is None
