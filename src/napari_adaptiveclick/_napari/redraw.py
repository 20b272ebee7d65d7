"""Redraw only what an edit changed: the changed box of the plane on screen.

A full ``Labels.refresh()`` re-slices the layer and converts its whole slice to a texture
(64 M pixels on an 8000 x 8000 image: about 0.1-0.3 s per click), whatever the edit's size.
:func:`redraw_changes` instead converts the changed box of the displayed slice and sends it
to the canvas as a partial texture update, as napari's own painting does (its private
``Labels._accumulate_updated_slice`` / ``_partial_labels_refresh``, napari 0.5 to 0.9).
Where that does not apply (3D display, contours, multiscale labels, a displayed slice that is
not a plane of the annotated volume, or a napari without these methods) it falls back to
``refresh()``. Planes changed but not displayed need nothing: napari slices the data anew
when the user scrolls there.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from napari.layers import Labels

from napari_adaptiveclick._napari.layers import VolumeSelection
from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.volume.slicing import SliceGeometry

_PRIVATE = ("_slice", "_slice_input", "_accumulate_updated_slice", "_partial_labels_refresh")


def layer_key(
    selection: VolumeSelection, geometry: SliceGeometry, plane: int, box: Box
) -> tuple[slice, ...]:
    """The index, in the Labels layer's data axes, of ``box`` on ``plane`` of the volume."""
    volume = [slice(None)] * 3
    rows, cols = (a for a in range(3) if a != geometry.axis)
    volume[geometry.axis] = slice(plane, plane + 1)
    volume[rows], volume[cols] = slice(box.top, box.bottom), slice(box.left, box.right)
    if len(selection.spatial_axes) == 2:
        volume = volume[1:]
    key = [slice(None)] * selection.layer_ndim
    for axis, part in zip(selection.spatial_axes, volume, strict=True):
        key[axis] = part
    if selection.extra_axis is not None:
        key[selection.extra_axis] = slice(selection.extra_index, selection.extra_index + 1)
    return tuple(key)


def _partial_possible(layer: Labels, selection: VolumeSelection, geometry: SliceGeometry) -> bool:
    """True when the displayed slice is a plane of the annotated volume, drawn in 2D without
    contours from a single-scale array, and napari has the partial refresh."""
    if not all(hasattr(layer, name) for name in _PRIVATE) or layer.multiscale:
        return False
    try:
        displayed = tuple(layer._slice_input.displayed)
        ndisplay = layer._slice_input.ndisplay
    except AttributeError:
        return False
    if ndisplay != 2 or layer.contour:
        return False
    in_plane = [a for i, a in enumerate(selection.spatial_axes) if i != geometry.axis]
    if len(selection.spatial_axes) == 2:
        in_plane = list(selection.spatial_axes)
    return sorted(displayed) == sorted(in_plane)


def redraw_box(
    layer: Labels, selection: VolumeSelection, geometry: SliceGeometry, plane: int, box: Box
) -> None:
    """Redraw ``box`` of ``plane`` (displayed now) of ``layer``; a full refresh when a partial
    one is not possible (see the module docstring)."""
    if not _partial_possible(layer, selection, geometry):
        layer.refresh()
        return
    key = layer_key(selection, geometry, plane, box)
    displayed = tuple(layer._slice_input.displayed)
    shown = tuple(key[d] for d in displayed)
    try:
        image = layer._slice.image
        in_memory = isinstance(layer.data, np.ndarray)  # (never np.asarray a zarr store)
        if not (in_memory and np.may_share_memory(image.raw, layer.data)):  # e.g. zarr
            data_key = tuple(k if d in displayed else k.start for d, k in enumerate(key))
            values = np.asarray(layer.data[data_key])
            order = sorted(displayed)
            image.raw[shown] = values.transpose([order.index(d) for d in displayed])
        image.view[shown] = layer.colormap._data_to_texture(image.raw[shown])
        layer._accumulate_updated_slice(key)
        layer._partial_labels_refresh()
    except (AttributeError, TypeError, ValueError, IndexError):  # another napari's internals
        layer.refresh()


def redraw_changes(
    layer: Labels,
    selection: VolumeSelection,
    geometry: SliceGeometry,
    plane: int,
    changes: Mapping[int, Box],
) -> None:
    """Redraw what ``changes`` (plane -> changed box, e.g. from
    :meth:`~napari_adaptiveclick.volume.VolumeAnnotator.take_changes`) changed on ``plane``,
    the plane on screen; nothing when it did not change."""
    box = changes.get(plane)
    if box is not None and box.height > 0 and box.width > 0:
        redraw_box(layer, selection, geometry, plane, box)
