"""Dynamic batching: as many ready images as allowed, waiting only briefly for more.

Semantics of Triton's ``max_queue_delay_microseconds``: a batch is served as
soon as it is full, or ``max_wait`` after its first image arrived, whichever
comes first. The clock and the queue are injected so tests can drive time.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")

END_OF_STREAM = object()
"""Put on the queue after the last item: the batcher serves what it holds and stops."""


class ItemQueue(Protocol):
    def get(self, block: bool = True, timeout: float | None = None) -> object: ...


class DynamicBatcher(Generic[T]):
    """Groups items from a queue into batches; the size cap may change at any time.

    ``set_max_batch_size`` is thread-safe and takes effect at the next batch:
    the batch being gathered keeps the cap it started with, so a slider move
    never splits or grows a batch halfway.
    """

    def __init__(
        self,
        source: ItemQueue,
        max_batch_size: int,
        max_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._source = source
        self._clock = clock
        self._lock = threading.Lock()
        self._max_batch_size = max_batch_size
        self._max_wait_s = max(0.0, max_wait_s)
        self._ended = False

    @property
    def max_batch_size(self) -> int:
        with self._lock:
            return self._max_batch_size

    def set_max_batch_size(self, size: int) -> None:
        if size < 1:
            raise ValueError("max_batch_size must be at least 1")
        with self._lock:
            self._max_batch_size = size

    @property
    def max_wait_s(self) -> float:
        with self._lock:
            return self._max_wait_s

    def set_max_wait_s(self, seconds: float) -> None:
        with self._lock:
            self._max_wait_s = max(0.0, seconds)

    @property
    def ended(self) -> bool:
        return self._ended

    def next_batch(self, idle_timeout: float | None = None) -> list[T] | None:
        """The next batch, or None once the stream has ended and everything was served.

        Blocks for the first item (at most ``idle_timeout`` seconds, returning
        an empty list on expiry so the caller can check for cancellation).
        """
        if self._ended:
            return None
        with self._lock:
            cap = self._max_batch_size
            wait = self._max_wait_s
        try:
            first = self._source.get(timeout=idle_timeout)
        except queue.Empty:
            return []
        if first is END_OF_STREAM:
            self._ended = True
            return None
        batch: list[T] = [first]  # type: ignore[list-item]
        deadline = self._clock() + wait
        while len(batch) < cap:
            remaining = deadline - self._clock()
            try:
                item = (
                    self._source.get(timeout=remaining)
                    if remaining > 0
                    else self._source.get(block=False)
                )
            except queue.Empty:
                break
            if item is END_OF_STREAM:
                self._ended = True
                break
            batch.append(item)  # type: ignore[arg-type]
        return batch
