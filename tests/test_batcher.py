"""Dynamic batching semantics, driven by a fake clock: no sleeps, exact times.

The fake queue holds scheduled arrivals (time, item). ``get(timeout)`` moves
the fake clock to the next arrival if it comes within the timeout, else by
the whole timeout and raises ``queue.Empty`` -- what a real queue does, only
instantly and deterministically.
"""

from __future__ import annotations

import queue
import random
from collections.abc import Callable

import pytest

from batch_classifier.engine.batcher import END_OF_STREAM, DynamicBatcher
from batch_classifier.engine.control import MAX_BATCH_SIZE, RunControl


class FakeClockQueue:
    def __init__(self, arrivals: list[tuple[float, object]]) -> None:
        self.now = 0.0
        self._arrivals = sorted(arrivals, key=lambda arrival: arrival[0])
        self.delivered = 0
        self.on_deliver: Callable[[int], None] | None = None

    def clock(self) -> float:
        return self.now

    def get(self, block: bool = True, timeout: float | None = None) -> object:
        if not self._arrivals or (self._arrivals[0][0] > self.now and not block):
            self._wait_out(block, timeout)
        at, item = self._arrivals[0]
        if at > self.now:
            if timeout is not None and at - self.now > timeout:
                self._wait_out(block, timeout)
            self.now = at
        self._arrivals.pop(0)
        self.delivered += 1
        if self.on_deliver is not None:
            self.on_deliver(self.delivered)
        return item

    def _wait_out(self, block: bool, timeout: float | None) -> None:
        if block and timeout is None:
            raise AssertionError("the batcher would block forever on an empty queue")
        if block:
            self.now += timeout
        raise queue.Empty


def _batcher(arrivals: list[tuple[float, object]], size: int, wait_s: float) -> tuple[DynamicBatcher, FakeClockQueue]:
    source = FakeClockQueue(arrivals)
    return DynamicBatcher(source, size, wait_s, clock=source.clock), source


def _all_batches(batcher: DynamicBatcher, source: FakeClockQueue) -> list[tuple[float, list[object]]]:
    """(time served, batch) until the stream ends; empty idle returns are skipped."""
    served = []
    while (batch := batcher.next_batch(idle_timeout=10.0)) is not None:
        if batch:
            served.append((source.now, batch))
    return served


def test_lone_image_is_served_after_max_wait_and_not_before() -> None:
    batcher, source = _batcher([(1.0, "a"), (5.0, END_OF_STREAM)], size=8, wait_s=0.05)
    assert batcher.next_batch(idle_timeout=10.0) == ["a"]
    assert source.now == pytest.approx(1.05)


def test_an_image_inside_the_window_joins_one_just_outside_does_not() -> None:
    arrivals = [(0.0, "a"), (0.049, "b"), (0.101, "c"), (1.0, END_OF_STREAM)]
    batcher, source = _batcher(arrivals, size=8, wait_s=0.05)
    assert _all_batches(batcher, source) == [(pytest.approx(0.05), ["a", "b"]), (pytest.approx(0.151), ["c"])]


def test_full_batches_go_at_once_without_waiting() -> None:
    arrivals = [(0.0, i) for i in range(10)] + [(3.0, END_OF_STREAM)]
    batcher, source = _batcher(arrivals, size=4, wait_s=0.5)
    served = _all_batches(batcher, source)
    assert served == [(0.0, [0, 1, 2, 3]), (0.0, [4, 5, 6, 7]), (0.5, [8, 9])]


def test_end_of_stream_flushes_a_partial_batch_at_once() -> None:
    batcher, source = _batcher([(0.0, "a"), (0.0, "b"), (0.01, END_OF_STREAM)], size=8, wait_s=1.0)
    assert batcher.next_batch(idle_timeout=10.0) == ["a", "b"]
    assert source.now == pytest.approx(0.01), "the end of the stream must not wait out max_wait"
    assert batcher.ended
    assert batcher.next_batch(idle_timeout=10.0) is None
    assert batcher.next_batch(idle_timeout=10.0) is None


def test_empty_stream_ends_without_a_batch() -> None:
    batcher, _ = _batcher([(0.0, END_OF_STREAM)], size=4, wait_s=1.0)
    assert batcher.next_batch(idle_timeout=10.0) is None


def test_idle_queue_returns_an_empty_batch_after_the_idle_timeout() -> None:
    """So the run loop can look at Cancel while nothing arrives."""
    batcher, source = _batcher([(5.0, "a"), (5.0, END_OF_STREAM)], size=4, wait_s=0.1)
    assert batcher.next_batch(idle_timeout=1.0) == []
    assert source.now == pytest.approx(1.0)
    assert not batcher.ended
    assert _all_batches(batcher, source) == [(pytest.approx(5.0), ["a"])]


def test_zero_wait_takes_only_what_is_ready() -> None:
    arrivals = [(0.0, "a"), (0.0, "b"), (0.001, "c"), (1.0, END_OF_STREAM)]
    batcher, source = _batcher(arrivals, size=8, wait_s=0.0)
    assert _all_batches(batcher, source) == [(0.0, ["a", "b"]), (pytest.approx(0.001), ["c"])]


def test_size_change_mid_batch_applies_to_the_next_batch() -> None:
    arrivals = [(0.0, i) for i in range(12)] + [(1.0, END_OF_STREAM)]
    batcher, source = _batcher(arrivals, size=4, wait_s=0.1)
    source.on_deliver = lambda delivered: batcher.set_max_batch_size(2) if delivered == 2 else None
    assert batcher.next_batch(idle_timeout=10.0) == [0, 1, 2, 3], "the batch being gathered keeps its cap"
    assert batcher.max_batch_size == 2
    assert batcher.next_batch(idle_timeout=10.0) == [4, 5]
    source.on_deliver = lambda delivered: batcher.set_max_batch_size(5) if delivered == 7 else None
    assert batcher.next_batch(idle_timeout=10.0) == [6, 7], "growing the cap mid-batch waits too"
    assert batcher.next_batch(idle_timeout=10.0) == [8, 9, 10, 11]


def test_wait_change_applies_to_the_next_batch() -> None:
    arrivals = [(0.0, "a"), (0.3, "b"), (0.6, "c"), (2.0, END_OF_STREAM)]
    batcher, source = _batcher(arrivals, size=8, wait_s=0.2)
    source.on_deliver = lambda delivered: batcher.set_max_wait_s(1.0) if delivered == 1 else None
    assert batcher.next_batch(idle_timeout=10.0) == ["a"]
    assert source.now == pytest.approx(0.2)
    assert batcher.next_batch(idle_timeout=10.0) == ["b", "c"]


@pytest.mark.parametrize("seed", range(20))
def test_nothing_is_reordered_or_lost(seed: int) -> None:
    """Random arrivals, random caps and waits changed between and during batches."""
    rng = random.Random(seed)
    count = rng.randint(0, 200)
    times = sorted(rng.uniform(0, 2.0) for _ in range(count))
    arrivals = [(t, i) for i, t in enumerate(times)] + [(2.5, END_OF_STREAM)]
    batcher, source = _batcher(arrivals, size=rng.randint(1, 16), wait_s=rng.choice([0.0, 0.001, 0.05]))

    def fiddle(delivered: int) -> None:
        if rng.random() < 0.1:
            batcher.set_max_batch_size(rng.randint(1, 32))
        if rng.random() < 0.05:
            batcher.set_max_wait_s(rng.choice([0.0, 0.01, 0.1]))

    source.on_deliver = fiddle
    served = []
    while (batch := batcher.next_batch(idle_timeout=rng.choice([0.01, 1.0]))) is not None:
        served.append(batch)
    assert [item for batch in served for item in batch] == list(range(count))


def test_batch_never_exceeds_the_cap_it_started_with() -> None:
    arrivals = [(0.0, i) for i in range(100)] + [(1.0, END_OF_STREAM)]
    batcher, source = _batcher(arrivals, size=3, wait_s=0.1)
    sizes = []
    while (batch := batcher.next_batch(idle_timeout=1.0)) is not None:
        sizes.append(len(batch))
        batcher.set_max_batch_size(len(sizes) % 7 + 1)
    caps = [3] + [count % 7 + 1 for count in range(1, len(sizes))]
    assert sizes[:-1] == caps[:-1], "all items were ready: every batch but the last is exactly its cap"
    assert sizes[-1] <= caps[-1]
    assert sum(sizes) == 100


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(queue.Queue(), 0, 0.1)
    batcher = DynamicBatcher(queue.Queue(), 1, -5.0)
    assert batcher.max_wait_s == 0.0
    with pytest.raises(ValueError):
        batcher.set_max_batch_size(0)
    assert batcher.max_batch_size == 1


def test_works_with_a_real_queue_too() -> None:
    real: queue.Queue[object] = queue.Queue()
    for item in ("a", "b", "c", END_OF_STREAM):
        real.put(item)
    batcher = DynamicBatcher(real, 2, 0.001)
    assert batcher.next_batch(idle_timeout=1.0) == ["a", "b"]
    assert batcher.next_batch(idle_timeout=1.0) == ["c"]
    assert batcher.next_batch(idle_timeout=1.0) is None


def test_a_run_control_holds_its_batch_size_within_what_a_run_accepts() -> None:
    control = RunControl(MAX_BATCH_SIZE * 2, 0.0)
    assert control.batch_size == MAX_BATCH_SIZE
    control.set_batch_size(0)
    assert control.batch_size == 1
    assert RunControl(None, 0.0).resolve_batch_size(10**9) == MAX_BATCH_SIZE
