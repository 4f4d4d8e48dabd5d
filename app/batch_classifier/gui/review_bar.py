"""The review's two controls: the confidence threshold above the table, and the correction box.

The threshold relabels the table live (the rows keep their predictions, so
no run is needed): below it a row reads ``unknown``, as ``--min-confidence``
writes it. The correction box takes a label for the selected row, with a
completer over the model's labels; Enter sets it and moves to the next row,
Up and Down move without setting, so a user can walk the least-sure images
from the keyboard alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCompleter,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QWidget,
)

THRESHOLD_DEBOUNCE_MS = 150


class ThresholdBar(QWidget):
    """Min confidence (percent), how many rows it labels unknown, and the review button."""

    threshold_changed = Signal(float)  # a probability, 0 to 1, once the spin box settles

    def __init__(self, review_button: QToolButton, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, 100.0)
        self.spin.setDecimals(0)
        self.spin.setSingleStep(5.0)
        self.spin.setSuffix(" %")
        self.spin.setToolTip(
            "Rows whose top-1 confidence is below this are labelled 'unknown' (their top-1 is kept in "
            "top1_label); the table relabels at once, without a run"
        )
        self.spin.setAccessibleName("Minimum confidence")
        self.unknown_label = QLabel("")
        self.unknown_label.setMinimumWidth(150)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(THRESHOLD_DEBOUNCE_MS)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        caption = QLabel("Min &confidence:")
        caption.setBuddy(self.spin)
        layout.addWidget(caption)
        layout.addWidget(self.spin)
        layout.addWidget(self.unknown_label)
        layout.addStretch(1)
        layout.addWidget(review_button)
        self.spin.valueChanged.connect(self._timer.start)
        self._timer.timeout.connect(lambda: self.threshold_changed.emit(self.threshold))

    @property
    def threshold(self) -> float:
        return self.spin.value() / 100.0

    def set_threshold(self, probability: float) -> None:
        """Set the control, and apply it at once (not after the debounce): for scripts and tests."""
        self.spin.setValue(probability * 100.0)
        self._timer.stop()
        self.threshold_changed.emit(self.threshold)

    def show_unknown(self, unknown: int, classified: int) -> None:
        self.unknown_label.setText(f"{unknown:,} of {classified:,} unknown" if self.threshold else "")


class CorrectionBox(QWidget):
    """A label for the selected row; the window checks it against the model's labels and applies it."""

    correction_entered = Signal(str)  # the text typed (the window matches it to a label)
    correction_cleared = Signal()
    step = Signal(int)  # -1 / +1: move to the previous / next row without setting anything

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Correct label… (Enter: set, next row)")
        self.edit.setToolTip(
            "Type the right label for the selected image; Enter sets it and goes to the next row, "
            "Enter on an empty box or Down skips, Up goes back. Corrections count as truth and are "
            "exported in the corrected_label column."
        )
        self.edit.setClearButtonEnabled(True)
        self.edit.setAccessibleName("Correct label")
        self._labels = QStringListModel(self)
        self.completer = QCompleter(self._labels, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.edit.setCompleter(self.completer)
        self.clear_button = QPushButton("Undo correction")
        self.clear_button.setToolTip("Take back the correction of the selected row")
        self.clear_button.setEnabled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.clear_button)
        self.edit.returnPressed.connect(self._entered)
        self.clear_button.clicked.connect(self.correction_cleared)
        self.edit.installEventFilter(self)
        self.setEnabled(False)

    def set_labels(self, labels: Sequence[str]) -> None:
        self._labels.setStringList(list(labels))

    def show_row(self, corrected: str | None) -> None:
        """The selected row changed: None when there is none; else its correction, or ``""``."""
        self.setEnabled(corrected is not None)
        self.clear_button.setEnabled(bool(corrected))
        self.edit.clear()
        self.edit.setPlaceholderText(
            f"Corrected: {corrected} (type to change)" if corrected else "Correct label… (Enter: set, next row)"
        )

    def _entered(self) -> None:
        if self.completer.popup().isVisible():
            return  # Enter picked a completion; the next Enter sets it
        text = self.edit.text().strip()
        if text:
            self.correction_entered.emit(text)
        else:
            self.step.emit(1)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.edit
            and isinstance(event, QKeyEvent)
            and event.type() == QEvent.Type.KeyPress
            and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down)
            and not self.completer.popup().isVisible()
        ):
            self.step.emit(-1 if event.key() == Qt.Key.Key_Up else 1)
            return True
        return super().eventFilter(watched, event)
