"""Fetch torchvision weights into torch's own cache, with progress the caller can show.

The files go exactly where ``torchvision`` would put them
(``$TORCH_HOME/hub/checkpoints``), so a user who already has them, or copies
them there by hand on an offline machine, is never asked to download again.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import torch

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes done, bytes total or None) while a file downloads."""

_HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")


class WeightsUnavailable(Exception):
    """The weights are not on disk and cannot be fetched; the message says where to put them."""


def checkpoint_path(url: str) -> Path:
    """Where torch's hub keeps the file for ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def fetch(url: str, on_progress: ProgressCallback | None = None, timeout_s: float = 30.0) -> Path:
    """The cached file for ``url``, downloading it first if needed.

    The download lands in a temporary file beside the target and is renamed
    only after its SHA-256 matches the prefix in its name, so an interrupted
    or tampered download never poses as the real weights.
    """
    target = checkpoint_path(url)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    unavailable = (
        f"weights not available offline: expected {target} "
        f"(download {url} and put it there, or connect to the internet)"
    )
    handle, partial_name = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".partial")
    partial = Path(partial_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress(done, total)
        expected = _HASH_IN_NAME.search(target.name)
        if expected and not digest.hexdigest().startswith(expected.group(1)):
            raise WeightsUnavailable(f"downloaded {url} but its checksum does not match; not using it")
        partial.replace(target)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise WeightsUnavailable(f"{unavailable}: {error}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target
