"""After the run: ground truth, accuracy, the confidence threshold and corrections, wired together.

The main window places the widgets made here and forwards what the session
reports (a model loaded, inputs added, a batch); this object connects them:
the truth offer and the Review menu choose the truth (``Assessment``), the
threshold relabels the table, the matrix's cells filter it, and the
correction box sets a row's label, walking the rows from the keyboard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMenuBar, QToolButton, QWidget

from ..engine.accuracy import AccuracyReport
from ..engine.records import ImageResult
from ..engine.truth import LabelMatcher, TruthError, imagenet_synsets
from . import settings as keys
from .accuracy_view import AccuracyView
from .assessment import FOLDERS, Assessment
from .results_model import ResultsModel
from .results_view import ResultsView
from .review_bar import CorrectionBox, ThresholdBar
from .settings import Settings
from .sort_dialog import SortDialog
from .truth_offer import TruthOffer


def status_line(report: AccuracyReport) -> str:
    """The accuracy line beside the lower tabs: the command line's headline, and how many were not scored."""
    unscored = report.without_truth + report.errors
    return report.headline() + (f" · {unscored:,} not scored" if unscored else "")


class Review(QObject):
    def __init__(
        self,
        window: QWidget,
        settings: Settings,
        results: ResultsModel,
        view: ResultsView,
        say: Callable[[str], None],
    ) -> None:
        super().__init__(window)
        self._window = window
        self._settings = settings
        self._results = results
        self._view = view
        self._say = say
        self._matcher: LabelMatcher | None = None
        self.sort_dialog: SortDialog | None = None
        self._threshold_moved = False
        self.assessment = Assessment(results, self)
        self.accuracy_view = AccuracyView()
        self.truth_offer = TruthOffer()
        self.correction_box = CorrectionBox()
        self.accuracy_label = QLabel("")
        self.accuracy_label.setContentsMargins(10, 0, 10, 0)

        self.folders_action = QAction("Use &folder names as truth", window)
        self.folders_action.setStatusTip("Each image's true label is the name of its top-level folder")
        self.csv_action = QAction("Truth from &CSV…", window)
        self.csv_action.setStatusTip("Read true labels from a CSV with path and label columns")
        self.clear_truth_action = QAction("Forget the &truth", window)
        self.least_sure_action = QAction("Review &least sure first", window)
        self.least_sure_action.setShortcut(QKeySequence("Ctrl+L"))
        self.least_sure_action.setStatusTip("Sort by confidence, lowest first, and type corrections row by row")
        self.correct_action = QAction("C&orrect label…", window)
        self.correct_action.setShortcut(QKeySequence("F2"))
        self.correct_action.setStatusTip("Type the right label for the selected image")
        self.sort_action = QAction("&Sort into folders…", window)
        self.sort_action.setStatusTip("Copy or link each image into a folder named after its label (never moves)")
        self.show_all_action = QAction("Show &all rows", window)
        self.show_all_action.setStatusTip("Clear the confusion-matrix cell filter")
        review_button = QToolButton()
        review_button.setDefaultAction(self.least_sure_action)
        review_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.threshold_bar = ThresholdBar(review_button)
        self._connect()
        self.update_actions()

    def add_menu(self, menu_bar: QMenuBar) -> None:
        menu = menu_bar.addMenu("Re&view")
        menu.addActions([self.folders_action, self.csv_action, self.clear_truth_action])
        menu.addSeparator()
        menu.addActions([self.least_sure_action, self.correct_action, self.show_all_action])
        menu.addSeparator()
        menu.addAction(self.sort_action)

    def _connect(self) -> None:
        self.folders_action.triggered.connect(self.use_folders)
        self.csv_action.triggered.connect(self.choose_truth_csv)
        self.clear_truth_action.triggered.connect(self.assessment.clear_truth)
        self.least_sure_action.triggered.connect(self.review_least_sure)
        self.correct_action.triggered.connect(self.correction_box.edit.setFocus)
        self.show_all_action.triggered.connect(lambda: self.show_cell(None))
        self.sort_action.triggered.connect(self.open_sort_dialog)
        self.truth_offer.accepted.connect(self.use_folders)
        self.truth_offer.declined.connect(self.assessment.decline_folders)
        self.assessment.offer.connect(self.truth_offer.show)
        self.threshold_bar.threshold_changed.connect(self._set_threshold)
        self.assessment.report_changed.connect(self._show_report)
        self.assessment.unknown_changed.connect(self._unknown_counted)
        self.accuracy_view.cell_chosen.connect(lambda truth, label: self.show_cell((truth, label)))
        self.accuracy_view.show_all.connect(lambda: self.show_cell(None))
        self.correction_box.correction_entered.connect(self.correct)
        self.correction_box.correction_cleared.connect(lambda: self._set_correction(""))
        self.correction_box.step.connect(self._view.step)
        self._view.selection_changed.connect(self._selection_changed)
        self._view.proxy.rowsInserted.connect(self._update_cell_count)
        self._view.proxy.rowsRemoved.connect(self._update_cell_count)

    # --- what the window forwards ------------------------------------------------------------

    def model_ready(self, labels: Sequence[str], top_k: int) -> None:
        """Said at every run's start: the matcher and the completer are rebuilt only for new labels."""
        if self._matcher is None or tuple(labels) != self._matcher.labels:
            self._matcher = LabelMatcher(labels, imagenet_synsets())
            self.correction_box.set_labels(labels)
        self.assessment.set_model(labels, top_k)
        self._offer()
        self.update_actions()

    def inputs_changed(self, inputs: Sequence[str]) -> None:
        self.assessment.set_inputs(inputs)
        self._offer()
        self.update_actions()

    def annotate(self, results: Sequence[ImageResult]) -> Sequence[ImageResult]:
        return self.assessment.annotate(results)

    def rows_changed(self) -> None:
        self.assessment.changed()
        self.update_actions()

    def clear(self) -> None:
        self.show_cell(None)
        self.truth_offer.hide()
        self.assessment.changed()

    def update_actions(self) -> None:
        has_rows = self._results.rowCount() > 0
        ready = bool(self.assessment.labels)
        self.folders_action.setEnabled(ready and self.assessment.source != FOLDERS)
        self.csv_action.setEnabled(ready)
        self.clear_truth_action.setEnabled(self.assessment.source is not None)
        self.least_sure_action.setEnabled(has_rows)
        self.correct_action.setEnabled(has_rows and ready)
        self.show_all_action.setEnabled(self._view.proxy.cell is not None)
        self.sort_action.setEnabled(has_rows)

    def open_sort_dialog(self) -> SortDialog:
        """The rows as they are now (threshold, corrections) go to the dialog; the table goes on."""
        if self.sort_dialog is not None and self.sort_dialog.busy:
            self.sort_dialog.raise_()
            return self.sort_dialog
        folder = self._settings.get(keys.SORT_FOLDER) or str(Path(self._settings.get(keys.EXPORT_FOLDER)) / "sorted")
        dialog = SortDialog(self._results.results(), self._results.min_confidence, folder, self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.sort_button.clicked.connect(
            lambda: self._settings.set(keys.SORT_FOLDER, dialog.folder_edit.text().strip())
        )
        dialog.destroyed.connect(lambda *_: self._sort_dialog_gone(dialog))
        if self.sort_dialog is not None:
            self.sort_dialog.close()
        self.sort_dialog = dialog
        dialog.show()
        return dialog

    def _sort_dialog_gone(self, dialog: SortDialog) -> None:
        if self.sort_dialog is dialog:
            self.sort_dialog = None

    def shutdown(self) -> None:
        """The window closes: a sort in flight stops after the image being placed (its manifest is whole)."""
        if self.sort_dialog is not None:
            self.sort_dialog.close()

    # --- truth -------------------------------------------------------------------------------

    def _offer(self) -> None:
        self.assessment.ask_offer()

    def use_folders(self) -> None:
        self.truth_offer.hide()
        self.assessment.use_folders()
        self.update_actions()
        self._say("Ground truth: the folder names.")

    def choose_truth_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._window, "Ground truth CSV (path,label)", self._settings.get(keys.OPEN_FILES_FOLDER),
            "CSV files (*.csv);;All files (*)",
        )
        if path:
            self.use_truth_csv(path)

    def use_truth_csv(self, path: str) -> bool:
        try:
            self.assessment.use_csv(path)
        except TruthError as error:
            self._say(str(error))
            return False
        self.truth_offer.hide()
        self.update_actions()
        self._say(f"Ground truth: {Path(path).name}.")
        return True

    def _show_report(self, report: AccuracyReport | None) -> None:
        self.accuracy_view.show_report(report)
        self._view.show_truth_column(report is not None)
        self.accuracy_label.setText("" if report is None else status_line(report))
        self.accuracy_label.setToolTip(self.accuracy_view.headline.text().replace("<br>", "\n"))
        self._update_cell_count()

    # --- threshold, matrix filter, corrections ----------------------------------------------

    def _set_threshold(self, probability: float) -> None:
        self._results.set_min_confidence(probability)
        self._threshold_moved = True
        self.assessment.changed()

    def _unknown_counted(self, unknown: int, classified: int) -> None:
        self.threshold_bar.show_unknown(unknown, classified)
        threshold = self._results.min_confidence
        if self._threshold_moved and threshold:
            self._say(f"{unknown:,} of {classified:,} unknown (below {threshold * 100:.0f} %)")
        self._threshold_moved = False

    def show_cell(self, cell: tuple[str, str] | None) -> None:
        self._view.set_cell(cell)
        self._update_cell_count()
        self.update_actions()

    def _update_cell_count(self, *_: object) -> None:
        self.accuracy_view.show_cell(self._view.proxy.cell, self._view.proxy.rowCount())

    def review_least_sure(self) -> None:
        self._view.review_least_sure()
        self.correction_box.edit.setFocus()

    def correct(self, text: str) -> None:
        """Match what was typed to one of the model's labels (forgivingly, as truth is), set it, go on."""
        if self._matcher is None:
            self._say("Corrections are chosen from the model's labels: they are known once a model has loaded.")
            return
        label, reason = self._matcher.match(text)
        if label is None:
            self._say(f"'{text}' is not a label of this model: {reason}")
            return
        self._set_correction(label)

    def _set_correction(self, label: str) -> None:
        row = self._view.current_source_row()
        if row is None:
            return
        self._results.set_correction(row, label)
        self.assessment.changed()
        if label and self._view.current_source_row() == row:  # still shown (not filtered out): go on
            self._view.step(1)
        if self._view.current_source_row() == row:  # the last row, or taken back: show it as it is now
            self.correction_box.show_row(label)

    def _selection_changed(self, result: ImageResult | None, _thumbnail: object) -> None:
        self.correction_box.show_row(None if result is None else result.corrected_label)
