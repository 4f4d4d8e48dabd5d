"""The warnings the application silences, set by its front ends and never on import.

Pillow warns about odd files (large images below the limit, corrupt EXIF,
truncated metadata) that the decoder either decodes anyway or turns into an
error row, and torchvision 0.29 says on every call that its codecs are
deprecated in favour of TorchCodec (nvjpeg through ``decode_jpeg`` still
works). In the application these would only reach a terminal nobody reads;
a host process that imports the engine keeps its own warning filters, so
nothing here runs at import time. Set once per process, at start, because
``warnings.catch_warnings`` is not safe across the decode threads.
"""

from __future__ import annotations

import warnings

from PIL import Image


def silence_decoder_warnings() -> None:
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    warnings.filterwarnings(
        "ignore", message="The image decoding and encoding capabilities of TorchVision", category=DeprecationWarning
    )
