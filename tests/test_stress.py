"""Start, cancel, pause and resize runs from other threads, over and over: no deadlock, no lost or doubled rows.

Every wait is bounded, so a deadlock fails the test instead of hanging it.
After every run the pipeline's threads (the feeder and the decode pool, all
named "decode...") must be gone.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import torch

import corpus
from batch_classifier.engine.control import RunControl
from batch_classifier.engine.pipeline import Classifier, RunConfig, RunSummary
from batch_classifier.engine.records import BatchOutcome
from batch_classifier.engine.sources import SourceItem

JOIN_TIMEOUT_S = 30.0
IMAGES = 60


@pytest.fixture(scope="module", params=["pillow", "batched-jpeg"])
def decode_path(request: pytest.FixtureRequest) -> str:
    """PNGs through Pillow; or JPEGs through the GPU path's gathering and batched decode, run on the CPU."""
    return request.param


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory, decode_path: str) -> Classifier:
    model, labels = corpus.make_tiny_model(tmp_path_factory.mktemp("model"))
    classifier = Classifier(RunConfig(model=str(model), labels=str(labels), device="cpu", top_k=2, decode_workers=2))
    if decode_path == "batched-jpeg":
        classifier.jpeg_device = torch.device("cpu")
    return classifier


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, decode_path: str) -> list[str]:
    folder = tmp_path_factory.mktemp("images")
    suffix = ".jpg" if decode_path == "batched-jpeg" else ".png"
    paths = []
    for i in range(IMAGES):
        path = folder / f"{i:03d}{suffix}"
        if i % 13 == 5:
            path.write_bytes(b"not an image")  # error rows go through the same path
        else:
            corpus.noise_image(48, 32, seed=i).save(path)
        paths.append(str(path))
    return paths


def _decode_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("decode")]


class Run:
    """One ``classify`` call in its own thread, its rows collected batch by batch."""

    def __init__(self, classifier: Classifier, paths: list[str], control: RunControl,
                 on_batch: Callable[[BatchOutcome], None] | None = None) -> None:
        self.batches: list[BatchOutcome] = []
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None

        def deliver(outcome: BatchOutcome) -> None:
            self.batches.append(outcome)
            if on_batch is not None:
                on_batch(outcome)

        def target() -> None:
            try:
                self.summary = classifier.classify(paths, control, deliver)
            except BaseException as error:  # noqa: BLE001 - reported by finish()
                self.error = error

        self.thread = threading.Thread(target=target, name="stress-run", daemon=True)
        self.thread.start()

    def finish(self) -> list[int]:
        self.thread.join(JOIN_TIMEOUT_S)
        assert not self.thread.is_alive(), f"run did not end within {JOIN_TIMEOUT_S} s: deadlock"
        assert self.error is None, repr(self.error)
        leftover = _decode_threads()
        assert not leftover, f"pipeline threads still running after the run: {leftover}"
        return [row.index for batch in self.batches for row in batch.results]


def _check_rows(indices: list[int], summary: RunSummary, paths: list[str], batches: list[BatchOutcome]) -> None:
    assert len(indices) == len(set(indices)), "a row was delivered twice"
    if summary.cancelled:
        assert indices == list(range(len(indices))), "a cancelled run delivers a prefix of the inputs, in order"
    else:
        assert indices == list(range(len(paths))), "a completed run delivers every input exactly once, in order"
    for batch in batches:
        for row in batch.results:
            assert row.path == paths[row.index]
    assert summary.images == len(indices)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_start_cancel_start_cycles_with_live_batch_size_changes(
    classifier: Classifier, images: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    completed = cancelled = 0
    for cycle in range(30):
        control = classifier.new_control()
        control.set_batch_size(rng.randint(1, 8))
        control.set_max_wait_ms(rng.choice([0.0, 1.0, 5.0, 20.0]))
        stop_fiddling = threading.Event()
        cancel_after_batches = rng.choice([None, 0, 1, 2, 5])

        def on_batch(outcome: BatchOutcome, limit: int | None = cancel_after_batches) -> None:
            if limit is not None and outcome.stats.batch_index + 1 >= limit:
                control.cancel()

        def fiddle() -> None:
            while not stop_fiddling.is_set():
                control.set_batch_size(rng.randint(1, 16))
                if rng.random() < 0.2:
                    control.set_max_wait_ms(rng.choice([0.0, 2.0, 10.0]))
                if rng.random() < 0.1:
                    control.pause()
                    time.sleep(0.005)
                    control.resume()
                time.sleep(rng.uniform(0.0, 0.01))

        fiddler = threading.Thread(target=fiddle, name="stress-fiddler", daemon=True)
        fiddler.start()
        run = Run(classifier, images, control, on_batch)
        if cancel_after_batches is None and cycle % 3 == 0:
            time.sleep(rng.uniform(0.0, 0.3))  # cancel from outside, at a random moment
            control.cancel()
        indices = run.finish()
        stop_fiddling.set()
        fiddler.join(JOIN_TIMEOUT_S)
        assert not fiddler.is_alive()
        assert run.summary is not None
        _check_rows(indices, run.summary, images, run.batches)
        completed += not run.summary.cancelled
        cancelled += run.summary.cancelled
    assert completed and cancelled, "the cycles must include both finished and cancelled runs"


def test_batch_size_change_takes_effect_at_a_later_batch(classifier: Classifier, images: list[str]) -> None:
    control = classifier.new_control()
    control.set_batch_size(1)
    control.set_max_wait_ms(200.0)

    def grow(outcome: BatchOutcome) -> None:
        if outcome.stats.batch_index == 1:
            control.set_batch_size(6)

    run = Run(classifier, images, control, grow)
    indices = run.finish()
    assert run.summary is not None
    _check_rows(indices, run.summary, images, run.batches)
    sizes = [len(batch.results) for batch in run.batches]
    caps = [batch.stats.batch_size for batch in run.batches]
    assert sizes[:2] == [1, 1] and caps[:2] == [1, 1]
    assert all(cap == 6 for cap in caps[2:])
    assert all(size <= 6 for size in sizes) and max(sizes) == 6


def test_cancel_before_start_and_while_paused(classifier: Classifier, images: list[str]) -> None:
    control = classifier.new_control()
    control.cancel()
    run = Run(classifier, images, control)
    assert run.finish() == []
    assert run.summary is not None and run.summary.cancelled

    control = classifier.new_control()
    control.pause()
    run = Run(classifier, images, control)
    time.sleep(0.2)
    assert run.thread.is_alive() and run.batches == [], "a paused run must not classify"
    control.cancel()
    assert run.finish() == []


def test_pause_then_resume_finishes_everything(classifier: Classifier, images: list[str]) -> None:
    control = classifier.new_control()
    control.set_batch_size(2)

    def pause_once(outcome: BatchOutcome) -> None:
        if outcome.stats.batch_index == 0:
            control.pause()
            threading.Timer(0.2, control.resume).start()

    run = Run(classifier, images, control, pause_once)
    indices = run.finish()
    assert run.summary is not None and not run.summary.cancelled
    assert indices == list(range(IMAGES))


def test_failing_consumer_ends_the_run_and_its_threads(classifier: Classifier, images: list[str]) -> None:
    """If writing a batch fails (disk full), the error reaches the caller and nothing is left running."""

    def disk_full(outcome: BatchOutcome) -> None:
        if outcome.stats.batch_index == 2:
            raise OSError(28, "No space left on device")

    control = classifier.new_control()
    control.set_batch_size(2)
    run = Run(classifier, images, control, disk_full)
    run.thread.join(JOIN_TIMEOUT_S)
    assert not run.thread.is_alive()
    assert isinstance(run.error, OSError)
    assert not _decode_threads()


def test_walk_that_fails_midway_ends_the_run(classifier: Classifier, images: list[str]) -> None:
    def items() -> Iterator[SourceItem]:
        yield SourceItem(0, images[0])
        raise RuntimeError("walk failed")

    control = classifier.new_control()
    box: list[object] = []
    worker = threading.Thread(
        target=lambda: box.append(_catch(lambda: classifier.classify_items(items(), control))), daemon=True
    )
    worker.start()
    worker.join(5.0)
    hung = worker.is_alive()
    control.cancel()  # lets a hung run loop go, so nothing is left polling
    worker.join(JOIN_TIMEOUT_S)
    assert not hung, "the run hung after its feeder failed"
    assert box and isinstance(box[0], RuntimeError)


def _catch(call: Callable[[], object]) -> object:
    try:
        return call()
    except Exception as error:  # noqa: BLE001 - the test inspects it
        return error
