"""The window driven end to end from the command line, as a script or a CI job would.

``batch-classifier PATHS --export-csv FILE --quit-when-done`` runs the whole
window offscreen (drop-free, but the same session, worker, table and
export) with the real default model, then exits with a status.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch_classifier.__main__ import main as window_main
from batch_classifier.cli import main as cli_main
from batch_classifier.engine.resources import SAMPLES_DIR, resource_path

from .conftest import write_images

CAT_CLASSES = {"tabby", "tiger cat", "Egyptian cat"}
TIMEOUT_S = 240


def run_window(arguments: list[str], config_home: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(config_home),  # the window's QSettings go here, not in the user's home
    }
    return subprocess.run(
        [sys.executable, "-m", "batch_classifier", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def test_scripted_window_run_classifies_the_samples_and_exports(tmp_path: Path) -> None:
    target = tmp_path / "samples.csv"
    done = run_window(
        [str(resource_path(SAMPLES_DIR)), "--export-csv", str(target), "--quit-when-done"], tmp_path / "config"
    )
    assert done.returncode == 0, done.stderr
    with open(target, encoding="utf-8", newline="") as handle:
        rows = {Path(row["path"]).stem: row for row in csv.DictReader(handle)}
    assert sorted(rows) == ["astronaut", "chelsea", "coffee", "rocket"]
    assert all(row["status"] == "ok" for row in rows.values())
    assert rows["chelsea"]["label"] in CAT_CLASSES
    assert rows["coffee"]["label"] == "espresso"
    assert {row["model"] for row in rows.values()} == {"efficientnet_lite0"}
    settings_file = tmp_path / "config" / "BatchClassifier" / "Batch Classifier.conf"
    assert settings_file.is_file(), "the window saves its settings under the organisation and application names"


def test_scripted_run_that_cannot_start_exits_non_zero(tmp_path: Path, tiny_model: tuple[str, str]) -> None:
    model, _ = tiny_model
    wrong_labels = tmp_path / "three-labels.txt"
    wrong_labels.write_text("a\nb\nc\n", encoding="utf-8")  # the model has four outputs
    settings_file = tmp_path / "config" / "BatchClassifier" / "Batch Classifier.conf"
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(f"[run]\nmodel={model}\nlabels={wrong_labels}\ndevice=cpu\n", encoding="utf-8")
    target = tmp_path / "never.csv"
    done = run_window(
        [str(resource_path(SAMPLES_DIR)), "--export-csv", str(target), "--quit-when-done"], tmp_path / "config"
    )
    assert done.returncode == 1
    assert "three-labels.txt has 3 labels but the model has 4 outputs" in done.stderr, "the reason reaches the user"
    assert not target.exists()


def test_scripted_run_of_a_folder_without_images_exits_1_and_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    target = tmp_path / "never.csv"
    done = run_window([str(empty), "--export-csv", str(target), "--quit-when-done"], tmp_path / "config")
    assert done.returncode == 1
    assert f"No images found in '{empty}'" in done.stderr
    assert not target.exists()


def test_a_scripted_run_with_no_paths_exits_1_at_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An empty glob in a script: say so and stop, never wait for inputs that cannot come."""
    assert window_main(["--export-csv", str(tmp_path / "out.csv"), "--quit-when-done"]) == 1
    assert "nothing to classify" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_an_existing_export_file_needs_overwrite_or_resume(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    existing = tmp_path / "yesterday.csv"
    existing.write_text("path,status\n/a.png,ok\n", encoding="utf-8")
    arguments = [str(resource_path(SAMPLES_DIR)), "--export-csv", str(existing), "--quit-when-done"]
    assert window_main(arguments) == 1
    message = capsys.readouterr().err
    assert "--overwrite" in message and "--resume" in message and str(existing) in message
    assert existing.read_text(encoding="utf-8") == "path,status\n/a.png,ok\n", "left alone"
    with pytest.raises(SystemExit) as usage:
        window_main([*arguments, "--overwrite", "--resume"])
    assert usage.value.code == 2


def test_resume_appends_only_what_the_csv_lacks(tmp_path: Path, tiny_model: tuple[str, str]) -> None:
    model, labels = tiny_model
    folder = tmp_path / "pile"
    paths = write_images(folder, 5)
    target = tmp_path / "results.csv"
    # the CSV of an earlier run that covered three of them
    assert cli_main(["classify", *map(str, paths[:3]), "--csv", str(target), "--model", model, "--labels", labels,
                     "--device", "cpu"]) == 0
    before = target.read_text(encoding="utf-8")
    settings_file = tmp_path / "config" / "BatchClassifier" / "Batch Classifier.conf"
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(f"[run]\nmodel={model}\nlabels={labels}\ndevice=cpu\n", encoding="utf-8")

    done = run_window([str(folder), "--export-csv", str(target), "--resume", "--quit-when-done"], tmp_path / "config")
    assert done.returncode == 0, done.stderr
    text = target.read_text(encoding="utf-8")
    assert text.startswith(before), "the rows already there stay as they were"
    with open(target, encoding="utf-8", newline="") as handle:
        rows = [row["path"] for row in csv.DictReader(handle)]
    assert sorted(rows) == sorted(str(path) for path in paths), "each path once"
