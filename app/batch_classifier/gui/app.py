"""Start the window: the QApplication, its identity and icon, and the scripted mode.

``batch-classifier`` opens the window; ``batch-classifier PATH...`` opens it
with the paths queued and running; with ``--export-csv FILE
--quit-when-done`` it runs offscreen, writes the CSV and exits, so the
window's whole path (drop to export) can be scripted and tested. The CSV
follows the command line's rule: an existing file needs ``--overwrite`` or
``--resume``. SIGTERM, SIGHUP and Ctrl-C close the window without a dialog
(its journal keeps the rows) and exit with the signal's status.
"""

from __future__ import annotations

import gc
import os
import sys

from PySide6.QtCore import QEvent, QObject, QSize
from PySide6.QtGui import QFileOpenEvent, QIcon
from PySide6.QtWidgets import QApplication

from ..engine.output_paths import OutputRefused, check_output
from ..engine.resume import done_files
from ..engine.pipeline import RunSummary
from ..engine.resources import ICON_PNG_SIZES, ICON_SVG, icon_png, resource_path
from .main_window import MainWindow
from .session import Activity
from .signals import SignalCloser, exit_status

ORGANIZATION = "BatchClassifier"
APPLICATION = "Batch Classifier"
DESKTOP_FILE = "batch-classifier"


def app_icon() -> QIcon:
    """Every icon size that exists; an empty icon (Qt's default) while none have been drawn."""
    icon = QIcon()
    for size in ICON_PNG_SIZES:
        path = resource_path(icon_png(size))
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    svg = resource_path(ICON_SVG)
    if icon.isNull() and svg.is_file():
        icon.addFile(str(svg))
    return icon


def application() -> QApplication:
    """The QApplication, created once, with the names QSettings and the desktop use."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName(DESKTOP_FILE)
    app.setWindowIcon(app_icon())
    return app


class FileOpenForwarder(QObject):
    """Queues the files macOS hands the application when the user picks "Open With" or drops on the Dock icon.

    macOS passes those as ``QFileOpenEvent`` to the application object, not
    as arguments, so without this the bundle's declared document types would
    open the window and ignore the files.
    """

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.FileOpen or not isinstance(event, QFileOpenEvent):
            return False
        path = event.file() or event.url().toLocalFile()
        if path:
            self._window.add_inputs([path])
        return True


class ScriptedRun(QObject):
    """``--export-csv`` / ``--quit-when-done``: when the queue has drained, export, then close.

    The exit status says whether it worked: 1 when a run could not start or
    the CSV could not be written.
    """

    def __init__(self, window: MainWindow, export_csv: str | None, quit_when_done: bool, append: bool = False) -> None:
        super().__init__(window)
        self.exit_code = 0
        self._window = window
        self._export_csv = export_csv
        self._quit_when_done = quit_when_done
        self._append = append
        self._runs = 0
        self._handled = False
        window.session.run_finished.connect(self._run_finished)
        window.session.failed.connect(self._failed)
        window.session.nothing_found.connect(self._failed)  # as on the command line: nothing to export is an error
        window.session.note.connect(self._nothing_left)  # --resume of a CSV that has every row already
        window.session.activity_changed.connect(self._check_done)

    def _run_finished(self, _summary: RunSummary) -> None:
        self._runs += 1

    def _nothing_left(self, message: str) -> None:
        print(f"batch-classifier: {message}", file=sys.stderr)
        self._runs += 1

    def _failed(self, message: str) -> None:
        print(f"batch-classifier: {message}", file=sys.stderr)
        self.exit_code = 1

    def _check_done(self, activity: Activity) -> None:
        session = self._window.session
        if self._handled or activity is not Activity.IDLE or not (self._runs or self.exit_code):
            return
        if session.pending and not self.exit_code:
            return
        self._handled = True  # the paths given at start are done; what the user adds later is theirs
        try:
            if self._export_csv and not self.exit_code:
                rows = self._window.export_csv(self._export_csv, append=self._append)
                print(f"wrote {rows} rows to {self._export_csv}", file=sys.stderr)
        except (OSError, ValueError, OutputRefused) as error:  # ValueError: a --resume CSV with other columns
            print(f"batch-classifier: cannot write {self._export_csv}: {error}", file=sys.stderr)
            self.exit_code = 1
        finally:
            if self._quit_when_done:
                self._window.close()


def nothing_to_do(paths: list[str], export_csv: str | None, quit_when_done: bool) -> str | None:
    """Why a scripted run cannot even start (one line), or None: such a run must not wait forever."""
    if quit_when_done and not paths:
        return "nothing to classify: give the images or folders to classify before --quit-when-done"
    return None


def export_refusal(export_csv: str | None, paths: list[str], overwrite: bool, resume: bool) -> str | None:
    """The command line's rules for --export-csv, checked before anything runs: never an input, never
    anything but a regular file, and an existing file only with --overwrite or --resume."""
    if not export_csv:
        return None
    try:
        check_output(export_csv, paths, overwrite=overwrite, resume=resume)
    except OutputRefused as refused:
        return str(refused)
    return None


def freeze_startup_objects() -> None:
    """Once per process, after the window is built: keep what start-up made out of the cyclic GC's walks.

    torch, torchvision and Qt leave ~350,000 long-lived objects that a full
    cyclic-GC pass would walk (measured: 230 ms, on whichever thread triggers
    it, holding the GIL, so the GUI freezes). They live as long as the process.
    """
    gc.freeze()


def run_gui(
    paths: list[str],
    export_csv: str | None = None,
    quit_when_done: bool = False,
    overwrite: bool = False,
    resume: bool = False,
) -> int:
    """Open the window with ``paths`` queued; the exit status for ``sys.exit``."""
    refusal = nothing_to_do(paths, export_csv, quit_when_done) or export_refusal(export_csv, paths, overwrite, resume)
    if refusal:
        print(f"batch-classifier: {refusal}", file=sys.stderr)
        return 1
    if export_csv and quit_when_done:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # nothing to look at: no display needed
    app = application()
    window = MainWindow(quiet=quit_when_done)
    freeze_startup_objects()
    app.installEventFilter(FileOpenForwarder(window))
    signals = SignalCloser(window.close_for_signal, app)
    append = bool(resume and export_csv and os.path.isfile(export_csv))
    scripted = ScriptedRun(window, export_csv, quit_when_done, append) if export_csv or quit_when_done else None
    window.show()
    if not quit_when_done:
        window.offer_restore()
    if paths:
        skip = done_files(export_csv) if append and export_csv else frozenset()
        window.add_inputs(list(paths), skip)
    else:
        window.session.request_load()  # load now, so the device shows and a missing model is reported early
    status = app.exec()
    signals.uninstall()
    if window.closed_by_signal is not None:
        return exit_status(window.closed_by_signal)
    return scripted.exit_code if scripted is not None else status
