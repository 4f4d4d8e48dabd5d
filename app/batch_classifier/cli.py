"""The command line: ``classify``, ``bench``, ``models`` and ``sort`` over the engine.

Never imports Qt, so it runs on a headless GPU server. Exit codes: 0 when a
run completes (error rows included), 1 with a one-line message when a run
cannot start, 2 for bad arguments, 130 after Ctrl-C (rows so far are kept).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from . import __version__
from .engine.control import RunControl
from .engine.csv_output import CsvMismatchError, CsvResultWriter, done_paths
from .engine.devices import DEVICE_CHOICES, PRECISION_CHOICES
from .engine.fidelity import DEFAULT_PREPROCESS, PREPROCESS_CHOICES, PREPROCESS_HELP
from .engine.models import DEFAULT_MODEL, list_models
from .engine.pipeline import DECODE_CHOICES, DEFAULT_MAX_WAIT_MS, START_ERRORS, Classifier, RunConfig
from .engine.records import BatchOutcome
from .engine.resources import sample_images
from .engine.sources import count_sources, no_images_message
from .engine.sweep import SweepResult, default_sweep_sizes, sweep_batch_sizes
from .engine.sweep_chart import save_sweep_chart
from .engine.timm_models import hf_cache_dir
from .progress import ProgressLine
from .sort_cli import add_sort_parser, run_sort
from .truth_cli import AssessmentRefused, Assessor, add_assessment_options, check_assessment_options

EXIT_OK, EXIT_CANNOT_START, EXIT_BAD_ARGUMENTS, EXIT_INTERRUPTED = 0, 1, 2, 130


class CannotStart(Exception):
    """A run that cannot begin; main prints the message alone, without a traceback."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _size_list(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("batch sizes must be integers of at least 1")
    return sorted(set(sizes))


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"registry name or model file (default {DEFAULT_MODEL})")
    parser.add_argument("--arch", help="architecture of a state_dict model file: a torchvision name or timm/NAME")
    parser.add_argument("--labels", help="labels text file, one per line, for a model file")
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICE_CHOICES)} or e.g. cuda:1")
    parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES)
    parser.add_argument(
        "--random-weights", action="store_true", help="random weights: measure speed without downloading"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch-classifier", description="Classify many images with a PyTorch model, batched."
    )
    parser.add_argument("--version", action="version", version=f"batch-classifier {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    classify = commands.add_parser("classify", help="classify images and write a CSV")
    classify.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders")
    classify.add_argument("--csv", metavar="OUT", help="CSV to write (default: standard output)")
    _add_model_options(classify)
    classify.add_argument("--batch-size", type=_positive_int, help="max images per batch (default: per device)")
    classify.add_argument(
        "--max-wait-ms",
        type=float,
        default=DEFAULT_MAX_WAIT_MS,
        help=f"how long a batch waits for stragglers after its first image (default {DEFAULT_MAX_WAIT_MS:g})",
    )
    classify.add_argument("--top-k", type=_positive_int, default=5)
    classify.add_argument("--decode", default="auto", choices=DECODE_CHOICES)
    classify.add_argument(
        "--preprocess",
        default=DEFAULT_PREPROCESS,
        choices=PREPROCESS_CHOICES,
        help="; ".join(f"{mode}: {text}" for mode, text in PREPROCESS_HELP.items()) + f" (default {DEFAULT_PREPROCESS})",
    )
    classify.add_argument("--decode-workers", type=_positive_int, help="decode threads (default: per device)")
    classify.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                          help="walk sub-folders (default: yes)")
    classify.add_argument("--resume", action="store_true", help="skip paths already in the --csv file")
    classify.add_argument("--quiet", action="store_true", help="no progress line")
    add_assessment_options(classify)

    bench = commands.add_parser("bench", help="measure throughput and memory per batch size")
    bench.add_argument("paths", nargs="*", metavar="PATH", help="images (default: the bundled samples)")
    _add_model_options(bench)
    bench.add_argument("--batch-sizes", type=_size_list, help="e.g. 1,2,4,8 (default: per device)")
    bench.add_argument("--json", metavar="OUT", help="write the results as JSON")
    bench.add_argument("--plot", metavar="FILE.png", help="draw throughput and memory against batch size")

    commands.add_parser("models", help="list the models and whether each works offline now")
    add_sort_parser(commands)
    return parser


def _config(args: argparse.Namespace, **overrides: object) -> RunConfig:
    return RunConfig(
        model=args.model,
        arch=args.arch,
        labels=args.labels,
        device=args.device,
        precision=args.precision,
        pretrained=not args.random_weights,
        **overrides,  # type: ignore[arg-type]
    )


def _load(config: RunConfig) -> Classifier:
    try:
        return Classifier(config, on_download=_print_download)
    except START_ERRORS as error:
        raise CannotStart(str(error)) from None


def _print_download(done: int, total: int | None) -> None:
    shown = f"{done / 2**20:.1f}/{total / 2**20:.1f} MB" if total else f"{done / 2**20:.1f} MB"
    sys.stderr.write(f"\rdownloading weights: {shown}")
    if total and done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


@contextmanager
def _cancel_on_interrupt(control: RunControl) -> Iterator[None]:
    """First Ctrl-C finishes the batch in flight and stops; a second one stops at once."""

    def interrupt(signum: int, frame: object) -> None:
        if control.cancelled:
            raise KeyboardInterrupt
        sys.stderr.write("\ninterrupted: finishing the current batch (Ctrl-C again to stop now)\n")
        control.cancel()

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_classify(args: argparse.Namespace) -> int:
    if args.resume and not args.csv:
        raise CannotStart("--resume needs --csv naming the file to continue")
    try:
        assessor = Assessor(args)
    except AssessmentRefused as error:
        raise CannotStart(str(error)) from None
    classifier = _load(
        _config(
            args,
            batch_size=args.batch_size,
            max_wait_ms=args.max_wait_ms,
            top_k=args.top_k,
            decode=args.decode,
            preprocess=args.preprocess,
            recursive=args.recursive,
            decode_workers=args.decode_workers,
            thumbnails=False,
        )
    )
    assessor.start(classifier.model.labels, classifier.runner.top_k)
    skip = done_paths(args.csv) if args.resume else frozenset()
    total = count_sources(args.paths, args.recursive, skip)
    if total == 0 and skip:
        sys.stderr.write(f"nothing to do: every image found is already in {args.csv}\n")
        return EXIT_OK
    if total == 0:
        raise CannotStart(no_images_message(args.paths, args.recursive))
    if args.csv:
        try:
            writer = CsvResultWriter(args.csv, classifier.runner.top_k, append=args.resume)
        except OSError as error:
            raise CannotStart(f"cannot write {args.csv}: {error.strerror or error}") from None
        except CsvMismatchError as error:
            raise CannotStart(str(error)) from None
    else:
        writer = CsvResultWriter.to_stream(sys.stdout, classifier.runner.top_k)
    sys.stderr.write(
        f"{classifier.model.name} on {classifier.device_name}, {classifier.precision}, "
        f"batch size {classifier.default_batch_size}: {total} images"
        + (f" ({len(skip)} already in {args.csv})" if skip else "")
        + "\n"
    )
    progress = None if args.quiet else ProgressLine(total)
    done = errors = 0

    def write_batch(outcome: BatchOutcome) -> None:
        nonlocal done, errors
        writer.write_batch(assessor.annotate(outcome.results))
        done += len(outcome.results)
        errors += outcome.stats.errors
        if progress is not None:
            progress.update(done, errors)

    control = classifier.new_control()
    try:
        with _cancel_on_interrupt(control):
            summary = classifier.classify(args.paths, control, write_batch, skip=skip)
    except KeyboardInterrupt:
        sys.stderr.write(f"\nstopped: {done} rows written -> {args.csv or 'stdout'}\n")
        return EXIT_INTERRUPTED
    finally:
        if progress is not None:
            progress.finish()
        writer.close()
    state = "interrupted" if summary.cancelled else "done"
    sys.stderr.write(f"{state}: {summary.describe()} -> {args.csv or 'stdout'}\n")
    try:
        assessor.finish(f"{classifier.model.name}: {', '.join(map(str, args.paths))}")
    except AssessmentRefused as error:
        raise CannotStart(str(error)) from None
    return EXIT_INTERRUPTED if summary.cancelled else EXIT_OK


def _bench_table(result: SweepResult) -> str:
    rows = [f"{'batch':>6} {'img/s':>10} {'speed-up':>9} {'p50 ms':>9} {'p95 ms':>9} {'alloc MB':>10} {'reserved MB':>12}"]
    for point in result.points:
        if point.out_of_memory:
            rows.append(f"{point.batch_size:>6} {'out of memory: stopped here':>40}")
            continue
        speedup = point.images_per_s / result.sequential_images_per_s if result.sequential_images_per_s else 0
        best = "  <- best" if point.batch_size == result.best_batch_size else ""
        rows.append(
            f"{point.batch_size:>6} {point.images_per_s:>10.1f} {speedup:>8.2f}x {point.latency_p50_ms:>9.1f} "
            f"{point.latency_p95_ms:>9.1f} {point.peak_allocated_mb:>10.0f} {point.peak_reserved_mb:>12.0f}{best}"
        )
    return "\n".join(rows)


def run_bench(args: argparse.Namespace) -> int:
    classifier = _load(_config(args))
    paths = [str(path) for path in (args.paths or sample_images())]
    sizes = args.batch_sizes or default_sweep_sizes(classifier.device)
    memory_note = "peak CUDA memory" if classifier.device.type == "cuda" else "process RSS (no CUDA)"
    sys.stderr.write(
        f"{classifier.model.name} on {classifier.device_name}, {classifier.precision}; "
        f"{len(paths)} images, batch sizes {','.join(map(str, sizes))}; memory: {memory_note}\n"
    )
    try:
        result = sweep_batch_sizes(
            classifier, paths, sizes, on_point=lambda point: sys.stderr.write(f"  batch {point.batch_size} done\n")
        )
    except ValueError as error:
        raise CannotStart(str(error)) from None
    print(_bench_table(result))
    print(f"best batch size: {result.best_batch_size}")
    if args.json:
        report = {
            "model": classifier.model.name,
            "device": classifier.device_name,
            "precision": classifier.precision,
            "images": len(paths),
            "sequential_images_per_s": result.sequential_images_per_s,
            "best_batch_size": result.best_batch_size,
            "points": [asdict(point) for point in result.points],
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.plot:
        title = f"{classifier.model.name} on {classifier.device_name} ({classifier.precision})"
        save_sweep_chart(result.points, result.best_batch_size, title, args.plot)
    return EXIT_OK


def run_models() -> int:
    entries = list_models()
    width = max(len(entry.name) for entry in entries)
    print(f"{'model':<{width}}  {'source':<11}  {'offline':<7}  description")
    for entry in entries:
        offline = "yes" if entry.offline_ready else "no"
        print(f"{entry.name:<{width}}  {entry.source:<11}  {offline:<7}  {entry.description}")
    print("\nModels marked 'no' download their weights on first use into torch's cache:")
    print(f"  {Path(entries[-1].detail).parent}")
    if any(entry.source == "timm" for entry in entries):
        print(f"timm models (any timm name works: --model timm/NAME) use the Hugging Face cache:\n  {hf_cache_dir()}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_assessment_options(parser, args)
    try:
        if args.command == "classify":
            return run_classify(args)
        if args.command == "bench":
            return run_bench(args)
        if args.command == "sort":
            return run_sort(args)
        return run_models()
    except CannotStart as error:
        sys.stderr.write(f"batch-classifier: error: {error}\n")
        return EXIT_CANNOT_START
