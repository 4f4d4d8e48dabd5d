"""The CSV: valid for any file name, safe in a spreadsheet, and readable back for --resume."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

import corpus
from batch_classifier.engine.csv_output import (
    CsvMismatchError,
    CsvResultWriter,
    format_rows,
    header,
    neutralise,
    path_cell,
    file_path,
    read_previous,
    restore,
    write_csv,
)
from batch_classifier.engine.output_paths import OutputPlan
from batch_classifier.engine.records import ImageResult, Prediction
from batch_classifier.engine.sources import display_path

FORMULA_NAMES = ('=HYPERLINK("evil.invalid","click").png', "+1.png", "-2.png", "@x.png", "\tx.png", "\rx.png")
NAMES = (
    *corpus.HOSTILE_NAMES,
    corpus.NON_UTF8_NAME,
    *FORMULA_NAMES,
    "plain.jpg",
    "'quoted.png",
    "''twice.png",
    "crlf\r\ninside.png",
    "trailing space .png",
)
TOP_K = 3


def _ok(index: int, path: str, label: str = "cat") -> ImageResult:
    return ImageResult(
        index, path, "ok", (Prediction(label, 0.9), Prediction("dog", 0.05)), model="tiny.pt", device="cpu", batch_size=4,
        runtime="torch", preprocess="exact",
    )


def _error(index: int, path: str, reason: str = "not an image Pillow can read") -> ImageResult:
    return ImageResult(index, path, "error", error=reason, model="tiny.pt", device="cpu")


def done_paths(path: Path, top_k: int = TOP_K) -> set[str]:
    """The paths of the whole rows, as written (not resolved): what --resume reads back."""
    with open(path, "rb") as handle:
        return {row.path for row in read_previous(handle, str(path), top_k)[0]}


def _append(path: Path, top_k: int = TOP_K) -> CsvResultWriter:
    return CsvResultWriter.open(OutputPlan(str(path), "append"), top_k)


def _read(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:  # strict UTF-8: any bad byte fails here
        return list(csv.reader(handle))


def test_any_file_name_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    results = [_ok(i, name) if i % 2 else _error(i, name) for i, name in enumerate(NAMES)]
    write_csv(out, results, TOP_K)
    rows = _read(out)
    assert rows[0] == header(TOP_K)
    assert len(rows) == len(NAMES) + 1
    assert all(len(row) == len(rows[0]) for row in rows)
    assert [restore(row[0]) for row in rows[1:]] == [display_path(name) for name in NAMES]
    assert done_paths(out) == set(NAMES), "every name reads back to itself"


def test_rfc4180_quoting_and_line_ends(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, 'a, "b"\nc.png')], TOP_K)
    raw = out.read_bytes()
    assert raw.startswith(b"path,status,label,confidence,error,label_2,confidence_2,label_3,confidence_3,")
    assert b'"a, ""b""\nc.png",ok,cat,0.900000,,dog,0.050000,,,tiny.pt,cpu,4,torch,exact,,,\r\n' in raw
    assert raw.endswith(b"\r\n")


def test_non_utf8_name_is_written_as_escapes(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, corpus.NON_UTF8_NAME)], TOP_K)
    out.read_bytes().decode("utf-8")  # strict
    assert _read(out)[1][0] == "caf\\xe9.png"


@pytest.mark.parametrize("name", FORMULA_NAMES + ("'=already.png",))
def test_formula_cells_are_neutralised(tmp_path: Path, name: str) -> None:
    """A spreadsheet opening the CSV sees text, never a formula; restore gives the name back."""
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, name)], TOP_K)
    cell = _read(out)[1][0]
    assert cell.startswith("'"), cell
    assert restore(cell) == name
    assert done_paths(out) == {name}


def test_every_text_column_is_neutralised(tmp_path: Path) -> None:
    """Labels come from a user's labels file and errors quote Pillow: they are guarded too."""
    out = tmp_path / "out.csv"
    result = ImageResult(
        0, "x.png", "ok", (Prediction("=cmd|' /C calc'!A0", 0.9), Prediction("+label", 0.1)), model="@m.pt",
        min_confidence=0.95, true_label="-truth",
    )
    write_csv(out, [result, _error(1, "y.png", "-bad reason")], TOP_K)
    rows = _read(out)
    cells = dict(zip(rows[0], rows[1]))
    assert rows[1][5].startswith("'+") and cells["model"].startswith("'@")
    assert cells["label"] == "unknown" and cells["top1_label"].startswith("'=") and cells["true_label"] == "'-truth"
    assert rows[2][4] == "'-bad reason"
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_neutralise_and_restore_are_inverse() -> None:
    for text in (*NAMES, "", "'", "''", "=", "plain"):
        shown = display_path(text)
        assert restore(neutralise(text)) == shown
        assert not neutralise(text).startswith(("=", "+", "-", "@", "\t", "\r"))


def test_undecodable_bytes_in_any_cell_do_not_break_the_file(tmp_path: Path) -> None:
    """An error message or a model name can quote a non-UTF-8 file name: the row is still written."""
    out = tmp_path / "out.csv"
    reason = f"corrupt or truncated image: cannot open {corpus.NON_UTF8_NAME}"
    result = ImageResult(0, corpus.NON_UTF8_NAME, "error", error=reason, model=corpus.NON_UTF8_NAME)
    write_csv(out, [result], TOP_K)
    row = _read(out)[1]
    assert row[4] == "corrupt or truncated image: cannot open caf\\xe9.png"
    assert row[header(TOP_K).index("model")] == "caf\\xe9.png"


def test_rows_are_flushed_per_batch(tmp_path: Path) -> None:
    """Another process sees each batch as soon as it is written: a killed run keeps what it did."""
    out = tmp_path / "out.csv"
    writer = CsvResultWriter.open(OutputPlan(str(out), "new"), TOP_K)
    writer.write_batch([_ok(0, "a.png"), _ok(1, "b.png")])
    assert [row[0] for row in _read(out)[1:]] == ["a.png", "b.png"]
    writer.write_batch([_error(2, "c.png")])
    assert len(_read(out)) == 4
    writer.close()


def test_done_paths_counts_only_whole_rows(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, "a.png"), _error(1, "b.png")], TOP_K)
    whole = out.read_bytes()
    partial_row = format_rows([_ok(2, "c,\nd.png")], TOP_K, with_header=False).encode()
    for cut in range(1, len(partial_row)):
        out.write_bytes(whole + partial_row[:cut])
        assert done_paths(out) == {"a.png", "b.png"}, f"cut after {cut} bytes"
    out.write_bytes(whole + partial_row)
    assert done_paths(out) == {"a.png", "b.png", "c,\nd.png"}


def test_a_record_cut_inside_quotes_at_the_end_is_not_whole(tmp_path: Path) -> None:
    """A name with a line break, cut by a full disk right after it: the open quote must not count as a row."""
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, "a.png")], TOP_K)
    whole = out.read_bytes()
    out.write_bytes(whole + b'"new\n')
    assert done_paths(out) == {"a.png"}
    with _append(out) as writer:
        writer.write_batch([_ok(1, "b.png")])
    assert [row[0] for row in _read(out)] == ["path", "a.png", "b.png"]


def test_append_after_a_crash_drops_the_cut_row_and_keeps_the_rest(tmp_path: Path) -> None:
    """--resume after kill -9 mid-write: the half row goes, whole rows stay, new rows parse."""
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, "a.png"), _ok(1, 'quote " and\nnewline.png')], TOP_K)
    out.write_bytes(out.read_bytes() + format_rows([_ok(2, "c.png")], TOP_K, with_header=False).encode()[:9])
    assert done_paths(out) == {"a.png", 'quote " and\nnewline.png'}
    with _append(out) as writer:
        writer.write_batch([_ok(0, "c.png"), _error(1, "d.png")])
    rows = _read(out)
    assert [row[0] for row in rows] == ["path", "a.png", 'quote " and\nnewline.png', "c.png", "d.png"]
    assert all(len(row) == len(header(TOP_K)) for row in rows)


def test_append_to_a_complete_file_keeps_every_byte(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, "a.png")], TOP_K)
    before = out.read_bytes()
    with _append(out) as writer:
        writer.write_batch([_ok(1, "b.png")])
    after = out.read_bytes()
    assert after.startswith(before) and after.count(b"path,status") == 1


def test_append_refuses_other_columns_and_leaves_the_file_alone(tmp_path: Path) -> None:
    """Resuming with another --top-k would make a ragged CSV; a foreign CSV is not ours to extend."""
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, "a.png")], TOP_K)
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("name,size\r\na.png,3", encoding="utf-8")
    for path, top_k in ((out, TOP_K + 1), (foreign, TOP_K)):
        before = path.read_bytes()
        with pytest.raises(CsvMismatchError, match="top-k"):
            _append(path, top_k)
        assert path.read_bytes() == before


def test_append_to_an_empty_file_writes_the_header(tmp_path: Path) -> None:
    out = tmp_path / "empty.csv"
    out.write_bytes(b"")
    with _append(out) as writer:
        writer.write_batch([_ok(0, "a.png")])
    assert _read(out) == [header(TOP_K), _read(out)[1]] and _read(out)[1][0] == "a.png"


def test_to_stream_leaves_the_stream_open() -> None:
    stream = io.StringIO()
    with CsvResultWriter.to_stream(stream, TOP_K) as writer:
        writer.write_batch([_ok(0, "=x.png")])
    assert not stream.closed
    rows = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    assert rows[0] == header(TOP_K) and rows[1][0] == "'=x.png"


def test_unparseable_file_is_refused_not_truncated(tmp_path: Path) -> None:
    """A field over the csv module's size limit (a broken or foreign file): no traceback, no data cut."""
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, "a.png")], TOP_K)
    out.write_bytes(out.read_bytes() + b'"' + b"x" * (csv.field_size_limit() + 10) + b'"\r\n')
    before = out.read_bytes()
    with pytest.raises(CsvMismatchError, match="not a valid CSV"):
        _append(out)
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ("plain/photo.jpg", "plain/photo.jpg"),
        ("C:\\Users\\me\\x64\\a.png", "C:\\Users\\me\\x64\\a.png"),
        ("\\xff.png", "\\x5cxff.png"),
        ("\\x5c.png", "\\x5cx5c.png"),
        (corpus.NON_UTF8_NAME, "caf\\xe9.png"),
    ],
)
def test_path_cells_are_reversible(name: str, cell: str) -> None:
    """One file, one spelling: a name written as '\\xff' and the byte 0xff give different cells."""
    assert path_cell(name) == cell
    assert file_path(path_cell(name)) == name


def test_two_names_that_used_to_collide_read_back_apart(tmp_path: Path) -> None:
    literal, byte = "\\xff.png", os.fsdecode(b"\xff.png")
    out = tmp_path / "out.csv"
    write_csv(out, [_ok(0, literal), _ok(1, byte)], TOP_K)
    assert done_paths(out) == {literal, byte}


@pytest.mark.parametrize("odd", NAMES)
def test_one_odd_cell_in_a_block_of_plain_rows_comes_out_as_csv_writes_it(odd: str) -> None:
    """A block is joined at once only when no cell needs quotes: one odd name among plain ones keeps its quoting and guard.

    The text must be byte for byte what the ``csv`` module writes for the
    cells it reads back (minimal quoting, CRLF), and every name restores.
    """
    names = [f"plain/{index}.jpg" for index in range(50)]
    names.insert(17, odd)
    text = format_rows([_ok(index, name) for index, name in enumerate(names)], TOP_K, with_header=False)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    reference = io.StringIO()
    csv.writer(reference, lineterminator="\r\n").writerows(rows)
    assert text == reference.getvalue()
    assert [file_path(restore(row[0])) for row in rows] == names
    assert not any(row[0].startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows)
