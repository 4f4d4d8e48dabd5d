"""Runtimes (issue 16): ONNX Runtime on the CPU when the model exports and matches torch, torch otherwise.

Most tests export a tiny convnet (well under a second); the bundled model is
exported once per session into the session's cache folder (``conftest.py``).
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from batch_classifier.cli import main
from batch_classifier.engine.pipeline import Classifier, RunConfig
from batch_classifier.engine.runtimes import choice, export_process, onnx_export
from batch_classifier.engine.runtimes.onnx_export import CACHE_ENV, cache_folder
from batch_classifier.engine.runtimes.onnx_forward import OnnxForward
from batch_classifier.engine.runtimes.torch_forward import TorchForward
from batch_classifier.engine.threads import thread_split
from support import COLOUR_LABELS, TinyModel, write_colour_images

COLOURS = ["red", "green", "blue", "dark"]
REPO = Path(__file__).resolve().parents[1]


def _colour_head() -> nn.Linear:
    head = nn.Linear(3, len(COLOUR_LABELS))
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[4.0, -2, -2], [-2, 4, -2], [-2, -2, 4], [-1, -1, -1]]))
        head.bias.zero_()
    return head


class _Unexportable(nn.Module):
    """The colour classifier plus an FFT term that is zero: fine in torch, no ONNX operator for it."""

    def __init__(self) -> None:
        super().__init__()
        self.head = _colour_head()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.fft2(batch).abs().mean(dim=(1, 2, 3)).unsqueeze(1)
        return self.head(batch.mean(dim=(2, 3))) + spectrum * 0


def _save(module: nn.Module, folder: Path, name: str) -> TinyModel:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        # Traced, not scripted: no source to compile, so it cannot clash with what other tests scripted.
        torch.jit.trace(module.eval(), torch.rand(2, 3, 32, 32)).save(str(path))
    labels = folder / "labels.txt"
    labels.write_text("\n".join(COLOUR_LABELS) + "\n", encoding="utf-8")
    return TinyModel(path, labels)


@pytest.fixture(scope="module")
def convnet(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """A 1x1 convolution (identity), average pooling and the colour head: a convnet whose answers are known."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        conv.bias.zero_()
    module = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), _colour_head())
    return _save(module, tmp_path_factory.mktemp("convnet"), "convnet")


@pytest.fixture(scope="module")
def unexportable(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return _save(_Unexportable(), tmp_path_factory.mktemp("unexportable"), "fft")


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of this test's own, so what it finds there is what this test put there."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return cache_folder()


def _classifier(model: TinyModel, **overrides) -> Classifier:
    stages: list[str] = []
    config = RunConfig(model=str(model.path), labels=str(model.labels), device="cpu", **overrides)
    classifier = Classifier(config, on_stage=stages.append)
    classifier.stages = stages  # type: ignore[attr-defined]
    return classifier


def _rows(classifier: Classifier, paths: list[Path]) -> list:
    rows: list = []
    classifier.classify([str(path) for path in paths], on_batch=lambda outcome: rows.extend(outcome.results))
    return sorted(rows, key=lambda row: row.index)


def _entries(folder: Path) -> list[str]:
    return sorted(path.suffix for path in folder.iterdir()) if folder.is_dir() else []


def test_auto_exports_once_checks_and_then_uses_the_cache(convnet, own_cache, tmp_path, monkeypatch) -> None:
    first = _classifier(convnet)
    assert first.runner.runtime == "onnxruntime" and first.runtime_note == ""
    assert any("exporting" in stage for stage in first.stages)
    assert _entries(own_cache) == [".json", ".onnx"]
    record = json.loads(next(own_cache.glob("*.json")).read_text())
    assert record["opset"] == onnx_export.OPSET and record["torch"] == torch.__version__

    def no_export(*args, **kwargs):
        raise AssertionError("a cache hit must not export again")

    monkeypatch.setattr(onnx_export, "export_in_child", no_export)
    second = _classifier(convnet)
    assert second.runner.runtime == "onnxruntime" and second.stages == []
    paths = write_colour_images(tmp_path / "in", COLOURS * 3)
    assert [row.label for row in _rows(second, paths)] == COLOURS * 3
    assert {row.runtime for row in _rows(second, paths)} == {"onnxruntime"}


def test_onnxruntime_gives_torchs_answers_on_any_batch_size(convnet, tmp_path) -> None:
    paths = write_colour_images(tmp_path, COLOURS * 4)
    by_runtime = {}
    for runtime in ("torch", "onnxruntime"):
        classifier = _classifier(convnet, runtime=runtime, batch_size=7, max_wait_ms=1000)
        by_runtime[runtime] = _rows(classifier, paths)
    torch_rows, onnx_rows = by_runtime["torch"], by_runtime["onnxruntime"]
    assert {row.runtime for row in torch_rows} == {"torch"} and {row.runtime for row in onnx_rows} == {"onnxruntime"}
    assert {row.batch_size for row in onnx_rows} >= {7, 2}, "the batch axis is dynamic: no re-export per size"
    for ours, reference in zip(onnx_rows, torch_rows, strict=True):
        assert ours.label == reference.label
        assert ours.confidence == pytest.approx(reference.confidence, abs=1e-4)


def test_torch_runtime_exports_nothing(convnet, own_cache) -> None:
    classifier = _classifier(convnet, runtime="torch")
    assert isinstance(classifier.runner.forward, TorchForward) and classifier.stages == []
    assert not own_cache.exists()


def test_a_model_that_cannot_be_exported_runs_on_torch_with_one_line(unexportable, tmp_path, capfd, real_export_process) -> None:
    """In the export process, as the application does: torch's exporter dumps the graph it failed on to C++
    standard output, where a CSV may be going, and none of it may arrive there."""
    images = write_colour_images(tmp_path / "in", ["red", "blue"])
    out = tmp_path / "out.csv"
    code = main(["classify", "--model", str(unexportable.path), "--labels", str(unexportable.labels),
                 "--device", "cpu", "--quiet", "--csv", str(out), *map(str, images)])
    assert code == 0
    printed, err = capfd.readouterr()
    assert printed == ""
    warnings_said = [line for line in err.splitlines() if "not ONNX Runtime" in line]
    assert warnings_said == [
        "batch-classifier: warning: running on torch, not ONNX Runtime: it could not be exported to ONNX "
        "(Exporting the operator 'aten::fft_fft2' to ONNX opset version 17 is not supported)"
    ]
    assert "graph" not in err and "Traceback" not in err
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["label"], row["runtime"]) for row in rows] == [("red", "torch"), ("blue", "torch")]


def test_an_export_that_fails_the_parity_check_is_not_used_and_remembered(convnet, own_cache, monkeypatch) -> None:
    """Not used, and remembered: later auto runs go to torch at once with the same line; onnxruntime tries again."""
    monkeypatch.setattr(onnx_export, "MAX_PROBABILITY_DIFFERENCE", -1.0)
    classifier = _classifier(convnet)
    assert classifier.runner.runtime == "torch"
    assert classifier.runtime_note.startswith("running on torch, not ONNX Runtime: its ONNX export was not used: ")
    assert "differ from torch's" in classifier.runtime_note
    assert _entries(own_cache) == [".json"], "no exported file is kept, only the reason"
    monkeypatch.undo()
    monkeypatch.setenv(CACHE_ENV, str(own_cache.parent))
    exports = _count_exports(monkeypatch)
    again = _classifier(convnet)
    assert (again.runner.runtime, again.runtime_note, again.stages, exports) == ("torch", classifier.runtime_note, [], [])
    asked = _classifier(convnet, runtime="onnxruntime")
    assert asked.runner.runtime == "onnxruntime" and len(exports) == 1
    assert "trying the ONNX export again" in asked.stages[0]
    assert _classifier(convnet).runner.runtime == "onnxruntime", "the export that passed replaced the reason"


def _count_exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Export as the tests do, and list each attempt."""
    real = onnx_export.export_in_child
    attempts: list[Path] = []

    def counted(module, example, target, *args, **kwargs):
        attempts.append(target)
        return real(module, example, target, *args, **kwargs)

    monkeypatch.setattr(onnx_export, "export_in_child", counted)
    return attempts


def test_a_model_that_cannot_be_exported_is_remembered_with_its_line(unexportable, own_cache, monkeypatch) -> None:
    first = _classifier(unexportable)
    assert first.runner.runtime == "torch" and "aten::fft_fft2" in first.runtime_note
    record = json.loads(next(own_cache.glob("*.json")).read_text())
    assert record["failed"] in first.runtime_note and record["opset"] == onnx_export.OPSET
    exports = _count_exports(monkeypatch)
    later = _classifier(unexportable)
    assert (later.runner.runtime, later.runtime_note, exports) == ("torch", first.runtime_note, [])
    asked = _classifier(unexportable, runtime="onnxruntime")
    assert asked.runtime_note == first.runtime_note and len(exports) == 1, "onnxruntime tries the export again"


@pytest.mark.parametrize(
    "reason", ["the export took longer than 600 s", "the export process ended without a result (exit status -9)",
               "the export could not write its file ([Errno 28] No space left on device)"],
)
def test_a_failure_that_may_not_repeat_is_not_remembered(convnet, own_cache, monkeypatch, reason) -> None:
    def transient(*args, **kwargs):
        raise export_process.ExportFailed(reason)

    monkeypatch.setattr(onnx_export, "export_in_child", transient)
    classifier = _classifier(convnet)
    assert classifier.runner.runtime == "torch" and classifier.runtime_note.endswith(reason)
    assert _entries(own_cache) == []
    monkeypatch.undo()
    monkeypatch.setenv(CACHE_ENV, str(own_cache.parent))
    assert _classifier(convnet).runner.runtime == "onnxruntime", "the next run exports again"


def test_a_damaged_remembered_failure_is_not_trusted(unexportable, convnet, own_cache) -> None:
    _classifier(unexportable)
    record = next(own_cache.glob("*.json"))
    record.write_text(record.read_text()[:20])
    again = _classifier(unexportable)
    assert "cannot be read" in again.stages[0] and "exporting it again" in again.stages[0]
    assert "aten::fft_fft2" in again.runtime_note


def _garbage_with_matching_record(model_path: Path, record_path: Path) -> None:
    model_path.write_bytes(b"not an onnx model")
    record = json.loads(record_path.read_text())
    digest, size = onnx_export._file_digest(model_path)
    record_path.write_text(json.dumps({**record, "sha256": digest, "bytes": size}))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda model, record: model.write_bytes(model.read_bytes()[:100]), "does not match its record"),
        (lambda model, record: record.write_text("{not json"), "cannot be read"),
        (lambda model, record: model.unlink(), "is missing"),
        (_garbage_with_matching_record, "ONNX Runtime cannot run it"),
    ],
    ids=["truncated", "record-damaged", "model-missing", "garbage-matching-its-record"],
)
def test_a_damaged_cache_entry_is_exported_again_never_trusted(convnet, own_cache, damage, said) -> None:
    _classifier(convnet)
    model_path, record_path = next(own_cache.glob("*.onnx")), next(own_cache.glob("*.json"))
    damage(model_path, record_path)
    again = _classifier(convnet)
    assert again.runner.runtime == "onnxruntime"
    assert len(again.stages) == 2 and said in again.stages[0] and "exporting it again" in again.stages[0]
    digest, size = onnx_export._file_digest(model_path)
    assert json.loads(record_path.read_text())["sha256"] == digest


def test_a_stale_entry_that_answers_differently_is_replaced(convnet, own_cache, monkeypatch) -> None:
    """Two models whose key collides (or a file swapped under its record) are told apart by the parity check."""
    _classifier(convnet)
    monkeypatch.setattr(choice, "_PROBE_SEED", 1)
    real_parity = onnx_export.parity
    calls: list[int] = []

    def fails_first(reference, candidate):
        calls.append(1)
        result = real_parity(reference, candidate)
        return onnx_export.Parity(1.0, True) if len(calls) == 1 else result

    monkeypatch.setattr(onnx_export, "parity", fails_first)
    again = _classifier(convnet)
    assert again.runner.runtime == "onnxruntime" and len(calls) == 2
    assert "differ from torch's" in again.stages[0]


def test_an_unwritable_cache_falls_back_to_torch(convnet, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    classifier = _classifier(convnet)
    assert classifier.runner.runtime == "torch"
    assert "cannot be written" in classifier.runtime_note


class _FailingSession:
    """Wraps a real session and fails batches as a full memory, or a broken operator, would."""

    def __init__(self, inner, limit: int, message: str) -> None:
        self.inner, self.limit, self.message = inner, limit, message
        self.calls: list[int] = []

    def run(self, outputs, feeds):
        (batch,) = feeds.values()
        self.calls.append(len(batch))
        if len(batch) > self.limit:
            raise RuntimeError(self.message)
        return self.inner.run(outputs, feeds)


def test_onnxruntime_out_of_memory_splits_the_batch_like_torch(convnet, tmp_path) -> None:
    paths = write_colour_images(tmp_path, COLOURS * 4)
    classifier = _classifier(convnet, batch_size=16, max_wait_ms=1000)
    forward = classifier.runner.forward
    assert isinstance(forward, OnnxForward)
    forward.session = _FailingSession(
        forward.session, 3, "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer"
    )
    rows = _rows(classifier, paths)
    assert [row.label for row in rows] == COLOURS * 4 and all(row.status == "ok" for row in rows)
    assert classifier.runner.oom_cap is not None and classifier.runner.oom_cap <= 3


def test_a_batch_onnxruntime_fails_becomes_error_rows_with_the_reason(convnet, tmp_path) -> None:
    paths = write_colour_images(tmp_path, ["red", "green"])
    classifier = _classifier(convnet, batch_size=2, max_wait_ms=1000)
    classifier.runner.forward.session = _FailingSession(classifier.runner.forward.session, 0, "a kernel failed")
    rows = _rows(classifier, paths)
    assert [row.status for row in rows] == ["error", "error"]
    assert all(row.error == "the model failed: a kernel failed" for row in rows)
    assert classifier.runner.oom_cap is None, "only memory lowers the cap"


def test_onnxruntime_is_refused_where_it_cannot_run(convnet) -> None:
    model = Classifier(RunConfig(model=str(convnet.path), labels=str(convnet.labels), device="cpu", runtime="torch")).model
    with pytest.raises(ValueError, match="CPU only"):
        choice.choose_forward(model, torch.device("cuda"), None, "onnxruntime", 1)
    with pytest.raises(ValueError, match="fp32 only"):
        choice.choose_forward(model, torch.device("cpu"), torch.bfloat16, "onnxruntime", 1)
    forward, note = choice.choose_forward(model, torch.device("cpu"), torch.bfloat16, "auto", 1)
    assert isinstance(forward, TorchForward) and note == "", "auto with a half precision is torch, silently"


def test_csv_runtime_column_and_resume_across_runtimes(convnet, tmp_path) -> None:
    """Resume may change the runtime (its outputs match within 1e-4); each row says which one made it."""
    images = write_colour_images(tmp_path / "in", ["red", "green", "blue"])
    out = tmp_path / "out.csv"
    model = ["--model", str(convnet.path), "--labels", str(convnet.labels), "--device", "cpu", "--quiet"]
    assert main(["classify", *model, "--runtime", "torch", "--csv", str(out), str(images[0])]) == 0
    assert main(["classify", *model, "--resume", "--csv", str(out), str(tmp_path / "in")]) == 0
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(Path(row["path"]).name, row["runtime"]) for row in rows] == [
        (images[0].name, "torch"), (images[1].name, "onnxruntime"), (images[2].name, "onnxruntime")
    ]
    header = list(rows[0])
    assert header.index("runtime") == header.index("batch_size") + 1


def test_the_bundled_model_runs_on_onnxruntime_with_torchs_answers(real_export_process) -> None:
    """Exported once per session (the session's cache folder), in a child process as the application does;
    top-1 and probabilities as torch's on the samples."""
    samples = sorted((REPO / "resources" / "samples").iterdir())
    samples = [path for path in samples if path.suffix in (".png", ".jpg")]
    results = {}
    for runtime in ("auto", "torch"):
        classifier = Classifier(RunConfig(device="cpu", runtime=runtime, batch_size=4, max_wait_ms=1000))
        results[runtime] = _rows(classifier, samples)
    assert {row.runtime for row in results["auto"]} == {"onnxruntime"}
    for ours, reference in zip(results["auto"], results["torch"], strict=True):
        assert [p.label for p in ours.predictions] == [p.label for p in reference.predictions]
        for mine, theirs in zip(ours.predictions, reference.predictions, strict=True):
            assert mine.confidence == pytest.approx(theirs.confidence, abs=1e-4)


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64])
@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_the_thread_split_never_oversubscribes_the_cpu(cores: int, runtime: str) -> None:
    split = thread_split(cores, "cpu", runtime)
    assert split.decode_workers >= 1 and split.model_threads >= 1
    assert split.decode_workers + split.model_threads == max(2, cores)


def test_onnxruntime_leaves_more_cores_to_decoding_than_torch() -> None:
    """Its forward pass costs less than half of torch's, so decoding is the larger share of the work."""
    assert thread_split(16, "cpu", "onnxruntime").decode_workers > thread_split(16, "cpu", "torch").decode_workers
    assert thread_split(2, "cpu", "onnxruntime") == thread_split(2, "cpu", "torch")


def test_a_run_uses_the_split(tiny_model) -> None:
    classifier = Classifier(RunConfig(model=str(tiny_model.path), labels=str(tiny_model.labels), device="cpu", runtime="torch"))
    split = thread_split(os.cpu_count() or 1, "cpu", "torch")
    assert classifier.decode_workers == split.decode_workers
    assert torch.get_num_threads() == split.model_threads


def test_on_a_gpu_every_core_decodes() -> None:
    assert thread_split(16, "cuda", "torch").decode_workers == 16
