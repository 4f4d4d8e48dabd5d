"""The whole engine on hostile inputs: every input is exactly one row, and bad files never cost good ones."""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import corpus
from batch_classifier.engine.csv_output import CsvResultWriter, restore
from batch_classifier.engine.output_paths import OutputPlan
from batch_classifier.engine.pipeline import Classifier, RunConfig
from batch_classifier.engine.records import BatchOutcome, ImageResult
from batch_classifier.engine.sources import display_path
from support import done_paths


DECODE_PATHS = ["pillow", "batched-jpeg", "cuda"]


def on_decode_path(config: RunConfig, decode_path: str) -> Classifier:
    """Pillow on the CPU; the GPU path's batched JPEG decode run on the CPU; or the real thing on a GPU.

    The CUDA case runs only where a GPU is visible (``CUDA_VISIBLE_DEVICES=0``
    overrides the test suite's default of hiding it).
    """
    if decode_path == "cuda":
        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU")
        return Classifier(replace(config, device="cuda"))
    classifier = Classifier(config)
    if decode_path == "batched-jpeg":
        classifier.jpeg_device = torch.device("cpu")
    return classifier


@pytest.fixture(scope="module", params=DECODE_PATHS)
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    model, labels = corpus.make_tiny_model(tmp_path_factory.mktemp("model"))
    config = RunConfig(model=str(model), labels=str(labels), device="cpu", top_k=3, decode_workers=2)
    return on_decode_path(config, request.param)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[corpus.Case]:
    return corpus.build_corpus(tmp_path_factory.mktemp("corpus"))


def _run(classifier: Classifier, paths: list[str], batch_size: int = 64, max_wait_ms: float = 500.0,
         **kwargs: object) -> tuple[list[ImageResult], list[BatchOutcome]]:
    control = classifier.new_control()
    control.set_batch_size(batch_size)
    control.set_max_wait_ms(max_wait_ms)
    batches: list[BatchOutcome] = []
    summary = classifier.classify(paths, control, batches.append, **kwargs)  # type: ignore[arg-type]
    rows = [row for batch in batches for row in batch.results]
    assert summary.images == len(rows) and not summary.cancelled
    assert summary.errors == sum(row.status == "error" for row in rows)
    return rows, batches


def _check_row(row: ImageResult, case: corpus.Case) -> None:
    if case.ok:
        assert row.status == "ok", f"{case.name!r}: {row.error}"
        assert len(row.predictions) == 3 and row.label in corpus.COLOUR_LABELS and not row.error
        if case.colour in corpus.COLOUR_NAMES:
            assert row.label == corpus.COLOUR_NAMES[case.colour], f"{case.name!r} predicted {row.label}"
    else:
        assert row.status == "error" and not row.predictions, case.name
        assert row.error and "\n" not in row.error and "Traceback" not in row.error, (case.name, row.error)
        for word in case.reason:
            assert word in row.error.lower(), (case.name, row.error)


def test_every_input_is_exactly_one_row(tiny: Classifier, cases: list[corpus.Case]) -> None:
    rows, _ = _run(tiny, [case.path for case in cases])
    assert [row.index for row in rows] == list(range(len(cases)))
    assert [row.path for row in rows] == [case.path for case in cases]
    for row, case in zip(rows, cases):
        _check_row(row, case)


def test_bad_files_never_cost_their_batch_neighbours(tiny: Classifier, cases: list[corpus.Case]) -> None:
    """Good and bad files interleaved in the same batches: every good one is still predicted."""
    good = [case for case in cases if case.ok]
    bad = [case for case in cases if not case.ok]
    mixed = [case for pair in zip(good, bad) for case in pair] + good[len(bad):]
    for batch_size in (2, 5, 64):
        rows, batches = _run(tiny, [case.path for case in mixed], batch_size=batch_size)
        assert len(rows) == len(mixed)
        for row, case in zip(rows, mixed):
            _check_row(row, case)
        assert any(
            {row.status for row in batch.results} == {"ok", "error"} for batch in batches
        ), "the test must really put good and bad files in one batch"
        for batch in batches:
            assert batch.stats.images == sum(row.status == "ok" for row in batch.results)
            assert batch.stats.errors == sum(row.status == "error" for row in batch.results)


def test_only_bad_files(tiny: Classifier, cases: list[corpus.Case]) -> None:
    bad = [case for case in cases if not case.ok]
    rows, _ = _run(tiny, [case.path for case in bad], batch_size=4)
    for row, case in zip(rows, bad):
        _check_row(row, case)


def test_walking_the_corpus_folder(tiny: Classifier, cases: list[corpus.Case]) -> None:
    """A dropped folder: one row per image-named entry, the folder named folder.jpg walked into, loops ended."""
    folder = Path(cases[0].path).parent
    rows, _ = _run(tiny, [str(folder)])
    by_path = {row.path: row for row in rows}
    assert len(by_path) == len(rows), "a path came out twice"
    expected = {case.path for case in cases if Path(case.path).parent == folder}
    expected |= {str(folder / "loop_b.jpg"), str(folder / "folder.jpg" / "inside.png")}
    assert set(by_path) == expected
    assert str(folder / "folder.jpg") not in by_path
    assert by_path[str(folder / "folder.jpg" / "inside.png")].status == "ok"
    for case in cases:
        if case.path in by_path:
            _check_row(by_path[case.path], case)


def test_same_path_twice_is_one_row(tiny: Classifier, cases: list[corpus.Case]) -> None:
    first, second = cases[0].path, cases[1].path
    rows, _ = _run(tiny, [first, second, first, os.path.join(os.path.dirname(first), ".", os.path.basename(first))])
    assert [row.path for row in rows] == [first, second]


def test_unreadable_file_is_one_error_row(tiny: Classifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000 as a normal user; as root the kernel's refusal is emulated (see corpus.deny_reading)."""
    secret, fine = tmp_path / "secret.png", tmp_path / "fine.png"
    for path in (secret, fine):
        corpus.solid("RGB", (10, 10), corpus.RED).save(path)
    corpus.deny_reading(monkeypatch, secret)
    rows, _ = _run(tiny, [str(secret), str(fine)], batch_size=2)
    assert [(row.status, row.error) for row in rows] == [("error", "permission denied"), ("ok", "")]


def test_hostile_names_survive_the_csv(tiny: Classifier, cases: list[corpus.Case], tmp_path: Path) -> None:
    """All rows through the CSV writer: the file is UTF-8, parses, and gives every path back for --resume."""
    rows, batches = _run(tiny, [case.path for case in cases], batch_size=7)
    out = tmp_path / "out.csv"
    with CsvResultWriter.open(OutputPlan(str(out), "new"), 3) as writer:
        for batch in batches:
            writer.write_batch(batch.results)
    out.read_bytes().decode("utf-8")
    with open(out, encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    assert len(table) == len(cases) + 1
    assert all(len(line) == len(table[0]) for line in table)
    assert [restore(line[0]) for line in table[1:]] == [display_path(case.path) for case in cases]
    assert [line[1] for line in table[1:]] == [row.status for row in rows]
    assert done_paths(out, 3) == {os.path.realpath(case.path) for case in cases}
    rerun, _ = _run(tiny, [case.path for case in cases], skip=frozenset(done_paths(out, 3)))
    assert rerun == [], "--resume must find every path, hostile names included"


@pytest.fixture(scope="module", params=DECODE_PATHS)
def real_model(request: pytest.FixtureRequest) -> Classifier:
    """The bundled EfficientNet-Lite0 (offline, ~2 s): for tests where the prediction itself matters."""
    return on_decode_path(RunConfig(device="cpu", top_k=1, decode_workers=2), request.param)


def test_exif_rotated_photos_are_classified_upright(real_model: Classifier, tmp_path: Path) -> None:
    """The same photo stored turned with orientation 3, 6 or 8 gets the upright photo's prediction."""
    from PIL import Image

    upright = Image.open(corpus.SAMPLE_PHOTO).convert("RGB")
    paths = [str(corpus.exif_rotated(tmp_path / "upright.jpg", upright, 1))]
    paths += [str(corpus.exif_rotated(tmp_path / f"turned_{o}.jpg", upright, o)) for o in (3, 6, 8)]
    rows, _ = _run(real_model, paths, batch_size=4)
    expected = rows[0].label
    assert rows[0].status == "ok" and expected
    assert [row.label for row in rows] == [expected] * 4, [(row.path, row.label) for row in rows]
    assert all(abs(row.confidence - rows[0].confidence) < 0.05 for row in rows)
