"""Reading a small file the user names (a labels file, a CSV to resume, a run record) without hanging or exhausting memory.

``--labels /dev/zero`` would read until memory runs out, a FIFO would block
forever, and a folder raises ``IsADirectoryError``. Such paths are refused
before anything is read: the file is opened without blocking, checked with
``fstat`` on that same descriptor (no window for a swap), and read up to a
bound.
"""

from __future__ import annotations

import os
import stat

from .sources import display_path


class NotARegularFile(ValueError):
    """A path that is a folder, a FIFO, a device or a socket; the message is one line for the user."""


class FileTooLarge(ValueError):
    """A file bigger than the reader's bound; the message is one line for the user."""


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words: 'a folder', 'a named pipe (FIFO)', 'a device'..."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], flags: int = os.O_RDONLY) -> int:
    """An fd on ``path``, which must be a regular file (raises NotARegularFile, or the OSError of opening it)."""
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"{display_path(os.fspath(path))} is {file_kind(mode)}, not a file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The whole of ``path``, a regular file of at most ``limit`` bytes (FileTooLarge beyond)."""
    fd = open_regular(path)
    try:
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileTooLarge(f"{display_path(os.fspath(path))} is larger than {limit:,} bytes: not a file of this kind")
    return data
