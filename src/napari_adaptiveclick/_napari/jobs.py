"""A queue of jobs for the Qt thread, each of which may run one napari thread worker.

The queue knows nothing of what its jobs do (clicks, models, layers). Its interface:

- :meth:`JobQueue.submit` ``(kind, start, interrupt=False)``: queue ``start()``, a callable
  run on the Qt thread when its turn comes (jobs run in the order submitted). ``kind`` names
  the job for :meth:`~JobQueue.is_queued` and for stale results; ``interrupt`` first asks a
  running long job to stop.
- :meth:`JobQueue.run` ``(func, *args, on_yield=, on_return=, on_stale=, on_error=,
  on_finish=)``: called by a job's ``start``, runs ``func(*args)`` in a worker; the next job
  waits until that worker has ended. The callbacks run on the Qt thread. A generator
  function is a *long job*: each yielded value goes to ``on_yield``, and
  :meth:`~JobQueue.stop_long_job` stops it between two steps. A result is *stale* when a job
  of the same kind was queued while it was computed: it goes to ``on_stale`` (dropped when
  None) instead of ``on_return``.
- :meth:`~JobQueue.cancel` (drop the queued jobs, stop a long job), :meth:`~JobQueue.clear`
  (drop the queued jobs only), :attr:`~JobQueue.busy`, :attr:`~JobQueue.running`.
- ``changed``: a signal emitted whenever the queue moved (a job ran, a worker ended).

:func:`start_worker` is the one place that starts napari workers (the queue and the model
loader use it); :func:`brief` is the one-line form of a worker's error for the status.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from napari.qt.threading import GeneratorWorker, WorkerBase, create_worker
from psygnal import Signal


def start_worker(
    func: Callable,
    *args,
    on_yield: Callable | None = None,
    on_return: Callable | None = None,
    on_error: Callable[[Exception], None] | None = None,
    on_finish: Callable[[], None] | None = None,
) -> WorkerBase:
    """Run ``func(*args)`` in a napari thread worker and return the started worker.

    The callbacks run on the Qt thread: ``on_yield`` for each value a generator function
    yields, ``on_return`` with the result, ``on_error`` with the exception (without it napari
    re-raises the error on the Qt thread), ``on_finish`` when the worker ends, whichever way.
    """
    worker = create_worker(func, *args, _start_thread=False, _ignore_errors=on_error is not None)
    if on_yield is not None:
        worker.yielded.connect(on_yield)
    if on_return is not None:
        worker.returned.connect(on_return)
    if on_error is not None:
        worker.errored.connect(on_error)
    if on_finish is not None:
        worker.finished.connect(on_finish)
    worker.start()
    return worker


def brief(text: str, limit: int = 200) -> str:
    """The first line of ``text``, cut to its first sentence when longer than ``limit``
    characters (and to ``limit``): torch's errors run to dozens of lines (a device's backend
    list), which would fill the widget's status."""
    text = " ".join(str(text).split("\n", 1)[0].split())
    if len(text) > limit and 0 < text.find(". ") < limit:
        text = text[: text.find(". ") + 1]
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."


class JobQueue:
    """Jobs in order on the Qt thread, with at most one worker at a time (see the module)."""

    changed = Signal()  # a job ran or a worker ended

    def __init__(self) -> None:
        self._queue: deque[tuple[str, Callable[[], None]]] = deque()
        self._worker: WorkerBase | None = None
        self._kind: str | None = None  # kind of the job running now (or whose worker runs)
        self._on_finish: Callable[[], None] | None = None  # run when the worker ends

    @property
    def busy(self) -> bool:
        """True while a job is queued or a worker runs."""
        return self._worker is not None or bool(self._queue)

    @property
    def running(self) -> bool:
        """True while a worker runs."""
        return self._worker is not None

    def is_queued(self, kind: str) -> bool:
        """True when a job of ``kind`` waits for its turn."""
        return any(queued == kind for queued, _ in self._queue)

    def submit(self, kind: str, start: Callable[[], None], interrupt: bool = False) -> None:
        """Queue ``start()``; it runs now when nothing runs. ``interrupt``: stop a long job."""
        self._queue.append((kind, start))
        if interrupt:
            self.stop_long_job()
        self._pump()

    def run(
        self,
        func: Callable,
        *args,
        on_yield: Callable | None = None,
        on_return: Callable | None = None,
        on_stale: Callable | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        """Run ``func(*args)`` in a worker for the job that calls it (see the module)."""
        if self._worker is not None:
            raise RuntimeError("A worker is running already: one worker per job.")
        kind = self._kind

        def returned(result) -> None:
            fresh = kind is None or not self.is_queued(kind)
            callback = on_return if fresh else on_stale
            if callback is not None:
                callback(result)

        self._on_finish = on_finish
        self._worker = start_worker(
            func,
            *args,
            on_yield=on_yield,
            on_return=returned,
            on_error=on_error,
            on_finish=self._on_worker_finished,
        )

    def stop_long_job(self) -> None:
        """Ask a running generator to stop after its current step (a function always
        finishes: its caller may need its result to stay consistent)."""
        if isinstance(self._worker, GeneratorWorker):
            self._worker.quit()

    def clear(self) -> None:
        """Drop the jobs that wait for their turn (a running worker goes on)."""
        self._queue.clear()

    def cancel(self) -> None:
        """Drop the waiting jobs and stop a long job after its current step."""
        self.clear()
        self.stop_long_job()

    def _pump(self) -> None:
        while self._worker is None and self._queue:
            self._kind, start = self._queue.popleft()
            start()
        if self._worker is None:
            self._kind = None
        self.changed.emit()

    def _on_worker_finished(self) -> None:
        finish, self._worker, self._on_finish = self._on_finish, None, None
        if finish is not None:
            finish()
        self._pump()
