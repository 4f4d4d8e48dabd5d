"""Export a model to ONNX once, check it against torch, and keep it in the user's cache folder.

An entry is named by a key over everything that could change the exported
graph: the weights' digest and the module's structure, the input size, the
torch and onnxruntime versions and the opset. Beside each ``KEY.onnx`` a
``KEY.json`` records the file's SHA-256 and size. An entry is used only
when its file matches that record, ONNX Runtime can open it and it passes
the parity check on a probe batch, every time it is loaded: a damaged,
truncated or stale entry is exported again, never trusted. A new export
lands in a partial file that becomes the entry only once it has passed.

A model that fails in a way that would repeat (``ExportFailed.lasting``: an
operator the exporter lacks, a failed parity check) leaves only ``KEY.json``,
with the reason in the same record shape (``CacheRecord``), so later runs
under ``auto`` go to torch at once with the same line instead of exporting
again on every run; ``--runtime onnxruntime`` tries again. A timeout, a
killed export or a full disk is not remembered.

The export itself runs in a child process (``export_process.py``), with
torch's TorchScript-based exporter (``dynamo=False``): on a 2-core CPU it
exports EfficientNet-Lite0 in 1.4 s against 9.8 s for the dynamo exporter,
with the same parity, and it also takes TorchScript models. It needs the
``onnx`` package.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..model_errors import first_line
from ..models import last_error_line
from ..output_paths import OutputRefused, replacing, write_replacing
from ..run_identity import weights_digest
from .export_process import OPSET, ExportFailed, export_in_child
from .onnx_forward import OnnxForward, open_session

if TYPE_CHECKING:
    import onnxruntime

FORMAT = 1
EXAMPLE_IMAGES = 2
"""The batch the export traces; the probe uses another size, so a batch axis that is not dynamic fails the check."""
MAX_PROBABILITY_DIFFERENCE = 1e-4
CACHE_ENV = "BATCH_CLASSIFIER_CACHE"
"""Overrides the cache folder (tests point it at a temporary one)."""
StageCallback = Callable[[str], None]
"""Told, in a few words, what slow step starts now (an export, its check)."""


def cache_folder() -> Path:
    """Where exported models are kept: ``$BATCH_CLASSIFIER_CACHE``, else the platform's cache folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override) / "onnx"
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "batch-classifier" / "onnx"


def _structure(module: torch.nn.Module) -> str:
    """What the module computes beyond its weights: TorchScript's graph, else its layers by type."""
    if isinstance(module, torch.jit.ScriptModule):
        return str(module.inlined_graph)
    layers = (f"{name}:{type(layer).__module__}.{type(layer).__qualname__}" for name, layer in module.named_modules())
    return "\n".join(layers) + "\n" + repr(module)


def cache_key(module: torch.nn.Module, crop_size: int) -> str:
    import onnxruntime

    parts = {
        "format": FORMAT,
        "weights": weights_digest(module),
        "structure": hashlib.sha256(_structure(module).encode("utf-8", "surrogatepass")).hexdigest(),
        "crop_size": crop_size,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opset": OPSET,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Parity:
    """How an exported model's answers on the probe batch compare with torch's."""

    max_probability_difference: float
    same_top1: bool

    @property
    def passed(self) -> bool:
        return self.same_top1 and self.max_probability_difference <= MAX_PROBABILITY_DIFFERENCE

    def describe(self) -> str:
        if not self.same_top1:
            return "its top-1 differs from torch's on the probe batch"
        return (
            f"its probabilities differ from torch's by up to {self.max_probability_difference:.1e} "
            f"(more than {MAX_PROBABILITY_DIFFERENCE:.0e})"
        )


def parity(reference: torch.Tensor, candidate: torch.Tensor) -> Parity:
    """Compare two (images, classes) score tensors as probabilities."""
    if candidate.shape != reference.shape or not torch.isfinite(candidate).all():
        return Parity(float("inf"), False)
    expected, got = reference.float().softmax(dim=1), candidate.float().softmax(dim=1)
    difference = float((expected - got).abs().max())
    return Parity(difference, bool((expected.argmax(dim=1) == got.argmax(dim=1)).all()))


@dataclass(frozen=True)
class CacheEntry:
    folder: Path
    key: str

    @property
    def model_path(self) -> Path:
        return self.folder / f"{self.key}.onnx"

    @property
    def record_path(self) -> Path:
        return self.folder / f"{self.key}.json"

    def exists(self) -> bool:
        return self.model_path.exists() or self.record_path.exists()

    def remove(self) -> None:
        """Delete what there is of the entry; an entry that cannot be deleted fails its check again next time."""
        for path in (self.model_path, self.record_path):
            try:
                path.unlink()
            except OSError:
                pass


class _Unusable(Exception):
    """A cache entry that must not be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class CacheRecord:
    """``KEY.json``, one shape for both outcomes: the exported file's SHA-256 and size, or why there is none."""

    sha256: str = ""
    bytes: int = 0
    failed: str = ""
    """The one-line reason of a lasting failure, as the run said it then; empty for an exported model."""

    def encoded(self) -> bytes:
        import onnxruntime

        fields = {"format": FORMAT, **asdict(self), "torch": torch.__version__,
                  "onnxruntime": onnxruntime.__version__, "opset": OPSET}
        return (json.dumps(fields, indent=2) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> CacheRecord:
        """The record at ``path``; ``_Unusable`` if it is missing, unreadable or not one of ours."""
        try:
            fields = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _Unusable(f"{path.name} is missing") from None
        except (OSError, ValueError) as error:
            raise _Unusable(f"cannot be read ({first_line(error)})") from None
        if not isinstance(fields, dict) or fields.get("format") != FORMAT:
            raise _Unusable("does not match its record (damaged or cut short)")
        record = cls(fields.get("sha256", ""), fields.get("bytes", 0), fields.get("failed", ""))
        if not (isinstance(record.sha256, str) and type(record.bytes) is int and isinstance(record.failed, str)):
            raise _Unusable("does not match its record (damaged or cut short)")
        return record


def _file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _checked_session(path: Path, threads: int, probe: torch.Tensor, expected: torch.Tensor) -> onnxruntime.InferenceSession:
    """A session over ``path`` whose answers on ``probe`` match ``expected``, else ``_Unusable``."""
    try:
        session = open_session(path, threads)
        got = OnnxForward(session)(probe)
    except Exception as error:  # a damaged file fails inside ONNX Runtime's parser in any way
        raise _Unusable(f"ONNX Runtime cannot run it ({first_line(error)})") from None
    result = parity(expected, got)
    if not result.passed:
        raise _Unusable(result.describe())
    return session


def _cached_session(
    entry: CacheEntry, record: CacheRecord, threads: int, probe: torch.Tensor, expected: torch.Tensor
) -> onnxruntime.InferenceSession:
    try:
        digest, size = _file_digest(entry.model_path)
    except FileNotFoundError:
        raise _Unusable(f"{entry.model_path.name} is missing") from None
    except OSError as error:
        raise _Unusable(f"cannot be read ({first_line(error)})") from None
    if (record.sha256, record.bytes) != (digest, size):
        raise _Unusable("does not match its record (damaged or cut short)")
    return _checked_session(entry.model_path, threads, probe, expected)


def _remember(entry: CacheEntry, failure: ExportFailed) -> None:
    """Keep a lasting failure's reason as the entry, so the next run under ``auto`` need not export again."""
    if not failure.lasting:
        return
    try:
        entry.folder.mkdir(parents=True, exist_ok=True)
        write_replacing(entry.record_path, CacheRecord(failed=str(failure)).encoded())
    except (OSError, OutputRefused):  # not remembered: the next run tries again, no worse than before
        pass


def _export_entry(
    entry: CacheEntry, module: torch.nn.Module, threads: int, probe: torch.Tensor, expected: torch.Tensor
) -> onnxruntime.InferenceSession:
    """Export into a partial file, check it, and only then make it the cache entry."""
    try:
        entry.folder.mkdir(parents=True, exist_ok=True)
        with replacing(entry.model_path) as replacement:  # the exporter writes the partial file by name
            export_in_child(module, probe[:EXAMPLE_IMAGES], replacement.partial)
            try:
                session = _checked_session(replacement.partial, threads, probe, expected)
            except _Unusable as why:
                raise ExportFailed(f"its ONNX export was not used: {why}", lasting=True) from None
            digest, size = _file_digest(replacement.partial)
        write_replacing(entry.record_path, CacheRecord(digest, size).encoded())
    except (OSError, OutputRefused) as error:
        entry.remove()
        raise ExportFailed(f"the ONNX cache {entry.folder} cannot be written ({first_line(error)})") from None
    return session


def prepared_session(
    module: torch.nn.Module,
    crop_size: int,
    reference: Callable[[torch.Tensor], torch.Tensor],
    probe: torch.Tensor,
    threads: int,
    on_stage: StageCallback | None = None,
    retry_failure: bool = False,
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session for ``module`` that answers ``probe`` as ``reference`` does; ``ExportFailed`` if none can be had.

    A cache entry that passes is used as it is; one that fails is said to
    ``on_stage`` and exported again. A remembered failure is raised again as
    it was, without an export, unless ``retry_failure`` (``--runtime
    onnxruntime``) asks for another attempt.
    """
    say = on_stage or (lambda stage: None)
    try:
        import onnxruntime  # noqa: F401 - a dependency, but a broken install must fall back, not crash
    except ImportError as error:
        raise ExportFailed(f"onnxruntime cannot be imported ({first_line(error)})") from None
    try:
        with torch.inference_mode():
            expected = reference(probe)
    except Exception as error:  # the user's model may refuse a batch of this size: then there is nothing to compare
        raise ExportFailed(f"the model fails in torch on a probe batch of {len(probe)} images ({last_error_line(error)})") from None
    entry = CacheEntry(cache_folder(), cache_key(module, crop_size))
    if entry.exists():
        try:
            record = CacheRecord.read(entry.record_path)
            if not record.failed:
                return _cached_session(entry, record, threads, probe, expected)
            if not retry_failure:
                raise ExportFailed(record.failed, lasting=True)
            say(f"trying the ONNX export again (last time: {record.failed})")
        except _Unusable as why:
            say(f"the cached ONNX model {entry.model_path.name} {why}: exporting it again")
            entry.remove()
    say("exporting the model to ONNX for ONNX Runtime (once per model and version)")
    try:
        return _export_entry(entry, module, threads, probe, expected)
    except ExportFailed as failure:
        _remember(entry, failure)
        raise
