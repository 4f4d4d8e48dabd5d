"""The detail pane: the selected row's thumbnail, full path and every top-k prediction.

The table has room for the top-1 only; this is where the runner-up classes
(often the interesting part: "tabby" vs "tiger cat") and the full error
message are read.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette, QPixmap
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..engine.records import ImageResult
from ..engine.sources import display_path
from .results_model import file_name

PREVIEW_SIZE = 128


class DetailPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("QLabel { border: 1px solid palette(mid); }")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.text, 1)
        self.show_result(None, None)

    def show_result(self, result: ImageResult | None, thumbnail: QPixmap | None) -> None:
        if thumbnail is None or thumbnail.isNull():
            self.preview.clear()
        else:
            self.preview.setPixmap(
                thumbnail.scaled(
                    PREVIEW_SIZE,
                    PREVIEW_SIZE,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        if result is None:
            self.text.setText("<i>Select a row to see its top-5 predictions.</i>")
            return
        self.text.setText(self._html(result))

    def _html(self, result: ImageResult) -> str:
        header = (
            f"<b>{escape(file_name(result))}</b><br>"
            f"<small>{escape(display_path(result.path))}</small><br>"
        )
        if result.status != "ok":
            return f"{header}<p><b>Error:</b> {escape(result.error)}</p>"
        bar = self.palette().color(QPalette.ColorRole.Highlight).name()
        rows = "".join(
            f"<tr><td>{escape(p.label)}</td><td align='right'>&nbsp;{p.confidence * 100:.1f}&nbsp;%</td>"
            f"<td><table cellspacing='0' cellpadding='0'><tr>"
            f"<td width='{max(1, round(p.confidence * 60))}' bgcolor='{bar}'>&nbsp;</td></tr></table></td></tr>"
            for p in result.predictions
        )
        footer = (
            f"<p><small>{escape(result.model)} on {escape(result.device)}, "
            f"in a batch of {result.batch_size}</small></p>"
        )
        return f"{header}<table cellspacing='2'>{rows}</table>{footer}"
