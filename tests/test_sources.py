"""Turning what the user named into inputs: order, filtering, links, loops, duplicates, --resume."""

from __future__ import annotations

import inspect
import itertools
import os
import sys
import threading
import time
from pathlib import Path

import pytest

import corpus
from batch_classifier.engine.sources import (
    BackgroundCount,
    count_sources,
    display_path,
    duplicates_note,
    iter_sources,
)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def _paths(*given: object, **options: object) -> list[str]:
    items = list(iter_sources(given, **options))  # type: ignore[arg-type]
    assert [item.index for item in items] == list(range(len(items))), "indices must be 0..n-1 in order"
    return [item.path for item in items]


def test_walk_is_depth_first_in_name_order_and_filters_by_extension(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.PNG", "c.txt", "sub/z.webp", "sub/deeper/y.TIFF", "d.JPG", "notes.md"):
        _touch(tmp_path / name)
    found = [os.path.relpath(path, tmp_path) for path in _paths(tmp_path)]
    assert found == ["a.PNG", "b.jpg", "d.JPG", "sub/deeper/y.TIFF", "sub/z.webp"]
    flat = [os.path.relpath(path, tmp_path) for path in _paths(tmp_path, recursive=False)]
    assert flat == ["a.PNG", "b.jpg", "d.JPG"]


def test_folder_named_like_an_image_is_a_folder(tmp_path: Path) -> None:
    _touch(tmp_path / "folder.jpg" / "inside.png")
    assert _paths(tmp_path) == [str(tmp_path / "folder.jpg" / "inside.png")]
    assert _paths(tmp_path / "folder.jpg") == [str(tmp_path / "folder.jpg" / "inside.png")]
    assert _paths(tmp_path, recursive=False) == []


def test_explicit_files_always_come_out_whatever_they_are(tmp_path: Path) -> None:
    """A named file gets a row even when it is not an image or does not exist (an error row)."""
    notes, missing = _touch(tmp_path / "notes.txt"), tmp_path / "missing.jpg"
    assert _paths(notes, missing) == [str(notes), str(missing)]


def test_dangling_symlink_and_pipe_in_a_folder_come_out(tmp_path: Path) -> None:
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    assert _paths(tmp_path) == [str(tmp_path / "dangling.jpg"), str(tmp_path / "pipe.jpg")]


def test_symlink_loops_end(tmp_path: Path) -> None:
    """A folder linking back to its parent, a self link and a file link loop: each file once, walk ends."""
    _touch(tmp_path / "top" / "a.jpg")
    _touch(tmp_path / "top" / "sub" / "b.jpg")
    (tmp_path / "top" / "sub" / "back").symlink_to(tmp_path / "top")
    (tmp_path / "top" / "self").symlink_to(tmp_path / "top" / "self")
    (tmp_path / "top" / "x.jpg").symlink_to(tmp_path / "top" / "y.jpg")
    (tmp_path / "top" / "y.jpg").symlink_to(tmp_path / "top" / "x.jpg")
    found = [os.path.relpath(path, tmp_path / "top") for path in _paths(tmp_path / "top")]
    assert found == ["a.jpg", "sub/b.jpg", "x.jpg", "y.jpg"]


def test_deep_tree_does_not_overflow_the_stack(tmp_path: Path) -> None:
    """A tree deeper than the recursion limit walks fine (the limit is lowered to keep the tree small)."""
    deep = tmp_path.joinpath(*["d"] * 150)
    deep.mkdir(parents=True)
    _touch(deep / "bottom.png")
    walk = iter_sources([tmp_path])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 60)  # 60 frames to spare, the tree is 150 deep
    try:
        found = [item.path for item in walk]
    finally:
        sys.setrecursionlimit(limit)
    assert found == [str(deep / "bottom.png")]


def test_same_file_twice_gives_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: one row per real file (by realpath), first mention wins; the CSV never disagrees with itself.

    Covers the same path twice, a relative and an absolute spelling, a file
    and its folder, a folder twice, and a symlink to a file also named.
    """
    image = _touch(tmp_path / "photos" / "cat.jpg")
    other = _touch(tmp_path / "photos" / "dog.jpg")
    link = tmp_path / "link.jpg"
    link.symlink_to(image)
    monkeypatch.chdir(tmp_path)
    assert _paths(image, image) == [str(image)]
    assert _paths("photos/cat.jpg", image, "./photos/../photos/cat.jpg") == ["photos/cat.jpg"]
    assert _paths(image, tmp_path / "photos") == [str(image), str(other)]
    assert _paths(tmp_path / "photos", tmp_path / "photos", image) == [str(image), str(other)]
    assert _paths(link, image) == [str(link)]


def test_every_name_left_out_as_the_same_file_is_told_and_a_resumed_file_is_not(tmp_path: Path) -> None:
    image = _touch(tmp_path / "photos" / "cat.jpg")
    other = _touch(tmp_path / "photos" / "dog.jpg")
    (tmp_path / "photos" / "link.jpg").symlink_to(image)
    told: list[str] = []
    given = [tmp_path / "photos", image, other]
    kept = [item.path for item in iter_sources(given, skip={os.path.realpath(other)}, on_duplicate=told.append)]
    assert kept == [str(image)]
    assert told == [str(tmp_path / "photos" / "link.jpg"), str(image)], "the second name of a file is told"
    assert duplicates_note(1) == "1 skipped as duplicate of the same file"
    assert duplicates_note(600) == "600 skipped as duplicates of the same file"


def test_a_folder_reached_twice_counts_its_files_as_duplicates(tmp_path: Path) -> None:
    """Named twice through a folder symlink, or reached again by a symlink back up: one row each, the rest told."""
    a, b = _touch(tmp_path / "photos" / "a.jpg"), _touch(tmp_path / "photos" / "sub" / "b.jpg")
    (tmp_path / "link-to-photos").symlink_to(tmp_path / "photos")
    for given, rows, told in (
        ([tmp_path / "photos", tmp_path / "link-to-photos"], [a, b],
         ["link-to-photos/a.jpg", "link-to-photos/sub/b.jpg"]),
        ([tmp_path / "link-to-photos", tmp_path / "photos"],
         [tmp_path / "link-to-photos" / "a.jpg", tmp_path / "link-to-photos" / "sub" / "b.jpg"],
         ["photos/a.jpg", "photos/sub/b.jpg"]),
    ):
        duplicates: list[str] = []
        assert [item.path for item in iter_sources(given, on_duplicate=duplicates.append)] == [str(p) for p in rows]
        assert [os.path.relpath(path, tmp_path) for path in duplicates] == told

    (tmp_path / "photos" / "sub" / "back").symlink_to(tmp_path / "photos")  # a cycle, gone round once
    duplicates = []
    assert [item.path for item in iter_sources([tmp_path / "photos"], on_duplicate=duplicates.append)] == [
        str(a), str(b)]
    assert [os.path.relpath(path, tmp_path / "photos") for path in duplicates] == ["sub/back/a.jpg", "sub/back/sub/b.jpg"]
    duplicates = []
    assert len(list(iter_sources([tmp_path / "photos"], recursive=False, on_duplicate=duplicates.append))) == 1
    assert duplicates == [], "without sub-folders the cycle is never met"
    assert count_sources([tmp_path / "photos", tmp_path / "link-to-photos"]) == 2


def test_hard_links_are_different_files(tmp_path: Path) -> None:
    """Two names for one inode are two paths the user sees: two rows."""
    first = _touch(tmp_path / "a.jpg")
    os.link(first, tmp_path / "b.jpg")
    assert len(_paths(tmp_path)) == 2


def test_hostile_names_come_out_unchanged(tmp_path: Path) -> None:
    names = sorted(corpus.HOSTILE_NAMES + (corpus.NON_UTF8_NAME,))
    for name in names:
        _touch(tmp_path / name)
    assert sorted(os.path.basename(path) for path in _paths(tmp_path)) == names


def test_display_path_is_utf8_and_shows_undecodable_bytes() -> None:
    assert display_path("café 猫.png") == "café 猫.png"
    assert display_path(corpus.NON_UTF8_NAME) == "caf\\xe9.png"
    display_path(corpus.NON_UTF8_NAME).encode("utf-8")


def test_skip_takes_resolved_files_however_they_are_spelled(tmp_path: Path) -> None:
    """--resume: files already in the CSV (resolved, non-UTF-8 included) are skipped, the rest renumbered."""
    names = ["a.jpg", corpus.NON_UTF8_NAME, "=x.png", "new\nline.png"]
    for name in names:
        _touch(tmp_path / name)
    done = frozenset(os.path.realpath(tmp_path / name) for name in names[:3])
    assert _paths(tmp_path, skip=done) == [str(tmp_path / "new\nline.png")]
    assert count_sources([f"{tmp_path}/../{tmp_path.name}/"], skip=done) == 1
    assert count_sources([tmp_path]) == 4


def test_sources_are_lazy(tmp_path: Path) -> None:
    """The first item comes before the input list ends (a 100,000-file drop starts at once)."""
    image = _touch(tmp_path / "a.jpg")
    endless = itertools.chain([image], (tmp_path / f"never{i}.jpg" for i in itertools.count()))
    first = next(iter_sources(endless))
    assert first.path == str(image) and first.index == 0


def test_background_count_reports_what_the_walk_will_yield(tmp_path: Path) -> None:
    for folder in ("a", "b/c"):
        (tmp_path / folder).mkdir(parents=True)
        for number in range(7):
            (tmp_path / folder / f"{number}.jpg").touch()
    (tmp_path / "notes.txt").touch()
    for recursive, expected in ((True, 14), (False, 0)):
        totals: list[int] = []
        counted = threading.Event()

        def on_total(total: int) -> None:
            totals.append(total)
            counted.set()

        with BackgroundCount([str(tmp_path)], recursive, on_total):
            assert counted.wait(timeout=10)
        assert totals == [expected] == [count_sources([str(tmp_path)], recursive)]


def test_leaving_a_background_count_stops_a_long_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancelled run must not leave a thread reading a slow network share."""
    from batch_classifier.engine import sources

    walked: list[int] = []

    def slow_walk(paths, recursive=True, skip=frozenset(), on_unreadable=None):  # type: ignore[no-untyped-def]
        for number in itertools.count():
            walked.append(number)
            time.sleep(0.01)
            yield number

    monkeypatch.setattr(sources, "iter_sources", slow_walk)
    totals: list[int] = []
    started = time.perf_counter()
    with BackgroundCount(["/a/share"], True, totals.append):
        time.sleep(0.1)
    assert time.perf_counter() - started < 5
    assert totals == [] and 0 < len(walked) < 100
    assert not [thread for thread in threading.enumerate() if thread.name == "count-sources"]
