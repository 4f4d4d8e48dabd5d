"""Compare whole-process throughput: the usual DataLoader script against ``batch-classifier classify``.

Why whole processes: a user waits from pressing Enter to getting results, so
start-up, imports and model loading count for both sides. Each run is a fresh
subprocess timed by wall clock from spawn to exit. The baseline runs at its
best setting (found by a quick grid unless given), and the two sides alternate
round by round so drift in machine load hits both alike.

Ours runs once per preprocessing mode each round, so the speed ratio is
reported at equal fidelity (``exact``, the same model input as the
baseline's transform) beside the default and ``fast``, each with its top-1
agreement with the baseline's own predictions: overall and where the
baseline is at least 50% sure.

    python3 benchmarks/compare.py --count 200 --size 1600x1200 --device cpu --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from batch_classifier.engine.decode_ahead import DECODE_AHEAD_ENV
from batch_classifier.engine.fidelity import DEFAULT_PREPROCESS, PREPROCESS_CHOICES
from batch_classifier.engine.models import imagenet_labels
from make_corpus import make_corpus, parse_size, shared_corpus_dir

HERE = Path(__file__).resolve().parent
BASELINE_SCRIPT = HERE / "dataloader_baseline.py"
CPU_GRID = ((0, 1, 2), (8, 32, 64))
CUDA_GRID = ((8, 16), (64, 128, 256))
SUMMARY_RATE = re.compile(r"classified at ([\d,.]+) img/s")
SURE = 0.5


@dataclass
class Run:
    """One timed process: wall time, the throughput that implies, CPU time used, and its own in-run rate.

    CPU seconds (user + system of the process and its workers) are kept because
    on a shared machine they swing less than wall time, which helps tell a real
    difference from noise. The in-run rate is what the process itself reports
    for its images once start-up and model loading are done (the baseline's
    loop, our run summary): on a GPU, where a few seconds of start-up dwarf
    the classifying of a small corpus, it is the rate that says how fast the
    pipeline is.
    """

    seconds: float
    img_per_s: float
    cpu_s: float
    run_img_per_s: float = 0.0


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    cmd: list[str], images: int, env: dict[str, str] | None = None
) -> tuple[Run, subprocess.CompletedProcess[str]]:
    """Run ``cmd`` to completion and time it from spawn to exit; fail loudly so no bad number is reported."""
    cpu_before = children_cpu_seconds()
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    cpu_s = children_cpu_seconds() - cpu_before
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"command failed with exit code {done.returncode}: {' '.join(cmd)}")
    return Run(round(seconds, 3), round(images / seconds, 2), round(cpu_s, 2)), done


def baseline_cmd(corpus: Path, workers: int, batch_size: int, device: str) -> list[str]:
    return [sys.executable, str(BASELINE_SCRIPT), str(corpus), "--workers", str(workers),
            "--batch-size", str(batch_size), "--device", device]


def ours_cmd(corpus: Path, csv_path: Path, device: str, preprocess: str) -> list[str]:
    return [sys.executable, "-m", "batch_classifier", "classify", str(corpus), "--csv", str(csv_path),
            "--device", device, "--preprocess", preprocess]


def csv_labels(path: Path) -> dict[str, str]:
    """Each row's top-1 label by resolved path, to check every image was classified and compare predictions."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {os.path.realpath(row["path"]): row["label"] for row in csv.DictReader(handle)}


def run_ours(corpus: Path, device: str, images: int, preprocess: str) -> tuple[Run, dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "out.csv"
        run, done = timed(ours_cmd(corpus, csv_path, device, preprocess), images)
        labels = csv_labels(csv_path)
    if len(labels) != images:
        raise SystemExit(f"batch-classifier wrote {len(labels)} rows for {images} images")
    summary = SUMMARY_RATE.search(done.stderr)
    if summary is None:
        raise SystemExit(f"no run summary in batch-classifier's output:\n{done.stderr}")
    return replace(run, run_img_per_s=float(summary.group(1).replace(",", ""))), labels


def run_baseline(
    corpus: Path, workers: int, batch_size: int, device: str, images: int
) -> tuple[Run, dict[str, tuple[str, float]]]:
    """The timed run, and its predictions: each resolved path's top-1 label and probability."""
    with tempfile.TemporaryDirectory() as tmp:
        predictions_path = Path(tmp) / "predictions.json"
        run, done = timed(baseline_cmd(corpus, workers, batch_size, device)
                          + ["--predictions", str(predictions_path)], images)
        predictions = json.loads(predictions_path.read_text(encoding="utf-8"))
    loop = json.loads(done.stdout.strip().splitlines()[-1])
    names = imagenet_labels()
    top1 = {os.path.realpath(path): (names[index], p) for path, (index, p) in predictions.items()}
    return replace(run, run_img_per_s=loop["img_per_s"]), top1


def agreement(ours: dict[str, str], baseline: dict[str, tuple[str, float]]) -> dict:
    """Top-1 agreement with the baseline in percent, overall and where the baseline is >= 50% sure."""
    same = [ours.get(path) == label for path, (label, _) in baseline.items()]
    sure = [ours.get(path) == label for path, (label, p) in baseline.items() if p >= SURE]
    return {"top1_agreement_percent": round(100 * sum(same) / max(1, len(same)), 2),
            "sure_images": len(sure), "sure_agreement_percent": round(100 * sum(sure) / max(1, len(sure)), 2)}


def run_grid(corpus: Path, device: str, images: int) -> list[dict]:
    """One run per (workers, batch size); the script's own loop rate is kept beside the process rate."""
    worker_options, batch_options = CUDA_GRID if device == "cuda" else CPU_GRID
    results = []
    for workers in worker_options:
        for batch_size in batch_options:
            run, _ = run_baseline(corpus, workers, batch_size, device, images)
            results.append({"workers": workers, "batch_size": batch_size, **asdict(run)})
            print(f"  grid workers={workers:<2} batch={batch_size:<3} process {run.img_per_s:7.2f} img/s "
                  f"({run.seconds:6.1f} s, cpu {run.cpu_s:6.1f} s)  loop {run.run_img_per_s:7.2f} img/s", flush=True)
    return results


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: str) -> dict:
    """What a reader needs to judge the numbers, including load from other processes at the start."""
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "load_avg_1min": round(os.getloadavg()[0], 2)}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def mode_name(mode: str) -> str:
    return f"{mode} (default)" if mode == DEFAULT_PREPROCESS else mode


def print_report(info: dict, corpus: str, best: dict, rounds: list[dict], summary: dict) -> None:
    print()
    print("machine: " + ", ".join(f"{key} {value}" for key, value in info.items()))
    print(f"corpus:  {corpus}")
    print(f"baseline: dataloader_baseline.py --workers {best['workers']} --batch-size {best['batch_size']}")
    print("ours:     batch-classifier classify (defaults) --preprocess MODE")
    print()
    sides = ["baseline", *PREPROCESS_CHOICES]
    print(f"{'round':<8}" + "".join(f"{side + ' img/s':>16}{'s':>8}{'cpu s':>8}{'in-run':>9}" for side in sides))
    for number, row in enumerate(rounds, 1):
        print(f"{number:<8}" + "".join(f"{row[side]['img_per_s']:>16.2f}{row[side]['seconds']:>8.2f}"
                                       f"{row[side]['cpu_s']:>8.2f}{row[side]['run_img_per_s']:>9.2f}"
                                       for side in sides))
    print()
    print(f"{'':<16}{'median img/s':>14}{'ratio':>8}{'in-run img/s':>14}{'in-run ratio':>14}"
          f"{'top-1 agreement':>17}{'where sure':>12}")
    print(f"{'baseline':<16}{summary['baseline_median_img_per_s']:>14.2f}{'':>8}"
          f"{summary['baseline_median_run_img_per_s']:>14.2f}")
    for mode in PREPROCESS_CHOICES:
        ours = summary["modes"][mode]
        print(f"{mode_name(mode):<16}{ours['median_img_per_s']:>14.2f}{ours['ratio']:>7.2f}x"
              f"{ours['median_run_img_per_s']:>14.2f}{ours['run_ratio']:>13.2f}x"
              f"{ours['top1_agreement_percent']:>16.1f}%{ours['sure_agreement_percent']:>11.1f}%")
    default = summary["modes"][DEFAULT_PREPROCESS]
    print(f"ratio ours/baseline: {default['ratio']:.2f}x whole process (the target), "
          f"{default['run_ratio']:.2f}x in-run (after start-up and model loading), default mode; "
          f"agreement where the baseline is >= {SURE:.0%} sure counts {default['sure_images']} images")
    if os.environ.get(DECODE_AHEAD_ENV) != "0":
        print("note: ours decodes its first images while torch and the model load, so its in-run rate counts them "
              f"as free; {DECODE_AHEAD_ENV}=0 measures the pipeline alone")
    if info["load_avg_1min"] > 0.5:
        print("warning: the machine was busy before the runs began (load average above 0.5); rerun when idle")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="images in the corpus (default 200)")
    parser.add_argument("--size", type=parse_size, default=(1600, 1200), help="WIDTHxHEIGHT (default 1600x1200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, help="corpus folder (default /tmp/bc_corpus_COUNT_WxH)")
    parser.add_argument("--baseline-workers", type=int, help="skip the grid: baseline DataLoader workers")
    parser.add_argument("--baseline-batch-size", type=int, help="skip the grid: baseline batch size")
    parser.add_argument("--json", type=Path, help="also save all results here")
    args = parser.parse_args(argv)
    if (args.baseline_workers is None) != (args.baseline_batch_size is None):
        parser.error("give both --baseline-workers and --baseline-batch-size, or neither")

    info = machine_info(args.device)  # before making the corpus, so its load is not counted
    width, height = args.size
    corpus = make_corpus(args.corpus or shared_corpus_dir(args.count, args.size), args.count, args.size, args.seed)
    corpus_text = f"{corpus} ({args.count} x {width}x{height} JPEG)"
    print(f"corpus {corpus_text}; load average {info['load_avg_1min']}", flush=True)

    grid: list[dict] = []
    if args.baseline_workers is None:
        grid = run_grid(corpus, args.device, args.count)
        best = max(grid, key=lambda row: row["img_per_s"])
    else:
        best = {"workers": args.baseline_workers, "batch_size": args.baseline_batch_size}

    # Untimed: on the CPU the first run of the model exports it for ONNX Runtime (once per model and
    # version, into the user's cache); every timed run then finds it there, as a user's second run does.
    run_ours(corpus, args.device, args.count, DEFAULT_PREPROCESS)
    rounds = []
    agreements: dict[str, dict] = {}
    for number in range(1, args.rounds + 1):
        base, predictions = run_baseline(corpus, best["workers"], best["batch_size"], args.device, args.count)
        row = {"baseline": asdict(base)}
        for mode in PREPROCESS_CHOICES:
            ours, labels = run_ours(corpus, args.device, args.count, mode)
            row[mode] = asdict(ours)
            agreements[mode] = agreement(labels, predictions)
        rounds.append(row)
        print(f"  round {number}: baseline {base.img_per_s:.2f} img/s (cpu {base.cpu_s:.1f} s), "
              + ", ".join(f"{mode} {row[mode]['img_per_s']:.2f} img/s (cpu {row[mode]['cpu_s']:.1f} s)"
                          for mode in PREPROCESS_CHOICES), flush=True)

    def median(side: str, key: str) -> float:
        return statistics.median(row[side][key] for row in rounds)

    base_median, base_run_median = median("baseline", "img_per_s"), median("baseline", "run_img_per_s")
    modes = {mode: {"median_img_per_s": median(mode, "img_per_s"),
                    "ratio": round(median(mode, "img_per_s") / base_median, 3),
                    "median_run_img_per_s": median(mode, "run_img_per_s"),
                    "run_ratio": round(median(mode, "run_img_per_s") / base_run_median, 3),
                    **agreements[mode]}
             for mode in PREPROCESS_CHOICES}
    default = modes[DEFAULT_PREPROCESS]
    summary = {"baseline_median_img_per_s": base_median, "baseline_median_run_img_per_s": base_run_median,
               "default_preprocess": DEFAULT_PREPROCESS, "ratio": default["ratio"],
               "run_ratio": default["run_ratio"], "modes": modes}
    print_report(info, corpus_text, best, rounds, summary)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "corpus": corpus_text, "device": args.device,
                                         "grid": grid, "baseline_setting": best, "rounds": rounds,
                                         **summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
