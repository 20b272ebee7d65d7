"""Waiting in a benchmark the way napari waits: in Qt's event loop.

A benchmark that polls (``processEvents()`` then a short sleep, in a Python loop) keeps the
main thread taking the GIL thousands of times a second while the prediction runs in a
worker thread, whose model forward needs the GIL between its kernels: on 2 cores that polling
alone added about 14 ms to a click (12 ms, 10 %, to the prediction) in ``bench_scaling.py``.
napari itself sits in ``QApplication.exec()`` between events, so :func:`wait_until` runs a
nested ``QEventLoop`` and checks the condition from a 2 ms timer instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(done: Callable[[], bool], timeout: float = 600.0, what: str = "step") -> None:
    """Run Qt's event loop until ``done()`` is true; TimeoutError after ``timeout`` s."""
    from qtpy.QtCore import QEventLoop, QTimer

    if done():
        return
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    errors: list[BaseException] = []

    def check() -> None:
        try:
            finished = done()
        except BaseException as error:  # raised here after the loop, not inside Qt's slot
            errors.append(error)
            finished = True
        if finished or time.monotonic() > deadline:
            loop.quit()

    timer = QTimer()
    timer.setInterval(2)
    timer.timeout.connect(check)
    timer.start()
    try:
        loop.exec()
    finally:
        timer.stop()
    if errors:
        raise errors[0]
    if not done():
        raise TimeoutError(f"benchmark {what} did not finish within {timeout:g} s")
