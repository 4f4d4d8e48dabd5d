"""Turn what the user named (files, folders) into a lazy, ordered stream of image paths.

Lazy because a dropped folder may hold 100,000 files and the first batch
should start long before the walk ends. Every file the user names explicitly
comes out, whatever its extension or state, so it gets a row (an error row if
it is not an image); files found by walking a folder are filtered by extension.
A folder that cannot be listed has no rows to give, so it is reported instead
(``UnreadableFolder``), once, with the reason: a skipped subtree is never silent.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass

from .wording import counted

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)


@dataclass(frozen=True)
class SourceItem:
    """One input to classify, numbered in the order rows will appear."""

    index: int
    path: str


@dataclass(frozen=True)
class UnreadableFolder:
    """A folder the walk could not list, and why: its images (if any) have no rows."""

    path: str
    reason: str

    def describe(self) -> str:
        """The warning line front ends show, one per folder."""
        return f"cannot read folder '{display_path(self.path)}': {self.reason}"


UnreadableCallback = Callable[[UnreadableFolder], None]


def display_path(path: str) -> str:
    """The path as valid UTF-8 text: bytes the file system holds that are not UTF-8 become ``\\xNN``.

    This is the form rows, CSV files and ``--resume`` use, so a name that
    cannot be decoded still round-trips through them. It does the same for
    any text that may quote such a name, such as an error message.
    """
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _walk(
    folder: str,
    recursive: bool,
    seen_dirs: set[tuple[int, int]],
    on_unreadable: UnreadableCallback | None,
    on_reached_again: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """Yield image files below ``folder`` depth first in name order, never entering a folder twice.

    ``seen_dirs`` holds (device, inode) of folders entered so far, which both
    breaks symlink loops and skips a folder reached by two routes; each such
    route is told to ``on_reached_again``. The walk
    keeps its own stack rather than recursing, so a tree nested thousands of
    levels deep cannot raise RecursionError in the middle of a run.
    """
    stack = [_listing(folder, seen_dirs, on_unreadable, on_reached_again)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
        elif _is_dir(entry):
            if recursive:
                stack.append(_listing(entry.path, seen_dirs, on_unreadable, on_reached_again))
        elif is_image_name(entry.name):
            yield entry.path


def _listing(
    folder: str,
    seen_dirs: set[tuple[int, int]],
    on_unreadable: UnreadableCallback | None,
    on_reached_again: Callable[[str], None] | None,
) -> Iterator[os.DirEntry[str]]:
    """The entries of ``folder`` in name order; nothing if it was entered before or cannot be read.

    A folder that cannot be read is told to ``on_unreadable``; one entered
    before is told to ``on_reached_again`` (it was listed, or reported, the first time).
    """
    try:
        identity = os.stat(folder)
        key = (identity.st_dev, identity.st_ino)
        if key in seen_dirs:
            if on_reached_again is not None:
                on_reached_again(folder)
            return iter(())
        seen_dirs.add(key)
        with os.scandir(folder) as scan:
            return iter(sorted(scan, key=lambda entry: entry.name))
    except OSError as error:
        if on_unreadable is not None:
            on_unreadable(UnreadableFolder(folder, _folder_failure(error)))
        return iter(())


def _folder_failure(error: OSError) -> str:
    """Why a folder could not be listed, in words for the user."""
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.ENOENT:
        return "it no longer exists"
    if error.errno == errno.ENOTDIR:
        return "it is no longer a folder"
    if error.errno == errno.ENAMETOOLONG:
        return "its path is longer than the system allows"
    if error.strerror:
        return error.strerror[:1].lower() + error.strerror[1:]
    return " ".join(str(error).split()) or type(error).__name__


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Whether to walk into ``entry``: a symlink loop or a vanished entry is not a folder."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def iter_sources(
    paths: Iterable[str | os.PathLike[str]],
    recursive: bool = True,
    skip: Container[str] = frozenset(),
    on_unreadable: UnreadableCallback | None = None,
    on_duplicate: Callable[[str], None] | None = None,
) -> Iterator[SourceItem]:
    """Expand ``paths`` into numbered items, each real file once.

    The same file named twice (or named and also found in a named folder, or
    reached through a symlink) yields one row, under the first name met:
    duplicates would only make the CSV disagree with itself. ``on_duplicate``
    hears of every other name, so the drop is counted and said, never silent.
    A folder reached again (named twice, a symlink to a folder walked
    already, a symlink back up the tree) is walked once more after
    everything else, with a fresh record of the folders it enters, so its
    files are counted as the duplicates they are and a symlink cycle is gone
    round once, never forever.
    ``skip`` holds files already done (``--resume``) as ``os.path.realpath``
    resolves them, so a path spelled differently from the earlier run still
    matches; those are not duplicates. ``on_unreadable`` hears of each folder
    that could not be listed, as the walk meets it.
    """
    seen_files: set[str] = set()
    seen_dirs: set[tuple[int, int]] = set()
    reached_again: list[str] = []

    def candidates() -> Iterator[str]:
        for given in paths:
            given_path = os.fspath(given)
            if os.path.isdir(given_path):
                yield from _walk(given_path, recursive, seen_dirs, on_unreadable, reached_again.append)
            else:
                yield given_path
        for folder in reached_again:  # a folder it could not read was said the first time
            yield from _walk(folder, recursive, set(), None)

    index = 0
    for path in candidates():
        identity = os.path.realpath(path)
        if identity in seen_files:
            if on_duplicate is not None:
                on_duplicate(path)
            continue
        if identity in skip:
            continue
        seen_files.add(identity)
        yield SourceItem(index, path)
        index += 1


class SourceWalk:
    """One walk of a run's inputs: its items, and what it met on the way (unreadable folders, duplicates).

    ``has_items`` walks only as far as the first image, so a front end can
    refuse a run with nothing to classify (and create no CSV) before it
    starts, and the run then goes on with the same walk from there: the
    inputs are never walked twice one walk after the other. Iterate once.
    """

    def __init__(
        self, paths: Sequence[str | os.PathLike[str]], recursive: bool = True, skip: Container[str] = frozenset()
    ) -> None:
        self.paths = tuple(paths)
        self.recursive = recursive
        self.skip = skip
        """What it walks, as given: what a count alongside (``BackgroundCount``) walks too."""
        self.unreadable: list[UnreadableFolder] = []
        self._duplicates: list[str] = []
        self._items = iter_sources(self.paths, recursive, skip, self.unreadable.append, self._duplicates.append)
        self._first: list[SourceItem] = []

    @property
    def duplicates(self) -> int:
        """Inputs left out so far because an earlier one is the same file."""
        return len(self._duplicates)

    def has_items(self) -> bool:
        if not self._first:
            self._first.extend(itertools.islice(self._items, 1))
        return bool(self._first)

    def __iter__(self) -> Iterator[SourceItem]:
        return itertools.chain(self._first, self._items)


def duplicates_note(count: int) -> str:
    """The one wording for inputs left out as another name of a file already given (the summary's)."""
    return f"{count:,} skipped as duplicate{'s' if count > 1 else ''} of the same file"


def no_images_message(
    paths: Sequence[str | os.PathLike[str]],
    recursive: bool = True,
    unreadable: Sequence[UnreadableFolder] = (),
) -> str:
    """Why a run found nothing to classify, for the user: where it looked and what for.

    When folders could not be read, that is the reason given: they may well
    hold images, so "no images found" would be false.
    """
    named = [f"'{display_path(os.fspath(path))}'" for path in paths]
    where = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
    if unreadable:
        more = len(unreadable) - 1
        others = f" (and {counted(more, 'more folder')} that could not be read)" if more else ""
        return f"Nothing to classify in {where}: {unreadable[0].describe()}{others}"
    scope = "" if recursive else " (subfolders not searched)"
    return f"No images found in {where}{scope}: looked for {', '.join(sorted(IMAGE_EXTENSIONS))}"


def count_sources(
    paths: Iterable[str | os.PathLike[str]],
    recursive: bool = True,
    skip: Container[str] = frozenset(),
    stop: threading.Event | None = None,
    on_unreadable: UnreadableCallback | None = None,
) -> int:
    """How many items ``iter_sources`` will yield: a walk without decoding, for progress and ETA.

    Once ``stop`` is set the walk ends early, and the count is only what it had reached.
    """
    total = 0
    for _ in iter_sources(paths, recursive, skip, on_unreadable):
        if stop is not None and stop.is_set():
            break
        total += 1
    return total


class BackgroundCount:
    """Counts what ``iter_sources`` will yield on a thread of its own, so a run need not wait for the walk.

    ``on_total`` gets the count when the walk ends. Leaving the ``with`` block
    stops a walk still going: a cancelled run should not go on reading a
    network share, nor wait long for one stuck in a slow call. A walk that
    fails says nothing here; the run's own walk meets the same failure and
    reports it.
    """

    STOP_WAIT_S = 1.0

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        recursive: bool,
        on_total: Callable[[int], None],
        skip: Container[str] = frozenset(),
    ) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._count, args=(paths, recursive, skip, on_total), name="count-sources", daemon=True
        )

    def _count(
        self,
        paths: Sequence[str | os.PathLike[str]],
        recursive: bool,
        skip: Container[str],
        on_total: Callable[[int], None],
    ) -> None:
        try:
            total = count_sources(paths, recursive, skip, stop=self._stop)
        except Exception:  # noqa: BLE001 - see the class docstring
            return
        if not self._stop.is_set():
            on_total(total)

    def __enter__(self) -> BackgroundCount:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.STOP_WAIT_S)
