"""The status bar, whose message keeps a fair share of the width next to the permanent labels.

``QStatusBar`` paints a message only in what its permanent widgets leave
over: at 1024 px the memory, device and progress widgets took all but 60 px,
so a finished run said "Done: 5 im". Here the message is a label in the
bar's layout with a minimum share of its width, so the permanent labels
(elided, whole in their tooltips) give way first; an elided message is
whole in its own tooltip. A timed message gives way to the last message
without a timeout, so the run's summary comes back after "Exported …".
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QStatusBar, QWidget

from .elided_label import ElidedLabel

MESSAGE_SHARE = 0.4
"""The least fraction of the bar's width the message keeps, however long the permanent labels' texts."""


class MessageBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = ElidedLabel("")
        self.addWidget(self.message, 1)
        self._lasting = ""
        """The last message shown without a timeout: what a timed one gives way to."""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(lambda: self.message.setText(self._lasting))

    def showMessage(self, text: str, timeout: int = 0) -> None:
        self.message.setText(text)
        if timeout > 0:
            self._timer.start(timeout)
            return
        self._timer.stop()
        self._lasting = text

    def clearMessage(self) -> None:
        self.showMessage("")

    def currentMessage(self) -> str:
        return self.message.text()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.message.setMinimumWidth(int(MESSAGE_SHARE * event.size().width()))
        super().resizeEvent(event)
