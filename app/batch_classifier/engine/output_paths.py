"""Where a run may write, and writing there without ever destroying a user's file.

The command line's ``--csv``, ``bench --json/--plot`` and the window's Export
all go through here, so one set of rules decides (``shared/design.md``,
"Output paths"):

- ``-`` is standard output and ``/dev/null`` is accepted as it is;
- a path that exists and is not a regular file (a folder, a FIFO, a device)
  is refused, as is a path that is one of the inputs (resolved through
  symlinks and ``..``, and hard links by inode) or that the walk of an input
  folder would read as an image;
- an existing regular file is refused unless the caller replaces it
  (``--overwrite``, a confirmed Export) or continues it (``--resume``);
- a new file is created exclusively (``O_EXCL``), so two runs racing for one
  name cannot both get it;
- a replacement is written to a partial file beside the target and moved over
  it with ``os.replace`` once complete, so until that moment the old file is
  exactly as it was, and after a crash the partial file holds the new rows;
- the file being written is held under an advisory lock (``flock``) for the
  whole run, so a second writer is refused; the lock dies with the process,
  so a ``kill -9`` leaves nothing stale.

Every refusal is an ``OutputRefused`` whose message is one line for the user.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .regular_files import file_kind
from .sources import display_path, is_image_name, iter_sources

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; see lock_exclusive
    fcntl = None  # type: ignore[assignment]

STDOUT = "-"
"""The output path that means standard output, as in every Unix tool."""

EXISTS_HINT = "add --overwrite to replace it (the old file stays until the run completes) or --resume to continue it"
"""What the command line tells the owner of an existing file; other front ends pass their own."""

OutputKind = Literal["stdout", "devnull", "new", "replace", "append"]


class OutputRefused(Exception):
    """An output path that must not be written; the message is one line for the user."""


class OutputExists(OutputRefused):
    """The output is an existing regular file and the caller asked neither to replace nor to continue it."""


@dataclass(frozen=True)
class OutputPlan:
    """What writing to ``path`` will do, decided before anything is opened.

    ``new``: create it exclusively; ``replace``: write a partial file beside it
    and move that over it at the end; ``append``: continue the existing file.
    """

    path: str
    kind: OutputKind


def check_output(
    path: str,
    inputs: Sequence[str | os.PathLike[str]] = (),
    *,
    recursive: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    exists_hint: str = EXISTS_HINT,
) -> OutputPlan:
    """Decide how ``path`` may be written, or raise ``OutputRefused``; touches nothing.

    ``inputs`` are the files and folders the run reads (as given), walked
    with ``recursive`` as the run walks them. ``overwrite`` and ``resume``
    are exclusive: the front end rejects the pair as a usage error.
    """
    if overwrite and resume:
        raise ValueError("overwrite and resume are exclusive")
    if path == STDOUT:
        return OutputPlan(path, "stdout")
    if not path:
        raise OutputRefused("the output path is empty")
    shown = display_path(path)
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        status = None
    except OSError as error:
        raise OutputRefused(f"cannot write {shown}: {describe_error(error)}") from None
    if status is None:
        _check_new_file(path, shown)
    elif _is_devnull(status):
        return OutputPlan(path, "devnull")
    elif not stat.S_ISREG(status.st_mode):
        raise OutputRefused(f"{shown} is {file_kind(status.st_mode)}, not a file: refusing to write to it")
    _check_not_an_input(path, shown, status, inputs, recursive)
    if status is None:
        return OutputPlan(path, "new")
    if not (overwrite or resume):
        raise OutputExists(f"{shown} already exists: {exists_hint}")
    folder = os.path.dirname(os.path.realpath(path))
    if resume and not os.access(path, os.W_OK):
        raise OutputRefused(f"cannot write {shown}: permission denied")
    if overwrite and not os.access(folder, os.W_OK | os.X_OK):
        raise OutputRefused(f"cannot write {shown}: permission denied in {display_path(folder)}")
    return OutputPlan(path, "replace" if overwrite else "append")


def _check_new_file(path: str, shown: str) -> None:
    if os.path.islink(path):
        raise OutputRefused(f"{shown} is a symbolic link to a missing file: refusing to create a file through it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        what = "does not exist" if not os.path.lexists(folder) else "is not a folder"
        raise OutputRefused(f"cannot write {shown}: folder {display_path(folder)} {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputRefused(f"cannot write {shown}: permission denied in {display_path(folder)}")


def _is_devnull(status: os.stat_result) -> bool:
    try:
        return os.path.samestat(status, os.stat(os.devnull))
    except OSError:
        return False


def _check_not_an_input(
    path: str,
    shown: str,
    status: os.stat_result | None,
    inputs: Sequence[str | os.PathLike[str]],
    recursive: bool,
) -> None:
    """Refuse an output that is an input, or that the walk of an input folder would pick up as one.

    Resolved paths catch symlinks and ``..``; an existing output is also
    compared by inode with every file the inputs expand to, which catches a
    hard link to a photo under another name.
    """
    real = os.path.realpath(path)
    for given in inputs:
        given_path = os.fspath(given)
        given_real = os.path.realpath(given_path)
        if given_real == real:
            raise OutputRefused(f"{shown} is one of the inputs: refusing to write over it")
        if status is None and is_image_name(real) and os.path.isdir(given_path) and _walk_reaches(given_real, real, recursive):
            raise OutputRefused(
                f"{shown} is an image name inside the input folder {display_path(given_path)}: "
                "the run would read it as an input"
            )
    if status is None or not inputs:
        return
    for item in iter_sources(inputs, recursive):
        try:
            same = os.path.samestat(status, os.stat(item.path))
        except OSError:
            continue
        if same and os.path.realpath(item.path) == real:
            raise OutputRefused(f"{shown} is one of the inputs: refusing to write over it")
        if same:
            raise OutputRefused(
                f"{shown} is the same file as the input {display_path(item.path)} (a hard link): refusing to write over it"
            )


def _walk_reaches(folder: str, real: str, recursive: bool) -> bool:
    parent = os.path.dirname(real)
    if not recursive:
        return parent == folder
    try:
        return os.path.commonpath([folder, parent]) == folder
    except ValueError:  # different drives on Windows
        return False


def describe_error(error: OSError) -> str:
    """The reason an ``OSError`` gives, in a few words for a message line (``disk full`` for ENOSPC)."""
    if error.errno == errno.ENOSPC:
        return "disk full"
    return error.strerror or str(error)


def partial_path(target: str | os.PathLike[str]) -> Path:
    """A fresh name beside ``target`` for its replacement: ``out.csv`` -> ``out.partial-3f9a1c.csv``.

    Beside it, so ``os.replace`` stays on one file system and is atomic; the
    suffix is kept so the partial file opens like the target would.
    """
    target = Path(target)
    return target.with_name(f"{target.stem}.partial-{secrets.token_hex(3)}{target.suffix}")


def create_exclusive(path: str | os.PathLike[str]) -> int:
    """Create ``path`` for writing, failing if anything is there (mode 0666 less the umask, as ``open`` does)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o666)
    except FileExistsError:
        raise OutputRefused(f"{display_path(os.fspath(path))} appeared meanwhile: refusing to write over it") from None
    except OSError as error:
        raise OutputRefused(f"cannot write {display_path(os.fspath(path))}: {describe_error(error)}") from None


def lock_exclusive(fd: int, path: str | os.PathLike[str]) -> None:
    """Hold an advisory lock on ``fd`` until it is closed; refuse if another run holds one.

    ``flock`` locks belong to the open file, so they vanish when the process
    dies however it dies. Windows has no advisory lock; there the check is skipped.
    """
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputRefused(
            f"{display_path(os.fspath(path))} is being written by another batch-classifier run: "
            "wait for it to finish or choose another file"
        ) from None


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is out (a write may be short), raising on the first failure."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Replacement:
    """A partial file beside ``target`` that becomes ``target`` atomically on ``commit``.

    The old target is never opened for writing: it is locked (so no other
    run writes it meanwhile) and replaced in one rename once the partial file
    is complete and on disk. The new file keeps the old one's permissions.
    """

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = Path(target)
        self._target_fd = _open_for_lock(self.target)
        try:
            if self._target_fd is not None:
                lock_exclusive(self._target_fd, self.target)
            self.partial = partial_path(self.target)
            self.fd = create_exclusive(self.partial)
            lock_exclusive(self.fd, self.partial)
        except BaseException:
            self._close_target()
            raise

    def commit(self) -> None:
        """Flush the partial file to disk and move it over the target."""
        try:
            mode = os.stat(self.target).st_mode
        except OSError:
            mode = None
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(self.fd, stat.S_IMODE(mode))
        os.fsync(self.fd)
        os.replace(self.partial, self.target)
        fsync_folder(self.target.parent)
        os.close(self.fd)
        self._close_target()

    def abandon(self, keep: bool) -> None:
        """Close without replacing; ``keep`` leaves the partial file (its rows can be continued), else it goes."""
        os.close(self.fd)
        self._close_target()
        if not keep:
            try:
                os.unlink(self.partial)
            except OSError:
                pass

    def _close_target(self) -> None:
        if self._target_fd is not None:
            os.close(self._target_fd)
            self._target_fd = None


def _open_for_lock(path: Path) -> int | None:
    """An fd on an existing ``path`` to hold its lock while it is replaced; None if it does not exist."""
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise OutputRefused(f"cannot read {display_path(os.fspath(path))}: {describe_error(error)}") from None


@contextmanager
def replacing(target: str | os.PathLike[str]) -> Iterator[Replacement]:
    """Write ``target`` whole or not at all: the body writes ``replacement.fd`` (or ``.partial``).

    On a normal exit the partial file replaces the target; on an exception it
    is removed and the target is left exactly as it was.
    """
    replacement = Replacement(target)
    try:
        yield replacement
    except BaseException:
        replacement.abandon(keep=False)
        raise
    replacement.commit()


def write_replacing(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (the old file, if any, survives any failure before the end)."""
    with replacing(target) as replacement:
        write_all(replacement.fd, data)
