"""Does the engine add overhead to the model's own forward pass? Ratio against the bare model.

The engine's runner takes uint8 pixels on the host, copies them (pinned,
non-blocking on CUDA), normalises on the device, runs the model channels_last
under inference_mode and autocast, and takes softmax + top-k back to the host.
The baseline is the same model, same batch size and precision, fed an
already-normalised float batch already on the device, output left there: the
least any pipeline can do. Both are timed in this process, alternating, with
the device synchronised. The target on a GPU is a ratio of at least 0.9.

    python3 benchmarks/forward_overhead.py --model resnet18 --device cuda --batch-size 256 --precision bf16
    python3 benchmarks/forward_overhead.py --device cpu --batch-size 4
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from batch_classifier.engine.devices import precision_name, resolve_device, resolve_precision, synchronize
from batch_classifier.engine.models import load_model
from batch_classifier.engine.runner import Runner
from batch_classifier.engine.runtimes.torch_forward import TorchForward


def median_seconds(step: Callable[[], object], device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    device = resolve_device(args.device)
    autocast = resolve_precision(args.precision, device)
    loaded = load_model(args.model, pretrained=args.model == "efficientnet_lite0")
    runner = Runner(loaded, device, TorchForward(loaded.module, device, autocast), top_k=5)
    size = loaded.spec.crop_size
    pixels = torch.randint(0, 256, (args.batch_size, size, size, 3), dtype=torch.uint8)
    ready = runner._to_device(pixels)

    def bare() -> object:
        with torch.inference_mode(), torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            return runner.forward.module(ready)

    def engine() -> object:
        return runner.run(pixels)

    for step in (bare, engine):  # warm-up: kernels chosen, memory pooled
        median_seconds(step, device, 3)
    bare_times, engine_times = [], []
    for _ in range(args.rounds):
        bare_times.append(median_seconds(bare, device, args.repeats))
        engine_times.append(median_seconds(engine, device, args.repeats))
    bare_rate = args.batch_size / statistics.median(bare_times)
    engine_rate = args.batch_size / statistics.median(engine_times)
    print(f"{loaded.name} on {device}, {precision_name(autocast)}, batch {args.batch_size}")
    print(f"bare model forward:   {bare_rate:10.1f} img/s")
    print(f"engine (runner.run):  {engine_rate:10.1f} img/s")
    print(f"ratio engine/bare:    {engine_rate / bare_rate:10.2f}")


if __name__ == "__main__":
    main()
