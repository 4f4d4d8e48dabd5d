"""The window stays responsive while 10,000 dropped images run.

A 10 ms timer on the GUI thread records the gap between its ticks: any gap
much longer than 10 ms is time the event loop could not run (no repaint, no
click handled). Everything the run does to the GUI thread, from the drop
handler to per-batch table inserts, plot redraws and cancelling, falls
inside the measured span, and so does the model's export for ONNX Runtime
when the session's cache does not have it yet (in its child process, as in
the application).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from batch_classifier.gui.main_window import MainWindow

from .conftest import drop_paths, write_images

IMAGES = 10_000
ROWS_MEASURED = 2_500
"""Rows to watch arrive before cancelling: enough for several plot refreshes, a filled table and many
thousands of ticks, without spending minutes classifying the rest on a 2-core machine."""
TICK_MS = 10
MAX_STALL_S = 0.500
"""A freeze guard, not a speed target: a GUI thread that waits on the model, the disk or a walk of the
pile stalls for seconds. The worst stall is printed (-s); on the shared 2-core machines it varies from
about 90 to 210 ms run to run for the same code, so a 100 ms bound here failed at random."""
RUN_TIMEOUT_MS = 150_000


class StallMeter:
    """The longest gap between ticks of a timer that should fire every TICK_MS."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.ticks = 0
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._tick()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self._last)
        self._last = now
        self.ticks += 1


def test_event_loop_never_stalls_while_10000_dropped_images_run(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, record_property: pytest.RecordProperty, real_export_process: None
) -> None:
    images = write_images(tmp_path / "pile", IMAGES)
    meter = StallMeter()
    batches: list[int] = []
    window.session.batch_done.connect(lambda rows: batches.append(len(rows.results)))

    meter.start()
    drop_paths(window.drop_zone, images)
    qtbot.waitUntil(lambda: window.results.rowCount() >= ROWS_MEASURED, timeout=RUN_TIMEOUT_MS)
    window.results_view.table.scrollToBottom()  # paint rows with thumbnails, not just the first screen
    with qtbot.waitSignal(window.session.run_finished, timeout=RUN_TIMEOUT_MS):
        window.cancel_action.trigger()
    meter.stop()

    record_property("worst_stall_ms", round(meter.worst * 1000, 1))
    print(f"\nworst event-loop stall {meter.worst * 1000:.1f} ms over {meter.ticks} ticks, "
          f"{window.results.rowCount()} rows in {len(batches)} batches")
    assert window.progress.bar.maximum() == IMAGES, "the progress total counts every dropped file"
    assert window.results.rowCount() == sum(batches) >= ROWS_MEASURED
    assert meter.ticks > 100
    assert meter.worst < MAX_STALL_S, f"the event loop stalled for {meter.worst * 1000:.0f} ms"
