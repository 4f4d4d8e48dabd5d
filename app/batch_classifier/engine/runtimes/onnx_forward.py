"""The ONNX Runtime forward: an inference session on the CPU over an exported model.

ONNX Runtime reports a failed allocation as a generic runtime error; it is
turned into ``torch.OutOfMemoryError`` here so the runner splits the batch
and lowers the cap exactly as it does for torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import onnxruntime

INPUT_NAME = "images"
OUTPUT_NAME = "scores"
_OUT_OF_MEMORY_WORDS = ("failed to allocate", "bad_alloc", "out of memory")


def open_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    """A CPU session with ``threads`` intra-op threads that wait passively and flush denormals.

    Both settings match what the engine sets for torch (``engine/__init__.py``):
    spinning threads stall on a shared, loaded CPU, and denormal floats from
    real photos make x86 cores up to 100x slower.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings are about its own internals
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxForward:
    """Runs a batch through an ONNX Runtime session; the scores come back as a torch tensor."""

    name = "onnxruntime"
    memory_format = torch.contiguous_format

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self.session = session

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        try:
            (scores,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
        except MemoryError as error:
            raise torch.OutOfMemoryError(f"ONNX Runtime ran out of memory: {error}") from error
        except Exception as error:
            if any(words in str(error).lower() for words in _OUT_OF_MEMORY_WORDS):
                raise torch.OutOfMemoryError(f"ONNX Runtime ran out of memory: {error}") from error
            raise
        return torch.from_numpy(scores)
