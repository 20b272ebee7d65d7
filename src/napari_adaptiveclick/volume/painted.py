"""Objects painted by hand: which ids a viewer's brush, fill or polygon painted, on which
planes, and in which box there.

Labels on disk are never searched whole: :class:`~.annotator.VolumeAnnotator` reads only the
planes and boxes that its own runs know, and skips the planes where a new object cannot be.
What was painted by hand is therefore told to it by the viewer, paint by paint
(:meth:`PaintedObjects.note`): then a painted id is never handed out as a new one, and the
planes and boxes it was painted in are read like those of the annotator's own runs (its mask
there is a prior, a commit sees its pixels), for labels in memory and on disk alike. A box is
where to look, not a claim: the pixels may have been painted over or undone since.
"""

from __future__ import annotations

from collections.abc import Mapping

from napari_adaptiveclick.interactive.boxed import box_union, is_empty
from napari_adaptiveclick.interactive.transforms import Box


class PaintedObjects:
    """Object id -> plane -> the box of that plane painted with that id (so far)."""

    def __init__(self) -> None:
        self._boxes: dict[int, dict[int, Box]] = {}

    def note(self, object_id: int, boxes: Mapping[int, Box]) -> None:
        """``object_id`` was painted in ``boxes`` (plane -> box); 0 (erasing) is not an
        object. May be called while the annotator works in another thread: the bookkeeping
        is replaced, never changed in place, so a reader sees it before or after a note."""
        boxes = {p: b for p, b in boxes.items() if not is_empty(b)}
        if object_id <= 0 or not boxes:
            return
        planes = dict(self._boxes.get(object_id, {}))
        for plane, box in boxes.items():
            planes[int(plane)] = box_union(planes.get(int(plane), box), box)
        self._boxes = {**self._boxes, int(object_id): planes}

    def boxes(self, object_id: int) -> Mapping[int, Box]:
        """Plane -> box where ``object_id`` was painted (empty when it never was)."""
        return self._boxes.get(object_id, {})

    @property
    def max_id(self) -> int:
        """The largest id painted (0 when none was)."""
        return max(self._boxes, default=0)
