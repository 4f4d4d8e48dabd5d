"""Compare models… in the window: two tiny models measured off the GUI thread, one curve each on the
throughput and memory plots, legends under the plots at the minimum size, and Stop."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from batch_classifier.engine.models import list_models
from batch_classifier.engine.sweep import SweepBudget
from batch_classifier.gui.main_window import MainWindow
from batch_classifier.gui.session import Activity, RunSession
from support import make_tiny_model

QUICK = SweepBudget(warmup=0, min_repeats=1, max_repeats=1, min_seconds=0.0)
COMPARE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return [str(make_tiny_model(tmp_path_factory.mktemp(name)).path) for name in ("first", "second")]


def open_with(window: MainWindow, models: list[str]):
    window.compare_action.trigger()
    dialog = window.compare_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.budget = QUICK
    dialog.sizes_edit.setText("1,2")
    for model in models:
        dialog.add_model_file(model)
    return dialog


def test_compare_draws_one_curve_per_model_and_keeps_legends_off_the_data(
    qtbot: QtBot, window: MainWindow, two_models: list[str]
) -> None:
    dialog = open_with(window, two_models)
    assert dialog.checked_models() == two_models
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.busy and not window.start_action.isEnabled() and not window.sweep_action.isEnabled()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=COMPARE_TIMEOUT_MS)

    comparison = dialog.comparison
    assert comparison is not None, dialog.status.text()
    assert [sweep.requested for sweep in comparison.sweeps] == two_models
    assert dialog.curves.models == two_models
    for sweep in comparison.sweeps:
        curve = dialog.curves.curve(sweep.requested)
        sizes, rates = curve.throughput.getData()
        assert list(sizes) == [0.0, 1.0], "batch sizes 1 and 2 on the log2 axis"
        assert list(rates) == [point.images_per_s for point in sweep.result.points]
        _, memory = curve.memory.getData()
        assert list(memory) == [point.memory.allocated_mb for point in sweep.result.points]
        best_x, _ = curve.best.getData()
        assert list(best_x) == [math.log2(sweep.result.best_batch_size)], "the best size is ringed"
    assert dialog.table.rowCount() == 2
    assert dialog.table.item(0, 4).text() == f"{comparison.sweeps[0].batching_gain:.2f}x"
    assert "Done: 2 models" in dialog.status.text()
    assert window.sweep_action.isEnabled(), "the window's sweep is free again"

    dialog.resize(dialog.minimumSize())
    qtbot.waitUntil(lambda: dialog.size() == dialog.minimumSize(), timeout=5000)
    for plot, legend in ((dialog.curves.size_plot, dialog.curves.size_legend),
                         (dialog.curves.memory_plot, dialog.curves.memory_legend)):
        assert legend.geometry().top() >= plot.geometry().bottom(), "the legend sits under its plot"
        assert legend.height() >= legend.heightForWidth(legend.width()), "and none of its text is cut off"
        assert len(legend.entries()) == 2
        assert plot.height() > 150, "the plot keeps room for its data"
    assert all(Path(model).name in " ".join(dialog.curves.memory_legend.entries()) for model in two_models)


def test_stop_ends_the_comparison_early_and_downloads_are_marked(
    qtbot: QtBot, window: MainWindow, two_models: list[str]
) -> None:
    dialog = open_with(window, two_models)
    dialog.start()
    dialog.stop()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=COMPARE_TIMEOUT_MS)
    assert dialog.comparison is not None and len(dialog.comparison.sweeps) < 2
    assert "Stopped after" in dialog.status.text()

    texts = {dialog.model_list.item(row).data(Qt.ItemDataRole.UserRole + 1): dialog.model_list.item(row).text()
             for row in range(dialog.model_list.count())}
    needing = [info.name for info in list_models() if not info.offline_ready]
    ready = [info.name for info in list_models() if info.offline_ready]
    assert all(texts[name].endswith("(download)") for name in needing)
    assert all(not texts[name].endswith("(download)") for name in ready)
    dialog.random_weights.setChecked(True)
    assert not any(dialog.model_list.item(row).text().endswith("(download)") for row in range(dialog.model_list.count()))

    dialog.sizes_edit.setText("1,two")
    dialog.start()
    assert not dialog.busy and "whole numbers" in dialog.status.text()


def test_a_comparison_does_not_start_while_a_run_goes(
    qtbot: QtBot, window: MainWindow, two_models: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog = open_with(window, two_models)
    monkeypatch.setattr(RunSession, "activity", property(lambda session: Activity.RUNNING))
    dialog.start()
    assert not dialog.busy and "A run or a sweep is going" in dialog.status.text()


def test_a_models_two_curves_are_drawn_alike_in_its_own_colour(qtbot: QtBot) -> None:
    """Throughput and memory curves of one model share pen, symbol and colour; the next model gets the next colour."""
    from PySide6.QtGui import QColor

    from batch_classifier.engine.sweep_chart import PALETTE
    from batch_classifier.gui.model_curves import ModelCurves

    curves = ModelCurves()
    qtbot.addWidget(curves)
    for number, model in enumerate(("first", "second")):
        curves.start_model(model)
        drawn = curves.curve(model)
        colour = QColor(*PALETTE[number])
        assert drawn.colour == colour
        assert drawn.throughput.getViewBox() is curves.size_plot.getViewBox()
        assert drawn.memory.getViewBox() is curves.memory_plot.getViewBox()
        for item in (drawn.throughput, drawn.memory):
            options = item.opts
            assert options["pen"].color() == colour and options["pen"].width() == 2
            assert (options["symbol"], options["symbolSize"], options["symbolBrush"], options["symbolPen"]) == (
                "o", 6, colour, None)
            assert item.getData()[0] is None or len(item.getData()[0]) == 0, "empty until the sweep measures"
