"""What makes two runs' rows comparable, kept beside their CSV so ``--resume`` can check it.

Appending rows made by another model, other weights, another label set or
another preprocessing to a CSV would leave a file that looks whole and mixes
two experiments. So a run that writes a CSV leaves ``out.csv.run.json``
beside it with the run's identity, and a resume refuses a CSV whose identity
differs. The weights are identified by a digest of the tensors the model
really runs, so a retrained file under the same name, or random weights, is
told apart. The runtime (device, precision) is not part of it: it changes
scores only within rounding and is recorded in each row.

The sidecar also records the working folder of the run that wrote it, so
the CSV's relative paths can be resolved to the files they name from anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from .output_paths import write_replacing
from .regular_files import NotARegularFile, read_regular_file
from .sources import display_path

SIDECAR_SUFFIX = ".run.json"
SIDECAR_LIMIT_BYTES = 64 * 1024
FORMAT = 1


class ResumeRefused(Exception):
    """The CSV to continue was written by a different run; the message is one line for the user."""


@dataclass(frozen=True)
class RunIdentity:
    model: str
    weights_sha256: str
    labels_sha256: str
    preprocess: str
    top_k: int

    def differences(self, other: RunIdentity) -> list[str]:
        """The fields that differ, in the words of the message that names them."""
        words = {"model": "model", "weights_sha256": "weights", "labels_sha256": "labels",
                 "preprocess": "preprocessing", "top_k": "top-k"}
        return [words[field.name] for field in fields(self) if getattr(self, field.name) != getattr(other, field.name)]


@dataclass(frozen=True)
class RecordedRun:
    """A sidecar's content: the identity, and the folder relative paths in the CSV start from."""

    identity: RunIdentity
    cwd: str


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer, by name, as raw bytes: what the model computes with."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def labels_digest(labels: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(labels).encode("utf-8", "surrogatepass")).hexdigest()


def identity_of(model_name: str, module: torch.nn.Module, labels: tuple[str, ...], preprocess: str, top_k: int) -> RunIdentity:
    return RunIdentity(model_name, weights_digest(module), labels_digest(labels), preprocess, top_k)


def sidecar_path(csv_path: str | os.PathLike[str]) -> Path:
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.name + SIDECAR_SUFFIX)


def write_sidecar(csv_path: str | os.PathLike[str], identity: RunIdentity, cwd: str | None = None) -> None:
    record = {"format": FORMAT, **asdict(identity), "cwd": cwd or os.getcwd()}
    write_replacing(sidecar_path(csv_path), (json.dumps(record, indent=2) + "\n").encode("utf-8", "surrogateescape"))


def move_sidecar(from_csv: str | os.PathLike[str], to_csv: str | os.PathLike[str]) -> None:
    """Follow a CSV that was moved into place (an ``--overwrite`` run's partial file becoming the target)."""
    os.replace(sidecar_path(from_csv), sidecar_path(to_csv))


def read_sidecar(csv_path: str | os.PathLike[str]) -> RecordedRun | None:
    """The run recorded beside ``csv_path``; None when there is no sidecar; ResumeRefused when it is unusable."""
    path = sidecar_path(csv_path)
    shown = display_path(os.fspath(path))
    try:
        data = read_regular_file(path, SIDECAR_LIMIT_BYTES)
    except FileNotFoundError:
        return None
    except NotARegularFile as error:
        raise ResumeRefused(str(error)) from None
    except OSError as error:
        raise ResumeRefused(f"cannot read {shown}: {error.strerror or error}") from None
    try:
        record = json.loads(data.decode("utf-8", "surrogateescape"))
        identity = RunIdentity(**{field.name: record[field.name] for field in fields(RunIdentity)})
        return RecordedRun(identity, str(record["cwd"]))
    except (ValueError, KeyError, TypeError):
        raise ResumeRefused(f"{shown} is not a run record this version can read") from None


def check_resume(csv_path: str | os.PathLike[str], identity: RunIdentity, has_rows: bool) -> RecordedRun:
    """The recorded run to continue, or ResumeRefused naming what differs.

    A CSV with rows but no sidecar is refused: nothing says which model made
    those rows. One without rows (a run stopped before its first batch) has
    nothing to mix with and is continued as this run.
    """
    recorded = read_sidecar(csv_path)
    shown = display_path(os.fspath(csv_path))
    if recorded is None:
        if has_rows:
            raise ResumeRefused(
                f"cannot resume {shown}: no {sidecar_path(csv_path).name} beside it records which model, weights, "
                "labels and preprocessing wrote its rows; use --overwrite to start again, or another --csv"
            )
        return RecordedRun(identity, os.getcwd())
    different = recorded.identity.differences(identity)
    if different:
        raise ResumeRefused(
            f"cannot resume {shown}: it was written with different {', '.join(different)} "
            f"({recorded.identity.model}); use the same settings, --overwrite, or another --csv"
        )
    return recorded
