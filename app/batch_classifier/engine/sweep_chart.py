"""Draw a sweep as a PNG with Pillow alone, so ``bench --plot`` works on a headless server.

Two panels side by side: throughput against batch size, and peak memory
against batch size, both with a log2 x-axis and the best size marked. A
comparison of models draws one curve per model on the same two panels, each
model's best size ringed, and its legend in a strip below the panels, where
it cannot cover a curve.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from .devices import MemoryKind, caption_for
from .sweep import SweepPoint

if TYPE_CHECKING:
    from .compare import Comparison

_PANEL = (560, 380)
_MARGIN = (70, 40, 20, 50)  # left, top, right, bottom
_BLUE = (31, 119, 180)
_ORANGE = (255, 127, 14)
_GREEN = (44, 160, 44)
_GREY = (200, 200, 200)
_INK = (30, 30, 30)
# One colour per model (matplotlib's tab10), in the order the models were given.
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
_LEGEND_LINE = 16
_CHAR_WIDTH = 6
"""Pillow's default font runs 5 to 6 px a character: a note wrapped at 6 stays inside the image."""


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _panel(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    title: str,
    y_label: str,
    series: Sequence[tuple[str, tuple[int, int, int], Sequence[tuple[int, float]]]],
    best: int | None,
    rings: Sequence[int | None] = (),
) -> None:
    """One plot; ``rings`` circles a batch size on each series (with the names left to a legend below)."""
    font = ImageFont.load_default()
    left, top = origin[0] + _MARGIN[0], origin[1] + _MARGIN[1]
    right, bottom = origin[0] + _PANEL[0] - _MARGIN[2], origin[1] + _PANEL[1] - _MARGIN[3]
    sizes = sorted({size for _, _, points in series for size, _ in points}) or [1]
    low, high = math.log2(sizes[0]), math.log2(sizes[-1])
    span = max(high - low, 1.0)
    y_top = _nice_ceiling(max((value for _, _, points in series for _, value in points), default=1.0))
    x_of: Callable[[int], float] = lambda size: left + (math.log2(size) - low) / span * (right - left)
    y_of: Callable[[float], float] = lambda value: bottom - value / y_top * (bottom - top)
    draw.text((origin[0] + _PANEL[0] // 2, origin[1] + 12), title, fill=_INK, font=font, anchor="mm")
    for tick in range(5):
        value = y_top * tick / 4
        y = y_of(value)
        draw.line([(left, y), (right, y)], fill=_GREY)
        draw.text((left - 6, y), f"{value:g}", fill=_INK, font=font, anchor="rm")
    for size in sizes:
        x = x_of(size)
        draw.line([(x, bottom), (x, bottom + 4)], fill=_INK)
        draw.text((x, bottom + 8), str(size), fill=_INK, font=font, anchor="mt")
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=_INK)
    draw.text(((left + right) // 2, bottom + 28), "batch size", fill=_INK, font=font, anchor="mt")
    draw.text((origin[0] + 6, top - 16), y_label, fill=_INK, font=font)
    if best is not None and best in sizes:
        x = x_of(best)
        draw.line([(x, top), (x, bottom)], fill=_GREEN, width=2)
        draw.text((x + 4, top + 2), f"best: {best}", fill=_GREEN, font=font)
    for index, (name, colour, points) in enumerate(series):
        xy = [(x_of(size), y_of(value)) for size, value in sorted(points)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for x, y in xy:
            draw.ellipse([(x - 3, y - 3), (x + 3, y + 3)], fill=colour)
        ring = rings[index] if index < len(rings) else None
        if ring is not None and ring in dict(points):
            x, y = x_of(ring), y_of(dict(points)[ring])
            draw.ellipse([(x - 7, y - 7), (x + 7, y + 7)], outline=colour, width=2)
        if not rings:
            draw.text((right - 150, top + 4 + 14 * index), name, fill=colour, font=font)


def _memory_kind(points: Sequence[SweepPoint]) -> MemoryKind:
    """What the points' memory readings measured: CUDA peaks if any did, else the process's resident set."""
    return "cuda" if any(point.memory.kind == "cuda" for point in points) else "process"


def save_sweep_chart(
    points: Sequence[SweepPoint], best: int | None, title: str, path: str | Path, note: str = ""
) -> None:
    """Throughput and memory per batch size; ``note`` (the fixed-cost line) goes below, wrapped to the width."""
    measured = [point for point in points if point.measured]
    font = ImageFont.load_default()
    note_lines = textwrap.wrap(note, width=(_PANEL[0] * 2 - 2 * _MARGIN[0]) // _CHAR_WIDTH) if note else []
    image = Image.new("RGB", (_PANEL[0] * 2, _PANEL[1] + 30 + _LEGEND_LINE * len(note_lines) + 8), "white")
    draw = ImageDraw.Draw(image)
    draw.text((image.width // 2, 12), title, fill=_INK, font=font, anchor="mm")
    for index, line in enumerate(note_lines):
        draw.text((_MARGIN[0], _PANEL[1] + 30 + _LEGEND_LINE * index), line, fill=_INK, font=font)
    throughput = [(point.batch_size, point.images_per_s) for point in measured]
    _panel(draw, (0, 30), "Throughput", "images/s", [("img/s", _BLUE, throughput)], best)
    kind = _memory_kind(measured)
    if kind == "cuda":
        memory_series = [
            ("peak allocated", _BLUE, [(point.batch_size, point.memory.allocated_mb) for point in measured]),
            ("peak reserved", _ORANGE, [(point.batch_size, point.memory.reserved_mb) for point in measured]),
        ]
    else:
        memory_series = [("process RSS", _ORANGE, [(point.batch_size, point.memory.allocated_mb) for point in measured])]
    _panel(draw, (_PANEL[0], 30), caption_for(kind), "MB", memory_series, best)
    image.save(path)


def save_comparison_chart(comparison: Comparison, title: str, path: str | Path) -> None:
    """Throughput and memory per batch size, one curve per model, each model's best size ringed."""
    sweeps = comparison.sweeps
    legend_height = 12 + _LEGEND_LINE * len(sweeps)
    image = Image.new("RGB", (_PANEL[0] * 2, _PANEL[1] + 30 + legend_height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((image.width // 2, 12), title, fill=_INK, font=font, anchor="mm")
    colours = [PALETTE[index % len(PALETTE)] for index in range(len(sweeps))]
    measured = [[point for point in sweep.result.points if not point.out_of_memory] for sweep in sweeps]
    rings = [sweep.result.best_batch_size for sweep in sweeps]
    throughput = [
        (sweep.model, colour, [(point.batch_size, point.images_per_s) for point in points])
        for sweep, colour, points in zip(sweeps, colours, measured)
    ]
    _panel(draw, (0, 30), "Throughput", "images/s", throughput, None, rings)
    kind = _memory_kind([point for points in measured for point in points])
    memory = [
        (sweep.model, colour, [(point.batch_size, point.memory.allocated_mb) for point in points])
        for sweep, colour, points in zip(sweeps, colours, measured)
    ]
    memory_title = f"{caption_for(kind)} allocated" if kind == "cuda" else caption_for(kind)
    _panel(draw, (_PANEL[0], 30), memory_title, "MB", memory, None, rings)
    top = _PANEL[1] + 30 + 6
    for index, (sweep, colour) in enumerate(zip(sweeps, colours)):
        y = top + _LEGEND_LINE * index
        draw.line([(_MARGIN[0], y + 6), (_MARGIN[0] + 24, y + 6)], fill=colour, width=3)
        best = sweep.best_point
        text = (
            f"{sweep.model}: batching gain {sweep.batching_gain:.2f}x "
            f"(batch 1: {sweep.result.sequential_images_per_s:.1f} img/s, "
            f"best: batch {sweep.result.best_batch_size}, {best.images_per_s:.1f} img/s)"
            if best is not None
            else f"{sweep.model}: nothing measured"
        )
        draw.text((_MARGIN[0] + 32, y), text, fill=_INK, font=font)
    image.save(path)
