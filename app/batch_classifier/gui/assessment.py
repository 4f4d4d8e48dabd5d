"""The window's judge of a run: which truth is in force, and the accuracy and unknown count it gives.

Every decision is the engine's: ``engine/truth.py`` matches folder names or a
truth CSV to the model's labels and says when a drop looks like class
folders, ``engine/accuracy.py`` scores the rows, and ``ImageResult`` says
which rows the threshold relabelled. This object only keeps the truth in
force, puts it on each batch as it arrives, and asks for a new report when
something it depends on changed (a batch, the threshold, a correction, the
truth itself).

Whether to offer folder truth is asked off the GUI thread (the engine lists
the top level of each folder given, which on a share or a folder of 100,000
files takes a while); the answer comes back as ``offer``.

Scoring reads every row (100,000 rows and 1,000 classes take seconds), so it
is not done per batch nor on the GUI thread: a change schedules one report,
at most every ``REPORT_MS`` and at least four times as long apart as the last
one took, made on a thread of its own from a snapshot of the rows (immutable
tuples, copied by reference), one at a time, the newest rows winning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from ..engine.accuracy import AccuracyReport, Scorecard
from ..engine.records import ImageResult
from ..engine.truth import Truth, annotate, offer_folder_truth, read_truth_csv, truth_for
from .results_model import ResultsModel

REPORT_MS = 250
FOLDERS = "folders"


class Assessment(QObject):
    report_changed = Signal(object)  # AccuracyReport, or None without truth
    unknown_changed = Signal(int, int)  # rows the threshold labels unknown, rows classified
    offer = Signal()  # most top-level folders of the inputs are labels: ask the user about folder truth
    _offer_answer = Signal(object, bool)  # from the asking thread: the inputs asked about, and the answer
    _computed = Signal(object)  # from the scoring thread: (report, unknown, classified, seconds)

    def __init__(self, results: ResultsModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._results = results
        self._labels: tuple[str, ...] = ()
        self._top_k = 1
        self._truth: Truth | None = None
        self._source: str | None = None
        """``FOLDERS``, the truth CSV's path, or None."""
        self._csv_names: dict[str, str] | None = None
        self._inputs: tuple[str, ...] = ()
        self._declined: set[tuple[str, ...]] = set()
        self.report: AccuracyReport | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REPORT_MS)
        self._timer.timeout.connect(self._report_now)
        self._offer_answer.connect(self._offer_answered)
        self._computed.connect(self._report_computed)
        self._computing = self._again = False
        self._taken = self._delivered = 0
        """Snapshots taken and the newest delivered: an older report arriving late is dropped."""

    # --- what the truth is ---------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def source(self) -> str | None:
        """Where the truth comes from: ``"folders"``, a CSV path, or None."""
        return self._source

    def set_model(self, labels: Sequence[str], top_k: int) -> None:
        """A model loaded: truth is matched to its labels, so a new label set re-matches it."""
        labels = tuple(labels)
        changed = labels != self._labels
        self._labels, self._top_k = labels, max(1, top_k)
        if changed and self._source is not None:
            self._rebuild()

    def set_inputs(self, inputs: Sequence[str]) -> None:
        """The session's inputs changed; folder truth follows them (its roots are the folders given)."""
        self._inputs = tuple(inputs)
        if self._source == FOLDERS:
            self._rebuild()

    def ask_offer(self) -> None:
        """Find out, off the GUI thread, whether to offer folder names as truth (``offer`` if so)."""
        if not self._labels or not self._inputs or self._source is not None or self._inputs in self._declined:
            return
        inputs, labels = self._inputs, self._labels

        def ask() -> None:
            answer = offer_folder_truth(inputs, labels)
            try:
                self._offer_answer.emit(inputs, answer)
            except RuntimeError:  # the window closed meanwhile: nobody to offer it to
                pass

        threading.Thread(target=ask, name="truth-offer", daemon=True).start()

    @Slot(object, bool)
    def _offer_answered(self, inputs: tuple[str, ...], answer: bool) -> None:
        if answer and inputs == self._inputs and self._source is None and inputs not in self._declined:
            self.offer.emit()

    def decline_folders(self) -> None:
        self._declined.add(self._inputs)

    def use_folders(self) -> None:
        self._source, self._csv_names = FOLDERS, None
        self._rebuild()

    def use_csv(self, path: str) -> None:
        """Truth from a CSV of path,label; ``TruthError`` (one line) when it cannot be used."""
        self._csv_names = read_truth_csv(path)
        self._source = str(Path(path))
        self._rebuild()

    def clear_truth(self) -> None:
        self._source = self._truth = self._csv_names = None
        self._results.assign_truth(None)
        self.changed()

    def _rebuild(self) -> None:
        if not self._labels:
            return  # matched once the model has loaded (set_model)
        self._truth = truth_for(self._inputs, self._labels, self._csv_names)
        self._results.assign_truth(self._truth.label_for)
        self.changed()

    def annotate(self, results: Sequence[ImageResult]) -> Sequence[ImageResult]:
        """A batch's rows with their true labels, before they reach the table."""
        return annotate(results, self._truth) if self._truth is not None else results

    # --- the report ----------------------------------------------------------------------

    def changed(self) -> None:
        """Something the report depends on changed: a new one follows shortly."""
        if not self._timer.isActive():
            self._timer.start()

    def report_now(self) -> AccuracyReport | None:
        """The report of the rows as they are now, made on this thread and delivered at once (tests)."""
        self._timer.stop()
        job = self._job()
        self._deliver(self._taken, *(job() if job is not None else (None, 0, 0, 0.0)))
        return self.report

    def _report_now(self) -> None:
        """The timer's work: a report made off the GUI thread; one at a time, the newest rows winning."""
        if self._computing:
            self._again = True
            return
        job = self._job()
        if job is None:
            self._deliver(self._taken, None, 0, 0, 0.0)
            return
        self._computing = True
        taken = self._taken

        def compute() -> None:
            answer = (taken, *job())
            try:
                self._computed.emit(answer)
            except RuntimeError:  # the window closed meanwhile
                pass

        threading.Thread(target=compute, name="accuracy", daemon=True).start()

    def _job(self) -> Callable[[], tuple[AccuracyReport | None, int, int, float]] | None:
        """What the report needs, taken now on the GUI thread (the rows as they are, the truth's unmatched
        names), as a function any thread can run; None when there is nothing to count or score."""
        self._taken += 1
        if self._truth is None and not self._results.corrections and not self._results.min_confidence:
            return None
        rows_of = self._results.snapshot()
        scored = self._truth is not None or self._results.corrections > 0
        unmatched = self._truth.unmatched() if self._truth is not None else ()
        labels, top_k = self._labels, self._top_k

        def job() -> tuple[AccuracyReport | None, int, int, float]:
            started = time.perf_counter()
            rows = rows_of()
            ok = [row for row in rows if row.status == "ok"]
            report = None
            if scored:
                card = Scorecard(labels, top_k)
                card.add(rows)
                report = card.report(unmatched)
            return report, sum(row.relabelled for row in ok), len(ok), time.perf_counter() - started

        return job

    @Slot(object)
    def _report_computed(self, answer: tuple[int, AccuracyReport | None, int, int, float]) -> None:
        self._computing = False
        self._deliver(*answer)
        if self._again:
            self._again = False
            self.changed()

    def _deliver(self, taken: int, report: AccuracyReport | None, unknown: int, classified: int, took_s: float) -> None:
        if taken < self._delivered:
            return  # a report made on rows older than the one shown
        self._delivered = taken
        self.report = report
        self.unknown_changed.emit(unknown, classified)
        self.report_changed.emit(report)
        self._timer.setInterval(max(REPORT_MS, round(4 * took_s * 1000)))
