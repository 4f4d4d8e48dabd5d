"""Models built to misbehave, as TorchScript files a run loads like any user's model.

Each is the tiny colour classifier of ``support.make_tiny_model`` (mean
colour -> red, green, blue or dark) with one fault added. Every one passes the
load-time probe (a single black image), as the real-world cases do: the fault
shows only on real images, or only on batches of more than one. Build them
with ``save_misbehaving(kind, folder)``, or through the session fixture
``misbehaving_model`` in ``conftest.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from support import COLOUR_LABELS, TinyModel

CLASSES = len(COLOUR_LABELS)


class _Colour(nn.Module):
    """The well-behaved part: mean colour through a fixed linear head, as in ``support.make_tiny_model``."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, CLASSES)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[4.0, -2, -2], [-2, 4, -2], [-2, -2, 4], [-1, -1, -1]]))
            self.head.bias.zero_()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.head(batch.mean(dim=(2, 3)))


def _is_colour(batch: torch.Tensor, channel: int) -> torch.Tensor:
    """Which images of a normalised batch are mostly ``channel`` (0 red, 1 green, 2 blue): a (batch,) bool mask.

    Black images (the load-time probe, 'dark' photos) are no colour: all their channels are at or below zero.
    """
    means = batch.mean(dim=(2, 3))
    return (means.argmax(dim=1) == channel) & (means.max(dim=1).values > 0)


class NonFiniteOnRed(nn.Module):
    """Scores of ``value`` (nan or inf) for red images only, so one batch mixes good and bad rows."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.colour = _Colour()
        self.value = value

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        scores = self.colour(batch)
        red = _is_colour(batch, 0).unsqueeze(1)
        return torch.where(red, torch.full_like(scores, self.value), scores)


class OneRowOnly(nn.Module):
    """Always one row of scores, whatever the batch: right for the probe, short for every real batch."""

    def __init__(self) -> None:
        super().__init__()
        self.colour = _Colour()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.colour(batch[:1])


class ExtraClassWhenBatched(nn.Module):
    """One score too many per image once the batch holds more than one."""

    def __init__(self) -> None:
        super().__init__()
        self.colour = _Colour()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        scores = self.colour(batch)
        if batch.shape[0] > 1:
            return torch.cat([scores, torch.zeros(batch.shape[0], 1)], dim=1)
        return scores


class RaisesAbove(nn.Module):
    """Raises on batches of more than ``limit`` images, like a model exported with a fixed batch size."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.colour = _Colour()
        self.limit = limit

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.shape[0] > self.limit:
            raise RuntimeError("this model takes at most " + str(self.limit) + " images per batch")
        return self.colour(batch)


class RaisesOnBlue(nn.Module):
    """Raises on any batch holding a blue image, like a model that trips on some inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.colour = _Colour()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if bool(_is_colour(batch, 2).any()):
            raise ValueError("cannot handle blue")
        return self.colour(batch)


MISBEHAVING: dict[str, Callable[[], nn.Module]] = {
    "nan_on_red": lambda: NonFiniteOnRed(float("nan")),
    "inf_on_red": lambda: NonFiniteOnRed(float("inf")),
    "one_row_only": OneRowOnly,
    "extra_class_when_batched": ExtraClassWhenBatched,
    "raises_above_1": lambda: RaisesAbove(1),
    "raises_above_2": lambda: RaisesAbove(2),
    "raises_on_blue": RaisesOnBlue,
}


def save_misbehaving(kind: str, folder: Path) -> TinyModel:
    """The model ``kind`` (a key of ``MISBEHAVING``) as TorchScript in ``folder``, with its labels file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.pt"
    with warnings.catch_warnings():
        # torch.jit.script is deprecated in favour of torch.export; TorchScript files are still what
        # users bring, so the tests build them on purpose and silence the warning here, and only here.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(MISBEHAVING[kind]().eval()).save(str(path))
    labels = folder / "labels.txt"
    labels.write_text("\n".join(COLOUR_LABELS) + "\n", encoding="utf-8")
    return TinyModel(path, labels)
