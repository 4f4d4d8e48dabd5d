"""The command line: ``classify``, ``bench``, ``models`` and ``sort`` over the engine.

Never imports Qt, so it runs on a headless GPU server. Exit codes (the
contract in ``shared/design.md``): 0 when a run completes (error rows
included); 1 with one line when a run cannot start or its output cannot be
written; 2 for bad arguments; 130, 143, 129 after SIGINT, SIGTERM, SIGHUP
(the batch in flight finishes and rows so far are kept); 141, quietly, when
standard output is closed.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeGuard

from PIL import Image

from . import __version__
from .engine.choices import DECODE_CHOICES, DEFAULT_MAX_WAIT_MS, DEVICE_CHOICES, PRECISION_CHOICES
from .engine.control import MAX_BATCH_SIZE
from .engine.csv_output import CsvMismatchError, CsvResultWriter
from .engine.decode_ahead import DecodeAhead, start_decode_ahead
from .engine.fidelity import DEFAULT_PREPROCESS, PREPROCESS_CHOICES, PREPROCESS_HELP
from .engine.fixed_cost import fixed_cost_line
from .engine.interrupts import Interrupted, StopSignals
from .engine.model_specs import DEFAULT_MODEL
from .engine.output_paths import STDOUT, OutputPlan, OutputRefused, check_output, describe_error, replacing, write_replacing
from .engine.records import BatchOutcome
from .engine.resources import sample_images
from .engine.runtimes import RUNTIME_CHOICES, RUNTIME_HELP
from .engine.sources import BackgroundCount, SourceWalk, UnreadableFolder, display_path, no_images_message
from .sort_cli import add_sort_parser, run_sort
from .terminal_progress import ImageProgress, download_progress
from .truth_cli import AssessmentRefused, Assessor, add_assessment_options, check_assessment_options

if TYPE_CHECKING:
    from .engine.cluster import ClusterBatch, ClusterClassifier
    from .engine.pipeline import Classifier, RunConfig
    from .engine.resume import ResumePlan
    from .engine.run_identity import RecordedRun, RunIdentity
    from .engine.sweep import SweepResult

# Nothing imported above loads torch: a run lists its inputs and starts decoding
# (decode_ahead.py) before the modules that need torch are imported, in the
# functions that use them, and usage errors and --help need no torch at all.

EXIT_OK, EXIT_CANNOT_START, EXIT_BAD_ARGUMENTS, EXIT_CLOSED_STDOUT = 0, 1, 2, 141
MAX_WAIT_MS = 60_000.0
MAX_DECODE_WORKERS = 256
DEFAULT_TOP_K = 5


class CannotStart(Exception):
    """A run that cannot begin; main prints the message alone, without a traceback."""


def _whole_number(low: int, high: int | None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], with one line for any other spelling (0x10, 1e3, inf)."""
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number {span}, not {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be a whole number {span}, not {text!r}")
        return value

    return parse


def _wait_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 <= value <= MAX_WAIT_MS):  # also false for nan
        raise argparse.ArgumentTypeError(f"must be a number of milliseconds from 0 to {MAX_WAIT_MS:g}, not {text!r}")
    return value + 0.0  # -0 becomes 0


def _size_list(text: str) -> list[int]:
    parse = _whole_number(1, MAX_BATCH_SIZE)
    try:
        sizes = [parse(part) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of batch sizes from 1 to {MAX_BATCH_SIZE}: {text!r}"
        ) from None
    if not sizes:
        raise argparse.ArgumentTypeError("no batch sizes given")
    return sorted(set(sizes))


def model_list(text: str) -> list[str]:
    """``--models``: comma-separated names or files, at least two, each once."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if len(names) < 2:
        raise argparse.ArgumentTypeError("name at least two models to compare, e.g. resnet18,mobilenet_v3_large")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a model is named twice: {text!r}")
    return names


def _add_model_options(parser: argparse.ArgumentParser, model_group: argparse._ActionsContainer | None = None) -> None:
    (model_group or parser).add_argument(
        "--model", default=DEFAULT_MODEL, help=f"registry name or model file (default {DEFAULT_MODEL})"
    )
    parser.add_argument("--arch", help="architecture of a state_dict model file: a torchvision name or timm/NAME")
    parser.add_argument("--labels", help="labels text file, one per line, for a model file")
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICE_CHOICES)} or e.g. cuda:1")
    parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES)
    parser.add_argument("--runtime", default="auto", choices=RUNTIME_CHOICES, help=RUNTIME_HELP + " (default auto)")
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
    classify.add_argument(
        "--batch-size", type=_whole_number(1, MAX_BATCH_SIZE),
        help=f"max images per batch, 1 to {MAX_BATCH_SIZE} (default: per device)",
    )
    classify.add_argument(
        "--max-wait-ms",
        type=_wait_ms,
        default=DEFAULT_MAX_WAIT_MS,
        help=f"how long a batch waits for stragglers after its first image, 0 to {MAX_WAIT_MS:g} "
        f"(default {DEFAULT_MAX_WAIT_MS:g})",
    )
    classify.add_argument(
        "--top-k", type=_whole_number(1, None),
        help=f"guesses per image (default {DEFAULT_TOP_K}; at most the model's number of classes)",
    )
    classify.add_argument("--decode", default="auto", choices=DECODE_CHOICES)
    classify.add_argument(
        "--preprocess",
        default=DEFAULT_PREPROCESS,
        choices=PREPROCESS_CHOICES,
        help="; ".join(f"{mode}: {text}" for mode, text in PREPROCESS_HELP.items()).replace("%", "%%")
        + f" (default {DEFAULT_PREPROCESS})",
    )
    classify.add_argument(
        "--decode-workers", type=_whole_number(1, MAX_DECODE_WORKERS),
        help=f"decode threads, 1 to {MAX_DECODE_WORKERS} (default: per device)",
    )
    classify.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                          help="walk sub-folders (default: yes)")
    existing = classify.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite", action="store_true",
        help="replace an existing --csv file; the old file stays as it was until the run completes",
    )
    existing.add_argument(
        "--resume", action="store_true",
        help="continue the --csv file: skip images it has, try its error rows again",
    )
    classify.add_argument(
        "--no-retry-errors", dest="retry_errors", action="store_false",
        help="with --resume, keep the error rows as they are instead of trying those images again",
    )
    classify.add_argument("--quiet", action="store_true", help="no progress line")
    classify.add_argument(
        "--ray", action="store_true",
        help="run on a Ray cluster (Ray Data): --ray-address, else RAY_ADDRESS, else a local Ray instance",
    )
    classify.add_argument(
        "--ray-address", metavar="ADDRESS",
        help="with --ray: the cluster to attach to (auto, HOST:PORT or ray://HOST:PORT)",
    )
    add_assessment_options(classify)

    bench = commands.add_parser("bench", help="measure throughput and memory per batch size")
    bench.add_argument("paths", nargs="*", metavar="PATH", help="images (default: the bundled samples)")
    which = bench.add_mutually_exclusive_group()
    _add_model_options(bench, which)
    which.add_argument(
        "--models", type=model_list, metavar="A,B,...", help="compare several models on the same images and sizes"
    )
    bench.add_argument("--batch-sizes", type=_size_list, help="e.g. 1,2,4,8 (default: per device)")
    bench.add_argument("--json", metavar="OUT", help="write the results as JSON")
    bench.add_argument("--plot", metavar="FILE.png", help="draw throughput and memory against batch size")
    bench.add_argument("--overwrite", action="store_true", help="replace existing --json/--plot files")
    bench.add_argument(
        "--versus-one-by-one", type=_whole_number(1, MAX_BATCH_SIZE), metavar="N",
        help="instead of the sweep: N images one at a time, then as batches of N, both times and why they differ",
    )
    bench.add_argument(
        "--count-kernels", action="store_true",
        help="also profile one batch at the best size and count the CUDA kernels it launches (CUDA only)",
    )

    commands.add_parser("models", help="list the models and whether each works offline now")
    add_sort_parser(commands)
    return parser


def _config(args: argparse.Namespace, **overrides: object) -> RunConfig:
    from .engine.pipeline import RunConfig

    return RunConfig(
        model=args.model,
        arch=args.arch,
        labels=args.labels,
        device=args.device,
        precision=args.precision,
        runtime=args.runtime,
        pretrained=not args.random_weights,
        **overrides,  # type: ignore[arg-type]
    )


def _load(config: RunConfig) -> Classifier | ClusterClassifier:
    from .engine.cluster import OPEN_ERRORS, open_classifier

    download = download_progress()
    try:
        classifier = open_classifier(config, on_download=download, on_stage=_print_stage)
    except OPEN_ERRORS as error:
        raise CannotStart(str(error)) from None
    finally:
        download.close()
    if classifier.precision_note:
        _warn(classifier.precision_note)
    if classifier.runtime_note:
        _warn(classifier.runtime_note)
    return classifier


def _on_cluster(classifier: Classifier | ClusterClassifier) -> TypeGuard[ClusterClassifier]:
    from .engine.cluster import ClusterClassifier

    return isinstance(classifier, ClusterClassifier)


def _print_stage(stage: str) -> None:
    """A slow step of loading (the one-time export for ONNX Runtime), told to a person at a terminal.

    Like the progress line, it is left out when standard error is not a
    terminal, so a script reading it still gets one line per refusal.
    """
    if sys.stderr.isatty():
        sys.stderr.write(f"batch-classifier: {stage}\n")


def _warn(message: str) -> None:
    sys.stderr.write(f"batch-classifier: warning: {message}\n")


class _WriteFailed(Exception):
    """Writing the CSV failed mid-run (a full disk, a share gone); carries the ``OSError``."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _csv_plan(args: argparse.Namespace) -> OutputPlan:
    try:
        return check_output(
            args.csv or STDOUT, args.paths, recursive=args.recursive, overwrite=args.overwrite, resume=args.resume
        )
    except OutputRefused as error:
        raise CannotStart(str(error)) from None


def _open_csv(plan: OutputPlan, top_k: int) -> CsvResultWriter:
    if plan.kind == "stdout":
        return CsvResultWriter.to_stream(sys.stdout, top_k)
    try:
        return CsvResultWriter.open(plan, top_k)
    except (OutputRefused, CsvMismatchError) as error:
        raise CannotStart(str(error)) from None


def _write_sidecar(csv_path: Path, identity: RunIdentity) -> None:
    from .engine.run_identity import write_sidecar

    try:
        write_sidecar(csv_path, identity)
    except (OSError, OutputRefused) as error:
        reason = describe_error(error) if isinstance(error, OSError) else str(error)
        raise CannotStart(f"cannot write the run record beside {display_path(str(csv_path))}: {reason}") from None


def _shown(writer: CsvResultWriter) -> str:
    return display_path(str(writer.writing_path)) if writer.writing_path is not None else "stdout"


def run_classify(args: argparse.Namespace, stops: StopSignals) -> int:
    plan = _csv_plan(args)
    try:
        assessor = Assessor(args)
    except AssessmentRefused as error:
        raise CannotStart(str(error)) from None
    walk, ahead = _walk_before_loading(args, plan)
    try:
        classifier = _load(
            _config(
                args,
                batch_size=args.batch_size,
                max_wait_ms=args.max_wait_ms,
                top_k=args.top_k or DEFAULT_TOP_K,
                decode=args.decode,
                preprocess=args.preprocess,
                recursive=args.recursive,
                decode_workers=args.decode_workers,
                thumbnails=False,
                cluster=(args.ray_address or "") if args.ray else None,
            )
        )
        try:
            return _classify_with(args, stops, plan, assessor, classifier, walk, ahead)
        finally:
            if _on_cluster(classifier):
                classifier.close()
    finally:
        if ahead is not None:
            ahead.close()


def _walk_before_loading(args: argparse.Namespace, plan: OutputPlan) -> tuple[SourceWalk | None, DecodeAhead | None]:
    """The inputs, looked into (none is refused at once) and their decoding begun, before torch and the model load.

    (None, None) for a resume, whose skip list needs the model's identity
    first; no decoding ahead for a cluster, whose actors decode.
    """
    if plan.kind == "append":
        return None, None
    walk = SourceWalk(args.paths, args.recursive)
    if not walk.has_items():
        raise CannotStart(no_images_message(args.paths, args.recursive, walk.unreadable))
    ahead = None if args.ray else start_decode_ahead(walk, args.model, args.preprocess, args.decode)
    return walk, ahead


def _classify_with(
    args: argparse.Namespace,
    stops: StopSignals,
    plan: OutputPlan,
    assessor: Assessor,
    classifier: Classifier | ClusterClassifier,
    walk: SourceWalk | None,
    ahead: DecodeAhead | None,
) -> int:
    from .engine.resume import absolute_inputs, plan_resume, resolver
    from .engine.run_identity import identity_of

    top_k = classifier.runner.top_k
    assessor.start(classifier.model.labels, top_k)
    if args.top_k is not None and top_k < args.top_k:
        sys.stderr.write(f"note: --top-k {args.top_k} lowered to {top_k}, the number of classes of {classifier.model.name}\n")
    identity = None
    if plan.kind in ("new", "replace", "append"):
        model = classifier.model
        identity = identity_of(model.name, model.module, model.labels, classifier.config.preprocess, top_k)
    if plan.kind == "append" and identity is not None:
        _recorded_run(plan, identity, has_rows=False)  # another model is said as such, before its columns differ
    writer = _open_csv(plan, top_k) if plan.kind == "append" else None
    try:
        paths, resumed, resolve = list(args.paths), None, None
        if writer is not None and identity is not None:
            recorded = _recorded_run(plan, identity, has_rows=bool(writer.previous))
            if not writer.previous:
                _write_sidecar(Path(plan.path), identity)
            resolve = resolver(recorded.cwd)
            resumed = plan_resume(writer.previous, resolve, args.retry_errors)
            paths = absolute_inputs(args.paths, recorded.cwd)
        if walk is None:
            walk = SourceWalk(paths, args.recursive, resumed.skip if resumed is not None else frozenset())
        if not walk.has_items() and resumed is not None:
            for folder in walk.unreadable:
                _warn(folder.describe())
            sys.stderr.write(f"nothing to do: every image found is already in {display_path(plan.path)}\n")
            writer.close()
            return _compact(plan, top_k, resolve) if resumed.duplicates else EXIT_OK
        if not walk.has_items():
            raise CannotStart(no_images_message(args.paths, args.recursive, walk.unreadable))
        if writer is None:
            writer = _open_csv(plan, top_k)
            if identity is not None and writer.writing_path is not None:
                _write_sidecar(writer.writing_path, identity)
        where = f" at {classifier.address}" if _on_cluster(classifier) else ""
        sys.stderr.write(
            f"{classifier.model.name} on {classifier.device_name}{where}, {classifier.precision}, "
            f"{classifier.runner.runtime}, batch size {classifier.default_batch_size}"
            + (_resume_note(resumed, plan.path) if resumed is not None else "")
            + "\n"
        )
        status = _run(args, classifier, assessor, writer, walk, ahead, stops, plan)
        if status == EXIT_OK and resumed is not None and (resumed.duplicates or resumed.retrying):
            status = _compact(plan, top_k, resolve)
        if status == EXIT_OK and stops.exit_status is not None:
            return _stopped_after_the_run(stops.exit_status, writer, plan)
        return status
    finally:
        if writer is not None:
            writer.close()


def _recorded_run(plan: OutputPlan, identity: RunIdentity, has_rows: bool) -> RecordedRun:
    from .engine.run_identity import ResumeRefused, check_resume

    try:
        return check_resume(plan.path, identity, has_rows=has_rows)
    except ResumeRefused as error:
        raise CannotStart(str(error)) from None


def _resume_note(resumed: ResumePlan, path: str) -> str:
    retrying = f", {resumed.retrying} error rows tried again" if resumed.retrying else ""
    return f" ({resumed.done} already in {display_path(path)}{retrying})"


def _run(
    args: argparse.Namespace,
    classifier: Classifier | ClusterClassifier,
    assessor: Assessor,
    writer: CsvResultWriter,
    walk: SourceWalk,
    ahead: DecodeAhead | None,
    stops: StopSignals,
    plan: OutputPlan,
) -> int:
    if args.quiet:
        return _classify(args, classifier, assessor, writer, walk, ahead, stops, plan, None)
    progress = ImageProgress()
    # The total comes from a count alongside the run, never from a walk before it.
    with BackgroundCount(walk.paths, walk.recursive, progress.set_total, walk.skip):
        return _classify(args, classifier, assessor, writer, walk, ahead, stops, plan, progress)


def _classify(
    args: argparse.Namespace,
    classifier: Classifier,
    assessor: Assessor,
    writer: CsvResultWriter,
    walk: SourceWalk,
    ahead: DecodeAhead | None,
    stops: StopSignals,
    plan: OutputPlan,
    progress: ImageProgress | None,
) -> int:
    from .engine.run_identity import move_sidecar

    errors = 0

    def written(write: Callable[[], None], batch_errors: int) -> None:
        nonlocal errors
        try:
            write()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise _WriteFailed(error) from None
        errors += batch_errors
        if progress is not None:
            progress.update(writer.rows_written, errors)

    def write_batch(outcome: BatchOutcome) -> None:
        written(lambda: writer.write_batch(assessor.annotate(outcome.results)), outcome.stats.errors)

    def write_block(block: ClusterBatch) -> None:
        written(lambda: writer.write_columns(assessor.annotate_columns(block.columns)), block.columns.errors)

    control = classifier.new_control()
    stops.attach(control)
    try:
        if _on_cluster(classifier):
            summary = classifier.classify(walk.paths, control, write_block, skip=walk.skip)
        else:
            summary = classifier.classify_walk(walk, control, write_batch, ahead)
        stops.hold()
    except Interrupted as stop:
        return _stopped(stop.exit_status, writer, plan)
    except _WriteFailed as failure:
        return _write_failed(failure.error, writer, plan)
    finally:
        stops.attach(None)
        if progress is not None:
            progress.close()
    for folder in summary.unreadable_folders:
        _warn(folder.describe())
    if summary.cancelled:
        sys.stderr.write(f"interrupted: {summary.describe()}\n")
        _assess(assessor, classifier, args)
        return _stopped(stops.exit_status or 128 + signal.SIGINT, writer, plan)
    try:
        writer.finish()
        if plan.kind == "replace" and writer.writing_path is not None:
            move_sidecar(writer.writing_path, plan.path)
    except OSError as error:
        return _write_failed(error, writer, plan)
    sys.stderr.write(f"done: {summary.describe()} -> {'stdout' if plan.kind == 'stdout' else display_path(plan.path)}\n")
    _assess(assessor, classifier, args)
    return EXIT_OK


def _assess(assessor: Assessor, classifier: Classifier | ClusterClassifier, args: argparse.Namespace) -> None:
    try:
        assessor.finish(f"{classifier.model.name}: {', '.join(map(str, args.paths))}")
    except AssessmentRefused as error:
        raise CannotStart(str(error)) from None


def _stopped(status: int, writer: CsvResultWriter, plan: OutputPlan) -> int:
    """The last line after a stop signal: where the rows are, and how to continue."""
    writer.close()
    name = signal.Signals(status - 128).name
    if plan.kind == "replace":
        partial = _shown(writer)
        sys.stderr.write(
            f"stopped by {name}: {display_path(plan.path)} is unchanged; {writer.rows_written} rows kept in {partial}; "
            f"continue with --resume --csv {partial}\n"
        )
    elif writer.writing_path is not None:
        sys.stderr.write(f"stopped by {name}: {writer.rows_written} rows written to {_shown(writer)}; "
                         "continue with --resume\n")
    else:
        sys.stderr.write(f"stopped by {name}: {writer.rows_written} rows written to stdout\n")
    return status


def _stopped_after_the_run(status: int, writer: CsvResultWriter, plan: OutputPlan) -> int:
    """The last line after a signal that came once the last batch was done: the file was finished all the same."""
    name = signal.Signals(status - 128).name
    where = {"stdout": "stdout", "devnull": plan.path}.get(plan.kind, f"{display_path(plan.path)}, which is complete")
    sys.stderr.write(f"stopped by {name} after the last batch: {writer.rows_written} rows written to {where}\n")
    return status


def _write_failed(error: OSError, writer: CsvResultWriter, plan: OutputPlan) -> int:
    writer.close()
    kept = len(writer.previous) + writer.rows_written
    where = _shown(writer)
    if error.errno == errno.ENOSPC:
        line = f"disk full: {kept} rows kept in {where}"
    else:
        line = f"cannot write {where}: {describe_error(error)}; {kept} rows kept in it"
    if plan.kind == "replace":
        line += f" ({display_path(plan.path)} is unchanged; continue with --resume --csv {where})"
    raise CannotStart(line)


def _compact(plan: OutputPlan, top_k: int, resolve: Callable[[str], str]) -> int:
    """End a resumed run that retried rows: one row per path, the newest, rewritten atomically."""
    from .engine.resume import compact_csv

    try:
        compact_csv(plan.path, top_k, resolve)
    except (OSError, OutputRefused) as error:
        reason = describe_error(error) if isinstance(error, OSError) else str(error)
        raise CannotStart(
            f"could not rewrite {display_path(plan.path)} with one row per image ({reason}); "
            "it is valid as it is: the newest row of an image counts"
        ) from None
    return EXIT_OK


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the exit's flush of what is left cannot fail again (Python's SIGPIPE recipe)."""
    _to_devnull(sys.stdout)


def _to_devnull(stream: object) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # type: ignore[attr-defined]
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no real stream (None, or a test's capture)
        pass


def _bench_table(result: SweepResult) -> str:
    from .engine.stage_times import stage_times_of_sweep
    from .why_cli import STAGE_HEADER, stage_columns

    stages = {entry.batch_size: entry for entry in stage_times_of_sweep(result.points)}
    rows = [
        f"{'batch':>6} {'img/s':>10} {'speed-up':>9} {'p50 ms':>9} {'p95 ms':>9} {'alloc MB':>10} {'reserved MB':>12} "
        f"{STAGE_HEADER}"
    ]
    for point in result.points:
        if not point.measured:
            rows.append(f"{point.batch_size:>6} {point.describe()}: stopped here")
            continue
        speedup = result.speedup(point)
        best = "  <- best" if point.batch_size == result.best_batch_size else ""
        rows.append(
            f"{point.batch_size:>6} {point.images_per_s:>10.1f} {speedup:>8.2f}x {point.latency_p50_ms:>9.1f} "
            f"{point.latency_p95_ms:>9.1f} {point.memory.allocated_mb:>10.0f} {point.memory.reserved_mb:>12.0f} "
            f"{stage_columns(stages.get(point.batch_size))}{best}"
        )
    return "\n".join(rows)


def _bench_outputs(args: argparse.Namespace) -> None:
    """Check --json and --plot before measuring, so a sweep is never lost to a path that cannot be written."""
    for path in (args.json, args.plot):
        if path:
            try:
                check_output(path, args.paths, overwrite=args.overwrite, exists_hint="add --overwrite to replace it")
            except OutputRefused as error:
                raise CannotStart(str(error)) from None


def _write_bench_outputs(
    args: argparse.Namespace, report: dict[str, object], draw: Callable[[str], None] | None = None
) -> None:
    """Write --json (the report) and --plot (``draw`` into the file), each replacing atomically."""
    try:
        if args.json:
            write_replacing(args.json, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
        if args.plot and draw is not None:
            with replacing(args.plot) as replacement:
                draw(replacement.partial)
    except OSError as error:
        raise CannotStart(f"cannot write {display_path(error.filename or '') or 'the results'}: {describe_error(error)}") from None
    except OutputRefused as error:
        raise CannotStart(str(error)) from None


def _images_to_measure(given: list[str], count: int) -> list[str]:
    """The first ``count`` images under ``given`` for a measurement; each unreadable folder warned, none at all refused."""
    from .engine.sweep import images_to_measure

    unreadable: list[UnreadableFolder] = []
    paths = images_to_measure(given, count, on_unreadable=unreadable.append)
    for folder in unreadable:
        _warn(folder.describe())
    if not paths:
        raise CannotStart(no_images_message(given, unreadable=unreadable))
    return paths


def _run_versus(args: argparse.Namespace, classifier: Classifier, given: list[str]) -> int:
    """``bench --versus-one-by-one N``: N images one at a time, then batched, and why they differ."""
    from .engine.versus import one_by_one_vs_batched
    from .why_cli import versus_report

    paths = _images_to_measure(given, args.versus_one_by_one)
    sys.stderr.write(
        f"{classifier.model.name} on {classifier.device_name}, {classifier.precision}; "
        f"{args.versus_one_by_one} images (from {len(paths)} files) one by one, then in batches of "
        f"{args.versus_one_by_one}\n"
    )
    try:
        result = one_by_one_vs_batched(classifier, paths, args.versus_one_by_one)
    except ValueError as error:
        raise CannotStart(str(error)) from None
    print("\n".join(result.describe()))
    _write_bench_outputs(args, versus_report(classifier, result))
    return EXIT_OK


def run_bench(args: argparse.Namespace) -> int:
    from .compare_cli import run_compare
    from .engine.compare import ModelFailed
    from .engine.devices import caption_for, memory_kind
    from .engine.stage_times import fit_stage_times, stage_times_of_sweep
    from .engine.sweep import default_sweep_sizes, sweep_batch_sizes
    from .engine.sweep_chart import save_sweep_chart
    from .why_cli import kernels_at_best, kernels_refusal

    _bench_outputs(args)
    if args.models:
        paths = [str(path) for path in (args.paths or sample_images())]
        try:
            run_compare(args.models, _config(args), paths, args.batch_sizes, args.json, args.plot, _bench_table)
        except ModelFailed as error:
            raise CannotStart(str(error)) from None
        return EXIT_OK
    classifier = _load(_config(args))
    given = args.paths or [str(path) for path in sample_images()]
    if args.count_kernels and kernels_refusal(classifier):
        raise CannotStart(kernels_refusal(classifier))
    if args.versus_one_by_one:
        return _run_versus(args, classifier, given)
    sizes = args.batch_sizes or default_sweep_sizes(classifier.device)
    paths = _images_to_measure(given, max(sizes))
    sys.stderr.write(
        f"{classifier.model.name} on {classifier.device_name}, {classifier.precision}, {classifier.runner.runtime}; "
        f"{len(paths)} images, batch sizes {','.join(map(str, sizes))}; "
        f"memory: {caption_for(memory_kind(classifier.device))}\n"
    )
    try:
        result = sweep_batch_sizes(
            classifier, paths, sizes, on_point=lambda point: sys.stderr.write(f"  batch {point.batch_size} done\n")
        )
    except ValueError as error:
        raise CannotStart(str(error)) from None
    stages = stage_times_of_sweep(result.points)
    fit = fit_stage_times(stages)
    print(_bench_table(result))
    print(f"best batch size: {result.best_batch_size}")
    print(fixed_cost_line(fit))
    report: dict[str, object] = {
        "model": classifier.model.name,
        "device": classifier.device_name,
        "precision": classifier.precision,
        "runtime": classifier.runner.runtime,
        "images": len(paths),
        "sequential_images_per_s": result.sequential_images_per_s,
        "best_batch_size": result.best_batch_size,
        "points": [point.report() for point in result.points],
        "stages": [entry.report() for entry in stages],
        "fixed_cost": fit.report() if fit is not None else None,
    }
    if args.count_kernels:
        size, kernels = kernels_at_best(classifier, paths, result)
        print(f"one batch of {size} launches {kernels:,} CUDA kernels (torch.profiler)")
        report["kernels"] = {"batch_size": size, "kernels": kernels}
    title = f"{classifier.model.name} on {classifier.device_name} ({classifier.precision}, {classifier.runner.runtime})"
    _write_bench_outputs(
        args,
        report,
        lambda path: save_sweep_chart(result.points, result.best_batch_size, title, path, note=fixed_cost_line(fit)),
    )
    return EXIT_OK


def run_models() -> int:
    from .engine.models import list_models
    from .engine.timm_models import hf_cache_dir

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


def _check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Clashes argparse cannot express alone: usage errors, exit 2 like the rest."""
    if args.command == "classify" and args.csv == "":
        parser.error("--csv needs a file name (or - for standard output), not an empty one")
    if args.command == "classify" and args.resume and args.csv in (None, STDOUT):
        parser.error("--resume needs --csv naming the file to continue")
    if args.command == "classify" and args.ray_address and not args.ray:
        parser.error("--ray-address needs --ray")
    if args.command == "bench":
        if STDOUT in (args.json, args.plot):
            parser.error("bench prints its table on standard output: give --json and --plot file names")
        if args.plot and Path(args.plot).suffix.lower() not in Image.registered_extensions():
            parser.error(f"--plot needs an image file name such as bench.png, not {args.plot!r}")
        if args.versus_one_by_one:
            clash = next(
                (flag for flag, given in (("--models", args.models), ("--batch-sizes", args.batch_sizes),
                                          ("--plot", args.plot), ("--count-kernels", args.count_kernels)) if given),
                None,
            )
            if clash:
                parser.error(f"--versus-one-by-one runs on its own: drop {clash}")


def _occupy_closed_standard_fds() -> None:
    """Open /dev/null on a standard descriptor the caller closed (``>&-``).

    Otherwise the next file opened (the CSV) would get descriptor 1, and
    anything printed, by us or a library, would land in it.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:
                os.close(opened)


def _say_finishing(signum: int) -> None:
    again = "Ctrl-C again" if signum == signal.SIGINT else "a second signal"
    try:
        sys.stderr.write(
            f"\n{signal.Signals(signum).name}: finishing the current batch, then stopping ({again} stops now)\n"
        )
    except (OSError, ValueError, AttributeError):  # a terminal that hung up
        pass


class _StdoutFailed(Exception):
    """Standard output cannot take what is written (``>/dev/full``, a device error); not a closed pipe."""

    def __init__(self, error: OSError) -> None:
        super().__init__(describe_error(error))


class _CheckedStdout:
    """Standard output whose failures (other than a closed pipe) say that it was standard output that failed.

    An ``OSError`` from a ``print`` looks like any other; this keeps "cannot
    write standard output" apart from a CSV file or a model file failing.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._guard(self._stream.write, text)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)

    @staticmethod
    def _guard(call: Callable[..., object], *args: object) -> object:
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise _StdoutFailed(error) from None


class _StderrThatMayClose:
    """Standard error that, once it cannot be written (``2>&1 | head -1``, a terminal gone), takes the rest quietly.

    Standard error only tells a person what goes on; a run writing its CSV
    to a file must not die of it (the progress line's next redraw would end
    the run with 141 and lose what the batches in flight held). The stream
    is pointed at /dev/null then, so the exit's flush cannot fail either.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        self._guard(self._stream.write, text)
        return len(text)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)

    def _guard(self, call: Callable[..., object], *args: object) -> None:
        if self._gone:
            return
        try:
            call(*args)
        except (OSError, ValueError):  # a closed pipe, a hung-up terminal, a stream already closed
            self._gone = True
            _to_devnull(self._stream)


def _dispatch(args: argparse.Namespace, stops: StopSignals) -> int:
    if args.command == "classify":
        return run_classify(args, stops)
    if args.command == "bench":
        return run_bench(args)
    if args.command == "sort":
        return run_sort(args)
    return run_models()


def _writes_stdout(args: argparse.Namespace) -> bool:
    return args.command != "classify" or args.csv in (None, STDOUT)


def main(argv: Sequence[str] | None = None) -> int:
    _occupy_closed_standard_fds()
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_usage(parser, args)
    check_assessment_options(parser, args)
    if getattr(args, "models", None) and (args.arch or args.labels):
        parser.error("--arch and --labels belong to a single --model, not to --models")
    if sys.stdout is None and _writes_stdout(args):
        return EXIT_CLOSED_STDOUT
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = _CheckedStdout(stdout)  # type: ignore[assignment]
    if stderr is not None:
        sys.stderr = _StderrThatMayClose(stderr)  # type: ignore[assignment]
    try:
        with StopSignals(_say_finishing) as stops:
            status = _dispatch(args, stops)
            sys.stdout.flush()
            return status
    except CannotStart as error:
        sys.stderr.write(f"batch-classifier: error: {error}\n")
        return EXIT_CANNOT_START
    except _StdoutFailed as error:
        _silence_stdout()
        sys.stderr.write(f"batch-classifier: error: cannot write standard output: {error}\n")
        return EXIT_CANNOT_START
    except Interrupted as stop:
        sys.stderr.write(f"\nstopped by {signal.Signals(stop.signum).name}\n")
        return stop.exit_status
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_CLOSED_STDOUT
    finally:
        sys.stdout, sys.stderr = stdout, stderr
