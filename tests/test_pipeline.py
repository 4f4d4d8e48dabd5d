"""The pipeline end to end on CPU: order, live batch size, out-of-memory recovery, GPU-decode logic."""

from __future__ import annotations

import threading
import time

from batch_classifier.engine import feeder
from batch_classifier.engine.pipeline import Classifier
from batch_classifier.engine.records import BatchOutcome, ImageResult
from support import OutOfMemoryAbove, tiny_classifier, write_colour_images

COLOURS = ["red", "green", "blue", "dark"]


def collect(classifier: Classifier, paths, control=None) -> tuple[list[ImageResult], list[BatchOutcome]]:
    outcomes: list[BatchOutcome] = []
    classifier.classify([str(path) for path in paths], control, outcomes.append)
    return [row for outcome in outcomes for row in outcome.results], outcomes


def test_rows_keep_input_order_and_are_correct(tiny_model, tmp_path) -> None:
    colours = COLOURS * 10
    paths = write_colour_images(tmp_path, colours)
    rows, outcomes = collect(tiny_classifier(tiny_model, batch_size=4, max_wait_ms=50), paths)
    assert [row.index for row in rows] == list(range(len(colours)))
    assert [row.label for row in rows] == colours
    assert all(outcome.stats.images <= 4 for outcome in outcomes)
    assert outcomes[0].stats.warmup and not any(outcome.stats.warmup for outcome in outcomes[1:])


def test_batch_size_change_applies_to_the_next_batch(tiny_model, tmp_path) -> None:
    paths = write_colour_images(tmp_path, COLOURS * 12)
    classifier = tiny_classifier(tiny_model, batch_size=2, max_wait_ms=200)
    control = classifier.new_control()
    sizes: list[int] = []

    def on_batch(outcome: BatchOutcome) -> None:
        sizes.append(outcome.stats.images)
        if len(sizes) == 2:
            control.set_batch_size(8)

    classifier.classify([str(path) for path in paths], control, on_batch)
    assert sizes[:2] == [2, 2]
    assert sizes[2] == 8
    assert sum(sizes) == 48


def test_out_of_memory_splits_the_batch_and_lowers_the_cap(tiny_model, tmp_path) -> None:
    colours = COLOURS * 6
    paths = write_colour_images(tmp_path, colours)
    classifier = tiny_classifier(tiny_model, batch_size=16, max_wait_ms=500)
    failing = OutOfMemoryAbove(classifier.runner.forward, limit=5)
    classifier.runner.forward = failing
    rows, outcomes = collect(classifier, paths)
    assert [row.label for row in rows] == colours, "no image lost, duplicated or reordered"
    assert all(row.status == "ok" for row in rows)
    assert classifier.runner.oom_cap is not None and classifier.runner.oom_cap <= 5
    first_fit = next(number for number, size in enumerate(failing.calls) if size <= 5)
    assert max(failing.calls[first_fit:]) <= 5, "once a size fits, no larger batch is tried again"
    assert all(outcome.stats.batch_size <= 5 for outcome in outcomes[1:])


def test_an_image_too_big_even_alone_becomes_an_error_row(tiny_model, tmp_path) -> None:
    paths = write_colour_images(tmp_path, ["red", "blue", "green"])
    classifier = tiny_classifier(tiny_model, batch_size=3, max_wait_ms=500)
    classifier.runner.forward = OutOfMemoryAbove(classifier.runner.forward, limit=0)
    rows, _ = collect(classifier, paths)
    assert [row.status for row in rows] == ["error"] * 3
    assert all("out of memory" in row.error for row in rows)


def test_cancel_keeps_finished_batches_and_stops(tiny_model, tmp_path) -> None:
    paths = write_colour_images(tmp_path, COLOURS * 10)
    classifier = tiny_classifier(tiny_model, batch_size=2, max_wait_ms=0)
    control = classifier.new_control()
    delivered: list[ImageResult] = []

    def on_batch(outcome: BatchOutcome) -> None:
        delivered.extend(outcome.results)
        if len(delivered) >= 6:
            control.cancel()

    summary = classifier.classify([str(path) for path in paths], control, on_batch)
    assert summary.cancelled
    assert [row.index for row in delivered] == list(range(len(delivered)))
    assert 6 <= len(delivered) < 40
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("decode")]


def test_thumbnails_only_when_asked_for(tiny_model, tmp_path) -> None:
    """The window shows thumbnails; the command line turns them off and its rows carry none."""
    paths = write_colour_images(tmp_path, COLOURS, size=(128, 96))
    with_thumbnails, _ = collect(tiny_classifier(tiny_model), paths)
    without, _ = collect(tiny_classifier(tiny_model, thumbnails=False), paths)
    assert all(row.thumbnail is not None and row.thumbnail.shape == (48, 64, 3) for row in with_thumbnails)
    assert all(row.thumbnail is None for row in without)
    assert [row.label for row in without] == [row.label for row in with_thumbnails] == COLOURS


def test_a_bug_in_the_decode_stage_stops_the_run_instead_of_hanging_it(tiny_model, tmp_path, monkeypatch) -> None:
    """Bad files become rows; a bug is different: the run must end and raise it, never wait forever."""
    paths = write_colour_images(tmp_path, ["red", "blue"])

    def broken_decoder(*args):  # type: ignore[no-untyped-def]
        time.sleep(0.2)  # still busy when the walk ends, so the failure surfaces after it
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(feeder, "decode_file", broken_decoder)
    classifier = tiny_classifier(tiny_model, batch_size=2)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            classifier.classify([str(path) for path in paths])
        except RuntimeError as error:
            raised.append(error)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive(), "the run hung after its decode stage died"
    assert [str(error) for error in raised] == ["decoder bug"]
