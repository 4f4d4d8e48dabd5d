"""The one error every model route raises, shared by the registry and the loaders it calls."""

from __future__ import annotations


class ModelLoadError(Exception):
    """A model that cannot be used; the message is one line for the user."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
