"""The smoke test of any install or build: the default model must still see a cat as a cat.

It loads the bundled model, classifies the bundled photos, and checks the
labels that an ImageNet EfficientNet-Lite0 gives them, so a broken wheel, a
missing resource or mangled preprocessing all fail here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .pipeline import Classifier, RunConfig
from .records import BatchOutcome, ImageResult
from .resources import sample_images

EXPECTED_LABELS: dict[str, frozenset[str]] = {
    "chelsea.png": frozenset({"tabby", "tiger cat", "Egyptian cat"}),
    "coffee.png": frozenset({"espresso"}),
    "rocket.jpg": frozenset({"missile", "projectile"}),
}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def run_self_test(device: str = "auto", report: Callable[[Check], None] = lambda check: None) -> bool:
    """Run every check, reporting each as it completes; True when all passed."""
    checks: list[Check] = []

    def record(check: Check) -> None:
        checks.append(check)
        report(check)

    samples = sample_images()
    missing = [path.name for path in samples if not path.is_file()]
    found = f"missing: {', '.join(missing)}" if missing else f"{len(samples)} found"
    record(Check("bundled sample photos", not missing, found))
    if missing:
        return False
    try:
        classifier = Classifier(RunConfig(device=device))
    except Exception as error:  # the self-test reports any failure, whatever its kind
        record(Check("load default model", False, str(error)))
        return False
    record(Check("load default model", True, f"{classifier.model.name} on {classifier.device_name}"))
    rows: dict[str, ImageResult] = {}

    def keep_rows(outcome: BatchOutcome) -> None:
        rows.update({os.path.basename(result.path): result for result in outcome.results})

    classifier.classify([str(path) for path in samples], on_batch=keep_rows)
    record(Check("one row per sample", len(rows) == len(samples), f"{len(rows)} rows for {len(samples)} photos"))
    for name, expected in EXPECTED_LABELS.items():
        result = rows.get(name)
        label = result.label if result else "(no row)"
        confidence = f" ({result.confidence:.0%})" if result and result.confidence is not None else ""
        record(Check(f"{name} is {' / '.join(sorted(expected))}", label in expected, f"got {label}{confidence}"))
    return all(check.passed for check in checks)
