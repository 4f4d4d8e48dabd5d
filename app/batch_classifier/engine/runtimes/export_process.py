"""The ONNX export runs in a child process, so it never holds this process's interpreter lock.

Measured on 2 cores: ``import onnx`` holds the GIL for 2.3 s, and the
TorchScript exporter's C++ passes hold it for up to 1.3 s at a time on
EfficientNet-Lite0. Done on the window's worker thread, either would freeze
the window. So a fresh interpreter (``python -m`` this module; the frozen
app's entry script passes ``EXPORT_WORKER_FLAG`` here) gets the module and
an example batch through files in a private temporary folder, exports it to
the path it is given, and says how it went in a small JSON file; the parent
only waits. Its standard output goes to the null device: on a model it
cannot export, torch's exporter prints the whole graph there from C++.

The module file is a full pickle (``torch.save`` of the module, or
TorchScript's own archive): this process writes it a moment earlier into a
folder only its user can read, so loading it runs nothing that was not
already running here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ..model_errors import first_line
from ..models import last_error_line
from .onnx_forward import INPUT_NAME, OUTPUT_NAME

OPSET = 17
EXPORT_TIMEOUT_S = 600.0
"""A model that takes longer than this to export is not worth waiting for: it runs on torch."""
EXPORT_WORKER_FLAG = "--onnx-export-worker"
"""The frozen app's entry script hands a command line that starts with this to ``main``."""


class ExportFailed(Exception):
    """The model cannot run on ONNX Runtime; the message says why in one line.

    ``lasting`` when the same model would fail the same way again (an
    operator the exporter lacks, a module that cannot be pickled, a failed
    parity check): the cache remembers those. A timeout, a killed child or a
    full disk may not happen next time, so they are not remembered.
    """

    def __init__(self, reason: str, lasting: bool = False) -> None:
        super().__init__(reason)
        self.lasting = lasting


def export_to(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """Write ``module``, traced on ``example``, to ``path`` as ONNX (in the child process)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings say nothing to a user
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
    except OSError as error:  # writing the file (a full disk): not the model's fault
        raise ExportFailed(f"the export could not write its file ({first_line(error)})") from None
    except Exception as error:  # the exporter fails on unsupported operators in many ways
        raise ExportFailed(f"it could not be exported to ONNX ({last_error_line(error)})", lasting=True) from None


def _save(module: torch.nn.Module, example: torch.Tensor, folder: Path) -> str:
    """Write the module and the example for the child; returns how the module was written."""
    torch.save(example, folder / "example.pt")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated; users' models still are
            if isinstance(module, torch.jit.ScriptModule):
                torch.jit.save(module, str(folder / "module.pt"))
                return "torchscript"
            torch.save(module, folder / "module.pt")
    except OSError as error:  # a full temporary folder
        raise ExportFailed(f"it could not be handed to the export process ({first_line(error)})") from None
    except Exception as error:  # lambdas, hooks, local classes: whatever cannot be pickled
        raise ExportFailed(f"it could not be handed to the export process ({first_line(error)})", lasting=True) from None
    return "pickle"


def main(argv: Sequence[str]) -> int:
    """In the child: load FOLDER's module, export it to TARGET, write FOLDER/status.json (ok, or the reason)."""
    folder, kind, target = Path(argv[0]), argv[1], Path(argv[2])
    status: dict[str, object] = {"ok": True, "reason": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "torchscript":
                module = torch.jit.load(str(folder / "module.pt"), map_location="cpu")
            else:
                module = torch.load(folder / "module.pt", map_location="cpu", weights_only=False)
        export_to(module, torch.load(folder / "example.pt", weights_only=True), target)
    except ExportFailed as why:
        status = {"ok": False, "reason": str(why), "lasting": why.lasting}
    except Exception as error:  # noqa: BLE001 - anything else is still one line for the parent
        status = {"ok": False, "reason": f"the export process failed ({first_line(error)})"}
    (folder / "status.json").write_text(json.dumps(status), encoding="utf-8")
    return 0


def _command(folder: str, kind: str, target: Path) -> tuple[list[str], dict[str, str]]:
    """The child's command line and environment: the same interpreter importing this same package."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: its entry script routes the flag here
        return [sys.executable, EXPORT_WORKER_FLAG, folder, kind, str(target)], dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[3])
    paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return [sys.executable, "-m", __name__, folder, kind, str(target)], {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def export_in_child(module: torch.nn.Module, example: torch.Tensor, target: Path, timeout_s: float = EXPORT_TIMEOUT_S) -> None:
    """Export ``module`` traced on ``example`` to ``target`` in a child process; ``ExportFailed`` says why not.

    The child is killed if this process is interrupted while it waits.
    """
    with tempfile.TemporaryDirectory(prefix="batch-classifier-export-") as folder:
        kind = _save(module, example, Path(folder))
        command, environment = _command(folder, kind, target)
        try:
            done = subprocess.run(
                command, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise ExportFailed(f"the export took longer than {timeout_s:.0f} s") from None
        except OSError as error:
            raise ExportFailed(f"the export process could not start ({first_line(error)})") from None
        try:
            status = json.loads((Path(folder) / "status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            said = last_error_line(RuntimeError(done.stderr.decode("utf-8", "replace"))) if done.stderr.strip() else ""
            raise ExportFailed(
                f"the export process ended without a result (exit status {done.returncode}{': ' + said if said else ''})"
            ) from None
    if not status.get("ok"):
        raise ExportFailed(str(status.get("reason") or "the export failed"), lasting=status.get("lasting") is True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
