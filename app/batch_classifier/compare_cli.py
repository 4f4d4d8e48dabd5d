"""``batch-classifier bench --models a,b,c``: the batch-size sweep for several models, side by side.

Prints one table per model as it finishes and a summary of the batching
gain per model, and writes the comparison as JSON and as a PNG when asked.
The measuring is the engine's (``engine/compare.py``); this module only
shows it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .engine.compare import Comparison, ModelSweep, compare_models
from .engine.devices import resolve_device
from .engine.pipeline import RunConfig
from .engine.sweep import SweepPoint, SweepResult, default_sweep_sizes
from .engine.sweep_chart import save_comparison_chart


def summary_table(comparison: Comparison) -> str:
    """One row per model: batch-1 and best img/s, the best size, the batching gain, memory at the best size."""
    width = max(len("model"), *(len(sweep.model) for sweep in comparison.sweeps))
    rows = [f"{'model':<{width}} {'batch-1 img/s':>13} {'best img/s':>10} {'best batch':>10} {'gain':>7} {'peak MB':>8}"]
    for sweep in comparison.sweeps:
        best = sweep.best_point
        if best is None:
            rows.append(f"{sweep.model:<{width}} {'nothing measured':>13}")
            continue
        rows.append(
            f"{sweep.model:<{width}} {sweep.result.sequential_images_per_s:>13.1f} {best.images_per_s:>10.1f} "
            f"{best.batch_size:>10} {sweep.batching_gain:>6.2f}x {best.memory.allocated_mb:>8.0f}"
        )
    return "\n".join(rows)


def comparison_report(comparison: Comparison) -> dict[str, object]:
    """The JSON document: the setting once, then each model's gain, best size and every point."""
    return {
        "device": comparison.device,
        "precision": comparison.precision,
        "images": comparison.images,
        "models": [_model_report(sweep) for sweep in comparison.sweeps],
    }


def _model_report(sweep: ModelSweep) -> dict[str, object]:
    best = sweep.best_point
    return {
        "model": sweep.model,
        "requested": sweep.requested,
        "runtime": sweep.runtime,
        "sequential_images_per_s": sweep.result.sequential_images_per_s,
        "best_batch_size": sweep.result.best_batch_size,
        "best_images_per_s": best.images_per_s if best is not None else None,
        "batching_gain": sweep.batching_gain,
        "points": [point.report() for point in sweep.result.points],
    }


def run_compare(
    models: Sequence[str],
    config: RunConfig,
    paths: Sequence[str],
    sizes: Sequence[int] | None,
    json_path: str | None,
    plot_path: str | None,
    table: Callable[[SweepResult], str],
) -> Comparison:
    """Measure, print as each model finishes, then write the JSON and the PNG if asked."""
    sizes = sizes or default_sweep_sizes(resolve_device(config.device))
    sys.stderr.write(f"comparing {len(models)} models on {len(paths)} images, batch sizes {','.join(map(str, sizes))}\n")
    def started(name: str) -> None:
        sys.stderr.write(f"{name}:\n")

    def measured(name: str, point: SweepPoint) -> None:
        sys.stderr.write(f"  batch {point.batch_size} done\n")

    comparison = compare_models(models, config, paths, sizes, on_point=measured, on_model=started)
    for sweep in comparison.sweeps:
        print(f"{sweep.model} on {comparison.device} ({comparison.precision}, {sweep.runtime})")
        print(table(sweep.result))
        print()
    print(summary_table(comparison))
    if json_path:
        Path(json_path).write_text(json.dumps(comparison_report(comparison), indent=2) + "\n", encoding="utf-8")
    if plot_path:
        title = f"{len(comparison.sweeps)} models on {comparison.device} ({comparison.precision}), {comparison.images} images"
        save_comparison_chart(comparison, title, plot_path)
    return comparison
