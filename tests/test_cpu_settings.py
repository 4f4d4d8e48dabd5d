"""The two process settings behind the CPU speed (README, "Speed") must stay in place."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CHECK = textwrap.dedent(
    """
    import os, sys, threading
    import batch_classifier.engine
    assert "torch" not in sys.modules, "the engine package itself must not load torch (decoding starts before it)"
    import batch_classifier.engine.pipeline  # what runs a model: torch, with the process settings
    import torch

    def denormal_survives() -> bool:
        return (torch.tensor([1e-39]) * 1.0).item() != 0.0

    seen = []
    worker = threading.Thread(target=lambda: seen.append(denormal_survives()))
    worker.start()
    worker.join()
    print(os.environ.get("OMP_WAIT_POLICY"), denormal_survives(), seen[0])
    """
)


def test_the_pipeline_import_flushes_denormals_in_every_thread_and_waits_passively() -> None:
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    completed = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, env=environment
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["PASSIVE", "False", "False"]


def test_without_the_engine_denormals_survive() -> None:
    """Guards the test above: on this CPU a denormal really is kept unless flushed."""
    script = "import torch; print((torch.tensor([1e-39]) * 1.0).item() != 0.0)"
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.stdout.strip() == "True"
