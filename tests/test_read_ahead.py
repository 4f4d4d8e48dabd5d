"""The engine resolves an unset batch size, and the decode read-ahead is sized for the batch size in force.

A read-ahead sized once, at the start, from whatever number the front end had
(the window's settings default of 8 on a fresh profile) caps every batch of
the run at what it holds: the slider said 32, the batches held 16.
"""

from __future__ import annotations

import threading

from batch_classifier.engine.control import RunControl
from batch_classifier.engine.feeder import read_ahead_window
from batch_classifier.engine.pipeline import DEFAULT_BATCH_SIZE, RunConfig
from batch_classifier.engine.records import BatchOutcome
from support import PretendCuda, record_read_ahead_queues, tiny_classifier, wait_until, write_colour_images

COLOURS = ["red", "green", "blue", "dark"]


def test_an_unset_batch_size_runs_at_the_device_default_with_a_read_ahead_for_it(
    tiny_model, tmp_path, monkeypatch
) -> None:
    default = DEFAULT_BATCH_SIZE["cuda"]
    classifier = PretendCuda(
        RunConfig(model=str(tiny_model.path), labels=str(tiny_model.labels), device="cpu", max_wait_ms=0.0)
    )
    assert classifier.default_batch_size == default
    paths = [str(path) for path in write_colour_images(tmp_path, COLOURS * (default // 4 + 4))]
    queues = record_read_ahead_queues(monkeypatch)
    control = RunControl(None, 0.0)  # what a fresh profile's window sends: no batch size of its own
    control.pause()  # the read-ahead fills while the run waits to form its first batch
    outcomes: list[BatchOutcome] = []
    run = threading.Thread(target=classifier.classify, args=(paths, control, outcomes.append))
    run.start()
    try:
        wait_until(lambda: bool(queues) and queues[0].qsize() >= default, what="a whole batch decoded ahead")
    finally:
        control.resume()
        run.join(60)
    assert control.batch_size == default
    assert queues[0].maxsize == read_ahead_window(default, classifier.decode_workers)
    assert outcomes[0].stats.batch_size == default
    assert outcomes[0].stats.images == default, "the first batch is a full one"
    assert sum(len(outcome.results) for outcome in outcomes) == len(paths)


def test_the_read_ahead_grows_with_the_batch_size_during_a_run(tiny_model, tmp_path, monkeypatch) -> None:
    larger = 64
    classifier = tiny_classifier(tiny_model, batch_size=2, max_wait_ms=0.0)
    paths = [str(path) for path in write_colour_images(tmp_path, COLOURS * 40)]
    queues = record_read_ahead_queues(monkeypatch)
    control = classifier.new_control()
    sizes: list[int] = []

    def on_batch(outcome: BatchOutcome) -> None:
        sizes.append(outcome.stats.images)
        if len(sizes) == 1:
            control.set_batch_size(larger)  # the slider, mid-run
        elif len(sizes) == 2:
            wait_until(lambda: queues[0].qsize() >= larger, what=f"{larger} images decoded ahead")

    classifier.classify(paths, control, on_batch)
    assert sizes[0] <= 2
    assert sizes[2] == larger, "once the read-ahead holds a batch of the new size, that batch runs"
    assert sum(sizes) == len(paths)
