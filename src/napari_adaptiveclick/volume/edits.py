"""The edit log of a volume annotation: runs of click records, undo steps, and the label
patches that undo them.

A plane is a ``(rows, cols)`` view of the labels (see
:class:`~napari_adaptiveclick.volume.slicing.SliceGeometry`); masks are ``(rows, cols)`` bool.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_adaptiveclick.volume.records import ClickRecord


@dataclass(frozen=True)
class PlanePatch:
    """Labels of one plane's changed box before an edit: ``before`` is ``(h, w)`` at (top, left)."""

    plane: int
    top: int
    left: int
    before: np.ndarray

    def restore(self, view: np.ndarray) -> None:
        """Put the old labels back into ``view``, the (rows, cols) labels of ``plane``."""
        h, w = self.before.shape
        view[self.top : self.top + h, self.left : self.left + w] = self.before


def replace_object(
    view: np.ndarray, plane: int, object_id: int, mask: np.ndarray
) -> PlanePatch | None:
    """Give ``object_id`` exactly the pixels of ``mask`` in ``view``, the (rows, cols) labels
    of ``plane`` (edited in place). Returns the patch that undoes it; None if nothing changed."""
    new = view.copy()
    new[new == object_id] = 0
    new[mask] = object_id
    changed = new != view
    if not changed.any():
        return None
    rows, cols = np.nonzero(changed.any(1))[0], np.nonzero(changed.any(0))[0]
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    patch = PlanePatch(plane, int(rows[0]), int(cols[0]), view[box].copy())
    view[box] = new[box]
    return patch


@dataclass(eq=False)
class Run:
    """Consecutive records of one object on one plane; ``prior`` is the packed (H, W) bool
    mask the run started from (None: nothing)."""

    object_id: int
    plane: int
    prior: np.ndarray | None
    records: list[ClickRecord] = field(default_factory=list)
    propagated: bool = False

    @classmethod
    def starting_from(cls, object_id: int, plane: int, prior: np.ndarray | None) -> Run:
        """A new run that starts from the (H, W) bool mask ``prior`` (kept packed)."""
        return cls(object_id, plane, None if prior is None else np.packbits(prior, axis=None))

    def prior_mask(self, shape: tuple[int, int]) -> np.ndarray | None:
        """The (H, W) bool mask the run started from (None: nothing)."""
        if self.prior is None:
            return None
        return np.unpackbits(self.prior, count=shape[0] * shape[1]).reshape(shape).astype(bool)


@dataclass(eq=False)
class Step:
    """One undo level: a click, or a whole propagation."""

    object_id: int
    n_records: int = 0
    patches: list[PlanePatch] = field(default_factory=list)
