"""What the window's accuracy view costs as the table grows: the GUI thread's share and the scoring thread's.

The accuracy report reads every row, so the window takes a snapshot of the
rows on the GUI thread (their immutable tuples, copied by reference) and
scores it on a thread of its own (``gui/assessment.py``). This fills a
results model with made-up rows of a 1,000-class model, each with a person's
correction (which counts as truth, so the real path scores them), and times
both halves, then the threshold's relabelling of the table.

    python3 benchmarks/review_rows.py [--rows 100000] [--classes 1000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402 - Qt must see the platform choice first

from batch_classifier.engine.records import ImageResult, Prediction  # noqa: E402
from batch_classifier.gui.assessment import Assessment  # noqa: E402
from batch_classifier.gui.results_model import ResultsModel  # noqa: E402

BATCH = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=1000)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    labels = [f"class {number}" for number in range(args.classes)]
    model = ResultsModel()
    for start in range(0, args.rows, BATCH):
        batch = [
            ImageResult(
                index, f"/photos/{index % args.classes}/{index}.jpg", "ok",
                tuple(Prediction(labels[(index + rank) % args.classes], 0.9 / (rank + 1)) for rank in range(5)),
                corrected_label=labels[index % args.classes if index % 3 else (index + 1) % args.classes],
            )
            for index in range(start, min(start + BATCH, args.rows))
        ]
        model.append_batch(batch, [None] * len(batch))
    assessment = Assessment(model)
    assessment.set_model(labels, top_k=5)
    started = time.perf_counter()
    job = assessment._job()  # what the timer does on the GUI thread
    snapshot_ms = (time.perf_counter() - started) * 1000
    report, _, _, scoring_s = job()  # what the scoring thread does
    started = time.perf_counter()
    model.set_min_confidence(0.5)
    relabel_ms = (time.perf_counter() - started) * 1000
    print(f"{args.rows:,} rows, {args.classes:,} classes (top-1 {report.top1_accuracy:.3f}):")
    print(f"  GUI thread: snapshot {snapshot_ms:.1f} ms, threshold relabel {relabel_ms:.1f} ms")
    print(f"  scoring thread: {scoring_s:.1f} s per report (the next waits at least 4x as long)")
    del app


if __name__ == "__main__":
    main()
