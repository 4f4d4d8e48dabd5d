"""A person's correction (the window's review) in the engine: it is the row's truth, it is scored,
it is the window's export's last column, and the sort follows it."""

from __future__ import annotations

import csv
import io

from batch_classifier.engine.accuracy import Scorecard
from batch_classifier.engine.csv_output import CORRECTION_COLUMN, format_rows, header
from batch_classifier.engine.records import ImageResult, Prediction
from batch_classifier.engine.sorting import ERRORS_FOLDER, UNKNOWN_FOLDER, items_from_results

LABELS = ("cat", "dog", "bird")


def row(path: str, label: str, confidence: float, **fields) -> ImageResult:
    return ImageResult(0, path, "ok", (Prediction(label, confidence), Prediction("bird", 0.05)), **fields)


def test_a_correction_is_the_truth_it_is_judged_against() -> None:
    plain = row("a.png", "cat", 0.9, true_label="dog")
    corrected = row("a.png", "cat", 0.9, true_label="dog", corrected_label="cat")
    assert (plain.truth, plain.correct) == ("dog", False)
    assert (corrected.truth, corrected.correct) == ("cat", True)
    assert row("b.png", "cat", 0.9, corrected_label="dog").correct is False  # a correction alone is truth too

    card = Scorecard(LABELS, top_k=2)
    card.add([corrected, row("b.png", "cat", 0.9, corrected_label="dog"), row("c.png", "dog", 0.8)])
    report = card.report()
    assert (report.scored, report.top1_correct, report.without_truth) == (2, 1, 1)
    assert report.cell("dog", "cat") == 1 and report.cell("cat", "cat") == 1


def test_the_window_export_appends_corrected_label_last_and_the_command_line_has_none() -> None:
    assert header(2)[-1] == "correct" and CORRECTION_COLUMN not in header(2)
    assert header(2, corrections=True) == [*header(2), "corrected_label"]
    line = format_rows([row("a.png", "cat", 0.9, corrected_label="=dog")], 2, with_header=False, corrections=True)
    cells = next(csv.reader(io.StringIO(line)))
    assert len(cells) == len(header(2, corrections=True))
    assert cells[-1] == "'=dog", "a correction is written as text, never as a formula"
    assert format_rows([row("a.png", "cat", 0.9)], 2, with_header=True).splitlines()[0] == ",".join(header(2))


def test_sorting_the_window_rows_follows_threshold_errors_and_corrections() -> None:
    rows = [
        row("/p/sure.png", "cat", 0.9, min_confidence=0.5),
        row("/p/unsure.png", "cat", 0.2, min_confidence=0.5),
        row("/p/fixed.png", "cat", 0.2, min_confidence=0.5, corrected_label="dog"),
        ImageResult(1, "/p/broken.png", "error", error="cannot decode"),
    ]
    assert [(item.source, item.folder) for item in items_from_results(rows)] == [
        ("/p/sure.png", "cat"), ("/p/unsure.png", UNKNOWN_FOLDER), ("/p/fixed.png", "dog"),
        ("/p/broken.png", ERRORS_FOLDER),
    ]
