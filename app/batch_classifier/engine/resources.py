"""Where the application's bundled files are, installed, editable or frozen.

Every file the application opens at run time is named here, so the packaging
spec can be checked against this list instead of against someone's memory.
"""

from __future__ import annotations

import importlib.resources
import sys
from pathlib import Path

ICON_SVG = "icons/batch-classifier.svg"
ICON_PNG_SIZES = (16, 32, 48, 64, 128, 256)
DESKTOP_FILE = "batch-classifier.desktop"
SAMPLES_DIR = "samples"
SAMPLE_FILES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def icon_png(size: int) -> str:
    """Relative path of the PNG icon rendered at ``size`` pixels."""
    return f"icons/batch-classifier-{size}.png"


def runtime_resources() -> list[str]:
    """Every resource the application loads at run time, relative to the resources dir."""
    return [
        ICON_SVG,
        *(icon_png(size) for size in ICON_PNG_SIZES),
        DESKTOP_FILE,
        *(f"{SAMPLES_DIR}/{name}" for name in SAMPLE_FILES),
        f"{SAMPLES_DIR}/LICENSES.md",
    ]


def resources_dir() -> Path:
    """The folder holding the resources, wherever the application runs from."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root is not None:
        return Path(frozen_root) / "batch_classifier" / "resources"
    return Path(str(importlib.resources.files("batch_classifier.resources")))


def resource_path(relative: str) -> Path:
    return resources_dir() / relative


def sample_images() -> list[Path]:
    """The bundled photos: the default input for bench, self-test and "Try samples"."""
    return [resource_path(f"{SAMPLES_DIR}/{name}") for name in SAMPLE_FILES]
