"""torch against ONNX Runtime on the CPU: the forward pass, whole runs, and the split of cores.

Three measurements, each comparing the runtimes in one command, alternating
them so drift in machine load hits both alike:

1. **forward**: the engine's runner (normalise, forward, softmax, top-k) on
   the same decoded photos at each batch size, torch then ONNX Runtime, as
   ``batch-classifier bench`` times it; with the largest absolute logit
   difference between the two on that batch.
2. **end to end**: ``batch-classifier classify CORPUS`` as fresh processes,
   ``--runtime torch`` against ``--runtime auto``, for each preprocessing
   mode, reporting the run's own in-run rate (after start-up and model
   loading), and whether auto's top-1 equals torch's on every image. Targets
   (issue 16): auto >= 1.4x torch in ``exact``, >= 1.6x in ``fast``. These
   runs decode nothing ahead (``BATCH_CLASSIFIER_DECODE_AHEAD=0``): images
   decoded while the model loads would count as free in the in-run rate,
   more for the runtime that loads longer (``start_up.py`` measures that).
3. **threads** (``--threads``): whole runs in this process with each
   candidate split of the cores between decode threads and the runtime's
   intra-op threads, against the split ``engine/threads.py`` picks.

    nice python3 benchmarks/cpu_runtimes.py [--corpus DIR] [--count 200] [--rounds 2] [--threads] [--json OUT]

The first ``auto`` run of a model exports it once into the cache folder; an
untimed run does that first, so every timed run finds the cache warm.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from batch_classifier.engine import pipeline
from batch_classifier.engine.decode_ahead import DECODE_AHEAD_ENV
from batch_classifier.engine.devices import cpu_name
from batch_classifier.engine.fidelity import PREPROCESS_CHOICES
from batch_classifier.engine.pipeline import Classifier, RunConfig
from batch_classifier.engine.sweep import SweepBudget, decode_for_sweep, measure_batch_size
from batch_classifier.engine.threads import ThreadSplit, thread_split
from make_corpus import make_corpus, parse_size, shared_corpus_dir

RUN_RATE = re.compile(r"classified at ([\d,.]+) img/s")
TARGETS = {"exact": 1.4, "fast": 1.6}
FORWARD_BUDGET = SweepBudget(warmup=2, min_repeats=5, max_repeats=40, min_seconds=2.0)


def forward(corpus: Path, sizes: list[int]) -> list[dict]:
    """img/s per batch size for both runtimes on the same pixels, and the logit difference between them."""
    classifiers = {runtime: Classifier(RunConfig(device="cpu", runtime=runtime)) for runtime in ("torch", "onnxruntime")}
    if classifiers["onnxruntime"].runner.runtime != "onnxruntime":
        raise SystemExit(f"ONNX Runtime is not available: {classifiers['onnxruntime'].runtime_note}")
    photos = sorted(str(path) for path in corpus.glob("*.jpg"))[: max(sizes)]
    pixels = decode_for_sweep(classifiers["torch"], photos)
    rows = []
    for size in sizes:
        row: dict = {"batch_size": size}
        for runtime, classifier in classifiers.items():
            point = measure_batch_size(classifier, pixels, size, FORWARD_BUDGET)
            row[runtime] = round(point.images_per_s, 1)
        batch = torch.stack([pixels[i % len(pixels)] for i in range(size)])
        logits = {}
        for runtime, classifier in classifiers.items():
            runner = classifier.runner
            with torch.inference_mode():
                logits[runtime] = runner.forward(runner._to_device(batch)).float()
        row["max_abs_logit_difference"] = float((logits["torch"] - logits["onnxruntime"]).abs().max())
        row["ratio"] = round(row["onnxruntime"] / row["torch"], 2)
        rows.append(row)
        print(f"  batch {size:>3}: torch {row['torch']:7.1f} img/s, onnxruntime {row['onnxruntime']:7.1f} img/s "
              f"({row['ratio']:.2f}x), max |logit diff| {row['max_abs_logit_difference']:.1e}", flush=True)
    return rows


def classify(corpus: Path, runtime: str, preprocess: str) -> tuple[float, dict[str, str], str]:
    """One fresh process: its in-run img/s, each file's top-1, and its header line (model, device, runtime)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.csv"
        done = subprocess.run(
            [sys.executable, "-m", "batch_classifier", "classify", str(corpus), "--csv", str(out), "--device", "cpu",
             "--runtime", runtime, "--preprocess", preprocess, "--quiet"],
            capture_output=True, text=True, env={**os.environ, DECODE_AHEAD_ENV: "0"},
        )
        if done.returncode != 0:
            raise SystemExit(f"classify --runtime {runtime} failed ({done.returncode}):\n{done.stderr}")
        with open(out, newline="", encoding="utf-8") as handle:
            labels = {row["path"]: row["label"] for row in csv.DictReader(handle)}
    rate = RUN_RATE.search(done.stderr)
    if rate is None:
        raise SystemExit(f"no run summary in:\n{done.stderr}")
    header = next((line for line in done.stderr.splitlines() if " on CPU" in line), "")
    return float(rate.group(1).replace(",", "")), labels, header


def end_to_end(corpus: Path, rounds: int) -> dict:
    classify(corpus, "auto", "exact")  # untimed: the export, if the cache does not have it yet
    results: dict = {}
    for mode in PREPROCESS_CHOICES:
        rates: dict[str, list[float]] = {"torch": [], "auto": []}
        labels: dict[str, dict[str, str]] = {}
        for number in range(rounds):
            order = ("torch", "auto") if number % 2 == 0 else ("auto", "torch")
            for runtime in order:
                rate, labels[runtime], header = classify(corpus, runtime, mode)
                rates[runtime].append(rate)
                print(f"  {mode:<5} round {number + 1} {runtime:<5} {rate:7.2f} img/s   [{header.split(': ')[0]}]", flush=True)
        same = sum(labels["auto"][path] == label for path, label in labels["torch"].items())
        medians = {runtime: statistics.median(values) for runtime, values in rates.items()}
        results[mode] = {"rates": rates, "median": medians, "ratio": round(medians["auto"] / medians["torch"], 2),
                         "top1_identical": same, "images": len(labels["torch"])}
    return results


def _candidates(cores: int) -> list[ThreadSplit]:
    decode = sorted({1, max(1, cores // 4), max(1, cores // 2), cores})
    splits = {ThreadSplit(d, m) for d in decode for m in {max(1, cores - d), cores}}
    return sorted(splits, key=lambda split: (split.decode_workers, split.model_threads))


def _in_process_rate(corpus: Path, runtime: str, split: ThreadSplit) -> float:
    original = pipeline.thread_split
    pipeline.thread_split = lambda cores, device_type, runtime_name: split  # what-if: this split for this run
    try:
        classifier = Classifier(RunConfig(device="cpu", runtime=runtime, thumbnails=False))
        summary = classifier.classify([str(corpus)])
    finally:
        pipeline.thread_split = original
        torch.set_num_threads(os.cpu_count() or 1)
    del classifier
    gc.collect()
    return summary.images_per_s


def threads(corpus: Path, rounds: int) -> dict:
    cores = os.cpu_count() or 1
    results: dict = {}
    for runtime in ("torch", "onnxruntime"):
        chosen = thread_split(cores, "cpu", runtime)
        rates: dict[ThreadSplit, list[float]] = {split: [] for split in _candidates(cores)}
        for _ in range(rounds):
            for split in rates:
                rates[split].append(_in_process_rate(corpus, runtime, split))
        rows = []
        for split, values in rates.items():
            marker = "  <- engine/threads.py" if split == chosen else ""
            median = statistics.median(values)
            rows.append({"decode_workers": split.decode_workers, "model_threads": split.model_threads, "img_per_s": median})
            print(f"  {runtime:<11} decode {split.decode_workers:>2}  model {split.model_threads:>2}: "
                  f"{median:7.2f} img/s{marker}", flush=True)
        results[runtime] = {"chosen": {"decode_workers": chosen.decode_workers, "model_threads": chosen.model_threads},
                            "splits": rows}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="JPEG folder (default: made, /tmp/bc_corpus_COUNT_WxH)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=parse_size, default=(1600, 1200))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="1,2,4,8,16", help="forward batch sizes (default 1,2,4,8,16)")
    parser.add_argument("--skip-forward", action="store_true")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--threads", action="store_true", help="also measure each split of the cores")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    corpus = args.corpus or make_corpus(shared_corpus_dir(args.count, args.size), args.count, args.size)
    import onnxruntime

    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
               "onnxruntime": onnxruntime.__version__, "load_avg_1min": round(os.getloadavg()[0], 2)}
    print("machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()), flush=True)
    report: dict = {"machine": machine, "corpus": str(corpus)}
    if not args.skip_forward:
        print("forward (engine runner, same decoded photos):")
        report["forward"] = forward(corpus, [int(size) for size in args.sizes.split(",")])
    if not args.skip_end_to_end:
        print(f"end to end: classify {corpus} --device cpu, in-run img/s, {args.rounds} rounds alternating")
        report["end_to_end"] = end_to_end(corpus, args.rounds)
        for mode, result in report["end_to_end"].items():
            verdict = "PASS" if result["ratio"] >= TARGETS[mode] else "MISS"
            print(f"{mode}: auto {result['median']['auto']:.2f} img/s, torch {result['median']['torch']:.2f} img/s: "
                  f"{result['ratio']:.2f}x (target {TARGETS[mode]}x: {verdict}); top-1 identical on "
                  f"{result['top1_identical']}/{result['images']}")
    if args.threads:
        print(f"threads: whole runs in this process on {os.cpu_count()} cores, exact preprocessing, in-run img/s")
        report["threads"] = threads(corpus, args.rounds)
    report["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    if machine["load_avg_1min"] > 0.5:
        print(f"warning: load average {machine['load_avg_1min']} before the runs: other work shared the machine")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
