"""``--report DIR``: the accuracy of a run as files, confusion.csv, per_class.csv and confusion.png.

The files are created, never replaced: a folder that already holds one of
them is refused before the run starts (``existing_report_files``), and each
is opened with exclusive creation at the end. The picture is drawn with
Pillow alone, as ``bench --plot`` is, so it works on a headless server.
"""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .accuracy import AccuracyReport
from .csv_output import neutralise

REPORT_FILES = ("confusion.csv", "per_class.csv", "confusion.png")
_CORNER = "true \\ labelled"
_INK = (30, 30, 30)
_GRID = (210, 210, 210)
_LABEL_CHARS = 28


def existing_report_files(folder: str | Path) -> list[str]:
    """The report files already in ``folder``, which a run must not replace; a folder path that is a file counts too."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return [str(folder)]
    return [name for name in REPORT_FILES if (folder / name).exists() or (folder / name).is_symlink()]


def _percent_cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def write_report(report: AccuracyReport, folder: str | Path, title: str) -> list[Path]:
    """Write the three files into ``folder`` (created if need be) and return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    confusion, per_class, picture = (folder / name for name in REPORT_FILES)
    with open(confusion, "x", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow([_CORNER, *(neutralise(label) for label in report.columns)])
        for label, counts in zip(report.classes, report.matrix):
            writer.writerow([neutralise(label), *counts])
    with open(per_class, "x", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["label", "images", "labelled", "correct", "precision", "recall"])
        for score in report.per_class:
            writer.writerow(
                [neutralise(score.label), score.images, score.predicted, score.correct,
                 _percent_cell(score.precision), _percent_cell(score.recall)]
            )
    with open(picture, "xb") as handle:
        confusion_image(report, title).save(handle, format="PNG")
    return [confusion, per_class, picture]


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


def shade(fraction: float) -> tuple[int, int, int]:
    """White for none of a row's images, deep blue for all of them."""
    low, high = (255, 255, 255), (8, 69, 148)
    return tuple(round(a + (b - a) * fraction) for a, b in zip(low, high))  # type: ignore[return-value]


def confusion_image(report: AccuracyReport, title: str) -> Image.Image:
    """The matrix as a heat map: rows are true labels, columns the labels given, shaded by share of the row."""
    rows, columns = len(report.classes), len(report.columns)
    cell = max(14, min(48, 900 // max(rows, columns, 1)))
    font = ImageFont.load_default(max(9, min(14, cell // 3)))
    label_width = max([int(font.getlength(_short(label))) for label in (*report.classes, *report.columns)] or [0]) + 12
    left, top = label_width + 30, label_width + 60
    width = max(left + columns * cell + 20, 480)
    image = Image.new("RGB", (width, top + rows * cell + 40), "white")
    draw = ImageDraw.Draw(image)
    draw.text((width // 2, 14), title, fill=_INK, font=font, anchor="mm")
    draw.text((width // 2, 32), report.headline(), fill=_INK, font=font, anchor="mm")
    draw.text((8, top - 16), "true label", fill=_INK, font=font)
    draw.text((left, 48), "labelled", fill=_INK, font=font)
    for row, (label, counts) in enumerate(zip(report.classes, report.matrix)):
        y = top + row * cell
        draw.text((left - 6, y + cell // 2), _short(label), fill=_INK, font=font, anchor="rm")
        total = sum(counts) or 1
        for column, count in enumerate(counts):
            x = left + column * cell
            fill = shade(count / total)
            draw.rectangle([x, y, x + cell, y + cell], fill=fill, outline=_GRID)
            if count:
                ink = "white" if count / total > 0.5 else _INK
                draw.text((x + cell // 2, y + cell // 2), str(count), fill=ink, font=font, anchor="mm")
    for column, label in enumerate(report.columns):
        text = _short(label)
        stamp = Image.new("RGB", (int(font.getlength(text)) + 4, cell), "white")
        ImageDraw.Draw(stamp).text((0, cell // 2), text, fill=_INK, font=font, anchor="lm")
        rotated = stamp.rotate(90, expand=True)
        image.paste(rotated, (left + column * cell, top - 6 - rotated.height))
    return image
