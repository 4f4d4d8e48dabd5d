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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from .output_paths import (
    OutputPlan,
    OutputRefused,
    Replacement,
    create_exclusive,
    describe_error,
    lock_exclusive,
    write_all,
    write_replacing,
)
from .records import ImageResult
from .result_columns import ResultColumns
from .regular_files import NotARegularFile, open_regular
from .sources import display_path

BASE_COLUMNS = ("path", "status", "label", "confidence", "error")
TRAILING_COLUMNS = ("model", "device", "batch_size", "runtime", "preprocess")
TRUTH_COLUMNS = ("top1_label", "true_label", "correct")
CORRECTION_COLUMN = "corrected_label"
"""Last, and only in the window's export: the label a person set while reviewing (``shared/design.md``)."""
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_GUARD = "'"
_GUARDED_STARTS = (*_FORMULA_STARTS, _FORMULA_GUARD)


def header(top_k: int, corrections: bool = False) -> list[str]:
    """The columns in the contract's order; ``corrections`` appends ``corrected_label`` (the window's export)."""
    extra = [column for rank in range(2, top_k + 1) for column in (f"label_{rank}", f"confidence_{rank}")]
    return [*BASE_COLUMNS, *extra, *TRAILING_COLUMNS, *TRUTH_COLUMNS, *([CORRECTION_COLUMN] if corrections else [])]


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
    text = cell if cell.isascii() else display_path(cell)  # ASCII is valid UTF-8 as it is: the common case, kept fast
    return _FORMULA_GUARD + text if text.startswith(_GUARDED_STARTS) else text


def restore(cell: str) -> str:
    """Undo ``neutralise``, for reading our own CSV back."""
    return cell[1:] if cell.startswith(_FORMULA_GUARD) else cell


_LOOKALIKE = re.compile(r"\\(?=x(?:5c|[89a-f][0-9a-f]))")
_ESCAPE = re.compile(r"\\x(5c|[89a-f][0-9a-f])")
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def path_cell(path: str) -> str:
    """The CSV's spelling of a path: the path itself, unless it cannot be written as UTF-8 text.

    A byte of the name that is not UTF-8 is written ``\\xNN`` (always 80-ff:
    ASCII is valid UTF-8). So that the cell reads back to one file only, a
    backslash in the name that would itself read as such an escape (``\\x``
    followed by ``5c`` or 80-ff) is written ``\\x5c``. Nothing else changes:
    Windows backslashes, and ``C:\\x64\\`` stay as they are.
    """
    if path.isascii() and "\\" not in path:
        return path  # nothing to escape; the driver of a cluster run writes 100,000+ such cells a second
    text = os.fsencode(path).decode("utf-8", "surrogateescape")
    text = _LOOKALIKE.sub(r"\\x5c", text)
    return _UNDECODABLE.sub(lambda match: f"\\x{ord(match.group()) - 0xDC00:02x}", text)


def file_path(cell: str) -> str:
    """The file a restored ``path`` cell names, as the file system spells it: ``path_cell`` read backwards."""

    def unescape(match: re.Match[str]) -> str:
        code = int(match.group(1), 16)
        return "\\" if code == 0x5C else chr(0xDC00 + code)

    return os.fsdecode(_ESCAPE.sub(unescape, cell).encode("utf-8", "surrogateescape"))


def _plain(path: str) -> bool:
    """A path cell that ``path_cell`` and ``neutralise`` leave as it is: ASCII, no backslash, no formula start."""
    return path.isascii() and "\\" not in path and not path.startswith(_GUARDED_STARTS)


def _text(cells: Sequence[str]) -> list[str]:
    """A column of labels, model names, errors: few distinct values, each neutralised once."""
    shown = {cell: neutralise(cell) for cell in set(cells)}
    return [shown[cell] for cell in cells]


def _number(values: Iterable[float | None]) -> list[str]:
    return ["" if value is None else f"{value:.6f}" for value in values]


_CORRECT_CELL = {True: "1", False: "0", None: ""}


def format_columns(columns: ResultColumns, top_k: int, with_header: bool, corrections: bool = False) -> str:
    """The CSV text of a batch of rows, built column by column: each cell kind is made in one loop."""
    lines = [_csv_line(header(top_k, corrections))] if with_header else []
    if not len(columns):
        return "".join(lines)
    cells = [
        [path if _plain(path) else neutralise(path_cell(path)) for path in columns.path],
        columns.status,
        _text(columns.label),
        _number(columns.confidences[0]),
        _text(columns.error),
    ]
    for rank in range(1, top_k):
        cells += [_text(columns.labels[rank]), _number(columns.confidences[rank])]
    cells += [
        _text(columns.model),
        _text(columns.device),
        [str(size) if size else "" for size in columns.batch_size],
        _text(columns.runtime),
        _text(columns.preprocess),
        _text(columns.top1_label),
        _text(columns.true_label),
        [_CORRECT_CELL[correct] for correct in columns.correct],
    ]
    if corrections:
        cells.append(_text(columns.corrected_label))
    return "".join(lines) + _records(cells)


def _records(columns: list[Sequence[str]]) -> str:
    """The rows of ``columns`` as RFC 4180 records: the whole block joined at once when no cell needs quotes.

    The check is on the joined text: exactly the separators' commas and line
    breaks, and no quote or carriage return, means no cell holds one.
    """
    lines = list(map(",".join, zip(*columns)))
    body = "\n".join(lines)
    if (body.count(",") == len(lines) * (len(columns) - 1) and body.count("\n") == len(lines) - 1
            and '"' not in body and "\r" not in body):
        return "\r\n".join(lines) + "\r\n"
    return "".join(map(_csv_line, zip(*columns)))


def format_rows(results: Sequence[ImageResult], top_k: int, with_header: bool, corrections: bool = False) -> str:
    return format_columns(ResultColumns.from_results(results, top_k), top_k, with_header, corrections)


def _csv_line(cells: Sequence[str]) -> str:
    """One RFC 4180 record: the cells joined as they are unless one needs quotes, then as ``csv`` writes it.

    Joining is exact when the line holds no quote, no line break and no
    comma beyond the separators; that is nearly every row, and this is
    ten times faster than the ``csv`` module for it.
    """
    line = ",".join(cells)
    if line.count(",") == len(cells) - 1 and '"' not in line and "\n" not in line and "\r" not in line:
        return line + "\r\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


@dataclass(frozen=True)
class PreviousRow:
    """A whole row already in a CSV being continued: the file it names and how it ended."""

    path: str
    status: str


class CsvResultWriter:
    """Appends each batch's rows with a single write, so a run stopped at any moment leaves whole rows.

    Files are written with ``os.write`` on a descriptor (no Python buffer):
    a write that fails (a full disk) is cut back to the last whole batch and
    nothing is left to fail again at close. Open one with ``open`` (which
    follows an ``output_paths.OutputPlan``) or ``to_stream``.
    """

    def __init__(self, write: Callable[[bytes], None], top_k: int, writing_path: Path | None) -> None:
        self.top_k = top_k
        self.writing_path = writing_path
        """Where rows go: the partial file while an ``--overwrite`` runs, else the target; None for a stream."""
        self.rows_written = 0
        self.previous: tuple[PreviousRow, ...] = ()
        """The whole rows of the file being continued (``append``)."""
        self._write_bytes = write
        self._fd: int | None = None
        self._replacement: Replacement | None = None
        self._pending = b""
        self._cut: int | None = None

    @classmethod
    def to_stream(cls, stream: TextIO, top_k: int) -> CsvResultWriter:
        """Rows to an already open text stream (standard output), which close() leaves open."""

        def write(data: bytes) -> None:
            stream.write(data.decode("utf-8"))
            stream.flush()

        writer = cls(write, top_k, None)
        writer._write_bytes(format_rows((), top_k, with_header=True).encode("utf-8"))
        return writer

    @classmethod
    def open(cls, plan: OutputPlan, top_k: int) -> CsvResultWriter:
        """Open what ``plan`` says: create, replace (via a partial file), continue, or ``/dev/null``.

        Raises ``OutputRefused`` (lock held, cannot create) or ``CsvMismatchError``
        (the file to continue has other columns or does not parse); nothing has
        been written then. Continuing cuts a record a crash left unfinished, and
        writes a header into an empty file, only with the first rows.
        """
        if plan.kind == "replace":
            replacement = Replacement(plan.path)
            writer = cls._on_fd(replacement.fd, top_k, replacement.partial)
            writer._replacement = replacement
            writer._write(format_rows((), top_k, with_header=True).encode("utf-8"))
            return writer
        if plan.kind == "append" and os.path.exists(plan.path):
            fd = _open_locked(plan.path, os.O_RDWR)
            writer = cls._on_fd(fd, top_k, Path(plan.path))
            try:
                size = os.fstat(fd).st_size
                if size:
                    with os.fdopen(os.dup(fd), "rb") as handle:
                        writer.previous, end = read_previous(handle, display_path(plan.path), top_k)
                    writer._cut = None if end == size else end
                else:
                    writer._pending = format_rows((), top_k, with_header=True).encode("utf-8")
            except BaseException:
                os.close(fd)
                raise
            os.lseek(fd, 0, os.SEEK_END)
            return writer
        if plan.kind == "devnull":
            fd = os.open(plan.path, os.O_WRONLY)
            return cls._on_fd(fd, top_k, None)
        fd = create_exclusive(plan.path)
        try:
            lock_exclusive(fd, plan.path)
        except BaseException:
            os.close(fd)
            raise
        writer = cls._on_fd(fd, top_k, Path(plan.path))
        writer._write(format_rows((), top_k, with_header=True).encode("utf-8"))
        return writer

    @classmethod
    def _on_fd(cls, fd: int, top_k: int, writing_path: Path | None) -> CsvResultWriter:
        writer = cls(lambda data: write_all(fd, data), top_k, writing_path)
        writer._fd = fd
        return writer

    def _write(self, data: bytes) -> None:
        if self._cut is not None and self._fd is not None:
            os.ftruncate(self._fd, self._cut)
            os.lseek(self._fd, 0, os.SEEK_END)
            self._cut = None
        data, self._pending = self._pending + data, b""
        if self._fd is None:
            self._write_bytes(data)
            return
        good = os.lseek(self._fd, 0, os.SEEK_CUR)
        try:
            self._write_bytes(data)
        except OSError:
            try:
                os.ftruncate(self._fd, good)  # frees space, so it works on a full disk; the file ends at a whole row
                os.lseek(self._fd, good, os.SEEK_SET)
            except OSError:
                pass
            raise

    def write_batch(self, results: Sequence[ImageResult]) -> None:
        self.write_columns(ResultColumns.from_results(results, self.top_k))

    def write_columns(self, columns: ResultColumns) -> None:
        """Append a batch that is already in columns (a cluster run's rows), with a single write."""
        self._write(format_columns(columns, self.top_k, with_header=False).encode("utf-8"))
        self.rows_written += len(columns)

    def finish(self) -> None:
        """The run completed: flush pending bytes, and move an ``--overwrite`` run's partial file over the target."""
        if self._pending:
            self._write(b"")
        if self._replacement is not None:
            replacement, self._replacement, self._fd = self._replacement, None, None
            replacement.commit()
        self.close()

    def close(self) -> None:
        """Stop writing; an ``--overwrite`` run's partial file is kept (its rows can be continued), the target untouched."""
        if self._replacement is not None:
            replacement, self._replacement, self._fd = self._replacement, None, None
            replacement.abandon(keep=True)
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> CsvResultWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def write_csv(path: str | Path, results: Sequence[ImageResult], top_k: int, corrections: bool = False) -> None:
    """Write a whole result set at once (the window's Export), atomically; ``corrections`` adds ``corrected_label``.

    A file already at ``path`` stays as it was until the new one is complete
    (``output_paths.write_replacing``); whether it may be replaced at all is
    the caller's question to ``output_paths.check_output`` first.
    """
    write_replacing(path, format_rows(results, top_k, with_header=True, corrections=corrections).encode("utf-8"))


def _open_locked(path: str, flags: int) -> int:
    try:
        fd = open_regular(path, flags)
    except NotARegularFile as error:
        raise OutputRefused(str(error)) from None
    except OSError as error:
        raise OutputRefused(f"cannot open {display_path(path)}: {describe_error(error)}") from None
    try:
        lock_exclusive(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_rows(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the whole rows of a CSV a run wrote, every cell as it was before ``neutralise``.

    A row cut short by a crash, or with another number of cells than the
    header, is left out, as ``--resume`` leaves it out.
    """
    with open(path, "rb") as handle:
        rows = [row for row, _ in whole_records(handle)]
    if not rows:
        return [], []
    columns = rows[0]
    return columns, [
        dict(zip(columns, (restore(cell) for cell in row))) for row in rows[1:] if len(row) == len(columns)
    ]


def whole_records(handle: BinaryIO) -> Iterator[tuple[list[str], int]]:
    """Each whole record of a CSV, with the byte offset where it ends.

    Lines are fed to the csv reader one at a time and it asks for the next
    only to finish a record, so the bytes consumed so far are exactly the
    record's end, even when a quoted name holds line breaks. A record is
    whole when it ends in a line break outside quotes: one still inside
    quotes at the end of the file (cut while writing a name with a line
    break) is left out, as is a last line without its line break.
    """
    consumed = 0
    line_ended = True
    at_end = False

    def lines() -> Iterator[str]:
        nonlocal consumed, line_ended, at_end
        for line in handle:
            consumed += len(line)
            line_ended = line.endswith(b"\n")
            yield line.decode("utf-8", errors="replace")
        at_end = True

    for row in csv.reader(lines()):
        if line_ended and not at_end:
            yield row, consumed


def read_previous(handle: BinaryIO, shown: str, top_k: int) -> tuple[tuple[PreviousRow, ...], int]:
    """The whole rows of our CSV on ``handle`` (read from its start) and the offset where they end.

    Raises ``CsvMismatchError`` for a file with other columns (another
    --top-k, or not ours) or one that does not parse. Rows with another
    number of cells (edited by hand) are left out.
    """
    expected_header = header(top_k)
    try:
        rows = list(whole_records(handle))
    except csv.Error as error:
        raise CsvMismatchError(f"cannot continue {shown}: it is not a valid CSV ({error})") from None
    if not rows or rows[0][0] != expected_header:
        raise CsvMismatchError(
            f"{shown} does not have this run's columns ({len(expected_header)}: "
            f"{','.join(expected_header)}); resume with the --top-k it was written with, "
            "or write to another file"
        )
    previous = tuple(
        PreviousRow(file_path(restore(row[0])), row[1]) for row, _ in rows[1:] if len(row) == len(expected_header)
    )
    return previous, rows[-1][1]
