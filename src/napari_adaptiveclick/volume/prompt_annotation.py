"""Strokes, boxes and masks as prompts of a volume annotation, beside clicks; propagation.

:class:`PromptAnnotation` is the part of :class:`~.annotator.VolumeAnnotator` that gives
the other prompt kinds of :mod:`napari_adaptiveclick.interactive.prompts`: each call is one
undo step and one record (:mod:`.records`, kinds ``scribble``, ``box`` and ``mask``), and
:meth:`PromptAnnotation.replay_record` applies a record of any kind as it was made (with
the intensity trim of a propagated slice, :mod:`.consistency`). It also starts propagations
(:mod:`.propagation`), which prompt slice after slice.
:meth:`PromptAnnotation.mask_prompt` and :meth:`PromptAnnotation.predict_prompt` split a call
into its prediction and its write (``accept_click``), as for clicks, so that a viewer can
predict in a worker and write on its own thread.

A scribble or a box is predicted like a click, in the object's run on its plane (rules 1-3
of :mod:`napari_adaptiveclick.volume`). A mask prompt starts a new run whose prior is that
mask (it replaces what the run's earlier prompts said); the object takes its pixels (rule 3)
and the clicks after it on that plane refine it. Its record names where the mask came from
(the label id whose pixels it was, or the lasso polygon) and its SHA-256, so replay reads
the same mask again or refuses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from napari_adaptiveclick.interactive.boxed import bounding_box, box_slices, paste
from napari_adaptiveclick.interactive.prompts import (
    BoxPrompt,
    MaskPrompt,
    Prompt,
    Scribble,
    check_prompt,
)
from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.io.lazy import is_lazy
from napari_adaptiveclick.volume.consistency import EVERY_VALUE, IntensityRange, trim_to_range
from napari_adaptiveclick.volume.edits import ClickOutcome, Run, Step
from napari_adaptiveclick.volume.propagation import (
    PropagatedSlice,
    Propagation,
    PropagationReport,
    PropagationSettings,
)
from napari_adaptiveclick.volume.records import ClickRecord, checked_threshold, record_threshold
from napari_adaptiveclick.volume.replay_checks import check_records

if TYPE_CHECKING:  # pragma: no cover
    from napari_adaptiveclick.interactive.session import Prediction


class PromptAnnotation:
    """Scribbles, boxes and mask prompts of :class:`~.annotator.VolumeAnnotator` (which
    provides ``geometry``, ``mask``, ``predict_click``, ``accept_click``, ``area`` and the
    rest used here). Planes are indices along the slicing axis, points (row, col) on them."""

    def add_scribble(
        self, plane: int, points: Sequence[Sequence[float]], positive: bool = True
    ) -> ClickOutcome:
        """A stroke through ``points`` ((row, col), drawing order) on ``plane`` for the
        current object, positive or negative: predict and write that plane's labels. Raises
        ValueError for a point outside the plane."""
        return self._add_prompt(plane, Scribble(points, bool(positive)))

    def add_box(
        self, plane: int, top: float, left: float, bottom: float, right: float
    ) -> ClickOutcome:
        """A box around the current object on ``plane`` (pixel centres in [top, bottom) x
        [left, right), see :class:`~napari_adaptiveclick.interactive.prompts.BoxPrompt`):
        predict and write. Raises ValueError for an empty box or one outside the plane."""
        return self._add_prompt(plane, BoxPrompt(top, left, bottom, right))

    def set_mask(
        self,
        plane: int,
        *,
        label: int | None = None,
        polygon: Sequence[Sequence[float]] | None = None,
    ) -> ClickOutcome:
        """Start the current object on ``plane`` from a mask: the pixels that ``label`` (any
        id, e.g. from another tool) has there, or those inside the lasso ``polygon`` ((row,
        col) vertices, clipped to the plane). One undo step, recorded; the clicks after it on
        that plane refine it. Raises ValueError without exactly one of the two, or for a
        mask without pixels."""
        return self._add_prompt(plane, self.mask_prompt(plane, label=label, polygon=polygon))

    def refine_label(self, plane: int, label: int) -> ClickOutcome:
        """Refine an existing label: make ``label`` the current object and its mask on
        ``plane`` the start of a run (:meth:`set_mask`), so that the clicks after it refine
        it."""
        self.select_object(label)
        return self.set_mask(plane, label=label)

    # ------------------------------------------------------------------ threshold, replay
    @property
    def threshold(self) -> float:
        """Mask threshold of new predictions (mask = probability > threshold). A replay
        predicts each record at its own, and this one holds between records and after."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        value = checked_threshold(value)
        with self._threshold_lock:  # set from a viewer's thread while a replay runs
            self._threshold = value
            if not self._replaying:
                self.session.threshold = value

    def replay(self, records: Sequence[ClickRecord]) -> Iterator[ClickOutcome]:
        """Apply records of any kind in ``order`` (each one undo level), yielding each outcome;
        each is predicted at its own threshold (records without one: :attr:`threshold` when
        the replay began). Every record is checked first (:meth:`check_replay`): a bad
        file changes nothing."""
        self.check_replay(records)
        default = self.threshold
        for record in sorted(records, key=lambda r: r.order):
            if record.object_id != self.object_id:
                self.select_object(record.object_id)
            self.model_name = record.model or self.model_name
            yield self._replayed(record, record_threshold(record, default))

    def check_replay(self, records: Sequence[ClickRecord]) -> None:
        """ValueError, naming an offending record, for records that cannot all be replayed
        here (label masks against the labels' ids, unless they are lazy): made along another
        slicing axis, or refused by
        :func:`~napari_adaptiveclick.volume.replay_checks.check_records`."""
        wrong = [r for r in records if r.axis != self.geometry.axis]
        if wrong:
            raise ValueError(
                f"The record of order {wrong[0].order} was made on slices along axis "
                f"{wrong[0].axis}, but this volume is cut along axis {self.geometry.axis}; "
                "nothing was replayed."
            )
        labelled = any(r.kind == "mask" and r.mask_label for r in records)
        ids = np.unique(self.labels) if labelled and not is_lazy(self.labels) else None
        check_records(records, self.geometry.shape, self.labels.dtype, ids)

    def _replayed(self, record: ClickRecord, threshold: float) -> ClickOutcome:
        """:meth:`replay_record` at ``threshold``; :attr:`threshold` again once it returns."""
        with self._threshold_lock:
            self._replaying, self.session.threshold = True, threshold
        try:
            return self.replay_record(record)
        finally:
            with self._threshold_lock:
                self._replaying, self.session.threshold = False, self._threshold

    def replay_record(self, record: ClickRecord) -> ClickOutcome:
        """Apply ``record`` (any kind) to the current object as it was made. A mask record
        is read again from its label or polygon; ValueError, with nothing changed, when that
        mask is not the recorded one (its SHA-256 differs)."""
        if record.kind == "click" and not record.keep.limits:
            return self.add_click(record.plane, record.row, record.col, record.positive)
        if record.kind != "mask":
            return self._add_prompt(record.plane, record.prompt, record.keep)
        source = {"label": record.mask_label or None, "polygon": record.points or None}
        try:
            prompt = self.mask_prompt(record.plane, **source)
        except ValueError as err:
            raise ValueError(
                f"The record of order {record.order} (a mask) cannot be replayed: {err}"
            ) from None
        if record.mask_sha256 and prompt.sha256 != record.mask_sha256:
            what = f"label {record.mask_label}" if record.mask_label else "the polygon"
            raise ValueError(
                f"The record of order {record.order}: the mask of {what} on plane "
                f"{record.plane} is not the one recorded (its SHA-256 differs): the labels "
                "differ from those the records were made on. Nothing was changed by this record."
            )
        return self._add_prompt(record.plane, prompt)

    def mask_prompt(
        self,
        plane: int,
        *,
        label: int | None = None,
        polygon: Sequence[Sequence[float]] | None = None,
    ) -> MaskPrompt:
        """The mask prompt of ``label``'s pixels or of the pixels inside ``polygon`` on
        ``plane`` (see :meth:`set_mask`), read now. Raises ValueError without exactly one of
        the two, or for a mask without pixels."""
        self._check_plane(plane)
        if (label is None) == (polygon is None):
            raise ValueError("A mask prompt needs either a label id or a polygon, not both.")
        shape = self.geometry.slice_shape
        if polygon is not None:
            return MaskPrompt.of_polygon(polygon, shape)
        full = self.mask(plane, int(label))
        if not full.any():
            raise ValueError(f"Label {label} has no pixels on plane {plane}.")
        return MaskPrompt.of(full, shape, label=int(label))

    def predict_prompt(
        self, plane: int, prompt: Prompt, object_id: int | None = None
    ) -> tuple[Run, Prediction, float]:
        """Predict ``prompt`` (any kind) on ``plane`` for the current object without writing
        anything, as :meth:`~.annotator.VolumeAnnotator.predict_click` does: a click, stroke
        or box in the object's run there, a mask prompt as the start of a new run whose prior
        is its mask. Returns (run, prediction, seconds); pass them to ``accept_click`` to
        keep the prompt (one undo step). Raises ValueError for a prompt that does not fit.
        ``object_id``: the object a mask prompt starts, when not the current one (make it
        current with ``select_object`` before ``accept_click``; a click, stroke or box is
        always the current object's)."""
        self._check_plane(plane)
        check_prompt(prompt, self.geometry.slice_shape)
        object_id = self.object_id if object_id is None else int(object_id)
        if not isinstance(prompt, MaskPrompt):
            if object_id != self.object_id:
                raise ValueError("Only a mask prompt can start an object that is not current.")
            return self.predict_click(plane, prompt)
        start = time.perf_counter()
        full = paste(prompt.values, prompt.box, Box(0, 0, *prompt.shape), fill=False)
        run = Run.starting_from(object_id, plane, full)
        run.extent = bounding_box(self.mask(plane, object_id))  # its pixels there now
        prediction = self._predictor.predict(run, prompt)
        return run, prediction, time.perf_counter() - start

    def plane_values(self, plane: int, box: Box) -> np.ndarray:
        """The image's values in ``box`` of ``plane`` as (rows, cols) float32 (RGB: the mean
        of the channels): what an intensity range (:mod:`.consistency`) is of."""
        data = np.asarray(self.image[self.geometry.index(plane)][box_slices(box)], np.float32)
        return data.mean(axis=-1) if data.ndim == 3 else data

    def trimmed_mask(
        self, plane: int, mask: np.ndarray, box: Box, keep: IntensityRange
    ) -> np.ndarray:
        """``mask`` (its part in ``box`` of ``plane``) trimmed to ``keep``, holes given back:
        the one trim of a propagated slice, made when propagating and when replaying."""
        return trim_to_range(mask, self.plane_values(plane, box), keep)

    # ------------------------------------------------------------------ propagation
    def propagation(self, plane: int, settings: PropagationSettings | None = None) -> Propagation:
        """A stepper that propagates the current object from ``plane`` (see :class:`Propagation`);
        ``settings`` default to those for this annotation's model
        (:meth:`PropagationSettings.for_model`)."""
        if settings is None:
            settings = PropagationSettings.for_model(getattr(self, "model_name", "default"))
        return Propagation(self, plane, settings)

    def propagate(
        self,
        plane: int,
        settings: PropagationSettings | None = None,
        progress: Callable[[PropagatedSlice], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> PropagationReport:
        """Propagate the current object from ``plane`` through the volume; ``progress`` is
        called after each slice, ``cancelled()`` is checked before each slice."""
        job = self.propagation(plane, settings)
        for result in job:
            if progress is not None:
                progress(result)
            if cancelled is not None and cancelled():
                job.cancel()
        return job.report()

    # ------------------------------------------------------------------ shared steps
    def _check_plane(self, plane: int) -> None:
        if not 0 <= plane < self.geometry.planes:
            raise ValueError(
                f"Plane {plane} is outside the volume ({self.geometry.planes} planes)."
            )

    def _add_prompt(
        self, plane: int, prompt: Prompt, keep: IntensityRange = EVERY_VALUE
    ) -> ClickOutcome:
        """Predict ``prompt`` on ``plane`` and write it: one undo step, one record; ``keep``:
        the intensities the mask is trimmed to (a propagated slice's, replayed)."""
        run, prediction, seconds = self.predict_prompt(plane, prompt)
        step, box, mask = Step(self.object_id), prediction.box, prediction.crop_mask
        if keep.limits:
            mask = self.trimmed_mask(plane, self.written_mask(plane, mask, box), box, keep)
        cut = prediction.threshold
        record = self.accept_click(run, prompt, mask, step, box=box, keep=keep, threshold=cut)
        return ClickOutcome(record, self.area(plane), seconds)
