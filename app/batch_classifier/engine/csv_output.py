"""The CSV a run leaves behind: one row per input, written and flushed batch by batch.

It must open cleanly in a spreadsheet whatever the file names hold: quoting
per RFC 4180 (commas, quotes, newlines), UTF-8 throughout (bytes that are not
UTF-8 in a name are written as ``\\xNN``), and no cell a spreadsheet would
evaluate as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from .records import ImageResult
from .sources import display_path

BASE_COLUMNS = ("path", "status", "label", "confidence", "error")
TRAILING_COLUMNS = ("model", "device", "batch_size")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_GUARD = "'"


def header(top_k: int) -> list[str]:
    extra = [column for rank in range(2, top_k + 1) for column in (f"label_{rank}", f"confidence_{rank}")]
    return [*BASE_COLUMNS, *extra, *TRAILING_COLUMNS]


def neutralise(cell: str) -> str:
    """Prefix a quote to text a spreadsheet would run as a formula (OWASP's advice)."""
    return _FORMULA_GUARD + cell if cell.startswith(_FORMULA_STARTS) else cell


def restore(cell: str) -> str:
    """Undo ``neutralise``, for reading our own CSV back."""
    if cell.startswith(_FORMULA_GUARD) and cell[1:].startswith(_FORMULA_STARTS):
        return cell[1:]
    return cell


def row_cells(result: ImageResult, top_k: int) -> list[str]:
    predictions = list(result.predictions)
    cells = [
        neutralise(display_path(result.path)),
        result.status,
        neutralise(result.label),
        f"{predictions[0].confidence:.6f}" if predictions else "",
        neutralise(result.error),
    ]
    for rank in range(1, top_k):
        if rank < len(predictions):
            cells += [neutralise(predictions[rank].label), f"{predictions[rank].confidence:.6f}"]
        else:
            cells += ["", ""]
    cells += [neutralise(result.model), result.device, str(result.batch_size) if result.batch_size else ""]
    return cells


def format_rows(results: Iterable[ImageResult], top_k: int, with_header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if with_header:
        writer.writerow(header(top_k))
    writer.writerows(row_cells(result, top_k) for result in results)
    return buffer.getvalue()


class CsvResultWriter:
    """Appends each batch's rows with a single write and a flush.

    One write per batch means a run killed at any moment leaves whole rows
    behind (at worst the last line is cut short, and nothing before it).
    """

    def __init__(self, path: str | Path, top_k: int, append: bool = False) -> None:
        self.path = Path(path)
        has_content = append and self.path.is_file() and self.path.stat().st_size > 0
        self._open(open(self.path, "a" if append else "w", encoding="utf-8", newline=""), top_k, not has_content)

    @classmethod
    def to_stream(cls, stream: TextIO, top_k: int) -> CsvResultWriter:
        """Rows to an already open text stream (standard output), which close() leaves open."""
        writer = cls.__new__(cls)
        writer._open(stream, top_k, with_header=True, owned=False)
        return writer

    def _open(self, stream: TextIO, top_k: int, with_header: bool, owned: bool = True) -> None:
        self.top_k = top_k
        self._file = stream
        self._owned = owned
        if with_header:
            self._write(format_rows((), top_k, with_header=True))

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()

    def write_batch(self, results: Iterable[ImageResult]) -> None:
        self._write(format_rows(results, self.top_k, with_header=False))

    def close(self) -> None:
        if self._owned:
            self._file.close()

    def __enter__(self) -> CsvResultWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def write_csv(path: str | Path, results: Iterable[ImageResult], top_k: int) -> None:
    """Write a whole result set at once (the window's Export)."""
    with CsvResultWriter(path, top_k) as writer:
        writer.write_batch(results)


def done_paths(path: str | Path) -> frozenset[str]:
    """Paths an earlier run already wrote to ``path`` (as ``display_path`` shows them), for ``--resume``."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            reader = csv.reader(handle)
            first = next(reader, None)
            if not first or first[0] != "path":
                return frozenset()
            return frozenset(restore(row[0]) for row in reader if len(row) >= len(BASE_COLUMNS))
    except FileNotFoundError:
        return frozenset()
