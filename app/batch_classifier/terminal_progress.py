"""Progress on the command line's stderr: tqdm bars for images and for downloads.

tqdm handles what a hand-written line got wrong or left out: terminal width,
the rate and ETA, byte units, and a total that arrives after the bar has
started, so a run counts its images alongside (as the window does) instead
of walking a network share twice, one walk after the other. Into a log file
rather than a terminal it redraws at most every ``LOG_INTERVAL_S``, so CI
logs stay small. The window has its own rule (``gui/progress.py``).
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

from .engine.wording import counted

LOG_INTERVAL_S = 5.0


def progress_bar(
    description: str, unit: str, total: int | None = None, stream: TextIO | None = None, bytes_: bool = False
) -> tqdm:
    """A bar on ``stream`` (stderr), redrawn often on a terminal and every few seconds into a file.

    ``bytes_`` shows KiB, MiB and GiB instead of a plain count.
    """
    stream = stream or sys.stderr
    interactive = stream.isatty()
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        file=stream,
        mininterval=0.1 if interactive else LOG_INTERVAL_S,
        dynamic_ncols=interactive,
        unit_scale=bytes_,
        unit_divisor=1024,
    )


class ImageProgress:
    """A run's bar: images with a row, errors among them, and the total once the count has walked them all.

    ``set_total`` may be called from the counting thread; the bar itself is
    only touched by the thread that calls ``update`` and ``close``.
    """

    def __init__(self, description: str = "classifying", stream: TextIO | None = None) -> None:
        self._bar = progress_bar(description, "img", stream=stream)
        self._total: int | None = None

    def set_total(self, total: int) -> None:
        self._total = total

    def update(self, done: int, errors: int) -> None:
        self._apply_total()
        self._bar.set_postfix_str(counted(errors, "error"), refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._apply_total()
        self._bar.close()

    def _apply_total(self) -> None:
        total = self._total
        if total is not None and self._bar.total != max(total, self._bar.n):
            self._bar.total = max(total, self._bar.n)


class CallbackProgress:
    """An engine callback ``on_progress(done, total)`` as a bar, shown from the first call, closed when complete.

    The total may be unknown (``None``: a download without Content-Length) or
    arrive later; the bar then counts until it does.
    """

    def __init__(
        self, description: str, unit: str = "img", bytes_: bool = False, stream: TextIO | None = None
    ) -> None:
        self._options = (description, unit)
        self._bytes = bytes_
        self._stream = stream
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if self._bar is None:
            self._bar = progress_bar(*self._options, total, self._stream, bytes_=self._bytes)
        if total is not None:
            self._bar.total = total
        self._bar.update(done - self._bar.n)
        if total is not None and done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def download_progress(stream: TextIO | None = None) -> CallbackProgress:
    """Weights downloading, in KiB, MiB and GiB."""
    return CallbackProgress("downloading weights", "B", bytes_=True, stream=stream)
