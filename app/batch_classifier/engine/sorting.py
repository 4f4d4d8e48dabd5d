"""Sort classified images into one folder per label, and undo exactly that.

A sort only ever creates: a copy, a hard link or a symbolic link per image,
under ``DIR/<label>/``, with rows below the threshold in ``DIR/_unknown/`` and
error rows in ``DIR/_errors/`` (no label's folder starts with ``_``). It
never moves, replaces or deletes a user's file: a name already taken gets a
suffix (``coffee (2).png``), created with exclusive creation so even a file
appearing meanwhile is not overwritten; a source missing at sort time is
skipped and reported.

Everything created is recorded, as it is created, in a manifest (JSON
lines, flushed per entry, so an interrupted sort can still be undone). Undo
removes an entry only if it is still what the sort made (same inode, size
and modification time; a link still pointing where it did), then removes
the folders the sort created if they are empty. A file the user added or
changed since is kept, and said so.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from .csv_output import file_path, read_rows
from .records import ImageResult

Mode = Literal["copy", "hardlink", "symlink"]
MODES: tuple[Mode, ...] = ("copy", "hardlink", "symlink")
UNKNOWN_FOLDER = "_unknown"
ERRORS_FOLDER = "_errors"
MANIFEST_KIND = "batch-classifier sort manifest"
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]')
_WINDOWS_RESERVED = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)
_MAX_NAME_BYTES = 200
_COPY_CHUNK = 1 << 20

Progress = Callable[[int, int], None]


class SortError(Exception):
    """A sort or undo that cannot start; the message is one line for the user."""


@dataclass(frozen=True)
class SortItem:
    """One image to place: the file, and the folder (below DIR) it goes to."""

    source: str
    folder: str


@dataclass(frozen=True)
class Placed:
    source: str
    target: str
    folder: str
    renamed: bool
    """Whether the image's own name was taken and a suffix was added."""


@dataclass(frozen=True)
class Skipped:
    """An image not placed, or on undo an entry left in place, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class SortOutcome:
    placed: tuple[Placed, ...]
    skipped: tuple[Skipped, ...]
    manifest: Path | None
    """Where the record of what was created is; None for a dry run."""
    dry_run: bool
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        """Images per folder, biggest first, for the summary."""
        return dict(Counter(placed.folder for placed in self.placed).most_common())


@dataclass(frozen=True)
class UndoOutcome:
    removed_files: int
    removed_folders: int
    kept: tuple[Skipped, ...]
    """Entries left in place and why: changed since the sort, or folders holding other files."""
    already_gone: int
    manifest_removed: bool


def label_folder(label: str) -> str:
    """A folder name for ``label`` that is valid on every platform and never one of the ``_`` folders."""
    name = _UNSAFE.sub("_", label).strip().rstrip(".")
    while len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        name = name[:-1]
    if not name or name.startswith("_") or _WINDOWS_RESERVED.fullmatch(name):
        name = f"label-{name}"
    return name


def folder_for(row: dict[str, str], min_confidence: float = 0.0) -> str:
    """Where a CSV row's image goes: its corrected label, else ``_errors``, ``_unknown`` or its label."""
    corrected = row.get("corrected_label", "")
    if corrected:
        return label_folder(corrected)
    if row.get("status") != "ok" or not row.get("label"):
        return ERRORS_FOLDER
    if row.get("top1_label"):
        return UNKNOWN_FOLDER
    try:
        confidence = float(row.get("confidence", ""))
    except ValueError:
        return ERRORS_FOLDER
    return UNKNOWN_FOLDER if confidence < min_confidence else label_folder(row["label"])


def items_from_results(results: Iterable[ImageResult]) -> list[SortItem]:
    """The window's rows and their folders, by the same rule as a CSV's (``folder_for``); the threshold is the rows' own."""
    return [
        SortItem(
            result.path,
            folder_for({
                "status": result.status,
                "label": result.label,
                "confidence": "" if result.confidence is None else repr(result.confidence),
                "top1_label": result.top1_label,
                "corrected_label": result.corrected_label,
            }),
        )
        for result in results
    ]


def items_from_csv(csv_path: str | os.PathLike[str], min_confidence: float = 0.0) -> list[SortItem]:
    """The images of a results CSV and their folders; the newest row of a path counts (as after ``--resume``)."""
    try:
        columns, rows = read_rows(csv_path)
    except FileNotFoundError:
        raise SortError(f"results file not found: {csv_path}") from None
    except OSError as error:
        raise SortError(f"cannot read {csv_path}: {error.strerror or error}") from None
    except csv.Error as error:
        raise SortError(f"{csv_path} is not a results CSV ({error})") from None
    if not {"path", "status", "label", "confidence"} <= set(columns):
        raise SortError(f"{csv_path} is not a results CSV of batch-classifier (no path,status,label,confidence)")
    newest = {row["path"]: row for row in rows}
    return [SortItem(file_path(path), folder_for(row, min_confidence)) for path, row in newest.items()]


def _candidates(folder: Path, name: str) -> Iterator[Path]:
    """``name``, then ``stem (2).ext``, ``stem (3).ext``, ... in ``folder``."""
    yield folder / name
    stem, suffix = os.path.splitext(name)
    number = 2
    while True:
        yield folder / f"{stem} ({number}){suffix}"
        number += 1


def _check_source(source: str) -> os.stat_result | str:
    """The source's status, or why it cannot be placed."""
    try:
        status = os.stat(source)
    except FileNotFoundError:
        return "missing at sort time"
    except OSError as error:
        return f"cannot read: {error.strerror or error}"
    return status if stat.S_ISREG(status.st_mode) else "not a regular file"


def _create(source: str, target: Path, mode: Mode) -> None:
    """Make ``target`` from ``source`` without ever replacing anything; FileExistsError when the name is taken."""
    if mode == "hardlink":
        os.link(source, target)
    elif mode == "symlink":
        os.symlink(os.path.abspath(source), target)
    else:
        with open(source, "rb") as reading:
            with open(target, "xb") as writing:
                try:
                    shutil.copyfileobj(reading, writing, _COPY_CHUNK)
                except BaseException:  # a full disk or Ctrl-C: remove the half copy this sort created
                    writing.close()
                    os.unlink(target)
                    raise
        try:
            shutil.copystat(source, target)
        except OSError:  # times and permissions are a courtesy; the copy itself is complete and recorded
            pass


def _identity(path: Path) -> dict[str, object]:
    """What undo checks before removing ``path``: it is still the entry this sort created."""
    status = os.lstat(path)
    identity: dict[str, object] = {
        "dev": status.st_dev, "ino": status.st_ino, "size": status.st_size, "mtime_ns": status.st_mtime_ns,
    }
    if stat.S_ISLNK(status.st_mode):
        identity["link"] = os.readlink(path)
        del identity["mtime_ns"]
    return identity


class _Manifest:
    """The record of what a sort created, one JSON line per entry, flushed as each is made."""

    def __init__(self, folder: Path, header: dict[str, object]) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path, self._file = self._open_new(folder, f"sort-manifest-{stamp}.jsonl")
        self.write(header)

    @staticmethod
    def _open_new(folder: Path, name: str) -> tuple[Path, IO[str]]:
        for candidate in _candidates(folder, name):
            try:
                return candidate, open(candidate, "x", encoding="utf-8")
            except FileExistsError:
                continue
        raise AssertionError("unreachable")

    def write(self, entry: dict[str, object]) -> None:
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


@dataclass
class _Plan:
    """Names taken during a dry run, which creates nothing but must predict the suffixes."""

    taken: set[Path] = field(default_factory=set)

    def claim(self, folder: Path, name: str) -> Path:
        for candidate in _candidates(folder, name):
            if candidate not in self.taken and not os.path.lexists(candidate):
                self.taken.add(candidate)
                return candidate
        raise AssertionError("unreachable")


def sort_images(
    items: Sequence[SortItem],
    into: str | os.PathLike[str],
    mode: Mode = "copy",
    dry_run: bool = False,
    on_progress: Progress | None = None,
    source_csv: str = "",
    stop: Callable[[], bool] = lambda: False,
) -> SortOutcome:
    """Place each item under ``into``; see the module docstring for what is and is not touched."""
    into = Path(os.path.abspath(into))
    if os.path.lexists(into) and not into.is_dir():
        raise SortError(f"--into {into} exists and is not a folder")
    if mode not in MODES:
        raise SortError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    if dry_run:
        return _dry_run(items, into, on_progress)
    created_into = not into.exists()
    try:
        into.mkdir(parents=True, exist_ok=True)
        manifest = _Manifest(into, {
            "kind": MANIFEST_KIND, "version": 1, "into": str(into), "mode": mode, "csv": source_csv,
            "created_into": created_into, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
    except OSError as error:
        raise SortError(f"cannot write in {into}: {error.strerror or error}") from None
    placed: list[Placed] = []
    skipped: list[Skipped] = []
    made_folders: set[Path] = set()
    interrupted = False
    try:
        for done, item in enumerate(items, 1):
            if stop():
                interrupted = True
                break
            outcome = _place(item, into, mode, manifest, made_folders)
            (placed if isinstance(outcome, Placed) else skipped).append(outcome)
            if on_progress is not None:
                on_progress(done, len(items))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        manifest.close()
    return SortOutcome(tuple(placed), tuple(skipped), manifest.path, dry_run=False, interrupted=interrupted)


def _place(item: SortItem, into: Path, mode: Mode, manifest: _Manifest, made_folders: set[Path]) -> Placed | Skipped:
    checked = _check_source(item.source)
    if isinstance(checked, str):
        return Skipped(item.source, checked)
    folder = into / item.folder
    try:
        if folder not in made_folders and not folder.is_dir():
            if os.path.lexists(folder):
                return Skipped(item.source, f"{folder} exists and is not a folder")
            folder.mkdir()
            manifest.write({"folder": str(folder)})
        made_folders.add(folder)
        name = os.path.basename(item.source)
        for number, target in enumerate(_candidates(folder, name)):
            try:
                _create(item.source, target, mode)
            except FileExistsError:
                continue
            manifest.write({"file": str(target), "source": item.source, "mode": mode, **_identity(target)})
            return Placed(item.source, str(target), item.folder, renamed=number > 0)
    except OSError as error:
        return Skipped(item.source, _failure(error, mode))
    raise AssertionError("unreachable")


def _failure(error: OSError, mode: Mode) -> str:
    if mode == "hardlink" and error.errno == errno.EXDEV:
        return "cannot hard-link across file systems (use --mode copy or symlink)"
    return f"cannot {'copy' if mode == 'copy' else 'link'}: {error.strerror or error}"


def _dry_run(items: Sequence[SortItem], into: Path, on_progress: Progress | None) -> SortOutcome:
    plan = _Plan()
    placed: list[Placed] = []
    skipped: list[Skipped] = []
    for done, item in enumerate(items, 1):
        checked = _check_source(item.source)
        if isinstance(checked, str):
            skipped.append(Skipped(item.source, checked))
        else:
            name = os.path.basename(item.source)
            target = plan.claim(into / item.folder, name)
            placed.append(Placed(item.source, str(target), item.folder, renamed=target.name != name))
        if on_progress is not None:
            on_progress(done, len(items))
    return SortOutcome(tuple(placed), tuple(skipped), None, dry_run=True)


def _read_manifest(path: Path) -> tuple[dict[str, object], list[dict[str, object]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SortError(f"manifest not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SortError(f"cannot read manifest {path}: {error}") from None
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a last line cut short by a crash: what it named was not recorded as made
    if not entries or not isinstance(entries[0], dict) or entries[0].get("kind") != MANIFEST_KIND:
        raise SortError(f"{path} is not a sort manifest of batch-classifier")
    return entries[0], [entry for entry in entries[1:] if isinstance(entry, dict)]


def _still_ours(entry: dict[str, object]) -> str:
    """Why the entry must be kept, or ``""`` when it is exactly what the sort created and removing it loses nothing.

    A hard link whose original name is gone, or a copy whose original is
    gone, may be the only one of that photo left: it is kept.
    """
    target = Path(str(entry["file"]))
    recorded = {key: entry[key] for key in ("dev", "ino", "size", "mtime_ns", "link") if key in entry}
    now = _identity(target)
    if now.get("ino") != recorded.get("ino") or now.get("dev") != recorded.get("dev"):
        return "replaced since the sort (another file has its name): kept"
    if now != recorded:
        return "changed since the sort: kept"
    if entry.get("mode") == "hardlink" and os.lstat(target).st_nlink < 2:
        return "the only name left for this photo (its original is gone): kept"
    if entry.get("mode") == "copy" and not os.path.exists(str(entry.get("source", ""))):
        return f"its original {entry.get('source')} is gone, so this copy may be the only one: kept"
    return ""


def undo_sort(manifest_path: str | os.PathLike[str], on_progress: Progress | None = None) -> UndoOutcome:
    """Remove what the sort recorded in ``manifest_path``, and nothing else."""
    path = Path(manifest_path)
    header, entries = _read_manifest(path)
    files = [entry for entry in entries if "file" in entry]
    folders = [Path(str(entry["folder"])) for entry in entries if "folder" in entry]
    kept: list[Skipped] = []
    removed = gone = 0
    for done, entry in enumerate(reversed(files), 1):
        target = str(entry["file"])
        try:
            reason = _still_ours(entry)
            if reason:
                kept.append(Skipped(target, reason))
            else:
                os.unlink(target)
                removed += 1
        except FileNotFoundError:
            gone += 1
        except OSError as error:
            kept.append(Skipped(target, f"cannot remove: {error.strerror or error}"))
        if on_progress is not None:
            on_progress(done, len(files))
    manifest_removed = False
    if not kept:
        path.unlink()
        manifest_removed = True
    into = Path(str(header.get("into", "")))
    made = [*reversed(folders), *([into] if header.get("created_into") else [])]
    removed_folders = 0
    for folder in made:
        removed_folders += _remove_if_empty(folder, kept)
    return UndoOutcome(removed, removed_folders, tuple(kept), gone, manifest_removed)


def _remove_if_empty(folder: Path, kept: list[Skipped]) -> int:
    try:
        folder.rmdir()
        return 1
    except FileNotFoundError:
        return 0
    except OSError:
        kept.append(Skipped(str(folder), "folder holds files the sort did not create: kept"))
        return 0


def describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{folder}/ {count:,}" for folder, count in counts.items()) or "nothing"


def describe_skipped(skipped: Iterable[Skipped], limit: int = 20) -> list[str]:
    """One line per skipped or kept entry, the first ``limit`` of them, then how many more."""
    entries = list(skipped)
    lines = [f"  {entry.path}: {entry.reason}" for entry in entries[:limit]]
    if len(entries) > limit:
        lines.append(f"  ... and {len(entries) - limit:,} more")
    return lines
