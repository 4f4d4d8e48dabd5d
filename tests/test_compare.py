"""Comparing models under batching: ``bench --models``, its JSON and PNG, and the engine behind it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from batch_classifier import cli
from batch_classifier.engine.compare import Comparison, ModelFailed, ModelSweep, compare_models
from batch_classifier.engine.devices import MemoryReading
from batch_classifier.engine.pipeline import RunConfig
from batch_classifier.engine.sweep import SweepBudget, SweepPoint, SweepResult
from batch_classifier.engine.sweep_chart import PALETTE, _PANEL, save_comparison_chart
from support import write_colour_images

QUICK = SweepBudget(warmup=0, min_repeats=1, max_repeats=1, min_seconds=0.0)


@pytest.fixture
def images(tmp_path: Path) -> list[str]:
    return [str(path) for path in write_colour_images(tmp_path / "images", ["red", "green", "blue"])]


def test_bench_models_writes_a_table_json_and_png(tiny_model, images, tmp_path: Path, capsys) -> None:
    report, chart = tmp_path / "compare.json", tmp_path / "compare.png"
    models = f"{tiny_model.path},resnet18"
    argv = ["bench", *images, "--models", models, "--random-weights", "--device", "cpu", "--batch-sizes", "1,2"]
    assert cli.main([*argv, "--json", str(report), "--plot", str(chart)]) == 0
    printed = capsys.readouterr().out
    assert "tiny.pt (TorchScript)" in printed and "resnet18" in printed and "gain" in printed
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["images"] == 3 and written["device"].startswith("CPU")
    assert [entry["requested"] for entry in written["models"]] == [str(tiny_model.path), "resnet18"]
    for entry in written["models"]:
        assert [point["batch_size"] for point in entry["points"]] == [1, 2]
        rates = {point["batch_size"]: point["images_per_s"] for point in entry["points"]}
        assert entry["sequential_images_per_s"] == rates[1]
        assert entry["best_images_per_s"] == rates[entry["best_batch_size"]]
        assert entry["batching_gain"] == pytest.approx(rates[entry["best_batch_size"]] / rates[1])
        assert all(point["peak_allocated_mb"] > 0 for point in entry["points"])
    with Image.open(chart) as drawn:
        assert drawn.size == (2 * _PANEL[0], _PANEL[1] + 30 + 12 + 16 * 2)


@pytest.mark.parametrize(
    "extra",
    [["--model", "resnet18"], ["--arch", "resnet18"], ["--labels", "labels.txt"]],
    ids=["with-model", "with-arch", "with-labels"],
)
def test_models_clashes_are_usage_errors(extra: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["bench", "--models", "efficientnet_lite0,resnet18", *extra])
    assert raised.value.code == 2
    assert "--models" in capsys.readouterr().err


@pytest.mark.parametrize("models", ["resnet18", "resnet18,resnet18", ","], ids=["one", "twice", "none"])
def test_models_needs_two_different_names(models: str) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["bench", "--models", models])
    assert raised.value.code == 2


def test_a_model_that_cannot_load_is_named_in_one_line(tiny_model, images, capsys) -> None:
    argv = ["bench", *images, "--models", f"{tiny_model.path},resnet9000", "--device", "cpu", "--batch-sizes", "1"]
    assert cli.main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("batch-classifier: error: resnet9000: unknown model 'resnet9000'")


def test_compare_reports_each_point_with_its_model_in_order(tiny_model, images) -> None:
    heard: list[tuple[str, int]] = []
    started: list[str] = []
    comparison = compare_models(
        [str(tiny_model.path), "resnet18"],
        RunConfig(device="cpu", pretrained=False),
        images,
        [1, 4, 2],
        on_point=lambda name, point: heard.append((name, point.batch_size)),
        on_model=started.append,
        budget=QUICK,
    )
    assert started == [str(tiny_model.path), "resnet18"]
    assert heard == [(name, size) for name in started for size in (1, 2, 4)]
    assert [sweep.model for sweep in comparison.sweeps] == ["tiny.pt (TorchScript)", "resnet18"]


def test_compare_stops_when_asked(tiny_model, images) -> None:
    comparison = compare_models(
        [str(tiny_model.path), "resnet18"],
        RunConfig(device="cpu", pretrained=False),
        images,
        [1, 2],
        on_point=lambda name, point: None,
        should_stop=lambda: True,
        budget=QUICK,
    )
    assert comparison.sweeps == ()


def test_undecodable_images_name_the_model(tiny_model, tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ModelFailed, match=r"tiny\.pt: none of the images"):
        compare_models([str(tiny_model.path), "resnet18"], RunConfig(device="cpu"), [str(junk)], [1], budget=QUICK)


def _sweep(name: str, rates: dict[int, float]) -> ModelSweep:
    points = tuple(SweepPoint(size, rate, 1.0, 1.0, MemoryReading(100.0 * size, 100.0 * size, "process")) for size, rate in rates.items())
    best = max(rates, key=rates.__getitem__)
    return ModelSweep(name, name, SweepResult(points, best, rates[1]))


def test_batching_gain_is_best_over_batch_one() -> None:
    assert _sweep("a", {1: 10.0, 2: 25.0, 4: 20.0}).batching_gain == pytest.approx(2.5)
    assert ModelSweep("b", "b", SweepResult((), None, 0.0)).batching_gain == 0.0


def test_chart_draws_every_model_in_the_plots_and_names_it_below(tmp_path: Path) -> None:
    sweeps = (
        _sweep("a", {1: 10.0, 2: 25.0, 4: 20.0}),
        _sweep("b", {1: 5.0, 2: 6.0, 4: 9.0}),
        _sweep("c", {1: 30.0, 2: 31.0, 4: 29.0}),
    )
    chart = tmp_path / "chart.png"
    save_comparison_chart(Comparison("CPU", "fp32", 3, sweeps), "three models", chart)
    with Image.open(chart) as drawn:
        pixels = drawn.convert("RGB")
        width, height = pixels.size
        plots = {pixels.getpixel((x, y)) for x in range(width) for y in range(30, 30 + _PANEL[1])}
        legend = {pixels.getpixel((x, y)) for x in range(width) for y in range(30 + _PANEL[1], height)}
    for colour in PALETTE[:3]:
        assert colour in plots and colour in legend
