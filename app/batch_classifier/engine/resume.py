"""What ``--resume`` does again and what it skips, and the one-row-per-path rewrite at the end.

Paths match by the file they resolve to, not by spelling: ``./in/a.png``
and ``/home/me/in/a.png`` are one image. Relative paths in the CSV resolve
from the folder the run that wrote them worked in (recorded beside the CSV).

Error rows are retried by default: the errors that resume is for (a
permission fixed, a file still being copied, a share that came back) go away
on a second try. While a resumed run goes, rows are only appended, so a path
retried has two rows and the newest one counts; a run that ends normally
rewrites the CSV atomically with one row per path, the newest, in the place
of the first.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .csv_output import PreviousRow, file_path, header, read_rows, restore, whole_records
from .output_paths import OutputRefused, replacing, write_all
from .run_identity import ResumeRefused, read_sidecar


@dataclass(frozen=True)
class ResumePlan:
    """What a resumed run skips (resolved paths) and what it says about the rest."""

    skip: frozenset[str]
    done: int
    """Paths whose newest row is kept as it is."""
    retrying: int
    """Paths whose newest row is an error that this run tries again."""
    duplicates: bool
    """Whether the CSV already holds two rows for one path (an earlier resumed run was stopped)."""


def resolver(cwd: str) -> Callable[[str], str]:
    """Path as written -> the file it names, as ``os.path.realpath`` spells it, relative ones from ``cwd``.

    A folder's real path is looked up once, not once per file in it; each
    file costs one ``lstat`` (is it a symlink?) instead of one per component.
    """

    @lru_cache(maxsize=4096)
    def real_folder(folder: str) -> str:
        return os.path.realpath(folder)

    def resolve(path: str) -> str:
        full = os.path.join(cwd, path)
        folder, name = os.path.split(full)
        if not name or name in (".", "..") or os.path.islink(full):
            return os.path.realpath(full)
        return os.path.join(real_folder(folder), name)

    return resolve


def plan_resume(previous: Iterable[PreviousRow], resolve: Callable[[str], str], retry_errors: bool) -> ResumePlan:
    newest: dict[str, str] = {}
    duplicates = False
    for row in previous:
        key = resolve(row.path)
        duplicates = duplicates or key in newest
        newest[key] = row.status
    skip = frozenset(key for key, status in newest.items() if status == "ok" or not retry_errors)
    return ResumePlan(skip, len(skip), len(newest) - len(skip), duplicates)


def done_set(previous: Iterable[PreviousRow], cwd: str | None = None, retry_errors: bool = True) -> frozenset[str]:
    """What continuing these rows skips: each path resolved to its file (relative ones from ``cwd``,
    else from here), the newest row of a file counting, errors retried unless ``retry_errors`` is off.

    ``--resume`` and the window's Start after Cancel both skip by this one rule,
    matched against ``iter_sources``'s ``skip``.
    """
    return plan_resume(previous, resolver(cwd or os.getcwd()), retry_errors).skip


def done_files(csv_path: str | os.PathLike[str], retry_errors: bool = True) -> frozenset[str]:
    """What continuing ``csv_path`` skips, for a front end that decides before its model loads (the window).

    The CSV's own columns are taken as they are; relative paths resolve from
    the folder its run record names, or from here when it has none (or one
    that cannot be read: checking the run's identity is the resume's job).
    """
    try:
        recorded = read_sidecar(csv_path)
    except ResumeRefused:
        recorded = None
    _, rows = read_rows(csv_path)
    previous = [PreviousRow(file_path(row["path"]), row.get("status", "")) for row in rows if "path" in row]
    return done_set(previous, recorded.cwd if recorded else None, retry_errors)


def compact_csv(path: str | os.PathLike[str], top_k: int, resolve: Callable[[str], str]) -> int:
    """Rewrite ``path`` atomically with one row per file, the newest, where its first row was; rows dropped.

    Rows that are not whole or not of this CSV's columns stay where they
    were: this only removes rows that a newer row of the same file replaces.
    """
    expected = header(top_k)
    with replacing(path) as replacement:
        with open(path, "rb") as handle:
            rows = [row for row, _ in whole_records(handle)]
        if not rows or rows[0] != expected:
            raise OutputRefused(f"{path} changed while the run ended: left as it is")
        slots: list[list[str]] = []
        where: dict[str, int] = {}
        for row in rows[1:]:
            if len(row) != len(expected):
                slots.append(row)
                continue
            key = resolve(file_path(restore(row[0])))
            if key in where:
                slots[where[key]] = row
            else:
                where[key] = len(slots)
                slots.append(row)
        write_all(replacement.fd, _format(rows[0], slots))
    return len(rows) - 1 - len(slots)


def _format(first: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(first)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8", "surrogateescape")


def absolute_inputs(paths: Sequence[str], recorded_cwd: str) -> list[str]:
    """Inputs spelled so that the rows they give resolve from the recorded folder too.

    A resumed run started from another folder than the first writes its
    rows with absolute paths; from the same folder, paths stay as given.
    """
    if Path(recorded_cwd) == Path.cwd():
        return list(paths)
    return [os.path.abspath(path) for path in paths]
