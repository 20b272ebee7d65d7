"""What a napari paint event changed: which ids were painted, on which planes, where.

napari's Labels layer emits ``events.paint`` once per undoable edit (a brush stroke, a fill,
a polygon, ``data_setitem``) with that edit's history atoms: masked atoms (a ``slice_key``
box in data coordinates and the ``new_value`` painted) or ``(indices, old values, new
values)`` tuples. :func:`painted_objects` turns them into boxes of the annotated volume's
planes, per painted id: what :class:`~.recovery.Recovery` autosaves (the boxes of all ids,
:func:`changed_boxes`) and what it tells the annotator of the objects painted by hand
(:class:`~napari_adaptiveclick.volume.painted.PaintedObjects`), for labels in memory and
on disk alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from napari_adaptiveclick._napari.layers import VolumeSelection
from napari_adaptiveclick.interactive.boxed import box_union
from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.volume.slicing import SliceGeometry

PlaneBoxes = dict[int, Box]  # plane of the annotated volume -> box changed there


def _atom_parts(atom) -> list[tuple[int, list[tuple[int, int]]]]:
    """(id painted, inclusive (low, high) bounds in the layer's data axes) of one atom."""
    key = getattr(atom, "slice_key", None)
    if key is not None:
        return [(int(atom.new_value), [(int(s.start), int(s.stop) - 1) for s in key])]
    indices, _, values = atom
    values = np.asarray(values)
    if values.ndim == 0:
        return [(int(values), [(int(np.min(i)), int(np.max(i))) for i in indices])]
    parts = []
    for value in np.unique(values):
        where = values == value
        parts.append((int(value), [(int(i[where].min()), int(i[where].max())) for i in indices]))
    return parts


def painted_objects(
    atoms: Iterable, selection: VolumeSelection, geometry: SliceGeometry
) -> dict[int, PlaneBoxes] | None:
    """Id painted (0: erased) -> the box of each plane of the annotated volume that the paint
    event's ``atoms`` gave that id; atoms outside the annotated time point or channel are
    left out. None when the atoms cannot be read (another napari's history format)."""
    spatial, objects = selection.spatial_axes, {}
    try:
        for atom in atoms:
            for value, bounds in _atom_parts(atom):
                if selection.extra_axis is not None:
                    low, high = bounds[selection.extra_axis]
                    if not low <= selection.extra_index <= high:
                        continue
                volume = [bounds[a] for a in spatial]
                if len(spatial) == 2:
                    volume.insert(0, (0, 0))
                first, last = volume.pop(geometry.axis)
                (top, bottom), (left, right) = volume
                changed = Box(top, left, bottom + 1, right + 1)
                boxes = objects.setdefault(value, {})
                for plane in range(first, last + 1):
                    boxes[plane] = box_union(boxes.get(plane, changed), changed)
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    return objects


def changed_boxes(objects: Mapping[int, PlaneBoxes]) -> PlaneBoxes:
    """The box of each plane that any id of ``objects`` changed."""
    boxes: PlaneBoxes = {}
    for planes in objects.values():
        for plane, box in planes.items():
            boxes[plane] = box_union(boxes.get(plane, box), box)
    return boxes
