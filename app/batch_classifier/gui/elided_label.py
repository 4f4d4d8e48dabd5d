"""A one-line label that gives up width by eliding its text ("…"), the whole text then in its tooltip.

The status bar holds several labels beside the progress bar; a plain
``QLabel`` cannot be narrower than its text, so in a small window the bar's
layout cut the last ones off mid-word, the progress bar included. This one
asks for its whole text and accepts less.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget

SHORTEST = "Mmmmmm…"
"""The least it shrinks to: a few letters and the ellipsis."""


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._tooltip = ""

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        margins = self.contentsMargins()
        shortest = self.fontMetrics().horizontalAdvance(SHORTEST) + margins.left() + margins.right()
        return QSize(min(hint.width(), shortest), hint.height())

    @property
    def elided(self) -> bool:
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()

    def setText(self, text: str) -> None:
        super().setText(text)
        self._update_tooltip()

    def clear(self) -> None:
        self.setText("")

    def setToolTip(self, text: str) -> None:
        """A tooltip of its own; the whole text goes above it while the text is elided."""
        self._tooltip = text
        self._update_tooltip()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        whole = "\n".join(filter(None, [self.text() if self.elided else "", self._tooltip]))
        if super().toolTip() != whole:
            super().setToolTip(whole)

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.elided:
            super().paintEvent(event)
            return
        rect = self.contentsRect()
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)
