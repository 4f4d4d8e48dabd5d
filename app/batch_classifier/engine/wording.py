"""Counts in words, said the same way by the command line, the window and the reports.

One rule so no message says "1 errors": a count of one takes the singular.
"""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """``counted(1, "image")`` is "1 image", ``counted(1234, "error")`` is "1,234 errors"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
