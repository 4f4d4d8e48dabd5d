"""Sorting into label folders: it only ever creates, and undo removes exactly what it created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import corpus
from batch_classifier.cli import main
from batch_classifier.engine.csv_output import write_csv
from batch_classifier.engine.records import ImageResult, Prediction
from batch_classifier.engine.sorting import (
    ERRORS_FOLDER,
    UNKNOWN_FOLDER,
    items_from_csv,
    label_folder,
    sort_images,
    undo_sort,
)

MODES = ("copy", "hardlink", "symlink")


def _ok(index: int, path: Path, label: str, confidence: float = 0.9, threshold: float = 0.0) -> ImageResult:
    return ImageResult(index, str(path), "ok", (Prediction(label, confidence),), min_confidence=threshold)


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """A results CSV over real files: two cats of the same name, a dog, an unsure one, an error, a missing file."""
    photos = tmp_path / "photos"
    for relative in ("one/a.png", "two/a.png", "dog.png", "unsure.png", "thresholded.png", "broken.png"):
        (photos / relative).parent.mkdir(parents=True, exist_ok=True)
        (photos / relative).write_bytes(relative.encode() * 10)
    rows = [
        _ok(0, photos / "one" / "a.png", "cat"),
        _ok(1, photos / "two" / "a.png", "cat"),
        _ok(2, photos / "dog.png", "dog"),
        _ok(3, photos / "unsure.png", "dog", confidence=0.3),
        _ok(4, photos / "thresholded.png", "cat", confidence=0.6, threshold=0.7),
        ImageResult(5, str(photos / "broken.png"), "error", error="not an image Pillow can read"),
        _ok(6, photos / "gone.png", "cat"),
    ]
    out = tmp_path / "results.csv"
    write_csv(out, rows, top_k=1)
    return out


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (links followed) and its content."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("mode", MODES)
def test_sort_places_each_image_once_and_never_overwrites(results: Path, tmp_path: Path, mode: str) -> None:
    into = tmp_path / "sorted"
    (into / "cat").mkdir(parents=True)
    (into / "cat" / "a.png").write_bytes(b"the user's own a.png")
    photos = tmp_path / "photos"
    outcome = sort_images(items_from_csv(results, min_confidence=0.5), into, mode)
    assert outcome.counts() == {"cat": 2, UNKNOWN_FOLDER: 2, "dog": 1, ERRORS_FOLDER: 1}
    assert [(skip.path, skip.reason) for skip in outcome.skipped] == [(str(photos / "gone.png"), "missing at sort time")]
    assert (into / "cat" / "a.png").read_bytes() == b"the user's own a.png"
    targets = {Path(placed.source).relative_to(photos).as_posix(): Path(placed.target) for placed in outcome.placed}
    assert targets["one/a.png"] == into / "cat" / "a (2).png" and targets["two/a.png"] == into / "cat" / "a (3).png"
    assert targets["unsure.png"].parent.name == UNKNOWN_FOLDER == targets["thresholded.png"].parent.name
    assert targets["broken.png"] == into / ERRORS_FOLDER / "broken.png"
    for source, target in targets.items():
        assert target.read_bytes() == (photos / source).read_bytes()
        same_inode = os.stat(target).st_ino == os.stat(photos / source).st_ino
        assert target.is_symlink() == (mode == "symlink")
        assert same_inode == (mode != "copy")
    assert sum(1 for placed in outcome.placed if placed.renamed) == 2


def test_a_dry_run_creates_nothing_and_predicts_the_real_run(results: Path, tmp_path: Path) -> None:
    into = tmp_path / "sorted"
    items = items_from_csv(results)
    planned = sort_images(items, into, "copy", dry_run=True)
    assert not into.exists() and planned.manifest is None
    done = sort_images(items, into, "copy")
    assert [placed.target for placed in planned.placed] == [placed.target for placed in done.placed]
    assert planned.skipped == done.skipped


@pytest.mark.parametrize("mode", MODES)
def test_undo_removes_only_what_the_sort_created(results: Path, tmp_path: Path, mode: str) -> None:
    into = tmp_path / "sorted"
    (into / "cat").mkdir(parents=True)
    (into / "cat" / "a.png").write_bytes(b"there before")
    before = _tree(tmp_path / "photos")
    outcome = sort_images(items_from_csv(results), into, mode)
    # Since the sort the user added files, into a folder the sort made and into one of their own.
    (into / "dog" / "mine.png").write_bytes(b"added later")
    (into / "extra").mkdir()
    (into / "extra" / "x.png").write_bytes(b"added later")
    # ... and replaced one of the sorted images with another file of the same name.
    replaced = Path(next(placed.target for placed in outcome.placed if placed.folder == ERRORS_FOLDER))
    replaced.unlink()
    replaced.write_bytes(b"a different file now")
    undone = undo_sort(outcome.manifest)
    assert undone.removed_files == len(outcome.placed) - 1
    assert _tree(into) == {
        "cat/a.png": b"there before", "dog/mine.png": b"added later", "extra/x.png": b"added later",
        f"{ERRORS_FOLDER}/broken.png": b"a different file now", outcome.manifest.name: outcome.manifest.read_bytes(),
    }
    kept = {Path(entry.path).name: entry.reason for entry in undone.kept}
    # "replaced since the sort" when the new file has another inode; the file system may reuse the freed
    # one, and then the size and modification time tell it apart.
    assert kept["broken.png"] in ("replaced since the sort (another file has its name): kept",
                                  "changed since the sort: kept")
    assert kept["dog"].startswith("folder holds files")
    assert not (into / UNKNOWN_FOLDER).exists(), "a folder the sort made, now empty, goes"
    assert _tree(tmp_path / "photos") == before, "the originals are never touched"


def test_undo_keeps_a_changed_copy_and_a_last_name(results: Path, tmp_path: Path) -> None:
    into = tmp_path / "sorted"
    copied = sort_images(items_from_csv(results), into / "copies", "copy")
    linked = sort_images(items_from_csv(results), into / "links", "hardlink")
    dog_copy = into / "copies" / "dog" / "dog.png"
    with open(dog_copy, "ab") as handle:
        handle.write(b"edited")
    (tmp_path / "photos" / "unsure.png").unlink()  # now the hard link is the only name of that photo
    undone = undo_sort(copied.manifest)
    kept = {entry.path: entry.reason for entry in undone.kept}
    assert kept[str(dog_copy)] == "changed since the sort: kept"
    assert "may be the only one" in kept[str(into / "copies" / "dog" / "unsure.png")]
    assert not undone.manifest_removed and copied.manifest.exists(), "the manifest stays while entries remain"
    undone = undo_sort(linked.manifest)
    assert [entry.reason for entry in undone.kept if entry.path.endswith(".png")] == [
        "the only name left for this photo (its original is gone): kept"
    ]
    assert (into / "links" / "dog" / "unsure.png").read_bytes() == b"unsure.png" * 10


def test_an_interrupted_sort_can_be_undone(results: Path, tmp_path: Path) -> None:
    into = tmp_path / "sorted"
    calls = iter([False, False, True])
    outcome = sort_images(items_from_csv(results), into, "copy", stop=lambda: next(calls))
    assert outcome.interrupted and len(outcome.placed) == 2
    undone = undo_sort(outcome.manifest)
    assert undone.removed_files == 2 and undone.kept == () and not into.exists()


def test_label_folders_are_safe_names_no_label_can_turn_into_a_special_folder() -> None:
    assert label_folder("Egyptian cat") == "Egyptian cat"
    assert label_folder("AC/DC: live?") == "AC_DC_ live_"
    assert label_folder("_unknown") == "label-_unknown" != UNKNOWN_FOLDER
    assert label_folder("..") == "label-"
    assert label_folder("CON") == "label-CON"


def test_a_name_that_is_not_utf8_is_found_from_its_escaped_row(tmp_path: Path) -> None:
    photo = Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + os.fsencode(corpus.NON_UTF8_NAME)))
    photo.write_bytes(b"pixels")
    results = tmp_path / "results.csv"
    write_csv(results, [_ok(0, photo, "cat")], top_k=1)
    outcome = sort_images(items_from_csv(results), tmp_path / "sorted", "copy")
    assert outcome.skipped == ()
    assert Path(outcome.placed[0].target).read_bytes() == b"pixels"


def test_corrected_labels_win(tmp_path: Path) -> None:
    photo = tmp_path / "x.png"
    photo.write_bytes(b"x")
    results = tmp_path / "results.csv"
    results.write_text(f"path,status,label,confidence,corrected_label\n{photo},ok,dog,0.2,cat\n", encoding="utf-8")
    assert [item.folder for item in items_from_csv(results, min_confidence=0.5)] == ["cat"]


def test_sort_command_line(results: Path, tmp_path: Path, capsys) -> None:
    into = tmp_path / "sorted"
    assert main(["sort", str(results), "--into", str(into), "--dry-run", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "would sort 6 of 7 images" in err and "dry run: nothing was created" in err and not into.exists()
    assert main(["sort", str(results), "--into", str(into), "--mode", "symlink", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "missing at sort time" in err
    manifest = next(line.split(": ", 1)[1] for line in err.splitlines() if line.startswith("manifest: "))
    assert main(["sort", "--undo", manifest, "--quiet"]) == 0
    # The folders: cat, dog, _unknown, _errors and sorted itself.
    assert "removed 6 files and 5 folders the sort created, and the manifest" in capsys.readouterr().err
    assert not into.exists()


@pytest.mark.parametrize(
    "arguments", [["sort"], ["sort", "r.csv"], ["sort", "--undo", "m.jsonl", "--into", "x"], ["sort", "--mode", "move"]]
)
def test_sort_usage_errors_exit_2(arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    assert exited.value.code == 2


def test_sort_refusals_exit_1_in_one_line(results: Path, tmp_path: Path, capsys) -> None:
    not_ours = tmp_path / "other.csv"
    not_ours.write_text("name,value\na,1\n", encoding="utf-8")
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    for arguments, message in [
        (["sort", str(not_ours), "--into", str(tmp_path / "s")], "is not a results CSV"),
        (["sort", str(tmp_path / "absent.csv"), "--into", str(tmp_path / "s")], "results file not found"),
        (["sort", str(results), "--into", str(a_file)], "exists and is not a folder"),
        (["sort", "--undo", str(results)], "is not a sort manifest"),
    ]:
        assert main(arguments) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert a_file.read_text(encoding="utf-8") == "x" and not (tmp_path / "s").exists()
