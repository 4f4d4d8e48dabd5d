"""Interrupted command-line runs keep what they did, and --resume finishes the rest, each input once.

Runs the real ``python -m batch_classifier classify`` in a subprocess with
the tiny model at batch size 1, so a run lasts long enough to interrupt.
The inputs are hard links to one small image (cheap to make, distinct
paths, so distinct rows) plus files with hostile names.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import corpus
from batch_classifier.engine.csv_output import header, restore
from batch_classifier.engine.sources import display_path, iter_sources
from support import done_paths

# Enough that a run at batch size 1 is still going when the test reacts to its first rows, even on an
# idle machine (~1,000 img/s there; on a loaded 2-core box it can be 25 img/s), and small enough to finish fast.
INPUTS = 600
TOP_K = 2
STARTUP_TIMEOUT_S = 90.0  # importing torch on a busy 2-core machine
EXIT_TIMEOUT_S = 90.0  # a hang guard: "a few seconds" on an idle machine, many on a loaded one
SPECIAL_NAMES = (
    "=HYPERLINK(\"evil.invalid\",\"x\").png", "+1.png", "-2.png", "@x.png", "comma, name.png",
    'quote " name.png', "new\nline.png", "café 猫.png", corpus.NON_UTF8_NAME,
)


@pytest.fixture(scope="module")
def cli() -> list[str]:
    command = [sys.executable, "-m", "batch_classifier"]
    probe = subprocess.run([*command, "classify", "--help"], capture_output=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"the classify command is not available yet: {probe.stderr.decode(errors='replace')[-300:]}")
    return command


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    model_path, labels_path = corpus.make_tiny_model(tmp_path_factory.mktemp("model"))
    return ["--model", str(model_path), "--labels", str(labels_path), "--device", "cpu", "--top-k", str(TOP_K)]


@pytest.fixture()
def inputs(tmp_path: Path) -> tuple[Path, set[str]]:
    """A folder of INPUTS images plus hostile names and one bad file; returns it and every path's display form."""
    folder = corpus.linked_copies(tmp_path / "in", INPUTS)
    for name in SPECIAL_NAMES:
        corpus.solid("RGB", (16, 16), corpus.RED).save(folder / name, format="PNG")
    (folder / "zz_broken.jpg").write_bytes(b"not a jpeg")
    expected = {display_path(item.path) for item in iter_sources([folder])}
    assert len(expected) == INPUTS + len(SPECIAL_NAMES) + 1
    return folder, expected


def _start(cli: list[str], model: list[str], folder: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*cli, "classify", str(folder), "--csv", str(out), *model, "--batch-size", "1", "--max-wait-ms", "0",
         "--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_rows(process: subprocess.Popen[bytes], out: Path, rows: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended early: {process.stderr.read().decode(errors='replace')}"
        if out.is_file() and out.read_bytes().count(b"\r\n") > rows:
            return
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {rows} rows within {STARTUP_TIMEOUT_S} s")


def _table(out: Path) -> list[list[str]]:
    """The CSV as the csv module reads it; the file must be strict UTF-8."""
    text = out.read_bytes().decode("utf-8")
    return list(csv.reader(text.splitlines(keepends=True)))


def _complete_rows(out: Path) -> list[list[str]]:
    table = _table(out)
    assert table[0] == header(TOP_K)
    rows = table[1:]
    complete = [row for row in rows if len(row) == len(table[0])]
    assert len(rows) - len(complete) <= 1, "only the very last row may be cut short"
    if len(complete) < len(rows):
        assert rows[-1] is not complete[-1] and not out.read_bytes().endswith(b"\r\n")
    for row in complete:
        assert row[1] in ("ok", "error")
        if row[1] == "ok":
            assert row[2] in corpus.COLOUR_LABELS and 0.0 <= float(row[3]) <= 1.0
        else:
            assert row[4]
    return complete


def _finish_with_resume(cli: list[str], model: list[str], folder: Path, out: Path, expected: set[str]) -> None:
    before = {display_path(path) for path in done_paths(out, TOP_K)}
    resumed = subprocess.run(
        [*cli, "classify", str(folder), "--csv", str(out), *model, "--batch-size", "16", "--quiet", "--resume"],
        capture_output=True,
        timeout=300,
    )
    stderr = resumed.stderr.decode(errors="replace")
    assert resumed.returncode == 0, stderr
    assert "Traceback" not in stderr
    rows = _complete_rows(out)
    paths = [restore(row[0]) for row in rows]
    assert len(paths) == len(set(paths)), "an input appears twice after --resume"
    assert set(paths) == expected, "every input exactly once"
    assert before <= set(paths)
    assert out.read_bytes().count(b"path,status,label") == 1


def test_ctrl_c_keeps_complete_rows_and_resume_finishes(
    cli: list[str], model: list[str], inputs: tuple[Path, set[str]], tmp_path: Path
) -> None:
    folder, expected = inputs
    out = tmp_path / "out.csv"
    process = _start(cli, model, folder, out)
    _wait_for_rows(process, out, 20)
    interrupted_at = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running {EXIT_TIMEOUT_S} s after Ctrl-C")
    took = time.monotonic() - interrupted_at
    stderr = process.stderr.read().decode(errors="replace")
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip(), "a summary line on stderr"
    rows = _complete_rows(out)
    assert out.read_bytes().endswith(b"\r\n"), f"Ctrl-C must leave whole rows only (exited in {took:.1f} s)"
    assert 20 <= len(rows) < len(expected), "the run must really have been interrupted midway"
    paths = [restore(row[0]) for row in rows]
    assert len(paths) == len(set(paths))
    _finish_with_resume(cli, model, folder, out, expected)


def test_kill_9_leaves_parseable_rows_and_resume_finishes(
    cli: list[str], model: list[str], inputs: tuple[Path, set[str]], tmp_path: Path
) -> None:
    """kill -9 mid-run: every complete row parses. Then a half-written last row (what a crash during a
    write, disk full or a power cut leaves) is simulated: --resume drops it and redoes that input."""
    folder, expected = inputs
    out = tmp_path / "out.csv"
    process = _start(cli, model, folder, out)
    _wait_for_rows(process, out, 20)
    process.kill()
    process.wait(EXIT_TIMEOUT_S)
    rows = _complete_rows(out)
    assert 20 <= len(rows) < len(expected)
    data = out.read_bytes()
    last_row_start = data.rstrip(b"\r\n").rfind(b"\r\n") + 2
    out.write_bytes(data[: last_row_start + 7])
    assert len(_complete_rows(out)) == len(rows) - 1
    _finish_with_resume(cli, model, folder, out, expected)


def test_resume_when_everything_is_done_changes_nothing(cli: list[str], model: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in SPECIAL_NAMES:
        corpus.solid("RGB", (16, 16), corpus.RED).save(folder / name, format="PNG")
    expected = {display_path(str(folder / name)) for name in SPECIAL_NAMES}
    out = tmp_path / "out.csv"
    first = subprocess.run(
        [*cli, "classify", str(folder), "--csv", str(out), *model, "--quiet"], capture_output=True, timeout=300
    )
    assert first.returncode == 0, first.stderr.decode(errors="replace")
    assert {restore(row[0]) for row in _complete_rows(out)} == expected
    before = out.read_bytes()
    _finish_with_resume(cli, model, folder, out, expected)
    assert out.read_bytes() == before


def test_resume_with_another_top_k_is_refused_cleanly(cli: list[str], model: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    corpus.solid("RGB", (16, 16), corpus.RED).save(folder / "a.png")
    out = tmp_path / "out.csv"
    out.write_text(",".join(header(TOP_K + 2)) + "\r\n", encoding="utf-8")
    before = out.read_bytes()
    resumed = subprocess.run(
        [*cli, "classify", str(folder), "--csv", str(out), *model, "--quiet", "--resume"],
        capture_output=True,
        timeout=300,
    )
    stderr = resumed.stderr.decode(errors="replace")
    assert out.read_bytes() == before
    assert resumed.returncode == 1 and "Traceback" not in stderr and "top-k" in stderr
