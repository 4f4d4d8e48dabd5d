"""One error ladder for every job: each way a load, a run or a sweep can end says ``idle`` exactly once.

The worker is driven in the test's own thread (its events then arrive
directly), with ``_classifier_for`` replaced by one that raises the error
under test, so every rung of the ladder is reached for every job; the last
test goes through a real session and thread, where ``idle`` is what pops
the job and turns the window back to Idle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from batch_classifier.engine.cluster import ClusterUnavailable
from batch_classifier.engine.control import RunControl
from batch_classifier.engine.devices import DeviceUnavailable
from batch_classifier.engine.model_errors import ModelLoadError
from batch_classifier.engine.pipeline import RunConfig
from batch_classifier.engine.weights_cache import WeightsUnavailable
from batch_classifier.gui.session import Activity, RunSession
from batch_classifier.gui.worker import KernelsJob, RunJob, SweepJob, VersusJob, Worker, WorkerEvents, _ShutDown

TIMEOUT_MS = 30_000

ERRORS: dict[str, tuple[BaseException, str | None]] = {
    # error raised -> the one line the user reads (None: nothing is said)
    "model": (ModelLoadError("model.pt is not a model"), "model.pt is not a model"),
    "weights": (WeightsUnavailable("weights are not cached"), "weights are not cached"),
    "device": (DeviceUnavailable("no cuda here"), "no cuda here"),
    "setting": (ValueError("top-k must be positive"), "top-k must be positive"),
    "cluster": (ClusterUnavailable("cannot reach the Ray cluster at head:6379"), "cannot reach the Ray cluster at head:6379"),
    "shutdown": (_ShutDown(), None),
    "crash": (RuntimeError("the allocator broke"), "stopped on an unexpected error: the allocator broke"),
}

JOBS: dict[str, Callable[[Worker, Path], None]] = {
    "load": lambda worker, folder: worker.load(RunConfig()),
    "run": lambda worker, folder: worker.run(RunJob((str(folder),), RunConfig(), RunControl(None, 5.0))),
    "sweep": lambda worker, folder: worker.sweep(SweepJob((str(folder),), RunConfig(), threading.Event())),
    "versus": lambda worker, folder: worker.versus(VersusJob((str(folder),), RunConfig(), 4)),
    "kernels": lambda worker, folder: worker.count_kernels(KernelsJob((str(folder),), RunConfig(), 4)),
}


class _Recorder:
    def __init__(self, events: WorkerEvents) -> None:
        self.said: list[tuple[str, object]] = []
        events.failed.connect(lambda message: self.said.append(("failed", message)))
        events.idle.connect(lambda: self.said.append(("idle", None)))

    @property
    def idles(self) -> int:
        return sum(1 for kind, _ in self.said if kind == "idle")

    @property
    def failures(self) -> list[object]:
        return [message for kind, message in self.said if kind == "failed"]


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("kind", ERRORS)
def test_every_error_of_every_job_ends_in_idle_exactly_once(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job: str, kind: str
) -> None:
    error, message = ERRORS[kind]
    events = WorkerEvents()
    worker = Worker(threading.Event(), events)

    def raising(config: RunConfig) -> None:
        raise error

    monkeypatch.setattr(worker, "_classifier_for", raising)
    recorder = _Recorder(events)
    JOBS[job](worker, tmp_path)

    assert recorder.idles == 1
    assert recorder.said[-1] == ("idle", None), "idle is the last word of every job"
    if message is None:
        assert recorder.failures == [], "a window closing mid-download is no failure"
    else:
        assert len(recorder.failures) == 1
        assert str(recorder.failures[0]).endswith(message)


def test_a_job_that_works_ends_in_idle_once_and_fails_nothing(qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = WorkerEvents()
    worker = Worker(threading.Event(), events)
    monkeypatch.setattr(worker, "_classifier_for", lambda config: None)
    recorder = _Recorder(events)
    worker.load(RunConfig())
    assert recorder.said == [("idle", None)]


def test_a_crash_after_the_run_began_is_reported_once_then_idle(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Crashing:
        def classify(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("decoder pool died")

    events = WorkerEvents()
    worker = Worker(threading.Event(), events)
    monkeypatch.setattr(worker, "_classifier_for", lambda config: Crashing())
    recorder = _Recorder(events)
    started: list[bool] = []
    events.run_started.connect(lambda: started.append(True))
    JOBS["run"](worker, tmp_path)
    assert started == [True]
    assert recorder.failures == ["the run stopped on an unexpected error: decoder pool died"]
    assert recorder.idles == 1


@pytest.mark.parametrize("kind", ["model", "crash"])
def test_through_the_session_each_failure_returns_to_idle_once(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    error, message = ERRORS[kind]

    def raising(worker: Worker, config: RunConfig) -> None:
        raise error

    monkeypatch.setattr(Worker, "_classifier_for", raising)
    session = RunSession(RunConfig)
    recorder = _Recorder(session)
    activities: list[Activity] = []
    session.activity_changed.connect(activities.append)
    try:
        with qtbot.waitSignal(session.idle, timeout=TIMEOUT_MS):
            session.enqueue([str(tmp_path)])
        qtbot.waitUntil(lambda: session.activity is Activity.IDLE, timeout=TIMEOUT_MS)
        assert recorder.idles == 1
        assert len(recorder.failures) == 1 and str(recorder.failures[0]).endswith(str(message))
        assert activities == [Activity.RUNNING, Activity.IDLE]
        assert session.failed_while_loading, "the run never began: its model did not load"
        assert session.pending == 1, "inputs whose run never began wait at the front for Start"
    finally:
        assert session.shutdown()
