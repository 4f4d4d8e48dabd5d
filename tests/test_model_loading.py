"""Loading the user's model files: safe formats load, anything that could run code is refused."""

from __future__ import annotations

import pickle
import random
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import corpus
from batch_classifier.engine.models import ModelLoadError, load_model
from support import RunsCode, write_labels


@pytest.mark.parametrize("how", ["torch.save", "pickle.dumps"])
@pytest.mark.parametrize("arch", ["resnet18", None])
def test_checkpoint_that_runs_code_is_refused(tmp_path: Path, how: str, arch: str | None) -> None:
    marker = tmp_path / "PWNED"
    model = tmp_path / "evil.pt"
    payload = {"fc.weight": RunsCode(marker)}
    if how == "torch.save":
        torch.save(payload, model)
    else:
        model.write_bytes(pickle.dumps(payload))
    with pytest.raises(ModelLoadError) as refused:
        load_model(str(model), arch=arch, labels_path=write_labels(tmp_path / "labels.txt", 3))
    message = str(refused.value)
    assert "refused" in message and "could run code" in message
    assert "weights_only=False" not in message and "weights_only` set to `False" not in message
    assert "\n" not in message
    assert not marker.exists(), "unpickling ran the file's code"


def test_whole_pickled_module_is_refused_with_a_way_out(tmp_path: Path) -> None:
    model = tmp_path / "whole.pt"
    torch.save(torchvision.models.get_model("resnet18", weights=None, num_classes=3), model)
    for arch in ("resnet18", None):
        with pytest.raises(ModelLoadError) as refused:
            load_model(str(model), arch=arch)
        message = str(refused.value)
        assert "torchvision.models.resnet.ResNet" in message
        assert "safetensors.torch.save_file(model.state_dict()" in message and "torch.export.save" in message
        assert "\n" not in message


def test_torchscript_with_labels_loads_and_runs(tmp_path: Path) -> None:
    model_path, labels_path = corpus.make_tiny_model(tmp_path)
    loaded = load_model(str(model_path), labels_path=labels_path)
    assert loaded.labels == corpus.COLOUR_LABELS
    assert "TorchScript" in loaded.name
    red = torch.zeros(1, 3, loaded.spec.crop_size, loaded.spec.crop_size)
    red[:, 0] = 1.0
    scores = loaded.module(torch.cat([red, red.roll(1, dims=1)]))
    assert tuple(scores.shape) == (2, 4)
    assert [loaded.labels[i] for i in scores.argmax(dim=1)] == ["red", "green"]


def test_torchscript_without_labels_gets_numbered_classes(tmp_path: Path) -> None:
    model_path, _ = corpus.make_tiny_model(tmp_path)
    assert load_model(str(model_path)).labels == ("class 0", "class 1", "class 2", "class 3")


@pytest.mark.parametrize("count", [3, 5])
def test_labels_that_do_not_match_the_outputs_are_refused(tmp_path: Path, count: int) -> None:
    model_path, _ = corpus.make_tiny_model(tmp_path)
    with pytest.raises(ModelLoadError, match=f"has {count} labels but the model has 4 outputs"):
        load_model(str(model_path), labels_path=write_labels(tmp_path / "wrong.txt", count))


def test_torchvision_state_dict_with_labels_loads(tmp_path: Path) -> None:
    weights = tmp_path / "resnet18_3.pt"
    torch.save(torchvision.models.get_model("resnet18", weights=None, num_classes=3).state_dict(), weights)
    loaded = load_model(str(weights), arch="resnet18", labels_path=write_labels(tmp_path / "labels.txt", 3))
    assert loaded.labels == ("label 0", "label 1", "label 2")
    assert loaded.spec.crop_size == 224
    assert not loaded.module.training
    with torch.inference_mode():
        assert tuple(loaded.module(torch.rand(1, 3, 224, 224)).shape) == (1, 3)


def test_state_dict_with_the_wrong_number_of_labels_says_so(tmp_path: Path) -> None:
    weights = tmp_path / "resnet18_3.pt"
    torch.save(torchvision.models.get_model("resnet18", weights=None, num_classes=3).state_dict(), weights)
    with pytest.raises(ModelLoadError, match="has 5 labels but the model has 3 outputs"):
        load_model(str(weights), arch="resnet18", labels_path=write_labels(tmp_path / "labels.txt", 5))


def test_state_dict_wrapped_in_a_checkpoint_dict_loads(tmp_path: Path) -> None:
    weights = tmp_path / "checkpoint.pth"
    state = torchvision.models.get_model("resnet18", weights=None, num_classes=3).state_dict()
    torch.save({"state_dict": state, "epoch": 3}, weights)
    assert len(load_model(str(weights), arch="resnet18").labels) == 3


def test_state_dict_without_arch_asks_for_it(tmp_path: Path) -> None:
    weights = tmp_path / "resnet18_3.pt"
    torch.save(torchvision.models.get_model("resnet18", weights=None, num_classes=3).state_dict(), weights)
    with pytest.raises(ModelLoadError, match="--arch"):
        load_model(str(weights))


def test_state_dict_for_another_arch_is_refused(tmp_path: Path) -> None:
    weights = tmp_path / "resnet18_3.pt"
    torch.save(torchvision.models.get_model("resnet18", weights=None, num_classes=3).state_dict(), weights)
    with pytest.raises(ModelLoadError, match="does not fit mobilenet_v3_small"):
        load_model(str(weights), arch="mobilenet_v3_small")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_model_that_fails_on_an_image_is_a_load_error(tmp_path: Path) -> None:
    """A TorchScript model built for 1-channel input fails the probe with one clear line, not a traceback."""
    model = tmp_path / "grey_only.pt"
    torch.jit.script(nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())).save(str(model))
    with pytest.raises(ModelLoadError) as refused:
        load_model(str(model))
    message = str(refused.value)
    assert "\n" not in message and "channels" in message


@pytest.mark.parametrize("arch", ["resnet18", None])
@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "cannot read model file .*: the file is empty"),
        (b"not a model at all\n", "is a text file, not a model"),
        (b"cat\ndog\n", "is a text file, not a model"),  # a text file can begin like a pickle
        (bytes(random.Random(13).randrange(256) for _ in range(4096)), "is not a model file"),
        (b"\x80\x04" + bytes(random.Random(14).randrange(256) for _ in range(4096)), "is not a model file"),
        (b"PK\x03\x04" + bytes(4096), "a damaged or unsupported archive"),
        (pickle.dumps({"epoch": 3}), "is not a model file \\(a pickle without tensors\\)"),
        (None, "not found"),
    ],
    ids=["empty", "text", "text-like-a-pickle", "random", "random-after-a-pickle-header", "broken-zip",
         "pickle-without-tensors", "missing"],
)
def test_unusable_files_are_clear_errors(tmp_path: Path, content: bytes | None, words: str, arch: str | None) -> None:
    """Said from what the file is: neither torch's unpickler internals ("101") nor a false alarm about code."""
    model = tmp_path / "model.pt"
    if content is not None:
        model.write_bytes(content)
    with pytest.raises(ModelLoadError, match=words) as refused:
        load_model(str(model), arch=arch)
    message = str(refused.value)
    assert "\n" not in message and "could run code" not in message and "weights_only" not in message


@pytest.mark.parametrize("how", ["torch.save", "pickle.dumps", "pickle protocol 0", "legacy torch.save"])
def test_a_refusal_names_what_the_file_asks_for_and_nothing_leaks_before_it(tmp_path: Path, how: str) -> None:
    """torch warns about a pickle's protocol just before it refuses it: that warning must not reach the user."""
    marker = tmp_path / "PWNED"
    model = tmp_path / "evil.pt"
    payload = {"fc.weight": RunsCode(marker)}
    if how == "torch.save":
        torch.save(payload, model)
    elif how == "legacy torch.save":
        torch.save(payload, model, _use_new_zipfile_serialization=False)
    else:
        model.write_bytes(pickle.dumps(payload, protocol=0 if how == "pickle protocol 0" else 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ModelLoadError, match=r"\(it asks for posix\.system\), and loading them could run code"):
            load_model(str(model))
    assert [str(warning.message) for warning in caught] == []
    assert not marker.exists()


def test_labels_file_that_is_not_utf8(tmp_path: Path) -> None:
    model_path, _ = corpus.make_tiny_model(tmp_path)
    labels = tmp_path / "latin1.txt"
    labels.write_bytes(b"caf\xe9\nb\nc\nd\n")
    with pytest.raises(ModelLoadError, match="not UTF-8"):
        load_model(str(model_path), labels_path=labels)


def test_a_blank_label_inside_the_file_is_refused_and_blank_lines_at_the_end_are_not(tmp_path: Path) -> None:
    model_path, _ = corpus.make_tiny_model(tmp_path)
    holed = tmp_path / "holed.txt"
    holed.write_text("red\n \nblue\ndark\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"holed.txt: line 2 is blank; every class needs a name"):
        load_model(str(model_path), labels_path=holed)
    trailing = tmp_path / "trailing.txt"
    trailing.write_text("red\ngreen\nblue\ndark\n\n\n", encoding="utf-8")
    assert load_model(str(model_path), labels_path=trailing).labels == corpus.COLOUR_LABELS
