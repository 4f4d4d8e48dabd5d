"""The worker: one QObject, living in its own QThread, that owns the model and the device.

Every slow thing happens here: loading (and downloading) weights, walking
folders, classifying, sweeping batch sizes. The GUI thread only posts jobs
(queued signals into ``@Slot`` methods) and receives plain records back
through ``Signal(object)``; it never waits on this thread.

What it reports goes out through ``WorkerEvents``, an object of the GUI
thread that emits each report there, so receivers run there whatever they are.

A run's slot blocks this thread's event loop until the run ends, so the knobs
that must act *during* a run (batch size, max wait, pause, cancel) are not
slots: they are the thread-safe ``RunControl`` and ``threading.Event`` each job
carries, which the GUI thread writes directly.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial

from PySide6.QtCore import QObject, Signal, SignalInstance, Slot

from ..engine.choices import DEFAULT_MAX_WAIT_MS
from ..engine.cluster import OPEN_ERRORS, ClusterBatch, ClusterClassifier, open_classifier, require_local
from ..engine.control import RunControl
from ..engine.kernels import kernels_of_one_batch
from ..engine.pipeline import Classifier, RunConfig
from ..engine.records import BatchOutcome, BatchStats, ImageResult
from ..engine.resources import sample_images
from ..engine.sources import BackgroundCount, no_images_message
from ..engine.sweep import NothingToMeasure, SweepResult, default_sweep_sizes, images_to_measure, sweep_batch_sizes
from ..engine.versus import one_by_one_vs_batched
from .thumbnails import encode_thumbnail

_log = logging.getLogger(__name__)

NOTHING_LEFT = "Nothing left to classify: every image has its row. Run again classifies them all again."
SWEEP_ON_SAMPLES = "None of the queued files could be read as images: measuring the bundled sample photos instead."
SWEEP_IMAGES = 32
"""The sweep repeats its images to fill big batches, so a few distinct ones are enough."""


@dataclass(frozen=True)
class RunJob:
    paths: tuple[str, ...]
    config: RunConfig
    control: RunControl
    skip: frozenset[str] = frozenset()
    """Paths that already have their row (Start after Cancel continues with the rest)."""


@dataclass(frozen=True)
class SweepJob:
    paths: tuple[str, ...]
    config: RunConfig
    stop: threading.Event


@dataclass(frozen=True)
class VersusJob:
    """One by one versus batched: ``count`` images of ``paths`` both ways (``engine/versus.py``)."""

    paths: tuple[str, ...]
    config: RunConfig
    count: int


@dataclass(frozen=True)
class KernelsJob:
    """Profile one batch of ``batch_size`` images of ``paths`` and count its CUDA kernels."""

    paths: tuple[str, ...]
    config: RunConfig
    batch_size: int


@dataclass(frozen=True)
class ModelReady:
    """What the window shows about the loaded model, copied out so it never touches the Classifier."""

    model: str
    requested: str
    """The model as the run settings named it (registry name or file path)."""
    device_name: str
    device_type: str
    precision: str
    runtime: str
    """What runs the model (``torch`` or ``onnxruntime``): the engine's choice, shown, never made, here."""
    runtime_note: str
    """Why it is torch although ONNX Runtime was asked for or ``auto``, in one line; else ""."""
    default_batch_size: int
    top_k: int
    """Predictions per row: the asked top-k, lowered to the model's number of classes."""
    labels: tuple[str, ...] = ()
    """The model's class names, in order: what truth is matched to and corrections are chosen from."""


@dataclass(frozen=True)
class BatchRows:
    """One batch for the window: rows without their tensors, and their thumbnails as JPEG bytes."""

    results: tuple[ImageResult, ...]
    thumbnails: tuple[bytes | None, ...]
    stats: BatchStats
    source: str = ""
    """The Ray actor that ran the batch; empty for this machine."""


def _each_batch(submit: Callable[[BatchOutcome], None]) -> Callable[[ClusterBatch], None]:
    """A cluster block handed on as the batches it holds, so the window shows it as it shows a local run."""

    def deliver(block: ClusterBatch) -> None:
        for outcome in block.outcomes():
            submit(outcome)

    return deliver


class _InOrderDelivery:
    """Runs ``deliver`` for each batch on one helper thread, in order, off the model's thread.

    Compressing a GPU batch's 256 thumbnails takes 10-20 ms, time the model
    would otherwise wait. At most ``MAX_QUEUED`` batches wait, so a slow
    window slows the run instead of filling memory; an error in ``deliver``
    is raised in the model's thread at the next batch or at the end.
    """

    MAX_QUEUED = 8

    def __init__(self, deliver: Callable[[BatchOutcome], None]) -> None:
        self._deliver = deliver
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="deliver")
        self._queued: deque[Future[None]] = deque()

    def submit(self, outcome: BatchOutcome) -> None:
        while self._queued and (self._queued[0].done() or len(self._queued) >= self.MAX_QUEUED):
            self._queued.popleft().result()
        self._queued.append(self._pool.submit(self._deliver, outcome))

    def __enter__(self) -> _InOrderDelivery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            while self._queued:
                self._queued.popleft().result()
        finally:
            self._pool.shutdown(wait=True)


class _ShutDown(Exception):
    """Raised from the download callback to abandon a download when the window closes."""


class WorkerEvents(QObject):
    """Everything the worker reports, declared once, and ``post`` to emit it in this object's thread.

    The object lives in the GUI thread (the session is one). The worker's
    threads never emit these signals themselves: they ``post`` each emission
    through one queued connection, so it happens in the GUI thread, in the
    order posted, and reaches every receiver (a window method or a test's
    lambda alike) as a direct call there. Emitted from a worker thread, each
    receiver would get its own queued call instead, which can arrive after
    the receiver disconnected (pytest-qt's ``waitSignal`` does) and crash
    PySide6.
    """

    loading = Signal(str)
    download_progress = Signal(object, object)  # bytes done, bytes total or None (may exceed 2**31)
    model_ready = Signal(object)  # ModelReady
    failed = Signal(str)  # a load, run or sweep could not be done; one line for the user
    nothing_found = Signal(str)  # the inputs hold no images: said once, and the queue goes on
    note = Signal(str)  # something the user should read in the status bar, not a failure
    run_started = Signal()  # the run has begun; how many images it holds comes later
    run_total = Signal(object)  # int: images in the run, once the background count has walked them all
    batch_done = Signal(object)  # BatchRows
    run_finished = Signal(object)  # RunSummary
    sweep_point = Signal(object)  # SweepPoint
    sweep_finished = Signal(object)  # SweepResult
    versus_finished = Signal(object)  # VersusResult
    kernels_counted = Signal(object)  # (batch size, CUDA kernels launched)
    idle = Signal()  # emitted once at the end of every job, whatever happened

    _posted = Signal(object)  # an emission to make in this object's thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._posted.connect(self._emit_posted)

    def post(self, signal: SignalInstance, *args: object) -> None:
        """Emit ``signal`` (one of this object's) with ``args`` in this object's thread; safe from any thread."""
        self._posted.emit(partial(signal.emit, *args))

    @Slot(object)
    def _emit_posted(self, emit: Callable[[], None]) -> None:
        emit()


class Worker(QObject):
    """The jobs (load, run, sweep, versus, count_kernels), each wrapped in the one error ladder of ``_attempt``."""

    def __init__(self, shutdown: threading.Event, events: WorkerEvents) -> None:
        super().__init__()
        self._shutdown = shutdown
        self._events = events
        self._classifier: Classifier | ClusterClassifier | None = None
        self._loaded_key: RunConfig | None = None

    @Slot(object)
    def load(self, config: RunConfig) -> None:
        self._attempt("loading the model", lambda: self._classifier_for(config))

    @Slot(object)
    def run(self, job: RunJob) -> None:
        self._attempt("the run", lambda: self._run(job))

    @Slot(object)
    def sweep(self, job: SweepJob) -> None:
        self._attempt("the sweep", lambda: self._sweep(job))

    @Slot(object)
    def versus(self, job: VersusJob) -> None:
        self._attempt("one by one vs batched", lambda: self._versus(job))

    @Slot(object)
    def count_kernels(self, job: KernelsJob) -> None:
        self._attempt("counting kernels", lambda: self._count_kernels(job))

    def _attempt(self, what: str, job: Callable[[], object]) -> None:
        """Do ``job``; whatever happens, say it at most once in ``failed``, then ``idle`` exactly once.

        Written once for every job, as superqt's ``WorkerBase.run`` wraps
        ``work()``: a setup error is its own one line, a window closing
        mid-download is no failure, and a crash in this thread must still
        reach the user instead of killing the thread silently.
        """
        try:
            job()
        except OPEN_ERRORS as error:
            self._events.post(self._events.failed, str(error))
        except _ShutDown:
            pass
        except Exception as error:  # noqa: BLE001 - see the docstring
            _log.exception("%s failed", what)
            self._events.post(self._events.failed, f"{what} stopped on an unexpected error: {error}")
        finally:
            self._events.post(self._events.idle)

    def _run(self, job: RunJob) -> None:
        events = self._events
        classifier = self._classifier_for(job.config)
        events.post(events.run_started)
        # The first rows need not wait for a walk of the whole pile: it is counted alongside.
        with BackgroundCount(job.paths, job.config.recursive, partial(events.post, events.run_total), job.skip):
            with _InOrderDelivery(self._deliver) as delivery:
                if isinstance(classifier, ClusterClassifier):
                    summary = classifier.classify(job.paths, job.control, _each_batch(delivery.submit), job.skip)
                else:
                    summary = classifier.classify(job.paths, job.control, delivery.submit, skip=job.skip)
        if summary.images == 0 and not summary.cancelled:
            if job.skip:
                events.post(events.note, NOTHING_LEFT)
            else:
                message = no_images_message(job.paths, job.config.recursive, summary.unreadable_folders)
                events.post(events.nothing_found, message)
            return
        events.post(events.run_finished, summary)  # after the last batch_done: leaving the blocks waited for it

    def _sweep(self, job: SweepJob) -> None:
        classifier = require_local(self._classifier_for(job.config))
        files = images_to_measure(job.paths, SWEEP_IMAGES, job.config.recursive)
        if not files:
            raise ValueError("no images to measure: add some, or use the sample images")
        try:
            result = self._measure(classifier, files, job)
        except NothingToMeasure:
            self._events.post(self._events.note, SWEEP_ON_SAMPLES)
            result = self._measure(classifier, [str(path) for path in sample_images()], job)
        self._events.post(self._events.sweep_finished, result)

    def _versus(self, job: VersusJob) -> None:
        classifier = require_local(self._classifier_for(job.config))
        files = self._images_or_samples(job.paths, job.count, job.config.recursive)
        self._events.post(self._events.versus_finished, one_by_one_vs_batched(classifier, files, job.count))

    def _count_kernels(self, job: KernelsJob) -> None:
        classifier = require_local(self._classifier_for(job.config))
        files = self._images_or_samples(job.paths, job.batch_size, job.config.recursive)
        kernels = kernels_of_one_batch(classifier, files, job.batch_size)
        self._events.post(self._events.kernels_counted, (job.batch_size, kernels))

    @staticmethod
    def _images_or_samples(paths: tuple[str, ...], count: int, recursive: bool) -> list[str]:
        """The first ``count`` images of ``paths``; the bundled photos when none of them decodes as one."""
        files = images_to_measure(paths, count, recursive)
        return files if files else [str(path) for path in sample_images()]

    def _measure(self, classifier: Classifier, files: list[str], job: SweepJob) -> SweepResult:
        return sweep_batch_sizes(
            classifier,
            files,
            default_sweep_sizes(classifier.device),
            on_point=partial(self._events.post, self._events.sweep_point),
            should_stop=lambda: job.stop.is_set() or self._shutdown.is_set(),
        )

    def _classifier_for(self, config: RunConfig) -> Classifier | ClusterClassifier:
        """The loaded Classifier, rebuilt only when something it was built from changed.

        Batch size and max wait live in the job's RunControl, so they never
        cause a reload; building without them also makes ``default_batch_size``
        the device's own default.
        """
        key = replace(config, batch_size=None, max_wait_ms=DEFAULT_MAX_WAIT_MS)
        if self._classifier is None or key != self._loaded_key:
            self.release()  # free the old model before loading the next
            self._events.post(self._events.loading, config.model)
            self._classifier = open_classifier(key, on_download=self._on_download, on_stage=self._on_stage)
            self._loaded_key = key
        classifier = self._classifier
        self._events.post(
            self._events.model_ready,
            ModelReady(
                model=classifier.model.name,
                requested=config.model,
                device_name=classifier.device_name,
                device_type=classifier.device.type,
                precision=classifier.precision,
                runtime=classifier.runner.runtime,
                runtime_note=classifier.runtime_note,
                default_batch_size=classifier.default_batch_size,
                top_k=classifier.runner.top_k,
                labels=tuple(classifier.model.labels),
            )
        )
        return classifier

    def release(self) -> None:
        """Drop the loaded classifier; a Ray instance it started ends with it, so the next cluster is the one asked for.

        Called before another model loads and, as the worker's thread ends
        (the window closing), from that thread: a local Ray instance's
        processes must not outlive the window that started them.
        """
        classifier, self._classifier, self._loaded_key = self._classifier, None, None
        if isinstance(classifier, ClusterClassifier):
            classifier.close()

    def _on_stage(self, stage: str) -> None:
        """A slow step of preparing the model (its export for ONNX Runtime), for the status bar."""
        self._events.post(self._events.note, f"{stage[:1].upper()}{stage[1:]}…")

    def _on_download(self, done: int, total: int | None) -> None:
        if self._shutdown.is_set():
            raise _ShutDown
        self._events.post(self._events.download_progress, done, total)

    def _deliver(self, outcome: BatchOutcome) -> None:
        """Runs on the delivery thread after each batch: thumbnails compressed, tensors dropped."""
        thumbnails = tuple(encode_thumbnail(result.thumbnail) for result in outcome.results)
        results = tuple(replace(result, thumbnail=None) for result in outcome.results)
        self._events.post(self._events.batch_done, BatchRows(results, thumbnails, outcome.stats, outcome.source))
