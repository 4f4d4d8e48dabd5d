"""The real ``batch-classifier classify`` never destroys or loses a file (issue 12, items 1-7 and 9).

What needs a real process: pipes that close, signals from outside, a lock
held by another process, a file system that fills up, permissions that
root would ignore. Everything else is tested in-process
(``test_cli_safety.py``, ``test_output_paths.py``). Each test here starts
as few processes as its story needs.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import corpus
from batch_classifier.engine.csv_output import header, file_path, restore

CLI = [sys.executable, "-m", "batch_classifier", "classify"]
INPUTS = 4000  # at batch size 1 on torch, a run lasts long enough (~15 s on an idle machine) to act on it while it goes
TOP_K = 2
STARTUP_TIMEOUT_S = 120.0
EXIT_TIMEOUT_S = 120.0
"""A hang guard: the batch in flight and the interpreter's exit take seconds, many on a loaded machine."""
DROP_ROOT = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path, labels = corpus.make_tiny_model(tmp_path_factory.mktemp("model"))
    return ["--model", str(path), "--labels", str(labels), "--device", "cpu", "--top-k", str(TOP_K), "--quiet"]


@pytest.fixture()
def pile(tmp_path: Path) -> Path:
    """INPUTS distinct names (hard links to one small PNG: cheap) in ``tmp_path/in``."""
    return corpus.linked_copies(tmp_path / "in", INPUTS, (32, 24))


def slow(*extra: str) -> list[str]:
    """A run paced to outlast the test's other steps: ONNX Runtime, auto's choice on the CPU, ran the tiny
    model so fast that a run could end while two refused writers started, and the SIGTERM then came too late."""
    return ["--batch-size", "1", "--max-wait-ms", "0", "--runtime", "torch", *extra]


def run(arguments: list[str], **options) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run([*CLI, *arguments], capture_output=True, text=True, timeout=300, **options)
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


def start(arguments: list[str], **options) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def wait_for_rows(process: subprocess.Popen[str], folder: Path, pattern: str, rows: int) -> Path:
    """The file matching ``pattern`` in ``folder`` once it has ``rows`` rows, while ``process`` runs.

    The run is then frozen (SIGSTOP) until ``stop`` signals it: however long the test's next steps take
    on a loaded machine (starting other processes), the run cannot end before them.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended early: {process.communicate()[1]}"
        for path in folder.glob(pattern):
            if path.read_bytes().count(b"\r\n") > rows:
                process.send_signal(signal.SIGSTOP)
                return path
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {rows} rows in {folder / pattern} within {STARTUP_TIMEOUT_S} s")


def stop(process: subprocess.Popen[str], signum: int) -> str:
    """Send ``signum`` to a run ``wait_for_rows`` froze, let it go on, and return its standard error once it exits."""
    process.send_signal(signum)
    process.send_signal(signal.SIGCONT)  # the signal was pending while it was stopped: it arrives now
    try:
        _, stderr = process.communicate(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running {EXIT_TIMEOUT_S} s after {signal.Signals(signum).name}")
    assert "Traceback" not in stderr, stderr
    assert process.returncode == 128 + signum, stderr
    return stderr


def files_once(csv_path: Path, cwd: Path) -> list[str]:
    """The resolved file of every row; the CSV must be whole rows of our columns."""
    with open(csv_path, encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == header(TOP_K) and all(len(row) == len(table[0]) for row in table)
    return [os.path.realpath(cwd / file_path(restore(row[0]))) for row in table[1:]]


def every_input(folder: Path) -> list[str]:
    return sorted(os.path.realpath(path) for path in folder.iterdir())


def test_refusals_touch_nothing_and_say_one_line(model: list[str], tmp_path: Path) -> None:
    """Items 1, 4, 9: an input as the output, an unusable number, a folder the user cannot write."""
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    corpus.solid("RGB", (8, 8), corpus.RED).save(photos / "a.png")
    before = (photos / "a.png").read_bytes()
    refused = run([str(photos), *model, "--csv", str(photos / "sub" / ".." / "a.png"), "--overwrite"])
    assert refused.returncode == 1 and "is one of the inputs" in refused.stderr
    assert (photos / "a.png").read_bytes() == before
    assert len(refused.stderr.strip().splitlines()) == 1

    assert run([str(photos), *model, "--max-wait-ms", "inf"]).returncode == 2

    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to drop root's permission override")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    command = DROP_ROOT + CLI if os.geteuid() == 0 else CLI
    read_only = subprocess.run([*command, str(photos), *model, "--csv", str(locked / "out.csv")],
                               capture_output=True, text=True, timeout=300)
    assert read_only.returncode == 1, read_only.stderr
    assert read_only.stderr.strip() == f"batch-classifier: error: cannot write {locked / 'out.csv'}: permission denied in {locked}"
    assert list(locked.iterdir()) == []


def test_standard_output_that_closes_or_fails(model: list[str], pile: Path, tmp_path: Path) -> None:
    """Item 3 and issue 13 item 10: ``| head -1`` and ``>&-`` end quietly with 141, ``>/dev/full`` with one line."""
    process = start([str(pile), *model, *slow("--csv", "-")])
    assert process.stdout.readline().startswith("path,status,label")
    process.stdout.close()  # what head does after its line
    stderr = process.stderr.read()
    assert process.wait(EXIT_TIMEOUT_S * 4) == 141, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "Error" not in stderr

    one = str(pile / "00000.png")
    closed = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *CLI, one, *model],
                            capture_output=True, text=True, timeout=300)
    assert closed.returncode == 141 and closed.stderr == "", closed.stderr
    with open("/dev/full", "w") as full:
        failing = subprocess.run([*CLI, one, *model], stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert failing.returncode == 1 and "Traceback" not in failing.stderr
    assert failing.stderr.strip().splitlines()[-1] == "batch-classifier: error: cannot write standard output: disk full"


def test_one_writer_and_sigterm_keep_the_old_file(model: list[str], pile: Path, tmp_path: Path) -> None:
    """Items 2, 5, 7: --overwrite writes beside the old file; a second writer is refused; SIGTERM keeps both."""
    out = tmp_path / "out.csv"
    out.write_bytes(b"yesterday's results, which took ten hours\r\n")
    before = out.read_bytes()
    process = start([str(pile), *model, *slow("--csv", str(out), "--overwrite")])
    partial = wait_for_rows(process, tmp_path, "out.partial-*.csv", 10)
    seconds = [start([str(pile), *model, *second]) for second in
               (["--csv", str(out), "--overwrite"], ["--csv", str(partial), "--resume"])]
    for second in seconds:
        _, refusal = second.communicate(timeout=300)
        assert second.returncode == 1 and "is being written by another batch-classifier run" in refusal, refusal
    assert process.poll() is None, "the first run (frozen) still holds its lock"
    stderr = stop(process, signal.SIGTERM)
    assert out.read_bytes() == before, "the old file is untouched until an --overwrite run completes"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM") and last.endswith(f"continue with --resume --csv {partial}")
    resumed = run([str(pile), *model, "--csv", str(partial), "--resume", "--batch-size", "64"])
    assert resumed.returncode == 0, resumed.stderr
    files = files_once(partial, tmp_path)
    assert sorted(files) == every_input(pile) and len(set(files)) == len(files)


def test_sighup_then_resume_from_elsewhere_spelled_otherwise(model: list[str], pile: Path, tmp_path: Path) -> None:
    """Items 6, 7: SIGHUP stops like Ctrl-C (129); resume with ``/abs/in/`` from another folder does each image once."""
    process = start(["in", *model, *slow("--csv", "out.csv")], cwd=tmp_path)
    wait_for_rows(process, tmp_path, "out.csv", 10)
    stderr = stop(process, signal.SIGHUP)
    assert stderr.strip().splitlines()[-1].endswith("rows written to out.csv; continue with --resume"), stderr
    assert len(files_once(tmp_path / "out.csv", tmp_path)) < INPUTS, "stopped midway: the batch in flight, no more"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = run([f"{pile}/", *model, "--csv", str(tmp_path / "out.csv"), "--resume", "--batch-size", "64"],
                  cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    files = files_once(tmp_path / "out.csv", tmp_path)
    assert sorted(files) == every_input(pile) and len(set(files)) == len(files)


def test_a_file_system_that_fills_up(model: list[str], pile: Path, tmp_path: Path) -> None:
    """Item 9, issue 13 item 9: "disk full: N rows kept in FILE", exit 1, and those N rows are whole and valid."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is needed to mount a small file system")
    small = tmp_path / "small"
    small.mkdir()
    script = 'mount -t tmpfs -o size=24k tmpfs "$0" || exit 99; "$@"; status=$?; cat "$0/out.csv"; exit $status'
    try:
        completed = subprocess.run(
            ["unshare", "-rm", "sh", "-c", script, str(small), *CLI, str(pile), *model, "--batch-size", "8",
             "--csv", str(small / "out.csv")],
            capture_output=True, timeout=300,
        )
    except OSError:
        pytest.skip("no unshare")
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode == 99 or stderr.startswith("unshare"):
        pytest.skip(f"cannot mount a tmpfs here: {stderr.strip()}")
    assert completed.returncode == 1 and "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 2, "the start line, then the one line that says why"
    kept = int(lines[-1].removeprefix("batch-classifier: error: disk full: ").split()[0])
    assert lines[-1] == f"batch-classifier: error: disk full: {kept} rows kept in {small / 'out.csv'}"
    table = list(csv.reader(completed.stdout.decode("utf-8").splitlines(keepends=True)))
    assert completed.stdout.endswith(b"\r\n") and table[0] == header(TOP_K)
    assert 0 < kept == len(table) - 1 < INPUTS
    assert all(len(row) == len(table[0]) and row[1] == "ok" for row in table[1:])
