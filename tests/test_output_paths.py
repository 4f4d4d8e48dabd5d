"""engine/output_paths.py: which outputs are refused, and replacing a file without ever losing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch_classifier.engine.csv_output import write_csv
from batch_classifier.engine.output_paths import (
    OutputExists,
    OutputRefused,
    Replacement,
    check_output,
    replacing,
    write_replacing,
)
from batch_classifier.engine.records import ImageResult, Prediction


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.jpg", "sub/b.png"):
        (folder / name).write_bytes(b"precious " + name.encode())
    return folder


def test_stdout_devnull_and_a_new_file_are_accepted(photos: Path, tmp_path: Path) -> None:
    assert check_output("-", [photos]).kind == "stdout"
    assert check_output(os.devnull, [photos]).kind == "devnull"
    assert check_output(str(tmp_path / "out.csv"), [photos]).kind == "new"
    assert check_output(str(photos / "results.csv"), [photos]).kind == "new", "a CSV beside the photos is fine"


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("photos/a.jpg", "is one of the inputs"),
        ("photos/sub/../a.jpg", "is one of the inputs"),
        ("link.jpg", "is one of the inputs"),
        ("hardlink.csv", "same file as the input"),
        ("photos/sub/new.png", "the run would read it as an input"),
    ],
)
def test_an_output_that_is_an_input_is_refused(photos: Path, tmp_path: Path, target: str, says: str) -> None:
    os.symlink(photos / "a.jpg", tmp_path / "link.jpg")
    os.link(photos / "sub" / "b.png", tmp_path / "hardlink.csv")
    inputs = [photos, tmp_path / "link.jpg"] if target == "link.jpg" else [photos]
    with pytest.raises(OutputRefused, match=says):
        check_output(str(tmp_path / target), inputs, overwrite=True)
    assert (photos / "a.jpg").read_bytes() == b"precious a.jpg"


def test_an_image_name_below_a_folder_not_walked_is_accepted(photos: Path) -> None:
    assert check_output(str(photos / "sub" / "new.png"), [photos], recursive=False).kind == "new"


def test_what_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    os.symlink(tmp_path / "gone.csv", tmp_path / "dangling.csv")
    cases = {tmp_path: "is a folder", fifo: "named pipe", Path("/dev/zero"): "is a device",
             tmp_path / "dangling.csv": "symbolic link to a missing file"}
    for path, says in cases.items():
        with pytest.raises(OutputRefused, match=says):
            check_output(str(path), [], overwrite=True)
    assert not (tmp_path / "gone.csv").exists()


def test_an_existing_file_needs_overwrite_or_resume(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("yesterday")
    with pytest.raises(OutputExists, match="--overwrite.*--resume"):
        check_output(str(out), [])
    assert check_output(str(out), [], overwrite=True).kind == "replace"
    assert check_output(str(out), [], resume=True).kind == "append"
    with pytest.raises(OutputExists, match="confirm"):
        check_output(str(out), [], exists_hint="confirm first")


def test_a_missing_or_unwritable_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputRefused, match="folder .*missing does not exist"):
        check_output(str(tmp_path / "missing" / "out.csv"), [])
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputRefused, match="is not a folder"):
        check_output(str(tmp_path / "file" / "out.csv"), [])
    with pytest.raises(OutputRefused, match="empty"):
        check_output("", [])


def test_a_read_only_folder_is_refused_even_for_root(tmp_path: Path) -> None:
    """Root ignores permissions; drop the capabilities that let it, as a normal user has none."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    script = (
        "from batch_classifier.engine.output_paths import check_output, OutputRefused\n"
        f"try: check_output({str(folder / 'out.csv')!r}, [])\n"
        "except OutputRefused as error: print(error)\n"
    )
    command = [sys.executable, "-c", script]
    if os.geteuid() == 0:
        command = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                   "--bounding-set=-dac_override,-dac_read_search", *command]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert "permission denied" in completed.stdout, completed.stdout + completed.stderr


def test_replacing_keeps_the_old_file_until_the_end(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_bytes(b"old rows")
    out.chmod(0o640)
    with pytest.raises(RuntimeError):
        with replacing(out) as replacement:
            os.write(replacement.fd, b"half of the new")
            assert out.read_bytes() == b"old rows"
            raise RuntimeError("crash")
    assert out.read_bytes() == b"old rows"
    assert [path.name for path in tmp_path.iterdir()] == ["out.csv"], "the partial file is removed"
    write_replacing(out, b"new rows")
    assert out.read_bytes() == b"new rows"
    assert out.stat().st_mode & 0o777 == 0o640, "the replacement keeps the old file's permissions"
    assert [path.name for path in tmp_path.iterdir()] == ["out.csv"]


def test_an_abandoned_replacement_keeps_its_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_bytes(b"old rows")
    replacement = Replacement(out)
    os.write(replacement.fd, b"new rows so far")
    replacement.abandon(keep=True)
    assert out.read_bytes() == b"old rows"
    assert replacement.partial.parent == tmp_path and replacement.partial.suffix == ".csv"
    assert replacement.partial.read_bytes() == b"new rows so far"


def test_a_second_writer_is_refused_while_the_first_holds_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_bytes(b"old rows")
    first = Replacement(out)
    try:
        with pytest.raises(OutputRefused, match="being written by another"):
            Replacement(out)
    finally:
        first.abandon(keep=False)
    Replacement(out).abandon(keep=False)  # the lock went with the first writer


def test_export_replaces_atomically(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_bytes(b"yesterday")
    write_csv(out, [ImageResult(0, "a.png", "ok", (Prediction("cat", 0.5),))], top_k=1)
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("a.png,ok,cat,0.500000")
