"""Accuracy of a run against its ground truth: top-1 and top-k, per class, and the confusion matrix.

Rows are scored when they have a truth (a true label, or the label a person
set in the window's review, which wins) and a prediction. A row the
threshold labelled ``unknown`` counts as wrong at top-1 (the user did not
get the right label) and sits in the ``unknown`` column of the matrix; top-k
looks at the model's own predictions. Error rows and rows without truth are
counted, never scored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .records import UNKNOWN_LABEL, ImageResult
from .truth import UnmatchedName
from .wording import counted


@dataclass(frozen=True)
class ClassScore:
    """One class of the truth or the predictions: how often it was right when it was there or was said."""

    label: str
    images: int
    """Images whose truth is this class (the support)."""
    predicted: int
    """Scored rows labelled this class."""
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.images if self.images else None


@dataclass(frozen=True)
class AccuracyReport:
    top_k: int
    scored: int
    top1_correct: int
    topk_correct: int
    unknown: int
    """Scored rows the threshold labelled ``unknown``."""
    errors: int
    """Error rows that had a true label: not scored."""
    without_truth: int
    classes: tuple[str, ...]
    """The matrix's rows (true labels), every class seen as truth or prediction, in the model's order."""
    columns: tuple[str, ...]
    """The matrix's columns (labels given): ``classes``, then ``unknown`` when the threshold gave it."""
    matrix: tuple[tuple[int, ...], ...]
    """``matrix[i][j]``: images whose truth is ``classes[i]`` that were labelled ``columns[j]``."""
    per_class: tuple[ClassScore, ...]
    unmatched: tuple[UnmatchedName, ...] = ()

    @property
    def top1_accuracy(self) -> float | None:
        return self.top1_correct / self.scored if self.scored else None

    @property
    def topk_accuracy(self) -> float | None:
        return self.topk_correct / self.scored if self.scored else None

    def cell(self, true_label: str, label: str) -> int:
        try:
            return self.matrix[self.classes.index(true_label)][self.columns.index(label)]
        except ValueError:
            return 0

    def confusions(self) -> list[tuple[str, str, int]]:
        """The off-diagonal cells that hold images, most images first: what the model mixes up."""
        cells = [
            (true_label, label, count)
            for true_label, row in zip(self.classes, self.matrix)
            for label, count in zip(self.columns, row)
            if count and label != true_label
        ]
        return sorted(cells, key=lambda cell: -cell[2])

    def headline(self) -> str:
        """One line for a person: the same words on the command line and in the window."""
        if not self.scored:
            return "accuracy: no image with a true label was classified"
        text = f"accuracy: top-1 {_percent(self.top1_accuracy)} ({self.top1_correct:,} of {self.scored:,})"
        if self.top_k > 1:
            text += f", top-{self.top_k} {_percent(self.topk_accuracy)}"
        if self.unknown:
            text += f"; {self.unknown:,} unknown"
        return text


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


class Scorecard:
    """Accumulates scored rows batch by batch; ``report`` can be asked at any time (the window's live line)."""

    def __init__(self, labels: Sequence[str], top_k: int) -> None:
        self._order = {label: index for index, label in reversed(list(enumerate(labels)))}
        self._top_k = max(1, min(top_k, len(labels)))
        self._pairs: Counter[tuple[str, str]] = Counter()
        self._topk_correct = self._errors = self._without_truth = 0

    def add(self, results: Iterable[ImageResult]) -> None:
        for result in results:
            truth = result.truth  # a person's correction counts as the truth
            if not truth:
                self._without_truth += result.status == "ok"
            elif result.status != "ok":
                self._errors += 1
            else:
                self._pairs[(truth, result.label)] += 1
                self._topk_correct += any(p.label == truth for p in result.predictions[: self._top_k])

    def report(self, unmatched: Sequence[UnmatchedName] = ()) -> AccuracyReport:
        seen = {name for pair in self._pairs for name in pair}
        unknown = sum(count for (truth, label), count in self._pairs.items() if label == UNKNOWN_LABEL != truth)
        classes = sorted(seen - ({UNKNOWN_LABEL} if UNKNOWN_LABEL not in self._order else set()), key=self._rank)
        columns = classes + ([UNKNOWN_LABEL] if UNKNOWN_LABEL not in classes and unknown else [])
        matrix = tuple(tuple(self._pairs[(truth, label)] for label in columns) for truth in classes)
        per_class = []
        for row, label in enumerate(classes):
            column = columns.index(label)
            predicted = sum(counts[column] for counts in matrix)
            per_class.append(ClassScore(label, images=sum(matrix[row]), predicted=predicted, correct=matrix[row][column]))
        return AccuracyReport(
            top_k=self._top_k,
            scored=sum(self._pairs.values()),
            top1_correct=sum(count for (truth, label), count in self._pairs.items() if truth == label),
            topk_correct=self._topk_correct,
            unknown=unknown,
            errors=self._errors,
            without_truth=self._without_truth,
            classes=tuple(classes),
            columns=tuple(columns),
            matrix=matrix,
            per_class=tuple(per_class),
            unmatched=tuple(unmatched),
        )

    def _rank(self, label: str) -> tuple[int, str]:
        return self._order.get(label, len(self._order)), label


def summary_lines(report: AccuracyReport, most_confused: int = 10) -> list[str]:
    """The command line's summary: the headline, what was not scored, a per-class table, the top confusions."""
    lines = [report.headline()]
    uncounted = []
    if report.without_truth:
        uncounted.append(f"{counted(report.without_truth, 'image')} without a true label")
    if report.errors:
        uncounted.append(f"{counted(report.errors, 'error row')} with a true label")
    if uncounted:
        lines.append("  not scored: " + ", ".join(uncounted))
    for name in report.unmatched:
        lines.append(f"  no truth for {counted(name.images, 'image')} in {name.name!r}: {name.reason}")
    if not report.per_class:
        return lines
    width = max(12, *(len(score.label) for score in report.per_class))
    lines.append(f"  {'class':<{width}} {'images':>7} {'labelled':>9} {'correct':>8} {'precision':>10} {'recall':>7}")
    for score in report.per_class:
        lines.append(
            f"  {score.label:<{width}} {score.images:>7,} {score.predicted:>9,} {score.correct:>8,} "
            f"{_percent(score.precision):>10} {_percent(score.recall):>7}"
        )
    confusions = report.confusions()[:most_confused]
    if confusions:
        lines.append("  most confused (true -> labelled): " + ", ".join(
            f"{truth} -> {label} ({count:,})" for truth, label, count in confusions
        ))
    return lines
