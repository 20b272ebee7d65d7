"""The edit log of a volume annotation: runs of click records, undo steps, the label
patches that undo them, and what a prompt did (:class:`ClickOutcome`).

A plane is a ``(rows, cols)`` view of the labels (see
:class:`~napari_adaptiveclick.volume.slicing.SliceGeometry`); masks are ``(rows, cols)`` bool,
or the part of one inside a box. Patches, priors and the known extent of an object are kept
as boxes, so that an edit costs the size of what it changes, not of the plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_adaptiveclick.interactive.boxed import (
    bounding_box,
    box_slices,
    box_union,
    is_empty,
    paste,
)
from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.volume.records import ClickRecord


@dataclass(frozen=True)
class PlanePatch:
    """Labels of one plane's changed box before an edit: ``before`` is ``(h, w)`` at (top, left)."""

    plane: int
    top: int
    left: int
    before: np.ndarray

    @property
    def box(self) -> Box:
        """The changed box of the plane."""
        h, w = self.before.shape
        return Box(self.top, self.left, self.top + h, self.left + w)

    def restore(self, view: np.ndarray) -> None:
        """Put the old labels back into ``view``, the (rows, cols) labels of ``plane``."""
        view[box_slices(self.box)] = self.before


def replace_object(
    view: np.ndarray,
    plane: int,
    object_id: int,
    mask: np.ndarray,
    *,
    box: Box | None = None,
    extent: Box | None = None,
) -> PlanePatch | None:
    """Give ``object_id`` exactly the pixels of ``mask`` in ``view``, the (rows, cols) labels
    of ``plane`` (edited in place: a numpy view, or a writable lazy view of a labels store,
    written once, in the changed box). Returns the patch that undoes it; None if nothing
    changed.

    ``mask`` is the whole plane's, or, with ``box``, the mask inside ``box`` (no pixel
    outside it). ``extent`` is a box that holds every pixel ``object_id`` has in ``view``
    (None: not known, the whole plane is searched). With both, the work and the patch stay
    within the two boxes, whatever the plane's size.
    """
    whole = Box(0, 0, *view.shape)
    if box is None:
        box = whole
    region = whole if extent is None else box_union(box, extent)
    old = np.array(view[box_slices(region)])  # a copy (read, for labels on disk)
    new = old.copy()
    new[new == object_id] = 0
    top, left = box.top - region.top, box.left - region.left
    new[top : top + box.height, left : left + box.width][mask] = object_id
    changed = bounding_box(new != old)
    if is_empty(changed):
        return None
    top, left = region.top + changed.top, region.left + changed.left
    patch = PlanePatch(plane, top, left, old[box_slices(changed)].copy())
    view[top : top + changed.height, left : left + changed.width] = new[box_slices(changed)]
    return patch


@dataclass(eq=False)
class Run:
    """Consecutive records of one object on one plane. ``prior``: the mask the run started
    from, packed, inside ``prior_box`` (None: nothing). ``extent``: a box holding every pixel
    of the object on the plane since the run's last write (None: not known), so that the
    next write costs the size of its focus crop, not of the plane."""

    object_id: int
    plane: int
    prior: np.ndarray | None
    records: list[ClickRecord] = field(default_factory=list)
    propagated: bool = False
    prior_box: Box | None = None
    extent: Box | None = None

    @classmethod
    def starting_from(cls, object_id: int, plane: int, prior: np.ndarray | None) -> Run:
        """A new run that starts from the (H, W) bool mask ``prior`` (its bounding box kept,
        packed)."""
        if prior is None:
            return cls(object_id, plane, None)
        box = bounding_box(prior)
        return cls(object_id, plane, np.packbits(prior[box_slices(box)], axis=None), prior_box=box)

    def prior_crop(self) -> tuple[np.ndarray, Box] | None:
        """The mask the run started from inside its bounding box, and that box (None: nothing)."""
        if self.prior is None:
            return None
        b = self.prior_box
        crop = np.unpackbits(self.prior, count=b.height * b.width)
        return crop.reshape(b.height, b.width).astype(bool), b

    def prior_mask(self, shape: tuple[int, int]) -> np.ndarray | None:
        """The (H, W) bool mask the run started from (None: nothing)."""
        crop = self.prior_crop()
        if crop is None:
            return None
        return paste(crop[0], crop[1], Box(0, 0, *shape), fill=False)


@dataclass(frozen=True)
class ClickOutcome:
    """What a prompt did: its record, how many pixels the object has on that plane now, and
    the prediction time in seconds."""

    record: ClickRecord
    area: int
    seconds: float


@dataclass(eq=False)
class Step:
    """One undo level: a click, or a whole propagation."""

    object_id: int
    n_records: int = 0
    patches: list[PlanePatch] = field(default_factory=list)
