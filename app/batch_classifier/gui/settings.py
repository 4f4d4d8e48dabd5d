"""Every setting the window remembers, with its type and default, in one place.

QSettings hands back strings from INI files and platform types from the
registry or plists; reading each key with ``type=`` through one typed table
means a stale or hand-edited value cannot crash the window or turn ``"8"``
into a batch size (the approach of Picard's ``picard/config.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from PySide6.QtCore import QByteArray, QSettings

from ..engine.choices import DEFAULT_MAX_WAIT_MS
from ..engine.fidelity import DEFAULT_PREPROCESS
from ..engine.models import DEFAULT_MODEL

T = TypeVar("T")


@dataclass(frozen=True)
class Setting(Generic[T]):
    key: str
    default: T
    kind: type


GEOMETRY: Setting[QByteArray] = Setting("window/geometry", QByteArray(), QByteArray)
WINDOW_STATE: Setting[QByteArray] = Setting("window/state", QByteArray(), QByteArray)
MAIN_SPLITTER: Setting[QByteArray] = Setting("window/main_splitter", QByteArray(), QByteArray)
RESULTS_SPLITTER: Setting[QByteArray] = Setting("window/results_splitter", QByteArray(), QByteArray)
MODEL: Setting[str] = Setting("run/model", DEFAULT_MODEL, str)
LABELS: Setting[str] = Setting("run/labels", "", str)
"""Labels file for a model file the user opened; empty for registry models."""
BATCH_SIZE: Setting[int] = Setting("run/batch_size", 8, int)
"""Until the user picks one, the loaded device's own default replaces this."""
MAX_WAIT_MS: Setting[float] = Setting("run/max_wait_ms", DEFAULT_MAX_WAIT_MS, float)
DEVICE: Setting[str] = Setting("run/device", "auto", str)
RAY_ADDRESS: Setting[str] = Setting("run/ray_address", "", str)
"""The Ray cluster the "Ray cluster" device attaches to; empty for RAY_ADDRESS, else a local Ray instance."""
PRECISION: Setting[str] = Setting("run/precision", "auto", str)
DECODE: Setting[str] = Setting("run/decode", "auto", str)
PREPROCESS: Setting[str] = Setting("run/preprocess", DEFAULT_PREPROCESS, str)
RUNTIME: Setting[str] = Setting("run/runtime", "auto", str)
# Each file dialog starts where it was last used: an export's folder is not where the photos are.
OPEN_FILES_FOLDER: Setting[str] = Setting("files/open_files_folder", str(Path.home()), str)
OPEN_FOLDER_FOLDER: Setting[str] = Setting("files/open_folder_folder", str(Path.home()), str)
EXPORT_FOLDER: Setting[str] = Setting("files/export_folder", str(Path.home()), str)
MODEL_FOLDER: Setting[str] = Setting("files/model_folder", str(Path.home()), str)
SORT_FOLDER: Setting[str] = Setting("files/sort_folder", "", str)
"""Where "Sort into folders…" sorted last; empty: a "sorted" folder beside the export folder."""


class Settings:
    """Typed access to a QSettings store; tests pass one backed by a temporary INI file."""

    def __init__(self, store: QSettings | None = None) -> None:
        self._store = store if store is not None else QSettings()

    def get(self, setting: Setting[T]) -> T:
        value = self._store.value(setting.key, setting.default, type=setting.kind)
        return setting.default if value is None else value

    def set(self, setting: Setting[T], value: T) -> None:
        self._store.setValue(setting.key, value)

    def has(self, setting: Setting[object]) -> bool:
        return self._store.contains(setting.key)

    def sync(self) -> None:
        self._store.sync()
