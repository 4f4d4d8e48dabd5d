"""Test helpers shared by several test modules: a tiny model and coloured images."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from batch_classifier.engine.csv_output import read_previous
from batch_classifier.engine.pipeline import Classifier, RunConfig
from batch_classifier.engine.resume import resolver

COLOUR_LABELS = ("red", "green", "blue", "dark")


@dataclass(frozen=True)
class TinyModel:
    """A TorchScript colour classifier: fast on any CPU, and its right answers are known."""

    path: Path
    labels: Path


def make_tiny_model(folder: Path) -> TinyModel:
    """Mean colour -> which channel dominates; 'dark' wins for black images."""
    head = torch.nn.Linear(3, len(COLOUR_LABELS))
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[4.0, -2, -2], [-2, 4, -2], [-2, -2, 4], [-1, -1, -1]]))
        head.bias.zero_()
    module = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), head).eval()
    path = folder / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still what users have
        torch.jit.script(module).save(str(path))
    labels = folder / "labels.txt"
    labels.write_text("\n".join(COLOUR_LABELS) + "\n", encoding="utf-8")
    return TinyModel(path, labels)


def write_colour_images(
    folder: Path, colours: list[str], size: tuple[int, int] = (40, 30), suffix: str = ".png"
) -> list[Path]:
    """One small image per colour name ('red', 'green', 'blue', 'dark'), named in order; PNG unless ``suffix`` says."""
    rgb = {"red": (230, 20, 20), "green": (20, 230, 20), "blue": (20, 20, 230), "dark": (0, 0, 0)}
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, colour in enumerate(colours):
        path = folder / f"{number:05d}-{colour}{suffix}"
        Image.new("RGB", size, rgb[colour]).save(path)
        paths.append(path)
    return paths


def tiny_classifier(tiny_model, **overrides) -> Classifier:
    config = RunConfig(model=str(tiny_model.path), labels=str(tiny_model.labels), device="cpu", **overrides)
    return Classifier(config)


class OutOfMemoryAbove:
    """Wraps a runner's forward (torch or ONNX Runtime) and fails like a full GPU whenever a batch exceeds ``limit`` images."""

    def __init__(self, inner, limit: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.memory_format = inner.memory_format
        self.limit = limit
        self.calls: list[int] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(batch))
        if len(batch) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return self.inner(batch)


class RunsCode:
    """Unpickling this runs a shell command that leaves a marker file: what a hostile checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch '{self.marker}'",))


def write_labels(path: Path, count: int) -> Path:
    """A labels file of ``count`` lines, "label 0" to "label N-1"."""
    path.write_text("".join(f"label {i}\n" for i in range(count)), encoding="utf-8")
    return path


def done_paths(csv_path: Path, top_k: int) -> set[str]:
    """The files a CSV of ours already has whole rows for, resolved as ``--resume`` skips them."""
    with open(csv_path, "rb") as handle:
        rows, _ = read_previous(handle, str(csv_path), top_k)
    resolve = resolver(os.getcwd())
    return {resolve(row.path) for row in rows}


class PretendCuda(Classifier):
    """A Classifier on the CPU that takes its device for CUDA: every decision made from the device's type
    (the default batch size, the read-ahead sized from it) is CUDA's, while the model still runs on the CPU."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.device = torch.device("cuda")


def record_read_ahead_queues(monkeypatch) -> list:
    """Every decode read-ahead queue the pipeline creates from now on, to look at its bound and fill."""
    from batch_classifier.engine import pipeline

    created: list = []

    class Recorded(pipeline.ReadAheadQueue):
        def __init__(self, maxsize: int) -> None:
            super().__init__(maxsize)
            created.append(self)

    monkeypatch.setattr(pipeline, "ReadAheadQueue", Recorded)
    return created


def wait_until(condition, timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` after ``timeout_s``."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
