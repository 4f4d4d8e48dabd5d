"""Ground truth: matching names to labels, folder and CSV truth, and the threshold on a row."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batch_classifier.engine.records import ImageResult, Prediction
from batch_classifier.engine.truth import (
    CsvTruth,
    FolderTruth,
    LabelMatcher,
    Synset,
    TruthError,
    annotate,
    imagenet_synsets,
    offer_folder_truth,
    read_truth_csv,
)

LABELS = ("tench, Tinca tinca", "Egyptian cat", "tiger cat", "great white shark", "German short-haired pointer")
TABLE = (
    Synset("n01440764", ("tench", "Tinca tinca")),
    Synset("n02124075", ("Egyptian cat",)),
    Synset("n02123159", ("tiger cat",)),
    Synset("n01484850", ("great white shark", "white shark", "man-eater")),
    Synset("n02100236", ("German short-haired pointer",)),
)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Egyptian cat", "Egyptian cat"),  # the label itself
        ("egyptian CAT", "Egyptian cat"),  # case
        ("great_white_shark", "great white shark"),  # _ for a space
        ("german-short_haired  pointer", "German short-haired pointer"),  # - and runs of spaces
        ("Tinca tinca", "tench, Tinca tinca"),  # a synonym of the label set
        ("tench", "tench, Tinca tinca"),
        ("n02124075", "Egyptian cat"),  # WordNet id from the table
        ("man-eater", "great white shark"),  # a lemma of the table
    ],
)
def test_each_matching_rule(name: str, label: str) -> None:
    assert LabelMatcher(LABELS, TABLE).match(name) == (label, "")


def test_a_name_matching_nothing_gets_no_label_and_a_reason() -> None:
    matcher = LabelMatcher(LABELS, TABLE)
    assert matcher.match("astronaut") == (None, "matches no label")
    assert matcher.match("cat") == (None, "matches no label"), "a word of a label is not the label"


def test_a_table_that_does_not_line_up_with_the_labels_is_not_used() -> None:
    """WordNet ids are positional: another label set of the same length must not borrow them."""
    shuffled = ("tiger cat", "tench, Tinca tinca", "great white shark", "Egyptian cat", "German short-haired pointer")
    matcher = LabelMatcher(shuffled, TABLE)
    assert not matcher.uses_wordnet
    label, reason = matcher.match("n02124075")
    assert label is None and "no WordNet table" in reason
    assert matcher.match("man-eater") == (None, "matches no label")


def test_a_name_that_fits_two_labels_equally_is_ambiguous() -> None:
    matcher = LabelMatcher(("Crane", "crane", "crane bird, stork", "crane machine, stork", "heron, egret"))
    assert matcher.match("Crane") == ("Crane", ""), "the exact label wins over looser matches"
    assert matcher.match("crane_bird") == ("crane bird, stork", "")
    assert matcher.match("EGRET") == ("heron, egret", "")
    for name in ("CRANE", "stork"):
        label, reason = matcher.match(name)
        assert label is None and reason.startswith("matches several labels"), name


def test_the_installed_imagenet_table_lines_up_with_the_default_labels() -> None:
    table = imagenet_synsets()
    if table is None:
        pytest.skip("no package with an ImageNet WordNet table (timm) is installed")
    from batch_classifier.engine.models import imagenet_labels

    matcher = LabelMatcher(imagenet_labels(), table)
    assert matcher.uses_wordnet
    assert matcher.match("n02123597") == ("Siamese cat", "")
    assert matcher.match("Siamese") == ("Siamese cat", "")


def _tree(root: Path, layout: dict[str, list[str]]) -> list[Path]:
    paths = []
    for folder, names in layout.items():
        for name in names:
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
            paths.append(path)
    return paths


def test_folder_truth_takes_the_folder_below_the_named_one(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _tree(root, {"egyptian_cat": ["a.png"], "egyptian_cat/more": ["b.png"], ".": ["loose.png"], "Astronaut": ["c.png", "d.png"]})
    single = tmp_path / "tiger cat" / "e.png"
    _tree(tmp_path, {"tiger cat": ["e.png"]})
    truth = FolderTruth([root, single], LabelMatcher(LABELS))
    assert truth.label_for(str(root / "egyptian_cat" / "a.png")) == "Egyptian cat"
    assert truth.label_for(str(root / "egyptian_cat" / "more" / "b.png")) == "Egyptian cat"
    assert truth.label_for(str(root / "loose.png")) == "", "a loose image takes the named folder's name: 'photos'"
    assert truth.label_for(str(single)) == "tiger cat", "a file named alone takes its own folder's name"
    assert truth.label_for(str(root / "Astronaut" / "c.png")) == ""
    assert truth.label_for(str(root / "Astronaut" / "d.png")) == ""
    unmatched = {name.name: name.images for name in truth.unmatched()}
    assert unmatched == {"Astronaut": 2, "photos": 1}, "each unmatched name once, with its images"


def test_csv_truth_matches_by_resolved_file_relative_to_the_csv(tmp_path: Path, monkeypatch) -> None:
    image = _tree(tmp_path / "data", {"x": ["a.png"]})[0]
    link = tmp_path / "link.png"
    os.symlink(image, link)
    truth_csv = tmp_path / "data" / "truth.csv"
    truth_csv.write_text("path,label\nx/a.png,egyptian cat\nx/missing.png,tiger cat\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the CSV's folder: relative paths are the CSV's
    truth = CsvTruth(read_truth_csv(truth_csv), LabelMatcher(LABELS))
    assert truth.label_for(str(link)) == "Egyptian cat"
    assert truth.label_for(str(image)) == "Egyptian cat"
    assert truth.label_for(str(tmp_path / "other.png")) == ""
    assert truth.unmatched() == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [("file,class\na.png,cat\n", "needs a header with 'path' and 'label'"), ("", "needs a header")],
)
def test_an_unusable_truth_csv_is_refused_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "truth.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TruthError, match=message):
        read_truth_csv(path)
    with pytest.raises(TruthError, match="not found"):
        read_truth_csv(tmp_path / "absent.csv")


def test_the_threshold_relabels_a_row_and_keeps_the_model_top1() -> None:
    row = ImageResult(0, "a.png", "ok", (Prediction("tiger cat", 0.40), Prediction("Egyptian cat", 0.35)))
    below, at = annotate([row], None, 0.5)[0], annotate([row], None, 0.40)[0]
    assert (below.status, below.label, below.top1_label, below.confidence) == ("ok", "unknown", "tiger cat", 0.40)
    assert (at.label, at.top1_label) == ("tiger cat", ""), "a row at the threshold keeps its label"
    assert (row.label, row.top1_label) == ("tiger cat", "")
    error = ImageResult(1, "b.png", "error", error="file not found")
    assert annotate([error], None, 0.5)[0].label == ""


def test_correct_compares_the_label_after_the_threshold(tmp_path: Path) -> None:
    image = _tree(tmp_path, {"tiger_cat": ["a.png"]})[0]
    truth = FolderTruth([tmp_path], LabelMatcher(LABELS))
    row = ImageResult(0, str(image), "ok", (Prediction("tiger cat", 0.40),))
    assert annotate([row], truth)[0].correct is True
    assert annotate([row], truth, 0.5)[0].correct is False
    assert annotate([ImageResult(1, str(image), "error", error="bad")], truth)[0].correct is None


def test_the_window_offers_folder_truth_when_most_folders_are_labels(tmp_path: Path) -> None:
    _tree(tmp_path / "a", {"tiger cat": ["1.png"], "Egyptian_cat": ["2.png"], "holiday": ["3.png"]})
    _tree(tmp_path / "b", {"holiday": ["1.png"], "work": ["2.png"], "tench": ["3.png"]})
    assert offer_folder_truth([tmp_path / "a"], LABELS)
    assert not offer_folder_truth([tmp_path / "b"], LABELS)
    assert not offer_folder_truth([tmp_path / "a" / "tiger cat"], LABELS), "no folders at all: no offer"
