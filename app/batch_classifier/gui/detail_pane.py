"""The detail pane: the selected row's preview, full path and every top-k prediction.

The table has room for the top-1 only; this is where the runner-up classes
(often the interesting part: "tabby" vs "tiger cat") and the full error
message are read. The preview is read from the file at the pane's own size
(a 64 px table thumbnail scaled up would be blurred), on a helper thread so
moving through rows with the arrow keys never waits for a large PNG; the
row's thumbnail stands in until it arrives. In a short window the preview
gives up height (down to a third of its size), then the text scrolls.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from html import escape

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QImage, QImageReader, QPalette, QPixmap, QResizeEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from ..engine.records import ImageResult
from ..engine.sources import display_path
from .results_model import file_name

PREVIEW_SIZE = 128
SMALLEST_PREVIEW = PREVIEW_SIZE // 3


def read_preview(path: str, side: int) -> QImage:
    """The image at ``path`` fitted into ``side`` x ``side`` px, EXIF-rotated; null if it cannot be read.

    QImage (not QPixmap) is safe off the GUI thread; a JPEG is decoded at the
    reduced scale directly, so a 24-megapixel photo costs a few milliseconds.
    """
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and (size.width() > side or size.height() > side):
        reader.setScaledSize(size.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


class DetailPane(QWidget):
    preview_shown = Signal(str)  # the selected row's path, once its own preview replaced the thumbnail
    _preview_read = Signal(object, object)  # path, QImage: from the reading thread

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._reader = reader = ThreadPoolExecutor(1, thread_name_prefix="preview")
        self._selected: str | None = None
        self._pixmap: QPixmap | None = None
        self._preview_read.connect(self._show_preview)
        self.destroyed.connect(lambda: reader.shutdown(wait=False, cancel_futures=True))
        self.preview = _Preview(lambda: self._show_pixmap(self._pixmap))
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("QLabel { border: 1px solid palette(mid); }")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # The text scrolls rather than holding the pane's height: in a short window the run settings
        # above keep theirs (squeezed, their rows overlapped) and the last lines here scroll into view.
        self.text_area = QScrollArea()
        self.text_area.setWidget(self.text)
        self.text_area.setWidgetResizable(True)
        self.text_area.setFrameShape(QFrame.Shape.NoFrame)
        self.text_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.text_area.setMinimumHeight(2 * self.text.fontMetrics().lineSpacing())
        layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.text_area, 1)
        self.show_result(None, None)

    def show_result(self, result: ImageResult | None, thumbnail: QPixmap | None) -> None:
        # The thumbnail is shown as it is until the sharp preview arrives.
        self._show_pixmap(None if thumbnail is None or thumbnail.isNull() else thumbnail)
        self._selected = result.path if result is not None and result.status == "ok" else None
        if self._selected is not None:
            side = round(PREVIEW_SIZE * self.devicePixelRatioF())
            self._reader.submit(self._read, self._selected, side)
        if result is None:
            self.text.setText("<i>Select a row to see its top-5 predictions.</i>")
        else:
            self.text.setText(self._html(result))
        self._fit_preview()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_preview()

    def _fit_preview(self) -> None:
        """The preview takes the height the text leaves, from its full size down to ``SMALLEST_PREVIEW``.

        The layout may take more from it (and a little from the text, which then scrolls) when the run
        settings above need their height: the preview's minimum is ``SMALLEST_PREVIEW`` whatever its size.
        """
        text = max(self.text.heightForWidth(self.width()), self.text_area.minimumHeight())
        spare = self.height() - text - self.layout().spacing()
        side = max(SMALLEST_PREVIEW, min(PREVIEW_SIZE, spare))
        self.preview.fit(side)

    def _show_pixmap(self, pixmap: QPixmap | None) -> None:
        """Show ``pixmap`` (kept at its own size), scaled down when the preview has less room than it."""
        self._pixmap = pixmap
        if pixmap is None:
            self.preview.clear()
            return
        room = round(min(self.preview.width(), self.preview.height()) * pixmap.devicePixelRatio())
        if pixmap.width() > room or pixmap.height() > room:
            ratio = pixmap.devicePixelRatio()
            pixmap = pixmap.scaled(room, room, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            pixmap.setDevicePixelRatio(ratio)
        self.preview.setPixmap(pixmap)

    def _read(self, path: str, side: int) -> None:
        """Reading thread: skipped when the selection has already moved on."""
        if path == self._selected:
            self._preview_read.emit(path, read_preview(path, side))

    @Slot(object, object)
    def _show_preview(self, path: str, image: QImage) -> None:
        if path != self._selected or image.isNull():
            return
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(self.devicePixelRatioF())
        self._show_pixmap(pixmap)
        self.preview_shown.emit(path)

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


class _Preview(QLabel):
    """The preview's square: ``side`` px when there is room, down to ``SMALLEST_PREVIEW`` when the layout needs it."""

    def __init__(self, resized: Callable[[], None]) -> None:
        super().__init__()
        self._resized = resized
        self.setMinimumSize(SMALLEST_PREVIEW, SMALLEST_PREVIEW)
        self.fit(PREVIEW_SIZE)

    def fit(self, side: int) -> None:
        if side != self.maximumWidth():
            self.setMaximumSize(side, side)
            self.updateGeometry()

    def sizeHint(self) -> QSize:
        return self.maximumSize()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._resized()
