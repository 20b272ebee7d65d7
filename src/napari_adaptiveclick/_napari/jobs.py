"""The controller's action queue: every action runs in order on the Qt thread, and long
work runs in napari thread workers, one at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from napari.qt.threading import GeneratorWorker, WorkerBase, create_worker


class ActionQueue:
    """Base class of :class:`~.controller.AnnotationController` for its queue of actions.

    :meth:`_enqueue` queues action ``kind``; it runs as the subclass's ``_do_<kind>(*args)``
    on the Qt thread once no worker runs, and may start one worker with :meth:`_run`; the
    next action waits until that worker has finished. The subclass provides ``ready``
    (actions wait while False), ``changed`` (a signal, emitted whenever the queue moved),
    ``_say(text)``, ``_fail(text)`` (a ValueError from an action) and
    ``_on_worker_error(error)``.
    """

    INTERRUPTING = ("click", "undo", "reset")  # actions that stop a propagation or replay

    def __init__(self) -> None:
        self._queue: deque[tuple[str, tuple]] = deque()
        self._worker: WorkerBase | None = None
        self._on_finish: Callable[[], None] | None = None  # run when the worker ends

    @property
    def _acting(self) -> bool:
        """True while an action is queued or its worker runs."""
        return self._worker is not None or bool(self._queue)

    def _queued(self, kind: str) -> bool:
        return any(queued == kind for queued, _ in self._queue)

    def _enqueue(self, kind: str, *args) -> None:
        if not self.ready:
            self._say("Press Start first to load the model.")
            return
        self._queue.append((kind, args))
        if kind in self.INTERRUPTING:
            self._stop_long_job()  # a new click stops a running propagation or replay
        self._pump()

    def _stop_long_job(self) -> None:
        """Ask a propagation or replay to stop after its current slice (a single click's
        prediction always finishes: the session must stay in step with the records)."""
        if isinstance(self._worker, GeneratorWorker):
            self._worker.quit()

    def _pump(self) -> None:
        while self._worker is None and self._queue and self.ready:
            kind, args = self._queue.popleft()
            try:
                getattr(self, f"_do_{kind}")(*args)
            except ValueError as error:
                self._fail(str(error))
        self.changed.emit()

    def _run(
        self,
        func: Callable,
        *args,
        on_yield: Callable | None = None,
        on_return: Callable | None = None,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        """Run ``func(*args)`` in a worker (a generator function is a long job, stopped
        between its steps by :meth:`_stop_long_job`); ``on_finish`` runs on the Qt thread
        when the worker ends, whichever way."""
        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True)
        if on_yield is not None:
            worker.yielded.connect(on_yield)
        if on_return is not None:
            worker.returned.connect(on_return)
        worker.errored.connect(self._on_worker_error)
        worker.finished.connect(self._on_worker_finished)
        self._worker, self._on_finish = worker, on_finish
        worker.start()

    def _on_worker_finished(self) -> None:
        finish, self._worker, self._on_finish = self._on_finish, None, None
        if finish is not None:
            finish()
        self._pump()
