"""The table model and its proxy: rows kept exactly, sorted and filtered without losing run order."""

from __future__ import annotations

import gc
from dataclasses import replace

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from batch_classifier.engine.records import ImageResult, Prediction
from batch_classifier.gui.results_model import (
    CONFIDENCE,
    ERROR_TINT,
    FILE,
    LABEL,
    STATUS,
    THUMBNAIL,
    ResultsFilter,
    ResultsModel,
)
from batch_classifier.gui.thumbnails import encode_thumbnail

import torch


def result(index: int, name: str, label: str | None, confidence: float = 0.0) -> ImageResult:
    if label is None:
        return ImageResult(index, f"/photos/{name}", "error", error="cannot identify image file", batch_size=0)
    predictions = (Prediction(label, confidence), Prediction("runner-up", (1 - confidence) / 2))
    return ImageResult(index, f"/photos/{name}", "ok", predictions, model="m", device="cpu", batch_size=2)


ROWS = [
    result(0, "b.jpg", "tabby", 0.40),
    result(1, "a.jpg", "espresso", 0.95),
    result(2, "broken.jpg", None),
    result(3, "c.jpg", "tabby", 0.70),
]


def filled(qtbot: QtBot) -> tuple[ResultsModel, ResultsFilter]:
    model = ResultsModel()
    proxy = ResultsFilter()
    proxy.setSourceModel(model)
    with qtbot.waitSignal(model.rowsInserted, timeout=1000):
        model.append_batch(ROWS[:2], [None, None])
    model.append_batch(ROWS[2:], [None, encode_thumbnail(torch.full((64, 48, 3), 128, dtype=torch.uint8))])
    return model, proxy


def column(proxy: ResultsFilter, number: int) -> list[str]:
    return [proxy.index(row, number).data() for row in range(proxy.rowCount())]


def test_rows_come_back_exactly_and_in_run_order(qtbot: QtBot) -> None:
    model, _ = filled(qtbot)
    assert model.results() == ROWS
    gc.collect()
    assert not any(gc.is_tracked(row) for row in model._rows), "rows must stay out of the cyclic GC's sight"


def test_display_tooltip_and_error_rows(qtbot: QtBot) -> None:
    model, proxy = filled(qtbot)
    assert column(proxy, FILE) == ["b.jpg", "a.jpg", "broken.jpg", "c.jpg"]
    assert column(proxy, CONFIDENCE) == ["40.0 %", "95.0 %", "", "70.0 %"]
    assert proxy.index(2, LABEL).data() == "cannot identify image file"
    assert proxy.index(2, STATUS).data() == "error"
    assert proxy.index(2, FILE).data(Qt.ItemDataRole.BackgroundRole) == ERROR_TINT
    assert proxy.index(0, FILE).data(Qt.ItemDataRole.BackgroundRole) is None
    tooltip = proxy.index(1, LABEL).data(Qt.ItemDataRole.ToolTipRole)
    assert "/photos/a.jpg" in tooltip and "95.0 %  espresso" in tooltip and "runner-up" in tooltip
    thumbnail = proxy.index(3, THUMBNAIL).data(Qt.ItemDataRole.DecorationRole)
    assert (thumbnail.width(), thumbnail.height()) == (48, 64)
    assert proxy.index(0, THUMBNAIL).data(Qt.ItemDataRole.DecorationRole) is None


def test_sorting_by_confidence_then_back_to_run_order(qtbot: QtBot) -> None:
    _, proxy = filled(qtbot)
    proxy.sort(CONFIDENCE, Qt.SortOrder.DescendingOrder)
    assert column(proxy, FILE) == ["a.jpg", "c.jpg", "b.jpg", "broken.jpg"]
    proxy.sort(-1)
    assert column(proxy, FILE) == ["b.jpg", "a.jpg", "broken.jpg", "c.jpg"]


def test_filters_match_name_or_label_and_errors_only(qtbot: QtBot) -> None:
    _, proxy = filled(qtbot)
    proxy.set_text("TABBY")
    assert column(proxy, FILE) == ["b.jpg", "c.jpg"]
    proxy.set_text("a.jpg")
    assert column(proxy, FILE) == ["a.jpg"]
    proxy.set_text("")
    proxy.set_errors_only(True)
    assert column(proxy, FILE) == ["broken.jpg"]
    proxy.set_text("tabby")
    assert proxy.rowCount() == 0


def test_done_paths_are_the_files_rows_name_resolved_by_the_resume_rule(
    qtbot: QtBot, tmp_path, monkeypatch
) -> None:
    """Start after Cancel skips what ``--resume`` would: files, however spelled; error rows are retried."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (tmp_path / "link.jpg").symlink_to(folder / "a.jpg")
    monkeypatch.chdir(tmp_path)
    model = ResultsModel()
    ok = ROWS[0]
    model.append_batch(
        [
            ImageResult(0, "link.jpg", "ok", ok.predictions),
            ImageResult(1, "photos/../photos/b.jpg", "ok", ok.predictions),
            ImageResult(2, "photos/broken.jpg", "error", error="cannot identify image file"),
        ],
        [None, None, None],
    )
    assert model.done_paths() == {str(folder / "a.jpg"), str(folder / "b.jpg")}


def test_a_file_spelled_otherwise_has_one_row_as_the_resume_rule_says(qtbot: QtBot, tmp_path, monkeypatch) -> None:
    """Relative and absolute spellings and a folder symlink name one file: one row, the newest, where it was."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(b"")
    (tmp_path / "link-to-photos").symlink_to(folder)
    monkeypatch.chdir(tmp_path)
    model = ResultsModel()
    first, second = result(0, "a.jpg", "tabby", 0.4), result(1, "b.jpg", "tabby", 0.4)
    model.append_batch([replace(first, path="photos/a.jpg"), replace(second, path=str(folder / "b.jpg"))], [None] * 2)
    model.set_correction(0, "espresso")
    newer = result(2, "a.jpg", "espresso", 0.9)
    model.append_batch([replace(newer, path=str(tmp_path / "link-to-photos" / "a.jpg")),
                        replace(second, path="./photos/../photos/b.jpg", status="error", predictions=())], [None] * 2)
    rows = model.results()
    assert [(row.path, row.label, row.corrected_label) for row in rows] == [
        (str(tmp_path / "link-to-photos" / "a.jpg"), "espresso", "espresso"),
        ("./photos/../photos/b.jpg", "", ""),
    ]
    assert model.rowCount() == 2 and model.error_count == 1 and model.corrections == 1
    assert model.done_paths() == {str(folder / "a.jpg")}
