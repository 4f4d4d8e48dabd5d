"""The main window: puts the pieces together and turns user actions into session requests.

Layout: run settings and the selected row's details on the left; the drop
zone, the results table and the batching plots on the right; progress,
device and memory in the status bar. Nothing here computes a prediction:
the session and its worker do, and this class only shows what comes back.

Rows are never lost without a word: each batch goes to the journal before
the table, a person's close with rows not exported (or a run going) asks
Export / Discard / Cancel, and a close by a signal keeps the journal for the
next start to offer back (``shared/design.md``, "Closing the window").
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStyle,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ..engine.cluster import ONE_DEVICE_ONLY, ActorPeaks
from ..engine.csv_output import CsvResultWriter, write_csv
from ..engine.output_paths import OutputRefused, check_output
from ..engine.devices import DeviceUnavailable, available_devices, resolve_device
from ..engine.models import list_models
from ..engine.occupancy import KERNELS_NEED_CUDA
from ..engine.pipeline import RunSummary
from ..engine.resources import sample_images
from ..engine.sources import IMAGE_EXTENSIONS
from ..engine.sweep import SweepResult, default_sweep_sizes
from ..engine.versus import VersusResult
from ..engine.wording import counted
from . import settings as keys
from .about import about_html
from .compare_dialog import CompareDialog
from .controls import RunControls
from .detail_pane import DetailPane
from .drop_zone import DropZone
from .elided_label import ElidedLabel
from .journal import Journal, Orphan, default_folder, discard, orphans
from .message_bar import MessageBar
from .plots import BatchPlots
from .progress import RunProgress
from .results_model import ResultsModel
from .results_view import ResultsView
from .review import Review
from .session import Activity, RunSession
from .settings import Settings
from .worker import BatchRows, ModelReady

CSV_NAME = "batch-classifier-results.csv"

_log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None, quiet: bool = False, journal_folder: Path | None = None) -> None:
        """``quiet`` (the scripted --quit-when-done run) reports failures on stderr, not in dialogs."""
        super().__init__()
        self._settings = settings or Settings()
        self._quiet = quiet
        self._loading_model = ""
        self._top_k = 0  # the loaded model's top-k (the asked one lowered to its classes), once loaded
        self._on_cuda = False  # whether the loaded model runs on CUDA: kernels can be counted only there
        self.journal = Journal(journal_folder or default_folder())
        self._unexported = False  # rows that no export holds yet: a person's close asks about them
        self._closing_signal: int | None = None
        self._close_decided = False
        self._export_on_close: str | None = None
        self.close_question: QMessageBox | None = None
        self.restore_question: QMessageBox | None = None
        self.about_box: QMessageBox | None = None
        self.compare_dialog: CompareDialog | None = None
        self.versus_box: QMessageBox | None = None
        self._sweep_note = ""
        self.setWindowTitle("Batch Classifier")

        self.controls = RunControls(self._settings, list_models(), available_devices())
        self.session = RunSession(self.controls.run_config, self)
        self.results = ResultsModel(self)
        self.results_view = ResultsView(self.results)
        self.review = Review(self, self._settings, self.results, self.results_view, self._say)
        self.plots = BatchPlots()
        self.detail = DetailPane()
        self.progress = RunProgress()
        self.device_label = ElidedLabel("No model loaded")
        self.memory_label = ElidedLabel("")
        self._actor_peaks = ActorPeaks()

        self._create_actions()
        self.drop_zone = DropZone([self.open_files_action, self.open_folder_action, self.samples_action])
        self._create_menus_and_toolbar()
        self._create_layout()
        self._connect()
        # An explicit minimum keeps the layout from resizing the window's constraints each time
        # a label's text changes (which offscreen Qt also warns about on every change).
        self.setMinimumSize(960, 640)
        self._restore_geometry()
        self._update_actions()

    # --- construction ----------------------------------------------------------------------

    def _action(self, text: str, icon: QStyle.StandardPixmap | None, shortcut: QKeySequence | str | None,
                tip: str) -> QAction:
        action = QAction(text, self)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        shown = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{tip} ({shown})" if shown else tip)
        action.setStatusTip(tip)
        return action

    def _create_actions(self) -> None:
        pixmap = QStyle.StandardPixmap
        self.open_files_action = self._action(
            "Open &files…", pixmap.SP_FileIcon, QKeySequence.StandardKey.Open, "Add image files to classify"
        )
        self.open_folder_action = self._action(
            "Open f&older…", pixmap.SP_DirOpenIcon, "Ctrl+Shift+O", "Add a folder of images (searched recursively)"
        )
        self.samples_action = self._action(
            "Try &sample images", pixmap.SP_FileDialogContentsView, None, "Classify the four bundled photos"
        )
        self.export_action = self._action(
            "&Export CSV…", pixmap.SP_DialogSaveButton, "Ctrl+E", "Save every row as CSV (filters do not apply)"
        )
        self.export_shown_action = self._action(
            "Export &shown rows…", None, "Ctrl+Shift+E", "Save only the rows the filter shows, as CSV"
        )
        self.quit_action = self._action("&Quit", None, QKeySequence.StandardKey.Quit, "Stop the run and quit")
        self.start_action = self._action(
            "&Start", pixmap.SP_MediaPlay, "Ctrl+R",
            "Classify what has no row yet: the queued inputs, or what a cancelled run left",
        )
        self.run_again_action = self._action(
            "Run &again", pixmap.SP_BrowserReload, "Ctrl+Shift+R",
            "Classify every input again (to compare settings); their rows are replaced",
        )
        # Space types a space in a text field, so Pause has a second shortcut that works wherever focus is.
        self.pause_action = self._action("&Pause", pixmap.SP_MediaPause, None, "Pause or resume the run")
        self.pause_action.setShortcuts([QKeySequence("Space"), QKeySequence("Ctrl+P")])
        self.pause_action.setToolTip("Pause or resume the run (Space, or Ctrl+P also while typing)")
        self.pause_action.setCheckable(True)
        self.cancel_action = self._action(
            "&Cancel", pixmap.SP_MediaStop, "Esc", "Stop after the batch in flight; the rows done stay"
        )
        self.sweep_action = self._action(
            "&Find best batch size", pixmap.SP_FileDialogDetailedView, "Ctrl+B",
            "Measure throughput at each batch size on this device",
        )
        self.compare_action = self._action(
            "Co&mpare models…", None, None, "Measure several models at each batch size: one curve per model"
        )
        self.versus_action = self._action(
            "One by one vs &batched", None, None,
            "Run N queued (or sample) images one at a time, then as batches of N (the batch size), and compare",
        )
        self.kernels_action = self._action(
            "Count CUDA &kernels of one batch", None, None,
            "Profile one batch at the batch size with torch.profiler and count the CUDA kernels it launches",
        )
        self.about_action = self._action("&About Batch Classifier", None, None, "Versions, device and licences")
        self.clear_action = self._action(
            "C&lear results", pixmap.SP_DialogResetButton, None,
            "Empty the table and plots and forget the inputs (Start then needs new ones)",
        )

    def _create_menus_and_toolbar(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addActions([self.open_files_action, self.open_folder_action, self.samples_action])
        file_menu.addSeparator()
        file_menu.addActions([self.export_action, self.export_shown_action])
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        run_menu = menu.addMenu("&Run")
        run_menu.addActions([self.start_action, self.run_again_action, self.pause_action, self.cancel_action])
        run_menu.addSeparator()
        run_menu.addActions(
            [self.sweep_action, self.compare_action, self.versus_action, self.kernels_action, self.clear_action]
        )
        self.review.add_menu(menu)
        menu.addMenu("&Help").addAction(self.about_action)
        toolbar = QToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addActions([self.open_files_action, self.open_folder_action])
        toolbar.addSeparator()
        toolbar.addActions([self.start_action, self.pause_action, self.cancel_action])
        toolbar.addSeparator()
        toolbar.addActions([self.sweep_action, self.export_action])
        self.addToolBar(toolbar)

    def _create_layout(self) -> None:
        settings_box = QGroupBox("Run settings")
        QVBoxLayout(settings_box).addWidget(self.controls)
        detail_box = QGroupBox("Selected image")
        detail_layout = QVBoxLayout(detail_box)
        detail_layout.addWidget(self.detail, 1)
        detail_layout.addWidget(self.review.correction_box)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(settings_box)
        left_layout.addWidget(detail_box, 1)

        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addWidget(self.drop_zone)
        results_layout.addWidget(self.review.truth_offer)
        results_layout.addWidget(self.review.threshold_bar)
        results_layout.addWidget(self.results_view, 1)

        self.lower_tabs = QTabWidget()
        self.lower_tabs.setDocumentMode(True)
        self.lower_tabs.addTab(self.plots, "Batching")
        self.lower_tabs.addTab(self.review.accuracy_view, "Accuracy")
        # Beside the tabs, whichever is shown: the status bar has no room left for it in a small window.
        self.lower_tabs.setCornerWidget(self.review.accuracy_label, Qt.Corner.TopRightCorner)
        self.results_splitter = QSplitter(Qt.Orientation.Vertical)
        self.results_splitter.addWidget(results)
        self.results_splitter.addWidget(self.lower_tabs)
        self.results_splitter.setStretchFactor(0, 3)
        self.results_splitter.setStretchFactor(1, 2)
        self.results_splitter.setChildrenCollapsible(False)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.addWidget(left)
        self.main_splitter.addWidget(self.results_splitter)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setChildrenCollapsible(False)
        self.main_splitter.setContentsMargins(6, 6, 6, 0)
        self.setCentralWidget(self.main_splitter)

        status = MessageBar()
        self.setStatusBar(status)
        for label in (self.memory_label, self.device_label):
            label.setContentsMargins(10, 0, 10, 0)
        status.addPermanentWidget(self.memory_label)
        status.addPermanentWidget(self.device_label)
        status.addPermanentWidget(self.progress)

    def _connect(self) -> None:
        self.open_files_action.triggered.connect(self.open_files)
        self.open_folder_action.triggered.connect(self.open_folder)
        self.samples_action.triggered.connect(self.try_samples)
        self.export_action.triggered.connect(self.choose_export_file)
        self.export_shown_action.triggered.connect(self.choose_export_shown_file)
        self.quit_action.triggered.connect(self.close)
        self.start_action.triggered.connect(self.start)
        self.run_again_action.triggered.connect(self.session.run_again)
        self.pause_action.triggered.connect(self._toggle_pause)
        self.cancel_action.triggered.connect(self._cancel)
        self.sweep_action.triggered.connect(self._find_best)
        self.compare_action.triggered.connect(self.open_compare_dialog)
        self.versus_action.triggered.connect(self._compare_one_by_one)
        self.kernels_action.triggered.connect(self._count_kernels)
        self.clear_action.triggered.connect(self.clear_results)
        self.about_action.triggered.connect(self.show_about)
        self.drop_zone.paths_dropped.connect(self.add_inputs)

        self.controls.config_changed.connect(self.session.request_load)
        self.controls.batch_size_changed.connect(self.session.set_batch_size)
        self.controls.max_wait_changed.connect(self.session.set_max_wait_ms)
        self.plots.find_best_requested.connect(self._find_best)
        self.plots.use_batch_size.connect(self._use_batch_size)
        self.pause_action.toggled.connect(self.plots.set_paused)

        self.results_view.selection_changed.connect(self.detail.show_result)
        self.results.correction_set.connect(self._on_correction)
        self.results_view.filter_changed.connect(self._update_actions)
        self.results_view.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.review.truth_offer.accepted.connect(lambda: self.lower_tabs.setCurrentWidget(self.review.accuracy_view))
        self.review.accuracy_view.cell_chosen.connect(lambda *_: self._update_actions())
        self.review.accuracy_view.show_all.connect(self._update_actions)

        session = self.session
        session.activity_changed.connect(self._update_actions)
        session.queue_changed.connect(self._update_actions)
        session.loading.connect(self._on_loading)
        session.download_progress.connect(self._on_download)
        session.model_ready.connect(self._on_model_ready)
        session.failed.connect(self._on_failed)
        session.nothing_found.connect(self._on_nothing_found)
        session.note.connect(self._on_note)
        session.run_started.connect(self._on_run_started)
        session.run_total.connect(self._on_run_total)
        session.batch_done.connect(self._on_batch)
        session.run_finished.connect(self._on_run_finished)
        session.sweep_point.connect(self.plots.add_sweep_point)
        session.sweep_finished.connect(self._on_sweep_finished)
        session.versus_finished.connect(self._on_versus_finished)
        session.kernels_counted.connect(self._on_kernels_counted)
        session.stopped.connect(self.close)

    def _restore_geometry(self) -> None:
        if not self.restoreGeometry(self._settings.get(keys.GEOMETRY)):
            available = self.screen().availableGeometry()
            self.resize(min(1500, int(available.width() * 0.94)), min(960, int(available.height() * 0.94)))
            self.move(available.center() - self.rect().center())
        self.restoreState(self._settings.get(keys.WINDOW_STATE))
        if not self.main_splitter.restoreState(self._settings.get(keys.MAIN_SPLITTER)):
            self.main_splitter.setSizes([360, 1140])  # the settings' longest choices in full
        if not self.results_splitter.restoreState(self._settings.get(keys.RESULTS_SPLITTER)):
            self.results_splitter.setSizes([500, 330])

    # --- inputs ----------------------------------------------------------------------------

    def add_inputs(self, paths: list[str], skip: frozenset[str] = frozenset()) -> None:
        """Files and folders from a drop, a dialog or the command line: queue them for a run.

        ``skip``: paths that already have a row elsewhere (a scripted ``--resume``).
        """
        if not paths:
            return
        busy = self.session.activity is Activity.RUNNING
        self.session.enqueue([str(path) for path in paths], skip)
        self.review.inputs_changed(self.session.inputs)
        what = counted(len(paths), "item")
        self.statusBar().showMessage(f"Queued {what}; they run after the current run." if busy else f"Added {what}.", 5000)

    def open_files(self) -> None:
        patterns = " ".join(f"*{extension}" for extension in sorted(IMAGE_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add images", self._settings.get(keys.OPEN_FILES_FOLDER), f"Images ({patterns});;All files (*)"
        )
        if files:
            self._settings.set(keys.OPEN_FILES_FOLDER, str(Path(files[0]).parent))
            self.add_inputs(files)

    def open_folder(self) -> None:
        """The dialog starts in the parent of the folder added last, so its siblings are one click away."""
        folder = QFileDialog.getExistingDirectory(
            self, "Add a folder of images", self._settings.get(keys.OPEN_FOLDER_FOLDER)
        )
        if folder:
            self._settings.set(keys.OPEN_FOLDER_FOLDER, str(Path(folder).parent))
            self.add_inputs([folder])

    def try_samples(self) -> None:
        self.add_inputs([str(path) for path in sample_images()])

    # --- restoring what a killed window left ---------------------------------------------------

    def offer_restore(self) -> None:
        """At start: offer the rows of windows that were killed or crashed before they were exported."""
        found = orphans(self.journal.folder)
        if not found:
            return
        rows = sum(len(orphan.rows) for orphan in found)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(max(orphan.modified for orphan in found)))
        box = QMessageBox(
            QMessageBox.Icon.Question, "Batch Classifier",
            f"The last session ended before its results were exported: {rows:,} rows, last written {when}.",
            QMessageBox.StandardButton.NoButton, self,
        )
        box.setInformativeText("Restore them to the table (to export them), or discard them?")
        restore = box.addButton("&Restore", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Discard)
        box.setDefaultButton(restore)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _answer: self._restore_answered(found, box.clickedButton() is restore))
        self.restore_question = box
        box.open()

    def _restore_answered(self, found: list[Orphan], restore: bool) -> None:
        self.restore_question = None
        if restore:
            for orphan in found:
                self.journal.append(orphan.rows)  # ours now: a second kill must not lose them either
                self.results.append_batch(orphan.rows, [None] * len(orphan.rows))
            self.review.rows_changed()
            self._unexported = True
            self.results_view.select_first_row_if_none()
            self.statusBar().showMessage(f"Restored {self.results.rowCount():,} rows; export them with Ctrl+E.", 10000)
            self._update_actions()
        discard(orphan.path for orphan in found)

    # --- export ----------------------------------------------------------------------------

    def choose_export_file(self) -> None:
        """Export CSV: every row, to a file the user names (the dialog asks before replacing one)."""
        self._export_to_chosen_file(shown_only=False)

    def choose_export_shown_file(self) -> None:
        """Export shown rows: only what the filter lets through."""
        self._export_to_chosen_file(shown_only=True)

    def _export_to_chosen_file(self, shown_only: bool) -> None:
        path = self._ask_export_path()
        if not path:
            return
        try:
            self.export_csv(path, shown_only)
        except OSError as error:
            self._report(f"Could not write {path}: {error.strerror or error}")
        except OutputRefused as refused:
            self._report(str(refused))

    def _ask_export_path(self) -> str:
        suggested = str(Path(self._settings.get(keys.EXPORT_FOLDER)) / CSV_NAME)
        path, _ = QFileDialog.getSaveFileName(self, "Export results as CSV", suggested, "CSV files (*.csv)")
        if path:
            self._settings.set(keys.EXPORT_FOLDER, str(Path(path).parent))
        return path

    def export_csv(self, path: str, shown_only: bool = False, append: bool = False) -> int:
        """Write every row (or the shown ones), in run order whatever the sort, with the command line's columns.

        ``append`` adds them to an existing CSV of ours (a scripted ``--resume``); otherwise an
        existing file is replaced (the file dialog asked, or ``--overwrite`` said so) atomically.
        The target is never one of the inputs nor anything but a regular file (``OutputRefused``).
        """
        rows = self.results_view.shown_results() if shown_only else self.results.results()
        top_k = self._top_k or self.controls.run_config().top_k
        recursive = self.controls.run_config().recursive
        plan = check_output(path, self.session.inputs, recursive=recursive, overwrite=not append, resume=append)
        if plan.kind == "append":
            with CsvResultWriter.open(plan, top_k) as writer:
                writer.write_batch(rows)
                writer.finish()
        else:
            # A person's corrections go in a last column; a scripted run has none and writes the
            # command line's columns, so `classify --resume` and a scripted --resume can continue it.
            write_csv(path, rows, top_k, corrections=not self._quiet)
        what = "shown rows" if shown_only else "rows"
        self.statusBar().showMessage(f"Exported {len(rows):,} {what} to {path}", 8000)
        if len(rows) == self.results.rowCount():
            self._unexported = False
            self.journal.mark_done()
        return len(rows)

    def clear_results(self) -> None:
        """Empty the table, plots and progress, and forget the inputs: Start runs nothing old again."""
        self.results.clear()
        self.plots.clear()
        self.detail.show_result(None, None)
        self.session.forget_inputs()
        self.review.inputs_changed(())
        self.review.clear()
        self.journal.mark_cleared()
        self._unexported = False
        self.progress.idle()
        self.memory_label.clear()
        self.statusBar().clearMessage()
        self._update_actions()

    # --- run control -------------------------------------------------------------------------

    def start(self) -> None:
        """Start: the queue, or what the inputs so far still lack (after Cancel, the rest of the run)."""
        self.session.start(self.results.done_paths())

    def _toggle_pause(self) -> None:
        paused = self.session.toggle_pause()
        self.pause_action.setChecked(paused)
        if paused:
            self.progress.paused()
        else:
            self.progress.resumed()

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About Batch Classifier", about_html(self.device_label.text()),
                          QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.about_box = box

    def _cancel(self) -> None:
        if self.session.activity in (Activity.RUNNING, Activity.SWEEPING) or self.session.pending:
            self.session.cancel()
            self.statusBar().showMessage("Cancelling after the batch in flight…")

    def _find_best(self) -> None:
        self._sweep_note = ""
        self.plots.start_sweep()
        self.session.find_best_batch_size()
        self.progress.busy("Finding the best batch size…")

    def open_compare_dialog(self) -> CompareDialog:
        """Compare models… (non-modal); the one dialog is raised if it is open."""
        if self.compare_dialog is not None:
            self.compare_dialog.raise_()
            return self.compare_dialog
        config = self.controls.run_config()
        try:
            sizes = default_sweep_sizes(resolve_device(config.device))
        except DeviceUnavailable:  # the comparison says so when it starts; the sizes are the CPU's meanwhile
            sizes = default_sweep_sizes(resolve_device("cpu"))
        dialog = CompareDialog(
            list_models(), self.controls.run_config, lambda: self.session.inputs, self._compare_refusal, sizes, self
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.busy_changed.connect(self._update_actions)
        dialog.destroyed.connect(self._compare_dialog_gone)
        self.compare_dialog = dialog
        dialog.show()
        return dialog

    def _compare_dialog_gone(self) -> None:
        self.compare_dialog = None
        self._update_actions()

    def _compare_refusal(self) -> str:
        if self.session.activity not in (Activity.IDLE, Activity.LOADING):
            return "A run or a sweep is going: compare once it has finished (both would slow each other down)."
        if self.controls.run_config().cluster is not None:
            return ONE_DEVICE_ONLY[:1].upper() + ONE_DEVICE_ONLY[1:] + "."
        return ""

    @property
    def comparing(self) -> bool:
        return self.compare_dialog is not None and self.compare_dialog.busy

    def _compare_one_by_one(self) -> None:
        count = max(2, self.controls.batch_spin.value())
        self.session.compare_one_by_one(count)
        self.progress.busy(f"Running {count} images one by one, then batched…")

    def _count_kernels(self) -> None:
        self.session.count_kernels(self.controls.batch_spin.value())
        self.progress.busy("Profiling one batch…")

    def _on_versus_finished(self, result: VersusResult) -> None:
        self.progress.idle("Compared")
        lines = result.describe()
        self.statusBar().showMessage(f"One by one vs batched: {lines[2]}.", 10000)
        if self._quiet:
            return
        box = QMessageBox(QMessageBox.Icon.Information, "One by one vs batched", "\n".join(lines),
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.versus_box = box

    def _on_kernels_counted(self, counted: tuple[int, int]) -> None:
        self.progress.idle("Profiled")
        size, kernels = counted
        self.plots.show_kernels(size, kernels)
        self.statusBar().showMessage(f"One batch of {size} launches {kernels:,} CUDA kernels.", 10000)

    def _use_batch_size(self, size: int) -> None:
        self.controls.set_batch_size(size)
        self.statusBar().showMessage(f"Batch size set to {size}.", 5000)

    # --- what the session reports -------------------------------------------------------------

    def _update_actions(self, *_: object) -> None:
        activity = self.session.activity
        ready = activity in (Activity.IDLE, Activity.LOADING) and not self.comparing
        running = activity is Activity.RUNNING
        self.start_action.setEnabled(ready and self.session.has_inputs)
        self.run_again_action.setEnabled(ready and bool(self.session.inputs))
        self.pause_action.setEnabled(running)
        if not running:
            self.pause_action.setChecked(False)
        self.cancel_action.setEnabled(running or activity is Activity.SWEEPING or self.session.pending > 0)
        self.sweep_action.setEnabled(ready)
        self.versus_action.setEnabled(ready)
        self.kernels_action.setEnabled(ready and self._on_cuda)
        self.plots.find_button.setEnabled(ready)
        has_rows = self.results.rowCount() > 0
        self.export_action.setEnabled(has_rows)
        self.export_shown_action.setEnabled(has_rows and self.results_view.filtering)
        self.clear_action.setEnabled(has_rows and ready)
        self.review.update_actions()
        if activity is Activity.IDLE and self.progress.bar.maximum() == 0:
            self.progress.idle()

    def _on_loading(self, model: str) -> None:
        self._loading_model = Path(model).name
        self.progress.busy(f"Loading {self._loading_model}…")
        self.statusBar().showMessage(f"Loading model {self._loading_model}…")

    def _on_download(self, done: int, total: int | None) -> None:
        self.progress.download(self._loading_model, done, total)

    def _on_model_ready(self, ready: ModelReady) -> None:
        self._top_k = ready.top_k
        self._on_cuda = ready.device_type == "cuda"
        self.kernels_action.setToolTip(
            self.kernels_action.statusTip() if self._on_cuda else f"{KERNELS_NEED_CUDA}; this model runs on {ready.device_name}"
        )
        self.review.model_ready(ready.labels, ready.top_k)
        self.controls.model_loaded(ready.requested)
        self.device_label.setText(f"{ready.device_name} · {ready.runtime}")  # model and precision: the settings panel
        self.device_label.setToolTip(
            "\n".join(filter(None, [f"{ready.model} · {ready.device_name} · {ready.precision} · {ready.runtime}",
                                     ready.runtime_note]))
        )
        self.controls.offer_device_default(ready.default_batch_size)  # shown; the engine already uses it
        if self.session.activity is Activity.LOADING:
            self.statusBar().showMessage(f"Model {ready.model} ready on {ready.device_name}, {ready.runtime}.", 5000)
        if ready.runtime_note:
            self.statusBar().showMessage(ready.runtime_note[:1].upper() + ready.runtime_note[1:] + ".", 15000)

    def _on_failed(self, message: str) -> None:
        """Said once; a model that cannot load gives way to the last one that worked, so it does not stick."""
        self.progress.idle("Failed")
        fallback = self.controls.fall_back() if self.session.failed_while_loading else None
        if fallback:
            message = f"{message}\nBack to {fallback}, the last model that loaded."
        self._report(message)
        if self.session.activity is Activity.SWEEPING:
            self.plots.sweep_stopped(f"Sweep failed: {message}")

    def _on_nothing_found(self, message: str) -> None:
        self.progress.idle("No images")
        self._report(message)

    def _on_note(self, message: str) -> None:
        if self.session.activity is Activity.SWEEPING:
            self._sweep_note = message  # said again with the result, which would otherwise hide it
        self.statusBar().showMessage(message, 10000)

    def _on_run_started(self) -> None:
        self._actor_peaks = ActorPeaks()
        self.plots.show_actor_peaks([])
        self.progress.start_run()
        self.statusBar().showMessage("Classifying… (counting the images)")

    def _on_run_total(self, total: int) -> None:
        self.progress.set_total(total)
        if self.session.activity is Activity.RUNNING:
            self.statusBar().showMessage(f"Classifying {total:,} images…")

    def _on_correction(self, path: str, label: str) -> None:
        """A person's correction is journalled like a row, and until it is exported a close asks about it."""
        try:
            self.journal.record_correction(path, label)
        except OSError as error:
            self.statusBar().showMessage(f"Cannot write the journal {self.journal.path}: {error}")
        self._unexported = True

    def _on_batch(self, rows: BatchRows) -> None:
        results = self.review.annotate(rows.results)
        try:
            self.journal.append(results)
        except OSError as error:
            self.statusBar().showMessage(f"Cannot write the journal {self.journal.path}: {error}")
        self.results.append_batch(results, rows.thumbnails)
        self.review.rows_changed()
        self._unexported = self._unexported or bool(rows.results)
        self.results_view.select_first_row_if_none()
        self.plots.add_batch(rows.stats)
        self.progress.add_images(len(rows.results))
        self._show_memory(rows)
        if rows.results and not self.export_action.isEnabled():
            self._update_actions()

    def _show_memory(self, rows: BatchRows) -> None:
        """The last batch's memory, or on a cluster each actor's peak; a batch that decoded nothing has no reading."""
        if rows.source:
            self._actor_peaks.add(rows.source, rows.stats.memory)
            self.memory_label.setText(self._actor_peaks.describe())
            self.memory_label.setToolTip("\n".join(self._actor_peaks.lines()))
            self.plots.show_actor_peaks(self._actor_peaks.lines())
        elif rows.stats.memory is not None:
            self.memory_label.setText(rows.stats.memory.describe())

    def _on_run_finished(self, summary: RunSummary) -> None:
        verb = "Cancelled after" if summary.cancelled else "Done:"
        text = f"{verb} {summary.describe()}"
        self.progress.finished("Cancelled" if summary.cancelled else "Done")
        self.statusBar().showMessage(text)
        _log.info("%s", text)  # the run's one line in the log too: what it skipped as duplicates, for one
        self.statusBar().setToolTip("\n".join([text, *(folder.describe() for folder in summary.unreadable_folders)]))

    def _on_sweep_finished(self, result: SweepResult) -> None:
        self.plots.finish_sweep(result)
        self.progress.idle("Sweep done")
        text = f"Best batch size: {result.best_batch_size}." if result.best_batch_size else "Sweep stopped."
        self.statusBar().showMessage(f"{text} {self._sweep_note}".strip(), 10000)

    def _say(self, message: str) -> None:
        """Something for the status bar that needs no dialog."""
        self.statusBar().showMessage(message, 10000)

    def _report(self, message: str) -> None:
        """A failure the user must see: the status bar always, plus a dialog unless scripted."""
        self.statusBar().showMessage(message)
        if self._quiet:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Batch Classifier", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # window-modal and non-blocking: the event loop (and the worker's signals) go on

    # --- closing -----------------------------------------------------------------------------

    def close_for_signal(self, signum: int) -> None:
        """SIGTERM, SIGHUP or Ctrl-C in the terminal: close without a dialog, keeping the journal."""
        self._closing_signal = signum
        if self.close_question is not None:
            self.close_question.done(QMessageBox.StandardButton.Cancel)
        self.close()

    @property
    def closed_by_signal(self) -> int | None:
        return self._closing_signal

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask a person about rows not exported; then stop cooperatively, export if asked, and close."""
        if self._must_ask():
            event.ignore()
            self._ask_before_closing()
            return
        if not self.session.shutdown():
            event.ignore()
            self.progress.busy("Stopping…")
            self.statusBar().showMessage("Stopping: finishing the batch in flight, then closing…")
            return
        if self._export_on_close is not None:
            path, self._export_on_close = self._export_on_close, None
            try:
                self.export_csv(path)
            except (OSError, OutputRefused) as error:
                self._close_decided = False
                event.ignore()
                reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
                self._report(f"Could not write {path}: {reason}. The window stays open; the rows are still here.")
                return
        self.review.shutdown()
        if self.compare_dialog is not None:
            self.compare_dialog.close()
        self.journal.close(keep=self._closing_signal is not None or self._quiet and self._unexported)
        self._save_settings()
        super().closeEvent(event)

    def _must_ask(self) -> bool:
        if self._close_decided or self._quiet or self._closing_signal is not None:
            return False
        return self._unexported or self.session.activity is Activity.RUNNING

    def _ask_before_closing(self) -> None:
        if self.close_question is not None:
            self.close_question.raise_()
            return
        rows = self.results.rowCount()
        running = self.session.activity is Activity.RUNNING
        if running:
            text = f"A run is in progress ({self.progress.done:,} images done so far)."
        else:
            text = f"{rows:,} result rows have not been exported."
        box = QMessageBox(QMessageBox.Icon.Question, "Batch Classifier", text, QMessageBox.StandardButton.NoButton, self)
        box.setInformativeText(
            "Export the rows to a CSV file before closing? Closing stops the run after the batch in flight."
            if running else "Export them to a CSV file before closing?"
        )
        box.setStandardButtons(
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel
        )
        box.button(QMessageBox.StandardButton.Save).setText("&Export…")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(self._close_answered)
        self.close_question = box
        box.open()  # window-modal, not blocking: the run's batches keep arriving while the user reads

    def _close_answered(self, answer: int) -> None:
        self.close_question = None
        if answer == QMessageBox.StandardButton.Discard:
            self._close_decided = True
        elif answer == QMessageBox.StandardButton.Save:
            path = self._ask_export_path()
            if not path:
                return
            self._export_on_close = path  # written once the run has stopped, so the last batch is in it
            self._close_decided = True
        else:
            return
        self.close()

    def _save_settings(self) -> None:
        self.controls.save()
        self._settings.set(keys.GEOMETRY, self.saveGeometry())
        self._settings.set(keys.WINDOW_STATE, self.saveState())
        self._settings.set(keys.MAIN_SPLITTER, self.main_splitter.saveState())
        self._settings.set(keys.RESULTS_SPLITTER, self.results_splitter.saveState())
        self._settings.sync()
