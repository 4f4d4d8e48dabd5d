"""The status bar's progress: images done of the total, the current rate, and an ETA.

The ETA uses the rate over the last few seconds rather than since the start,
so it recovers quickly when the batch size changes mid-run or the run is
resumed after a pause. A run starts before its images are counted (the
count walks alongside), so until the total arrives the bar is busy and the
label shows the rate and the images done. While paused the label says
"Paused" and shows neither rate nor ETA, even when the batch that was in
flight arrives: a frozen rate would claim the run is still going. Durations
are written as the command line's tqdm bar writes them (``format_interval``).
"""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QWidget
from tqdm import tqdm

from .elided_label import ElidedLabel

RATE_WINDOW_S = 5.0
WIDEST_RATE = "8,888 img/s · ETA 88:88:88"
"""The longest rate line the label is sized for."""


class RunProgress(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(140)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("")
        self.label = ElidedLabel("Ready")
        # The text changes every batch: a fixed width never re-lays out the bar. It fits a running
        # run's rate and ETA; a longer text (a download, a pause in a big run) is elided, whole in its tooltip.
        margins = self.label.contentsMargins()
        self.label.setFixedWidth(self.label.fontMetrics().horizontalAdvance(WIDEST_RATE) + margins.left() + margins.right() + 8)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        self._total: int | None = None
        self._done = 0
        self._recent: deque[tuple[float, int]] = deque()
        self._paused = False

    @property
    def done(self) -> int:
        return self._done

    def busy(self, text: str) -> None:
        """Something of unknown length (loading a model, counting files, a sweep)."""
        self.bar.setRange(0, 0)
        self.bar.setFormat("")
        self.label.setText(text)

    def download(self, model: str, done: int, total: int | None) -> None:
        mb_done = done / 2**20
        if total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * done / total))
            self.bar.setFormat("%p %")
            self.label.setText(f"Downloading {model}: {mb_done:.0f} of {total / 2**20:.0f} MB")
        else:
            self.busy(f"Downloading {model}: {mb_done:.0f} MB")

    def start_run(self) -> None:
        self._paused = False
        self._total = None
        self._done = 0
        self._recent.clear()
        self._recent.append((time.monotonic(), 0))
        self._show_count()
        self.label.setText("Starting…")

    def set_total(self, total: int) -> None:
        self._total = total
        self._show_count()

    def add_images(self, count: int) -> None:
        self._done += count
        if self._paused:
            self._show_count()
            self._show_paused()
            return
        now = time.monotonic()
        self._recent.append((now, self._done))
        while len(self._recent) > 2 and now - self._recent[1][0] > RATE_WINDOW_S:
            self._recent.popleft()
        self._show_count()
        self.label.setText(self._rate_text(now))

    def _show_count(self) -> None:
        if self._total is None:
            self.bar.setRange(0, 0)  # busy: the count is still walking
            self.bar.setFormat("")
            return
        total = max(self._total, self._done)
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(self._done)
        self.bar.setFormat(f"{self._done:,} / {total:,}")

    def _rate_text(self, now: float) -> str:
        first_time, first_done = self._recent[0]
        elapsed = now - first_time
        if elapsed <= 0 or self._done == first_done:
            return "Running…"
        rate = (self._done - first_done) / elapsed
        if self._total is None:
            return f"{rate:,.0f} img/s · {self._done:,} done"
        remaining = max(self._total - self._done, 0)
        return f"{rate:,.0f} img/s · ETA {tqdm.format_interval(remaining / rate)}"

    def paused(self) -> None:
        self._paused = True
        self._show_paused()

    def _show_paused(self) -> None:
        of_total = "" if self._total is None else f" of {self._total:,}"
        self.label.setText(f"Paused at {self._done:,}{of_total}")

    def resumed(self) -> None:
        self._paused = False
        self._recent.clear()
        self._recent.append((time.monotonic(), self._done))
        self.label.setText("Running…")

    def finished(self, text: str) -> None:
        self._paused = False
        if self._total is None:  # cancelled before the count came back
            self._total = self._done
        self._show_count()
        self.label.setText(text)

    def idle(self, text: str = "Ready") -> None:
        self._paused = False
        self._total = None
        self._done = 0
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("")
        self.label.setText(text)
