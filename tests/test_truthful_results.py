"""Rows that tell the truth about what the model did (issue 13, items 1-3 and 8).

The models come from ``misbehaving_models.py``: each passes the load-time
probe and misbehaves only on real images or real batches, so only the
run itself can catch it.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from batch_classifier.cli import main
from batch_classifier.engine.pipeline import RunSummary
from batch_classifier.engine.records import BatchOutcome, ImageResult
from batch_classifier.engine.runner import NON_FINITE
from batch_classifier.engine.sources import UnreadableFolder
from batch_classifier.engine.sweep import SweepBudget, sweep_batch_sizes
from support import TinyModel, tiny_classifier, write_colour_images

QUICK = SweepBudget(warmup=0, min_repeats=1, max_repeats=1, min_seconds=0.0)


def run(
    model: TinyModel, paths: list[Path], batch_size: int
) -> tuple[list[ImageResult], list[BatchOutcome], RunSummary]:
    """Everything in batches of ``batch_size``: the max wait is long enough for every batch to fill."""
    classifier = tiny_classifier(model, batch_size=batch_size, max_wait_ms=2000, top_k=2)
    outcomes: list[BatchOutcome] = []
    summary = classifier.classify([str(path) for path in paths], on_batch=outcomes.append)
    return [row for outcome in outcomes for row in outcome.results], outcomes, summary


def assert_counted(rows: list[ImageResult], summary: RunSummary) -> None:
    """The summary counts what the rows say: every error row is an error, every other row a real probability."""
    assert summary.images == len(rows)
    assert summary.errors == sum(row.status == "error" for row in rows)
    for row in rows:
        if row.status == "ok":
            assert all(0.0 <= p.confidence <= 1.0 for p in row.predictions), row
        else:
            assert row.error and "\n" not in row.error and not row.predictions, row


# --------------------------------------------------------------------------- item 1: non-finite scores


@pytest.mark.parametrize("kind", ["nan_on_red", "inf_on_red"])
def test_non_finite_scores_are_error_rows_and_cost_no_neighbour(misbehaving_model, tmp_path: Path, kind: str) -> None:
    colours = ["red", "green", "red", "blue", "dark", "green"]
    rows, outcomes, summary = run(misbehaving_model(kind), write_colour_images(tmp_path, colours), batch_size=3)
    assert [(row.status, row.error) for row in rows if row.status == "error"] == [("error", NON_FINITE)] * 2
    assert [row.label for row in rows if row.status == "ok"] == ["green", "blue", "dark", "green"]
    assert [row.path.endswith("red.png") for row in rows] == [row.status == "error" for row in rows]
    assert_counted(rows, summary)
    assert summary.errors == 2 and sum(outcome.stats.errors for outcome in outcomes) == 2


def test_non_finite_rows_are_error_rows_in_the_csv(misbehaving_model, tmp_path: Path) -> None:
    model = misbehaving_model("nan_on_red")
    images = write_colour_images(tmp_path / "in", ["red", "blue"])
    out = tmp_path / "out.csv"
    assert main(["classify", "--model", str(model.path), "--labels", str(model.labels), "--device", "cpu",
                 "--quiet", "--csv", str(out), *map(str, images)]) == 0
    with open(out, encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(row["status"], row["confidence"], row["error"]) for row in table][0] == ("error", "", NON_FINITE)
    assert table[1]["status"] == "ok" and 0 <= float(table[1]["confidence"]) <= 1


# --------------------------------------------------------------------------- item 2: output of the wrong shape


def test_output_shorter_than_the_batch_makes_error_rows_that_say_so(misbehaving_model, tmp_path: Path) -> None:
    rows, _, summary = run(misbehaving_model("one_row_only"), write_colour_images(tmp_path, ["red"] * 3), batch_size=3)
    assert [row.status for row in rows] == ["error"] * 3
    assert {row.error for row in rows} == {"the model returned scores of shape (1, 4) for 3 images; expected (3, 4)"}
    assert_counted(rows, summary)
    assert summary.errors == 3


def test_output_with_the_wrong_number_of_classes_makes_error_rows(misbehaving_model, tmp_path: Path) -> None:
    rows, _, summary = run(
        misbehaving_model("extra_class_when_batched"), write_colour_images(tmp_path, ["red", "blue"]), batch_size=2
    )
    assert {row.error for row in rows} == {"the model returned scores of shape (2, 5) for 2 images; expected (2, 4)"}
    assert_counted(rows, summary)


# --------------------------------------------------------------------------- item 3: a model that raises


def test_a_model_that_raises_above_batch_1_still_classifies_every_image(misbehaving_model, tmp_path: Path) -> None:
    """Batches that raise are split until they run: every image classified, and the memory cap untouched."""
    colours = ["red", "green", "blue", "dark", "red"]
    classifier = tiny_classifier(misbehaving_model("raises_above_1"), batch_size=5, max_wait_ms=2000)
    outcomes: list[BatchOutcome] = []
    summary = classifier.classify([str(path) for path in write_colour_images(tmp_path, colours)], None, outcomes.append)
    rows = [row for outcome in outcomes for row in outcome.results]
    assert [row.label for row in rows] == colours and summary.errors == 0
    assert classifier.runner.oom_cap is None, "only running out of memory may lower the batch-size cap"
    assert summary.oom_cap is None and "capped" not in summary.describe()
    assert outcomes[0].stats.images == 5


def test_the_images_a_model_raises_on_become_error_rows_and_the_run_goes_on(misbehaving_model, tmp_path: Path) -> None:
    colours = ["red", "blue", "green", "dark", "blue", "red", "green"]
    rows, outcomes, summary = run(misbehaving_model("raises_on_blue"), write_colour_images(tmp_path, colours), 4)
    assert len(outcomes) == 2, "both batches ran: the first one's failure did not end the run"
    assert [row.status for row in rows] == ["error" if colour == "blue" else "ok" for colour in colours]
    assert [row.label for row in rows if row.status == "ok"] == [c for c in colours if c != "blue"]
    failed = {row.error for row in rows if row.status == "error"}
    assert len(failed) == 1
    (reason,) = failed
    assert reason.startswith("the model failed: ") and "cannot handle blue" in reason and "\n" not in reason
    assert "Traceback" not in reason
    assert_counted(rows, summary)


def test_the_command_line_writes_every_row_when_the_model_raises(misbehaving_model, tmp_path: Path, capsys) -> None:
    model = misbehaving_model("raises_on_blue")
    images = write_colour_images(tmp_path / "in", ["red", "blue", "green"])
    out = tmp_path / "out.csv"
    code = main(["classify", "--model", str(model.path), "--labels", str(model.labels), "--device", "cpu",
                 "--batch-size", "3", "--max-wait-ms", "2000", "--quiet", "--csv", str(out), str(tmp_path / "in")])
    assert code == 0
    error = capsys.readouterr().err
    assert "Traceback" not in error and "done: 3 images, 1 error:" in error
    with open(out, encoding="utf-8", newline="") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["ok", "error", "ok"]


def test_the_sweep_stops_at_the_first_batch_size_the_model_fails_on(misbehaving_model, tmp_path: Path) -> None:
    classifier = tiny_classifier(misbehaving_model("raises_above_2"))
    images = [str(path) for path in write_colour_images(tmp_path, ["red", "green"])]
    result = sweep_batch_sizes(classifier, images, [1, 2, 4, 8], budget=QUICK)
    assert [point.batch_size for point in result.points] == [1, 2, 4]
    assert [point.measured for point in result.points] == [True, True, False]
    assert "at most 2 images per batch" in result.points[-1].failure
    assert result.best_batch_size in (1, 2)
    assert classifier.runner.oom_cap is None


# --------------------------------------------------------------------------- item 8: the summary's numbers


def test_a_run_with_nothing_classified_reports_no_rate_and_no_batch_size(tiny_model, tmp_path: Path) -> None:
    empties = []
    for number in range(6):
        empties.append(tmp_path / f"empty-{number}.png")
        empties[-1].write_bytes(b"")
    _, _, summary = run(tiny_model, empties, batch_size=4)
    assert (summary.images, summary.errors, summary.classified) == (6, 6, 0)
    assert summary.images_per_s == 0.0 and summary.mean_batch_size == 0.0
    text = summary.describe()
    assert text.startswith("6 images, 6 errors: none classified, ")
    assert "img/s" not in text and "mean batch size" not in text


def test_the_rate_and_mean_batch_size_count_only_classified_images(tiny_model, tmp_path: Path) -> None:
    """Two empty files make a batch of their own that never reaches the model: it is not a batch of 0."""
    empties = [tmp_path / "a-empty.png", tmp_path / "b-empty.png"]
    for path in empties:
        path.write_bytes(b"")
    good = write_colour_images(tmp_path / "good", ["red", "green"])
    rows, outcomes, summary = run(tiny_model, [*empties, *good], batch_size=2)
    assert [outcome.stats.images for outcome in outcomes] == [0, 2]
    assert summary.mean_batch_size == 2.0
    assert summary.classified == 2
    assert math.isclose(summary.images_per_s * summary.elapsed_s, 2.0, rel_tol=1e-6)
    assert summary.describe().startswith("4 images, 2 errors: 2 classified at ")
    assert_counted(rows, summary)


def test_the_summary_line_with_a_memory_cap() -> None:
    """describe() is the one wording, for the command line and the window alike."""
    summary = RunSummary(images=10, errors=4, elapsed_s=2.0, images_per_s=3.0, mean_batch_size=3.0, batches=3,
                         cancelled=False, oom_cap=2)
    assert summary.describe() == (
        "10 images, 4 errors: 6 classified at 3.0 img/s, mean batch size 3.0, 2.0 s, "
        "batch size capped at 2 after running out of memory"
    )


def test_a_count_of_one_is_said_in_the_singular() -> None:
    """The summary is read by people: "1 image, 1 error", never "1 images, 1 errors"."""
    summary = RunSummary(images=1, errors=1, elapsed_s=0.5, images_per_s=0.0, mean_batch_size=0.0, batches=0,
                         cancelled=False, oom_cap=None, unreadable_folders=(UnreadableFolder("/a", "denied"),))
    assert summary.describe() == "1 image, 1 error: none classified, 0.5 s, 1 folder could not be read"
