"""Writes made in a background thread, in order, so that saving an edit never waits for the
disk (:class:`CommitQueue`, used by :meth:`~.autosave.AutosaveStore.save_later`).

One write is made at a time; writes handed over while one is in progress wait as one (each
joined to the one before, :meth:`~.autosave_state.PendingWrite.merged`), so a kill loses at
most the write in progress and the one waiting behind it, never a part of one: each write is
whole on disk or not there. A write that fails is kept, joined with the next one, and tried
again with it. The thread is not a daemon: a Python process that exits lets it finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class CommitQueue:
    """Runs ``commit(pending)`` in a background thread for each :meth:`submit`, in order
    (``pending`` objects have ``merged(later)``)."""

    def __init__(self, commit: Callable[[Any], None]) -> None:
        self._commit = commit
        self._condition = threading.Condition()
        self._waiting: Any = None
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None  # of the last write made (None: it worked)

    @property
    def busy(self) -> bool:
        """True while a write waits or is in progress (or failed and waits to be retried)."""
        with self._condition:
            return self._waiting is not None or self._thread is not None

    def submit(self, pending: Any) -> None:
        with self._condition:
            waiting = self._waiting
            self._waiting = pending if waiting is None else waiting.merged(pending)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="adaptiveclick-autosave", daemon=False
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._condition:
                pending, self._waiting = self._waiting, None
                if pending is None:
                    self._thread = None
                    self._condition.notify_all()
                    return
            error = self._make(pending)
            if error is not None:
                with self._condition:  # kept for the next submit or flush
                    self._thread = None
                    self._condition.notify_all()
                    return

    def _make(self, pending: Any) -> Exception | None:
        try:
            self._commit(pending)
            error = None
        except Exception as failure:  # noqa: BLE001 - reported through .error, retried
            error = failure
        with self._condition:
            self.error = error
            if error is not None:
                later = self._waiting
                self._waiting = pending if later is None else pending.merged(later)
        return error

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write handed over is made; one that failed is tried once more
        here. True when nothing is left to write."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._thread is None, timeout):
                return False
            pending, self._waiting = self._waiting, None
        return pending is None or self._make(pending) is None
