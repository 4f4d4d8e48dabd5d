"""Peak resident memory of ``batch-classifier classify`` over a large corpus, against a budget.

Why: the pipeline promises bounded queues, so memory must stay flat however
many files are dropped. This makes a corpus (5000 images by default), runs the
classifier in a subprocess, samples the RSS of its whole process tree from
``/proc`` while it runs, and takes the kernel's exact peak (``wait4``
``ru_maxrss``) when it exits. The larger of the two is compared with the budget.

The default image size is 640x480, not 1600x1200: 5000 large files take
minutes to generate and ~2.3 GB of disk, and the decoded images the app keeps
are at model input size either way. Pass ``--size 1600x1200`` for the full test.

    python3 benchmarks/rss.py --count 5000 --size 640x480
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from make_corpus import make_corpus, parse_size, shared_corpus_dir

BUDGET_MB = 2048


def rss_kb(pid: int) -> int:
    """VmRSS of one process in KiB, 0 if it has gone (or is a zombie with no memory)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` from every thread's ``children`` file, in case the app forks workers."""
    children: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                children.extend(int(text) for text in handle.read().split())
        except (OSError, ValueError):
            continue
    return children


def tree_rss_kb(pid: int) -> int:
    """Summed RSS of ``pid`` and all its descendants."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss_kb(current)
        stack.extend(child_pids(current))
    return total


def run_sampled(cmd: list[str], interval: float) -> tuple[int, int, int, float]:
    """Run ``cmd``, sampling tree RSS until it exits; return (exit code, sampled peak KiB, kernel peak KiB, seconds).

    ``os.wait4`` reaps this one child and gives its own ``ru_maxrss``, which
    unlike ``RUSAGE_CHILDREN`` is not mixed with other children of this process.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    sampled_peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        sampled_peak = max(sampled_peak, tree_rss_kb(proc.pid))
        time.sleep(interval)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, sampled_peak, usage.ru_maxrss, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="images in the corpus (default 5000)")
    parser.add_argument("--size", type=parse_size, default=(640, 480), help="WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, help="corpus folder (default /tmp/bc_corpus_COUNT_WxH)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--budget-mb", type=float, default=BUDGET_MB, help=f"pass/fail limit (default {BUDGET_MB})")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between RSS samples")
    args = parser.parse_args(argv)

    width, height = args.size
    corpus = args.corpus or shared_corpus_dir(args.count, args.size)
    print(f"corpus {corpus} ({args.count} x {width}x{height} JPEG) ...", flush=True)
    make_corpus(corpus, args.count, args.size, args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "batch_classifier", "classify", str(corpus),
               "--csv", str(Path(tmp) / "out.csv"), "--device", args.device]
        code, sampled_kb, kernel_kb, seconds = run_sampled(cmd, args.interval)
    if code != 0:
        print(f"batch-classifier exited with code {code}")
        return 2

    peak_mb = max(sampled_kb, kernel_kb) / 1024
    verdict = "PASS" if peak_mb <= args.budget_mb else "FAIL"
    print(f"{args.count} images in {seconds:.1f} s ({args.count / seconds:.1f} img/s)")
    print(f"peak RSS {peak_mb:.0f} MB (sampled tree {sampled_kb / 1024:.0f} MB, kernel ru_maxrss "
          f"{kernel_kb / 1024:.0f} MB); budget {args.budget_mb:.0f} MB: {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
