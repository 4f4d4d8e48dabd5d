"""The pieces every batch-size plot of the window shares: the log2 axis, the legend and the colours.

The live plots (``plots.py``), the stage bars and the model comparison
(``model_curves.py``) draw the same axis and legend, and follow the
window's palette the same way, so they live here once.
"""

from __future__ import annotations

import pyqtgraph as pg  # binds to PySide6: the package's __init__ imported it first
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel

from ..engine.sweep import LARGEST_SWEEP_POWER


def follow_palette(plot: pg.PlotWidget, palette: QPalette) -> None:
    """pyqtgraph draws black on its own: take the window's colours so light and dark themes both read."""
    text = palette.color(QPalette.ColorRole.Text)
    plot.setBackground(palette.color(QPalette.ColorRole.Base))
    item = plot.getPlotItem()
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setPen(text)
        axis.setTextPen(text)


class BatchSizeAxis(pg.AxisItem):
    """Batch sizes on a log2 scale, labelled with the sizes themselves (1, 2, 4 … 1024), or plain numbers."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.per_batch_size(True)

    def per_batch_size(self, on: bool) -> None:
        self.setTicks(
            [
                [(power, str(2**power)) for power in range(0, LARGEST_SWEEP_POWER + 1, 2)],
                [(power, str(2**power)) for power in range(1, LARGEST_SWEEP_POWER + 1, 2)],
            ]
            if on
            else None
        )


class Legend(QLabel):
    """A legend as a line of text under its plot: it never covers the data, and wraps when narrow."""

    def __init__(self) -> None:
        super().__init__()
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self._entries: dict[str, tuple[str, QColor, bool]] = {}

    def set_entry(self, text: str, mark: str, color: QColor, shown: bool = True) -> None:
        """Add or update the entry ``text``, drawn as ``mark`` in ``color``; hidden entries keep their place."""
        self._entries[text] = (mark, color, shown)
        self._render()

    def set_entries(self, entries: list[tuple[str, str, QColor]]) -> None:
        self._entries = {text: (mark, color, True) for text, mark, color in entries}
        self._render()

    def entries(self) -> list[str]:
        """The texts shown, in order."""
        return [text for text, (_, _, shown) in self._entries.items() if shown]

    def _render(self) -> None:
        parts = [
            f'<span style="white-space:nowrap"><span style="color:{color.name()}">{mark}</span>&nbsp;{text}</span>'
            for text, (mark, color, shown) in self._entries.items()
            if shown
        ]
        self.setText(" &nbsp; ".join(parts))
