"""The confusion matrix as a heat-map table; a click on a cell shows those images in the results table.

Rows are true labels, columns the labels given (``unknown`` last when the
threshold gave it), shaded by the share of the row as ``--report``'s
``confusion.png`` is, so the two read alike. The numbers are the engine's
``AccuracyReport``; this widget only draws them and says which cell the
user chose.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..engine.accuracy import AccuracyReport
from ..engine.accuracy_files import shade

CELL_PX = 44
_NO_TRUTH = (
    "No ground truth yet. Drop folders named after classes (the window offers to use their names), "
    "or choose Review > Truth from CSV…; or correct a row's label."
)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


class AccuracyView(QWidget):
    cell_chosen = Signal(str, str)  # true label, label given
    show_all = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.headline = QLabel(_NO_TRUTH)
        self.headline.setWordWrap(True)
        self.shown_label = QLabel("")
        self.show_all_button = QPushButton("Show all rows")
        self.show_all_button.setToolTip("Clear the matrix cell filter of the results table")
        self.show_all_button.setVisible(False)
        self.matrix = QTableWidget()
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.matrix.setWordWrap(False)
        for header in (self.matrix.horizontalHeader(), self.matrix.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.matrix.horizontalHeader().setDefaultSectionSize(CELL_PX)
        self.matrix.verticalHeader().setDefaultSectionSize(CELL_PX // 2 + 6)
        self.matrix.setCornerButtonEnabled(False)
        self.matrix.setToolTip("Rows: true label. Columns: label given. Click a cell to see its images.")
        self.matrix.setVisible(False)
        self.caption = QLabel("Rows: true label · columns: label given · click a cell to list its images")
        self.caption.setEnabled(False)  # drawn as secondary text
        self.caption.setVisible(False)
        self.report: AccuracyReport | None = None

        top = QHBoxLayout()
        top.addWidget(self.headline, 1)
        top.addWidget(self.shown_label)
        top.addWidget(self.show_all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.caption)
        layout.addWidget(self.matrix, 1)
        self.matrix.cellClicked.connect(self._clicked)
        self.show_all_button.clicked.connect(self.show_all)

    def show_report(self, report: AccuracyReport | None) -> None:
        self.report = report
        if report is None:
            self.headline.setText(_NO_TRUTH)
            self.matrix.setVisible(False)
            self.caption.setVisible(False)
            return
        self.headline.setText(self._headline_html(report))
        self.headline.setToolTip(self._per_class_text(report))
        self._fill(report)
        self.matrix.setVisible(bool(report.classes))
        self.caption.setVisible(bool(report.classes))

    def show_cell(self, cell: tuple[str, str] | None, rows: int) -> None:
        """Say which cell the results table shows (the table filters; this widget only labels it)."""
        self.show_all_button.setVisible(cell is not None)
        self.shown_label.setText("" if cell is None else f"Table: true {cell[0]} → {cell[1]} ({rows:,})")
        if cell is None:
            self.matrix.clearSelection()

    @staticmethod
    def _headline_html(report: AccuracyReport) -> str:
        parts = [escape(report.headline())]
        uncounted = []
        if report.without_truth:
            uncounted.append(f"{report.without_truth:,} without a true label")
        if report.errors:
            uncounted.append(f"{report.errors:,} error rows")
        if uncounted:
            parts.append("not scored: " + ", ".join(uncounted))
        if report.unmatched:
            names = ", ".join(f"'{escape(name.name)}' ({escape(name.reason)})" for name in report.unmatched[:5])
            more = f" and {len(report.unmatched) - 5} more" if len(report.unmatched) > 5 else ""
            parts.append(f"no truth for folders or names {names}{more}")
        return "<br>".join(parts)

    @staticmethod
    def _per_class_text(report: AccuracyReport) -> str:
        lines = ["class: images, labelled, precision, recall"]
        lines += [
            f"{score.label}: {score.images:,}, {score.predicted:,}, {_percent(score.precision)}, {_percent(score.recall)}"
            for score in report.per_class
        ]
        return "\n".join(lines)

    def _fill(self, report: AccuracyReport) -> None:
        table = self.matrix
        table.clear()
        table.setRowCount(len(report.classes))
        table.setColumnCount(len(report.columns))
        table.setVerticalHeaderLabels(list(report.classes))
        table.setHorizontalHeaderLabels(list(report.columns))
        for column, label in enumerate(report.columns):
            table.horizontalHeaderItem(column).setToolTip(f"labelled {label}")
        for row, (true_label, counts) in enumerate(zip(report.classes, report.matrix)):
            total = sum(counts) or 1
            score = report.per_class[row]
            table.verticalHeaderItem(row).setToolTip(
                f"true {true_label}: {score.images:,} images, recall {_percent(score.recall)}, "
                f"precision {_percent(score.precision)}"
            )
            for column, count in enumerate(counts):
                item = QTableWidgetItem(str(count) if count else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                share = count / total
                item.setBackground(QBrush(QColor(*shade(share))))
                item.setForeground(QBrush(QColor("white") if share > 0.5 else QColor(30, 30, 30)))
                item.setToolTip(f"true {true_label}, labelled {report.columns[column]}: {count:,}")
                table.setItem(row, column, item)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def _clicked(self, row: int, column: int) -> None:
        if self.report is not None:
            self.cell_chosen.emit(self.report.classes[row], self.report.columns[column])
