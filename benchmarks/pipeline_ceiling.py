"""The engine's own ceiling: images per second when decoding and the model cost almost nothing.

On a GPU the model runs thousands of images a second, so whatever the engine
does per image in Python (queues, batching, rows, the CSV) sets a ceiling
that no decoder or GPU can lift. This measures it: every file "decodes" to
the same ready 224x224 image, the model is average pooling and one linear
layer, and `Classifier.classify_items` runs its real threads, batcher,
runner and a CSV writer (to memory) at the given batch size.

The baseline, in the same process and alternating, is the least a script
can do with the same images and model: stack a batch, copy it to the
device, normalise, forward, softmax and top-k back to the host, one CSV row
per image. The ratio ours/bare says how much of the ceiling the engine's
features cost.

    python3 benchmarks/pipeline_ceiling.py --device cpu --batch-size 256 --images 20000
    python3 benchmarks/pipeline_ceiling.py --device cuda --batch-size 256 --images 100000
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from batch_classifier.engine import feeder
from batch_classifier.engine.csv_output import CsvResultWriter
from batch_classifier.engine.pipeline import Classifier, RunConfig
from batch_classifier.engine.records import DecodedImage
from batch_classifier.engine.sources import SourceItem

CLASSES = 1000
SIZE = 224


def write_trivial_model(folder: Path) -> tuple[Path, Path]:
    """Pooling and one linear layer: next to nothing, but a real TorchScript model with 1,000 labels."""
    module = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, CLASSES))
    model, labels = folder / "trivial.pt", folder / "labels.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(module.eval()).save(str(model))
    labels.write_text("".join(f"class {number}\n" for number in range(CLASSES)), encoding="utf-8")
    return model, labels


def ours(classifier: Classifier, paths: list[str], batch_size: int) -> float:
    control = classifier.new_control()
    control.set_batch_size(batch_size)
    writer = CsvResultWriter.to_stream(io.StringIO(), classifier.runner.top_k)
    items = (SourceItem(index, path) for index, path in enumerate(paths))
    started = time.perf_counter()
    classifier.classify_items(items, control, lambda outcome: writer.write_batch(outcome.results))
    return len(paths) / (time.perf_counter() - started)


def bare(classifier: Classifier, paths: list[str], batch_size: int, pixels: torch.Tensor) -> float:
    module, device = classifier.runner.forward.module, classifier.device
    mean = torch.tensor(classifier.model.spec.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(classifier.model.spec.std, device=device).view(1, 3, 1, 1) * 255
    labels = classifier.model.labels
    rows = csv.writer(io.StringIO())
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            names = paths[start : start + batch_size]
            batch = torch.stack([pixels] * len(names)).to(device).permute(0, 3, 1, 2).float()
            top = module(batch.sub_(mean).div_(std)).softmax(dim=1).topk(5, dim=1)
            for name, confidences, indices in zip(names, top.values.cpu().tolist(), top.indices.cpu().tolist()):
                rows.writerow([name, labels[indices[0]], f"{confidences[0]:.6f}"])
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    pixels = torch.full((SIZE, SIZE, 3), 128, dtype=torch.uint8)
    feeder.decode_file = lambda index, path, spec, thumbnail=True: DecodedImage(index, path, pixels=pixels)
    with tempfile.TemporaryDirectory() as folder:
        model, labels = write_trivial_model(Path(folder))
        config = RunConfig(model=str(model), labels=str(labels), device=args.device, runtime="torch", thumbnails=False)
        classifier = Classifier(config)
    paths = [f"/photos/2026/holiday/IMG_{number:06d}.jpg" for number in range(args.images)]
    ours(classifier, paths[: args.batch_size * 4], args.batch_size)  # warm-up: threads, allocator, kernels
    rates: dict[str, list[float]] = {"bare loop": [], "engine": []}
    for _ in range(args.rounds):
        rates["bare loop"].append(bare(classifier, paths, args.batch_size, pixels))
        rates["engine"].append(ours(classifier, paths, args.batch_size))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{args.images:,} images, batch {args.batch_size}, {classifier.device_name}, {args.rounds} rounds (median)")
    for name, rate in medians.items():
        print(f"  {name:<10} {rate:>10,.0f} img/s   ({', '.join(f'{value:,.0f}' for value in rates[name])})")
    print(f"ratio engine/bare loop: {medians['engine'] / medians['bare loop']:.2f}")


if __name__ == "__main__":
    main()
