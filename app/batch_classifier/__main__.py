"""``batch-classifier`` and ``python -m batch_classifier``: the window, or a headless command.

A subcommand (classify, bench, models, sort) runs the Qt-free command line; anything
else opens the window, with any paths given queued, the way a file manager's
"Open with" calls it. Qt is imported only on that second route.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

SUBCOMMANDS = frozenset({"classify", "bench", "models", "sort"})


def _window_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch-classifier",
        description="Classify many images with a PyTorch model, batched on the GPU. "
        "Subcommands for scripts and servers: classify, bench, models, sort (see 'batch-classifier classify -h').",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="images and folders to queue in the window")
    parser.add_argument("--export-csv", metavar="FILE", help="write the results here when the run ends")
    parser.add_argument("--quit-when-done", action="store_true", help="close the window when the run ends")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="let --export-csv replace an existing file")
    existing.add_argument(
        "--resume", action="store_true", help="continue an existing --export-csv file: skip its paths, append the rest"
    )
    parser.add_argument("--version", action="version", version=f"batch-classifier {__version__}")
    parser.add_argument(
        "--self-test", action="store_true", help="classify the bundled samples, check the labels, exit 0 or 1"
    )
    parser.add_argument("--device", default="auto", help="device for --self-test (default auto)")
    return parser


def _self_test(device: str) -> int:
    from .engine.selftest import run_self_test

    def report(check: object) -> None:
        print(f"[{'ok' if check.passed else 'FAIL'}] {check.name}: {check.detail}", flush=True)

    passed = run_self_test(device, report)
    print("self-test passed" if passed else "self-test FAILED")
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    from .engine.decoder_warnings import silence_decoder_warnings

    silence_decoder_warnings()  # this process is the application; a host importing the engine is not
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in SUBCOMMANDS:
        from .cli import main as cli_main

        return cli_main(arguments)
    parser = _window_parser()
    options = parser.parse_args(arguments)
    if (options.overwrite or options.resume) and not options.export_csv:
        parser.error("--overwrite and --resume apply to --export-csv FILE")
    if options.self_test:
        return _self_test(options.device)
    from .gui.app import run_gui

    return run_gui(
        options.paths,
        export_csv=options.export_csv,
        quit_when_done=options.quit_when_done,
        overwrite=options.overwrite,
        resume=options.resume,
    )


if __name__ == "__main__":
    sys.exit(main())
