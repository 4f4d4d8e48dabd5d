"""Compare models under batching: the same sweep, images and device for each model in turn.

Batch size and hardware are two levers of batching; the model is the third.
A small network may gain little from batching on a CPU while a large one
gains a lot on a GPU, so each model gets the full sweep and its batching
gain (best img/s over batch-1 img/s) is reported beside its best speed.
Models are loaded one at a time and let go before the next, so a list of
large models needs the memory of one.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from .pipeline import START_ERRORS, Classifier, RunConfig
from .sweep import SweepBudget, SweepPoint, SweepResult, sweep_batch_sizes
from .weights_cache import ProgressCallback


@dataclass(frozen=True)
class ModelSweep:
    """One model's sweep, under the name it was asked for and the name it loaded as."""

    requested: str
    model: str
    result: SweepResult
    runtime: str = "torch"
    """What ran it (``runtimes/choice.py``): models in one comparison may differ, one exporting and one not."""

    @property
    def best_point(self) -> SweepPoint | None:
        return self.result.best_point

    @property
    def batching_gain(self) -> float:
        """Best img/s over batch-1 img/s: how much batching buys this model here (0 if unmeasured)."""
        best = self.best_point
        return self.result.speedup(best) if best is not None else 0.0


@dataclass(frozen=True)
class Comparison:
    device: str
    precision: str
    images: int
    sweeps: tuple[ModelSweep, ...]


class ModelFailed(Exception):
    """A model in the list could not be loaded or measured; the message names it."""


def compare_models(
    models: Sequence[str],
    base: RunConfig,
    paths: Sequence[str],
    sizes: Sequence[int],
    on_point: Callable[[str, SweepPoint], None] | None = None,
    on_model: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    budget: SweepBudget | None = None,
    on_download: ProgressCallback | None = None,
) -> Comparison:
    """Sweep ``sizes`` for each model (``base`` with its model replaced), in the order given.

    ``on_model`` hears each name before it loads and ``on_point`` each
    measured point with the name, so a front end can draw curves as they
    grow. A model that cannot load, or whose images cannot be decoded, stops
    the comparison with ``ModelFailed`` naming it.
    """
    sweeps: list[ModelSweep] = []
    device = precision = ""
    for name in models:
        if should_stop():
            break
        if on_model is not None:
            on_model(name)
        config = replace(base, model=name, arch=None, labels=None)
        try:
            sweep, device, precision = _sweep_one(name, config, paths, sizes, on_point, should_stop, budget, on_download)
        except START_ERRORS as error:
            raise ModelFailed(f"{name}: {error}") from None
        sweeps.append(sweep)
        # The model is gone with _sweep_one's frame; hand its memory back before the next loads.
        gc.collect()
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    return Comparison(device, precision, len(paths), tuple(sweeps))


def _sweep_one(
    name: str,
    config: RunConfig,
    paths: Sequence[str],
    sizes: Sequence[int],
    on_point: Callable[[str, SweepPoint], None] | None,
    should_stop: Callable[[], bool],
    budget: SweepBudget | None,
    on_download: ProgressCallback | None,
) -> tuple[ModelSweep, str, str]:
    classifier = Classifier(config, on_download=on_download)
    result = sweep_batch_sizes(
        classifier,
        paths,
        sizes,
        on_point=None if on_point is None else (lambda point: on_point(name, point)),
        should_stop=should_stop,
        budget=budget,
    )
    return ModelSweep(name, classifier.model.name, result, classifier.runner.runtime), classifier.device_name, classifier.precision
