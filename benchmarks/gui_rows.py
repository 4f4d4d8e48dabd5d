"""Can the window keep up with a GPU? Its cost per batch of rows as the table grows to 100,000.

At 3,000 img/s a GPU run delivers a batch of 256 rows about 12 times a
second, for as long as the pile lasts. This feeds the real window (offscreen)
batch after batch of made-up rows through the same handler a run uses: table
insert, filter proxy, progress, plots. It times each batch in the GUI
thread, including the events it causes. The ratio of the last batches' cost to the first
ones' says whether the cost grows with the table; the absolute figure says
how much of each second the GUI thread spends on rows. It also times the
window's journal (each batch as a JSON line, flushed and fsynced on the
journal's own thread) on the same batches.

    python3 benchmarks/gui_rows.py [--batches 400] [--sort-by-confidence]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, Qt  # noqa: E402 - Qt must see the platform choice first
from PySide6.QtWidgets import QApplication  # noqa: E402

from batch_classifier.engine.records import BatchStats, ImageResult, Prediction  # noqa: E402
from batch_classifier.gui.journal import Journal  # noqa: E402
from batch_classifier.gui.main_window import MainWindow  # noqa: E402
from batch_classifier.gui.results_model import CONFIDENCE  # noqa: E402
from batch_classifier.gui.settings import Settings  # noqa: E402
from batch_classifier.gui.worker import BatchRows  # noqa: E402

BATCH = 256
LABELS = ("tabby", "espresso", "missile", "bobsled", "golden retriever")


def made_up_batch(number: int) -> BatchRows:
    start = number * BATCH
    results = tuple(
        ImageResult(
            index=start + offset,
            path=f"/photos/2026/IMG_{start + offset:06d}.jpg",
            status="ok",
            predictions=tuple(Prediction(LABELS[(start + offset + k) % 5], 0.9 - 0.1 * k) for k in range(5)),
            model="efficientnet_lite0",
            device="cuda",
            batch_size=BATCH,
        )
        for offset in range(BATCH)
    )
    stats = BatchStats(
        batch_index=number, batch_size=BATCH, images=BATCH, errors=0, decode_ms=70.0, copy_ms=0.5, forward_ms=13.0,
        total_ms=85.0, images_per_s=3000.0, peak_allocated_mb=1500.0, peak_reserved_mb=2000.0, memory_kind="cuda",
        warmup=number == 0, finished_at=time.time(),
    )
    return BatchRows(results, (None,) * BATCH, stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--sort-by-confidence", action="store_true", help="with the table sorted, as a user may")
    args = parser.parse_args()
    app = QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(QSettings(os.path.join(folder, "settings.ini"), QSettings.Format.IniFormat))
        journal_folder = Path(folder) / "journal"
        window = MainWindow(settings, quiet=True, journal_folder=journal_folder)
        window.show()
        app.processEvents()
        if args.sort_by_confidence:
            window.results_view.table.sortByColumn(CONFIDENCE, Qt.SortOrder.DescendingOrder)
        window.progress.start_run()
        window.progress.set_total(args.batches * BATCH)
        costs = []
        for number in range(args.batches):
            rows = made_up_batch(number)
            started = time.perf_counter()
            window._on_batch(rows)  # what the session's batch_done signal calls in a run
            app.processEvents()
            costs.append((time.perf_counter() - started) * 1000)
        window.close()
        app.processEvents()
        journal = Journal(journal_folder)
        journal_costs = []
        for number in range(min(args.batches, 100)):
            results = made_up_batch(number).results
            started = time.perf_counter()
            journal.append(results)
            journal.flush()
            journal_costs.append((time.perf_counter() - started) * 1000)
        journal.close(keep=False)
    tenth = max(1, args.batches // 10)
    first, last = statistics.median(costs[1 : tenth + 1]), statistics.median(costs[-tenth:])
    print(f"{args.batches} batches of {BATCH} rows ({args.batches * BATCH:,} rows), "
          f"{'sorted by confidence' if args.sort_by_confidence else 'in run order'}")
    print(f"  GUI thread per batch: first tenth {first:.1f} ms, last tenth {last:.1f} ms, worst {max(costs):.1f} ms")
    print(f"  ratio last/first: {last / first:.2f}; at 12 batches/s the GUI thread is busy {12 * last / 10:.0f}% of each second")
    print(f"  journal per batch (its own thread, write + fsync): median {statistics.median(journal_costs):.1f} ms, "
          f"worst {max(journal_costs):.1f} ms")


if __name__ == "__main__":
    main()
