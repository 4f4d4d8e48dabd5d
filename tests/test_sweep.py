"""The batch-size sweep: every size measured, the best named, out-of-memory stops it cleanly."""

from __future__ import annotations

from batch_classifier.engine.sweep import SweepBudget, SweepPoint, best_batch_size, sweep_batch_sizes
from support import OutOfMemoryAbove, tiny_classifier, write_colour_images

QUICK = SweepBudget(warmup=1, min_repeats=2, max_repeats=3, min_seconds=0.0)


def point(size: int, rate: float) -> SweepPoint:
    return SweepPoint(size, rate, 1.0, 1.0, 0.0, 0.0, "process")


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
    failing = OutOfMemoryAbove(classifier.runner.module, limit=4)
    classifier.runner.module = failing
    result = sweep_batch_sizes(classifier, paths, [1, 2, 4, 8, 16], budget=QUICK)
    assert [p.batch_size for p in result.points] == [1, 2, 4, 8]
    assert result.points[-1].out_of_memory and not any(p.out_of_memory for p in result.points[:-1])
    assert 16 not in failing.calls
    assert result.best_batch_size in (1, 2, 4)
    assert classifier.runner.oom_cap is None, "a sweep probing the limit must not cap later runs"
