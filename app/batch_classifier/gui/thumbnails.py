"""Thumbnails: compressed in the worker, turned into pixmaps in the GUI thread only when painted.

The engine hands each row a 64 px RGB array. Kept raw for a 100,000-image
run that is 1.2 GB; as a JPEG it is about 2 KB, so the worker encodes it
(QImage is safe off the GUI thread, QPixmap is not) and the table decodes
only the rows on screen, through a small LRU of pixmaps.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QImage, QPixmap

if TYPE_CHECKING:
    import torch

_FORMAT = "JPG"
_QUALITY = 85
CACHE_SIZE = 512
"""Pixmaps kept decoded: a few screens of rows, so scrolling back is instant."""


def encode_thumbnail(pixels: np.ndarray | torch.Tensor | None) -> bytes | None:
    """HWC uint8 RGB array or host tensor -> JPEG bytes. Worker thread (QImage only, no QPixmap)."""
    if pixels is None or pixels.ndim != 3 or pixels.shape[2] != 3:
        return None
    array = np.ascontiguousarray(pixels)  # numpy from Pillow, a host tensor from the GPU decoder
    height, width, _ = array.shape
    image = QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, _FORMAT, _QUALITY)
    buffer.close()
    return bytes(data.data())


class PixmapCache:
    """Decodes thumbnail bytes into pixmaps on demand, keeping the most recently painted. GUI thread."""

    def __init__(self, capacity: int = CACHE_SIZE) -> None:
        self._capacity = capacity
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()

    def pixmap(self, key: int, encoded: bytes | None) -> QPixmap | None:
        if encoded is None:
            return None
        cached = self._pixmaps.get(key)
        if cached is not None:
            self._pixmaps.move_to_end(key)
            return cached
        pixmap = QPixmap()
        if not pixmap.loadFromData(encoded, _FORMAT):
            return None
        self._pixmaps[key] = pixmap
        if len(self._pixmaps) > self._capacity:
            self._pixmaps.popitem(last=False)
        return pixmap

    def forget(self, key: int) -> None:
        """Drop one pixmap: its row now holds another image."""
        self._pixmaps.pop(key, None)

    def clear(self) -> None:
        self._pixmaps.clear()
