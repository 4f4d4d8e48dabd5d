"""The results table with its filter row: sort, filter, count, select, follow, double-click to open.

Everything here is sized for 100,000 rows: fixed row heights (the view never
measures rows), fixed column widths (no resize-to-contents), a debounced
filter box, and thumbnails decoded only for the rows painted. A new sort
keeps the selected row in sight (or goes to the top); "Follow new rows"
scrolls to each batch as it arrives. For the review, "least sure first"
sorts by confidence and selects the first classified row, and ``step``
walks the rows in the order shown.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..engine.records import ImageResult
from ..engine.wording import counted
from .results_model import (
    CONFIDENCE,
    FILE,
    LABEL,
    RESULT_ROLE,
    STATUS,
    THUMBNAIL,
    TRUTH,
    ResultsFilter,
    ResultsModel,
)

FILTER_DEBOUNCE_MS = 200
THUMBNAIL_PX = 40


class ResultsView(QWidget):
    selection_changed = Signal(object, object)  # ImageResult or None, its thumbnail QPixmap or None
    filter_changed = Signal(bool)  # whether a filter now hides rows
    message = Signal(str)  # for the status bar

    def __init__(self, results: ResultsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results = results
        self.proxy = ResultsFilter(self)
        self.proxy.setSourceModel(results)
        self.table = self._create_table()

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by file name or label…")
        self.filter_edit.setClearButtonEnabled(True)
        self.errors_only = QCheckBox("Errors only")
        self.follow = QCheckBox("Follow new rows")
        self.follow.setToolTip("Scroll to each batch of rows as it arrives")
        self.count_label = QLabel("No results yet")
        self.count_label.setMinimumWidth(240)  # its text changes every batch; its width should not
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DEBOUNCE_MS)

        filter_row = QHBoxLayout()
        filter_row.addWidget(self.filter_edit, 1)
        filter_row.addWidget(self.errors_only)
        filter_row.addWidget(self.follow)
        filter_row.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filter_row)
        layout.addWidget(self.table, 1)

        self.filter_edit.textChanged.connect(self._filter_timer.start)
        self._filter_timer.timeout.connect(self._apply_filter_text)
        self.errors_only.toggled.connect(self._set_errors_only)
        for signal in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset, self.proxy.dataChanged):
            signal.connect(self._update_count)
        self.results.rowsInserted.connect(self._follow_new_rows)
        self.table.horizontalHeader().sortIndicatorChanged.connect(self._keep_view_after_sort)
        self.table.doubleClicked.connect(self._open_image)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)

    def _create_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.proxy)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setIconSize(QSize(THUMBNAIL_PX, THUMBNAIL_PX))
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        table.setAlternatingRowColors(True)
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vertical = table.verticalHeader()
        vertical.hide()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # never measure 100,000 rows
        vertical.setDefaultSectionSize(THUMBNAIL_PX + 6)
        header = table.horizontalHeader()
        header.setSortIndicatorClearable(True)  # a third click on a header returns to run order
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        table.setSortingEnabled(True)
        header.setHighlightSections(False)
        header.setMinimumSectionSize(24)
        for column, width in ((THUMBNAIL, THUMBNAIL_PX + 12), (FILE, 190), (CONFIDENCE, 90), (STATUS, 64), (TRUTH, 110)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        header.setSectionResizeMode(THUMBNAIL, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(LABEL, QHeaderView.ResizeMode.Stretch)
        table.setColumnHidden(TRUTH, True)  # shown once there is a truth: room for the label until then
        return table

    def select_first_row_if_none(self) -> None:
        """Select the top row when nothing is selected, so the detail pane shows something from the start."""
        if self.table.currentIndex().isValid() or self.proxy.rowCount() == 0:
            return
        index = self.proxy.index(0, FILE)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )

    @property
    def filtering(self) -> bool:
        return self.proxy.filtering

    def set_cell(self, cell: tuple[str, str] | None) -> None:
        """Show only the images of one confusion-matrix cell (true label, label given), or all again."""
        self.proxy.set_cell(cell)
        self.filter_changed.emit(self.filtering)
        self.select_first_row_if_none()

    def show_truth_column(self, shown: bool) -> None:
        self.table.setColumnHidden(TRUTH, not shown)

    def current_source_row(self) -> int | None:
        """The selected row's number in the results model (its run order), or None."""
        current = self.table.currentIndex()
        return self.proxy.mapToSource(current).row() if current.isValid() else None

    def review_least_sure(self) -> None:
        """Sort by confidence, lowest first, and select the least sure classified row."""
        self.table.sortByColumn(CONFIDENCE, Qt.SortOrder.AscendingOrder)
        for row in range(self.proxy.rowCount()):
            if self.proxy.index(row, STATUS).data() == "ok":
                self._select_proxy_row(row)
                return

    def step(self, delta: int) -> None:
        """Select the row ``delta`` away in the order shown (the first row when none is selected)."""
        current = self.table.currentIndex()
        target = current.row() + delta if current.isValid() else 0
        if 0 <= target < self.proxy.rowCount():
            self._select_proxy_row(target)

    def _select_proxy_row(self, row: int) -> None:
        index = self.proxy.index(row, FILE)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        self.table.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)

    def shown_results(self) -> list[ImageResult]:
        """The rows the filter lets through, in run order whatever the sort: Export shown rows."""
        shown = {self.proxy.mapToSource(self.proxy.index(row, FILE)).row() for row in range(self.proxy.rowCount())}
        return [self.results.result(row) for row in sorted(shown)]

    def _apply_filter_text(self) -> None:
        self.proxy.set_text(self.filter_edit.text())
        self.filter_changed.emit(self.filtering)

    def _set_errors_only(self, errors_only: bool) -> None:
        self.proxy.set_errors_only(errors_only)
        self.filter_changed.emit(self.filtering)

    def _follow_new_rows(self, _parent: QModelIndex, _first: int, last: int) -> None:
        if self.follow.isChecked():
            QTimer.singleShot(0, lambda: self._scroll_to_source_row(last))  # once the view has laid the rows out

    def _scroll_to_source_row(self, row: int) -> None:
        index = self.proxy.mapFromSource(self.results.index(row, FILE))
        if index.isValid():
            self.table.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)

    def _keep_view_after_sort(self, *_: object) -> None:
        """After the proxy has sorted (it does so on the same signal): the selected row, else the top."""
        QTimer.singleShot(0, self._scroll_to_current)

    def _scroll_to_current(self) -> None:
        current = self.table.currentIndex()
        if current.isValid():
            self.table.scrollTo(current, QAbstractItemView.ScrollHint.PositionAtCenter)
        else:
            self.table.scrollToTop()

    def _update_count(self, *_: object) -> None:
        total = self.results.rowCount()
        shown = self.proxy.rowCount()
        text = f"{counted(total, 'image')} · {counted(self.results.error_count, 'error')}"
        self.count_label.setText(text if shown == total else f"{text} · {shown:,} shown")

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.selection_changed.emit(None, None)
            return
        result = current.siblingAtColumn(FILE).data(RESULT_ROLE)
        thumbnail = current.siblingAtColumn(THUMBNAIL).data(Qt.ItemDataRole.DecorationRole)
        self.selection_changed.emit(result, thumbnail)

    def _open_image(self, index: QModelIndex) -> None:
        result = index.data(RESULT_ROLE)
        if result is not None and not QDesktopServices.openUrl(QUrl.fromLocalFile(result.path)):
            self.message.emit(f"No application to open {index.siblingAtColumn(FILE).data()} with was found.")
