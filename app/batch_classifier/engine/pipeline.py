"""One pipeline for the command line and the window: paths in, rows and batch stats out.

    paths -> sources -> decode pool -> dynamic batcher -> runner -> on_batch

A feeder thread (``feeder.py``) walks the inputs and decodes them into a
bounded queue, in input order, while the caller's thread runs the batcher and
the model and gets each finished batch through ``on_batch``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace

import numpy as np
import torch

from .batcher import DynamicBatcher
from .choices import DEFAULT_MAX_WAIT_MS
from .control import RunControl
from .decode_ahead import DecodeAhead
from .devices import DeviceUnavailable, device_label, precision_name, precision_note, resolve_device, resolve_precision
from .feeder import QUEUE_POLL_S, Feeder, ReadAheadQueue, drain, read_ahead_window
from .fidelity import DEFAULT_PREPROCESS, PREPROCESS_CHOICES
from .models import DEFAULT_MODEL, LoadedModel, ModelLoadError, load_model
from .occupancy import RUN_SAMPLE_INTERVAL_S, OccupancyProbe, SampledProbe, probe_for
from .records import BatchOutcome, BatchStats, DecodedImage, ImageResult, Prediction
from .runner import Runner
from .runtimes.choice import choose_forward
from .runtimes.onnx_export import StageCallback
from .sources import SourceItem, SourceWalk, UnreadableFolder, duplicates_note
from .threads import thread_split
from .weights_cache import ProgressCallback, WeightsUnavailable
from .wording import counted

# Measured per device type (see benchmarks/ and `batch-classifier bench`): on
# a 2-core CPU, EfficientNet-Lite0 peaks at batch 4 and falls off beyond 8 as
# activations outgrow the caches; on a GPU a big batch fills the device.
DEFAULT_BATCH_SIZE = {"cpu": 4, "mps": 32, "cuda": 256}


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides how a run is set up (the knobs that can move live are in RunControl)."""

    model: str = DEFAULT_MODEL
    arch: str | None = None
    labels: str | None = None
    device: str = "auto"
    precision: str = "auto"
    decode: str = "auto"
    preprocess: str = DEFAULT_PREPROCESS
    """``exact`` or ``fast`` (``fidelity.py``): part of a run's identity, since it changes the predictions."""
    runtime: str = "auto"
    """``auto``, ``torch`` or ``onnxruntime`` (``runtimes/choice.py`` decides what ``auto`` means here)."""
    batch_size: int | None = None
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    top_k: int = 5
    recursive: bool = True
    decode_workers: int | None = None
    pretrained: bool = True
    thumbnails: bool = True
    """Whether rows carry a thumbnail: the window shows them; the command line
    has no use for them, and on a GPU they cost as much as the model input."""
    cluster: str | None = None
    """None runs on this machine. A string runs on a Ray cluster (``cluster.open_classifier``): the
    address to attach to (auto, HOST:PORT, ray://HOST:PORT), or "" for RAY_ADDRESS, else a Ray
    instance started on this machine."""


@dataclass(frozen=True)
class RunSummary:
    """How a run went. ``images`` counts rows, error rows included; the rate and
    the mean batch size count only images the model classified, so a pile of
    unreadable files cannot pass for a fast run."""

    images: int
    errors: int
    elapsed_s: float
    images_per_s: float
    """Classified images (ok rows) per second of the run."""
    mean_batch_size: float
    """Images per batch, over the batches the model ran (0 when it ran none)."""
    batches: int
    cancelled: bool
    oom_cap: int | None
    unreadable_folders: tuple[UnreadableFolder, ...] = ()
    """Folders the walk could not list: their images, if any, have no rows."""
    duplicates: int = 0
    """Inputs left out because another input is the same file (``iter_sources``): said, never silent."""

    @property
    def classified(self) -> int:
        return self.images - self.errors

    def describe(self) -> str:
        """One line for a person: the same words on the command line and in the window."""
        text = counted(self.images, "image")
        if self.duplicates:  # next to the count it explains, where a narrow status bar still shows it
            text += f" ({duplicates_note(self.duplicates)})"
        text += f", {counted(self.errors, 'error')}"
        if self.classified:
            text += (
                f": {self.classified:,} classified at {self.images_per_s:,.1f} img/s, "
                f"mean batch size {self.mean_batch_size:.1f}"
            )
        elif self.images:
            text += ": none classified"
        text += f", {self.elapsed_s:.1f} s"
        if self.unreadable_folders:
            text += f", {counted(len(self.unreadable_folders), 'folder')} could not be read"
        if self.oom_cap is not None:
            text += f", batch size capped at {self.oom_cap} after running out of memory"
        return text


def default_batch_size(config: RunConfig, device_type: str) -> int:
    """The batch size of a run on a ``device_type`` device: the one asked for, else that kind's default.

    The one place the default is applied, for a model on this machine and for
    the actors of a cluster run (whose device kind only the cluster knows).
    """
    return config.batch_size or DEFAULT_BATCH_SIZE[device_type]


def batch_tensor(pixels: Sequence[np.ndarray | torch.Tensor], device: torch.device) -> torch.Tensor:
    """One uint8 NHWC tensor of a batch's images: where decoded pixels (numpy from Pillow) become torch's.

    Images the GPU decoder left on the device bring the rest there (a file it
    could not decode came through Pillow, on the host); otherwise the batch
    stays on the host for the runner to copy.
    """
    if any(isinstance(image, torch.Tensor) and image.device.type != "cpu" for image in pixels):
        return torch.stack([torch.as_tensor(image).to(device) for image in pixels])
    return torch.stack([torch.as_tensor(image) for image in pixels])


START_ERRORS = (ModelLoadError, WeightsUnavailable, DeviceUnavailable, ValueError)
"""What setting up a run raises, each with a one-line message meant for the user."""


class Classifier:
    """A loaded model on a device, ready to classify any number of runs.

    Construction does the slow, fallible part (loading weights, picking the
    device) so a front end can report a failure before any file is touched.
    """

    def __init__(
        self,
        config: RunConfig,
        on_download: ProgressCallback | None = None,
        on_stage: StageCallback | None = None,
    ) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        autocast = resolve_precision(config.precision, self.device)
        self.precision = precision_name(autocast)
        self.precision_note = precision_note(autocast, self.device)
        """A warning for the front end to show when this precision is slow here, else ""."""
        if config.preprocess not in PREPROCESS_CHOICES:
            raise ValueError(f"unknown preprocessing {config.preprocess!r} (choose {' or '.join(PREPROCESS_CHOICES)})")
        gpu_decode = config.decode == "gpu" or (config.decode == "auto" and self.device.type == "cuda")
        if gpu_decode and self.device.type != "cuda":
            raise ValueError("GPU decoding needs a CUDA device (use decode auto or cpu)")
        self.jpeg_device: torch.device | None = self.device if gpu_decode else None
        """Where JPEGs are decoded in batches, or None for Pillow (tests point it at the CPU)."""
        self.model: LoadedModel = load_model(
            config.model,
            arch=config.arch,
            labels_path=config.labels,
            pretrained=config.pretrained,
            on_download=on_download,
        )
        cores = os.cpu_count() or 2
        onnx_threads = thread_split(cores, self.device.type, "onnxruntime").model_threads
        forward, note = choose_forward(self.model, self.device, autocast, config.runtime, onnx_threads, on_stage)
        self.runtime_note = note
        """Why the model runs on torch although ONNX Runtime was asked for or ``auto``, in one line; else ""."""
        self.runner = Runner(self.model, self.device, forward, config.top_k)
        self.device_name = device_label(self.device)
        split = thread_split(cores, self.device.type, forward.name)
        if self.device.type == "cpu":  # torch's threads also normalise and take the top-k beside ONNX Runtime
            torch.set_num_threads(split.model_threads)  # process-wide: this process runs one model at a time
        self.decode_workers = config.decode_workers or split.decode_workers
        self.occupancy: OccupancyProbe = probe_for(self.device)
        """Reads how busy the device is (or says why it cannot, in each reading): around each size of a sweep."""
        self._batch_occupancy = SampledProbe(self.occupancy, RUN_SAMPLE_INTERVAL_S)
        """The same, for a run's batches: one batch in every quarter second at most."""

    @property
    def default_batch_size(self) -> int:
        return default_batch_size(self.config, self.device.type)

    def new_control(self) -> RunControl:
        """The command line's control: its --batch-size, else unset (the run resolves it to the default)."""
        return RunControl(self.config.batch_size, self.config.max_wait_ms)

    def classify(
        self,
        paths: Sequence[str | os.PathLike[str]],
        control: RunControl | None = None,
        on_batch: Callable[[BatchOutcome], None] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> RunSummary:
        """Classify every image under ``paths``; one row per input, delivered batch by batch."""
        return self.classify_walk(SourceWalk(paths, self.config.recursive, skip), control, on_batch)

    def classify_walk(
        self,
        walk: SourceWalk,
        control: RunControl | None = None,
        on_batch: Callable[[BatchOutcome], None] | None = None,
        ahead: DecodeAhead | None = None,
    ) -> RunSummary:
        """Classify what ``walk`` yields (a front end may have looked at its first item already).

        ``ahead``, made over the same walk before the model loaded, gives the
        images it decoded first. Folders that cannot be listed are in the
        summary's ``unreadable_folders``; inputs that name a file already given
        are counted in its ``duplicates``.
        """
        items = walk if ahead is None else ahead.items(self.model.spec, self.config.preprocess, self.config.thumbnails)
        summary = self.classify_items(items, control or self.new_control(), on_batch)
        return replace(summary, unreadable_folders=tuple(walk.unreadable), duplicates=walk.duplicates)

    def classify_items(
        self,
        items: Iterable[SourceItem | Future[DecodedImage]],
        control: RunControl,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> RunSummary:
        started = time.perf_counter()
        batch_size = control.resolve_batch_size(self.default_batch_size)
        ready = ReadAheadQueue(read_ahead_window(batch_size, self.decode_workers))
        stop = threading.Event()
        feeder = Feeder(
            spec=self.model.spec,
            preprocess=self.config.preprocess,
            workers=self.decode_workers,
            ready=ready,
            stop=stop,
            control=control,
            jpeg_device=self.jpeg_device,
            thumbnails=self.config.thumbnails,
        )
        feeder_thread = threading.Thread(target=feeder.run, args=(items,), name="decode-feeder", daemon=True)
        batcher: DynamicBatcher[DecodedImage] = DynamicBatcher(ready, batch_size, control.max_wait_ms / 1000)
        images = errors = batches = batched_images = model_batches = 0
        waited_s = 0.0
        feeder_thread.start()
        try:
            while control.wait_while_paused():
                cap = control.batch_size
                if self.runner.oom_cap is not None:
                    cap = min(cap, self.runner.oom_cap)
                batcher.set_max_batch_size(cap)
                ready.resize(read_ahead_window(cap, self.decode_workers))
                batcher.set_max_wait_s(control.max_wait_ms / 1000)
                asked = time.perf_counter()
                batch = batcher.next_batch(idle_timeout=QUEUE_POLL_S)
                waited_s += time.perf_counter() - asked
                if batch is None:
                    break
                if not batch:
                    continue
                outcome = self._run_batch(batch, cap, batches, waited_s * 1000)
                waited_s = 0.0
                images += len(outcome.results)
                errors += outcome.stats.errors
                batched_images += outcome.stats.images
                model_batches += outcome.stats.images > 0
                batches += 1
                if on_batch is not None:
                    on_batch(outcome)
        finally:
            stop.set()
            drain(ready)
            feeder_thread.join()
        if feeder.failure is not None:
            raise feeder.failure
        elapsed = time.perf_counter() - started
        return RunSummary(
            images=images,
            errors=errors,
            elapsed_s=elapsed,
            images_per_s=(images - errors) / elapsed if elapsed > 0 else 0.0,
            mean_batch_size=batched_images / model_batches if model_batches else 0.0,
            batches=batches,
            cancelled=control.cancelled and not batcher.ended,
            oom_cap=self.runner.oom_cap,
        )

    def _run_batch(self, batch: list[DecodedImage], cap: int, batch_index: int, wait_ms: float) -> BatchOutcome:
        self._batch_occupancy.start()
        started = time.perf_counter()
        good = [item for item in batch if item.pixels is not None]
        predictions: dict[int, tuple[Prediction, ...]] = {}
        failures: dict[int, str] = {item.index: item.error or "not decoded" for item in batch if item.pixels is None}
        copy_ms = forward_ms = 0.0
        memory = None
        if good:
            pixels = batch_tensor([item.pixels for item in good], self.device)
            scores = self.runner.run(pixels)
            copy_ms, forward_ms, memory = scores.copy_ms, scores.forward_ms, scores.memory
            labels = self.model.labels
            rows = zip(good, scores.errors, scores.confidences.tolist(), scores.indices.tolist(), strict=True)
            for item, error, confidences, indices in rows:
                if error:
                    failures[item.index] = error
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
                runtime=self.runner.runtime,
                preprocess=self.config.preprocess,
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
            memory=memory,
            warmup=batch_index == 0,
            finished_at=time.time(),
            wait_ms=wait_ms,
            occupancy=self._batch_occupancy.stop() if good else None,
        )
        return BatchOutcome(results, stats)
