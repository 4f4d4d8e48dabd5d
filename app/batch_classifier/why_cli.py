"""What ``bench`` says about *why* batching is fast: stage times, the fixed cost, kernels, one by one.

The measuring and the words are the engine's (``engine/stage_times.py``,
``engine/fixed_cost.py``, ``engine/versus.py``, ``engine/occupancy.py``); this
module lays them out for a terminal and for ``bench --json``.
"""

from __future__ import annotations

from .engine.kernels import kernels_of_one_batch
from .engine.occupancy import KERNELS_NEED_CUDA
from .engine.pipeline import Classifier
from .engine.stage_times import StageTimes
from .engine.sweep import SweepResult
from .engine.versus import VersusResult


def stage_columns(stages: StageTimes | None) -> str:
    """Three columns of a bench row: copy, forward and the rest, in ms per image."""
    if stages is None:
        return f"{'':>9} {'':>9} {'':>9}"
    return f"{stages.copy_ms:>9.2f} {stages.forward_ms:>9.2f} {stages.rest_ms:>9.2f}"


STAGE_HEADER = f"{'copy/img':>9} {'fwd/img':>9} {'rest/img':>9}"


def kernels_refusal(classifier: Classifier) -> str:
    """Why ``--count-kernels`` cannot run here, or "" when it can."""
    if classifier.device.type == "cuda":
        return ""
    return f"--count-kernels: {KERNELS_NEED_CUDA}; this bench runs on {classifier.device_name}"


def kernels_at_best(classifier: Classifier, paths: list[str], result: SweepResult) -> tuple[int, int]:
    """Profile one batch at the sweep's best size (or its largest measured): (batch size, kernels launched)."""
    measured = [point.batch_size for point in result.points if point.measured]
    size = result.best_batch_size or max(measured, default=1)
    return size, kernels_of_one_batch(classifier, paths, size)


def versus_report(classifier: Classifier, result: VersusResult) -> dict[str, object]:
    return {
        "model": classifier.model.name,
        "device": classifier.device_name,
        "precision": classifier.precision,
        "versus_one_by_one": result.report(),
    }
