"""How a run shares the CPU's cores between decoding images and running the model.

One function decides, from the core count, the device and the runtime, so
the split is measured and tested in one place (``benchmarks/cpu_runtimes.py
--threads`` measures the alternatives; ``tests/test_runtimes.py`` pins the
rules). On the CPU the decode threads and the model's intra-op threads
together take the cores there are and no more: a model thread that shares
its core with a decode thread makes every other model thread wait for it at
each layer's barrier.
"""

from __future__ import annotations

from dataclasses import dataclass

DECODE_SHARE = {"torch": 0.35, "onnxruntime": 0.5}
"""The share of the cores that decodes when the CPU also runs the model. Per image on
a 2-core CPU (issue 16): decoding costs about 15 core-ms exact (6 with DCT scaling), the
forward pass 25 core-ms in torch and 11 in ONNX Runtime; the model's threads scale worse
than independent decode threads, so decoding gets a little more than its share of the work."""


@dataclass(frozen=True)
class ThreadSplit:
    decode_workers: int
    """Threads decoding and resizing images (Pillow releases the GIL while it works)."""
    model_threads: int
    """Intra-op threads of the model's runtime on the CPU."""


def thread_split(cores: int, device_type: str, runtime: str) -> ThreadSplit:
    """Decode threads and model threads for ``cores`` cores.

    On a GPU the model needs one host thread and every core decodes. On the
    CPU the cores are divided by ``DECODE_SHARE``, at least one each: on 2
    cores one decodes and one runs the model, for either runtime (measured
    on the loaded 2-core VM, exact preprocessing: torch 5.6 img/s with one
    model thread against 0.6 with two; ONNX Runtime 3.0 against 2.4).
    """
    cores = max(1, cores)
    if device_type != "cpu":
        return ThreadSplit(decode_workers=cores, model_threads=1)
    decode = min(max(1, round(cores * DECODE_SHARE[runtime])), max(1, cores - 1))
    return ThreadSplit(decode_workers=decode, model_threads=max(1, cores - decode))


def decode_ahead_workers(cores: int) -> int:
    """Decode threads while torch and the model load (``decode_ahead.py``): one core loads, the others decode."""
    return max(1, cores - 1)
