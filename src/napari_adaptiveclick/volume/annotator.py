"""Click segmentation of one object at a time in a label volume, with undo.

Follows the rules of :mod:`napari_adaptiveclick.volume` (runs, priors, what is written).
Torch is used only through the ClickSession; napari is never imported here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from napari_adaptiveclick.interactive.boxed import bounding_box, box_slices, box_union
from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.interactive.prompts import Click, Prompt
from napari_adaptiveclick.interactive.transforms import Box, IntensityStats, sampled_intensity_stats
from napari_adaptiveclick.io.lazy import (
    as_array,
    contains,
    held_values,
    is_lazy,
    max_value,
    sample_values,
)
from napari_adaptiveclick.volume.consistency import EVERY_VALUE, IntensityRange
from napari_adaptiveclick.volume.edits import ClickOutcome, Run, Step, replace_object
from napari_adaptiveclick.volume.painted import PaintedObjects
from napari_adaptiveclick.volume.predictor import RunPredictor
from napari_adaptiveclick.volume.prompt_annotation import PromptAnnotation
from napari_adaptiveclick.volume.records import ClickRecord, record_of
from napari_adaptiveclick.volume.slicing import SliceGeometry

if TYPE_CHECKING:  # pragma: no cover
    from napari_adaptiveclick.interactive.session import Prediction


class VolumeAnnotator(PromptAnnotation):
    """Click segmentation of one object at a time in a label volume, following the rules of
    :mod:`napari_adaptiveclick.volume`.

    ``image``: ``(P, R, C)`` grey or ``(P, R, C, 3)`` RGB, any numeric dtype.
    ``labels``: ``(P, R, C)`` integer array, edited IN PLACE (pass a napari layer's data).
    Either may be lazy (zarr / HDF5 stores: only the crops a click needs are read, edits
    write through).
    ``session``: the ClickSession that predicts (a fresh one per annotator; not thread-safe:
    call one method at a time). ``axis``: slicing axis. ``model_name``: stored in records.
    ``stats``: intensity range (lo, hi) for all slices (default: from a bounded sample of
    its planes, :func:`~napari_adaptiveclick.interactive.transforms.sampled_intensity_stats`).
    Scribbles, boxes and masks: :class:`~.prompt_annotation.PromptAnnotation`.

    A click costs its focus crop, not the plane or the volume: labels are read and written
    in the crop and the object's box on the plane (found when a run starts, then kept from
    each write); undo keeps the changed boxes; ids are tracked (:meth:`next_free_id`), not
    searched for; what is painted by hand is noted by the viewer (:attr:`painted`). Pixels
    painted during a run outside the object's last box are not erased by its next click.
    """

    def __init__(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        session,
        *,
        axis: int = 0,
        model_name: str = "",
        stats: IntensityStats | None = None,
        overwrite: bool = False,
    ) -> None:
        image, labels = as_array(image), as_array(labels, writable=True)
        spatial = tuple(image.shape[:3])
        if image.ndim not in (3, 4) or (image.ndim == 4 and image.shape[-1] not in (3, 4)):
            raise ValueError(
                f"Expected a (plane, row, col) volume or an RGB (plane, row, col, 3) stack, got "
                f"shape {image.shape}. Pass a 2D image as image[None]; choose one time point or "
                "channel of 4D data."
            )
        if tuple(labels.shape) != spatial:
            raise ValueError(
                f"Labels of shape {np.shape(labels)} do not match the image's {spatial}; create "
                "a Labels array of the image's shape."
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"Labels must have an integer dtype, got {labels.dtype}.")
        self.image, self.labels, self.session = image, labels, session
        self.geometry = SliceGeometry(spatial, axis)
        self.model_name, self.overwrite = model_name, overwrite
        if stats is None:  # of a store: from a sample of a few chunks
            stats = sampled_intensity_stats(sample_values(image) if is_lazy(image) else image)
        self.stats = stats
        self._predictor = RunPredictor(session, image, self.geometry, self.stats)
        self._runs: list[Run] = []
        self._history: list[Step] = []
        self._object_id = self._selection_mark = 0  # no object yet
        self._max_id = self._start_id = max_value(labels)
        self._changed: dict[int, Box] = {}  # plane -> box written since take_changes()
        self.painted = PaintedObjects()  # painted by hand: the viewer notes each paint
        self._threshold = getattr(session, "threshold", PREDICTION_THRESHOLD)
        self._threshold_lock = threading.Lock()
        self._replaying = False  # (the threshold and replay: PromptAnnotation)
        self.select_object(None)

    # ------------------------------------------------------------------ objects
    @property
    def object_id(self) -> int:
        """The id that clicks currently segment."""
        return self._object_id

    @property
    def records(self) -> list[ClickRecord]:
        """All click records, in order."""
        return [record for run in self._runs for record in run.records]

    @property
    def can_undo(self) -> bool:
        return bool(self._history)

    def object_records(self, object_id: int | None = None) -> list[ClickRecord]:
        """Records of one object (default: the current one), in order."""
        object_id = self._object_id if object_id is None else object_id
        return [r for run in self._runs if run.object_id == object_id for r in run.records]

    def anchor_planes(self, object_id: int | None = None) -> set[int]:
        """Planes where the object has clicks of its own (not derived by propagation)."""
        object_id = self._object_id if object_id is None else object_id
        return {r.plane for r in self._runs if r.object_id == object_id and not r.propagated}

    def next_free_id(self) -> int:
        """One more than the largest id in use: in the labels at the start, in the records,
        selected by the caller, painted by hand or left with pixels (no pass over the volume).
        Past the largest id the labels' type holds (a 0/255 uint8 mask), the smallest id
        found in neither the labels nor the records (a pass over labels in memory)."""
        largest = max([self._max_id, self.painted.max_id] + [r.object_id for r in self._runs])
        if largest < np.iinfo(self.labels.dtype).max or is_lazy(self.labels):
            return largest + 1
        ids = np.union1d(held_values(self.labels), [r.object_id for r in self._runs])
        ids = ids[ids > 0]  # sorted: the first id that is not its rank is free
        gaps = np.flatnonzero(ids != np.arange(1, len(ids) + 1))
        return int(gaps[0] + 1) if len(gaps) else len(ids) + 1  # limit + 1: none free

    def select_object(self, object_id: int | None) -> int:
        """Make ``object_id`` current (an existing id refines that object); None picks a new id."""
        if self._object_id > self._max_id and self.has_pixels(self._object_id):
            self._max_id = self._object_id  # a new id left with pixels (painted by hand)
        return self._make_current(object_id)

    def _make_current(self, object_id: int | None) -> int:
        new_id = self.next_free_id() if object_id is None else int(object_id)
        limit = np.iinfo(self.labels.dtype).max
        if not 1 <= new_id <= limit:
            full = "labels on disk are not searched" if is_lazy(self.labels) else "none is free"
            raise ValueError(
                f"Label id {new_id} is out of range for {self.labels.dtype} labels (1..{limit})"
                f"{f' and {full}' * (object_id is None)}; convert "
                "the labels to a wider integer type (uint16 or int32) first."
            )
        self._object_id = new_id
        if object_id is not None:
            self._max_id = max(self._max_id, new_id)
        self._selection_mark = len(self._history)
        return new_id

    def commit(self) -> int:
        """Fix the current object and move to a new id (returned). An object without pixels
        keeps its id."""
        if not self.has_pixels(self._object_id):
            return self._object_id
        self._max_id = max(self._max_id, self._object_id)
        return self._make_current(None)

    def has_pixels(self, object_id: int) -> bool:
        """True when ``object_id`` has pixels in the labels: looked for in the boxes of its
        runs and where it was painted first, then in the whole volume (not in labels on disk:
        too big to search)."""
        runs = [(r.plane, r.extent) for r in reversed(self._runs) if r.object_id == object_id]
        for plane, box in [*runs, *self.painted.boxes(object_id).items()]:
            if box is not None and (self._plane_labels(plane, box) == object_id).any():
                return True
        return not is_lazy(self.labels) and contains(self.labels, object_id)

    def _plane_labels(self, plane: int, box: Box | None = None) -> np.ndarray:
        """The labels of ``plane`` (in ``box``), read (a view for labels in memory)."""
        view = self.labels[self.geometry.index(plane)]
        return np.asarray(view if box is None else view[box_slices(box)])

    def take_changes(self) -> dict[int, Box]:
        """The box of each plane whose labels were written (clicks, rewrites, propagation,
        undo) since the last call: what a viewer has to redraw there."""
        changed, self._changed = self._changed, {}
        return changed

    def _note_change(self, plane: int, box: Box) -> None:
        self._changed[plane] = box_union(self._changed.get(plane, box), box)

    def reset(self) -> int:
        """Undo everything done to the current object since it was selected; returns the
        number of undo levels removed."""
        count = 0
        while len(self._history) > self._selection_mark and self.undo():
            count += 1
        return count

    def undo(self) -> bool:
        """Remove the last click (or propagation) and restore the labels it changed; the
        object it belonged to becomes current. False when there is nothing to undo."""
        if not self._history:
            return False
        step = self._history.pop()
        for patch in reversed(step.patches):
            patch.restore(self.labels[self.geometry.index(patch.plane)])
            self._note_change(patch.plane, patch.box)
        for _ in range(step.n_records):
            self._runs[-1].records.pop()
            if not self._runs[-1].records:
                self._runs.pop()
        last = self._runs[-1] if self._runs else None
        if last is not None and last.extent is not None:  # the restored pixels may be its
            for patch in step.patches:
                if patch.plane == last.plane:
                    last.extent = box_union(last.extent, patch.box)
        self._predictor.undo_to(last)
        self._object_id = step.object_id
        self._selection_mark = min(self._selection_mark, len(self._history))
        return True

    def held_prediction(self) -> tuple[ClickRecord, Prediction] | None:
        """The last record and the session's prediction for it while the session still holds
        its run (after an undo inside that run): what a changed threshold re-applies to
        (:meth:`rewrite_click`); None otherwise, and for a record trimmed to an intensity
        range (propagated or replayed with one), whose mask is not the probability cut."""
        run = self._runs[-1] if self._runs else None
        if run is None or not run.records or not self._predictor.holds(run):
            return None
        record = run.records[-1]
        return None if record.keep.limits else (record, self.session.prediction)

    # ------------------------------------------------------------------ clicks
    def mask(self, plane: int, object_id: int | None = None) -> np.ndarray:
        """(rows, cols) bool mask of an object (default: current) on ``plane``."""
        object_id = self._object_id if object_id is None else object_id
        return self._plane_labels(plane) == object_id

    def add_click(self, plane: int, row: float, col: float, positive: bool = True) -> ClickOutcome:
        """Click at (row, col) of ``plane`` for the current object: predict and write the
        labels of that plane. Raises ValueError for a point outside the volume."""
        if not self.geometry.contains(plane, row, col):
            rows, cols = self.geometry.slice_shape
            raise ValueError(
                f"Click at plane {plane}, (row {row:.1f}, col {col:.1f}) is outside the volume "
                f"({self.geometry.planes} planes of {rows} x {cols}); click on the image."
            )
        click = Click(float(row), float(col), bool(positive))
        run, prediction, seconds = self.predict_click(plane, click)
        step = Step(self._object_id)
        mask, box = prediction.crop_mask, prediction.box
        record = self.accept_click(run, click, mask, step, box=box, threshold=prediction.threshold)
        return ClickOutcome(record, self.area(plane), seconds)

    def area(self, plane: int) -> int:
        """Pixels of the current object on ``plane`` (counted in its box when the last run
        knows it)."""
        last = self._runs[-1] if self._runs else None
        if self._continues_last_run(plane) and last.extent is not None:
            return int((self._plane_labels(plane, last.extent) == self._object_id).sum())
        return int(self.mask(plane).sum())

    def start_mask(self, plane: int) -> np.ndarray | None:
        """The (rows, cols) bool mask a click on ``plane`` builds on: the object's mask there
        when the click continues the last run (rule 1), else that run's prior (rule 2)."""
        return self.mask(plane) if self._continues_last_run(plane) else self._run_prior(plane)

    def _unseen(self, plane: int) -> bool:
        """True when the current object has no pixels on ``plane`` for certain, unread: labels
        on disk (not searched), an id above those they started with, neither painted on
        ``plane`` (:attr:`painted`) nor with a run there."""
        if not is_lazy(self.labels) or self._object_id <= self._start_id:
            return False
        runs = (r.plane for r in self._runs if r.object_id == self._object_id)
        return plane not in {*runs, *self.painted.boxes(self._object_id)}

    def _continues_last_run(self, plane: int) -> bool:
        last = self._runs[-1] if self._runs else None
        return last is not None and (last.object_id, last.plane) == (self._object_id, plane)

    def _run_prior(self, plane: int, own: np.ndarray | None = None) -> np.ndarray | None:
        """Rule 2 of :mod:`napari_adaptiveclick.volume` (``own``: the object's mask on
        ``plane`` when already at hand; None: read, unless :meth:`_unseen`)."""
        if own is None and not self._unseen(plane):
            own = self.mask(plane)
        if own is not None and own.any():
            return own
        neighbours = [q for q in (plane - 1, plane + 1) if 0 <= q < self.geometry.planes]
        neighbours = [q for q in neighbours if not self._unseen(q) and self.mask(q).any()]
        if not neighbours:
            return None
        previous = next(
            (r.plane for r in reversed(self._runs) if r.object_id == self._object_id), None
        )
        if previous is not None:
            neighbours.sort(key=lambda q: abs(q - previous))
        return self.mask(neighbours[0])

    def predict_click(self, plane: int, click: Prompt) -> tuple[Run, Prediction, float]:
        """Predict ``click`` on ``plane`` in its run (rule 1) without writing anything.
        Returns (run, prediction, seconds); the run is new (not yet listed) when it starts.
        Pass the result to :meth:`accept_click` to keep it."""
        start = time.perf_counter()
        if self._continues_last_run(plane):
            run = self._runs[-1]
        else:  # the one pass over the plane of a run: its prior, and the object's box there
            own = None if self._unseen(plane) else self.mask(plane)
            run = Run.starting_from(self._object_id, plane, self._run_prior(plane, own))
            run.extent = Box(0, 0, 0, 0) if own is None else bounding_box(own)
        prediction = self._predictor.predict(run, click)
        return run, prediction, time.perf_counter() - start

    def accept_click(
        self,
        run: Run,
        click: Prompt,
        mask: np.ndarray,
        step: Step,
        box: Box | None = None,
        keep: IntensityRange = EVERY_VALUE,
        threshold: float | None = None,
    ) -> ClickRecord:
        """Record ``click`` in ``run``, write ``mask`` into the labels (rule 3) and add both
        to ``step``, which becomes an undo level with its first record. ``mask``: (rows, cols)
        bool, or, with ``box``, its part inside ``box`` (e.g. a prediction's ``crop_mask`` in
        its ``box``: then the write costs the crop's size, not the plane's). ``keep``: the
        intensities ``mask`` was trimmed to (:mod:`.consistency`), recorded for replay;
        ``threshold``: the one ``mask`` was cut at (None: the session's now), recorded too."""
        new_run = not self._runs or self._runs[-1] is not run
        record = record_of(  # first: a prompt it refuses changes nothing
            click,  # a click, or another prompt (:mod:`.prompt_annotation`)
            self.geometry.slice_shape,
            plane=run.plane,
            object_id=run.object_id,
            order=sum(len(r.records) for r in self._runs) + (len(run.records) if new_run else 0),
            model=self.model_name,
            axis=self.geometry.axis,
            intensity_min=keep.low,
            intensity_max=keep.high,
            threshold=self.session.threshold if threshold is None else threshold,
        )
        if not step.n_records:
            self._history.append(step)
        if new_run:
            self._runs.append(run)
        run.records.append(record)
        self._predictor.hold(run)
        step.n_records += 1
        self._write(run, mask, box, step)
        return record

    def _write(self, run: Run, mask: np.ndarray, box: Box | None, step: Step) -> None:
        """Give the current object the pixels of ``mask`` (in ``box``) on the run's plane;
        the patch joins ``step`` and the run learns the object's new box there."""
        view = self.labels[self.geometry.index(run.plane)]
        written = self.written_mask(run.plane, mask, box)
        patch = replace_object(
            view, run.plane, self._object_id, written, box=box, extent=run.extent
        )
        if patch is not None:
            step.patches.append(patch)
            self._note_change(run.plane, patch.box)
        run.extent = bounding_box(written, (0, 0) if box is None else (box.top, box.left))

    def written_mask(self, plane: int, mask: np.ndarray, box: Box | None = None) -> np.ndarray:
        """The pixels of ``mask`` the current object may take on ``plane`` (rule 3); with
        ``box``, ``mask`` and the result are the parts inside ``box``."""
        if self.overwrite:
            return mask
        current = self._plane_labels(plane, box)
        return mask & ((current == 0) | (current == self._object_id))

    def rewrite_click(
        self, record: ClickRecord, mask: np.ndarray, box: Box | None = None, threshold=None
    ) -> ClickRecord | None:
        """Give the current object exactly ``mask`` (rows, cols; with ``box``, its part in
        ``box``) on ``record``'s plane (rule 3) in that click's undo level, when ``record`` is
        the last record, of the current object, alone in the last undo level (the widget
        re-applies a changed threshold to its probability). Returns the record replacing it,
        with ``threshold``, the one ``mask`` was cut at (default :attr:`threshold`: a replay
        gives the same mask); None, writing nothing, else."""
        run = self._runs[-1] if self._runs else None
        step = self._history[-1] if self._history else None
        if (
            run is None
            or step is None
            or run.records[-1] is not record
            or step.n_records != 1
            or record.object_id != self._object_id
        ):
            return None
        self._write(run, mask, box, step)
        run.records[-1] = replace(record, threshold=threshold or self.threshold)
        return run.records[-1]
