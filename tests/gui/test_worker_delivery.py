"""Batches reach the window in order from a helper thread, so the model's thread never compresses thumbnails."""

from __future__ import annotations

import threading
import time

import pytest

from batch_classifier.gui.worker import _InOrderDelivery


def test_batches_are_delivered_in_order_off_the_calling_thread() -> None:
    seen: list[tuple[int, str]] = []

    def deliver(number: int) -> None:
        time.sleep(0.002 if number % 3 else 0)  # uneven work must not reorder anything
        seen.append((number, threading.current_thread().name))

    with _InOrderDelivery(deliver) as delivery:  # type: ignore[arg-type]
        for number in range(40):
            delivery.submit(number)  # type: ignore[arg-type]
    assert [number for number, _ in seen] == list(range(40)), "leaving the block waits for every batch"
    assert {name for _, name in seen} != {threading.current_thread().name}
    assert all(name.startswith("deliver") for _, name in seen)


def test_a_slow_window_holds_the_run_back_instead_of_queueing_without_bound() -> None:
    release = threading.Event()
    delivered: list[int] = []

    def deliver(number: int) -> None:
        release.wait(timeout=10)
        delivered.append(number)

    delivery = _InOrderDelivery(deliver)  # type: ignore[arg-type]
    submitter = threading.Thread(
        target=lambda: [delivery.submit(number) for number in range(_InOrderDelivery.MAX_QUEUED + 5)]  # type: ignore[arg-type]
    )
    submitter.start()
    submitter.join(timeout=0.5)
    assert submitter.is_alive(), "the submitter must wait once MAX_QUEUED batches are waiting"
    release.set()
    submitter.join(timeout=10)
    delivery.__exit__(None, None, None)
    assert delivered == list(range(_InOrderDelivery.MAX_QUEUED + 5))


def test_an_error_in_delivery_reaches_the_run() -> None:
    def deliver(number: int) -> None:
        if number == 2:
            raise RuntimeError("thumbnail encoder broke")

    with pytest.raises(RuntimeError, match="thumbnail encoder broke"):
        with _InOrderDelivery(deliver) as delivery:  # type: ignore[arg-type]
            for number in range(4):
                delivery.submit(number)  # type: ignore[arg-type]
