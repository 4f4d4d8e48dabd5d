"""Entry script for the PyInstaller bundle: the frozen application's ``__main__``.

Kept tiny on purpose: the real entry point is ``batch_classifier.__main__.main``,
the same function the ``batch-classifier`` console script runs when installed
with pip, so the bundle and the pip install start the same way.
"""

import multiprocessing
import os
import sys


def _run() -> int:
    # A frozen Windows/macOS child process re-runs this script; let it do its job and stop.
    multiprocessing.freeze_support()
    # pyqtgraph picks PyQt if it finds one before PySide6 is imported; the bundle only has PySide6.
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    from batch_classifier.engine.runtimes.export_process import EXPORT_WORKER_FLAG

    if sys.argv[1:2] == [EXPORT_WORKER_FLAG]:  # the child that exports a model for ONNX Runtime
        from batch_classifier.engine.runtimes.export_process import main as export_main

        return export_main(sys.argv[2:])

    from batch_classifier.__main__ import main

    return main()


if __name__ == "__main__":
    sys.exit(_run())
