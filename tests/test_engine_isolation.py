"""The engine and the command line must run where Qt cannot even be imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_QT_AND_RUN = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class BlockQt:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6"):
                raise ImportError(f"{name} is blocked for this test")
            return None

    sys.meta_path.insert(0, BlockQt())
    import warnings
    import PIL.Image, torch, torchvision  # what they set on import is theirs
    host_filters = list(warnings.filters)
    import batch_classifier.engine as engine
    for module in pkgutil.iter_modules(engine.__path__):
        importlib.import_module(f"batch_classifier.engine.{module.name}")
    assert warnings.filters == host_filters, "importing the engine changed the host's warning filters"
    import batch_classifier.cli as cli
    assert cli.main(["models"]) == 0
    assert cli.main(["classify", "--model", sys.argv[1], "--labels", sys.argv[2], "--device", "cpu",
                     "--quiet", sys.argv[3]]) == 0
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("PySide6", "pyqtgraph"))
    assert not loaded, loaded
    print("engine ran without Qt")
    """
)


def test_engine_and_cli_run_with_pyside6_unimportable(tiny_model, tmp_path) -> None:
    from support import write_colour_images

    images = write_colour_images(tmp_path / "images", ["red", "blue"])
    completed = subprocess.run(
        [sys.executable, "-c", BLOCK_QT_AND_RUN, str(tiny_model.path), str(tiny_model.labels), str(images[0].parent)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "engine ran without Qt" in completed.stdout
    assert "red" in completed.stdout and "blue" in completed.stdout


def test_blocker_really_blocks_qt() -> None:
    """Guard against the test above passing because the blocker is broken."""
    script = BLOCK_QT_AND_RUN.split("import batch_classifier.engine")[0] + "import PySide6\n"
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0
    assert "blocked for this test" in completed.stderr
