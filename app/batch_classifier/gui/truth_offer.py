"""The non-modal offer to use folder names as ground truth, shown above the results table.

The engine decides when to offer (``truth.offer_folder_truth``: most
top-level folders of the drop are named after the model's labels); this bar
only asks, without a dialog, so a run goes on while the user reads it.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class TruthOffer(QFrame):
    accepted = Signal()
    declined = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("truth-offer")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#truth-offer { background: palette(alternate-base); border: 1px solid palette(mid); }")
        self.text = QLabel(
            "Most folders you added are named after the model's labels. Use the folder names as ground truth "
            "(accuracy and a confusion matrix)?"
        )
        self.text.setWordWrap(True)
        self.accept_button = QPushButton("&Accept")
        self.accept_button.setToolTip("Each image's true label is the name of its top-level folder")
        self.decline_button = QPushButton("Not now")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.accept_button)
        layout.addWidget(self.decline_button)
        self.accept_button.clicked.connect(self._accept)
        self.decline_button.clicked.connect(self._decline)
        self.hide()

    def _accept(self) -> None:
        self.hide()
        self.accepted.emit()

    def _decline(self) -> None:
        self.hide()
        self.declined.emit()
