"""Propagation of one object from a slice through its neighbours, one slice at a time.

Provenance: prompting each next slice with the previous slice's mask and prompts derived from
it follows micro-sam's ``segment_mask_in_volume`` (its "mask" and "points" projections); the
stop on collapse replaces its IoU threshold between slices.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from napari_adaptiveclick.interactive.boxed import bounding_box, box_slices, paste
from napari_adaptiveclick.interactive.prompts import Click
from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.volume.consistency import EVERY_VALUE, IntensityRange, source_range
from napari_adaptiveclick.volume.edits import Run, Step
from napari_adaptiveclick.volume.propagation_prompts import (
    carried,
    derived_click_near,
    grown_box,
    stroke_near,
)
from napari_adaptiveclick.volume.records import ClickRecord
from napari_adaptiveclick.volume.slicing import SliceGeometry
from napari_adaptiveclick.volume.stopping import (
    StopRule,
    appearance,
    default_stop_rule,
    evidence_window,
    shipped_stop_rule,
    slice_evidence,
)

if TYPE_CHECKING:  # pragma: no cover
    from napari_adaptiveclick.interactive.session import Prediction


class PropagationTarget(Protocol):
    """What a propagation needs of the annotator it writes into
    (:class:`~napari_adaptiveclick.volume.annotator.VolumeAnnotator` provides it)."""

    geometry: SliceGeometry
    image: np.ndarray
    stats: tuple[float, float]

    @property
    def object_id(self) -> int: ...

    def mask(self, plane: int, object_id: int | None = None) -> np.ndarray: ...

    def anchor_planes(self, object_id: int | None = None) -> set[int]: ...

    def start_mask(self, plane: int) -> np.ndarray | None: ...

    def predict_click(self, plane: int, click: Click) -> tuple[Run, Prediction, float]: ...

    def written_mask(self, plane: int, mask: np.ndarray, box: Box | None = None) -> np.ndarray: ...

    def plane_values(self, plane: int, box: Box) -> np.ndarray: ...

    def trimmed_mask(
        self, plane: int, mask: np.ndarray, box: Box, keep: IntensityRange
    ) -> np.ndarray: ...

    def accept_click(
        self,
        run: Run,
        click: Click,
        mask: np.ndarray,
        step: Step,
        box: Box | None = None,
        keep: IntensityRange = EVERY_VALUE,
        threshold: float | None = None,
    ) -> ClickRecord: ...


@dataclass(frozen=True)
class PropagatedSlice:
    """One step of a propagation: ``plane`` was predicted from ``source``; ``accepted``
    tells whether it was written; ``reason`` says why not; ``uncertainty`` in [0, 1] is the
    mean of ``1 - |2p - 1|`` over the predicted and source masks (high = unsure);
    ``presence`` the stop rule's probability that the object is on the slice (NaN without a
    rule); ``doubtful`` marks a written slice the rule is unsure of; ``evidence`` the rule's
    inputs (:func:`~napari_adaptiveclick.volume.stopping.slice_evidence`)."""

    plane: int
    source: int
    accepted: bool
    area: int
    uncertainty: float
    seconds: float
    reason: str = ""
    presence: float = float("nan")
    doubtful: bool = False
    evidence: dict[str, float] | None = None


PROPAGATION_PROMPTS = ("click", "box", "scribble")


@dataclass(frozen=True)
class PropagationSettings:
    """When propagation stops: an empty prediction (the object ended), an area below
    ``min_area_ratio`` or above ``max_area_ratio`` times the source slice's, or an overlap
    (IoU) with the source slice below ``min_iou`` (the prediction collapsed or jumped).
    ``max_slices`` limits each direction (None: to the end of the volume). ``stop_rule``
    (default: the calibrated rule shipped with the package; None: none) also stops where the
    object seems to end although the model still predicts a mask there
    (:mod:`napari_adaptiveclick.volume.stopping`). ``prompt``: what each next slice is
    prompted with, ``"click"`` (a click derived from the previous slice's mask), ``"box"``
    (the previous mask's bounding box grown by ``box_grow`` of its sides + 2 px on every side,
    which also keeps the new mask near it: the session's box limit; the box's seed click is
    its centre, which can miss a ring-shaped or bent object, and the model was trained with
    boxes on an empty prior, not on the carried mask) or ``"scribble"``, the default (a
    positive stroke along the deep middle of the previous mask's largest part,
    :func:`stroke_near`: on the training cases its propagations stop closer to the object's
    ends than with a click, BENCHMARKS.md); a slice that already holds its own mask of the
    object is always corrected with a derived click. ``intensity_quantile`` (None, the
    default here: off) trims each written mask to the annotated slice's intensities from that
    quantile of its object (:mod:`napari_adaptiveclick.volume.consistency`; only for an
    object its surroundings separate, and not where the trim would take more than
    ``max_trim`` of the mask); a stop rule fitted with it belongs with it. The plugin uses
    :meth:`for_model`: the rule shipped for the weights, and that rule's trim (the MRI
    weights' rule trims at 0.02, the EM weights' does not: BENCHMARKS.md)."""

    min_area_ratio: float = 0.25
    max_area_ratio: float = 4.0
    min_iou: float = 0.1
    max_slices: int | None = None
    directions: tuple[int, ...] = (1, -1)
    stop_rule: StopRule | None = field(default_factory=default_stop_rule)
    prompt: str = "scribble"
    box_grow: float = 0.1
    intensity_quantile: float | None = None
    max_trim: float = 0.5

    @classmethod
    def for_model(cls, model: str = "default", **fields) -> PropagationSettings:
        """The settings for annotating with the weights ``model`` (a shipped name, else
        ``default``'s): the stop rule shipped for them (:func:`shipped_stop_rule`) and the
        intensity trim it was fitted with; ``fields`` replace any of these."""
        rule = shipped_stop_rule(model)
        quantile = rule.intensity_quantile if rule is not None else None
        return cls(**{"stop_rule": rule, "intensity_quantile": quantile, **fields})

    def __post_init__(self) -> None:
        if self.prompt not in PROPAGATION_PROMPTS:
            raise ValueError(
                f"Propagation prompts with 'click', 'box' or 'scribble', not {self.prompt!r}."
            )
        if not (math.isfinite(self.box_grow) and self.box_grow >= 0):
            raise ValueError(f"box_grow must be a number >= 0, got {self.box_grow!r}.")
        q = self.intensity_quantile
        if q is not None and not (isinstance(q, int | float) and 0.0 < q < 0.5):
            raise ValueError(f"intensity_quantile must be in (0, 0.5) or None, got {q!r}.")
        if not 0.0 <= self.max_trim < 1.0:
            raise ValueError(f"max_trim must be in [0, 1), got {self.max_trim!r}.")


@dataclass(frozen=True)
class PropagationReport:
    """Summary of a propagation: slices written, why each direction stopped, the written
    slices sorted from least to most sure, and the written slices the stop rule doubts
    (check those first)."""

    source: int
    written: tuple[int, ...]
    stops: dict[int, str]
    least_sure: tuple[tuple[int, float], ...]
    seconds: float
    doubtful: tuple[int, ...] = ()


class Propagation:
    """Segment the current object of ``annotator`` through the neighbouring slices of
    ``source``, in both directions (``settings.directions``), one slice per :meth:`step`.

    For each target slice the run's prior follows the rules of
    :mod:`napari_adaptiveclick.volume` (the previous slice's mask when the target is empty)
    and one prompt comes from the previous slice's mask (``settings.prompt``; by default a
    positive stroke along its middle, :func:`stroke_near`), or, where the target already has
    its own mask that disagrees, the NoC simulator's correcting click (:func:`derived_click`).
    A direction stops at the volume's end, at a slice
    the user clicked for this object, where the prediction is empty or collapses
    (:class:`PropagationSettings`), or after ``max_slices``. The whole propagation is one
    undo level. Masks, probabilities and the stop rule's evidence are kept in the boxes of
    the object and of each prediction's focus crop; whole planes are only compared (the
    annotator's run priors), never converted to float.
    """

    def __init__(
        self, annotator: PropagationTarget, source: int, settings: PropagationSettings
    ) -> None:
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
        self._step = Step(annotator.object_id)
        self._directions = list(settings.directions)
        self._current = source
        self._count = 0
        self._results: list[PropagatedSlice] = []
        self.stops: dict[int, str] = {}
        mask = annotator.mask(source)
        box = bounding_box(mask)
        self._origin = self._previous = (mask[box_slices(box)].copy(), box)  # crop, its box
        window = evidence_window([box], annotator.geometry.slice_shape)
        inside = mask[box_slices(window)]
        values, q = annotator.plane_values(source, window), settings.intensity_quantile
        self._source_look = appearance(self._normalised(values), inside)
        self._range = None if q is None else source_range(values, inside, q)
        self._start = time.perf_counter()

    def _normalised(self, values: np.ndarray) -> np.ndarray:
        """Image ``values`` normalised with the annotator's intensity range."""
        lo, hi = self.annotator.stats
        return (values - lo) / max(hi - lo, 1e-6)

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
        self._current, self._count, self._previous = self.source, 0, self._origin

    def _stop_before(self, target: int) -> str:
        if not 0 <= target < self.annotator.geometry.planes:
            return "reached the end of the volume"
        if target in self._anchors:
            return f"reached plane {target}, which has your clicks"
        if self.settings.max_slices is not None and self._count >= self.settings.max_slices:
            return f"did the maximum of {self.settings.max_slices} slices"
        return ""

    def _predict(self, target: int, source: int) -> PropagatedSlice:
        annotator, shape = self.annotator, self.annotator.geometry.slice_shape
        source_crop, source_box = self._previous  # the object on ``source``, in its box
        start = annotator.start_mask(target)
        is_carried = self.settings.prompt != "click" and carried(source_crop, source_box, start)
        if is_carried and self.settings.prompt == "box":
            click = grown_box(source_box, self.settings.box_grow, shape)
        elif is_carried:
            click = stroke_near(source_crop, source_box)
        else:
            click = derived_click_near(source_crop, source_box, start, shape)
        run, prediction, seconds = annotator.predict_click(target, click)
        run.propagated = run.propagated or not run.records
        box = prediction.box
        written = annotator.written_mask(target, prediction.crop_mask, box)  # in ``box``
        keep, share = EVERY_VALUE, 1.0
        if self._range is not None:  # write only what looks like the source slice's object
            trimmed = annotator.trimmed_mask(target, written, box, self._range)
            share = float(trimmed.sum() / max(written.sum(), 1))  # evidence for the rule too
            if share >= 1.0 - self.settings.max_trim:
                written, keep = trimmed, self._range
        area, source_area = int(written.sum()), int(source_crop.sum())
        written_box = bounding_box(written, (box.top, box.left))
        window = evidence_window([written_box, source_box], shape)
        here, before = paste(written, box, window), paste(source_crop, source_box, window)
        probability = paste(prediction.crop, box, window)
        union = here | before
        iou = (here & before).sum() / max(union.sum(), 1)
        p = probability[union]
        uncertainty = float(np.mean(1.0 - np.abs(2.0 * p - 1.0))) if p.size else 1.0
        rule, presence, evidence = self.settings.stop_rule, float("nan"), None
        if area:
            image = self._normalised(annotator.plane_values(target, window))
            evidence = slice_evidence(image, here, probability, before, self._source_look, share)
            presence = rule.presence(evidence) if rule is not None else presence
        reason = ""
        if area == 0:
            reason = f"the object ends at plane {target}"
        elif not self.settings.min_area_ratio <= area / source_area <= self.settings.max_area_ratio:
            reason = f"the area changed {area / source_area:.2f}x at plane {target}"
        elif iou < self.settings.min_iou:
            reason = f"the mask jumped (IoU {iou:.2f} with plane {source}) at plane {target}"
        elif rule is not None and presence < rule.stop_below:
            reason = (
                f"the object seems to end at plane {target} (it no longer looks like plane "
                f"{self.source}: presence {presence:.2f})"
            )
        if not reason:  # one undo level, listed once something is written
            cut = prediction.threshold
            annotator.accept_click(run, click, written, self._step, box, keep, threshold=cut)
            self._previous = (written[box_slices(_shifted(written_box, box))].copy(), written_box)
        doubtful = not reason and rule is not None and presence < rule.doubtful_below
        return PropagatedSlice(
            target,
            source,
            not reason,
            area,
            uncertainty,
            seconds,
            reason,
            presence,
            doubtful,
            evidence,
        )

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
            tuple(sorted(r.plane for r in accepted if r.doubtful)),
        )


def _shifted(box: Box, origin: Box) -> Box:
    """``box`` in the coordinates of an array that starts at ``origin``'s corner."""
    return Box(
        box.top - origin.top,
        box.left - origin.left,
        box.bottom - origin.top,
        box.right - origin.left,
    )
