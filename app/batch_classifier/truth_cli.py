"""``classify --truth folders|FILE.csv``, ``--report DIR`` and ``--min-confidence P``: the run judged as it goes.

``cli.py`` adds these options and hands each batch through ``Assessor``,
which puts the truth and the threshold on the rows, scores them, and at the
end prints the summary and writes the report. The decisions are the
engine's (``engine/truth.py``, ``engine/accuracy.py``); this module only
connects them to the command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from .engine.accuracy import Scorecard, summary_lines
from .engine.accuracy_files import existing_report_files, write_report
from .engine.records import ImageResult
from .engine.result_columns import ResultColumns
from .engine.truth import TruthError, annotate, read_truth_csv, truth_for
from .engine.wording import counted


class AssessmentRefused(Exception):
    """A truth file or report folder that cannot be used; the front end prints it as one line."""


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1 (a confidence, e.g. 0.5)")
    return value


def add_assessment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--truth", metavar="folders|FILE.csv",
        help="ground truth: 'folders' (PATH/<class>/image) or a CSV with path,label columns",
    )
    parser.add_argument(
        "--report", metavar="DIR", help="with --truth: write confusion.csv, per_class.csv and confusion.png here"
    )
    parser.add_argument(
        "--min-confidence", type=probability, default=0.0, metavar="P",
        help="label rows whose top-1 confidence is below P 'unknown' (the model's top-1 goes to top1_label)",
    )


def check_assessment_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options that clash are usage errors (exit 2), found before anything loads."""
    if getattr(args, "report", None) and not getattr(args, "truth", None):
        parser.error("--report needs --truth (accuracy needs ground truth)")


class Assessor:
    """Truth, threshold and scorecard for one run. Construct it before the model loads: a bad file fails fast."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.inputs: Sequence[str] = args.paths
        self.min_confidence: float = args.min_confidence
        self.report_dir: str | None = args.report
        self._truth_option: str | None = args.truth
        self._names = None
        if args.truth and args.truth != "folders":
            try:
                self._names = read_truth_csv(args.truth)
            except TruthError as error:
                raise AssessmentRefused(str(error)) from None
        if self.report_dir:
            existing = existing_report_files(self.report_dir)
            if existing:
                raise AssessmentRefused(
                    f"--report {self.report_dir} already holds {', '.join(existing)}: "
                    "choose another folder (report files are never replaced)"
                )
        self._truth = None
        self._scorecard: Scorecard | None = None
        self._unknown = 0

    def start(self, labels: Sequence[str], top_k: int) -> None:
        """Match the truth against the loaded model's labels."""
        if self._truth_option:
            self._truth = truth_for(self.inputs, labels, self._names)
            self._scorecard = Scorecard(labels, top_k)

    def annotate(self, results: Sequence[ImageResult]) -> Sequence[ImageResult]:
        rows = annotate(results, self._truth, self.min_confidence)
        self._unknown += sum(row.relabelled for row in rows)
        if self._scorecard is not None:
            self._scorecard.add(rows)
        return rows

    def annotate_columns(self, columns: ResultColumns) -> ResultColumns:
        """``annotate`` for rows in columns; rows pass as they are when there is neither truth nor threshold."""
        if self._truth is None and not self.min_confidence:
            return columns
        return ResultColumns.from_results(self.annotate(columns.to_results()), len(columns.labels))

    def finish(self, title: str, stream: TextIO | None = None) -> None:
        """Say how many rows the threshold relabelled; print the accuracy summary and write the report."""
        stream = stream or sys.stderr
        if self.min_confidence:
            stream.write(f"{counted(self._unknown, 'row')} below --min-confidence {self.min_confidence:g}: labelled unknown\n")
        if self._scorecard is None or self._truth is None:
            return
        report = self._scorecard.report(self._truth.unmatched())
        stream.write("\n".join(summary_lines(report)) + "\n")
        if self.report_dir:
            try:
                written = write_report(report, self.report_dir, title)
            except OSError as error:
                raise AssessmentRefused(f"cannot write the report in {self.report_dir}: {error}") from None
            stream.write(f"report: {', '.join(str(path) for path in written)}\n")
