"""What each action does to the annotator, and what it tells the user: clicks, undo, commit,
reset, object choice, propagation, replay and cancel.

:class:`AnnotationActions` queues every action as a job of a :class:`~.jobs.JobQueue`, so
they run in order; predictions run in the queue's workers. It uses the queue and the
:class:`~napari_adaptiveclick.volume.VolumeAnnotator` through their public methods and knows
nothing of layers or clicks on screen. Its interface:

- :meth:`~AnnotationActions.attach` ``(annotator)`` / :meth:`~AnnotationActions.detach`: the
  annotator the actions edit; without one, an action only says "Press Start first".
- :meth:`~AnnotationActions.click` ``(plane, row, col, positive)``, ``undo``, ``commit``,
  ``reset``, ``select_object(object_id | None)``, ``propagate(plane)``, ``replay(records)``,
  ``cancel``. A click, undo or reset stops a running propagation or replay after the slice in
  progress; a click's result that a newer queued click makes stale is recorded, not drawn.
- ``propagation_settings`` (read at each propagation), ``last_outcome`` (of the last click),
  ``last_report`` (of the last propagation).
- Signals: ``status(str)`` and ``failed(str)`` (messages for the user), ``edited()`` (the labels
  or the current object changed: redraw and store), ``prediction_ended()`` (a click's
  prediction ended, drawn, stale or failed: the oldest waiting click is settled),
  ``slice_written(plane)`` (a propagated slice was accepted), ``progress(done, total)`` and
  ``propagated(report)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from psygnal import Signal

from napari_adaptiveclick._napari.jobs import JobQueue
from napari_adaptiveclick.volume import (
    ClickOutcome,
    PropagatedSlice,
    Propagation,
    PropagationReport,
    PropagationSettings,
    VolumeAnnotator,
)
from napari_adaptiveclick.volume.records import ClickRecord

KEY_HINTS = "T: polarity | C: commit | Shift-C: reset | Ctrl-Z: undo | Shift-P: propagate"
INTERRUPTING = ("click", "undo", "reset")  # actions that stop a propagation or replay


def _steps(items: Iterable) -> Iterator:
    """A generator over ``items``, so that a worker can stop between two of them."""
    yield from items


class AnnotationActions:
    """The actions on one annotator, queued on ``jobs`` (see the module docstring)."""

    status = Signal(str)
    failed = Signal(str)
    edited = Signal()
    prediction_ended = Signal()
    slice_written = Signal(int)
    progress = Signal(int, int)  # done, total (propagation, replay)
    propagated = Signal(object)  # PropagationReport

    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs
        self.annotator: VolumeAnnotator | None = None
        self.propagation_settings = PropagationSettings()
        self.last_outcome: ClickOutcome | None = None
        self.last_report: PropagationReport | None = None
        self._propagation: Propagation | None = None
        self._propagated = 0  # slices of the running propagation done so far

    def attach(self, annotator: VolumeAnnotator) -> None:
        """Edit ``annotator`` from now on."""
        self.annotator = annotator

    def detach(self) -> None:
        """Edit no annotator (a running worker ends without drawing)."""
        self.annotator = None

    # ------------------------------------------------------------------ queued by the user
    def click(self, plane: int, row: float, col: float, positive: bool = True) -> None:
        self._submit("click", self._do_click, plane, row, col, positive)

    def undo(self) -> None:
        self._submit("undo", self._do_undo)

    def commit(self) -> None:
        self._submit("commit", self._do_commit)

    def reset(self) -> None:
        self._submit("reset", self._do_reset)

    def select_object(self, object_id: int | None) -> None:
        """Segment ``object_id`` (an existing id refines it); None picks a new id."""
        self._submit("select", self._do_select, object_id)

    def propagate(self, plane: int) -> None:
        """Propagate the current object from ``plane``."""
        self._submit("propagate", self._do_propagate, plane)

    def replay(self, records: Sequence[ClickRecord]) -> None:
        """Apply click records (e.g. loaded from a file) with the current model."""
        self._submit("replay", self._do_replay, list(records))

    def cancel(self) -> None:
        """Stop a propagation or replay after the current slice; drop queued actions."""
        self.jobs.cancel()

    def _submit(self, kind: str, do: Callable[..., None], *args) -> None:
        if self.annotator is None:
            self.status.emit("Press Start first to load the model.")
            return

        def start() -> None:
            if self.annotator is None:
                return
            try:
                do(*args)
            except ValueError as error:  # said to the user (e.g. nothing to propagate)
                self.failed.emit(str(error))

        self.jobs.submit(kind, start, interrupt=kind in INTERRUPTING)

    # ------------------------------------------------------------------ run in turn
    def _on_prediction_error(self, error: Exception) -> None:
        self.prediction_ended.emit()
        self.failed.emit(f"Prediction failed: {type(error).__name__}: {error}")
        self.edited.emit()

    def _do_click(self, plane: int, row: float, col: float, positive: bool) -> None:
        self.jobs.run(
            self.annotator.add_click,
            plane,
            row,
            col,
            positive,
            on_return=self._on_click_done,
            on_stale=self._record_click,
            on_error=self._on_prediction_error,
        )

    def _record_click(self, outcome: ClickOutcome) -> None:
        self.prediction_ended.emit()
        self.last_outcome = outcome

    def _on_click_done(self, outcome: ClickOutcome) -> None:
        self._record_click(outcome)
        if self.annotator is None:
            return
        self.edited.emit()
        record = outcome.record
        self.status.emit(
            f"{outcome.seconds * 1000:.0f} ms per click | object {record.object_id}, plane "
            f"{record.plane}: {outcome.area} px | {KEY_HINTS}"
        )

    def _do_undo(self) -> None:
        if self.annotator.undo():
            self.status.emit(
                f"Undone; {len(self.annotator.object_records())} clicks on object {self.annotator.object_id}."
            )
        else:
            self.status.emit("Nothing to undo.")
        self.edited.emit()

    def _do_commit(self) -> None:
        old = self.annotator.object_id
        new = self.annotator.commit()
        self.status.emit(
            f"Object {old} committed; now segmenting object {new}."
            if new != old
            else f"Object {old} has no pixels yet: nothing to commit."
        )
        self.edited.emit()

    def _do_reset(self) -> None:
        count = self.annotator.reset()
        self.status.emit(f"Object {self.annotator.object_id} reset ({count} steps removed).")
        self.edited.emit()

    def _do_select(self, object_id: int | None) -> None:
        new = self.annotator.select_object(object_id)
        self.status.emit(
            f"Segmenting object {new}"
            + (" (refining its existing pixels)." if (self.annotator.labels == new).any() else ".")
        )
        self.edited.emit()

    def _do_propagate(self, plane: int) -> None:
        job = self.annotator.propagation(plane, self.propagation_settings)
        self._propagation, self._propagated = job, 0
        self.progress.emit(0, job.total)
        self.status.emit(
            f"Propagating object {self.annotator.object_id} from plane {plane}... (Cancel to stop)"
        )
        self.jobs.run(
            _steps,
            job,
            on_yield=self._on_propagated_slice,
            on_error=self._on_prediction_error,
            on_finish=self._finish_propagation,
        )

    def _on_propagated_slice(self, result: PropagatedSlice) -> None:
        self._propagated += 1
        self.progress.emit(self._propagated, max(self._propagation.total, self._propagated))
        if result.accepted:
            self.slice_written.emit(result.plane)
        self.status.emit(
            f"Plane {result.plane}: {result.area} px, {result.seconds * 1000:.0f} ms"
            + (f" | stopped: {result.reason}" if result.reason else "")
        )

    def _finish_propagation(self) -> None:
        job, self._propagation = self._propagation, None
        if not job.done:  # the worker was quit (Cancel, a new click, a removed layer)
            job.cancel()
        if self.annotator is None:
            return
        report = job.report()
        self.last_report = report
        self.progress.emit(1, 1)
        stops = "; ".join(f"{'up' if d > 0 else 'down'}: {why}" for d, why in report.stops.items())
        unsure = ", ".join(f"{p} ({u:.2f})" for p, u in report.least_sure)
        self.status.emit(
            f"Propagated to {len(report.written)} planes in {report.seconds:.1f} s ({stops}). Least sure: {unsure or '-'}"
        )
        self.edited.emit()
        self.propagated.emit(report)

    def _do_replay(self, records: list[ClickRecord]) -> None:
        total, done = len(records), []
        self.progress.emit(0, total)

        def count(_outcome: ClickOutcome) -> None:
            done.append(1)
            self.progress.emit(len(done), total)

        self.status.emit(f"Replaying {total} clicks...")
        self.jobs.run(
            self.annotator.replay,
            records,
            on_yield=count,
            on_error=self._on_prediction_error,
            on_finish=self.edited.emit,
        )
