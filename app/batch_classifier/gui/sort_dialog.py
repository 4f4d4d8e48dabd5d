"""Sort into folders…: the window's face of ``engine/sorting.py``, run off the GUI thread.

The dialog chooses the destination, the mode (copy, hard link, symbolic
link) and the threshold; *Preview* is the engine's dry run (counts per
folder, suffixes predicted, nothing made), *Sort* the real thing with a
progress bar and *Stop*. What to put where is the engine's rule
(``items_from_results``, the same as ``batch-classifier sort`` applies to a
CSV: corrections win, errors go to ``_errors``, rows under the threshold to
``_unknown``), and so is the promise: nothing is moved, replaced or deleted,
and the manifest it writes lets ``batch-classifier sort --undo`` remove
exactly what was made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from html import escape

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..engine.records import ImageResult
from ..engine.sorting import (
    MODES,
    Mode,
    SortError,
    SortOutcome,
    describe_counts,
    describe_skipped,
    items_from_results,
    sort_images,
)

PROGRESS_EVERY_S = 0.1
_MODE_TEXT = {
    "copy": "Copy (the originals stay where they are)",
    "hardlink": "Hard link (no extra space; same file system only)",
    "symlink": "Symbolic link (points at the original)",
}


class _SortJob(QObject):
    """One sort or preview on a thread of its own; reports through queued signals."""

    progress = Signal(int, int)
    finished = Signal(object)  # SortOutcome
    failed = Signal(str)

    def __init__(self, rows: Sequence[ImageResult], into: str, mode: Mode, dry_run: bool) -> None:
        super().__init__()
        self._rows, self._into, self._mode, self._dry_run = rows, into, mode, dry_run
        self.stop = threading.Event()
        self._last_report = 0.0
        self.thread = threading.Thread(target=self._run, name="sort", daemon=True)

    def _run(self) -> None:
        try:
            outcome = sort_images(
                items_from_results(self._rows), self._into, self._mode, dry_run=self._dry_run,
                on_progress=self._progress, source_csv="(the window's results)", stop=self.stop.is_set,
            )
        except SortError as error:
            self._emit(self.failed, str(error))
        except OSError as error:
            self._emit(self.failed, f"cannot sort into {self._into}: {error.strerror or error}")
        else:
            self._emit(self.finished, outcome)

    def _progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self._last_report >= PROGRESS_EVERY_S:
            self._last_report = now
            self._emit(self.progress, done, total)

    @staticmethod
    def _emit(signal: Signal, *args: object) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the dialog is gone; the sort itself is complete and in its manifest
            pass


class SortDialog(QDialog):
    """Non-modal: the window and its table stay usable while files are placed."""

    def __init__(self, rows: Sequence[ImageResult], min_confidence: float, start_folder: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sort into folders")
        # An explicit minimum: the layout must not move the window's constraints each time a text changes.
        self.setMinimumSize(560, 440)
        self._rows = tuple(rows)
        self._job: _SortJob | None = None
        self.outcome: SortOutcome | None = None

        self.folder_edit = QLineEdit(start_folder)
        self.folder_edit.setPlaceholderText("Destination folder (created if missing)")
        browse = QPushButton("Browse…")
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        self.mode_combo = QComboBox()
        for mode in MODES:
            self.mode_combo.addItem(_MODE_TEXT[mode], mode)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 100.0)
        self.threshold_spin.setDecimals(0)
        self.threshold_spin.setSingleStep(5.0)
        self.threshold_spin.setSuffix(" %")
        self.threshold_spin.setValue(min_confidence * 100.0)
        self.threshold_spin.setToolTip("Images below this confidence go to _unknown/ (a corrected image goes "
                                       "to its correction's folder)")
        form = QFormLayout()
        form.addRow("&Into:", folder_row)
        form.addRow("&Mode:", self.mode_combo)
        form.addRow("Min &confidence:", self.threshold_spin)
        form.itemAt(0, QFormLayout.ItemRole.LabelRole).widget().setBuddy(self.folder_edit)

        promise = QLabel(
            f"{len(self._rows):,} images, each into <i>Into/&lt;label&gt;/</i>; below the threshold into "
            "<i>_unknown/</i>, errors into <i>_errors/</i>. Nothing is moved, replaced or deleted: a name "
            "already taken gets a suffix, and a manifest lets <code>batch-classifier sort --undo</code> "
            "remove exactly what was made."
        )
        promise.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, max(1, len(self._rows)))
        self.progress.setValue(0)
        self.summary = QTextBrowser()
        self.summary.setOpenLinks(False)
        self.summary.setMinimumHeight(160)
        self.summary.setPlaceholderText("Preview shows the folders and counts; nothing is made until Sort.")

        self.buttons = QDialogButtonBox()
        self.preview_button = self.buttons.addButton("&Preview", QDialogButtonBox.ButtonRole.ActionRole)
        self.sort_button = self.buttons.addButton("&Sort", QDialogButtonBox.ButtonRole.AcceptRole)
        self.stop_button = self.buttons.addButton("S&top", QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.stop_button.setEnabled(False)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(promise)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary, 1)
        layout.addWidget(self.buttons)

        browse.clicked.connect(self._browse)
        self.preview_button.clicked.connect(lambda: self.start(dry_run=True))
        self.sort_button.clicked.connect(lambda: self.start(dry_run=False))
        self.stop_button.clicked.connect(self._stop)
        self.close_button.clicked.connect(self.close)
        self.folder_edit.textChanged.connect(self._update_buttons)
        self._update_buttons()

    @property
    def busy(self) -> bool:
        return self._job is not None

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sort into", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def _update_buttons(self) -> None:
        ready = not self.busy and bool(self.folder_edit.text().strip()) and bool(self._rows)
        self.preview_button.setEnabled(ready)
        self.sort_button.setEnabled(ready)
        self.stop_button.setEnabled(self.busy)
        for widget in (self.folder_edit, self.mode_combo, self.threshold_spin):
            widget.setEnabled(not self.busy)

    def start(self, dry_run: bool) -> None:
        """Preview (``dry_run``) or sort, on a thread; the summary follows when it ends."""
        if self.busy:
            return
        threshold = self.threshold_spin.value() / 100.0
        rows = [replace(row, min_confidence=threshold) for row in self._rows]
        job = _SortJob(rows, self.folder_edit.text().strip(), self.mode_combo.currentData(), dry_run)
        job.progress.connect(self._progressed)
        job.finished.connect(self._finished)
        job.failed.connect(self._failed)
        self._job = job
        self.progress.setValue(0)
        self.summary.setPlainText("Previewing…" if dry_run else "Sorting…")
        self._update_buttons()
        job.thread.start()

    def wait(self, timeout_s: float = 30.0) -> None:
        """Block until the job in flight ends (closing, and tests)."""
        if self._job is not None:
            self._job.thread.join(timeout_s)

    def _stop(self) -> None:
        if self._job is not None:
            self._job.stop.set()
            self.summary.setPlainText("Stopping after the image being placed…")

    @Slot(int, int)
    def _progressed(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)

    @Slot(object)
    def _finished(self, outcome: SortOutcome) -> None:
        self._job = None
        self.outcome = outcome
        self.progress.setValue(self.progress.maximum() if not outcome.interrupted else self.progress.value())
        self.summary.setHtml(self._summary_html(outcome))
        self._update_buttons()

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._job = None
        self.summary.setPlainText(message)
        self._update_buttons()

    def _summary_html(self, outcome: SortOutcome) -> str:
        into = escape(self.folder_edit.text().strip())
        verb = "would sort" if outcome.dry_run else "stopped after sorting" if outcome.interrupted else "sorted"
        renamed = sum(placed.renamed for placed in outcome.placed)
        lines = [
            f"<b>{verb.capitalize()} {len(outcome.placed):,} of {len(self._rows):,} images into {into}</b> "
            f"({escape(self.mode_combo.currentData())})",
            escape(describe_counts(outcome.counts())),
        ]
        if renamed:
            lines.append(f"{renamed:,} {'would get' if outcome.dry_run else 'got'} a suffix: the name was taken")
        if outcome.skipped:
            lines.append(f"{len(outcome.skipped):,} skipped:")
            lines += [escape(line.strip()) for line in describe_skipped(outcome.skipped)]
        if outcome.manifest is not None:
            lines.append(f"manifest: {escape(str(outcome.manifest))}")
            lines.append(f"undo with: <code>batch-classifier sort --undo '{escape(str(outcome.manifest))}'</code>")
        if outcome.dry_run:
            lines.append("Nothing was made. Sort makes it.")
        return "<br>".join(lines)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing stops a sort after the image in flight; what was made is in the manifest."""
        if self._job is not None:
            self._job.stop.set()
            self.wait()
            self._job = None
        super().closeEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: ANN001 - Qt's signature
        if event.key() == Qt.Key.Key_Escape and self.busy:
            self._stop()
            return
        super().keyPressEvent(event)
