"""The CSV a run leaves behind: one row per input, written and flushed batch by batch.

It must open cleanly in a spreadsheet whatever the file names hold: quoting
per RFC 4180 (commas, quotes, newlines), UTF-8 throughout (bytes that are not
UTF-8 in a name are written as ``\\xNN``), and no cell a spreadsheet would
evaluate as a formula.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from .output_paths import write_replacing
from .records import ImageResult
from .sources import display_path

BASE_COLUMNS = ("path", "status", "label", "confidence", "error")
TRAILING_COLUMNS = ("model", "device", "batch_size", "runtime", "preprocess")
TRUTH_COLUMNS = ("top1_label", "true_label", "correct")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_GUARD = "'"
_BYTE_ESCAPE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")


def header(top_k: int) -> list[str]:
    extra = [column for rank in range(2, top_k + 1) for column in (f"label_{rank}", f"confidence_{rank}")]
    return [*BASE_COLUMNS, *extra, *TRAILING_COLUMNS, *TRUTH_COLUMNS]


class CsvMismatchError(ValueError):
    """An existing CSV to append to has other columns (another --top-k, or not ours) or does not parse."""


def neutralise(cell: str) -> str:
    """Make ``cell`` plain text in a spreadsheet: valid UTF-8, never a formula.

    Text a spreadsheet would run as a formula gets a leading quote (OWASP's
    advice). Text that already starts with a quote gets one too, so
    ``restore`` can strip exactly one from every quoted cell: a file really
    named ``'=x.png`` round-trips. ``display_path`` turns the stray
    surrogates of a non-UTF-8 name, even one quoted inside an error message
    or a model name, into ``\\xNN`` so the UTF-8 file can hold them.
    """
    text = display_path(cell)
    return _FORMULA_GUARD + text if text.startswith((*_FORMULA_STARTS, _FORMULA_GUARD)) else text


def restore(cell: str) -> str:
    """Undo ``neutralise``, for reading our own CSV back."""
    return cell[1:] if cell.startswith(_FORMULA_GUARD) else cell


def row_cells(result: ImageResult, top_k: int) -> list[str]:
    predictions = list(result.predictions)
    cells = [
        neutralise(result.path),
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
    cells += [
        neutralise(result.model),
        neutralise(result.device),
        str(result.batch_size) if result.batch_size else "",
        neutralise(result.runtime),
        neutralise(result.preprocess),
        neutralise(result.top1_label),
        neutralise(result.true_label),
        {True: "1", False: "0", None: ""}[result.correct],
    ]
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
    Appending (``--resume``) first checks the columns match and drops such a
    cut-short last line, which would otherwise swallow the first new row.
    """

    def __init__(self, path: str | Path, top_k: int, append: bool = False) -> None:
        self.path = Path(path)
        has_content = append and self.path.is_file() and self.path.stat().st_size > 0
        if has_content:
            _prepare_for_append(self.path, header(top_k))
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
    """Write a whole result set at once (the window's Export), atomically.

    A file already at ``path`` stays as it was until the new one is complete
    (``output_paths.write_replacing``); whether it may be replaced at all is
    the caller's question to ``output_paths.check_output`` first.
    """
    write_replacing(path, format_rows(results, top_k, with_header=True).encode("utf-8"))


def done_paths(path: str | Path) -> frozenset[str]:
    """Paths an earlier run already wrote to ``path`` (as ``display_path`` shows them), for ``--resume``.

    Only whole rows count: a row cut short by a crash is done again.
    """
    try:
        with open(path, "rb") as handle:
            rows = [row for row, _ in _whole_rows(handle)]
    except (FileNotFoundError, csv.Error):  # nothing to resume; the writer explains a broken file
        return frozenset()
    if not rows or not rows[0] or rows[0][0] != "path":
        return frozenset()
    return frozenset(restore(row[0]) for row in rows[1:] if len(row) == len(rows[0]))


def read_rows(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the whole rows of a CSV a run wrote, every cell as it was before ``neutralise``.

    A row cut short by a crash, or with another number of cells than the
    header, is left out, as ``--resume`` leaves it out.
    """
    with open(path, "rb") as handle:
        rows = [row for row, _ in _whole_rows(handle)]
    if not rows:
        return [], []
    columns = rows[0]
    return columns, [
        dict(zip(columns, (restore(cell) for cell in row))) for row in rows[1:] if len(row) == len(columns)
    ]


def file_path(cell: str) -> str:
    """The file a restored ``path`` cell names: ``display_path`` read backwards.

    A name the file system holds as bytes that are not UTF-8 was written with
    ``\\xNN`` escapes; when the name as written does not exist, the escapes
    are turned back into those bytes. A name that really contains ``\\x``
    exists as written, so it is taken as it is.
    """
    if os.path.lexists(cell) or not _BYTE_ESCAPE.search(cell):
        return cell
    raw = _BYTE_ESCAPE.sub(lambda match: chr(0xDC00 + int(match.group(1), 16)), cell)
    return os.fsdecode(raw.encode("utf-8", errors="surrogateescape"))


def _whole_rows(handle: BinaryIO) -> Iterator[tuple[list[str], int]]:
    """Each record that ends in a line break, with the byte offset where it ends.

    Lines are fed to the csv reader one at a time and it asks for the next
    only to finish a record, so the bytes consumed so far are exactly the
    record's end, even when a quoted name holds line breaks.
    """
    consumed = 0
    line_ended = True

    def lines() -> Iterator[str]:
        nonlocal consumed, line_ended
        for line in handle:
            consumed += len(line)
            line_ended = line.endswith(b"\n")
            yield line.decode("utf-8", errors="replace")

    for row in csv.reader(lines()):
        if line_ended:
            yield row, consumed


def _prepare_for_append(path: Path, expected_header: list[str]) -> None:
    """Refuse a CSV with other columns, or one that does not parse; cut a last row a crash left unfinished."""
    with open(path, "r+b") as handle:
        try:
            rows = list(_whole_rows(handle))
        except csv.Error as error:
            raise CsvMismatchError(f"cannot continue {path}: it is not a valid CSV ({error})") from None
        if not rows or rows[0][0] != expected_header:
            raise CsvMismatchError(
                f"{path} does not have this run's columns ({len(expected_header)}: "
                f"{','.join(expected_header)}); resume with the --top-k it was written with, "
                "or write to another file"
            )
        handle.truncate(rows[-1][1])
