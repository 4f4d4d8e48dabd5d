"""The command line never destroys or loses a file (issue 12) and accounts for every image (issue 13), in-process.

``tests/test_output_safety.py`` runs the real command for what needs a real
process (pipes, signals, locks held by another process).
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import warnings
from pathlib import Path

import pytest
import torch

from batch_classifier import cli
from batch_classifier.engine import cluster, csv_output, output_paths, pipeline, sweep
from batch_classifier.engine.run_identity import sidecar_path
from support import TinyModel, make_tiny_model, write_colour_images

TOP_K = 2


@pytest.fixture()
def run(tiny_model, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``run(*paths, "--csv", out, ...)`` -> exit status, in ``tmp_path``, with the tiny model at top-k 2."""
    monkeypatch.chdir(tmp_path)

    def run(*arguments: str, model=tiny_model) -> int:
        return cli.main(["classify", "--model", str(model.path), "--labels", str(model.labels), "--device", "cpu",
                         "--top-k", str(TOP_K), "--quiet", *map(str, arguments)])

    return run


@pytest.fixture()
def photos(tmp_path: Path) -> list[Path]:
    return write_colour_images(tmp_path / "in", ["red", "green", "blue"])


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    error = capsys.readouterr().err
    assert "Traceback" not in error
    lines = error.strip().splitlines()
    assert len(lines) == 1, error
    return lines[0]


def last_line(capsys: pytest.CaptureFixture[str]) -> str:
    error = capsys.readouterr().err
    assert "Traceback" not in error
    return error.strip().splitlines()[-1]


def test_an_existing_csv_is_left_alone_without_overwrite_or_resume(run, photos, tmp_path, capsys) -> None:
    out = tmp_path / "out.csv"
    out.write_bytes(b"yesterday's results")
    assert run("in", "--csv", out) == 1
    assert "--overwrite" in one_line(capsys) and out.read_bytes() == b"yesterday's results"
    out.chmod(0o640)
    assert run("in", "--csv", out, "--overwrite") == 0
    assert [row["label"] for row in rows(out)] == ["red", "green", "blue"]
    assert out.stat().st_mode & 0o777 == 0o640
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in", "out.csv", "out.csv.run.json"], "no partial left"


def test_overwrite_with_resume_and_resume_without_a_file_are_usage_errors(run) -> None:
    for arguments in (("in", "--csv", "x.csv", "--overwrite", "--resume"), ("in", "--resume"),
                      ("in", "--csv", "-", "--resume")):
        with pytest.raises(SystemExit) as exited:
            run(*arguments)
        assert exited.value.code == 2


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-wait-ms", value) for value in ("inf", "-inf", "nan", "1e400", "-5", "0x10", "60001", "")]
    + [("--batch-size", value) for value in ("0", "-0", "0x10", "1e3", "inf", "65537", "4.0")]
    + [("--top-k", value) for value in ("0", "-1", "nan")]
    + [("--decode-workers", value) for value in ("0", "257", "two")],
)
def test_numeric_arguments_are_checked_by_argparse(option: str, value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["classify", "x.png", f"{option}={value}"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and f"argument {option}: must be" in error


@pytest.mark.parametrize("command", ["classify", "bench", "models"])
def test_help_prints(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0 and "usage:" in capsys.readouterr().out


def test_numeric_edge_spellings_that_are_fine() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["classify", "x.png", "--max-wait-ms", "-0", "--batch-size", "65536", "--top-k", "1000"])
    assert args.max_wait_ms == 0 and str(args.max_wait_ms) == "0.0" and args.batch_size == 65536


def test_top_k_above_the_classes_is_lowered_with_a_note(run, photos, tmp_path, capsys) -> None:
    out = tmp_path / "out.csv"
    assert run("in", "--csv", out, "--top-k", "9") == 0
    assert "--top-k 9 lowered to 4" in capsys.readouterr().err
    assert "label_4" in rows(out)[0] and "label_5" not in rows(out)[0]


def test_dev_null_is_accepted_and_left_a_device(run, photos, capsys) -> None:
    assert run("in", "--csv", os.devnull) == 0
    assert "done: 3 images" in capsys.readouterr().err
    assert not sidecar_path(os.devnull).exists()


@pytest.mark.parametrize("target", ["in", "/dev/zero", "fifo"])
def test_resume_refuses_what_is_not_a_regular_file(run, photos, tmp_path, capsys, target) -> None:
    os.mkfifo(tmp_path / "fifo")
    assert run("in", "--csv", target, "--resume") == 1
    assert "not a file" in one_line(capsys)


@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "in"])
def test_labels_that_are_not_a_regular_file_are_refused(run, photos, tmp_path, tiny_model, capsys, target) -> None:
    os.mkfifo(tmp_path / "fifo")
    assert cli.main(["classify", "in", "--model", str(tiny_model.path), "--labels", target, "--device", "cpu"]) == 1
    assert "not a file" in one_line(capsys)


def test_resume_refuses_another_model_weights_or_labels(run, photos, tmp_path, tiny_model, capsys) -> None:
    out = tmp_path / "out.csv"
    assert run(photos[0], "--csv", out) == 0
    before = out.read_bytes()
    retrained = make_tiny_model(tmp_path)  # same file name, same labels, other weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(retrained.path))
    with torch.no_grad():
        next(module.parameters()).add_(0.5)
    module.save(str(retrained.path))
    renamed = tmp_path / "renamed.txt"
    renamed.write_text("rouge\nvert\nbleu\nsombre\n", encoding="utf-8")
    capsys.readouterr()
    assert run("in", "--csv", out, "--resume", model=retrained) == 1
    assert "written with different weights" in one_line(capsys)
    assert run("in", "--csv", out, "--resume", model=TinyModel(tiny_model.path, renamed)) == 1
    assert "written with different labels" in one_line(capsys)
    assert run("in", "--csv", out, "--resume", "--top-k", "3") == 1
    assert "written with different top-k" in one_line(capsys), "the run record says what differs, not the columns"
    assert out.read_bytes() == before, "a refused resume touches nothing"


def test_an_empty_csv_name_and_an_unknown_device_are_one_line(run, photos, capsys) -> None:
    """``--csv "$OUT"`` with OUT unset is not standard output; a device torch does not know is named, not torch's list."""
    with pytest.raises(SystemExit) as stopped:
        run(photos[0], "--csv", "")
    assert stopped.value.code == 2 and "--csv needs a file name" in capsys.readouterr().err
    assert cli.main(["classify", str(photos[0]), "--device", "banana", "--quiet"]) == 1
    assert one_line(capsys) == ("batch-classifier: error: unknown device 'banana': "
                                "use auto, cuda, mps, cpu or one such as cuda:1")


def test_resume_refuses_rows_without_a_run_record(run, photos, tmp_path, capsys) -> None:
    out = tmp_path / "out.csv"
    assert run(photos[0], "--csv", out) == 0
    sidecar_path(out).unlink()
    capsys.readouterr()
    assert run("in", "--csv", out, "--resume") == 1
    assert "no out.csv.run.json" in one_line(capsys)


def test_resume_matches_files_however_they_are_spelled(run, photos, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out.csv"
    assert run("in/00000-red.png", "--csv", out) == 0
    assert run("./in/", "--csv", out, "--resume") == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    photos.append(write_colour_images(tmp_path / "in" / "more", ["dark"])[0])
    assert run(f"{tmp_path}/in/../in", "--csv", out, "--resume") == 0
    paths = [row["path"] for row in rows(out)]
    assert paths[:3] == ["in/00000-red.png", "./in/00001-green.png", "./in/00002-blue.png"], "as given"
    assert len(paths) == 4 and os.path.isabs(paths[3]), "a run from elsewhere writes absolute paths"
    assert [os.path.realpath(tmp_path / path) for path in paths] == [os.path.realpath(path) for path in photos]
    assert "nothing to do" not in capsys.readouterr().err


def test_resume_retries_error_rows_and_ends_with_one_row_per_path(run, photos, tmp_path, capsys) -> None:
    out = tmp_path / "out.csv"
    late = tmp_path / "late.png"
    assert run("in", late, "--csv", out) == 0
    assert [row["status"] for row in rows(out)] == ["ok", "ok", "ok", "error"]
    assert run("in", late, "--csv", out, "--resume", "--no-retry-errors") == 0
    assert "nothing to do" in capsys.readouterr().err
    write_colour_images(tmp_path / "tmp", ["dark"])[0].rename(late)  # the file arrives
    assert run("in", late, "--csv", out, "--resume") == 0
    assert "1 error rows tried again" in capsys.readouterr().err
    table = rows(out)
    assert [(row["path"], row["status"], row["label"]) for row in table] == [
        ("in/00000-red.png", "ok", "red"), ("in/00001-green.png", "ok", "green"),
        ("in/00002-blue.png", "ok", "blue"), (str(late), "ok", "dark")]
    assert not [path for path in tmp_path.iterdir() if ".partial-" in path.name]


def test_a_full_disk_mid_run_keeps_whole_rows_and_says_so(run, photos, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out.csv"
    real_write = csv_output.write_all
    calls = []

    def fill_up(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) == 3:  # header, first batch, then the disk is full halfway through the second
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(csv_output, "write_all", fill_up)
    assert run("in", "--csv", out, "--batch-size", "1", "--max-wait-ms", "0") == 1
    assert last_line(capsys) == f"batch-classifier: error: disk full: 1 rows kept in {out}"
    assert [row["label"] for row in rows(out)] == ["red"] and out.read_bytes().endswith(b"\r\n")
    monkeypatch.setattr(csv_output, "write_all", real_write)
    assert run("in", "--csv", out, "--resume") == 0
    assert [row["label"] for row in rows(out)] == ["red", "green", "blue"]


@pytest.mark.parametrize(("module", "where", "signum"), [(cluster, "open_classifier", signal.SIGINT),
                                                         (cli, "SourceWalk", signal.SIGTERM)])
def test_a_signal_while_the_model_loads_or_the_tree_is_counted(run, photos, tmp_path, monkeypatch, capsys,
                                                                module, where, signum) -> None:
    real = getattr(module, where)

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, where, signalled)
    out = tmp_path / "out.csv"
    assert run("in", "--csv", out) == 128 + signum
    assert f"stopped by {signal.Signals(signum).name}" in one_line(capsys)
    assert not out.exists(), "nothing was written yet, so nothing is left"


def test_bench_checks_its_output_paths_before_measuring(tiny_model, tmp_path, monkeypatch, capsys) -> None:
    def never(*_args, **_kwargs):
        raise AssertionError("measured although the results could not be written")

    monkeypatch.setattr(sweep, "sweep_batch_sizes", never)
    base = ["bench", "--model", str(tiny_model.path), "--labels", str(tiny_model.labels), "--device", "cpu"]
    assert cli.main([*base, "--json", str(tmp_path / "missing" / "bench.json")]) == 1
    assert "missing does not exist" in one_line(capsys)
    existing = tmp_path / "bench.png"
    existing.write_bytes(b"last week's plot")
    assert cli.main([*base, "--plot", str(existing)]) == 1
    assert "--overwrite" in one_line(capsys) and existing.read_bytes() == b"last week's plot"
    with pytest.raises(SystemExit) as exited:
        cli.main([*base, "--plot", str(tmp_path / "bench.txt")])
    assert exited.value.code == 2


def test_bench_overwrite_replaces_its_outputs(tiny_model, tmp_path, capsys) -> None:
    report = tmp_path / "bench.json"
    report.write_text("old")
    assert cli.main(["bench", "--model", str(tiny_model.path), "--labels", str(tiny_model.labels), "--device", "cpu",
                     "--batch-sizes", "1,2", "--json", str(report), "--overwrite"]) == 0
    assert [point["batch_size"] for point in json.loads(report.read_text())["points"]] == [1, 2]


@pytest.mark.parametrize("signals", [1, 2])
def test_a_signal_as_the_overwritten_file_is_moved_into_place_names_the_complete_file(
    run, photos, tmp_path, monkeypatch, capsys, signals: int
) -> None:
    """After the last batch there is nothing to stop: the file is made whole, then named; a second signal waits too."""
    out = tmp_path / "out.csv"
    out.write_text("yesterday\r\n")
    real_commit = output_paths.Replacement.commit

    def signalled(replacement) -> None:
        if replacement.target == out:  # not the run record, written before the run
            for _ in range(signals):
                os.kill(os.getpid(), signal.SIGTERM)
        real_commit(replacement)

    monkeypatch.setattr(output_paths.Replacement, "commit", signalled)
    assert run("in", "--csv", out, "--overwrite") == 128 + signal.SIGTERM
    assert last_line(capsys) == f"stopped by SIGTERM after the last batch: 3 rows written to {out}, which is complete"
    assert [row["label"] for row in rows(out)] == ["red", "green", "blue"]
    assert sidecar_path(out).exists() and not [path for path in tmp_path.iterdir() if ".partial-" in path.name]


def test_a_signal_after_the_last_batch_is_not_lost(run, photos, tmp_path, monkeypatch, capsys) -> None:
    """A signal between the last batch and the end of the run still ends the run with 130, its file named."""
    real = pipeline.Classifier.classify_walk

    def then_signalled(self, *args, **kwargs):
        summary = real(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return summary

    monkeypatch.setattr(pipeline.Classifier, "classify_walk", then_signalled)
    out = tmp_path / "out.csv"
    assert run("in", "--csv", out) == 128 + signal.SIGINT
    assert last_line(capsys) == f"stopped by SIGINT after the last batch: 3 rows written to {out}, which is complete"
    assert len(rows(out)) == 3


def test_a_standard_error_that_closes_does_not_end_a_run_writing_its_csv(
    tiny_model, photos, tmp_path, monkeypatch
) -> None:
    """``classify ... --csv out.csv 2>&1 | head -1``: the progress line's next write met a closed pipe and the
    run ended with 141, its CSV holding only the header. Standard error only informs: the run goes on."""

    class ClosesAfterOneLine:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def write(self, text: str) -> int:
            if self.lines:
                raise BrokenPipeError(32, "Broken pipe")
            self.lines.append(text)
            return len(text)

        def flush(self) -> None:
            if self.lines:
                raise BrokenPipeError(32, "Broken pipe")

        def isatty(self) -> bool:
            return False

    closing = ClosesAfterOneLine()
    monkeypatch.setattr("sys.stderr", closing)
    out = tmp_path / "out.csv"
    monkeypatch.chdir(tmp_path)
    arguments = ["classify", "--model", str(tiny_model.path), "--labels", str(tiny_model.labels),
                 "--device", "cpu", "--top-k", str(TOP_K), "in", "--csv", str(out)]  # no --quiet: the progress line
    assert cli.main(arguments) == 0
    assert [row["label"] for row in rows(out)] == ["red", "green", "blue"]
    assert len(closing.lines) == 1
