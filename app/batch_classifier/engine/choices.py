"""The words a front end offers for a run's settings, and their defaults.

Kept apart from the modules that act on them (``devices.py``, ``pipeline.py``)
because those import torch: the command line parses its options, lists the
inputs and starts decoding before torch has loaded.
"""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
DECODE_CHOICES = ("auto", "cpu", "gpu")
DEFAULT_MAX_WAIT_MS = 5.0
