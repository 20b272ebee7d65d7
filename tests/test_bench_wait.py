"""The benchmarks' wait in Qt's event loop (``benchmarks/_qt.py``): it returns once the
condition holds while events (timers, worker signals) keep being delivered, and gives up with
a clear error after its timeout."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("qtpy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _qt import wait_until  # noqa: E402


def test_wait_until_returns_when_an_event_makes_it_true(qapp):
    from qtpy.QtCore import QTimer

    fired = []
    QTimer.singleShot(50, lambda: fired.append(time.monotonic()))
    begin = time.monotonic()
    wait_until(lambda: bool(fired), timeout=10)
    assert fired and fired[0] - begin >= 0.04  # the event loop delivered the timer


def test_wait_until_gives_up_after_its_timeout(qapp):
    begin = time.monotonic()
    with pytest.raises(TimeoutError, match="Start did not finish within 0.2 s"):
        wait_until(lambda: False, timeout=0.2, what="Start")
    assert time.monotonic() - begin >= 0.2


def test_wait_until_returns_at_once_when_already_true(qapp):
    wait_until(lambda: True, timeout=0)


def test_an_error_in_the_condition_reaches_the_caller(qapp):
    calls = []

    def breaks_in_the_loop() -> bool:  # the first call is before the loop starts
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("condition broke")
        return False

    begin = time.monotonic()
    with pytest.raises(RuntimeError, match="condition broke"):
        wait_until(breaks_in_the_loop, timeout=30)
    assert time.monotonic() - begin < 5 and len(calls) == 2  # at once, not at the timeout
