"""The drop target: files and folders from a file manager become inputs for a run.

Only local paths are taken (``QUrl.toLocalFile``); folders are passed on
as they are, because walking a 100,000-file tree belongs in the worker, not
in a drop handler on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDragLeaveEvent, QDropEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

_IDLE_STYLE = "DropZone { border: 2px dashed palette(mid); border-radius: 8px; }"
_HOVER_STYLE = "DropZone { border: 2px dashed palette(highlight); border-radius: 8px; background: palette(alternate-base); }"


def local_paths(event: QDropEvent | QDragEnterEvent) -> list[str]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]


class DropZone(QFrame):
    paths_dropped = Signal(list)  # list[str]: files and folders, in the order dropped

    def __init__(self, actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setStyleSheet(_IDLE_STYLE)
        title = QLabel("<b>Drop images or folders here</b>")
        hint = QLabel("Folders are searched recursively. Drops during a run are queued and run next.")
        hint.setEnabled(False)
        hint.setWordWrap(True)  # at the window's minimum width the line would be cut, not wrapped
        text = QVBoxLayout()
        text.addWidget(title)
        text.addWidget(hint)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 10, 16, 10)
        layout.addLayout(text, 1)
        for action in actions:
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            layout.addWidget(button)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event):
            event.acceptProposedAction()
            self.setStyleSheet(_HOVER_STYLE)

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.setStyleSheet(_IDLE_STYLE)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self.setStyleSheet(_IDLE_STYLE)
        paths = local_paths(event)
        if paths:
            event.acceptProposedAction()
            self.paths_dropped.emit(paths)
