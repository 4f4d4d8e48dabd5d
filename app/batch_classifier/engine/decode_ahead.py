"""Decode a run's first images while torch and the model load, and hand them to the run's feeder.

``import torch`` alone takes about 2.3 s on a 2-core CPU, a third of a
200-photo run, and loading the model and preparing its runtime add more.
Listing the inputs and decoding them need none of it (``sources.py`` and
``decode.py`` import no torch), so the command line starts both on threads
of their own before it loads torch, and the run's feeder (``feeder.py``)
takes the decoded images first, in input order, before it walks and decodes
the rest itself: the first batch is ready when the model is.

Bounded by ``DECODE_AHEAD_BYTES`` of model-sized pixels: about 200 images of
224x224, what one idle core decodes exactly while the other loads torch and
the model on a 2-core machine. The input size must be known before the model
loads (``model_specs.spec_before_loading``); when it is not, nothing is
decoded ahead. Should the loaded model ask for another input after all, the
run decodes those files again: pixels cut for another input are never used.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from .decode import InputSpec, decode_file
from .model_specs import spec_before_loading
from .records import DecodedImage
from .sources import SourceItem
from .threads import decode_ahead_workers

DECODE_AHEAD_BYTES = 32 * 2**20
DECODE_AHEAD_ENV = "BATCH_CLASSIFIER_DECODE_AHEAD"
"""Set to 0 to load the model first and decode after, as before (``benchmarks/start_up.py`` times both)."""


class DecodeAhead:
    """Walks ``items`` and decodes the first of them in a pool of its own, from the moment it is made."""

    def __init__(
        self, items: Iterable[SourceItem], spec: InputSpec, preprocess: str, workers: int,
        limit_bytes: int = DECODE_AHEAD_BYTES,
    ) -> None:
        self.spec = spec
        self.preprocess = preprocess
        self.limit = max(1, limit_bytes // (spec.crop_size * spec.crop_size * 3))
        """Images decoded ahead at most: their pixels are what this holds until the run takes them."""
        self._items = iter(items)
        self._jobs: queue.SimpleQueue[tuple[SourceItem, Future[DecodedImage]] | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._failure: Exception | None = None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="decode-ahead")
        threading.Thread(target=self._submit, name="decode-ahead", daemon=True).start()

    def _submit(self) -> None:
        try:
            for item in itertools.islice(self._items, self.limit):
                if self._closed.is_set():
                    break
                job = self._pool.submit(decode_file, item.index, item.path, self.spec, False, self.preprocess)
                self._jobs.put((item, job))
        except Exception as error:  # the walk failed (a file system gone away): the run's feeder raises it in turn
            self._failure = error
        finally:
            self._jobs.put(None)  # after the last pull from the walk: the feeder walks on from here
            self._pool.shutdown(wait=False)

    def items(self, spec: InputSpec, preprocess: str, thumbnails: bool) -> Iterator[SourceItem | Future[DecodedImage]]:
        """The run's inputs for its feeder, in order: the images decoded ahead, then the rest of the walk.

        If the run wants other pixels than were decoded (another input size,
        preprocessing, or thumbnails), the items decoded ahead come back as
        items, for the feeder to decode again.
        """
        usable = (spec, preprocess, thumbnails) == (self.spec, self.preprocess, False)
        while (job := self._jobs.get()) is not None:
            item, decoded = job
            if usable:
                yield decoded
            else:
                decoded.cancel()
                yield item
        if self._failure is not None:
            raise self._failure
        yield from self._items

    def close(self) -> None:
        """The run will not take the images (its model failed to load, say): drop those not yet decoded."""
        self._closed.set()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is None:
                return
            job[1].cancel()


def start_decode_ahead(items: Iterable[SourceItem], model: str, preprocess: str, decode: str) -> DecodeAhead | None:
    """Start decoding ``items`` for ``model`` now, or None where that cannot be right before the model loads.

    Not when the model's input size is unknown until it loads, nor when the
    run is told to decode on the GPU, nor when ``BATCH_CLASSIFIER_DECODE_AHEAD=0``.
    """
    spec = spec_before_loading(model)
    if spec is None or decode == "gpu" or os.environ.get(DECODE_AHEAD_ENV) == "0":
        return None
    return DecodeAhead(items, spec, preprocess, decode_ahead_workers(os.cpu_count() or 2))
