"""One pipeline for the command line and the window: paths in, rows and batch stats out.

    paths -> sources -> decode pool -> dynamic batcher -> runner -> on_batch

A feeder thread walks the inputs and keeps a bounded window of decode jobs in
a thread pool, handing finished images to a bounded queue in input order; so
decoding batch n+1 overlaps the forward pass of batch n, and 100,000 dropped
files never sit in memory at once. The caller's thread runs the batcher and
the model, and gets each finished batch through ``on_batch``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import torch

from .batcher import END_OF_STREAM, DynamicBatcher
from .control import RunControl
from .decode import decode_file
from .devices import DeviceUnavailable, device_label, precision_name, resolve_device, resolve_precision
from .gpu_decode import decode_on_device, read_jpeg_bytes, wants_gpu_decode
from .models import DEFAULT_MODEL, LoadedModel, ModelLoadError, load_model
from .records import BatchOutcome, BatchStats, DecodedImage, ImageResult, Prediction
from .runner import OUT_OF_MEMORY, Runner
from .sources import SourceItem, iter_sources
from .weights_cache import ProgressCallback, WeightsUnavailable

DECODE_CHOICES = ("auto", "cpu", "gpu")
# Measured per device type (see benchmarks/ and `batch-classifier bench`): on
# a 2-core CPU, EfficientNet-Lite0 peaks at batch 4 and falls off beyond 8 as
# activations outgrow the caches; on a GPU a big batch fills the device.
DEFAULT_BATCH_SIZE = {"cpu": 4, "mps": 32, "cuda": 256}
DEFAULT_MAX_WAIT_MS = 5.0
_QUEUE_POLL_S = 0.1


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides how a run is set up (the knobs that can move live are in RunControl)."""

    model: str = DEFAULT_MODEL
    arch: str | None = None
    labels: str | None = None
    device: str = "auto"
    precision: str = "auto"
    decode: str = "auto"
    batch_size: int | None = None
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    top_k: int = 5
    recursive: bool = True
    decode_workers: int | None = None
    pretrained: bool = True


@dataclass(frozen=True)
class RunSummary:
    images: int
    errors: int
    elapsed_s: float
    images_per_s: float
    mean_batch_size: float
    batches: int
    cancelled: bool
    oom_cap: int | None

    def describe(self) -> str:
        """One line for a person: the same words on the command line and in the window."""
        text = (
            f"{self.images:,} images, {self.errors:,} errors, {self.images_per_s:,.1f} img/s, "
            f"mean batch size {self.mean_batch_size:.1f}, {self.elapsed_s:.1f} s"
        )
        if self.oom_cap is not None:
            text += f", batch size capped at {self.oom_cap} after running out of memory"
        return text


START_ERRORS = (ModelLoadError, WeightsUnavailable, DeviceUnavailable, ValueError)
"""What setting up a run raises, each with a one-line message meant for the user."""


def default_decode_workers(device: torch.device) -> int:
    """Decode threads: all cores when a GPU runs the model, a quarter of them when the CPU does.

    With draft mode a photo decodes in a fraction of the time the model needs
    for it on a CPU, so most cores belong to the model's own threads.
    """
    cores = os.cpu_count() or 2
    return cores if device.type != "cpu" else max(1, cores // 4)


class _Stopped(Exception):
    """Raised inside the feeder when the run is over and nobody will read what it makes."""


class Classifier:
    """A loaded model on a device, ready to classify any number of runs.

    Construction does the slow, fallible part (loading weights, picking the
    device) so a front end can report a failure before any file is touched.
    """

    def __init__(self, config: RunConfig, on_download: ProgressCallback | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        autocast = resolve_precision(config.precision, self.device)
        self.precision = precision_name(autocast)
        self.gpu_decode = config.decode == "gpu" or (config.decode == "auto" and self.device.type == "cuda")
        if self.gpu_decode and self.device.type != "cuda":
            raise ValueError("GPU decoding needs a CUDA device (use decode auto or cpu)")
        self.model: LoadedModel = load_model(
            config.model,
            arch=config.arch,
            labels_path=config.labels,
            pretrained=config.pretrained,
            on_download=on_download,
        )
        self.runner = Runner(self.model, self.device, autocast, config.top_k)
        self.device_name = device_label(self.device)
        self.decode_workers = config.decode_workers or default_decode_workers(self.device)

    @property
    def default_batch_size(self) -> int:
        return self.config.batch_size or DEFAULT_BATCH_SIZE[self.device.type]

    def new_control(self) -> RunControl:
        return RunControl(self.default_batch_size, self.config.max_wait_ms)

    def classify(
        self,
        paths: Iterable[str | os.PathLike[str]],
        control: RunControl | None = None,
        on_batch: Callable[[BatchOutcome], None] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> RunSummary:
        """Classify every image under ``paths``; one row per input, delivered batch by batch."""
        control = control or self.new_control()
        sources = iter_sources(paths, recursive=self.config.recursive, skip=skip)
        return self.classify_items(sources, control, on_batch)

    def classify_items(
        self,
        items: Iterable[SourceItem],
        control: RunControl,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> RunSummary:
        started = time.perf_counter()
        window = max(2 * control.batch_size, 4 * self.decode_workers)
        ready: queue.Queue[object] = queue.Queue(maxsize=window)
        stop = threading.Event()
        feeder_failure: list[BaseException] = []
        feeder = threading.Thread(
            target=self._feed,
            args=(items, ready, stop, window, feeder_failure),
            name="decode-feeder",
            daemon=True,
        )
        batcher: DynamicBatcher[DecodedImage] = DynamicBatcher(
            ready, control.batch_size, control.max_wait_ms / 1000
        )
        images = errors = batches = batched_images = 0
        feeder.start()
        try:
            while control.wait_while_paused():
                cap = control.batch_size
                if self.runner.oom_cap is not None:
                    cap = min(cap, self.runner.oom_cap)
                batcher.set_max_batch_size(cap)
                batcher.set_max_wait_s(control.max_wait_ms / 1000)
                batch = batcher.next_batch(idle_timeout=_QUEUE_POLL_S)
                if batch is None:
                    break
                if not batch:
                    continue
                outcome = self._run_batch(batch, cap, batches)
                images += len(outcome.results)
                errors += outcome.stats.errors
                batched_images += outcome.stats.images
                batches += 1
                if on_batch is not None:
                    on_batch(outcome)
        finally:
            stop.set()
            _drain(ready)
            feeder.join()
        if feeder_failure:
            raise feeder_failure[0]
        elapsed = time.perf_counter() - started
        return RunSummary(
            images=images,
            errors=errors,
            elapsed_s=elapsed,
            images_per_s=images / elapsed if elapsed > 0 else 0.0,
            mean_batch_size=batched_images / batches if batches else 0.0,
            batches=batches,
            cancelled=control.cancelled and not batcher.ended,
            oom_cap=self.runner.oom_cap,
        )

    def _prepare(self, item: SourceItem) -> DecodedImage:
        """Runs in the pool: Pillow decode, or only the file read when the GPU will decode it."""
        if self.gpu_decode and wants_gpu_decode(item.path):
            started = time.perf_counter()
            encoded = read_jpeg_bytes(item.path)
            if encoded is not None:
                return DecodedImage(
                    item.index, item.path, encoded=encoded, decode_ms=(time.perf_counter() - started) * 1000
                )
        return decode_file(item.index, item.path, self.model.spec)

    def _feed(
        self,
        items: Iterable[SourceItem],
        ready: queue.Queue[object],
        stop: threading.Event,
        window: int,
        failure: list[BaseException],
    ) -> None:
        """Keep ``window`` decodes in flight and pass results on in input order.

        If the walk itself fails (a file system gone away), the images already
        decoded are still passed on, the stream is ended so the run loop stops,
        and the error lands in ``failure`` for the run to raise.
        """
        pending: deque[Future[DecodedImage]] = deque()

        def hand_on(decoded: DecodedImage | object) -> None:
            while not stop.is_set():
                try:
                    ready.put(decoded, timeout=_QUEUE_POLL_S)
                    return
                except queue.Full:
                    continue
            raise _Stopped

        with ThreadPoolExecutor(self.decode_workers, thread_name_prefix="decode") as pool:
            try:
                try:
                    for item in items:
                        if stop.is_set():
                            raise _Stopped
                        pending.append(pool.submit(self._prepare, item))
                        while pending and (len(pending) >= window or pending[0].done()):
                            hand_on(pending.popleft().result())
                except _Stopped:
                    raise
                except Exception as error:  # handed to the run's thread, which raises it
                    failure.append(error)
                while pending:
                    hand_on(pending.popleft().result())
                hand_on(END_OF_STREAM)
            except _Stopped:
                for future in pending:
                    future.cancel()

    def _decode_encoded(self, batch: list[DecodedImage]) -> list[DecodedImage]:
        """Decode the batch's JPEG bytes on the GPU; files it cannot decode go through Pillow."""
        encoded = [item for item in batch if item.encoded is not None]
        if not encoded:
            return batch
        started = time.perf_counter()
        on_device = decode_on_device([item.encoded for item in encoded], self.model.spec, self.device)
        per_image_ms = (time.perf_counter() - started) * 1000 / len(encoded)
        decoded: dict[int, DecodedImage] = {}
        for item, result in zip(encoded, on_device):
            if result is None:
                decoded[item.index] = decode_file(item.index, item.path, self.model.spec)
            else:
                pixels, thumbnail = result
                decoded[item.index] = replace(
                    item, pixels=pixels, thumbnail=thumbnail, encoded=None, decode_ms=item.decode_ms + per_image_ms
                )
        return [decoded.get(item.index, item) for item in batch]

    def _run_batch(self, batch: list[DecodedImage], cap: int, batch_index: int) -> BatchOutcome:
        started = time.perf_counter()
        batch = self._decode_encoded(batch)
        good = [item for item in batch if item.pixels is not None]
        predictions: dict[int, tuple[Prediction, ...]] = {}
        failures: dict[int, str] = {item.index: item.error or "not decoded" for item in batch if item.pixels is None}
        copy_ms = forward_ms = 0.0
        memory = None
        if good:
            on_device = any(item.pixels.device.type != "cpu" for item in good)
            pixels = torch.stack([item.pixels.to(self.device) if on_device else item.pixels for item in good])
            scores = self.runner.run(pixels)
            copy_ms, forward_ms, memory = scores.copy_ms, scores.forward_ms, scores.memory
            labels = self.model.labels
            for item, confidences, indices in zip(good, scores.confidences.tolist(), scores.indices.tolist()):
                if indices[0] == OUT_OF_MEMORY:
                    failures[item.index] = "out of memory even for a single image"
                else:
                    predictions[item.index] = tuple(
                        Prediction(labels[i], float(c)) for c, i in zip(confidences, indices)
                    )
        total_ms = (time.perf_counter() - started) * 1000
        results = tuple(
            ImageResult(
                index=item.index,
                path=item.path,
                status="ok" if item.index in predictions else "error",
                predictions=predictions.get(item.index, ()),
                error=failures.get(item.index, ""),
                model=self.model.name,
                device=str(self.device),
                batch_size=len(good),
                thumbnail=item.thumbnail,
            )
            for item in batch
        )
        ran = len(predictions)
        stats = BatchStats(
            batch_index=batch_index,
            batch_size=cap,
            images=len(good),
            errors=len(failures),
            decode_ms=sum(item.decode_ms for item in batch),
            copy_ms=copy_ms,
            forward_ms=forward_ms,
            total_ms=total_ms,
            images_per_s=ran / (total_ms / 1000) if total_ms > 0 and ran else 0.0,
            peak_allocated_mb=memory.allocated_mb if memory else 0.0,
            peak_reserved_mb=memory.reserved_mb if memory else 0.0,
            memory_kind="cuda" if self.device.type == "cuda" else "process",
            warmup=batch_index == 0,
            finished_at=time.time(),
        )
        return BatchOutcome(results, stats)


def _drain(ready: queue.Queue[object]) -> None:
    """Empty the queue so a feeder blocked on ``put`` sees the stop flag."""
    while True:
        try:
            ready.get_nowait()
        except queue.Empty:
            return
