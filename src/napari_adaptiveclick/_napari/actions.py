"""What each action does to the annotator, and what it tells the user: clicks and the other
prompts (strokes, boxes, lasso and label masks), undo, commit, reset, object choice,
propagation, replay and cancel.

:class:`AnnotationActions` queues every action as a job of a :class:`~.jobs.JobQueue`, so
they run in order; predictions run in the queue's workers. It uses the queue and the
:class:`~napari_adaptiveclick.volume.VolumeAnnotator` through their public methods and knows
nothing of layers or clicks on screen. Its interface:

- :meth:`~AnnotationActions.attach` ``(annotator)`` / :meth:`~AnnotationActions.detach`: the
  annotator the actions edit; without one, an action only says "Press Start first".
- :meth:`~AnnotationActions.click` ``(plane, row, col, positive)``, ``scribble(plane, points,
  positive)``, ``box(plane, top, left, bottom, right)``, ``lasso(plane, polygon)``,
  ``refine_label(plane, label)`` (that label's pixels on the plane become the mask prompt of
  that object), ``undo``, ``commit``, ``reset``, ``select_object(object_id | None)``,
  ``propagate(plane)``, ``replay(records)`` (ValueError at once for records that cannot
  all be replayed), ``rethreshold`` (the last prompt's probability at its threshold now),
  ``cancel``. A prompt, undo or reset stops a running propagation or replay after its
  slice. A prompt (any kind: each is one undo step and one record) is predicted in a worker
  and written into the labels on the Qt thread only if its result is kept: a result a newer
  queued prompt makes stale is recorded, not drawn; one that Cancel or ``detach`` overtook
  never touches the labels. The edits of a propagation or replay that ``detach`` stopped are
  undone when its worker ends. Undo right after a commit only reopens the committed object.
- ``propagation_settings`` (read at each propagation; None: those for the annotator's model), ``last_outcome`` (of the last click),
  ``last_report`` (of the last propagation), ``others_pending()`` (prompts not yet recorded).
- Signals: ``status(str)`` and ``failed(str)`` (messages for the user), ``edited()`` (the labels
  or the current object changed: redraw and store), ``prediction_ended()`` (a click's
  prediction ended, drawn, stale or failed: the oldest waiting click is settled),
  ``slice_written(plane)`` (a propagated slice was accepted), ``progress(done, total)``,
  ``propagated(report)`` and ``discarded()`` (a stopped job ended; its edits are undone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from psygnal import Signal

from napari_adaptiveclick._napari.jobs import JobQueue, brief
from napari_adaptiveclick.interactive.prompts import BoxPrompt, Click, Prompt, Scribble
from napari_adaptiveclick.volume import (
    ClickOutcome,
    PropagatedSlice,
    Propagation,
    PropagationReport,
    PropagationSettings,
    VolumeAnnotator,
)
from napari_adaptiveclick.volume.edits import Step
from napari_adaptiveclick.volume.records import ClickRecord

if TYPE_CHECKING:  # pragma: no cover
    from napari_adaptiveclick.interactive.results import Prediction

KEY_HINTS = "T: polarity | C: commit | Shift-C: reset | Ctrl-Z: undo | Shift-P: propagate"
KEY_HINTS += " (T, Shift-P: on the click layer)"  # on the prompts layer: napari's path, lasso
INTERRUPTING = ("prompt", "undo", "reset")  # actions that stop a propagation or replay


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
    discarded = Signal()

    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs
        self.annotator: VolumeAnnotator | None = None
        self.propagation_settings: PropagationSettings | None = None  # None: the model's
        self.last_outcome: ClickOutcome | None = None
        self.last_report: PropagationReport | None = None
        self._propagation: Propagation | None = None
        self._propagated = 0  # slices of the running propagation done so far
        self._epoch = 0  # bumped by cancel and detach: older click results are dropped
        self._commits: list[tuple[int, int]] = []  # (committed id, records then) per commit
        self._last_click: tuple[ClickRecord, Prediction] | None = None  # and its prediction
        self._others: set[object] = set()  # a token per other prompt queued or predicted

    def attach(self, annotator: VolumeAnnotator) -> None:
        """Edit ``annotator`` from now on."""
        self.annotator = annotator

    def detach(self) -> None:
        """Edit no annotator: a running click's result is dropped, a running propagation's or
        replay's edits are undone when it ends."""
        self.annotator, self._commits, self._last_click = None, [], None
        self._epoch, self._others = self._epoch + 1, set()

    def others_pending(self) -> int:
        """How many boxes, strokes, lassos and label masks are queued or predicted."""
        return len(self._others)

    # ------------------------------------------------------------------ queued by the user
    def click(self, plane: int, row: float, col: float, positive: bool = True) -> None:
        click = Click(float(row), float(col), bool(positive))
        self._submit_prompt(plane, lambda _annotator: click, is_click=True)

    def scribble(self, plane: int, points: Sequence[Sequence[float]], positive: bool) -> None:
        """A stroke through ``points`` ((row, col), drawing order) on ``plane``."""
        stroke = Scribble(points, bool(positive))
        self._submit_prompt(plane, lambda _annotator: stroke)

    def box(self, plane: int, top: float, left: float, bottom: float, right: float) -> None:
        """A box around the object on ``plane`` (edges in pixels, as in a ``BoxPrompt``)."""
        box = BoxPrompt(top, left, bottom, right)
        self._submit_prompt(plane, lambda _annotator: box)

    def lasso(self, plane: int, polygon: Sequence[Sequence[float]]) -> None:
        """The pixels inside ``polygon`` ((row, col) vertices) on ``plane`` become the current
        object's mask there (a mask prompt: the next clicks refine it)."""
        polygon = [tuple(map(float, vertex)) for vertex in polygon]

        def lasso(annotator: VolumeAnnotator) -> Prompt:
            return annotator.mask_prompt(plane, polygon=polygon)

        self._submit_prompt(plane, lasso)

    def refine_label(self, plane: int, label: int) -> None:
        """Segment ``label`` (made current once recorded, not on failure or Cancel) from its
        pixels on ``plane`` (read when its turn comes): a mask prompt the next clicks refine."""
        label = int(label)
        if label == 0:
            self.status.emit("Choose the label to refine in the Labels layer (0 is background).")
            return

        def mask(annotator: VolumeAnnotator) -> Prompt:
            return annotator.mask_prompt(plane, label=label)

        self._submit_prompt(plane, mask, label)

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
        self.annotator is None or self.annotator.check_replay(records)  # before any is applied
        self._submit("replay", self._do_replay, list(records))

    def rethreshold(self) -> None:
        """Apply the annotator's threshold to the last click's probability (after an undo,
        the click now last) if it is still the current object's last edit (queued in turn)."""
        self._submit("threshold", self._do_rethreshold)

    def cancel(self) -> None:
        """Drop queued actions and the result of a click in progress (the labels stay as they
        are); stop a propagation or replay after the current slice."""
        self._epoch, self._others = self._epoch + 1, set()
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

    def _submit_prompt(self, plane: int, make: Callable, label=None, is_click=False) -> None:
        """Queue :meth:`_do_prompt`; a prompt other than a click counts in
        :meth:`others_pending` until it ends (or Cancel drops it)."""
        token = None if is_click else object()
        if token is not None and self.annotator is not None:
            self._others.add(token)
        self._submit("prompt", self._do_prompt, plane, make, label, token)

    # ------------------------------------------------------------------ run in turn
    def _on_prediction_error(self, error: Exception, settle: bool = True) -> None:
        if settle:
            self.prediction_ended.emit()
        self.failed.emit(f"Prediction failed: {type(error).__name__}: {brief(str(error))}")
        self.edited.emit()

    def _do_prompt(self, plane: int, make: Callable, label, token) -> None:
        """Predict ``make(annotator)`` on ``plane`` in a worker (``make`` may read the labels:
        a mask prompt), for object ``label`` when given (made current once the result is
        kept). ``token``: None for a click of the click layer, which waits there until its
        prediction ends, else the prompt's entry in :attr:`_others` until then."""
        annotator, epoch = self.annotator, self._epoch

        def ended() -> None:
            self._others.discard(token)
            if token is None:
                self.prediction_ended.emit()

        def predict() -> tuple[Prompt, tuple]:
            prompt = make(annotator)
            return prompt, annotator.predict_prompt(plane, prompt, label)

        def kept(drawn: bool) -> Callable:
            return lambda result: self._on_prompt_done(
                annotator, epoch, result, drawn, label, ended
            )

        def failed(error: Exception) -> None:
            ended()
            if isinstance(error, ValueError):  # the prompt does not fit: say why
                hint = " Choose a label shown on this plane." if label is not None else ""
                self.failed.emit(f"{error}{hint}")
                self.edited.emit()
            else:
                self._on_prediction_error(error, settle=False)

        self.jobs.run(predict, on_return=kept(True), on_stale=kept(False), on_error=failed)

    def _on_prompt_done(self, annotator, epoch: int, result, drawn: bool, label, ended) -> None:
        """On the Qt thread: write a predicted prompt (threshold of now) unless it was dropped;
        a label's mask prompt first makes that label the current object."""
        ended()
        prompt, (run, prediction, seconds) = result
        if self.annotator is not annotator or self._epoch != epoch:
            if self.annotator is not None:  # Cancel: show what the labels hold
                what = "click" if isinstance(prompt, Click) else "prompt"
                self.status.emit(f"Cancelled: the {what} in progress was discarded.")
                self.edited.emit()
            return
        if label is not None and label != annotator.object_id:
            annotator.select_object(label)
        cut = annotator.threshold
        mask, step = prediction.crop > cut, Step(annotator.object_id)  # costs the crop's size
        record = annotator.accept_click(run, prompt, mask, step, prediction.box, threshold=cut)
        self._last_click = (record, prediction)
        self.last_outcome = outcome = ClickOutcome(record, annotator.area(record.plane), seconds)
        if not drawn:
            return
        self.edited.emit()
        what = "per click" if record.kind == "click" else f"for the {record.kind}"
        self.status.emit(
            f"{outcome.seconds * 1000:.0f} ms {what} | object {record.object_id}, plane "
            f"{record.plane}: {outcome.area} px | {KEY_HINTS}"
        )

    def _do_rethreshold(self) -> None:
        if self._last_click is None:
            return
        (record, prediction), threshold = self._last_click, self.annotator.threshold
        mask, box = prediction.crop > threshold, prediction.box
        record = self.annotator.rewrite_click(record, mask, box, threshold)
        if record is not None:  # the click's record now holds the new threshold
            self._last_click, area = (record, prediction), self.annotator.area(record.plane)
            self.last_outcome = ClickOutcome(record, area, self.last_outcome.seconds)
            self.status.emit(
                f"Threshold {threshold:.2f}: object {record.object_id}, plane {record.plane}: "
                f"{area} px | {KEY_HINTS}"
            )
            self.edited.emit()

    def _do_undo(self) -> None:
        count = len(self.annotator.records)
        while self._commits and self._commits[-1][1] > count:  # undone past that commit
            self._commits.pop()
        if self._commits and self._commits[-1][1] == count:
            old, _ = self._commits.pop()
            self.annotator.select_object(old)
            self.status.emit(f"Commit undone: segmenting object {old} again.")
        elif self.annotator.undo():
            self._last_click = self.annotator.held_prediction()  # what a new threshold re-cuts
            self.status.emit(
                f"Undone; {len(self.annotator.object_records())} clicks on object {self.annotator.object_id}."
            )
        else:
            self.status.emit("Nothing to undo.")
        self.edited.emit()

    def _do_commit(self) -> None:
        old, count = self.annotator.object_id, len(self.annotator.records)
        new = self.annotator.commit()
        if new != old:  # undo reopens ``old`` (one undo level for commits in a row)
            if self._commits and self._commits[-1][1] == count:
                self._commits.pop()
            self._commits.append((old, count))
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
            + (" (refining its existing pixels)." if self.annotator.has_pixels(new) else ".")
        )
        self.edited.emit()

    def _do_propagate(self, plane: int) -> None:
        job = self.annotator.propagation(plane, self.propagation_settings)
        self._propagation, self._propagated = job, 0
        self.progress.emit(0, job.total)
        self.status.emit(
            f"Propagating object {self.annotator.object_id} from plane {plane}... (Cancel to stop)"
        )
        self._run_undoable(
            _steps, job, on_yield=self._on_propagated_slice, on_finish=self._finish_propagation
        )

    def _run_undoable(self, func: Callable, *args, on_yield: Callable, on_finish: Callable) -> None:
        """Run a long job that edits the annotator (in a worker); if :meth:`detach` stopped
        it, its edits are undone when it ends, before ``on_finish``."""
        annotator, count = self.annotator, len(self.annotator.records)

        def finish() -> None:
            if self.annotator is not annotator:
                while len(annotator.records) > count and annotator.undo():
                    pass
                self.discarded.emit()
            on_finish()

        self.jobs.run(
            func, *args, on_yield=on_yield, on_error=self._on_prediction_error, on_finish=finish
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
        doubtful = ", ".join(map(str, report.doubtful))
        self.status.emit(
            f"Propagated to {len(report.written)} planes in {report.seconds:.1f} s ({stops})."
            + (f" DOUBTFUL, check first: {doubtful}." if doubtful else "")
            + f" Least sure: {unsure or '-'}"
        )
        self.edited.emit()
        self.propagated.emit(report)

    def _do_replay(self, records: list[ClickRecord]) -> None:
        total, done = len(records), []
        self.progress.emit(0, total)

        def count(_outcome: ClickOutcome) -> None:
            done.append(1)
            self.progress.emit(len(done), total)

        def finish() -> None:
            if self.annotator is None:
                return
            self.progress.emit(1, 1)
            self.status.emit(
                f"Replay {'finished' if len(done) == total else 'stopped'}: {len(done)} of "
                f"{total} clicks applied."
            )
            self.edited.emit()

        self.status.emit(f"Replaying {total} clicks...")
        self._run_undoable(self.annotator.replay, records, on_yield=count, on_finish=finish)
