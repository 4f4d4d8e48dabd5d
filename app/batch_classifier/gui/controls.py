"""The run settings panel: model, device, precision, runtime, decode, preprocessing, batch size and max wait.

Two kinds of knob. Model, device, precision, runtime, decode and preprocessing decide how the
Classifier is built, so changing one asks for a reload (``config_changed``).
Batch size and max wait move live: the window passes them to the running
job's RunControl, and the engine applies them at the next batch. The slider
applies once it settles: nothing is sent while it is held down, and steps by
keyboard or wheel are debounced, so a drag across ten stops sends one value.
Until the user picks a batch size the run asks for none, and the engine uses
the device's default, which this panel then shows.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..engine.choices import DECODE_CHOICES, PRECISION_CHOICES
from ..engine.cluster import RAY_DEVICE
from ..engine.devices import device_label
from ..engine.fidelity import PREPROCESS_CHOICES, PREPROCESS_HELP
from ..engine.models import FEATURED_TORCHVISION, ModelInfo
from ..engine.pipeline import RunConfig
from ..engine.runtimes import RUNTIME_CHOICES, RUNTIME_HELP
from ..engine.sweep import LARGEST_SWEEP_POWER, LARGEST_SWEEP_SIZE
from . import settings as keys
from .settings import Settings

SLIDER_DEBOUNCE_MS = 200
_OPEN_MODEL_FILE = "\0open-model-file"
_DOWNLOAD_MARK = "  (download)"
_SLOW_MARK = "  (slow on the CPU)"
_SLOW_ON_CPU = {
    "fp16": "fp16 on the CPU is emulated and many times slower than fp32 (1.8 img/s measured on a 2-core CPU)",
    "bf16": "bf16 on the CPU is slower than fp32 on most CPUs",
}
_PRECISION_TEXT = {"auto": "Auto (bf16/fp16 on GPU, fp32 on CPU)", "fp32": "fp32", "bf16": "bf16", "fp16": "fp16"}
_RUNTIME_TEXT = {
    "auto": "Auto (ONNX Runtime on CPU)",
    "torch": "PyTorch",
    "onnxruntime": "ONNX Runtime (CPU, fp32)",
}
_DECODE_TEXT = {"auto": "Auto (GPU for JPEG on CUDA)", "cpu": "CPU (Pillow threads)", "gpu": "GPU (nvJPEG)"}


def _combo_select(combo: QComboBox, value: str) -> None:
    index = combo.findData(value)
    combo.setCurrentIndex(index if index >= 0 else 0)


class RunControls(QWidget):
    config_changed = Signal()
    batch_size_changed = Signal(int)  # debounced
    max_wait_changed = Signal(float)

    def __init__(
        self, settings: Settings, models: list[ModelInfo], devices: list[str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._labels_for: dict[str, str] = {}
        self._batch_size_chosen = settings.has(keys.BATCH_SIZE)

        self.model_combo = QComboBox()
        self.model_combo.setMaxVisibleItems(20)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(16)
        self._fill_models(models)
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto (best available)", "auto")
        for device in devices:
            self.device_combo.addItem(device, device)
            self.device_combo.setItemData(
                self.device_combo.count() - 1, device_label(torch.device(device)), Qt.ItemDataRole.ToolTipRole
            )
        self.device_combo.addItem("Ray cluster", RAY_DEVICE)
        self.device_combo.setItemData(
            self.device_combo.count() - 1,
            "Run on a Ray cluster (Ray Data): one actor per GPU, or per node without GPUs. "
            "Every node must see the images at the same paths.",
            Qt.ItemDataRole.ToolTipRole,
        )
        self.ray_address_edit = QLineEdit()
        self.ray_address_edit.setPlaceholderText(os.environ.get("RAY_ADDRESS") or "local instance")  # what empty means
        self.ray_address_edit.setAccessibleName("Ray address")
        self.ray_address_edit.setToolTip(
            "The Ray cluster's address: auto, HOST:PORT or ray://HOST:PORT. Empty: RAY_ADDRESS, else a Ray "
            "instance of the window's own on this machine. A cluster's token comes from RAY_AUTH_TOKEN or "
            "~/.ray/auth_token."
        )
        self.ray_address_edit.setClearButtonEnabled(True)
        self._has_gpu = any(device.startswith(("cuda", "mps")) for device in devices)
        self.precision_combo = QComboBox()
        for choice in PRECISION_CHOICES:
            self.precision_combo.addItem(_PRECISION_TEXT.get(choice, choice), choice)
        self.runtime_combo = QComboBox()
        for choice in RUNTIME_CHOICES:
            self.runtime_combo.addItem(_RUNTIME_TEXT[choice], choice)
        self.runtime_combo.setToolTip(RUNTIME_HELP[:1].upper() + RUNTIME_HELP[1:].replace("; ", ".\n") + ".")
        self.decode_combo = QComboBox()
        for choice in DECODE_CHOICES:
            self.decode_combo.addItem(_DECODE_TEXT.get(choice, choice), choice)
        for combo in (self.device_combo, self.precision_combo, self.runtime_combo, self.decode_combo):
            # the longest choice ("Auto (bf16/fp16 on GPU, fp32 on CPU)") must not set the panel's width
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(16)
        if not any(device.startswith("cuda") for device in devices):
            self._disable_item(self.decode_combo, "gpu", "GPU decoding needs a CUDA device")
        self.preprocess_combo = QComboBox()
        for choice in PREPROCESS_CHOICES:
            self.preprocess_combo.addItem(choice.capitalize(), choice)
        self.preprocess_note = QLabel()
        self.preprocess_note.setWordWrap(True)
        self.preprocess_note.setEnabled(False)  # drawn in the muted colour of a hint

        self.batch_slider = QSlider(Qt.Orientation.Horizontal)
        self.batch_slider.setRange(0, LARGEST_SWEEP_POWER)
        self.batch_slider.setPageStep(1)
        self.batch_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.batch_slider.setTickInterval(1)
        self.batch_slider.setToolTip("Largest batch the run may form: powers of two. Applies at the next batch.")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, LARGEST_SWEEP_SIZE)
        self.batch_spin.setToolTip("Largest batch the run may form. Applies at the next batch.")
        self.batch_spin.setAccelerated(True)
        self.max_wait_spin = QDoubleSpinBox()
        self.max_wait_spin.setRange(0.0, 1000.0)
        self.max_wait_spin.setDecimals(1)
        self.max_wait_spin.setSuffix(" ms")
        self.max_wait_spin.setToolTip(
            "How long a batch that is not full waits for more images before it runs anyway."
        )

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SLIDER_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit_batch_size)

        self._restore()
        self._mark_slow_precisions()
        self._build_layout()
        self.model_combo.activated.connect(self._model_activated)
        for combo in (
            self.device_combo, self.precision_combo, self.runtime_combo, self.decode_combo, self.preprocess_combo
        ):
            combo.currentIndexChanged.connect(self.config_changed)
        self.device_combo.currentIndexChanged.connect(self._mark_slow_precisions)
        self.device_combo.currentIndexChanged.connect(self._show_address)
        self.ray_address_edit.editingFinished.connect(self._address_edited)
        self._show_address()
        self.preprocess_combo.currentIndexChanged.connect(self._explain_preprocess)
        self.batch_slider.valueChanged.connect(self._slider_moved)
        self.batch_slider.sliderReleased.connect(self._debounce.start)
        self.batch_spin.valueChanged.connect(self._spin_changed)
        self.max_wait_spin.valueChanged.connect(self.max_wait_changed)

    # --- building ------------------------------------------------------------------------

    def _fill_models(self, models: list[ModelInfo]) -> None:
        """Bundled, then the featured torchvision models, then the rest, with separators between."""
        previous_group = None
        for info in models:
            group = "featured" if info.name in FEATURED_TORCHVISION else info.source
            if previous_group is not None and group != previous_group:
                self.model_combo.insertSeparator(self.model_combo.count())
            previous_group = group
            text = info.name if info.offline_ready else f"{info.name}{_DOWNLOAD_MARK}"
            self.model_combo.addItem(text, info.name)
            where = "available offline" if info.offline_ready else "weights are downloaded on first use"
            self.model_combo.setItemData(
                self.model_combo.count() - 1, f"{info.description}\n{where}: {info.detail}", Qt.ItemDataRole.ToolTipRole
            )
        self.model_combo.insertSeparator(self.model_combo.count())
        self.model_combo.addItem("Open model file…", _OPEN_MODEL_FILE)

    @staticmethod
    def _disable_item(combo: QComboBox, value: str, reason: str) -> None:
        item = combo.model().item(combo.findData(value))  # type: ignore[attr-defined]
        item.setEnabled(False)
        item.setToolTip(reason)

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("&Model", self.model_combo)
        # The address sits beside the cluster choice, not on a row of its own: at 1024x700 a row more
        # squeezed the Preprocess hint under the Batch size row.
        device_row = QHBoxLayout()
        self.device_combo.setMinimumContentsLength(len("Ray cluster"))  # the address takes the rest
        device_row.addWidget(self.device_combo, 2)
        device_row.addWidget(self.ray_address_edit, 3)
        device_label = QLabel("&Device")
        device_label.setBuddy(self.device_combo)
        form.addRow(device_label, device_row)
        form.addRow("&Precision", self.precision_combo)
        form.addRow("R&untime", self.runtime_combo)
        form.addRow("D&ecode", self.decode_combo)
        form.addRow("P&reprocess", self.preprocess_combo)
        # The form's whole width, not the field column's: there Fast's hint wrapped to three lines under the
        # Runtime row, and at 960x640 the column had room for two, so both ends were cut.
        form.addRow(self.preprocess_note)
        batch_row = QHBoxLayout()
        batch_row.addWidget(self.batch_slider, 1)
        batch_row.addWidget(self.batch_spin)
        batch_label = QLabel("&Batch size")
        batch_label.setBuddy(self.batch_slider)
        form.addRow(batch_label, batch_row)
        scale = QHBoxLayout()
        marks = ("1", str(2 ** (LARGEST_SWEEP_POWER // 2)), str(LARGEST_SWEEP_SIZE))
        for text in marks:
            label = QLabel(text)
            label.setEnabled(False)
            scale.addWidget(label)
            if text != marks[-1]:
                scale.addStretch(1)
        form.addRow("", scale)
        form.addRow("Max &wait", self.max_wait_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)

    def _restore(self) -> None:
        model = self._settings.get(keys.MODEL)
        if self.model_combo.findData(model) < 0:
            if Path(model).is_file():
                self._add_model_file(model, self._settings.get(keys.LABELS))
            else:
                model = keys.MODEL.default
        _combo_select(self.model_combo, model)
        self._current_model = self.model_combo.currentData()
        self._working_model: str | None = None  # the last model that loaded: where a failed choice falls back to
        _combo_select(self.device_combo, self._settings.get(keys.DEVICE))
        self.ray_address_edit.setText(self._settings.get(keys.RAY_ADDRESS))
        self._address_in_force = self.ray_address_edit.text().strip()
        _combo_select(self.precision_combo, self._settings.get(keys.PRECISION))
        _combo_select(self.runtime_combo, self._settings.get(keys.RUNTIME))
        _combo_select(self.decode_combo, self._settings.get(keys.DECODE))
        if not self.decode_combo.model().item(self.decode_combo.currentIndex()).isEnabled():  # type: ignore[attr-defined]
            _combo_select(self.decode_combo, "auto")
        _combo_select(self.preprocess_combo, self._settings.get(keys.PREPROCESS))
        self._explain_preprocess()
        self._show_batch_size(self._settings.get(keys.BATCH_SIZE))
        self.max_wait_spin.setValue(self._settings.get(keys.MAX_WAIT_MS))

    def _show_address(self) -> None:
        """The address field belongs to the cluster choice: shown with it, hidden otherwise."""
        self.ray_address_edit.setVisible(self.device_combo.currentData() == RAY_DEVICE)

    def _address_edited(self) -> None:
        """A new address is a new cluster: the run is set up again (nothing to do for the same one)."""
        address = self.ray_address_edit.text().strip()
        if address != self._address_in_force:
            self._address_in_force = address
            self.config_changed.emit()

    def _mark_slow_precisions(self) -> None:
        """Say beside fp16 and bf16 when the model would run them on the CPU, where they are slow."""
        device = self.device_combo.currentData()
        on_cpu = device == "cpu" or (device == "auto" and not self._has_gpu)
        for choice in ("fp16", "bf16"):
            index = self.precision_combo.findData(choice)
            note = _SLOW_ON_CPU[choice] if on_cpu else ""
            self.precision_combo.setItemText(index, f"{choice}{_SLOW_MARK}" if note else choice)
            self.precision_combo.setItemData(index, note or None, Qt.ItemDataRole.ToolTipRole)

    def _explain_preprocess(self) -> None:
        text = PREPROCESS_HELP[self.preprocess_combo.currentData()]
        self.preprocess_note.setText(text[:1].upper() + text[1:])

    # --- model files ---------------------------------------------------------------------

    def use_model_file(self, model_path: str, labels_path: str | None = None) -> None:
        """Select a TorchScript model file (and its labels, one per line) as the model."""
        if self.model_combo.findData(model_path) < 0:
            self._add_model_file(model_path, labels_path or "")
        else:
            self._labels_for[model_path] = labels_path or ""
        _combo_select(self.model_combo, model_path)
        self._current_model = model_path
        self.config_changed.emit()

    def _add_model_file(self, model_path: str, labels_path: str) -> None:
        self._labels_for[model_path] = labels_path
        self.model_combo.insertItem(self.model_combo.count() - 1, Path(model_path).name, model_path)
        self.model_combo.setItemData(
            self.model_combo.count() - 2,
            f"{model_path}\nlabels: {labels_path or 'none (classes are numbered)'}",
            Qt.ItemDataRole.ToolTipRole,
        )

    def model_loaded(self, model: str) -> None:
        """``model`` (as the picker names it) has loaded: remember it, and drop its "(download)" mark."""
        self._working_model = model
        index = self.model_combo.findData(model)
        if index >= 0 and self.model_combo.itemText(index).endswith(_DOWNLOAD_MARK):
            self.model_combo.setItemText(index, self.model_combo.itemText(index)[: -len(_DOWNLOAD_MARK)])

    def fall_back(self) -> str | None:
        """The chosen model failed to load: select the last one that worked, and name it (None if none did)."""
        if self._working_model is None or self._working_model == self._current_model:
            return None
        _combo_select(self.model_combo, self._working_model)
        self._current_model = self._working_model
        self.config_changed.emit()
        return self.model_combo.currentText()

    def _model_activated(self, index: int) -> None:
        if self.model_combo.itemData(index) != _OPEN_MODEL_FILE:
            if self.model_combo.itemData(index) != self._current_model:
                self._current_model = self.model_combo.itemData(index)
                self.config_changed.emit()
            return
        _combo_select(self.model_combo, self._current_model)  # back to the model in use unless a file is chosen
        folder = self._settings.get(keys.MODEL_FOLDER)
        model_path, _ = QFileDialog.getOpenFileName(
            self, "Open a TorchScript model", folder, "TorchScript models (*.pt *.pth *.ts);;All files (*)"
        )
        if not model_path:
            return
        labels_path, _ = QFileDialog.getOpenFileName(
            self,
            "Labels for this model, one per line (cancel for numbered classes)",
            str(Path(model_path).parent),
            "Text files (*.txt);;All files (*)",
        )
        self._settings.set(keys.MODEL_FOLDER, str(Path(model_path).parent))
        self.use_model_file(model_path, labels_path or None)

    # --- batch size ----------------------------------------------------------------------

    def batch_size(self) -> int:
        return self.batch_spin.value()

    def set_batch_size(self, size: int) -> None:
        """Set the batch size as if the user had (the sweep's "Use batch size N")."""
        self._batch_size_chosen = True
        self.batch_spin.setValue(size)

    def offer_device_default(self, size: int) -> None:
        """Adopt the loaded device's default batch size, unless the user has chosen one."""
        if not self._batch_size_chosen:
            self._show_batch_size(size)

    def _show_batch_size(self, size: int) -> None:
        size = min(max(1, size), LARGEST_SWEEP_SIZE)
        with QSignalBlocker(self.batch_spin), QSignalBlocker(self.batch_slider):
            self.batch_spin.setValue(size)
            self.batch_slider.setValue(round(math.log2(size)))

    def _emit_batch_size(self) -> None:
        self.batch_size_changed.emit(self.batch_size())

    def _slider_moved(self, position: int) -> None:
        self.batch_spin.setValue(2**position)  # goes on to _spin_changed

    def _spin_changed(self, size: int) -> None:
        self._batch_size_chosen = True
        with QSignalBlocker(self.batch_slider):
            self.batch_slider.setValue(round(math.log2(size)))
        if self.batch_slider.isSliderDown():
            self._debounce.stop()  # a drag passing through: its release applies where it stopped
        else:
            self._debounce.start()

    # --- the result ----------------------------------------------------------------------

    def run_config(self) -> RunConfig:
        model = self.model_combo.currentData()
        on_ray = self.device_combo.currentData() == RAY_DEVICE
        return RunConfig(
            model=model,
            labels=self._labels_for.get(model) or None,
            device="auto" if on_ray else self.device_combo.currentData(),  # each actor's best device
            cluster=self._address_in_force if on_ray else None,
            precision=self.precision_combo.currentData(),
            runtime=self.runtime_combo.currentData(),
            decode=self.decode_combo.currentData(),
            preprocess=self.preprocess_combo.currentData(),
            batch_size=self.batch_size() if self._batch_size_chosen else None,
            max_wait_ms=self.max_wait_spin.value(),
        )

    def save(self) -> None:
        config = self.run_config()
        self._settings.set(keys.MODEL, config.model)
        self._settings.set(keys.LABELS, config.labels or "")
        self._settings.set(keys.DEVICE, RAY_DEVICE if config.cluster is not None else config.device)
        self._settings.set(keys.RAY_ADDRESS, self._address_in_force)
        self._settings.set(keys.PRECISION, config.precision)
        self._settings.set(keys.RUNTIME, config.runtime)
        self._settings.set(keys.DECODE, config.decode)
        self._settings.set(keys.PREPROCESS, config.preprocess)
        if self._batch_size_chosen:
            self._settings.set(keys.BATCH_SIZE, self.batch_size())
        self._settings.set(keys.MAX_WAIT_MS, config.max_wait_ms)
