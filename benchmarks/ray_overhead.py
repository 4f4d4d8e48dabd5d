"""What running on Ray costs on one machine, and how many rows a second the driver can absorb.

Part 1, the run: the same JPEG corpus through ``classify`` (the local
engine) and ``classify --ray`` (a local Ray instance started by the run),
alternating, each a whole process. It prints, per run, whole-process img/s
(images over wall time, interpreter start to exit) and in-run img/s (the
summary line's rate: classified images over the run, counted on Ray from
when the first actor began classifying, as a local run counts from when its
model has loaded), then the medians and the ratio ray/local. Target on 2
cores: in-run >= 0.6x, where Ray's own processes share the cores with the model.

Part 2, the driver's row path: a GPU cluster sends the driver thousands of
rows a second, and the driver must not be the bottleneck. Blocks of rows
exactly as the actors send them (``cluster.to_arrow``; a trivial model with
1,000 labels and top-5, photo-like paths) are put in Ray's object store
first, then timed: ``iter_batches`` -> ``cluster.from_arrow`` ->
``CsvResultWriter.write_columns`` into a real file. Target: >= 100,000
rows/s, so 30 GPUs at 3,000 img/s would not wait for it.

    python3 benchmarks/ray_overhead.py --corpus /tmp/corpus1000 --rounds 2
    python3 benchmarks/ray_overhead.py --rows-only --rows 200000
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_RATE = re.compile(r"classified at ([\d,.]+) img/s")


def run_once(corpus: Path, out: Path, on_ray: bool, extra: list[str]) -> tuple[float, float]:
    """One whole ``classify`` process: (whole-process img/s, in-run img/s from its summary line)."""
    command = [sys.executable, "-m", "batch_classifier", "classify", str(corpus), "--csv", str(out), "--overwrite",
               "--quiet", *extra, *(["--ray"] if on_ray else [])]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    match = _RATE.search(done.stderr)
    if match is None:
        raise SystemExit(f"no summary line in:\n{done.stderr[-2000:]}")
    images = sum(1 for _ in open(out, "rb")) - 1
    return images / wall, float(match.group(1).replace(",", ""))


def compare_runs(corpus: Path, rounds: int, extra: list[str]) -> None:
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(rounds):
            for on_ray in (False, True):
                whole, in_run = run_once(corpus, Path(folder) / "out.csv", on_ray, extra)
                results[on_ray].append((whole, in_run))
                name = "ray  " if on_ray else "local"
                print(f"round {round_number + 1} {name}: whole process {whole:7.1f} img/s, in-run {in_run:7.1f} img/s",
                      flush=True)
    medians = {side: [statistics.median(column) for column in zip(*runs)] for side, runs in results.items()}
    (local_whole, local_in), (ray_whole, ray_in) = medians[False], medians[True]
    print(f"median local: whole {local_whole:.1f} img/s, in-run {local_in:.1f} img/s")
    print(f"median ray:   whole {ray_whole:.1f} img/s, in-run {ray_in:.1f} img/s")
    print(f"ratio ray/local: whole process {ray_whole / local_whole:.2f}x, in-run {ray_in / local_in:.2f}x "
          "(target in-run >= 0.6x)")


def driver_rows(rows: int, block_rows: int, top_k: int) -> None:
    import ray

    from batch_classifier.engine import cluster
    from batch_classifier.engine.csv_output import CsvResultWriter
    from batch_classifier.engine.output_paths import OutputPlan
    from batch_classifier.engine.records import ImageResult, Prediction
    from batch_classifier.engine.result_columns import ResultColumns

    labels = [f"class {number}" for number in range(1000)]

    def block(start: int) -> object:
        results = [
            ImageResult(
                index, f"/mnt/photos/2024/{index // 1000:04d}/IMG_{index:08d}.jpg", "ok",
                tuple(Prediction(labels[(index * 7 + rank) % 1000], 0.5 / (rank + 1)) for rank in range(top_k)),
                model="trivial.pt (TorchScript)", device="cuda:0", batch_size=256, runtime="torch",
                preprocess="exact",
            )
            for index in range(start, min(start + block_rows, rows))
        ]
        marks = [b""] * len(results)
        return cluster.to_arrow(ResultColumns.from_results(results, top_k), marks)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        dataset = ray.data.from_arrow([block(start) for start in range(0, rows, block_rows)]).materialize()
        with tempfile.TemporaryDirectory() as folder:
            timings: dict[str, float] = {}
            cpu: dict[str, float] = {}
            for stage in ("iter_batches", "+ from_arrow", "+ write_columns"):
                out = Path(folder) / f"{len(timings)}.csv"
                writer = CsvResultWriter.open(OutputPlan(str(out), "new"), top_k)
                started, cpu_started = time.perf_counter(), time.process_time()
                count = 0
                for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1):
                    if stage == "iter_batches":
                        count += table.num_rows
                        continue
                    columns = cluster.from_arrow(table, top_k).columns
                    if stage == "+ write_columns":
                        writer.write_columns(columns)
                    count += len(columns)
                writer.finish()
                timings[stage] = time.perf_counter() - started
                cpu[stage] = time.process_time() - cpu_started
                assert count == rows
                print(f"driver row path, {stage:>16}: {rows / timings[stage]:10,.0f} rows/s wall, "
                      f"{rows / cpu[stage]:10,.0f} rows/s of driver CPU time", flush=True)
            size = os.path.getsize(Path(folder) / "2.csv")
        print(f"driver row path: {rows:,} rows of top-{top_k} in blocks of {block_rows:,} -> "
              f"{size / 2**20:.1f} MiB CSV at {rows / timings['+ write_columns']:,.0f} rows/s wall, "
              f"{rows / cpu['+ write_columns']:,.0f} rows/s of CPU time (target >= 100,000 rows/s; on a loaded "
              "machine the CPU-time figure is what one free core gives)")
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/corpus1000"),
                        help="folder of JPEGs (made with make_corpus.py 1,000 at 640x480 when missing)")
    parser.add_argument("--rounds", type=int, default=2, help="local/ray pairs, alternating")
    parser.add_argument("--rows", type=int, default=200_000, help="rows for the driver's row path")
    parser.add_argument("--block-rows", type=int, default=2048, help="rows per block (8 batches of 256 on a GPU)")
    parser.add_argument("--rows-only", action="store_true", help="only the driver's row path")
    parser.add_argument("classify_options", nargs="*", help="after --: options for both classify runs")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    if not args.rows_only:
        if not args.corpus.exists():
            subprocess.run([sys.executable, str(HERE / "make_corpus.py"), str(args.corpus), "--count", "1000",
                            "--size", "640x480"], check=True)
        compare_runs(args.corpus, args.rounds, args.classify_options)
    driver_rows(args.rows, args.block_rows, top_k=5)


if __name__ == "__main__":
    main()
