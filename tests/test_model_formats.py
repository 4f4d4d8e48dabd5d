"""Fine-tuned checkpoints in the formats people save today: safetensors and torch.export programs.

Each round trip saves a small model, loads it through the registry and
checks the predictions are the model's own; each hostile file proves its
code did not run (a marker file it would create stays absent).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from batch_classifier.engine.models import ModelLoadError, load_model
from support import RunsCode, write_labels


def _same_predictions(loaded: nn.Module, original: nn.Module, size: int = 224) -> None:
    images = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(loaded(images), original.eval()(images), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ["resnet18", "timm/resnet18"])
def test_safetensors_state_dict_round_trip(tmp_path: Path, arch: str) -> None:
    if arch.startswith("timm/"):
        original = pytest.importorskip("timm").create_model("resnet18", pretrained=False, num_classes=5)
    else:
        original = torchvision.models.get_model(arch, weights=None, num_classes=5)
    weights = tmp_path / "finetuned.safetensors"
    save_file(original.state_dict(), str(weights))
    loaded = load_model(str(weights), arch=arch, labels_path=write_labels(tmp_path / "labels.txt", 5))
    assert loaded.labels[0] == "label 0" and len(loaded.labels) == 5
    assert loaded.name == f"finetuned.safetensors ({arch})"
    _same_predictions(loaded.module, original)


def test_safetensors_classes_come_from_the_head_not_thewrite_labels(tmp_path: Path) -> None:
    original = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=7)
    weights = tmp_path / "seven.safetensors"
    save_file(original.state_dict(), str(weights))
    assert load_model(str(weights), arch="mobilenet_v3_small").labels == tuple(f"class {i}" for i in range(7))
    with pytest.raises(ModelLoadError, match="has 3 labels but the model has 7 outputs"):
        load_model(str(weights), arch="mobilenet_v3_small", labels_path=write_labels(tmp_path / "three.txt", 3))


def test_timm_state_dict_gets_timm_preprocessing(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    original = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=2)
    weights = tmp_path / "lite0.safetensors"
    save_file(original.state_dict(), str(weights))
    spec = load_model(str(weights), arch="timm/efficientnet_lite0").spec
    config = timm.data.resolve_model_data_config(original)
    assert spec.crop_size == config["input_size"][1] and spec.resize_size == int(224 / config["crop_pct"])
    assert spec.mean == tuple(config["mean"]) and spec.std == tuple(config["std"])
    assert spec.resample.name.lower() == config["interpolation"]


def test_data_parallel_prefix_is_dropped(tmp_path: Path) -> None:
    original = torchvision.models.get_model("resnet18", weights=None, num_classes=3)
    weights = tmp_path / "ddp.safetensors"
    save_file({f"module.{key}": value for key, value in original.state_dict().items()}, str(weights))
    _same_predictions(load_model(str(weights), arch="resnet18").module, original)


@pytest.mark.parametrize(
    ("arch", "words"),
    [("resnet9000", "unknown architecture 'resnet9000'"), ("mobilenet_v3_small", "does not fit mobilenet_v3_small")],
)
def test_safetensors_for_a_wrong_architecture_is_one_line(tmp_path: Path, arch: str, words: str) -> None:
    weights = tmp_path / "resnet.safetensors"
    save_file(torchvision.models.get_model("resnet18", weights=None, num_classes=3).state_dict(), str(weights))
    with pytest.raises(ModelLoadError, match=words) as refused:
        load_model(str(weights), arch=arch)
    assert "\n" not in str(refused.value)


def test_garbage_safetensors_is_one_line(tmp_path: Path) -> None:
    weights = tmp_path / "broken.safetensors"
    weights.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelLoadError, match="cannot read safetensors file") as refused:
        load_model(str(weights), arch="resnet18")
    assert "\n" not in str(refused.value)


class _Small(nn.Module):
    """A quick convolutional classifier: exports in a second, any input size."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    model = _Small().eval()
    path = tmp_path_factory.mktemp("pt2") / "small.pt2"
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (torch.rand(2, 3, 160, 160),), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    return path, model


def test_exported_program_round_trip(exported: tuple[Path, nn.Module], tmp_path: Path) -> None:
    path, model = exported
    loaded = load_model(str(path), labels_path=write_labels(tmp_path / "labels.txt", 4))
    assert loaded.name == "small.pt2 (torch.export)" and loaded.labels[3] == "label 3"
    assert (loaded.spec.crop_size, loaded.spec.resize_size) == (160, 182)
    _same_predictions(loaded.module, model, size=160)


def test_exported_program_with_a_fixed_batch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(_Small().eval(), (torch.rand(1, 3, 64, 64),)), path)
    with pytest.raises(ModelLoadError, match="exported for batches of exactly 1; export it with dynamic_shapes"):
        load_model(str(path))


def _rewritten(source: Path, target: Path, part: str, change) -> Path:  # type: ignore[no-untyped-def]
    """A copy of a .pt2 archive with one member's bytes replaced by ``change(old_bytes)``."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            copy.writestr(item, change(data) if item.filename.endswith(part) else data)
    return target


def _hostile_sample_inputs(marker: Path):  # type: ignore[no-untyped-def]
    def change(_: bytes) -> bytes:
        buffer = io.BytesIO()
        torch.save(((RunsCode(marker),), {}), buffer)
        return buffer.getvalue()

    return change


def test_pickled_code_in_an_exported_program_does_not_run(exported: tuple[Path, nn.Module], tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    hostile = _rewritten(exported[0], tmp_path / "hostile.pt2", "sample_inputs/model.pt", _hostile_sample_inputs(marker))
    with pytest.raises(ModelLoadError, match="refused to load .*sample inputs are not plain tensors") as refused:
        load_model(str(hostile))
    assert "\n" not in str(refused.value)
    assert not marker.exists(), "loading the archive ran its code"


@pytest.mark.filterwarnings("ignore")
def test_torch_export_load_alone_would_have_run_it(exported: tuple[Path, nn.Module], tmp_path: Path) -> None:
    """The threat the check above stops is real: torch retries the sample inputs with full unpickling."""
    marker = tmp_path / "PWNED"
    hostile = _rewritten(exported[0], tmp_path / "hostile.pt2", "sample_inputs/model.pt", _hostile_sample_inputs(marker))
    try:
        torch.export.load(hostile)
    except Exception:  # what happens after the payload ran does not matter
        pass
    assert marker.exists()


def _edit_program(edit):  # type: ignore[no-untyped-def]
    def change(data: bytes) -> bytes:
        program = json.loads(data)
        edit(program)
        return json.dumps(program).encode()

    return change


def _first_node(program: dict) -> dict:
    return program["graph_module"]["graph"]["nodes"][0]


def _set_first_expression(program: dict, text: str) -> None:
    stack: list = [program]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "expr_str" in item:
                item["expr_str"] = text
                return
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    raise AssertionError("no symbolic expression in the program")


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda p: _first_node(p).update(target="torch.hub.load"), "calls 'torch.hub.load'"),
        (lambda p: _set_first_expression(p, "__import__('os').system('touch {marker}')"), "not plain arithmetic"),
        (lambda p: p.update(guards_code=["__import__('os').system('touch {marker}')"]), "guard code"),
    ],
    ids=["graph-calls-python", "expression-evaluates-code", "guard-code"],
)
def test_exported_program_that_would_run_python_is_refused(
    exported: tuple[Path, nn.Module], tmp_path: Path, edit, words: str  # type: ignore[no-untyped-def]
) -> None:
    marker = tmp_path / "PWNED"

    def edit_with_marker(program: dict) -> None:
        edit(program)
        text = json.dumps(program).replace("{marker}", str(marker))
        program.clear()
        program.update(json.loads(text))

    hostile = _rewritten(exported[0], tmp_path / "hostile.pt2", "models/model.json", _edit_program(edit_with_marker))
    with pytest.raises(ModelLoadError, match=words):
        load_model(str(hostile))
    assert not marker.exists()


def test_exported_program_with_a_foreign_part_is_refused(exported: tuple[Path, nn.Module], tmp_path: Path) -> None:
    hostile = tmp_path / "extra.pt2"
    hostile.write_bytes(exported[0].read_bytes())
    with zipfile.ZipFile(hostile, "a") as archive:
        archive.writestr("small/data/weights/model.pt", b"legacy pickled weights")
    with pytest.raises(ModelLoadError, match="not part of an exported program"):
        load_model(str(hostile))
