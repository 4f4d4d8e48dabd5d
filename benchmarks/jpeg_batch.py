"""What batching the JPEG path saves: one call for a batch against one call per image.

The GPU path decodes a batch of JPEGs with nvjpeg in one call, then crops,
resizes and thumbnails photos of the same size as one stacked tensor. The
baseline is the same code given one image at a time, which is what a
per-image pipeline launches. Both run in this process, alternating, on the
same files. Two numbers come out:

- aten operations dispatched per image (every one a kernel launch on a GPU,
  a few microseconds of Python and driver each), counted exactly, so this
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
    """Counts every aten operation dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.operations = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.operations += 1
        return func(*args, **(kwargs or {}))


def batched(encoded: list[EncodedJpeg], spec: InputSpec, device: torch.device) -> None:
    decode_on_device(encoded, spec, device)


def one_by_one(encoded: list[EncodedJpeg], spec: InputSpec, device: torch.device) -> None:
    for jpeg in encoded:
        decode_on_device([jpeg], spec, device)


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
    counts = {step.__name__: operations(step, encoded, spec, device) / images for step in (one_by_one, batched)}
    times: dict[str, list[float]] = {"one_by_one": [], "batched": []}
    for _ in range(args.rounds):
        for step in (one_by_one, batched):
            times[step.__name__].append(seconds(step, encoded, spec, device) / images)
    per_image = {name: statistics.median(values) for name, values in times.items()}
    size = f"{encoded[0].width}x{encoded[0].height}"
    print(f"{images} JPEGs of {size} on {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'})")
    print(f"{'':<14}{'aten ops/img':>14}{'ms/img':>10}{'img/s':>10}")
    for name in ("one_by_one", "batched"):
        print(f"{name:<14}{counts[name]:>14.1f}{per_image[name] * 1000:>10.2f}{1 / per_image[name]:>10.1f}")
    print(f"ratio batched/one_by_one: ops {counts['batched'] / counts['one_by_one']:.3f}, "
          f"speed {per_image['one_by_one'] / per_image['batched']:.2f}x")


if __name__ == "__main__":
    main()
