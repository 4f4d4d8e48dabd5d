"""Start-up (issue 16): a whole ``classify`` process that decodes while torch and the model load, against the old order.

``import torch`` alone takes about 2.3 s on a 2-core CPU, a third of a
200-photo run. ``classify`` now lists its inputs and decodes the first of
them (``engine/decode_ahead.py``) before it imports torch; with
``BATCH_CLASSIFIER_DECODE_AHEAD=0`` it loads the model first and decodes
after, as before. Both run here as fresh processes timed from spawn to exit,
alternating round by round so drift in machine load hits both alike, on the
same corpus, with the same CSV (top-1 compared image by image). An untimed
first run fills the ONNX cache, so every timed run finds it warm.

    nice python3 benchmarks/start_up.py [--corpus DIR] [--count 200] [--rounds 3] [--preprocess exact]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from batch_classifier.engine.decode_ahead import DECODE_AHEAD_ENV
from batch_classifier.engine.fidelity import DEFAULT_PREPROCESS, PREPROCESS_CHOICES
from compare import SUMMARY_RATE, Run, cpu_model, csv_labels, timed
from make_corpus import make_corpus, parse_size, shared_corpus_dir

SIDES = {"decode ahead": "1", "model first": "0"}


def classify(corpus: Path, images: int, preprocess: str, switch: str) -> tuple[Run, dict[str, str]]:
    """One fresh ``classify`` process with decoding ahead on ("1") or off ("0"): its timing and each file's top-1."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.csv"
        command = [sys.executable, "-m", "batch_classifier", "classify", str(corpus), "--csv", str(out),
                   "--device", "cpu", "--preprocess", preprocess, "--quiet"]
        run, done = timed(command, images, env={**os.environ, DECODE_AHEAD_ENV: switch})
        labels = csv_labels(out)
    if len(labels) != images:
        raise SystemExit(f"classify wrote {len(labels)} rows for {images} images")
    rate = SUMMARY_RATE.search(done.stderr)
    run.run_img_per_s = float(rate.group(1).replace(",", "")) if rate else 0.0
    return run, labels


def import_torch_seconds() -> float:
    """``import torch`` alone in a fresh process, for the reader to set the gain against."""
    done = subprocess.run(
        [sys.executable, "-c", "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"],
        capture_output=True, text=True, check=True,
    )
    return float(done.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="JPEG folder (default: made, /tmp/bc_corpus_COUNT_WxH)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=parse_size, default=(1600, 1200))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preprocess", choices=PREPROCESS_CHOICES, default=DEFAULT_PREPROCESS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    corpus = args.corpus or shared_corpus_dir(args.count, args.size)
    if args.corpus is None:
        make_corpus(corpus, args.count, args.size, seed=0)
    images = len([path for path in corpus.iterdir() if path.suffix.lower() in (".jpg", ".jpeg")])
    load = os.getloadavg()[0]
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load average {load:.2f}; "
          f"import torch alone {import_torch_seconds():.2f} s", flush=True)
    classify(corpus, images, args.preprocess, "1")  # untimed: fills the ONNX cache if it is empty
    runs: dict[str, list[Run]] = {side: [] for side in SIDES}
    labels: dict[str, dict[str, str]] = {}
    for number in range(args.rounds):
        order = list(SIDES) if number % 2 == 0 else list(reversed(SIDES))
        for side in order:
            run, labels[side] = classify(corpus, images, args.preprocess, SIDES[side])
            runs[side].append(run)
            print(f"  round {number + 1} {side:<12} {run.seconds:6.2f} s whole process, cpu {run.cpu_s:5.2f} s, "
                  f"in-run {run.run_img_per_s:6.1f} img/s", flush=True)
    medians = {side: statistics.median(run.seconds for run in values) for side, values in runs.items()}
    same = sum(labels["decode ahead"][path] == label for path, label in labels["model first"].items())
    ratio = medians["model first"] / medians["decode ahead"]
    print(f"{images} JPEGs, --preprocess {args.preprocess}, medians of {args.rounds} rounds: "
          f"decode ahead {medians['decode ahead']:.2f} s, model first {medians['model first']:.2f} s: "
          f"{ratio:.2f}x faster whole process ({images / medians['decode ahead']:.1f} against "
          f"{images / medians['model first']:.1f} img/s); top-1 identical on {same}/{images}")
    print(f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after"
          + ("" if load <= 0.5 else ": other work shared the machine, only the ratio means much"))
    if args.json:
        report = {"images": images, "preprocess": args.preprocess, "load_before": load,
                  "seconds": {side: [run.seconds for run in values] for side, values in runs.items()},
                  "median_seconds": medians, "ratio": round(ratio, 3), "top1_identical": same}
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
