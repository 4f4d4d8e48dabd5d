"""Folders that cannot be listed are said, once each with the reason, and counted (issue 13, item 4).

The trees come from ``unreadable_trees.py``: a folder whose listing is
refused and one whose path is longer than the system allows, beside two
good images. Rows stay one per image the walk could reach.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from batch_classifier.cli import main
from batch_classifier.engine.sources import UnreadableFolder, count_sources, iter_sources, no_images_message
from support import tiny_classifier, write_colour_images
from unreadable_trees import UnreadableTree, deny_listing


def tiny_args(model) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--model", str(model.path), "--labels", str(model.labels), "--device", "cpu"]


def test_the_walk_names_each_unreadable_folder_once_with_its_reason(unreadable_tree: UnreadableTree) -> None:
    heard: list[UnreadableFolder] = []
    found = [item.path for item in iter_sources([unreadable_tree.root], on_unreadable=heard.append)]
    assert found == list(unreadable_tree.images)
    assert [folder.path for folder in heard] == list(unreadable_tree.unreadable)
    assert [folder.reason for folder in heard] == ["its path is longer than the system allows", "permission denied"]
    assert heard[1].describe() == f"cannot read folder '{unreadable_tree.locked}': permission denied"


def test_counting_hears_the_same_folders(unreadable_tree: UnreadableTree) -> None:
    heard: list[UnreadableFolder] = []
    assert count_sources([unreadable_tree.root], on_unreadable=heard.append) == 2
    assert [folder.path for folder in heard] == list(unreadable_tree.unreadable)


def test_a_folder_that_vanishes_during_the_walk_is_said(tmp_path: Path) -> None:
    write_colour_images(tmp_path / "a", ["red"])
    write_colour_images(tmp_path / "b", ["green"])
    heard: list[UnreadableFolder] = []
    walk = iter_sources([tmp_path], on_unreadable=heard.append)
    first = next(walk)
    shutil.rmtree(tmp_path / "b")  # listed as a folder of tmp_path, gone before the walk enters it
    assert [first.path, *(item.path for item in walk)] == [str(tmp_path / "a" / "00000-red.png")]
    assert heard == [UnreadableFolder(str(tmp_path / "b"), "it no longer exists")]


def test_the_run_summary_counts_unreadable_folders(tiny_model, unreadable_tree: UnreadableTree) -> None:
    rows = []
    classifier = tiny_classifier(tiny_model)
    summary = classifier.classify([str(unreadable_tree.root)], on_batch=lambda outcome: rows.extend(outcome.results))
    assert [row.path for row in rows] == list(unreadable_tree.images)
    assert [folder.path for folder in summary.unreadable_folders] == list(unreadable_tree.unreadable)
    assert summary.describe().endswith(", 2 folders could not be read")
    assert (summary.images, summary.errors) == (2, 0)


def test_the_command_line_warns_once_per_folder_and_writes_one_row_per_image(
    tiny_model, unreadable_tree: UnreadableTree, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out.csv"
    assert main(["classify", *tiny_args(tiny_model), "--quiet", "--csv", str(out), str(unreadable_tree.root)]) == 0
    error = capsys.readouterr().err
    warnings = [line for line in error.splitlines() if "cannot read folder" in line]
    assert warnings == [
        f"batch-classifier: warning: cannot read folder '{unreadable_tree.too_long}': "
        "its path is longer than the system allows",
        f"batch-classifier: warning: cannot read folder '{unreadable_tree.locked}': permission denied",
    ]
    assert "2 folders could not be read" in error.splitlines()[-1]
    with open(out, encoding="utf-8", newline="") as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == list(unreadable_tree.images)


def test_naming_an_unreadable_folder_does_not_say_no_images_found(tiny_model, tmp_path: Path, monkeypatch,
                                                                  capsys) -> None:
    locked = tmp_path / "locked"
    write_colour_images(locked, ["red"])
    deny_listing(monkeypatch, locked)
    out = tmp_path / "out.csv"
    assert main(["classify", *tiny_args(tiny_model), "--csv", str(out), str(locked)]) == 1
    error = capsys.readouterr().err
    assert error == f"batch-classifier: error: Nothing to classify in '{locked}': " \
                    f"cannot read folder '{locked}': permission denied\n"
    assert "No images found" not in error
    assert not out.exists()


def test_the_message_when_nothing_could_be_read_counts_the_other_folders() -> None:
    folders = [UnreadableFolder(f"/x/{name}", "permission denied") for name in "abc"]
    assert no_images_message(["/x"], unreadable=folders) == (
        "Nothing to classify in '/x': cannot read folder '/x/a': permission denied "
        "(and 2 more folders that could not be read)"
    )
    assert no_images_message(["/x"]).startswith("No images found in '/x': looked for ")
