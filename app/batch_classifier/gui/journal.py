"""The window's journal: its rows on disk as they arrive, so a kill or a crash loses none of them.

One file per window under the platform's application-data folder
(``QStandardPaths.AppDataLocation``/journal), one JSON line per batch,
flushed and synced as each batch arrives, by a thread of its own: a sync
can take a second on a busy disk, which the GUI thread must never wait for. A line cut short by a kill is
dropped when read, and only that batch is lost. Marker lines record an
export (``done``) and Clear (``clear``), and a person's correction of a
row's label (``correct``) has a line of its own; a clean close removes the file. A
``QLockFile`` beside it, held while the window lives, tells a journal whose
window is still open from one whose window died: only the second kind is
offered for restore at the next start, and the lock dies with the process,
so a ``kill -9`` leaves nothing that blocks.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from PySide6.QtCore import QLockFile, QStandardPaths

from ..engine.records import ImageResult, Prediction

SUFFIX = ".jsonl"
_ROWS, _DONE, _CLEAR, _CORRECT = "rows", "done", "clear", "correct"


def default_folder() -> Path:
    """Where journals live: e.g. ~/.local/share/BatchClassifier/Batch Classifier/journal on Linux."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(location) / "journal"


def _lock_for(path: Path) -> QLockFile:
    lock = QLockFile(str(path) + ".lock")
    lock.setStaleLockTime(0)  # only a dead owner makes a lock stale, never its age
    return lock


def _encode(result: ImageResult) -> list[object]:
    return [
        result.path, result.status, result.error, result.model, result.device, result.batch_size,
        [[p.label, p.confidence] for p in result.predictions], result.runtime, result.preprocess,
        result.corrected_label,
    ]


def _decode(cells: list[object]) -> ImageResult:
    """A journalled row; one written before rows kept ``runtime``, ``preprocess`` or a correction restores them empty."""
    path, status, error, model, device, batch_size, predictions, *later = cells
    runtime, preprocess, corrected_label = (*later, "", "", "")[:3]
    return ImageResult(
        index=0,
        path=str(path),
        status="ok" if status == "ok" else "error",
        predictions=tuple(Prediction(str(label), float(confidence)) for label, confidence in predictions),  # type: ignore[union-attr]
        error=str(error),
        model=str(model),
        device=str(device),
        batch_size=int(batch_size),  # type: ignore[arg-type]
        runtime=str(runtime),
        preprocess=str(preprocess),
        corrected_label=str(corrected_label),
    )


class Journal:
    """This window's journal. The file is created with the first rows: a window that never runs leaves none.

    Records are written in the order they are given, on the journal's own
    thread; a write that failed raises its ``OSError`` from the next call.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = folder / f"window-{stamp}-{os.getpid()}-{id(self):x}{SUFFIX}"
        self._lock = _lock_for(self.path)
        self._file: TextIO | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._last: Future[None] | None = None
        self._started = False

    def append(self, results: Sequence[ImageResult]) -> None:
        """One batch: one line, flushed and synced."""
        if results:
            self._submit(lambda: {"kind": _ROWS, "rows": [_encode(result) for result in results]})
            self._started = True

    def mark_done(self) -> None:
        """Everything so far was exported: nothing to offer unless more rows follow."""
        if self._started:
            self._submit(lambda: {"kind": _DONE})

    def record_correction(self, path: str, label: str) -> None:
        """A person set (or, with ``""``, took back) the label of ``path``'s row: not exported until the next export."""
        if self._started:
            self._submit(lambda: {"kind": _CORRECT, "path": path, "label": label})

    def mark_cleared(self) -> None:
        """Clear results: the rows so far are not to be restored."""
        if self._started:
            self._submit(lambda: {"kind": _CLEAR})

    def flush(self) -> None:
        """Wait until every record given so far is on disk."""
        if self._last is not None:
            self._last.result()

    def close(self, keep: bool) -> None:
        """End of the window: ``keep`` (closed by a signal) leaves the rows for the next start."""
        self._pool.shutdown(wait=True)
        if self._file is not None:
            self._file.close()
            self._file = None
            if not keep:
                self.path.unlink(missing_ok=True)
        self._lock.unlock()

    def _submit(self, record: Callable[[], dict[str, object]]) -> None:
        if self._last is not None and self._last.done():
            previous, self._last = self._last, None
            previous.result()  # a failed write is said once, then the journal tries again
        self._last = self._pool.submit(self._write, record)

    def _write(self, record: Callable[[], dict[str, object]]) -> None:
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not self._lock.tryLock(0):
                raise OSError(f"cannot lock the journal {self.path}")
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open for the window's life
        self._file.write(json.dumps(record()) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


@dataclass(frozen=True)
class Orphan:
    """A journal left by a window that did not close cleanly, with the rows it would restore."""

    path: Path
    rows: tuple[ImageResult, ...]
    modified: float


def read_rows(path: Path) -> tuple[tuple[ImageResult, ...], bool]:
    """The rows since the last Clear (one per path, the newest) and whether they were all exported.

    A correction is about the image, as in the table: a newer row of its
    path (a run again) keeps it, and only a later correction changes it.
    """
    newest: dict[str, ImageResult] = {}
    corrections: dict[str, str] = {}
    exported = False
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            try:
                record = json.loads(line)
                kind = record["kind"]
                rows = [_decode(cells) for cells in record["rows"]] if kind == _ROWS else []
                corrected = (str(record["path"]), str(record["label"])) if kind == _CORRECT else None
            except (ValueError, KeyError, TypeError):  # a line cut short by a kill: that batch is lost
                continue
            if kind == _CLEAR:
                newest.clear()
                corrections.clear()
            exported = kind == _DONE or (exported and not rows and corrected is None)
            for row in rows:
                newest.pop(row.path, None)
                newest[row.path] = row
                if row.corrected_label:
                    corrections[row.path] = row.corrected_label
            if corrected is not None:
                corrections[corrected[0]] = corrected[1]
    rows = (replace(row, corrected_label=corrections.get(row.path, "")) for row in newest.values())
    return tuple(rows), exported


def orphans(folder: Path) -> list[Orphan]:
    """Journals whose window died (their lock is free) and that hold rows not exported, oldest first."""
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else ():
        lock = _lock_for(path)
        if not lock.tryLock(0):
            continue  # its window is still open
        try:
            rows, exported = read_rows(path)
            modified = path.stat().st_mtime
        except OSError:
            continue
        finally:
            lock.unlock()
        if rows and not exported:
            found.append(Orphan(path, rows, modified))
        else:
            discard([path])
    return found


def discard(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
