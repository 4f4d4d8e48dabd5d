"""The command line's contract: CSV columns, exit codes, bench output."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from batch_classifier.cli import main
from batch_classifier.engine import sources
from support import write_colour_images

REPO = Path(__file__).resolve().parents[1]
CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat"}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def tiny_args(tiny_model) -> list[str]:
    return ["--model", str(tiny_model.path), "--labels", str(tiny_model.labels), "--device", "cpu"]


def test_classify_samples_with_the_default_model(tmp_path: Path) -> None:
    """The acceptance run: offline, the bundled model knows a cat, an espresso and a missile."""
    out = tmp_path / "out.csv"
    completed = subprocess.run(
        [sys.executable, "-m", "batch_classifier", "classify", str(REPO / "resources" / "samples"), "--csv", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    rows = {Path(row["path"]).name: row for row in read_rows(out)}
    assert set(rows) == {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}
    assert rows["chelsea.png"]["label"] in CAT_LABELS
    assert rows["coffee.png"]["label"] == "espresso"
    assert rows["rocket.jpg"]["label"] == "missile"
    assert all(row["status"] == "ok" and 0 <= float(row["confidence"]) <= 1 for row in rows.values())
    assert "done: 4 images, 0 errors" in completed.stderr


def test_csv_columns_and_error_rows(tiny_model, tmp_path: Path) -> None:
    images = write_colour_images(tmp_path / "in", ["red", "green"])
    missing = tmp_path / "in" / "missing.png"
    out = tmp_path / "out.csv"
    code = main(["classify", *tiny_args(tiny_model), "--top-k", "2", "--quiet", "--csv", str(out),
                 str(images[0]), str(missing), str(images[1])])
    assert code == 0
    with open(out, encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["path", "status", "label", "confidence", "error", "label_2", "confidence_2",
                      "model", "device", "batch_size", "runtime", "preprocess", "top1_label", "true_label",
                      "correct"]
    rows = read_rows(out)
    assert [row["status"] for row in rows] == ["ok", "error", "ok"]
    assert [row["label"] for row in rows] == ["red", "", "green"]
    assert rows[1]["error"] == "file not found"
    assert rows[0]["device"] == "cpu" and rows[0]["model"] == "tiny.pt (TorchScript)"
    assert {(row["runtime"], row["preprocess"]) for row in rows} == {("onnxruntime", "exact")}, "auto runs the CPU on ONNX Runtime"


def test_preprocess_mode_is_chosen_and_recorded(tiny_model, tmp_path: Path, capsys) -> None:
    images = write_colour_images(tmp_path / "in", ["red"])
    out = tmp_path / "out.csv"
    assert main(["classify", *tiny_args(tiny_model), "--quiet", "--preprocess", "fast", "--csv", str(out),
                 str(images[0])]) == 0
    assert [(row["label"], row["preprocess"]) for row in read_rows(out)] == [("red", "fast")]
    with pytest.raises(SystemExit) as usage:
        main(["classify", *tiny_args(tiny_model), "--preprocess", "sloppy", str(images[0])])
    assert usage.value.code == 2 and "invalid choice: 'sloppy'" in capsys.readouterr().err


def test_csv_to_standard_output_when_no_file_is_named(tiny_model, tmp_path: Path, capsys) -> None:
    images = write_colour_images(tmp_path / "in", ["blue"])
    assert main(["classify", *tiny_args(tiny_model), "--quiet", str(images[0])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("path,status,label,confidence,error")
    assert lines[1].split(",")[2] == "blue"


def test_double_dash_ends_the_options(tiny_model, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8), (0, 200, 0)).save(tmp_path / "--csv.png")
    out = tmp_path / "out.csv"
    assert main(["classify", *tiny_args(tiny_model), "--quiet", "--csv", str(out), "--", "--csv.png"]) == 0
    assert [row["label"] for row in read_rows(out)] == ["green"]


@pytest.mark.parametrize(
    "arguments",
    [["classify"], ["classify", "x.png", "--batch-size", "0"], ["classify", "x.png", "--precision", "fp64"],
     ["bench", "--batch-sizes", "1,two"], ["frobnicate"], ["classify", "x.png", "--resume"]],
)
def test_bad_arguments_exit_2(arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "no_such_model"], "unknown model 'no_such_model'"),
        (["--device", "cuda"], "no usable CUDA GPU"),
        (["--device", "cpu", "--decode", "gpu"], "GPU decoding needs a CUDA device"),
        (["--model", "missing-file.pt"], "model file not found"),
    ],
)
def test_a_run_that_cannot_start_exits_1_with_one_line(arguments: list[str], message: str, tmp_path: Path) -> None:
    """With an image to classify: a folder without any is refused before the model loads, with that line instead."""
    images = write_colour_images(tmp_path / "in", ["red"])
    completed = subprocess.run(
        [sys.executable, "-m", "batch_classifier", "classify", str(images[0].parent), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert completed.returncode == 1
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_a_folder_without_images_says_so_and_writes_no_csv(tiny_model, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "holiday"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "readme.txt").write_text("not a photo", encoding="utf-8")
    out = tmp_path / "out.csv"
    code = main(["classify", *tiny_args(tiny_model), "--csv", str(out), str(empty)])
    assert code == 1
    error = capsys.readouterr().err
    assert f"No images found in '{empty}'" in error and ".jpg" in error and ".png" in error
    assert not out.exists(), "a run that found nothing must not create or empty a CSV"
    assert main(["classify", *tiny_args(tiny_model), "--no-recursive", str(tmp_path)]) == 1
    assert "subfolders not searched" in capsys.readouterr().err


def test_inputs_that_are_the_same_file_are_counted_in_the_summary(tiny_model, tmp_path: Path, capsys) -> None:
    """The issue's folder of 900 symlinks to 300 files, in small: 9 names for 3 files give 3 rows and say 6."""
    originals = write_colour_images(tmp_path / "originals", ["red", "green", "blue"])
    links = tmp_path / "links"
    links.mkdir()
    for copy in range(3):
        for image in originals:
            (links / f"{copy}-{image.name}").symlink_to(image)
    out = tmp_path / "out.csv"
    assert main(["classify", *tiny_args(tiny_model), "--csv", str(out), str(links)]) == 0
    assert len(read_rows(out)) == 3
    error = capsys.readouterr().err
    assert error.count("6 skipped as duplicates of the same file") == 1, error
    assert "done: 3 images" in error


def test_a_folder_given_twice_through_a_symlink_is_counted_as_duplicates(tiny_model, tmp_path: Path, capsys) -> None:
    photos = tmp_path / "photos"
    write_colour_images(photos, ["red", "green", "blue"])
    (tmp_path / "link-to-photos").symlink_to(photos)
    out = tmp_path / "out.csv"
    assert main(["classify", *tiny_args(tiny_model), "--csv", str(out), str(photos), str(tmp_path / "link-to-photos")]) == 0
    assert len(read_rows(out)) == 3
    assert "3 skipped as duplicates of the same file" in capsys.readouterr().err


def test_a_run_walks_its_folder_once_not_once_to_count_and_again_to_classify(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a network share a walk is the slow part: the total comes from a count alongside (the bar), never first."""
    folder = tmp_path / "share"
    write_colour_images(folder, ["red", "green", "blue"])
    listed: list[str] = []
    scandir = os.scandir

    def counting_scandir(path: str) -> object:
        listed.append(os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(sources.os, "scandir", counting_scandir)
    out = tmp_path / "out.csv"
    assert main(["classify", *tiny_args(tiny_model), "--quiet", "--csv", str(out), str(folder)]) == 0
    assert len(read_rows(out)) == 3
    assert listed == [str(folder)], "--quiet has no bar, so nothing counts: one walk, the run's own"


def test_weights_not_available_offline_exit_1(tmp_path: Path) -> None:
    """A torchvision model without cached weights, and no network: name the file and where it goes."""
    images = write_colour_images(tmp_path / "in", ["red"])
    completed = subprocess.run(
        [sys.executable, "-m", "batch_classifier", "classify", str(images[0].parent), "--model", "resnet18",
         "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "TORCH_HOME": str(tmp_path / "torch-home"),
             "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"},
    )
    assert completed.returncode == 1
    assert "resnet18-f37072fd.pth" in completed.stderr
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in completed.stderr
    assert "Traceback" not in completed.stderr


def test_bench_prints_every_size_and_writes_json_and_plot(tiny_model, tmp_path: Path, capsys) -> None:
    report, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(["bench", *tiny_args(tiny_model), "--batch-sizes", "1,2,4,8", "--json", str(report),
                 "--plot", str(plot)])
    assert code == 0
    table = capsys.readouterr().out
    sizes_in_table = [int(line.split()[0]) for line in table.splitlines()[1:] if line.split()[0].isdigit()]
    assert sizes_in_table == [1, 2, 4, 8]
    data = json.loads(report.read_text())
    assert [point["batch_size"] for point in data["points"]] == [1, 2, 4, 8]
    assert data["best_batch_size"] in (1, 2, 4, 8)
    assert all(point["images_per_s"] > 0 for point in data["points"])
    with Image.open(plot) as image:
        assert image.size[0] > 500


def test_models_lists_the_default_as_offline_ready(capsys) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    default = next(line for line in lines if line.startswith("efficientnet_lite0"))
    assert default.split()[1:3] == ["bundled", "yes"]
    names = {line.split()[0] for line in lines[1:] if line.strip()}
    assert {"resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "vit_b_16"} <= names


def test_version_and_self_test() -> None:
    version = subprocess.run([sys.executable, "-m", "batch_classifier", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("batch-classifier ")
    check = subprocess.run(
        [sys.executable, "-m", "batch_classifier", "--self-test"], capture_output=True, text=True, timeout=600
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "[ok] chelsea.png" in check.stdout and "self-test passed" in check.stdout
