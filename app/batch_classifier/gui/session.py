"""The GUI thread's side of the worker: the thread's lifetime, the input queue, the live knobs.

Jobs go to the worker as queued signals and are done in the order posted, so
the session keeps the same FIFO of job kinds and pops one each time the
worker reports ``idle``: what the worker is doing is always known here
without asking it. The session remembers every input given since the last
Clear: Start continues them (what has no row yet, as ``--resume`` does) and
Run again classifies them all again. Closing is cooperative: cancel the run (the batch in
flight still arrives), abandon any download, and only when the worker is idle
quit the thread and join it, which then returns at once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from enum import Enum

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, SignalInstance, Slot

from ..engine.control import RunControl
from ..engine.pipeline import RunConfig
from ..engine.resources import sample_images
from .worker import KernelsJob, RunJob, SweepJob, VersusJob, Worker, WorkerEvents

LOAD_DEBOUNCE_MS = 300
"""Scrolling through the model list must not load every model on the way."""


class Activity(Enum):
    IDLE = "idle"
    LOADING = "loading"
    RUNNING = "running"
    SWEEPING = "sweeping"
    STOPPING = "stopping"


class RunSession(WorkerEvents):
    """The worker's events (inherited, declared once) plus what the GUI thread adds to them.

    The session is the ``WorkerEvents`` object the worker posts to, so the
    window connects to ``session.batch_done`` and the like with nothing
    forwarded. Its own bookkeeping slots are connected first, in
    ``__init__``, so Qt calls them before any receiver the window adds: a
    window reading ``activity`` or ``failed_while_loading`` in its
    ``failed`` handler sees them already updated.
    """

    activity_changed = Signal(object)  # Activity
    queue_changed = Signal(int)  # inputs waiting for their run
    stopped = Signal()  # the worker thread has ended: the window may close now

    _post_load = Signal(object)
    _post_run = Signal(object)
    _post_sweep = Signal(object)
    _post_versus = Signal(object)
    _post_kernels = Signal(object)

    def __init__(self, config_source: Callable[[], RunConfig], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._config_source = config_source
        self._pending: deque[tuple[tuple[str, ...], frozenset[str]]] = deque()  # paths, and what to skip
        self._inputs: dict[str, None] = {}  # every input since Clear, in order, each once
        self._last_job: tuple[tuple[str, ...], frozenset[str]] = ((), frozenset())
        self._jobs: deque[Activity] = deque()
        self._control: RunControl | None = None
        self._sweep_stop = threading.Event()
        self._shutdown = threading.Event()
        self._closing = False
        self._held = False  # after a failed run, queued inputs wait for Start
        self._run_has_begun = False
        self.failed_while_loading = False
        """Whether the last ``failed`` came from loading the model (the window then falls back)."""

        self._load_timer = QTimer(self)
        self._load_timer.setSingleShot(True)
        self._load_timer.setInterval(LOAD_DEBOUNCE_MS)
        self._load_timer.timeout.connect(self._load_now)

        self._thread = QThread(self)
        self._thread.setObjectName("classifier-worker")
        self._worker = Worker(self._shutdown, self)
        self._worker.moveToThread(self._thread)
        # In the worker's thread as it ends, before the worker is deleted: a Ray instance it started ends too.
        self._thread.finished.connect(self._worker.release, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._worker.deleteLater)
        self._post_load.connect(self._worker.load)
        self._post_run.connect(self._worker.run)
        self._post_sweep.connect(self._worker.sweep)
        self._post_versus.connect(self._worker.versus)
        self._post_kernels.connect(self._worker.count_kernels)
        self.run_started.connect(self._run_began)
        self.failed.connect(self._job_failed)
        self.idle.connect(self._job_done)
        self._thread.start()

    # --- state ---------------------------------------------------------------------------

    @property
    def activity(self) -> Activity:
        if self._closing:
            return Activity.STOPPING
        return self._jobs[0] if self._jobs else Activity.IDLE

    @property
    def paused(self) -> bool:
        return self._control is not None and self._control.paused

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def has_inputs(self) -> bool:
        return bool(self._pending or self._inputs)

    @property
    def inputs(self) -> tuple[str, ...]:
        """What the user gave since the last Clear: what Start continues and Run again repeats."""
        return tuple(self._inputs)

    # --- requests from the window --------------------------------------------------------

    def request_load(self) -> None:
        """Load the model the controls now describe, soon (debounced), so errors show early."""
        self._load_timer.start()

    def enqueue(self, paths: Sequence[str], skip: frozenset[str] = frozenset()) -> None:
        """Queue inputs; they run now if the worker is free, else after what is ahead of them.

        ``skip`` names paths (as ``display_path`` writes them) that already have their row.
        """
        if not paths or self._closing:
            return
        self._inputs.update(dict.fromkeys(paths))
        self._pending.append((tuple(paths), skip))
        self.queue_changed.emit(len(self._pending))
        self._held = False
        self._start_next()

    def start(self, done: frozenset[str]) -> None:
        """Run the queue; with nothing queued, continue the inputs given so far, skipping ``done``.

        After Cancel this classifies what is missing and nothing twice.
        """
        if not self._pending and self._inputs:
            self._pending.append((self.inputs, done))
        self._held = False
        self._start_next()

    def run_again(self) -> None:
        """Classify every input given so far again (to compare settings); their rows are replaced."""
        self._pending.clear()
        if self._inputs:
            self._pending.append((self.inputs, frozenset()))
        self._held = False
        self._start_next()

    def forget_inputs(self) -> None:
        """Clear results: Start has nothing to continue until new inputs arrive."""
        self._inputs.clear()
        self._pending.clear()
        self._last_job = ((), frozenset())
        self.queue_changed.emit(0)

    def toggle_pause(self) -> bool:
        """Pause or resume the run; True when it is now paused."""
        if self._control is None:
            return False
        if self._control.paused:
            self._control.resume()
        else:
            self._control.pause()
        self.activity_changed.emit(self.activity)
        return self._control.paused

    def cancel(self) -> None:
        """Stop after the batch in flight (its rows still arrive) and drop what was queued."""
        self._pending.clear()
        self.queue_changed.emit(0)
        if self._control is not None:
            self._control.cancel()
        self._sweep_stop.set()

    def set_batch_size(self, size: int) -> None:
        if self._control is not None:
            self._control.set_batch_size(size)

    def set_max_wait_ms(self, milliseconds: float) -> None:
        if self._control is not None:
            self._control.set_max_wait_ms(milliseconds)

    def find_best_batch_size(self) -> None:
        """Sweep batch sizes over the queued (or last, or sample) images."""
        self._sweep_stop = threading.Event()
        self._post(
            Activity.SWEEPING, self._post_sweep, SweepJob(self._measured_paths(), self._config_source(), self._sweep_stop)
        )

    def compare_one_by_one(self, count: int) -> None:
        """``count`` of the queued (or last, or sample) images one by one, then batched (``engine/versus.py``)."""
        self._post(Activity.SWEEPING, self._post_versus, VersusJob(self._measured_paths(), self._config_source(), count))

    def count_kernels(self, batch_size: int) -> None:
        """Profile one batch of ``batch_size`` of those images and count its CUDA kernels."""
        job = KernelsJob(self._measured_paths(), self._config_source(), batch_size)
        self._post(Activity.SWEEPING, self._post_kernels, job)

    def _measured_paths(self) -> tuple[str, ...]:
        """What a measurement runs on: the queued inputs, else the last ones, else the sample photos."""
        inputs = [path for paths, _ in self._pending for path in paths] or list(self._inputs)
        return tuple(inputs) or tuple(str(path) for path in sample_images())

    def shutdown(self) -> bool:
        """Stop everything; True once the thread has ended, else ``stopped`` follows when it has."""
        self._closing = True
        self._shutdown.set()
        self._load_timer.stop()
        self.cancel()
        if self._jobs:
            self.activity_changed.emit(Activity.STOPPING)
            return False
        self._thread.quit()
        self._thread.wait()
        return True

    # --- plumbing ------------------------------------------------------------------------

    def _post(self, kind: Activity, signal: SignalInstance, job: object) -> None:
        self._jobs.append(kind)
        signal.emit(job)
        self.activity_changed.emit(self.activity)

    @Slot()
    def _load_now(self) -> None:
        if not self._closing:
            self._post(Activity.LOADING, self._post_load, self._config_source())

    def _start_next(self) -> None:
        if self._jobs or self._closing or self._held or not self._pending:
            return
        paths, skip = self._last_job = self._pending.popleft()
        self.queue_changed.emit(len(self._pending))
        config = self._config_source()
        self._control = RunControl(config.batch_size, config.max_wait_ms)
        self._run_has_begun = False
        self._post(Activity.RUNNING, self._post_run, RunJob(paths, config, self._control, skip))

    # The next three keep the session's books on the worker's reports, before any other receiver.

    @Slot()
    def _run_began(self) -> None:
        self._run_has_begun = True

    @Slot(str)
    def _job_failed(self, message: str) -> None:
        """Hold the queue after a failed run: the next inputs would fail the same way.

        Inputs whose run never began (the model did not load) go back to the
        front, so Start after fixing the model runs them.
        """
        job = self._jobs[0] if self._jobs else None
        self.failed_while_loading = job is Activity.LOADING or (job is Activity.RUNNING and not self._run_has_begun)
        if job is Activity.RUNNING:
            self._held = True
            if not self._run_has_begun:
                self._pending.appendleft(self._last_job)
                self.queue_changed.emit(len(self._pending))

    @Slot()
    def _job_done(self) -> None:
        finished = self._jobs.popleft()
        if finished is Activity.RUNNING:
            self._control = None
        if self._closing:
            if not self._jobs:
                self._thread.quit()
                self._thread.wait()
                self.stopped.emit()
            return
        self.activity_changed.emit(self.activity)
        self._start_next()
