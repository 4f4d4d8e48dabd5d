"""Why batching is fast (issue 21): stage times per batch size, the fixed-cost fit, one by one versus
batched, and how busy the device is; all engine code, checked here without Qt."""

from __future__ import annotations

import json
import random
import types
from pathlib import Path

import pytest
import torch

from batch_classifier import cli
from batch_classifier.engine import occupancy
from batch_classifier.engine.devices import MemoryReading
from batch_classifier.engine.fixed_cost import POOR_FIT, fit_fixed_cost, fixed_cost_line
from batch_classifier.engine.occupancy import (
    KERNELS_NEED_CUDA,
    NVML_MISSING,
    CpuThreadsProbe,
    SampledProbe,
    Occupancy,
    count_kernels,
    kernels_in,
    probe_for,
)
from batch_classifier.engine.records import BatchStats
from batch_classifier.engine.resources import sample_images
from batch_classifier.engine.stage_times import StageAccumulator, fit_stage_times, stage_times_of_sweep
from batch_classifier.engine.sweep import SweepPoint
from batch_classifier.engine.versus import one_by_one_vs_batched
from support import tiny_classifier

SIZES = (1, 2, 4, 8, 16, 32, 64)


def test_the_fit_recovers_a_fixed_cost_and_a_cost_per_image_from_noisy_timings() -> None:
    noise = random.Random(21)
    a, b = 6.0, 1.5
    samples = [(n, (a + b * n) * noise.uniform(0.98, 1.02)) for n in SIZES for _ in range(3)]
    fit = fit_fixed_cost(samples)
    assert fit is not None and not fit.poor
    assert fit.per_batch_ms == pytest.approx(a, rel=0.05)
    assert fit.per_image_ms == pytest.approx(b, rel=0.05)
    assert fit.relative_residual < 0.02 and fit.residual_ms > 0
    assert fit.gains_little_beyond == pytest.approx(10 * a / b, abs=2)  # a/(n b) < 10% from n = 10a/b on
    line = fit.describe()
    assert line.startswith(f"about {fit.per_batch_ms:.2f} ms per batch whatever its size, plus {fit.per_image_ms:.2f} ms per image")
    assert line.endswith(f"batching beyond {fit.gains_little_beyond} gains less than 10% here")


def test_a_time_per_image_that_grows_with_the_batch_is_called_a_poor_fit_not_a_fixed_cost() -> None:
    """On a CPU the time per image rises once a batch outgrows the caches: no fixed cost explains that."""
    fit = fit_fixed_cost([(n, 12.0 * n**1.4) for n in SIZES])
    assert fit is not None and fit.poor and fit.relative_residual > POOR_FIT
    line = fit.describe()
    assert "no fixed cost per batch" in line and "rises from 12.0 ms at batch 1" in line and "caches" in line
    assert "per batch whatever its size" not in line
    assert fit.report()["gains_little_beyond"] is None and fit.report()["poor"] is True


def test_two_sizes_fit_exactly_and_fewer_give_no_fit() -> None:
    fit = fit_fixed_cost([(1, 10.0), (8, 24.0)])
    assert fit is not None and fit.per_batch_ms == pytest.approx(8.0) and fit.per_image_ms == pytest.approx(2.0)
    assert fit_fixed_cost([(4, 10.0), (4, 12.0)]) is None
    assert fixed_cost_line(None) == "fixed cost: measure at least two batch sizes to see it"


def stats(index: int, images: int, wait: float, copy: float, forward: float, total: float, busy: float | None = 50.0) -> BatchStats:
    return BatchStats(
        batch_index=index, batch_size=images, images=images, errors=0, decode_ms=99.0 * images, copy_ms=copy,
        forward_ms=forward, total_ms=total, images_per_s=1.0, memory=MemoryReading(1.0, 1.0, "process"),
        warmup=index == 0, finished_at=float(index), wait_ms=wait,
        occupancy=Occupancy("cpu", busy) if busy is not None else None,
    )


def test_the_stacked_bars_are_the_batch_stats_they_came_from() -> None:
    batches = [
        stats(0, 4, 500.0, 50.0, 500.0, 900.0),  # warm-up: left out
        stats(1, 4, 8.0, 2.0, 40.0, 46.0, busy=40.0),
        stats(2, 4, 4.0, 2.0, 44.0, 50.0, busy=60.0),
        stats(3, 8, 0.0, 4.0, 72.0, 80.0, busy=None),
        stats(4, 0, 9.0, 0.0, 0.0, 1.0),  # nothing decoded: left out
    ]
    accumulator = StageAccumulator()
    for batch in batches:
        accumulator.add(batch)
    four, eight = accumulator.times()
    assert (four.batch_size, four.batches, eight.batch_size, eight.batches) == (4, 2, 8, 1)
    assert four.decode_ms == (8.0 + 4.0) / 8, "decode is what the model waited for, not the decode threads' total"
    assert four.copy_ms == 4.0 / 8 and four.forward_ms == 84.0 / 8
    assert four.rest_ms == ((46.0 - 42.0) + (50.0 - 46.0)) / 8, "the rest of each batch after copy and forward"
    assert four.total_ms == pytest.approx((12.0 + 96.0) / 8), "the bar is the wait plus the batch's whole time"
    assert four.busy_percent == 50.0 and eight.busy_percent is None
    assert eight.stages() == (0.0, 0.5, 9.0, 0.5)
    fit = fit_stage_times([four, eight])
    assert fit is not None and fit.measured_ms == (42.0, 72.0), "fitted to the forward time of a whole batch"


def test_the_sweep_bars_have_no_decode_and_its_points_carry_their_stages() -> None:
    memory = MemoryReading(1.0, 1.0, "process")
    points = [
        SweepPoint(2, 100.0, 20.0, 22.0, memory, copy_ms=2.0, forward_ms=16.0, occupancy=Occupancy("cpu", 90.0)),
        SweepPoint(1, 60.0, 16.0, 17.0, memory, copy_ms=1.0, forward_ms=14.0),
        SweepPoint(4, 0.0, 0.0, 0.0, memory, out_of_memory=True),
    ]
    one, two = stage_times_of_sweep(points)
    assert (one.batch_size, one.decode_ms, one.copy_ms, one.forward_ms, one.rest_ms) == (1, 0.0, 1.0, 14.0, 1.0)
    assert (two.copy_ms, two.forward_ms, two.rest_ms, two.busy_percent) == (1.0, 8.0, 1.0, 90.0)


def test_one_by_one_versus_batched_on_the_bundled_photos_gives_two_times_and_a_ratio(tiny_model) -> None:
    photos = [str(path) for path in sample_images()]
    result = one_by_one_vs_batched(tiny_classifier(tiny_model), photos, 4)
    assert (result.images, result.distinct, result.batch_size) == (4, 4, 4)
    assert result.one_by_one_s > 0 and result.batched_s > 0
    assert result.ratio == result.one_by_one_s / result.batched_s
    lines = result.describe()
    assert lines[0].startswith("4 images one by one: ") and lines[1].startswith("4 images in batches of 4: ")
    assert lines[2].startswith("batched is ") and lines[3].startswith("why: ")
    assert result.fit is not None and result.fit.sizes == (1, 4)
    assert json.loads(json.dumps(result.report()))["ratio"] == result.ratio


def test_without_nvidia_ml_py_a_cuda_reading_says_what_to_install() -> None:
    def missing() -> object:
        raise ImportError("No module named 'pynvml'")

    probe = probe_for(torch.device("cuda"), nvml_loader=missing)
    probe.start()
    reading = probe.stop()
    assert reading is not None and reading.busy_percent is None
    assert reading.describe() == NVML_MISSING and "nvidia-ml-py" in NVML_MISSING


def test_nvml_readings_become_utilisation_and_memory(monkeypatch) -> None:
    """A stand-in for pynvml with the calls the probe makes; the real one needs an NVIDIA driver."""
    calls: list[str] = []
    fake = types.SimpleNamespace(
        nvmlInit=lambda: calls.append("init"),
        nvmlDeviceGetHandleByPciBusId=lambda bus_id: calls.append(bus_id) or "handle",
        nvmlDeviceGetUtilizationRates=lambda handle: types.SimpleNamespace(gpu=87, memory=40),
        nvmlDeviceGetMemoryInfo=lambda handle: types.SimpleNamespace(used=3 * 2**30, total=80 * 2**30),
    )
    monkeypatch.setattr(occupancy, "_pci_bus_id", lambda device: "00000000:3B:00.0")
    probe = probe_for(torch.device("cuda"), nvml_loader=lambda: fake)
    probe.start()
    reading = probe.stop()
    assert calls == ["init", "00000000:3B:00.0"]
    assert reading == Occupancy("gpu", 87.0, 3072.0)
    assert reading.describe() == "GPU 87% busy, 3,072 MB in use (NVML)"


def test_the_cpu_share_counts_the_model_threads_and_leaves_out_the_python_ones(monkeypatch) -> None:
    readings = iter([{1: 10.0, 2: 5.0, 3: 7.0}, {1: 11.0, 2: 5.5, 3: 8.0}])
    times = iter([100.0, 101.0])
    monkeypatch.setattr(occupancy.threading, "get_native_id", lambda: 1)
    probe = CpuThreadsProbe(
        read=lambda: next(readings), python_threads=lambda: [1, 3], cores=2, clock=lambda: next(times)
    )
    probe.start()
    reading = probe.stop()
    # thread 1 (this one, running the model) and 2 (torch's pool) count; 3 (a decode thread) does not
    assert reading == Occupancy("cpu", 100 * (1.0 + 0.5) / (1.0 * 2))


def test_kernels_are_counted_on_cuda_only_and_copies_are_not_kernels() -> None:
    cuda, cpu = torch.autograd.DeviceType.CUDA, torch.autograd.DeviceType.CPU
    events = [
        types.SimpleNamespace(name="void at::native::conv2d_kernel", device_type=cuda),
        types.SimpleNamespace(name="Memcpy HtoD (Pageable -> Device)", device_type=cuda),
        types.SimpleNamespace(name="aten::conv2d", device_type=cpu),
        types.SimpleNamespace(name="sm90_gemm", device_type=cuda),
    ]
    assert kernels_in(events) == 2
    with pytest.raises(ValueError, match=KERNELS_NEED_CUDA):
        count_kernels(lambda: None, torch.device("cpu"))


def tiny_args(tiny_model) -> list[str]:
    return ["--model", str(tiny_model.path), "--labels", str(tiny_model.labels), "--device", "cpu"]


def test_bench_json_carries_the_stage_breakdown_and_the_fit(tiny_model, tmp_path: Path, capsys) -> None:
    report = tmp_path / "bench.json"
    assert cli.main(["bench", *tiny_args(tiny_model), "--batch-sizes", "1,2,4", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    assert [entry["batch_size"] for entry in data["stages"]] == [1, 2, 4]
    for entry, point in zip(data["stages"], data["points"]):
        stages = entry["per_image_ms"]
        assert set(stages) == {"decode", "copy", "forward", "rest"} and stages["decode"] == 0.0
        assert stages["forward"] == pytest.approx(point["forward_ms"] / point["batch_size"])
    fit = data["fixed_cost"]
    assert fit["sizes"] == [1, 2, 4] and {"per_batch_ms", "per_image_ms", "residual_ms", "poor"} <= set(fit)
    assert f"fixed cost: {fit['summary']}" in out.splitlines()
    assert "fwd/img" in out.splitlines()[0]


def test_bench_versus_one_by_one_prints_both_times_and_writes_json(tiny_model, tmp_path: Path, capsys) -> None:
    report = tmp_path / "versus.json"
    assert cli.main(["bench", *tiny_args(tiny_model), "--versus-one-by-one", "3", "--json", str(report)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("3 images one by one: ") and out[1].startswith("3 images in batches of 3: ")
    data = json.loads(report.read_text())["versus_one_by_one"]
    assert data["images"] == 3 and data["ratio"] == pytest.approx(data["one_by_one_s"] / data["batched_s"])
    assert data["fixed_cost"]["sizes"] == [1, 3]


@pytest.mark.parametrize("extra", [["--plot", "x.png"], ["--batch-sizes", "1,2"], ["--count-kernels"]])
def test_versus_one_by_one_runs_on_its_own(tiny_model, extra: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["bench", *tiny_args(tiny_model), "--versus-one-by-one", "3", *extra])
    assert stopped.value.code == 2 and "--versus-one-by-one runs on its own" in capsys.readouterr().err


def test_count_kernels_on_the_cpu_is_refused_in_one_line_before_measuring(tiny_model, capsys) -> None:
    assert cli.main(["bench", *tiny_args(tiny_model), "--count-kernels"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert KERNELS_NEED_CUDA in err[-1] and "batch 1 done" not in "\n".join(err)


def test_a_run_reads_the_device_once_in_a_while_not_on_every_batch() -> None:
    now = [0.0]
    readings: list[str] = []

    class Counting:
        def start(self) -> None:
            readings.append("start")

        def stop(self) -> Occupancy:
            readings.append("stop")
            return Occupancy("cpu", 50.0)

    sampled = SampledProbe(Counting(), 0.25, clock=lambda: now[0])
    seen = []
    for _ in range(6):  # six batches of 0.1 s
        sampled.start()
        now[0] += 0.1
        seen.append(sampled.stop())
    assert [reading is not None for reading in seen] == [True, False, False, False, True, False]
    assert readings == ["start", "stop"] * 2


def test_fewer_images_than_asked_repeat_to_make_up_the_batch(tiny_model) -> None:
    photos = [str(path) for path in sample_images()][:2]
    result = one_by_one_vs_batched(tiny_classifier(tiny_model), photos, 6)
    assert (result.images, result.distinct, result.batch_size) == (6, 2, 6)
    assert result.describe()[0].startswith("6 images (2 different, repeated) one by one: ")


@pytest.mark.parametrize("mode", [["--versus-one-by-one", "3"], ["--batch-sizes", "1,2"]])
def test_both_measurements_warn_of_an_unreadable_folder_and_refuse_no_images_alike(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, mode: list[str]
) -> None:
    """The sweep and one-by-one-versus-batched take their images from one helper: the same warning, the same refusal."""
    from unreadable_trees import deny_listing

    empty = tmp_path / "empty"
    locked = empty / "locked"
    locked.mkdir(parents=True)
    deny_listing(monkeypatch, locked)
    asked: list[int] = []
    real = cli._images_to_measure
    monkeypatch.setattr(cli, "_images_to_measure", lambda given, count: asked.append(count) or real(given, count))
    assert cli.main(["bench", *tiny_args(tiny_model), *mode, str(empty)]) == 1
    assert asked == [3 if "--versus-one-by-one" in mode else 2]
    warning, refusal = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("batch-classifier: warning: ") and str(locked) in warning
    assert refusal.startswith("batch-classifier: error: Nothing to classify in ") and str(locked) in refusal
