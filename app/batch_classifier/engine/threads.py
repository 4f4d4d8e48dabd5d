"""How a run shares the CPU's cores between decoding images and running the model.

One function decides, from the core count, the device and the runtime, so
the split is measured and tested in one place (``benchmarks/cpu_runtimes.py``
measures it; ``tests/test_threads.py`` pins it). The model's threads and the
decode threads together never ask for more cores than there are, beyond the
one decode thread that overlaps the model's work.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ThreadSplit:
    decode_workers: int
    """Threads decoding and resizing images (Pillow releases the GIL while it works)."""
    model_threads: int
    """Intra-op threads of the model's runtime on the CPU."""


def thread_split(cores: int, device_type: str, runtime: str) -> ThreadSplit:
    """Decode threads and model threads for ``cores`` cores.

    On a GPU the model needs one host thread and every core decodes. On the
    CPU the model gets every core and a quarter of them decode: with draft
    mode a photo decodes in a fraction of the time the model needs for it.
    """
    cores = max(1, cores)
    if device_type != "cpu":
        return ThreadSplit(decode_workers=cores, model_threads=1)
    return ThreadSplit(decode_workers=max(1, cores // 4), model_threads=cores)
