"""A progress line on stderr for the command line: count, rate and ETA.

On a terminal it redraws one line; into a log file it writes a line every few
seconds instead, so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_BAR_WIDTH = 28
_LOG_INTERVAL_S = 5.0


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLine:
    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.stream = stream
        self.started = time.perf_counter()
        self._interactive = stream.isatty()
        self._last_log = 0.0

    def render(self, done: int, errors: int) -> str:
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        fraction = done / self.total if self.total else 1.0
        filled = int(_BAR_WIDTH * fraction)
        eta = format_duration((self.total - done) / rate) if rate > 0 else "?"
        return (
            f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done}/{self.total} "
            f"{fraction:4.0%}  {rate:.1f} img/s  {errors} errors  ETA {eta}"
        )

    def update(self, done: int, errors: int) -> None:
        now = time.perf_counter()
        if self._interactive:
            self.stream.write("\r" + self.render(done, errors))
        elif now - self._last_log >= _LOG_INTERVAL_S or done == self.total:
            self.stream.write(self.render(done, errors) + "\n")
            self._last_log = now
        self.stream.flush()

    def finish(self) -> None:
        if self._interactive:
            self.stream.write("\n")
            self.stream.flush()
