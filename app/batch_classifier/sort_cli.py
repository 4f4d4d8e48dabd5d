"""``batch-classifier sort RESULTS.csv --into DIR`` and ``sort --undo MANIFEST``: the command line over engine/sorting.py.

Exit status: 0 when the sort or undo ran (skipped images and kept entries
included, each said), 1 with one line when it cannot start (no such CSV, not
our CSV, DIR is a file, not a manifest), 2 for bad arguments, 130 after
Ctrl-C (the manifest then holds what was made, so undo still works).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from .engine.sorting import (
    MODES,
    SortError,
    SortOutcome,
    describe_counts,
    describe_skipped,
    items_from_csv,
    sort_images,
    undo_sort,
)
from .terminal_progress import CallbackProgress
from .truth_cli import probability


def add_sort_parser(commands: argparse._SubParsersAction) -> None:
    sort = commands.add_parser(
        "sort", help="copy or link classified images into one folder per label (never moves or overwrites)"
    )
    sort.add_argument("csv", nargs="?", metavar="RESULTS.csv", help="a CSV written by classify or the window")
    sort.add_argument("--into", metavar="DIR", help="where the label folders go (created if need be)")
    sort.add_argument("--mode", choices=MODES, default="copy", help="how each image gets there (default copy)")
    sort.add_argument("--min-confidence", type=probability, default=0.0, metavar="P",
                      help="rows below P go to _unknown/")
    sort.add_argument("--dry-run", action="store_true", help="say what would be made; make nothing")
    sort.add_argument("--undo", metavar="MANIFEST", help="remove what an earlier sort made, and nothing else")
    sort.add_argument("--quiet", action="store_true", help="no progress line")
    sort.set_defaults(sort_parser=sort)


def run_sort(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.sort_parser
    if args.undo and (args.csv or args.into or args.dry_run):
        parser.error("--undo MANIFEST takes no RESULTS.csv, --into or --dry-run")
    if not args.undo and not (args.csv and args.into):
        parser.error("give RESULTS.csv and --into DIR (or --undo MANIFEST)")
    try:
        return _undo(args) if args.undo else _sort(args)
    except SortError as error:
        sys.stderr.write(f"batch-classifier: error: {error}\n")
        return 1


def _progress(args: argparse.Namespace, description: str) -> CallbackProgress | None:
    return None if args.quiet else CallbackProgress(description)


def _sort(args: argparse.Namespace) -> int:
    items = items_from_csv(args.csv, args.min_confidence)
    progress = _progress(args, "sorting")
    try:
        outcome = sort_images(items, args.into, args.mode, args.dry_run, source_csv=args.csv, on_progress=progress)
    finally:
        if progress is not None:
            progress.close()
    _report(outcome, len(items), args)
    return 130 if outcome.interrupted else 0


def _report(outcome: SortOutcome, total: int, args: argparse.Namespace) -> None:
    write = sys.stderr.write
    verb = "would sort" if outcome.dry_run else ("stopped after sorting" if outcome.interrupted else "sorted")
    write(f"{verb} {len(outcome.placed):,} of {total:,} images into {args.into} ({args.mode}): "
          f"{describe_counts(outcome.counts())}\n")
    renamed = [placed for placed in outcome.placed if placed.renamed]
    if renamed:
        write(f"  {len(renamed):,} renamed because the name was taken (e.g. {renamed[0].target})\n")
    if outcome.skipped:
        write(f"skipped {len(outcome.skipped):,}:\n" + "\n".join(describe_skipped(outcome.skipped)) + "\n")
    if outcome.dry_run:
        write("dry run: nothing was created\n")
    elif outcome.manifest is not None:
        write(f"manifest: {outcome.manifest}\n")
        write(f"undo with: batch-classifier sort --undo {shlex.quote(str(outcome.manifest))}\n")


def _undo(args: argparse.Namespace) -> int:
    progress = _progress(args, "undoing")
    try:
        outcome = undo_sort(args.undo, progress)
    finally:
        if progress is not None:
            progress.close()
    write = sys.stderr.write
    write(f"removed {outcome.removed_files:,} files and {outcome.removed_folders:,} folders the sort created")
    write(", and the manifest\n" if outcome.manifest_removed else "; the manifest stays, for what was kept\n")
    if outcome.already_gone:
        write(f"  {outcome.already_gone:,} were already gone\n")
    if outcome.kept:
        write(f"kept {len(outcome.kept):,}:\n" + "\n".join(describe_skipped(outcome.kept)) + "\n")
    return 0
