"""Folder trees that cannot be walked whole, built at test time: for the warnings a walk must give.

``build_unreadable_tree(root, monkeypatch)`` makes a folder with two good
images and two sub-folders that cannot be listed: one whose permission is
denied, one whose path is longer than the system allows. The conftest
fixture ``unreadable_tree`` builds one per test.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import write_colour_images

PATH_MAX = os.pathconf("/", "PC_PATH_MAX") if hasattr(os, "pathconf") else 4096


@dataclass(frozen=True)
class UnreadableTree:
    root: Path
    images: tuple[str, ...]
    """The images a walk of ``root`` can reach, in walk order."""
    locked: Path
    """A folder whose listing is refused (permission denied); it holds an image no row can be made for."""
    too_long: Path
    """The first folder down a chain whose path is longer than PATH_MAX."""

    @property
    def unreadable(self) -> tuple[str, ...]:
        """The folders a walk of ``root`` cannot list, in walk order."""
        return (str(self.too_long), str(self.locked))


def deny_listing(monkeypatch: pytest.MonkeyPatch, folder: Path) -> str:
    """Make ``folder`` unlistable; returns how: ``chmod`` or ``emulated``.

    As root, mode 000 does not stop ``scandir``, so listing that one folder
    is made to fail with EACCES the way the kernel would for anyone else.
    """
    if os.geteuid() != 0:
        folder.chmod(0)
        return "chmod"
    denied = os.path.abspath(folder)
    real_scandir = os.scandir

    def scandir(target=".", *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(target, (str, os.PathLike)) and os.path.abspath(os.fspath(target)) == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(target))
        return real_scandir(target, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    return "emulated"


def make_too_long_folder(parent: Path) -> Path:
    """A chain of folders under ``parent`` until one's path is longer than PATH_MAX; returns that one.

    Built relative to open folder descriptors, the only way to make it: the
    kernel refuses the full path to every call, and so would any walk that
    names it. An image at the bottom would need a row if it could be reached.
    """
    parent.mkdir(parents=True, exist_ok=True)
    name = "d" * 200
    depth = (PATH_MAX - len(str(parent))) // (len(name) + 1) + 1
    descriptor = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=descriptor)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = inner
        image = os.open("unreachable.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=descriptor)
        os.close(image)
    finally:
        os.close(descriptor)
    deepest = parent.joinpath(*[name] * depth)
    assert len(str(deepest)) > PATH_MAX and len(str(deepest.parent)) <= PATH_MAX
    return deepest


def build_unreadable_tree(root: Path, monkeypatch: pytest.MonkeyPatch) -> UnreadableTree:
    first, last = write_colour_images(root, ["red", "green"])
    last = last.rename(root / "zz-last-green.png")
    locked = root / "locked"
    write_colour_images(locked, ["blue"])
    too_long = make_too_long_folder(root / "deep")
    deny_listing(monkeypatch, locked)
    return UnreadableTree(root, (str(first), str(last)), locked, too_long)
