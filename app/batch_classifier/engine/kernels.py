"""How many CUDA kernels one batch launches: the fixed cost batching spreads, counted.

A model that launches hundreds of small kernels per batch pays their launch
cost once per batch, whatever its size; the count, next to the fixed-cost
fit, says where that cost comes from. One batch runs under
``torch.profiler`` (``occupancy.count_kernels``), on request only: profiling
slows the batch it watches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .occupancy import count_kernels
from .pipeline import Classifier
from .sweep import decode_for_sweep, repeated


def kernels_of_one_batch(classifier: Classifier, paths: Sequence[str], batch_size: int) -> int:
    """Decode the images (repeated to ``batch_size``) and count the kernels of one batch of them."""
    batch = torch.stack(repeated(decode_for_sweep(classifier, paths), batch_size))
    return count_kernels(lambda: classifier.runner.run(batch), classifier.device)
