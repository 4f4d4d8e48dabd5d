"""Rows in columnar form: one sequence per CSV field, for batches that travel between processes.

A Ray cluster's actors send their rows to the driver as Arrow columns, and
the driver writes them at 100,000+ rows a second: building one
``ImageResult`` with its ``Prediction`` objects per row would cost more than
the writing itself. ``from_results`` is the one place that turns rows into
columns, so the label after a threshold, the model's own top-1 and the
``correct`` flag are still decided by ``ImageResult`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .records import ImageResult, Prediction


@dataclass(frozen=True)
class ResultColumns:
    """The rows of one batch, column by column; every sequence has one entry per row.

    ``labels[r]`` and ``confidences[r]`` hold rank ``r + 1`` of each row's
    top-k: an empty label and ``None`` where the row has no such guess
    (an error row, or a model with fewer classes).
    """

    index: Sequence[int]
    path: Sequence[str]
    status: Sequence[str]
    labels: Sequence[Sequence[str]]
    confidences: Sequence[Sequence[float | None]]
    error: Sequence[str]
    model: Sequence[str]
    device: Sequence[str]
    batch_size: Sequence[int]
    runtime: Sequence[str]
    preprocess: Sequence[str]
    label: Sequence[str]
    """The label written in the ``label`` column: ``unknown`` for a row below the threshold."""
    top1_label: Sequence[str]
    true_label: Sequence[str]
    correct: Sequence[bool | None]
    min_confidence: Sequence[float]
    corrected_label: Sequence[str]
    """The label a person set in the window's review (written only in the window's export)."""

    def __len__(self) -> int:
        return len(self.path)

    @property
    def errors(self) -> int:
        return sum(status != "ok" for status in self.status)

    @classmethod
    def from_results(cls, results: Sequence[ImageResult], top_k: int) -> ResultColumns:
        ranks = range(top_k)
        predictions = [result.predictions for result in results]
        return cls(
            index=[result.index for result in results],
            path=[result.path for result in results],
            status=[result.status for result in results],
            labels=[[row[rank].label if rank < len(row) else "" for row in predictions] for rank in ranks],
            confidences=[[row[rank].confidence if rank < len(row) else None for row in predictions] for rank in ranks],
            error=[result.error for result in results],
            model=[result.model for result in results],
            device=[result.device for result in results],
            batch_size=[result.batch_size for result in results],
            runtime=[result.runtime for result in results],
            preprocess=[result.preprocess for result in results],
            label=[result.label for result in results],
            top1_label=[result.top1_label for result in results],
            true_label=[result.true_label for result in results],
            correct=[result.correct for result in results],
            min_confidence=[result.min_confidence for result in results],
            corrected_label=[result.corrected_label for result in results],
        )

    def to_results(self) -> tuple[ImageResult, ...]:
        """The rows as ``ImageResult`` again (no thumbnails), for a front end that shows them or judges them."""
        return tuple(
            ImageResult(
                index=self.index[row],
                path=self.path[row],
                status="ok" if self.status[row] == "ok" else "error",
                predictions=tuple(
                    Prediction(labels[row], confidence)
                    for labels, confidences in zip(self.labels, self.confidences)
                    if (confidence := confidences[row]) is not None
                ),
                error=self.error[row],
                model=self.model[row],
                device=self.device[row],
                batch_size=self.batch_size[row],
                runtime=self.runtime[row],
                preprocess=self.preprocess[row],
                min_confidence=self.min_confidence[row],
                true_label=self.true_label[row],
                corrected_label=self.corrected_label[row],
            )
            for row in range(len(self))
        )
