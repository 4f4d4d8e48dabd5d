"""The window's layout holds from its minimum size up: nothing cut, titles whole, legends off the data."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel, QWidget
from pytestqt.qtbot import QtBot

from batch_classifier.engine.fidelity import PREPROCESS_CHOICES
from batch_classifier.gui.main_window import MainWindow

from .test_plots import stats


def cut_off(root: QWidget) -> list[str]:
    """Every visible label of ``root`` that shows less than its text, and every pane smaller than its minimum."""
    problems = []
    for label in root.findChildren(QLabel):
        if not label.isVisibleTo(root) or not label.text():
            continue
        if label.wordWrap():
            needed = label.heightForWidth(label.contentsRect().width()) if label.hasHeightForWidth() else 0
            if needed > label.contentsRect().height() + 1:
                problems.append(f"{label.text()[:40]!r}: {label.height()} px high, needs {needed}")
        elif label.width() < label.minimumSizeHint().width():
            problems.append(f"{label.text()[:40]!r}: {label.width()} px wide, needs {label.minimumSizeHint().width()}")
    return problems


@pytest.mark.parametrize("size", [(960, 640), (1024, 700), (1600, 1000)])
def test_the_window_shows_every_label_plot_title_and_legend_whole(
    qtbot: QtBot, window: MainWindow, size: tuple[int, int]
) -> None:
    for index in range(12):
        window.plots.add_batch(stats(index, 2 ** (index % 6), 123.0 * (index + 1), mb=1400.0 + index))
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=3000)
    qtbot.wait(600)  # every plot redrawn

    central = window.centralWidget()
    for pane in (central, window.plots, window.drop_zone, window.results_view):
        hint = pane.minimumSizeHint()
        assert hint.width() <= pane.width() and hint.height() <= pane.height(), (
            f"{type(pane).__name__} is {pane.width()}x{pane.height()}, below its minimum {hint.width()}x{hint.height()}"
        )
    plots = window.plots
    assert plots.side_by_side == (size[0] >= 1280), "side by side when there is room, tabs below"
    for plot in (plots.time_plot, plots.size_plot, plots.memory_plot):
        title = plot.getPlotItem().titleLabel
        if plots.side_by_side:
            assert title.item.boundingRect().width() <= plot.width(), f"title {plots.title(plot)!r} is cut"
        else:
            assert not title.isVisible(), "in tabs the tab names the plot, and the plot keeps the height"
    if not plots.side_by_side:
        assert plots.tabs.tabBar().sizeHint().width() <= plots.tabs.width(), "every tab's name in full"
        names = [plots.tabs.tabText(i) for i in range(3)]
        assert names == [plots.title(plot) for plot in (plots.time_plot, plots.size_plot, plots.memory_plot)]
    assert cut_off(central) == []


def small_window_with_long_status_labels(qtbot: QtBot, window: MainWindow, size: tuple[int, int]) -> None:
    """The window at ``size`` with the memory and device labels as long as a 64-core machine makes them."""
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=3000)
    window.memory_label.setText("Process memory (no CUDA): 1,027 MB")
    window.device_label.setText("CPU (AMD EPYC 7B13 64-Core Processor, 2 cores) · onnxruntime")


def show_five_predictions(window: MainWindow) -> None:
    """A selected row as the detail pane shows it: a long path, five predictions and the run's line."""
    from batch_classifier.engine.records import ImageResult, Prediction

    labels = ("espresso", "cup", "consomme", "chocolate sauce", "coffee mug")
    window.detail.show_result(ImageResult(
        0, "/photos/a/rather/long/folder/name/for/a/photo/coffee.png", "ok",
        tuple(Prediction(label, 0.5 / (rank + 1)) for rank, label in enumerate(labels)),
        model="efficientnet_lite0", device="cpu", batch_size=4), None)


@pytest.mark.parametrize("size", [(960, 640), (1024, 700)])
@pytest.mark.parametrize("mode", PREPROCESS_CHOICES)
def test_a_small_window_shows_the_preprocess_hint_whole_under_the_runtime_row(
    qtbot: QtBot, window: MainWindow, size: tuple[int, int], mode: str
) -> None:
    """Under the Runtime row, Fast's hint takes three lines in the narrow settings column; the form gave it two
    and cut the first and last (Qt's form does not ask a wrapped label for its height at a width). With a row's
    five predictions in the detail pane below, the form was squeezed and the hint hid under its neighbours."""
    show_five_predictions(window)
    controls = window.controls
    controls.preprocess_combo.setCurrentIndex(controls.preprocess_combo.findData(mode))
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=3000)
    note = controls.preprocess_note
    qtbot.waitUntil(lambda: note.height() >= note.heightForWidth(note.width()), timeout=5000)
    assert note.geometry().bottom() < controls.batch_slider.geometry().top(), "the hint ends above the next row"
    assert controls.runtime_combo.geometry().bottom() < note.geometry().top()
    assert cut_off(window.centralWidget()) == []


@pytest.mark.parametrize("size", [(960, 640), (1024, 700)])
def test_a_small_window_cuts_neither_the_accuracy_line_nor_a_top_k_line_nor_the_progress_bar(
    qtbot: QtBot, window: MainWindow, size: tuple[int, int]
) -> None:
    small_window_with_long_status_labels(qtbot, window, size)
    accuracy = window.review.accuracy_label
    accuracy.setText("accuracy: top-1 66.7% (2 of 3), top-5 100.0% · 1,234 not scored")
    show_five_predictions(window)
    area, text = window.detail.text_area, window.detail.text
    scroll = area.verticalScrollBar()
    # Laid out (a smaller preview lets the column lay out again, so it can take a few turns of the loop).
    # At 1024x700 every line shows beside a smaller preview; at the 960x640 minimum the text scrolls to each.
    reachable = (lambda: scroll.maximum() == 0) if size == (1024, 700) else (
        lambda: area.viewport().height() + scroll.maximum() >= text.heightForWidth(text.width()))
    qtbot.waitUntil(lambda: reachable() and text.height() >= text.heightForWidth(text.width()), timeout=5000)
    assert accuracy.isVisible() and accuracy.width() >= accuracy.sizeHint().width(), "the accuracy line is whole"
    status = window.statusBar()
    for widget in (window.memory_label, window.device_label, window.progress):
        assert widget.geometry().right() < status.width() and widget.width() >= widget.minimumSizeHint().width()
    bar = window.progress.bar
    assert bar.width() >= bar.minimumWidth(), "the progress bar keeps its width"
    device = window.device_label
    assert device.elided == (device.width() < device.sizeHint().width())
    assert not device.elided or device.text() in device.toolTip(), "an elided label's whole text is in its tooltip"


@pytest.mark.parametrize("size", [(960, 640), (1024, 700)])
def test_the_status_message_keeps_its_share_beside_long_permanent_labels(
    qtbot: QtBot, window: MainWindow, size: tuple[int, int]
) -> None:
    """Qt paints a message only in what the permanent labels leave: at 1024 px a run's summary read "Done: 5 im"."""
    from batch_classifier.gui.message_bar import MESSAGE_SHARE

    small_window_with_long_status_labels(qtbot, window, size)
    status = window.statusBar()
    summary = "Done: 5 images, 1 error: 4 classified at 18.6 img/s, mean batch size 1.3, 0.2 s"
    status.showMessage(summary)
    message = status.message
    labels = (window.memory_label, window.device_label, window.progress)
    qtbot.waitUntil(lambda: all(label.width() >= label.minimumSizeHint().width() for label in labels), timeout=3000)
    assert message.width() >= int(MESSAGE_SHARE * status.width()), "the message keeps its share"
    assert message.geometry().right() < window.memory_label.geometry().left(), "the labels do not cover it"
    assert not message.elided or summary in message.toolTip(), "an elided message is whole in its tooltip"

    status.showMessage("Exported 4 rows to /tmp/out.csv", 50)
    assert status.currentMessage() == "Exported 4 rows to /tmp/out.csv"
    qtbot.waitUntil(lambda: status.currentMessage() == summary, timeout=3000)
