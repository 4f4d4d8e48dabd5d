"""The batch-size sweep: every size measured, the best named, out-of-memory stops it cleanly."""

from __future__ import annotations

import torch

from batch_classifier.engine.devices import MemoryReading, memory_kind
from batch_classifier.engine.sweep import SweepBudget, SweepPoint, SweepResult, best_batch_size, sweep_batch_sizes
from support import OutOfMemoryAbove, tiny_classifier, write_colour_images

QUICK = SweepBudget(warmup=1, min_repeats=2, max_repeats=3, min_seconds=0.0)


def point(size: int, rate: float) -> SweepPoint:
    return SweepPoint(size, rate, 1.0, 1.0, MemoryReading(0.0, 0.0, "process"))


def test_best_is_the_smallest_size_within_five_percent_of_the_fastest() -> None:
    points = [point(1, 50), point(2, 96), point(4, 100), point(8, 99)]
    assert best_batch_size(points) == 2
    assert best_batch_size([point(1, 10), point(2, 5)]) == 1
    assert best_batch_size([]) is None


def test_sweep_measures_every_size_including_one_by_one(tiny_model, tmp_path) -> None:
    paths = [str(path) for path in write_colour_images(tmp_path, ["red", "blue", "green"])]
    seen: list[int] = []
    result = sweep_batch_sizes(tiny_classifier(tiny_model), paths, [2, 4, 8], lambda p: seen.append(p.batch_size), budget=QUICK)
    assert [p.batch_size for p in result.points] == [1, 2, 4, 8] == seen
    assert all(p.images_per_s > 0 and p.latency_p95_ms >= p.latency_p50_ms > 0 for p in result.points)
    assert result.sequential_images_per_s == result.points[0].images_per_s
    assert result.best_batch_size == best_batch_size(result.points)


def test_sweep_stops_cleanly_at_the_first_out_of_memory(tiny_model, tmp_path) -> None:
    paths = [str(path) for path in write_colour_images(tmp_path, ["red", "blue"])]
    classifier = tiny_classifier(tiny_model)
    failing = OutOfMemoryAbove(classifier.runner.forward, limit=4)
    classifier.runner.forward = failing
    result = sweep_batch_sizes(classifier, paths, [1, 2, 4, 8, 16], budget=QUICK)
    assert [p.batch_size for p in result.points] == [1, 2, 4, 8]
    assert result.points[-1].out_of_memory and not any(p.out_of_memory for p in result.points[:-1])
    assert 16 not in failing.calls
    assert result.best_batch_size in (1, 2, 4)
    assert classifier.runner.oom_cap is None, "a sweep probing the limit must not cap later runs"


def test_a_point_keeps_its_memory_reading_and_writes_the_flat_json_of_before() -> None:
    measured = SweepPoint(4, 80.0, 50.0, 60.0, MemoryReading(300.0, 512.0, "cuda"), copy_ms=2.0, forward_ms=40.0)
    before = {
        "batch_size": 4, "images_per_s": 80.0, "latency_p50_ms": 50.0, "latency_p95_ms": 60.0,
        "peak_allocated_mb": 300.0, "peak_reserved_mb": 512.0, "memory_kind": "cuda",
        "out_of_memory": False, "failure": "",
    }
    report = measured.report()
    assert list(report.items())[: len(before)] == list(before.items()), "the keys of before come first, unchanged"
    assert (report["copy_ms"], report["forward_ms"], report["busy_percent"]) == (2.0, 40.0, None), "then the stages"


def test_speedup_is_over_batch_one_and_zero_without_it() -> None:
    points = (point(1, 20.0), point(4, 50.0))
    assert SweepResult(points, 4, 20.0).speedup(points[1]) == 2.5
    assert SweepResult(points, 4, 20.0).best_point is points[1]
    assert SweepResult(points[1:], 4, 0.0).speedup(points[1]) == 0.0


def test_each_kind_of_memory_reading_is_named_once() -> None:
    gpu, host = MemoryReading(300.0, 512.0, "cuda"), MemoryReading(900.0, 900.0, "process")
    assert gpu.describe() == "Peak GPU memory: 300 MB allocated · 512 MB reserved"
    assert host.describe() == "Process memory (no CUDA): 900 MB"
    assert (gpu.label, host.label) == ("Peak GPU memory", "Process memory")
    assert memory_kind(torch.device("cpu")) == "process" and memory_kind(torch.device("cuda")) == "cuda"
