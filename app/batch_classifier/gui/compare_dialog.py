"""Compare models…: ``engine/compare.py``'s sweep over the models chosen, one curve per model.

Batch size and hardware are two levers of batching; the model is the third.
The dialog lists the engine's model registry (those that would need a
download offline are marked, unless *Random weights* is on: then nothing is
downloaded and only speed is measured), plus model files the user adds, and
runs ``compare_models`` on a thread of its own, cancellable at the next
measured point. Curves grow as points arrive (``model_curves.py``); the table
below gives each model's batch-1 and best img/s, best size and batching gain,
the numbers ``bench --models`` prints.

It measures on the device of the run settings while the window is idle: a
comparison does not start while a run or a sweep goes, and the window's
Start and Find best batch size wait while it measures, since each would
slow the other's numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..engine.compare import Comparison, ModelFailed, ModelSweep, compare_models
from ..engine.models import ModelInfo
from ..engine.pipeline import START_ERRORS, RunConfig
from ..engine.resources import sample_images
from ..engine.sweep import SweepBudget, SweepPoint, images_to_measure
from .model_curves import ModelCurves, shown_name
from .worker import SWEEP_IMAGES

NAME_ROLE = Qt.ItemDataRole.UserRole + 1
_DOWNLOAD_MARK = "  (download)"
_TABLE_HEADERS = ("Model", "Batch-1 img/s", "Best img/s", "Best batch", "Gain")


def parse_sizes(text: str) -> list[int]:
    """``1,2,4,8``: batch sizes, each 1 to 65536; ValueError with a line for the user otherwise."""
    try:
        sizes = sorted({int(part) for part in text.replace(" ", "").split(",") if part})
    except ValueError:
        raise ValueError(f"batch sizes are whole numbers separated by commas, not {text!r}") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > 65536:
        raise ValueError("give batch sizes from 1 to 65536, e.g. 1,2,4,8,16")
    return sizes


class _CompareJob(QObject):
    """One comparison on a thread of its own; reports through queued signals."""

    model_started = Signal(str)
    point = Signal(str, object)  # requested name, SweepPoint
    finished = Signal(object)  # Comparison
    failed = Signal(str)

    def __init__(self, models: Sequence[str], config: RunConfig, inputs: Sequence[str], sizes: Sequence[int],
                 budget: SweepBudget | None) -> None:
        super().__init__()
        self._models, self._config, self._inputs, self._sizes = tuple(models), config, tuple(inputs), tuple(sizes)
        self._budget = budget
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="compare-models", daemon=True)

    def _run(self) -> None:
        try:
            files = images_to_measure(self._inputs, SWEEP_IMAGES, self._config.recursive) if self._inputs else []
            files = files or [str(path) for path in sample_images()]
            comparison = compare_models(
                self._models, self._config, files, self._sizes,
                on_point=lambda name, point: self._emit(self.point, name, point),
                on_model=lambda name: self._emit(self.model_started, name),
                should_stop=self.stop.is_set, budget=self._budget,
            )
        except (ModelFailed, *START_ERRORS) as error:
            self._emit(self.failed, str(error))
        except Exception as error:  # noqa: BLE001 - a crash on this thread must still reach the user
            self._emit(self.failed, f"the comparison stopped on an unexpected error: {error}")
        else:
            self._emit(self.finished, comparison)

    @staticmethod
    def _emit(signal: Signal, *args: object) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the dialog is gone
            pass


class CompareDialog(QDialog):
    busy_changed = Signal(bool)

    def __init__(
        self,
        models: Sequence[ModelInfo],
        config_source: Callable[[], RunConfig],
        inputs_source: Callable[[], Sequence[str]],
        refusal: Callable[[], str],
        default_sizes: Sequence[int],
        parent: QWidget | None = None,
    ) -> None:
        """``refusal`` says why a comparison cannot start now (a run is going), or ``""``."""
        super().__init__(parent)
        self.setWindowTitle("Compare models under batching")
        self.setMinimumSize(900, 600)  # explicit: a text that changes must not move the window's constraints
        self._config_source, self._inputs_source, self._refusal = config_source, inputs_source, refusal
        self._infos = {info.name: info for info in models}
        self._job: _CompareJob | None = None
        self.budget: SweepBudget | None = None
        """How long each size is measured; None: the engine's budget for the device (tests shorten it)."""
        self.comparison: Comparison | None = None

        self.random_weights = QCheckBox("&Random weights (speed only, nothing downloaded)")
        self.random_weights.setToolTip("Build each architecture without its trained weights: the speed is the "
                                       "same, the predictions are not, and no model needs a download")
        self.model_list = QListWidget()
        self.model_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        for info in models:
            self._add_item(info.name, info.description, info.offline_ready)
        self.add_file_button = QPushButton("Add model &file…")
        self.sizes_edit = QLineEdit(",".join(str(size) for size in default_sizes))
        self.sizes_edit.setToolTip("Batch sizes to measure, for every model")
        self.start_button = QPushButton("&Compare")
        self.stop_button = QPushButton("S&top")
        self.stop_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.status = QLabel("Tick two or more models.")
        self.status.setWordWrap(True)
        self.curves = ModelCurves()
        self.table = QTableWidget(0, len(_TABLE_HEADERS))
        self.table.setHorizontalHeaderLabels(list(_TABLE_HEADERS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setMaximumHeight(150)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("Models:"))
        left_layout.addWidget(self.model_list, 1)
        left_layout.addWidget(self.add_file_button)
        left_layout.addWidget(self.random_weights)
        sizes_row = QHBoxLayout()
        sizes_label = QLabel("&Batch sizes:")
        sizes_label.setBuddy(self.sizes_edit)
        sizes_row.addWidget(sizes_label)
        sizes_row.addWidget(self.sizes_edit, 1)
        left_layout.addLayout(sizes_row)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.close_button):
            buttons.addWidget(button)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.status)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.curves, 1)
        right_layout.addWidget(self.table)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([280, 620])
        splitter.setChildrenCollapsible(False)
        QVBoxLayout(self).addWidget(splitter)

        self.add_file_button.clicked.connect(self._choose_file)
        self.random_weights.toggled.connect(self._mark_downloads)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.close_button.clicked.connect(self.close)
        self.model_list.itemChanged.connect(self._update_buttons)
        self._update_buttons()

    # --- the list of models ------------------------------------------------------------------

    def _add_item(self, name: str, tip: str, offline_ready: bool) -> QListWidgetItem:
        item = QListWidgetItem()
        item.setData(NAME_ROLE, name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Unchecked)
        item.setToolTip(tip)
        self._set_item_text(item, offline_ready)
        self.model_list.addItem(item)
        return item

    def _set_item_text(self, item: QListWidgetItem, offline_ready: bool) -> None:
        shown = shown_name(item.data(NAME_ROLE))
        marked = not offline_ready and not self.random_weights.isChecked()
        item.setText(shown + (_DOWNLOAD_MARK if marked else ""))

    def _mark_downloads(self) -> None:
        for row in range(self.model_list.count()):
            item = self.model_list.item(row)
            info = self._infos.get(item.data(NAME_ROLE))
            self._set_item_text(item, info.offline_ready if info is not None else True)

    def add_model_file(self, path: str, checked: bool = True) -> None:
        """A model file (TorchScript, .pt2, a state dict the registry can read) to compare too."""
        for row in range(self.model_list.count()):
            if self.model_list.item(row).data(NAME_ROLE) == path:
                self.model_list.item(row).setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
                return
        item = self._add_item(path, path, True)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def set_checked(self, names: Sequence[str]) -> None:
        for row in range(self.model_list.count()):
            item = self.model_list.item(row)
            item.setCheckState(Qt.CheckState.Checked if item.data(NAME_ROLE) in names else Qt.CheckState.Unchecked)

    def checked_models(self) -> list[str]:
        return [
            self.model_list.item(row).data(NAME_ROLE)
            for row in range(self.model_list.count())
            if self.model_list.item(row).checkState() == Qt.CheckState.Checked
        ]

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a model file", "", "Models (*.pt *.pt2 *.pth *.safetensors);;All files (*)")
        if path:
            self.add_model_file(path)

    # --- running ---------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._job is not None

    def _update_buttons(self, *_: object) -> None:
        self.start_button.setEnabled(not self.busy and len(self.checked_models()) >= 2)
        self.stop_button.setEnabled(self.busy)
        for widget in (self.model_list, self.add_file_button, self.random_weights, self.sizes_edit):
            widget.setEnabled(not self.busy)
        if not self.busy and len(self.checked_models()) < 2 and self.comparison is None:
            self.status.setText("Tick two or more models.")

    def start(self) -> None:
        """Measure each ticked model at each batch size, on the run settings' device, off the GUI thread."""
        if self.busy:
            return
        refusal = self._refusal()
        if refusal:
            self.status.setText(refusal)
            return
        try:
            sizes = parse_sizes(self.sizes_edit.text())
        except ValueError as error:
            self.status.setText(str(error))
            return
        models = self.checked_models()
        config = replace(self._config_source(), pretrained=not self.random_weights.isChecked())
        job = _CompareJob(models, config, self._inputs_source(), sizes, self.budget)
        job.model_started.connect(self._model_started)
        job.point.connect(self._point)
        job.finished.connect(self._finished)
        job.failed.connect(self._failed)
        self._job = job
        self.comparison = None
        self.curves.clear()
        self.table.setRowCount(0)
        self.status.setText(f"Comparing {len(models)} models at batch sizes {','.join(map(str, sizes))}…")
        self._update_buttons()
        self.busy_changed.emit(True)
        job.thread.start()

    def stop(self) -> None:
        if self._job is not None:
            self._job.stop.set()
            self.status.setText("Stopping after the size being measured…")

    def wait(self, timeout_s: float = 60.0) -> None:
        if self._job is not None:
            self._job.thread.join(timeout_s)

    @Slot(str)
    def _model_started(self, name: str) -> None:
        self.curves.start_model(name)
        self.status.setText(f"Measuring {shown_name(name)}…")

    @Slot(str, object)
    def _point(self, name: str, point: SweepPoint) -> None:
        self.curves.add_point(name, point)
        self.status.setText(f"Measuring {shown_name(name)}: batch {point.batch_size} {point.describe()}")

    @Slot(object)
    def _finished(self, comparison: Comparison) -> None:
        self._done()
        self.comparison = comparison
        for sweep in comparison.sweeps:
            self.curves.finish_model(sweep)
            self._add_row(sweep)
        stopped = len(comparison.sweeps) < len(self.checked_models())
        self.status.setText(
            f"{'Stopped after' if stopped else 'Done:'} {len(comparison.sweeps)} models on {comparison.device} "
            f"({comparison.precision}), {comparison.images} images."
        )

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._done()
        self.status.setText(message)

    def _done(self) -> None:
        self._job = None
        self._update_buttons()
        self.busy_changed.emit(False)

    def _add_row(self, sweep: ModelSweep) -> None:
        best = sweep.best_point
        cells = [sweep.model, f"{sweep.result.sequential_images_per_s:.1f}"]
        cells += [f"{best.images_per_s:.1f}", str(best.batch_size), f"{sweep.batching_gain:.2f}x"] if best else ["-"] * 3
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if column:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, column, item)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing stops the comparison at the next measured point and waits for it."""
        if self._job is not None:
            self._job.stop.set()
            self.wait()
            self._done()
        super().closeEvent(event)
