"""Ground truth for a run: from folder names (``root/<class>/image``) or from a CSV of path,label.

Names people give folders rarely match a model's labels letter for letter,
so a name is matched forgivingly, in tiers, and the first tier that names
exactly one label wins:

1. the label itself (``Egyptian cat``);
2. the label ignoring case, ``_``, ``-`` and repeated spaces (``egyptian_cat``);
3. one of the label's synonyms: the comma-separated names of a label such as
   ``tench, Tinca tinca``, and for ImageNet models the WordNet lemmas of an
   installed table (timm ships one);
4. the WordNet id (``n02124075``), from that same table.

A name that matches no label, or several equally well, gives its images no
truth rather than a wrong one, and is reported once with its image count.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from .records import ImageResult

_SEPARATORS = re.compile(r"[\s_\-]+")
_WORDNET_ID = re.compile(r"n\d{8}")
_ALIGNED_FRACTION = 0.9
"""How many of a 1,000-label set must agree with the WordNet table, position by position, to use it."""


class TruthError(ValueError):
    """A truth CSV that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Synset:
    """One WordNet entry of a class table: its id and its names (lemmas)."""

    wnid: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class UnmatchedName:
    """A folder name or truth label that gave its images no truth, and why."""

    name: str
    images: int
    reason: str


def normalise(name: str) -> str:
    """The form names are compared in: case folded, ``_`` ``-`` and runs of spaces as one space."""
    return _SEPARATORS.sub(" ", name).strip().casefold()


def synonyms(label: str) -> tuple[str, ...]:
    """A label's comma-separated names (``tench, Tinca tinca``), or the label alone."""
    return tuple(part.strip() for part in label.split(",") if part.strip())


@cache
def imagenet_synsets() -> tuple[Synset, ...] | None:
    """The ImageNet-1k WordNet table, in class order, if an installed package ships one (timm does).

    Read as text without importing the package: importing timm costs seconds
    and nothing else of it is needed.
    """
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / "data" / "_info"
    try:
        wnids = (folder / "imagenet_synsets.txt").read_text(encoding="utf-8").split()
        lemmas = (folder / "imagenet_synset_to_lemma.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    names = dict(line.split("\t", 1) for line in lemmas if "\t" in line)
    return tuple(Synset(wnid, synonyms(names.get(wnid, ""))) for wnid in wnids)


def _aligned(labels: Sequence[str], table: Sequence[Synset]) -> bool:
    """Whether ``table`` describes ``labels`` position by position (the same 1,000 classes in the same order)."""
    if len(labels) != len(table) or not labels:
        return False
    agree = sum(
        1
        for label, synset in zip(labels, table)
        if {normalise(name) for name in synonyms(label)} & {normalise(name) for name in synset.names}
    )
    return agree >= _ALIGNED_FRACTION * len(labels)


class LabelMatcher:
    """Matches folder names and truth labels to a model's labels, tier by tier (see the module docstring)."""

    def __init__(self, labels: Sequence[str], table: Sequence[Synset] | None = None) -> None:
        self.labels = tuple(labels)
        exact: dict[str, set[str]] = {}
        loose: dict[str, set[str]] = {}
        alias: dict[str, set[str]] = {}
        wordnet: dict[str, set[str]] = {}
        for label in self.labels:
            exact.setdefault(label, set()).add(label)
            loose.setdefault(normalise(label), set()).add(label)
            for name in synonyms(label):
                alias.setdefault(normalise(name), set()).add(label)
        if table is not None and _aligned(self.labels, table):
            for label, synset in zip(self.labels, table):
                wordnet.setdefault(synset.wnid, set()).add(label)
                for name in synset.names:
                    alias.setdefault(normalise(name), set()).add(label)
        self._tiers = (exact, loose, alias, wordnet)
        self.uses_wordnet = bool(wordnet)

    def match(self, name: str) -> tuple[str | None, str]:
        """The label ``name`` stands for and ``""``, or None and why it matches none."""
        key = normalise(name)
        keys = (name, key, key, name.strip().lower())
        for tier, tier_key in zip(self._tiers, keys):
            found = tier.get(tier_key)
            if found and len(found) == 1:
                return next(iter(found)), ""
            if found:
                shown = ", ".join(sorted(found)[:3])
                return None, f"matches several labels ({shown})"
        if _WORDNET_ID.fullmatch(name.strip().lower()) and not self.uses_wordnet:
            return None, "a WordNet id, and no WordNet table for this model's labels is installed"
        return None, "matches no label"


class Truth:
    """Gives each image its true label, and counts the images whose name matched nothing.

    A subclass says which name stands for an image's class (``name_for``);
    matching and the tally of unmatched names live here, once.
    """

    def __init__(self, matcher: LabelMatcher) -> None:
        self.matcher = matcher
        self._matched: dict[str, tuple[str | None, str]] = {}
        self._unmatched: Counter[str] = Counter()

    def name_for(self, path: str) -> str | None:
        raise NotImplementedError

    def label_for(self, path: str) -> str:
        """The true label of the image at ``path``, or ``""`` when it has none."""
        name = self.name_for(path)
        if name is None:
            return ""
        if name not in self._matched:
            self._matched[name] = self.matcher.match(name)
        label, _ = self._matched[name]
        if label is None:
            self._unmatched[name] += 1
            return ""
        return label

    def unmatched(self) -> tuple[UnmatchedName, ...]:
        """Each name that matched no label, once, with how many images it left without truth."""
        return tuple(
            UnmatchedName(name, images, self._matched[name][1]) for name, images in sorted(self._unmatched.items())
        )


class FolderTruth(Truth):
    """The ImageFolder layout: an image's class is the folder right below the folder the user named.

    ``classify photos/`` with ``photos/espresso/a.jpg`` and
    ``photos/espresso/more/b.jpg`` gives both ``espresso``. An image directly
    inside a named folder, or named itself, takes the name of the folder it
    is in. Roots are tried in the order given, as the walk visits them.
    """

    def __init__(self, inputs: Iterable[str | os.PathLike[str]], matcher: LabelMatcher) -> None:
        super().__init__(matcher)
        self._roots = [os.fspath(path) for path in inputs if os.path.isdir(path)]

    def name_for(self, path: str) -> str | None:
        for root in self._roots:
            try:
                relative = os.path.relpath(path, root)
            except ValueError:  # another drive, on Windows
                continue
            if relative == os.pardir or relative.startswith(os.pardir + os.sep):
                continue
            parts = Path(relative).parts
            if len(parts) > 1:
                return parts[0]
            return os.path.basename(os.path.abspath(root))
        return os.path.basename(os.path.dirname(os.path.abspath(path))) or None


class CsvTruth(Truth):
    """Truth from a CSV with a header naming ``path`` and ``label`` columns.

    Paths match by resolved file, so ``./a.jpg``, an absolute path and a
    symlink name the same image; relative paths are taken from the CSV's
    own folder, so the file works from any working directory.
    """

    def __init__(self, names: dict[str, str], matcher: LabelMatcher) -> None:
        super().__init__(matcher)
        self._names = names

    def name_for(self, path: str) -> str | None:
        return self._names.get(os.path.realpath(path))


def read_truth_csv(path: str | os.PathLike[str]) -> dict[str, str]:
    """Resolved path -> label of a truth CSV, read before the model loads so a bad file fails fast."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise TruthError(f"truth file not found: {path}") from None
    except OSError as error:
        raise TruthError(f"cannot read truth file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise TruthError(f"truth file {path} is not UTF-8 text") from None
    except csv.Error as error:
        raise TruthError(f"truth file {path} is not a valid CSV ({error})") from None
    columns = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "path" not in columns or "label" not in columns:
        raise TruthError(f"truth file {path} needs a header with 'path' and 'label' columns")
    where, what = columns.index("path"), columns.index("label")
    base = path.parent
    names: dict[str, str] = {}
    for row in rows[1:]:
        if len(row) > max(where, what) and row[where] and row[what].strip():
            names[os.path.realpath(base / row[where])] = row[what].strip()
    return names


def truth_for(
    inputs: Sequence[str | os.PathLike[str]], labels: Sequence[str], names: dict[str, str] | None = None
) -> Truth:
    """Folder truth over ``inputs``, or with ``names`` (from ``read_truth_csv``) truth from a CSV, matched to ``labels``."""
    matcher = LabelMatcher(labels, imagenet_synsets())
    return FolderTruth(inputs, matcher) if names is None else CsvTruth(names, matcher)


def annotate(
    results: Iterable[ImageResult], truth: Truth | None, min_confidence: float = 0.0
) -> tuple[ImageResult, ...]:
    """Rows with their truth and the threshold in force, ready for the CSV and the scorecard."""
    if truth is None and not min_confidence:
        return tuple(results)
    return tuple(
        replace(
            result,
            min_confidence=min_confidence,
            true_label=truth.label_for(result.path) if truth is not None else result.true_label,
        )
        for result in results
    )


def offer_folder_truth(inputs: Sequence[str | os.PathLike[str]], labels: Sequence[str]) -> bool:
    """Whether most top-level folders of a drop are named after labels: the window then offers folder truth."""
    matcher = LabelMatcher(labels, imagenet_synsets())
    names = []
    for root in inputs:
        try:
            with os.scandir(root) as entries:
                names += [entry.name for entry in entries if entry.is_dir()]
        except OSError:
            continue
    matched = sum(1 for name in names if matcher.match(name)[0] is not None)
    return bool(names) and matched * 2 > len(names)
