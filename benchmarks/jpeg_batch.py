"""What batching the JPEG path saves: one call for a batch against one call per image.

The GPU path decodes a batch of JPEGs with nvjpeg in one call, then crops,
resizes and thumbnails photos of the same size as one stacked tensor. The
baseline is the same code given one image at a time, which is what a
per-image pipeline launches. Both run in this process, alternating, on the
same files. Two numbers come out:

- aten operations dispatched per image that compute rather than make a
  view (on a GPU each is at least one kernel launch, a few microseconds of
  Python and driver time whatever the image size), counted exactly, so this
  ratio means the same on a 2-core laptop as on an H100;
- wall time per image on the chosen device, which on a GPU is the decode
  ceiling of the whole pipeline.

    python3 benchmarks/jpeg_batch.py --corpus /tmp/corpus200 --device cpu --count 64
    python3 benchmarks/jpeg_batch.py --corpus /tmp/corpus200 --device cuda --count 256
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from batch_classifier.engine.decode import InputSpec
from batch_classifier.engine.devices import synchronize
from batch_classifier.engine.gpu_decode import decode_on_device, read_jpeg
from batch_classifier.engine.records import EncodedJpeg


class OpCounter(TorchDispatchMode):
    """Counts the aten operations dispatched while active, except views (which launch nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.operations = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.operations += not func.is_view
        return func(*args, **(kwargs or {}))


def one_by_one(encoded: list[EncodedJpeg], spec: InputSpec, device: torch.device) -> None:
    for jpeg in encoded:
        decode_on_device([jpeg], spec, device)


def batched(encoded: list[EncodedJpeg], spec: InputSpec, device: torch.device) -> None:
    decode_on_device(encoded, spec, device)


def batched_no_thumbnails(encoded: list[EncodedJpeg], spec: InputSpec, device: torch.device) -> None:
    """What ``batch-classifier classify`` asks for: the command line shows no thumbnails."""
    decode_on_device(encoded, spec, device, thumbnails=False)


STEPS = (one_by_one, batched, batched_no_thumbnails)


def operations(step: Callable[..., None], encoded: list[EncodedJpeg], spec: InputSpec, device: torch.device) -> int:
    with OpCounter() as counter:
        step(encoded, spec, device)
    return counter.operations


def seconds(step: Callable[..., None], encoded: list[EncodedJpeg], spec: InputSpec, device: torch.device) -> float:
    synchronize(device)
    started = time.perf_counter()
    step(encoded, spec, device)
    synchronize(device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a folder of JPEGs (benchmarks/make_corpus.py)")
    parser.add_argument("--count", type=int, default=64, help="images per batch (default 64)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    spec = InputSpec()
    paths = sorted(args.corpus.glob("*.jpg"))[: args.count]
    encoded = [jpeg for jpeg in map(read_jpeg, map(str, paths)) if jpeg is not None]
    if not encoded:
        raise SystemExit(f"no JPEGs in {args.corpus}")
    images = len(encoded)
    batched(encoded, spec, device)  # warm-up: nvjpeg handles, kernels, allocator
    counts = {step.__name__: operations(step, encoded, spec, device) / images for step in STEPS}
    times: dict[str, list[float]] = {step.__name__: [] for step in STEPS}
    for _ in range(args.rounds):
        for step in STEPS:
            times[step.__name__].append(seconds(step, encoded, spec, device) / images)
    per_image = {name: statistics.median(values) for name, values in times.items()}
    size = f"{encoded[0].width}x{encoded[0].height}"
    print(f"{images} JPEGs of {size} on {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'})")
    print(f"{'':<24}{'compute ops/img':>17}{'ms/img':>10}{'img/s':>10}{'ops ratio':>11}{'speed ratio':>13}")
    for name in per_image:
        print(f"{name:<24}{counts[name]:>17.1f}{per_image[name] * 1000:>10.2f}{1 / per_image[name]:>10.1f}"
              f"{counts[name] / counts['one_by_one']:>11.3f}{per_image['one_by_one'] / per_image[name]:>12.2f}x")


if __name__ == "__main__":
    main()
