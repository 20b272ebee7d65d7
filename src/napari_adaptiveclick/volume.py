"""Slice-by-slice click segmentation of objects in a label volume, and propagation.

Axis convention: volumes are ``(plane, row, col)`` in napari data order (an RGB volume has a
trailing channel axis ``(plane, row, col, 3)``). A :class:`SliceGeometry` cuts the volume
along one ``axis``; a slice's "plane" is its index along that axis and its (row, col) are the
two remaining axes in order. A 2D image is a volume of one plane (``image[None]``).

One rule decides what the model sees, for clicks made by a user, clicks derived by
:class:`Propagation` and clicks replayed from a record file alike, so that replaying the
records of a session (:func:`replay_records`) gives back its labels:

1. Records are applied in ``order``. Consecutive records of the same object on the same
   plane form a *run*, predicted by one :class:`~napari_adaptiveclick.session.ClickSession`.
2. A run starts from a previous mask (the *prior*): the object's current mask on that plane;
   if that is empty, its mask on an adjacent plane (the one nearer to the plane of the
   object's previous run, the lower one on ties), so that working slice by slice carries the
   object from one slice to the next; else nothing.
3. After every click the object's pixels on that plane are replaced by the predicted mask,
   leaving pixels of other objects alone unless ``overwrite`` is set.

Manual edits of the labels (painting) are not part of the record.
Torch is used only through the ClickSession; napari is never imported here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .clicks import Click, ClickRecord
from .simulator import next_click
from .transforms import IntensityStats, intensity_stats


def default_slicing_axis(spacing: Sequence[float]) -> int:
    """The axis with the coarsest spacing (the first on ties), so anisotropic EM and MRI
    stacks are cut in-plane. ``spacing`` has one entry per spatial axis."""
    values = np.asarray(spacing, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(values > 0):
        raise ValueError(f"spacing must be positive numbers, one per axis; got {tuple(spacing)}.")
    return int(np.argmax(values))


@dataclass(frozen=True)
class SliceGeometry:
    """How a ``shape = (n0, n1, n2)`` volume is cut into 2D slices along ``axis``."""

    shape: tuple[int, int, int]
    axis: int = 0

    def __post_init__(self) -> None:
        if len(self.shape) != 3:
            raise ValueError(f"SliceGeometry needs a 3D shape, got {self.shape}.")
        if self.axis not in (0, 1, 2):
            raise ValueError(f"Slicing axis must be 0, 1 or 2 for a volume, got {self.axis}.")

    @property
    def planes(self) -> int:
        return self.shape[self.axis]

    @property
    def slice_shape(self) -> tuple[int, int]:
        rows, cols = (n for i, n in enumerate(self.shape) if i != self.axis)
        return rows, cols

    def index(self, plane: int) -> tuple:
        """Index tuple selecting ``plane``: ``volume[geometry.index(p)]`` is a (rows, cols) view."""
        key: list = [slice(None)] * 3
        key[self.axis] = int(plane)
        return tuple(key)

    def to_slice(self, point: Sequence[float]) -> tuple[int, float, float]:
        """A volume point (3 coordinates, data order) -> (plane, row, col) of its slice."""
        if len(point) != 3:
            raise ValueError(f"Expected a 3D point, got {tuple(point)}.")
        row, col = (float(v) for i, v in enumerate(point) if i != self.axis)
        return int(round(float(point[self.axis]))), row, col

    def to_volume(self, plane: int, row: float, col: float) -> tuple[float, float, float]:
        """(plane, row, col) of a slice -> the volume point in data order."""
        point = [float(row), float(col)]
        point.insert(self.axis, float(plane))
        return point[0], point[1], point[2]

    def contains(self, plane: int, row: float, col: float) -> bool:
        """True when the point falls on a pixel of the volume (pixel centres at integers)."""
        rows, cols = self.slice_shape
        return 0 <= plane < self.planes and -0.5 <= row < rows - 0.5 and -0.5 <= col < cols - 0.5


@dataclass(frozen=True)
class PlanePatch:
    """Labels of one plane's changed box before an edit: ``before`` is ``(h, w)`` at (top, left)."""

    plane: int
    top: int
    left: int
    before: np.ndarray


@dataclass(eq=False)
class _Run:
    """Consecutive records of one object on one plane; ``prior`` is the packed (H, W) bool
    mask the run started from (None: nothing)."""

    object_id: int
    plane: int
    prior: np.ndarray | None
    records: list[ClickRecord] = field(default_factory=list)
    propagated: bool = False


@dataclass(eq=False)
class _Step:
    """One undo level: a click, or a whole propagation."""

    object_id: int
    n_records: int = 0
    patches: list[PlanePatch] = field(default_factory=list)


@dataclass(frozen=True)
class ClickOutcome:
    """What a click did: its record, how many pixels the object has on that plane now, and
    the prediction time in seconds."""

    record: ClickRecord
    area: int
    seconds: float


@dataclass(frozen=True)
class PropagatedSlice:
    """One step of a propagation: ``plane`` was predicted from ``source``; ``accepted``
    tells whether it was written; ``reason`` says why not; ``uncertainty`` in [0, 1] is the
    mean of ``1 - |2p - 1|`` over the predicted and source masks (high = unsure)."""

    plane: int
    source: int
    accepted: bool
    area: int
    uncertainty: float
    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class PropagationSettings:
    """When propagation stops: an empty prediction (the object ended), an area below
    ``min_area_ratio`` or above ``max_area_ratio`` times the source slice's, or an overlap
    (IoU) with the source slice below ``min_iou`` (the prediction collapsed or jumped).
    ``max_slices`` limits each direction (None: to the end of the volume)."""

    min_area_ratio: float = 0.25
    max_area_ratio: float = 4.0
    min_iou: float = 0.1
    max_slices: int | None = None
    directions: tuple[int, ...] = (1, -1)


@dataclass(frozen=True)
class PropagationReport:
    """Summary of a propagation: slices written, why each direction stopped, and the
    written slices sorted from least to most sure."""

    source: int
    written: tuple[int, ...]
    stops: dict[int, str]
    least_sure: tuple[tuple[int, float], ...]
    seconds: float


def _pack(mask: np.ndarray | None) -> np.ndarray | None:
    return None if mask is None else np.packbits(mask, axis=None)


def _unpack(packed: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if packed is None:
        return None
    return np.unpackbits(packed, count=shape[0] * shape[1]).reshape(shape).astype(bool)


class VolumeAnnotator:
    """Click segmentation of one object at a time in a label volume (see the module rules).

    ``image``: ``(P, R, C)`` grey or ``(P, R, C, 3)`` RGB, any numeric dtype.
    ``labels``: ``(P, R, C)`` integer array, edited IN PLACE (pass a napari layer's data).
    ``session``: the ClickSession that predicts (a fresh one per annotator; not thread-safe:
    call one method at a time). ``axis``: slicing axis. ``model_name``: stored in records.
    ``stats``: intensity range (lo, hi) for all slices (default: from the whole volume).
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
        image = np.asarray(image)
        spatial = image.shape[:3]
        if image.ndim not in (3, 4) or (image.ndim == 4 and image.shape[-1] not in (3, 4)):
            raise ValueError(
                f"Expected a (plane, row, col) volume or an RGB (plane, row, col, 3) stack, got "
                f"shape {image.shape}. Pass a 2D image as image[None]; choose one time point or "
                "channel of 4D data."
            )
        if not isinstance(labels, np.ndarray) or labels.shape != spatial:
            raise ValueError(
                f"Labels of shape {np.shape(labels)} do not match the image's {spatial}; create "
                "a Labels array of the image's shape."
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"Labels must have an integer dtype, got {labels.dtype}.")
        self.image, self.labels, self.session = image, labels, session
        self.geometry = SliceGeometry(spatial, axis)
        self.model_name = model_name
        self.overwrite = overwrite
        self.stats = stats if stats is not None else intensity_stats(image)
        self._runs: list[_Run] = []
        self._history: list[_Step] = []
        self._session_run: _Run | None = None  # the run the session holds, and how many clicks
        self._session_clicks = 0
        self._object_id = 1
        self._selection_mark = 0
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

    def next_free_id(self) -> int:
        """One more than the largest id in the labels and the records."""
        used = [int(self.labels.max()) if self.labels.size else 0]
        used += [run.object_id for run in self._runs]
        return max(used) + 1

    def select_object(self, object_id: int | None) -> int:
        """Make ``object_id`` current (an existing id refines that object); None picks a new id."""
        new_id = self.next_free_id() if object_id is None else int(object_id)
        limit = np.iinfo(self.labels.dtype).max
        if not 1 <= new_id <= limit:
            raise ValueError(
                f"Label id {new_id} is out of range for {self.labels.dtype} labels (1..{limit}); "
                "use a Labels layer with a wider dtype (e.g. int32)."
            )
        self._object_id = new_id
        self._selection_mark = len(self._history)
        return new_id

    def commit(self) -> int:
        """Fix the current object and move to a new id (returned). An object without pixels
        keeps its id."""
        if not (self.labels == self._object_id).any():
            return self._object_id
        return self.select_object(None)

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
            h, w = patch.before.shape
            plane = self.labels[self.geometry.index(patch.plane)]
            plane[patch.top : patch.top + h, patch.left : patch.left + w] = patch.before
        for _ in range(step.n_records):
            self._runs[-1].records.pop()
            if not self._runs[-1].records:
                self._runs.pop()
        self._sync_session_after_undo()
        self._object_id = step.object_id
        self._selection_mark = min(self._selection_mark, len(self._history))
        return True

    def _sync_session_after_undo(self) -> None:
        run = self._session_run
        if run is None or not self._runs or self._runs[-1] is not run:
            self._session_run = None
            return
        while self._session_clicks > len(run.records):
            self.session.undo()
            self._session_clicks -= 1

    # ------------------------------------------------------------------ clicks
    def mask(self, plane: int, object_id: int | None = None) -> np.ndarray:
        """(rows, cols) bool mask of an object (default: current) on ``plane``."""
        object_id = self._object_id if object_id is None else object_id
        return self.labels[self.geometry.index(plane)] == object_id

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
        run, prediction, seconds = self._predict(plane, click, self.mask)
        step = _Step(self._object_id)
        record = self._accept(run, click, prediction.mask, step)
        self._history.append(step)
        return ClickOutcome(record, int(self.mask(plane).sum()), seconds)

    def _run_prior(self, plane: int, mask_of: Callable[[int], np.ndarray]) -> np.ndarray | None:
        """Rule 2 of the module docstring; ``mask_of(p)`` gives the object's mask on plane p."""
        own = mask_of(plane)
        if own.any():
            return own
        neighbours = [q for q in (plane - 1, plane + 1) if 0 <= q < self.geometry.planes]
        neighbours = [q for q in neighbours if mask_of(q).any()]
        if not neighbours:
            return None
        previous = next(
            (r.plane for r in reversed(self._runs) if r.object_id == self._object_id), None
        )
        if previous is not None:
            neighbours.sort(key=lambda q: abs(q - previous))
        return mask_of(neighbours[0])

    def _predict(self, plane: int, click: Click, mask_of: Callable[[int], np.ndarray]):
        """Bring the session to the right run (rule 1) and add ``click``.
        Returns (run, prediction, seconds); the run is new (not yet listed) when it starts."""
        last = self._runs[-1] if self._runs else None
        continuing = last is not None and (last.object_id, last.plane) == (self._object_id, plane)
        start = time.perf_counter()
        if continuing:
            run = last
            if not (self._session_run is run and self._session_clicks == len(run.records)):
                self._restart_session(plane, _unpack(run.prior, self.geometry.slice_shape))
                for record in run.records:
                    self.session.add_click(record.row, record.col, record.positive)
        else:
            prior = self._run_prior(plane, mask_of)
            run = _Run(self._object_id, plane, _pack(prior))
            self._restart_session(plane, prior)
        self._session_run, self._session_clicks = None, 0  # until the result is accepted
        prediction = self.session.add_click(click.row, click.col, click.positive)
        return run, prediction, time.perf_counter() - start

    def _restart_session(self, plane: int, prior: np.ndarray | None) -> None:
        self.session.set_image(self.image[self.geometry.index(plane)], stats=self.stats)
        if prior is not None:
            self.session.set_previous_mask(prior.astype(np.float32))

    def _accept(self, run: _Run, click: Click, mask: np.ndarray, step: _Step) -> ClickRecord:
        """Record ``click`` in ``run``, write ``mask`` into the labels (rule 3), extend ``step``."""
        if not self._runs or self._runs[-1] is not run:
            self._runs.append(run)
        record = ClickRecord(
            plane=run.plane,
            row=click.row,
            col=click.col,
            positive=click.positive,
            object_id=run.object_id,
            order=sum(len(r.records) for r in self._runs),
            model=self.model_name,
            axis=self.geometry.axis,
        )
        run.records.append(record)
        self._session_run, self._session_clicks = run, len(run.records)
        step.n_records += 1
        patch = self._write(run.plane, self.written_mask(run.plane, mask))
        if patch is not None:
            step.patches.append(patch)
        return record

    def written_mask(self, plane: int, mask: np.ndarray) -> np.ndarray:
        """The pixels of ``mask`` the current object may take on ``plane`` (rule 3)."""
        if self.overwrite:
            return mask
        current = self.labels[self.geometry.index(plane)]
        return mask & ((current == 0) | (current == self._object_id))

    def _write(self, plane: int, mask: np.ndarray) -> PlanePatch | None:
        view = self.labels[self.geometry.index(plane)]
        new = view.copy()
        new[new == self._object_id] = 0
        new[mask] = self._object_id
        changed = new != view
        if not changed.any():
            return None
        rows, cols = np.nonzero(changed.any(1))[0], np.nonzero(changed.any(0))[0]
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        patch = PlanePatch(plane, int(rows[0]), int(cols[0]), view[box].copy())
        view[box] = new[box]
        return patch

    # ------------------------------------------------------------------ propagation
    def propagation(self, plane: int, settings: PropagationSettings | None = None) -> Propagation:
        """A stepper that propagates the current object from ``plane`` (see :class:`Propagation`)."""
        return Propagation(self, plane, settings or PropagationSettings())

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

    def replay(self, records: Sequence[ClickRecord]) -> Iterator[ClickOutcome]:
        """Apply click records in ``order`` (each one undo level), yielding each outcome."""
        for record in sorted(records, key=lambda r: r.order):
            if record.axis != self.geometry.axis:
                raise ValueError(
                    f"Click {record.order} was made on slices along axis {record.axis}, but "
                    f"this volume is cut along axis {self.geometry.axis}."
                )
            if record.object_id != self._object_id:
                self.select_object(record.object_id)
            self.model_name = record.model or self.model_name
            yield self.add_click(record.plane, record.row, record.col, record.positive)

    def anchor_planes(self, object_id: int | None = None) -> set[int]:
        """Planes where the object has clicks of its own (not derived by propagation)."""
        object_id = self._object_id if object_id is None else object_id
        return {r.plane for r in self._runs if r.object_id == object_id and not r.propagated}


class Propagation:
    """Segment the current object of ``annotator`` through the neighbouring slices of
    ``source``, in both directions (``settings.directions``), one slice per :meth:`step`.

    For each target slice the run's prior follows the module rule (the previous slice's mask
    when the target is empty) and one click is derived from the previous slice's mask with
    the NoC simulator (:func:`~napari_adaptiveclick.simulator.next_click`, the previous mask
    standing in for the truth): a positive click deep inside the object, or a correction
    where the target's existing mask disagrees. A direction stops at the volume's end, at a
    slice the user clicked for this object, where the prediction is empty or collapses
    (:class:`PropagationSettings`), or after ``max_slices``. The whole propagation is one
    undo level. Provenance: prompting each next slice with the previous slice's mask and
    prompts derived from it follows micro-sam's ``segment_mask_in_volume`` (its "mask" and
    "points" projections); the stop on collapse replaces its IoU threshold between slices.
    """

    def __init__(self, annotator: VolumeAnnotator, source: int, settings: PropagationSettings):
        if not 0 <= source < annotator.geometry.planes:
            raise ValueError(
                f"Plane {source} is outside the volume (0..{annotator.geometry.planes - 1})."
            )
        if not annotator.mask(source).any():
            raise ValueError(
                f"Object {annotator.object_id} has no pixels on plane {source}: click on it "
                "there before propagating."
            )
        self.annotator, self.source, self.settings = annotator, source, settings
        self._anchors = annotator.anchor_planes() - {source}
        self._step = _Step(annotator.object_id)
        self._directions = list(settings.directions)
        self._current = source
        self._count = 0
        self._results: list[PropagatedSlice] = []
        self.stops: dict[int, str] = {}
        self._start = time.perf_counter()

    def __iter__(self) -> Iterator[PropagatedSlice]:
        while (result := self.step()) is not None:
            yield result

    @property
    def total(self) -> int:
        """Upper bound of the slices this propagation can visit (for progress bars)."""
        planes, limit = self.annotator.geometry.planes, self.settings.max_slices
        counts = [
            planes - 1 - self.source if d > 0 else self.source for d in self.settings.directions
        ]
        return sum(min(c, limit) if limit is not None else c for c in counts)

    @property
    def done(self) -> bool:
        """True when every direction has stopped (or was cancelled)."""
        return not self._directions

    def cancel(self) -> None:
        for direction in self._directions:
            self.stops.setdefault(direction, "cancelled")
        self._directions.clear()

    def step(self) -> PropagatedSlice | None:
        """Predict the next slice; None when every direction has stopped."""
        while self._directions:
            direction = self._directions[0]
            target = self._current + direction
            reason = self._stop_before(target)
            if reason:
                self._end_direction(reason)
                continue
            result = self._predict(target, self._current)
            self._results.append(result)
            if result.accepted:
                self._current, self._count = target, self._count + 1
            else:
                self._end_direction(result.reason)
            return result
        return None

    def _end_direction(self, reason: str) -> None:
        self.stops[self._directions.pop(0)] = reason
        self._current, self._count = self.source, 0

    def _stop_before(self, target: int) -> str:
        if not 0 <= target < self.annotator.geometry.planes:
            return "reached the end of the volume"
        if target in self._anchors:
            return f"reached plane {target}, which has your clicks"
        if self.settings.max_slices is not None and self._count >= self.settings.max_slices:
            return f"did the maximum of {self.settings.max_slices} slices"
        return ""

    def _predict(self, target: int, source: int) -> PropagatedSlice:
        annotator = self.annotator
        source_mask = annotator.mask(source)
        start_mask = annotator._run_prior(target, annotator.mask)
        if annotator._runs and (annotator._runs[-1].object_id, annotator._runs[-1].plane) == (
            annotator.object_id,
            target,
        ):
            start_mask = annotator.mask(target)  # rule 1: this click continues that run
        click = derived_click(source_mask, start_mask)
        run, prediction, seconds = annotator._predict(target, click, annotator.mask)
        run.propagated = run.propagated or not run.records
        written = annotator.written_mask(target, prediction.mask)
        area, source_area = int(written.sum()), int(source_mask.sum())
        union = written | source_mask
        iou = (written & source_mask).sum() / max(union.sum(), 1)
        p = prediction.probability[union]
        uncertainty = float(np.mean(1.0 - np.abs(2.0 * p - 1.0))) if p.size else 1.0
        reason = ""
        if area == 0:
            reason = f"the object ends at plane {target}"
        elif not self.settings.min_area_ratio <= area / source_area <= self.settings.max_area_ratio:
            reason = f"the area changed {area / source_area:.2f}x at plane {target}"
        elif iou < self.settings.min_iou:
            reason = f"the mask jumped (IoU {iou:.2f} with plane {source}) at plane {target}"
        if not reason:
            if not self._step.n_records:  # one undo level, listed once something is written
                annotator._history.append(self._step)
            annotator._accept(run, click, prediction.mask, self._step)
        return PropagatedSlice(target, source, not reason, area, uncertainty, seconds, reason)

    def report(self, top: int = 5) -> PropagationReport:
        """Slices written so far, why each direction stopped, the ``top`` least sure slices."""
        accepted = [r for r in self._results if r.accepted]
        ranked = sorted(accepted, key=lambda r: -r.uncertainty)[:top]
        return PropagationReport(
            self.source,
            tuple(r.plane for r in accepted),
            dict(self.stops),
            tuple((r.plane, r.uncertainty) for r in ranked),
            time.perf_counter() - self._start,
        )


def derived_click(source: np.ndarray, start: np.ndarray | None) -> Click:
    """The click propagation derives from the previous slice's mask ``source`` (H, W) bool for
    a slice whose prediction starts from ``start``: the NoC simulator's click with ``source``
    as the truth, or, when ``start`` already equals it, a positive click at its deepest point.
    Computed on the masks' bounding box plus a 1-px margin, which gives the same click as on
    the whole slice (every path out of the masks crosses that all-background margin)."""
    union = source if start is None else source | start
    rows, cols = np.nonzero(union.any(1))[0], np.nonzero(union.any(0))[0]
    top, left = max(int(rows[0]) - 1, 0), max(int(cols[0]) - 1, 0)
    box = (slice(top, int(rows[-1]) + 2), slice(left, int(cols[-1]) + 2))
    empty = np.zeros_like(source[box])
    click = None if start is None else next_click(source[box], start[box])
    if click is None:
        click = next_click(source[box], empty)
    return Click(click.row + top, click.col + left, click.positive)


def replay_records(
    image: np.ndarray,
    records: Sequence[ClickRecord],
    session,
    *,
    rgb: bool = False,
    labels: np.ndarray | None = None,
    overwrite: bool = False,
    stats: IntensityStats | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Labels from click records, applied in order with the module's rules.

    ``image``: a 2D image ``(R, C)``, an RGB image ``(R, C, 3)`` (``rgb=True``), a volume
    ``(P, R, C)`` or an RGB stack ``(P, R, C, 3)``; volumes are cut along the records'
    ``axis``. ``labels``: the labels the session started from (default: zeros, int32), not
    modified. Returns labels of the image's spatial shape: those the napari widget showed when
    the records were made with the same model, threshold and overwrite setting (manual
    painting excepted). ``progress(done, total)`` is called after each click.
    """
    image = np.asarray(image)
    flat = image.ndim == (3 if rgb else 2)
    volume = image[None] if flat else image
    axes = {r.axis for r in records} or {0}
    if len(axes) > 1:
        raise ValueError(
            f"The clicks were made along several slicing axes {sorted(axes)}; replay one axis "
            "at a time."
        )
    spatial = volume.shape[:3]
    start = np.zeros(spatial, np.int32)
    if labels is not None:
        start[...] = np.asarray(labels).reshape(spatial)
    annotator = VolumeAnnotator(
        volume, start, session, axis=axes.pop(), overwrite=overwrite, stats=stats
    )
    for done, _ in enumerate(annotator.replay(records), start=1):
        if progress is not None:
            progress(done, len(records))
    return start[0] if flat else start
