"""Ctrl-C, SIGTERM and SIGHUP stop a run the same way: the batch in flight finishes, its rows are kept.

A logout, a shutdown or ``kill`` sends SIGTERM or SIGHUP, not Ctrl-C, and
those must not lose a run's rows either. Before a run exists (while the model
loads, while a big tree is counted) there is nothing to finish, so the first
signal stops at once; while a run is going, the first signal cancels it
cooperatively and a second one stops at once. Either way the caller sees an
``Interrupted`` that carries the exit status (128 + the signal number: 130,
143, 129), never a ``KeyboardInterrupt`` traceback. Once the last batch is
done (``hold``) there is nothing left to stop: a signal is recorded, the
caller makes its file whole and then says where the rows are.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

from .control import RunControl

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""What stops a run; SIGHUP does not exist on Windows."""


class Interrupted(BaseException):
    """A stop signal arrived; a BaseException so no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopSignals:
    """A ``with`` block during which the stop signals raise ``Interrupted`` or cancel the attached run.

    ``on_cancel(signum)`` is called when the first signal cancels a run (to
    tell the user the batch in flight is finishing). Handlers run in the main
    thread, so this must be entered there.
    """

    def __init__(self, on_cancel: Callable[[int], None] | None = None) -> None:
        self._on_cancel = on_cancel
        self._control: RunControl | None = None
        self._holding = False
        self._previous: dict[int, object] = {}
        self.received: int | None = None
        """The first stop signal seen, if any."""

    def attach(self, control: RunControl | None) -> None:
        """From now on the first signal cancels ``control`` instead of stopping at once (None: stop at once again)."""
        self._control = control

    def hold(self) -> None:
        """The run is over: from now on a signal is only recorded, for the caller to report once its file is whole.

        What is left is bounded (flush, fsync, one rename, the run record,
        a resumed file's one rewrite), and a signal raised in the middle of
        it would leave the user told nothing of where the rows are; so every
        signal, a second one too, waits until the caller looks at ``received``.
        """
        self._holding = True

    @property
    def exit_status(self) -> int | None:
        return None if self.received is None else 128 + self.received

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if self._holding:
            return
        control = self._control
        if not first or control is None or control.cancelled:
            raise Interrupted(signum)
        control.cancel()
        if self._on_cancel is not None:
            self._on_cancel(signum)

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue  # nohup, or a background job: whoever started us asked for this signal to be ignored
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
