"""The knobs a front end turns while a run is going, safe to touch from any thread.

The GUI's slider, Pause and Cancel write here; the run loop reads here before
each batch. Shared state rather than queued signals, because the worker's
loop never returns to an event loop while it runs.
"""

from __future__ import annotations

import threading

MAX_BATCH_SIZE = 65536
"""The largest batch a run accepts: the command line's range, and what a RunControl clamps to."""


def _clamp(size: int) -> int:
    return min(MAX_BATCH_SIZE, max(1, int(size)))


class RunControl:
    """Batch size, max wait, pause and cancel of one run.

    A front end that has no batch size of its own (a fresh profile, a run
    started before the model loaded) passes None: the engine resolves it to
    the device's default when the run starts, so the run and everything sized
    from it (the decode read-ahead) start from the number that will be used,
    and the front end only shows it.
    """

    def __init__(self, batch_size: int | None, max_wait_ms: float) -> None:
        self._lock = threading.Lock()
        self._batch_size = None if batch_size is None else _clamp(batch_size)
        self._max_wait_ms = max(0.0, max_wait_ms)
        self._cancelled = threading.Event()
        self._running = threading.Event()
        self._running.set()

    @property
    def batch_size(self) -> int:
        """The largest batch to form next; only read after the engine has resolved it."""
        with self._lock:
            if self._batch_size is None:
                raise RuntimeError("the batch size is unset until the engine resolves it (resolve_batch_size)")
            return self._batch_size

    def resolve_batch_size(self, default: int) -> int:
        """Adopt ``default`` unless a batch size was given or set since; return the one in force."""
        with self._lock:
            if self._batch_size is None:
                self._batch_size = _clamp(default)
            return self._batch_size

    def set_batch_size(self, size: int) -> None:
        """Takes effect at the next batch the run forms."""
        with self._lock:
            self._batch_size = _clamp(size)

    @property
    def max_wait_ms(self) -> float:
        with self._lock:
            return self._max_wait_ms

    def set_max_wait_ms(self, milliseconds: float) -> None:
        with self._lock:
            self._max_wait_ms = max(0.0, float(milliseconds))

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def cancel(self) -> None:
        """Stop after the batch in flight; its rows are still delivered."""
        self._cancelled.set()
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; True when the run may go on, False once cancelled."""
        self._running.wait(timeout)
        return not self._cancelled.is_set()
