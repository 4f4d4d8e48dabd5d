"""Start-up (issue 16): the command line lists and decodes the first images while torch and the model load.

A slow fake loader stands in for ``import torch`` and the model: it waits
for the first decoded image, so a run that decodes only after the model has
loaded fails here instead of only being slower.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from batch_classifier.cli import main
from batch_classifier.engine import decode_ahead, feeder, models, pipeline
from batch_classifier.engine.decode import InputSpec
from batch_classifier.engine.decode_ahead import DECODE_AHEAD_ENV, start_decode_ahead
from batch_classifier.engine.model_specs import DEFAULT_MODEL, LITE0_SPEC
from batch_classifier.engine.threads import decode_ahead_workers
from support import write_colour_images

COLOURS = ["red", "green", "blue", "dark"] * 3
LOAD_WAIT_S = 20.0


class _Counted:
    """Wraps a module's ``decode_file`` and counts the images it has decoded."""

    def __init__(self, module, monkeypatch: pytest.MonkeyPatch) -> None:
        self.done = 0
        self.first = threading.Event()
        real = module.decode_file

        def counted(*args, **kwargs):
            decoded = real(*args, **kwargs)
            self.done += 1
            self.first.set()
            return decoded

        monkeypatch.setattr(module, "decode_file", counted)


@pytest.fixture
def slow_loader(tiny_model, monkeypatch: pytest.MonkeyPatch):
    """The default model's name loads the tiny colour model with the default model's input, slowly:
    it returns once an image has been decoded ahead (or after LOAD_WAIT_S), saying how many there were."""
    ahead = _Counted(decode_ahead, monkeypatch)
    seen: list[int] = []

    def load(name: str, **kwargs):
        assert name == DEFAULT_MODEL
        ahead.first.wait(LOAD_WAIT_S)
        seen.append(ahead.done)
        loaded = models.load_model(str(tiny_model.path), labels_path=tiny_model.labels)
        return replace(loaded, spec=LITE0_SPEC)

    monkeypatch.setattr(pipeline, "load_model", load)
    monkeypatch.delenv(DECODE_AHEAD_ENV, raising=False)
    return seen


def _classify(folder: Path, out: Path) -> list[dict[str, str]]:
    assert main(["classify", str(folder), "--csv", str(out), "--quiet", "--device", "cpu", "--runtime", "torch"]) == 0
    with open(out, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_decoding_has_begun_before_the_model_load_returns(slow_loader, tmp_path, monkeypatch) -> None:
    images = write_colour_images(tmp_path / "in", COLOURS)
    after_loading = _Counted(feeder, monkeypatch)
    rows = _classify(images[0].parent, tmp_path / "out.csv")
    assert slow_loader[0] >= 1, "no image was decoded while the model loaded"
    assert [row["label"] for row in rows] == COLOURS
    assert after_loading.done == 0, "the images decoded ahead are used, not decoded again"


def test_with_decoding_ahead_switched_off_the_model_loads_first(slow_loader, tmp_path, monkeypatch) -> None:
    """The switch benchmarks/start_up.py times the old order with; it also shows that the test above can fail."""
    monkeypatch.setenv(DECODE_AHEAD_ENV, "0")
    monkeypatch.setattr(sys.modules[__name__], "LOAD_WAIT_S", 0.5)
    images = write_colour_images(tmp_path / "in", COLOURS[:2])
    rows = _classify(images[0].parent, tmp_path / "out.csv")
    assert slow_loader == [0]
    assert [row["label"] for row in rows] == COLOURS[:2]


def test_a_model_that_asks_for_another_input_gets_its_files_decoded_again(tiny_model, tmp_path, monkeypatch) -> None:
    """Pixels cut for the input the registry named are never given to a model that asks for another."""
    other = InputSpec(resize_size=36, crop_size=32)

    def load(name: str, **kwargs):
        return replace(models.load_model(str(tiny_model.path), labels_path=tiny_model.labels), spec=other)

    monkeypatch.setattr(pipeline, "load_model", load)
    images = write_colour_images(tmp_path / "in", COLOURS)
    after_loading = _Counted(feeder, monkeypatch)
    rows = _classify(images[0].parent, tmp_path / "out.csv")
    assert [row["label"] for row in rows] == COLOURS
    assert after_loading.done == len(COLOURS)


def test_nothing_is_decoded_ahead_for_a_model_whose_input_is_known_only_once_loaded(tmp_path) -> None:
    images = write_colour_images(tmp_path, ["red"])
    assert start_decode_ahead([], "resnet18", "exact", "auto") is None
    assert start_decode_ahead([], str(images[0]), "exact", "auto") is None
    assert start_decode_ahead([], DEFAULT_MODEL, "exact", "gpu") is None
    assert start_decode_ahead([], DEFAULT_MODEL, "exact", "auto") is not None


def test_a_folder_without_images_is_refused_before_torch_loads(tmp_path) -> None:
    """In a fresh process: the refusal comes from the walk, with no import of torch and no model loaded."""
    script = (
        "import sys\n"
        "from batch_classifier.cli import main\n"
        f"code = main(['classify', {str(tmp_path)!r}, '--csv', {str(tmp_path / 'out.csv')!r}])\n"
        "print(code, 'torch' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.stdout.split() == ["1", "False"], completed.stderr
    assert completed.stderr.startswith("batch-classifier: error: No images found in ")
    assert not (tmp_path / "out.csv").exists()


def test_while_the_model_loads_one_core_loads_and_the_others_decode() -> None:
    assert [decode_ahead_workers(cores) for cores in (1, 2, 16)] == [1, 1, 15]
