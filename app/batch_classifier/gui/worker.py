"""The worker: one QObject, living in its own QThread, that owns the model and the device.

Every slow thing happens here: loading (and downloading) weights, walking
folders, classifying, sweeping batch sizes. The GUI thread only posts jobs
(queued signals into ``@Slot`` methods) and receives plain records back
through ``Signal(object)``; it never waits on this thread.

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

from PySide6.QtCore import QObject, Signal, Slot

from ..engine.control import RunControl
from ..engine.kernels import kernels_of_one_batch
from ..engine.pipeline import DEFAULT_MAX_WAIT_MS, START_ERRORS, Classifier, RunConfig
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


class Worker(QObject):
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

    def __init__(self, shutdown: threading.Event) -> None:
        super().__init__()
        self._shutdown = shutdown
        self._classifier: Classifier | None = None
        self._loaded_key: RunConfig | None = None

    @Slot(object)
    def load(self, config: RunConfig) -> None:
        try:
            self._classifier_for(config)
        except START_ERRORS as error:
            self.failed.emit(str(error))
        except _ShutDown:
            pass
        finally:
            self.idle.emit()

    @Slot(object)
    def run(self, job: RunJob) -> None:
        try:
            classifier = self._classifier_for(job.config)
            self.run_started.emit()
            # The first rows need not wait for a walk of the whole pile: it is counted alongside.
            with BackgroundCount(job.paths, job.config.recursive, self.run_total.emit, job.skip):
                with _InOrderDelivery(self._deliver) as delivery:
                    summary = classifier.classify(job.paths, job.control, delivery.submit, skip=job.skip)
            if summary.images == 0 and not summary.cancelled:
                if job.skip:
                    self.note.emit(NOTHING_LEFT)
                else:
                    self.nothing_found.emit(
                        no_images_message(job.paths, job.config.recursive, summary.unreadable_folders)
                    )
                return
            self.run_finished.emit(summary)  # after the last batch_done: leaving the blocks waited for it
        except START_ERRORS as error:
            self.failed.emit(str(error))
        except _ShutDown:
            pass
        except Exception as error:  # noqa: BLE001 - a crash in this thread must still reach the user
            _log.exception("run failed")
            self.failed.emit(f"the run stopped on an unexpected error: {error}")
        finally:
            self.idle.emit()

    @Slot(object)
    def sweep(self, job: SweepJob) -> None:
        try:
            classifier = self._classifier_for(job.config)
            files = images_to_measure(job.paths, SWEEP_IMAGES, job.config.recursive)
            if not files:
                raise ValueError("no images to measure: add some, or use the sample images")
            try:
                result = self._measure(classifier, files, job)
            except NothingToMeasure:
                self.note.emit(SWEEP_ON_SAMPLES)
                result = self._measure(classifier, [str(path) for path in sample_images()], job)
            self.sweep_finished.emit(result)
        except START_ERRORS as error:
            self.failed.emit(str(error))
        except _ShutDown:
            pass
        except Exception as error:  # noqa: BLE001 - as in run()
            _log.exception("sweep failed")
            self.failed.emit(f"the sweep stopped on an unexpected error: {error}")
        finally:
            self.idle.emit()

    @Slot(object)
    def versus(self, job: VersusJob) -> None:
        try:
            classifier = self._classifier_for(job.config)
            files = self._images_or_samples(job.paths, job.count, job.config.recursive)
            self.versus_finished.emit(one_by_one_vs_batched(classifier, files, job.count))
        except START_ERRORS as error:
            self.failed.emit(str(error))
        except _ShutDown:
            pass
        except Exception as error:  # noqa: BLE001 - as in run()
            _log.exception("one by one vs batched failed")
            self.failed.emit(f"one by one vs batched stopped on an unexpected error: {error}")
        finally:
            self.idle.emit()

    @Slot(object)
    def count_kernels(self, job: KernelsJob) -> None:
        try:
            classifier = self._classifier_for(job.config)
            files = self._images_or_samples(job.paths, job.batch_size, job.config.recursive)
            self.kernels_counted.emit((job.batch_size, kernels_of_one_batch(classifier, files, job.batch_size)))
        except START_ERRORS as error:
            self.failed.emit(str(error))
        except _ShutDown:
            pass
        except Exception as error:  # noqa: BLE001 - as in run()
            _log.exception("counting kernels failed")
            self.failed.emit(f"counting kernels stopped on an unexpected error: {error}")
        finally:
            self.idle.emit()

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
            on_point=self.sweep_point.emit,
            should_stop=lambda: job.stop.is_set() or self._shutdown.is_set(),
        )

    def _classifier_for(self, config: RunConfig) -> Classifier:
        """The loaded Classifier, rebuilt only when something it was built from changed.

        Batch size and max wait live in the job's RunControl, so they never
        cause a reload; building without them also makes ``default_batch_size``
        the device's own default.
        """
        key = replace(config, batch_size=None, max_wait_ms=DEFAULT_MAX_WAIT_MS)
        if self._classifier is None or key != self._loaded_key:
            self._classifier = self._loaded_key = None  # free the old model before loading the next
            self.loading.emit(config.model)
            self._classifier = Classifier(key, on_download=self._on_download, on_stage=self._on_stage)
            self._loaded_key = key
        classifier = self._classifier
        self.model_ready.emit(
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

    def _on_stage(self, stage: str) -> None:
        """A slow step of preparing the model (its export for ONNX Runtime), for the status bar."""
        self.note.emit(f"{stage[:1].upper()}{stage[1:]}…")

    def _on_download(self, done: int, total: int | None) -> None:
        if self._shutdown.is_set():
            raise _ShutDown
        self.download_progress.emit(done, total)

    def _deliver(self, outcome: BatchOutcome) -> None:
        """Runs on the delivery thread after each batch: thumbnails compressed, tensors dropped."""
        thumbnails = tuple(encode_thumbnail(result.thumbnail) for result in outcome.results)
        results = tuple(replace(result, thumbnail=None) for result in outcome.results)
        self.batch_done.emit(BatchRows(results, thumbnails, outcome.stats))
