"""The decode stage: a thread that turns source items into decoded images, in input order.

It keeps a bounded window of decode jobs in a thread pool and hands finished
images to a bounded queue, so decoding batch n+1 overlaps the forward pass of
batch n and 100,000 dropped files never sit in memory at once.

When JPEGs are decoded on the GPU, the pool threads only read the files; this
thread gathers them and decodes many at once on the device, so that nvjpeg
too works while the model's thread runs the previous batch. Like the dynamic
batcher, it gathers up to a batch's worth (or one device call's worth of
pixels) and waits at most the run's max wait for more while the model's
queue is empty.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import torch

from .batcher import END_OF_STREAM
from .control import RunControl
from .decode import InputSpec, decode_file
from .gpu_decode import PIXELS_PER_DECODE_CALL, decode_on_device, read_jpeg, wants_gpu_decode
from .records import DecodedImage, EncodedJpeg
from .sources import SourceItem

QUEUE_POLL_S = 0.1
READ_AHEAD_BYTES = 256 * 2**20
"""JPEG bytes the feeder may have asked for and not yet decoded on the GPU.
Photos of 0.5 MB never reach it within the window; 24-megapixel ones of
10 MB would otherwise pile up gigabytes while the GPU decodes, so past it
the feeder waits for the oldest read instead of starting new ones."""
_log = logging.getLogger(__name__)


def read_ahead_window(batch_size: int, workers: int) -> int:
    """Images decoded ahead of the model, in each of the two stages (decode jobs, ready queue).

    Two batches' worth, so the next batch is ready when the model finishes
    this one, and enough jobs to keep every decode thread busy. It follows
    the live batch size: a window sized once for batch 8 would cap every
    batch of a run at what it holds, whatever the slider says.
    """
    return max(2 * batch_size, 4 * workers)


class ReadAheadQueue(queue.Queue[object]):
    """The bounded queue of decoded images, whose bound follows the batch size during a run."""

    def resize(self, maxsize: int) -> None:
        """A larger bound wakes a producer blocked on ``put``; a smaller one lets the queue drain to it."""
        with self.mutex:
            if maxsize != self.maxsize:
                self.maxsize = maxsize
                self.not_full.notify_all()


class _Stopped(Exception):
    """Raised inside the feeder when the run is over and nobody will read what it makes."""


class Feeder:
    """Decodes ``items`` into ``ready`` from its own thread; call ``run`` as the thread's target.

    If the walk itself fails (a file system gone away), the images already
    decoded are still passed on, the stream is ended so the run loop stops,
    and the error is kept in ``failure`` for the run's thread to raise. Any
    other failure here ends the stream too: a run must never wait forever
    for a thread that has died.
    """

    def __init__(
        self,
        *,
        spec: InputSpec,
        preprocess: str,
        workers: int,
        ready: ReadAheadQueue,
        stop: threading.Event,
        control: RunControl,
        jpeg_device: torch.device | None,
        thumbnails: bool,
    ) -> None:
        self.failure: BaseException | None = None
        self._spec = spec
        self._preprocess = preprocess
        self._workers = workers
        self._ready = ready
        self._stop = stop
        self._control = control
        self._jpeg_device = jpeg_device
        self._thumbnails = thumbnails
        self._gathered: list[tuple[DecodedImage, EncodedJpeg, int]] = []
        self._gathered_pixels = 0
        self._gathered_since = 0.0
        self._committed_bytes = 0  # file sizes of the JPEGs submitted for reading and not yet decoded

    def run(self, items: Iterable[SourceItem | Future[DecodedImage]]) -> None:
        """Decode ``items`` in order; an item that is already a decode job (``decode_ahead.py``) is awaited in its turn."""
        pending: deque[tuple[Future[DecodedImage], int]] = deque()  # each job and the bytes it commits
        with ThreadPoolExecutor(self._workers, thread_name_prefix="decode") as pool:
            try:
                try:
                    for item in items:
                        if self._stop.is_set():
                            raise _Stopped
                        if isinstance(item, Future):  # decoded before the model loaded (decode_ahead.py)
                            pending.append((item, 0))
                        else:
                            size = self._bytes_to_hold(item.path)
                            self._committed_bytes += size
                            pending.append((pool.submit(self._prepare, item), size))
                        while pending and (
                            len(pending) >= self._ready.maxsize  # as many jobs in flight as may wait decoded
                            or pending[0][0].done()
                            or self._committed_bytes > READ_AHEAD_BYTES
                        ):
                            self._pass_on(*_result(pending.popleft()), pool)
                        if self._waited_long_enough():
                            self._decode_gathered(pool)
                except _Stopped:
                    raise
                except Exception as error:  # handed to the run's thread, which raises it
                    self.failure = error
                while pending:
                    self._pass_on(*_result(pending.popleft()), pool)
                self._decode_gathered(pool)
                self._hand_on(END_OF_STREAM)
            except _Stopped:
                for future, _ in pending:
                    future.cancel()
            except Exception as error:  # a bug, not bad input (that becomes rows): stop the run and report it
                self.failure = self.failure or error
                for future, _ in pending:
                    future.cancel()
                self._end_stream_if_anyone_listens()

    def _prepare(self, item: SourceItem) -> DecodedImage:
        """Runs in the pool: the Pillow decode, or only the file read when the GPU will decode it."""
        if self._jpeg_device is not None and wants_gpu_decode(item.path):
            started = time.perf_counter()
            encoded = read_jpeg(item.path)
            if encoded is not None:
                return DecodedImage(
                    item.index, item.path, encoded=encoded, decode_ms=(time.perf_counter() - started) * 1000
                )
        return self._decode_with_pillow(item)

    def _decode_with_pillow(self, item: SourceItem | DecodedImage) -> DecodedImage:
        return decode_file(item.index, item.path, self._spec, self._thumbnails, self._preprocess)

    def _bytes_to_hold(self, path: str) -> int:
        """What reading ``path`` for the GPU will hold until it is decoded: its size, or 0 for Pillow's files."""
        if self._jpeg_device is None or not wants_gpu_decode(path):
            return 0
        try:
            return os.stat(path).st_size
        except OSError:
            return 0

    def _pass_on(self, decoded: DecodedImage, size: int, pool: ThreadPoolExecutor) -> None:
        if decoded.encoded is not None:
            if not self._gathered:
                self._gathered_since = time.monotonic()
            self._gathered.append((decoded, decoded.encoded, size))
            self._gathered_pixels += decoded.encoded.width * decoded.encoded.height
            if (
                len(self._gathered) >= self._control.batch_size
                or self._gathered_pixels >= PIXELS_PER_DECODE_CALL
                or self._committed_bytes > READ_AHEAD_BYTES
            ):
                self._decode_gathered(pool)
            return
        self._committed_bytes -= size  # Pillow decoded it (or will say why not): nothing is held for the GPU
        self._decode_gathered(pool)  # those came first
        self._hand_on(decoded)

    def _waited_long_enough(self) -> bool:
        """True when the model's queue is empty and the first gathered JPEG has waited the max wait."""
        waited_s = time.monotonic() - self._gathered_since
        return bool(self._gathered) and self._ready.empty() and waited_s * 1000 >= self._control.max_wait_ms

    def _decode_gathered(self, pool: ThreadPoolExecutor) -> None:
        """Decode the gathered JPEGs on the device; those it cannot decode go through Pillow in the pool."""
        if not self._gathered or self._jpeg_device is None:
            return
        gathered, self._gathered, self._gathered_pixels = self._gathered, [], 0
        started = time.perf_counter()
        try:
            on_device = decode_on_device(
                [encoded for _, encoded, _ in gathered], self._spec, self._jpeg_device, self._thumbnails
            )
        except Exception:  # out of device memory while resizing, say: Pillow decodes these instead
            _log.warning(
                "decoding %d JPEGs on %s failed; decoding them with Pillow",
                len(gathered),
                self._jpeg_device,
                exc_info=True,
            )
            on_device = [None] * len(gathered)
        per_image_ms = (time.perf_counter() - started) * 1000 / len(gathered)
        self._committed_bytes -= sum(size for _, _, size in gathered)
        items = [item for item, _, _ in gathered]
        failed = [item for item, result in zip(items, on_device) if result is None]
        fallbacks = pool.map(self._decode_with_pillow, failed)
        retried = {item.index: decoded for item, decoded in zip(failed, fallbacks)}
        for item, result in zip(items, on_device):
            if result is None:
                self._hand_on(retried[item.index])
            else:
                pixels, thumbnail = result
                self._hand_on(
                    replace(
                        item, pixels=pixels, thumbnail=thumbnail, encoded=None, decode_ms=item.decode_ms + per_image_ms
                    )
                )

    def _end_stream_if_anyone_listens(self) -> None:
        try:
            self._hand_on(END_OF_STREAM)
        except _Stopped:
            pass

    def _hand_on(self, decoded: DecodedImage | object) -> None:
        while not self._stop.is_set():
            try:
                self._ready.put(decoded, timeout=QUEUE_POLL_S)
                return
            except queue.Full:
                continue
        raise _Stopped


def _result(job: tuple[Future[DecodedImage], int]) -> tuple[DecodedImage, int]:
    future, size = job
    return future.result(), size


def drain(ready: queue.Queue[object]) -> None:
    """Empty the queue so a feeder blocked on ``put`` sees the stop flag."""
    while True:
        try:
            ready.get_nowait()
        except queue.Empty:
            return
