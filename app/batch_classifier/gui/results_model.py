"""The results table: one row per image, appended a whole batch at a time.

One ``beginInsertRows`` per batch (not per image) keeps a 10,000-image run
from flooding the view with layout work. A file has one row, the newest: a
row for a file already in the table (a run again, a retried error, another
spelling of its path, matched by the engine's resume rule) replaces
the old row in place, so the table and the export never hold a path twice. Rows go back out as the engine's
own ``ImageResult`` records, so Export writes exactly what the command line
would.
Sorting and filtering live in ``ResultsFilter``, a proxy, so the source
order (the run order) is never lost.

Each row also holds its ground truth and a person's correction (the
review), and the model holds the confidence threshold: changing it relabels
every row at once, without a run, since a row keeps its predictions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRegularExpression,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QApplication, QStyle

from ..engine.csv_output import PreviousRow
from ..engine.records import UNKNOWN_LABEL, ImageResult, Prediction, below_threshold
from ..engine.resume import done_set, resolver
from ..engine.sources import display_path
from .thumbnails import PixmapCache

THUMBNAIL, FILE, LABEL, CONFIDENCE, STATUS, TRUTH = range(6)
HEADERS = ("", "File", "Label (top-1)", "Confidence", "Status", "True label")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RESULT_ROLE = Qt.ItemDataRole.UserRole + 2
FILTER_ROLE = Qt.ItemDataRole.UserRole + 3
"""status, truth, label, file name and label, tab-separated: what the filter's regular expression is matched against."""
# A translucent red over whatever the palette's base is: readable on light and dark themes alike.
ERROR_TINT = QColor(220, 53, 69, 70)

ModelIndex = QModelIndex | QPersistentModelIndex


def file_name(result: ImageResult) -> str:
    return os.path.basename(display_path(result.path))


def top_k_text(result: ImageResult) -> str:
    """The tooltip and detail text: every prediction, or the reason there are none."""
    if result.status != "ok":
        return f"Error: {result.error}"
    return "\n".join(f"{p.confidence * 100:5.1f} %  {p.label}" for p in result.predictions)


# A row is stored as one flat tuple of strings and numbers: (index, path, status, error, model,
# device, batch size, runtime, preprocess, true label, corrected label, thumbnail, label, confidence,
# label, confidence, ...).
# CPython's cyclic GC stops tracking such a tuple at its first collection, so 100,000 rows add
# nothing to a full collection. As ImageResult objects they would add 700,000 tracked objects: a pause of half a
# second on the GUI thread. (Nested tuples are untracked too, but only a collection later.)
(_INDEX, _PATH, _STATUS, _ERROR, _MODEL, _DEVICE, _BATCH, _RUNTIME, _PREPROCESS, _TRUE, _CORRECTED, _THUMBNAIL,
 _PREDICTIONS) = range(13)
Row = tuple


def pack(result: ImageResult, thumbnail: bytes | None) -> Row:
    return (
        result.index, result.path, result.status, result.error, result.model, result.device,
        result.batch_size, result.runtime, result.preprocess, result.true_label, result.corrected_label, thumbnail,
        *(value for p in result.predictions for value in (p.label, p.confidence)),
    )


def _with(row: Row, field: int, value: object) -> Row:
    return (*row[:field], value, *row[field + 1 :])


def unpack(row: Row, min_confidence: float = 0.0) -> ImageResult:
    labels, confidences = row[_PREDICTIONS::2], row[_PREDICTIONS + 1 :: 2]
    return ImageResult(
        index=row[_INDEX],
        path=row[_PATH],
        status=row[_STATUS],
        predictions=tuple(Prediction(label, confidence) for label, confidence in zip(labels, confidences)),
        error=row[_ERROR],
        model=row[_MODEL],
        device=row[_DEVICE],
        batch_size=row[_BATCH],
        runtime=row[_RUNTIME],
        preprocess=row[_PREPROCESS],
        min_confidence=min_confidence,
        true_label=row[_TRUE],
        corrected_label=row[_CORRECTED],
    )


def _name(row: Row) -> str:
    return os.path.basename(display_path(row[_PATH]))


def _label(row: Row, min_confidence: float) -> str:
    """The top-1 label (``unknown`` below the threshold), or for an error row the reason (shown in the label column)."""
    if len(row) <= _PREDICTIONS:
        return row[_ERROR]
    return UNKNOWN_LABEL if below_threshold(row[_PREDICTIONS + 1], min_confidence) else row[_PREDICTIONS]


def _truth(row: Row) -> str:
    """The person's correction, else the ground truth (``ImageResult.truth``, read without building one)."""
    return row[_CORRECTED] or row[_TRUE]


def _confidence(row: Row) -> float | None:
    return row[_PREDICTIONS + 1] if len(row) > _PREDICTIONS else None


class ResultsModel(QAbstractTableModel):
    """The rows of the session, in run order, each with its encoded thumbnail."""

    correction_set = Signal(str, str)
    """A person set the label of a path's row (``""``: took it back), for the journal."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Row] = []
        self._row_of: dict[str, int] = {}
        self._errors = 0
        self._corrections = 0
        self._min_confidence = 0.0
        self._pixmaps = PixmapCache()
        self._bold = QFont()
        self._bold.setBold(True)
        self._italic = QFont()
        self._italic.setItalic(True)
        # A pixmap, not an icon: the view's icon size fits thumbnails, and would blow an icon up to match.
        style = QApplication.style()
        self._error_icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(16, 16)

    # --- filling -----------------------------------------------------------------------

    def append_batch(self, results: Sequence[ImageResult], thumbnails: Sequence[bytes | None]) -> None:
        """Add a batch's rows; a file already in the table keeps its place and takes the new row.

        Files match as a continued run matches them (the engine's ``resolver``,
        the rule of ``done_set``): ``./in/a.png``, ``/home/me/in/a.png`` and a
        name through a folder symlink are one row. A person's correction is
        about the image, not the run: a new row for the file keeps it.
        """
        replaced: list[int] = []
        added: list[Row] = []
        first = len(self._rows)
        resolve = resolver(os.getcwd())
        for result, thumbnail in zip(results, thumbnails):
            row = pack(result, thumbnail)
            key = resolve(result.path)
            number = self._row_of.get(key)
            if number is None:
                self._row_of[key] = first + len(added)
                added.append(row)
            elif number >= first:  # twice in one batch: the later one wins
                added[number - first] = row
            else:
                old = self._rows[number]
                self._errors -= old[_STATUS] != "ok"
                self._errors += row[_STATUS] != "ok"
                self._corrections += bool(row[_CORRECTED] or old[_CORRECTED]) - bool(old[_CORRECTED])
                self._rows[number] = _with(row, _CORRECTED, row[_CORRECTED] or old[_CORRECTED])
                self._pixmaps.forget(number)
                replaced.append(number)
        if replaced:
            self.dataChanged.emit(self.index(min(replaced), 0), self.index(max(replaced), len(HEADERS) - 1))
        if not added:
            return
        self._errors += sum(1 for row in added if row[_STATUS] != "ok")  # before the rows: views count
        self._corrections += sum(1 for row in added if row[_CORRECTED])
        self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
        self._rows.extend(added)
        self.endInsertRows()

    # --- review: truth, corrections, threshold -------------------------------------------

    @property
    def min_confidence(self) -> float:
        return self._min_confidence

    def set_min_confidence(self, min_confidence: float) -> None:
        """Relabel every row against a new threshold: its label turns ``unknown`` below it, and back above."""
        if min_confidence == self._min_confidence:
            return
        self._min_confidence = min_confidence
        self._all_changed()

    def assign_truth(self, label_for: Callable[[str], str] | None) -> None:
        """Give every row the true label ``label_for(path)`` says (the engine's truth), or none with None."""
        self._rows = [_with(row, _TRUE, label_for(row[_PATH]) if label_for else "") for row in self._rows]
        self._all_changed()

    def set_correction(self, row_number: int, label: str) -> None:
        """A person's label for one row (``""`` takes it back); it counts as the row's truth."""
        self._corrections += bool(label) - bool(self._rows[row_number][_CORRECTED])
        self._rows[row_number] = _with(self._rows[row_number], _CORRECTED, label)
        self.dataChanged.emit(self.index(row_number, 0), self.index(row_number, len(HEADERS) - 1))
        self.correction_set.emit(self._rows[row_number][_PATH], label)

    @property
    def corrections(self) -> int:
        """Rows a person gave a label."""
        return self._corrections

    def _all_changed(self) -> None:
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(HEADERS) - 1))

    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self._row_of.clear()
        self._errors = 0
        self._corrections = 0
        self._pixmaps.clear()
        self.endResetModel()

    def done_paths(self) -> frozenset[str]:
        """What a continued run skips, by the engine's rule for ``--resume`` (``done_set``): files resolved.

        Error rows are not done: continuing retries them, as ``--resume`` does.
        """
        return done_set(PreviousRow(row[_PATH], row[_STATUS]) for row in self._rows)

    @property
    def error_count(self) -> int:
        return self._errors

    def results(self) -> list[ImageResult]:
        """Every row in run order, whatever the view's sort or filter: what Export writes."""
        return [unpack(row, self._min_confidence) for row in self._rows]

    def snapshot(self) -> Callable[[], list[ImageResult]]:
        """The rows as they are now, as records built when called, on any thread (the rows are immutable)."""
        rows, min_confidence = tuple(self._rows), self._min_confidence
        return lambda: [unpack(row, min_confidence) for row in rows]

    def result(self, row: int) -> ImageResult:
        return unpack(self._rows[row], self._min_confidence)

    # --- Qt model interface ------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        row_number = index.row()
        if not index.isValid() or row_number >= len(self._rows):
            return None
        return self._value(row_number, index.column(), role)

    def _value(self, row_number: int, column: int, role: int) -> object:
        row = self._rows[row_number]
        failed = row[_STATUS] != "ok"
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Qt.ItemDataRole.DecorationRole:
            if column == THUMBNAIL:
                return self._pixmaps.pixmap(row_number, row[_THUMBNAIL])
            if column == STATUS and failed:
                return self._error_icon
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{display_path(row[_PATH])}\n{top_k_text(unpack(row))}"
        if role == Qt.ItemDataRole.ForegroundRole and column == TRUTH and row[_CORRECTED]:
            return QApplication.palette().link()
        if role == Qt.ItemDataRole.BackgroundRole:
            return ERROR_TINT if failed else None
        if role == Qt.ItemDataRole.FontRole:
            if failed and column == STATUS:
                return self._bold
            if column == TRUTH and row[_CORRECTED]:
                return self._bold
            unknown = column == LABEL and _label(row, self._min_confidence) == UNKNOWN_LABEL and not failed
            return self._italic if (failed or unknown) and column == LABEL else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column == CONFIDENCE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == SORT_ROLE:
            return self._sort_key(row, column)
        if role == FILTER_ROLE:
            label = _label(row, self._min_confidence)
            return f"{row[_STATUS]}\t{_truth(row)}\t{label}\t{_name(row)}\t{label}"
        if role == RESULT_ROLE:
            return unpack(row, self._min_confidence)
        return None

    def _display(self, row: Row, column: int) -> str | None:
        if column == FILE:
            return _name(row)
        if column == LABEL:
            return _label(row, self._min_confidence)
        if column == TRUTH:
            return _truth(row)
        if column == CONFIDENCE:
            confidence = _confidence(row)
            return "" if confidence is None else f"{confidence * 100:.1f} %"
        if column == STATUS:
            return row[_STATUS]
        return None

    def _sort_key(self, row: Row, column: int) -> object:
        if column == FILE:
            return _name(row).casefold()
        if column == LABEL:
            return _label(row, self._min_confidence).casefold()
        if column == TRUTH:
            return _truth(row).casefold()
        if column == CONFIDENCE:
            confidence = _confidence(row)
            return -1.0 if confidence is None else confidence
        if column == STATUS:
            return row[_STATUS]
        return row[_INDEX]


class ResultsFilter(QSortFilterProxyModel):
    """Sort by any column; show rows whose file name or label contains the text, or errors only,
    or one cell of the confusion matrix (a true label and the label given).

    Filtering is Qt's own regular-expression match on FILTER_ROLE, not a
    Python ``filterAcceptsRow``: with no filter set, appending rows calls no
    Python at all, and with one set, one call per row.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._errors_only = False
        self._cell: tuple[str, str] | None = None
        self.setSortRole(SORT_ROLE)
        self.setFilterRole(FILTER_ROLE)
        self.setFilterKeyColumn(FILE)
        self.setDynamicSortFilter(True)

    @property
    def filtering(self) -> bool:
        """Whether the text, "Errors only" or a matrix cell is set, so that some rows may be hidden."""
        return bool(self._text) or self._errors_only or self._cell is not None

    @property
    def cell(self) -> tuple[str, str] | None:
        """The confusion-matrix cell shown, (true label, label given), or None."""
        return self._cell

    def set_cell(self, cell: tuple[str, str] | None) -> None:
        self._cell = cell
        self._refilter()

    def set_text(self, text: str) -> None:
        self._text = text.strip()
        self._refilter()

    def set_errors_only(self, errors_only: bool) -> None:
        self._errors_only = errors_only
        self._refilter()

    def _refilter(self) -> None:
        any_cell = "[^\t]*"
        status = "error" if self._errors_only else "ok" if self._cell else any_cell
        truth, label = (QRegularExpression.escape(name) for name in self._cell) if self._cell else (any_cell, any_cell)
        text = QRegularExpression.escape(self._text)
        pattern = f"^{status}\t{truth}\t{label}\t.*{text}" if self.filtering else ""
        self.setFilterRegularExpression(
            QRegularExpression(pattern, QRegularExpression.PatternOption.CaseInsensitiveOption)
        )
