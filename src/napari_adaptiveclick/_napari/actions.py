"""What each action of the annotation controller does to the annotator, and what it tells
the user: clicks, undo, commit, reset, object choice, propagation and replay.

The public methods queue an action (:class:`~.jobs.ActionQueue`); its ``_do_<kind>`` method
runs on the Qt thread when its turn comes, predictions run in a worker.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from napari_adaptiveclick._napari.jobs import ActionQueue
from napari_adaptiveclick.volume import ClickOutcome, PropagatedSlice
from napari_adaptiveclick.volume.records import ClickRecord

KEY_HINTS = "T: polarity | C: commit | Shift-C: reset | Ctrl-Z: undo | Shift-P: propagate"


def _steps(items: Iterator) -> Iterator:
    yield from items


class AnnotationActions(ActionQueue):
    """The actions of :class:`~.controller.AnnotationController` (its base class), which
    provides the annotator, the layers, the signals, ``current_plane()``, ``_after_edit()``
    (redraw and store after a change) and the clicks waiting for a prediction
    (``_pending``, oldest first)."""

    # ------------------------------------------------------------------ queued by the user
    def undo(self) -> None:
        self._enqueue("undo")

    def commit(self) -> None:
        self._enqueue("commit")

    def reset(self) -> None:
        self._enqueue("reset")

    def select_object(self, object_id: int | None) -> None:
        self._enqueue("select", object_id)

    def propagate(self) -> None:
        """Propagate the current object from the plane on screen."""
        if self.ready:
            self._enqueue("propagate", self.current_plane())

    def replay(self, records: Sequence[ClickRecord]) -> None:
        """Apply click records (e.g. loaded from a file) with the current model."""
        self._enqueue("replay", list(records))

    def cancel(self) -> None:
        """Stop a propagation or replay after the current slice; drop queued actions."""
        self._queue.clear()
        self._pending.clear()
        self._stop_long_job()
        self._show_points()

    # ------------------------------------------------------------------ run in turn
    def _on_worker_error(self, error: Exception) -> None:
        self._pending[:1] = []
        self._fail(f"Prediction failed: {type(error).__name__}: {error}")
        self._after_edit()

    def _do_click(self, plane: int, row: float, col: float, positive: bool) -> None:
        self._run(
            self.annotator.add_click, plane, row, col, positive, on_return=self._on_click_done
        )

    def _on_click_done(self, outcome: ClickOutcome) -> None:
        self._pending[:1] = []
        self.last_outcome = outcome
        if not self.ready or self._queued("click"):
            return  # stale: a newer click is queued and will be drawn instead
        self._after_edit()
        record = outcome.record
        self._say(
            f"{outcome.seconds * 1000:.0f} ms per click | object {record.object_id}, plane "
            f"{record.plane}: {outcome.area} px | {KEY_HINTS}"
        )

    def _do_undo(self) -> None:
        if self.annotator.undo():
            self._say(
                f"Undone; {len(self.annotator.object_records())} clicks on object {self.annotator.object_id}."
            )
        else:
            self._say("Nothing to undo.")
        self._after_edit()

    def _do_commit(self) -> None:
        old = self.annotator.object_id
        new = self.annotator.commit()
        self._say(
            f"Object {old} committed; now segmenting object {new}."
            if new != old
            else f"Object {old} has no pixels yet: nothing to commit."
        )
        self._after_edit()

    def _do_reset(self) -> None:
        count = self.annotator.reset()
        self._say(f"Object {self.annotator.object_id} reset ({count} steps removed).")
        self._after_edit()

    def _do_select(self, object_id: int | None) -> None:
        new = self.annotator.select_object(object_id)
        self._say(
            f"Segmenting object {new}"
            + (" (refining its existing pixels)." if (self.annotator.labels == new).any() else ".")
        )
        self._after_edit()

    def _do_propagate(self, plane: int) -> None:
        self._propagation = self.annotator.propagation(plane, self.propagation_settings)
        self.progress.emit(0, self._propagation.total)
        self._say(
            f"Propagating object {self.annotator.object_id} from plane {plane}... (Cancel to stop)"
        )
        self._run(
            _steps,
            self._propagation,
            on_yield=self._on_propagated_slice,
            on_finish=self._finish_propagation,
        )

    def _on_propagated_slice(self, result: PropagatedSlice) -> None:
        done = len(self._propagation._results)
        self.progress.emit(done, max(self._propagation.total, done))
        if result.accepted and result.plane == self.current_plane():
            self.labels.refresh()  # other planes are drawn when the user scrolls there
        self._say(
            f"Plane {result.plane}: {result.area} px, {result.seconds * 1000:.0f} ms"
            + (f" | stopped: {result.reason}" if result.reason else "")
        )

    def _finish_propagation(self) -> None:
        job, self._propagation = self._propagation, None
        if not job.done:  # the worker was quit (Cancel, a new click, a removed layer)
            job.cancel()
        if not self.ready:
            return
        report = job.report()
        self.last_report = report
        self.progress.emit(1, 1)
        stops = "; ".join(f"{'up' if d > 0 else 'down'}: {why}" for d, why in report.stops.items())
        unsure = ", ".join(f"{p} ({u:.2f})" for p, u in report.least_sure)
        self._say(
            f"Propagated to {len(report.written)} planes in {report.seconds:.1f} s ({stops}). Least sure: {unsure or '-'}"
        )
        self._after_edit()
        self.propagated.emit(report)

    def _do_replay(self, records: list[ClickRecord]) -> None:
        total, done = len(records), []
        self.progress.emit(0, total)

        def count(_outcome: ClickOutcome) -> None:
            done.append(1)
            self.progress.emit(len(done), total)

        self._say(f"Replaying {total} clicks...")
        self._run(self.annotator.replay, records, on_yield=count, on_finish=self._after_edit)
