"""Plain records that cross threads: from decode to runner, runner to GUI or CSV.

They are frozen dataclasses so a worker can hand one to another thread (or a
Qt signal) without anyone mutating it behind the other's back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # annotations only: decoding ahead of the model imports this before torch has loaded
    import numpy as np
    import torch

    from .devices import MemoryReading
    from .occupancy import Occupancy

Status = Literal["ok", "error"]
UNKNOWN_LABEL = "unknown"
"""The label of a row whose top-1 confidence is below the run's threshold (``--min-confidence``)."""


def below_threshold(confidence: float, min_confidence: float) -> bool:
    """Whether a top-1 confidence is under the threshold, so its row is labelled ``unknown``.

    The one test of the threshold: rows (``ImageResult.relabelled``) and the
    window's table, which relabels live without building a record per row, both ask it.
    """
    return confidence < min_confidence


@dataclass(frozen=True)
class Prediction:
    """One of the top-k guesses for an image."""

    label: str
    confidence: float


@dataclass(frozen=True)
class EncodedJpeg:
    """A JPEG read by a decode thread for the GPU: its bytes, and what its header says.

    The size is known before decoding so a batch of big photos can be split
    into device calls that fit in memory. The EXIF orientation (1-8) is kept
    because nvjpeg ignores it: the engine turns the decoded pixels itself.
    """

    data: torch.Tensor
    width: int
    height: int
    orientation: int = 1


@dataclass(frozen=True)
class DecodedImage:
    """What the decode stage hands the batcher: pixels ready for the model, or why not.

    ``index`` is the input's position in the run; rows keep that order.
    ``pixels`` is uint8 HWC at the model's input size (4x smaller than float32
    on its way to the device): a numpy array from Pillow, so decoding needs no
    torch and can start while torch loads; a tensor on the device from the GPU
    decoder. The batch's tensor is made where the batch is assembled
    (``pipeline.py``). ``thumbnail`` is a small RGB uint8 HWC array for
    the window, made here so the GUI thread never decodes a file. On the GPU
    decode path ``encoded`` holds the JPEG instead of ``pixels`` until many of
    them are decoded on the device in one call.
    """

    index: int
    path: str
    pixels: np.ndarray | torch.Tensor | None = None
    error: str | None = None
    decode_ms: float = 0.0
    thumbnail: np.ndarray | torch.Tensor | None = None
    encoded: EncodedJpeg | None = None


@dataclass(frozen=True)
class ImageResult:
    """One row of output: exactly one per input path."""

    index: int
    path: str
    status: Status
    predictions: tuple[Prediction, ...] = ()
    error: str = ""
    model: str = ""
    device: str = ""
    batch_size: int = 0
    runtime: str = ""
    preprocess: str = ""
    thumbnail: np.ndarray | torch.Tensor | None = field(default=None, compare=False, repr=False)
    min_confidence: float = 0.0
    """The threshold in force: an ok row whose top-1 confidence is below it is labelled ``unknown``."""
    true_label: str = ""
    """The ground truth, already matched to one of the model's labels; empty when there is none."""
    corrected_label: str = ""
    """The label a person set in the window's review; it overrides ``true_label`` as the truth."""

    @property
    def truth(self) -> str:
        """What this row is judged against: the person's correction, else the ground truth, else ``""``."""
        return self.corrected_label or self.true_label

    @property
    def relabelled(self) -> bool:
        """Whether the threshold turned this row's label into ``unknown`` (it stays ``ok``)."""
        return bool(self.predictions) and below_threshold(self.predictions[0].confidence, self.min_confidence)

    @property
    def label(self) -> str:
        if not self.predictions:
            return ""
        return UNKNOWN_LABEL if self.relabelled else self.predictions[0].label

    @property
    def top1_label(self) -> str:
        """The model's top-1, kept here when the threshold relabelled the row; empty otherwise."""
        return self.predictions[0].label if self.relabelled else ""

    @property
    def confidence(self) -> float | None:
        return self.predictions[0].confidence if self.predictions else None

    @property
    def correct(self) -> bool | None:
        """Whether the label (after the threshold) is the truth; None for a row without truth or without a label."""
        if not self.truth or self.status != "ok":
            return None
        return self.label == self.truth


@dataclass(frozen=True)
class BatchStats:
    """Timing and memory of one batch: the numbers that show why batching is fast.

    ``batch_size`` is the cap in force when the batch was formed; ``images``
    how many decoded images actually went through the model. ``memory`` is
    the reading the runner took after the batch, which says what it measured
    (CUDA peaks or the process's resident set), so every front end labels it
    the same way; None when no image decoded and the model did not run.
    """

    batch_index: int
    batch_size: int
    images: int
    errors: int
    decode_ms: float
    copy_ms: float
    forward_ms: float
    total_ms: float
    images_per_s: float
    memory: MemoryReading | None
    warmup: bool
    finished_at: float
    wait_ms: float = 0.0
    """How long the model waited for this batch's images to be decoded (the batcher's wait, pauses left
    out): the decode time that cost the run something, unlike ``decode_ms``, the decode threads' total."""
    occupancy: Occupancy | None = None
    """How busy the device was during the batch, where it can be read (``occupancy.py``)."""


@dataclass(frozen=True)
class BatchOutcome:
    """A finished batch: its rows (in input order) and its stats."""

    results: tuple[ImageResult, ...]
    stats: BatchStats
    source: str = ""
    """Where the batch ran: empty on this machine, the Ray actor's name on a cluster."""
