"""The detail pane reads its own preview of the selected image: sharp at its size, not a 64 px thumbnail blown up."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtGui import QColor, QPixmap
from pytestqt.qtbot import QtBot

from batch_classifier.engine.records import ImageResult, Prediction
from batch_classifier.gui.detail_pane import PREVIEW_SIZE, DetailPane

TIMEOUT_MS = 10_000


def test_the_selected_rows_preview_comes_from_its_file_at_the_panes_size(qtbot: QtBot, tmp_path: Path) -> None:
    photo = tmp_path / "wide.png"
    Image.new("RGB", (400, 300), (220, 30, 30)).save(photo)
    stand_in = QPixmap(64, 48)
    stand_in.fill(QColor(0, 200, 0))  # a thumbnail of another colour: what shows must come from the file
    pane = DetailPane()
    qtbot.addWidget(pane)
    result = ImageResult(0, str(photo), "ok", (Prediction("tabby", 0.9),), model="tiny", device="cpu", batch_size=1)

    with qtbot.waitSignal(pane.preview_shown, timeout=TIMEOUT_MS) as shown:
        pane.show_result(result, stand_in)
    assert shown.args == [str(photo)]
    preview = pane.preview.pixmap().toImage()
    ratio = pane.devicePixelRatioF()
    assert (preview.width(), preview.height()) == (round(PREVIEW_SIZE * ratio), round(PREVIEW_SIZE * ratio * 3 / 4))
    assert preview.pixelColor(10, 10).red() > 200, "read from the file, not the 64 px thumbnail scaled up"


def test_an_error_row_keeps_no_preview_and_a_late_one_never_replaces_the_next_selection(
    qtbot: QtBot, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    Image.new("RGB", (300, 300), (220, 30, 30)).save(first)
    Image.new("RGB", (300, 300), (30, 30, 220)).save(second)
    pane = DetailPane()
    qtbot.addWidget(pane)
    row = lambda path: ImageResult(0, str(path), "ok", (Prediction("tabby", 0.9),), batch_size=1)  # noqa: E731
    with qtbot.waitSignal(pane.preview_shown, timeout=TIMEOUT_MS, check_params_cb=lambda path: path == str(second)):
        pane.show_result(row(first), None)
        pane.show_result(row(second), None)
    assert pane.preview.pixmap().toImage().pixelColor(5, 5).blue() > 200
    pane.show_result(ImageResult(1, str(first), "error", error="cannot identify image file"), None)
    assert pane.preview.pixmap().isNull()
