"""SIGTERM, SIGHUP and SIGINT as close requests: the window closes without a dialog, keeping its journal.

Qt's event loop runs in C++, where a Python signal handler cannot run, and
Python's default SIGINT handler raises ``KeyboardInterrupt`` inside whatever
Python code Qt calls next (a model's ``rowCount``). So the handlers only
record the signal; ``signal.set_wakeup_fd`` writes its number to a socket
that a ``QSocketNotifier`` watches, and the close happens in the event loop
like any other event. A second signal while closing leaves at once, with
the signal's exit status, as a second Ctrl-C does on the command line.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable

from PySide6.QtCore import QObject, QSocketNotifier

CLOSING_SIGNALS = (signal.SIGTERM, signal.SIGINT, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))


def exit_status(signum: int) -> int:
    """The shell's convention: 128 + the signal's number (143 SIGTERM, 130 SIGINT, 129 SIGHUP)."""
    return 128 + signum


class SignalCloser(QObject):
    """Turns the closing signals into ``on_signal(signum)`` calls in the GUI thread, until ``uninstall``."""

    def __init__(self, on_signal: Callable[[int], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._on_signal = on_signal
        self.received: int | None = None
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._previous = {signum: signal.signal(signum, self._record) for signum in CLOSING_SIGNALS}
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._wake)

    def _record(self, signum: int, _frame: object) -> None:
        if self.received is not None:  # asked twice: the user means now
            os._exit(exit_status(signum))
        self.received = signum

    def _wake(self) -> None:
        try:
            data = self._reader.recv(64)
        except BlockingIOError:
            return
        if data and self.received is not None:
            self._on_signal(self.received)

    def uninstall(self) -> None:
        self._notifier.setEnabled(False)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()
