"""What the command line says, decided by the engine (issue 13, item 15): bench walks folders, slow precisions warn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from batch_classifier.cli import main
from batch_classifier.engine.devices import precision_note
from support import write_colour_images


def tiny_args(model) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--model", str(model.path), "--labels", str(model.labels), "--device", "cpu"]


def test_bench_walks_a_folder_as_classify_does(tiny_model, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "photos"
    write_colour_images(folder, ["red", "green"])
    write_colour_images(folder / "more", ["blue"])
    (folder / "notes.txt").write_text("not a photo", encoding="utf-8")
    report = tmp_path / "bench.json"
    assert main(["bench", *tiny_args(tiny_model), "--batch-sizes", "1,4", "--json", str(report), str(folder)]) == 0
    assert "; 3 images, batch sizes 1,4" in capsys.readouterr().err
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["images"] == 3
    assert [point["batch_size"] for point in data["points"]] == [1, 4]


def test_bench_on_a_folder_without_images_says_so(tiny_model, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["bench", *tiny_args(tiny_model), "--batch-sizes", "1", str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().err.startswith(f"batch-classifier: error: No images found in '{tmp_path / 'empty'}'")


def test_fp16_on_the_cpu_is_said_to_be_slow_in_one_line(tiny_model, tmp_path: Path, capsys) -> None:
    images = write_colour_images(tmp_path, ["red"])
    assert main(["classify", *tiny_args(tiny_model), "--precision", "fp16", "--quiet", str(images[0])]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "fp16" in line and "slow" in line]
    assert said == ["batch-classifier: warning: fp16 on the CPU is emulated and slow (18x slower than fp32 in our "
                    "measurement); fp32 (or auto) is faster there"]


@pytest.mark.parametrize(
    ("dtype", "device", "slow"),
    [(torch.float16, "cpu", True), (torch.bfloat16, "cpu", True), (None, "cpu", False), (torch.float16, "cuda", False)],
)
def test_precision_notes_only_where_the_precision_is_slow(dtype, device: str, slow: bool) -> None:
    assert bool(precision_note(dtype, torch.device(device))) is slow
