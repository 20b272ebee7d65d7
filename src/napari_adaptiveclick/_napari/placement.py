"""Which layers are annotated, and where the annotated volume sits in the viewer.

A point goes from the image layer's data coordinates to the annotated volume's (plane, row,
col) (:class:`~.layers.VolumeSelection`), then to a slice's (plane, row, col)
(:class:`~napari_adaptiveclick.volume.slicing.SliceGeometry`), and back the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from napari.layers import Image, Labels

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick._napari.lazy_layers import new_labels_layer
from napari_adaptiveclick._napari.loading import AnnotationSettings
from napari_adaptiveclick.io.lazy import max_value
from napari_adaptiveclick.volume.slicing import SliceGeometry, default_slicing_axis


def choose_layers(
    viewer, image, labels, settings: AnnotationSettings
) -> tuple[Image, Labels, L.VolumeSelection, int]:
    """Check the chosen layers: returns the image, its labels (a new layer, not yet added to
    the viewer, when ``labels`` is None; on disk above ``settings.labels_on_disk`` bytes), the annotated part of the image (of 4D data: the
    time/channel index on screen) and the slicing axis (``settings.axis``, else the coarsest
    spacing; 0 for a 2D image). Raises ValueError, saying what to do, for unusable layers
    (a Labels layer whose dtype has no id left for a new object among them)."""
    image, selection, axis = choose_volume(viewer, image, settings)
    labels = L.unwrap(labels)
    if labels is None:
        labels = new_labels_layer(image, settings.labels_on_disk)
    else:
        L.check_labels(labels, image)
        check_free_id(labels)
    return image, labels, selection, axis


def choose_volume(
    viewer, image, settings: AnnotationSettings
) -> tuple[Image, L.VolumeSelection, int]:
    """The checks of :func:`choose_layers` on the image alone, which read no data: the image
    layer, its annotated part and the slicing axis. Raises ValueError without an image."""
    image = L.unwrap(image)
    if not isinstance(image, Image):
        raise ValueError("Choose an Image layer to annotate.")
    extra_index = 0
    if settings.extra_axis is not None and image.ndim == 4:
        current = image.world_to_data(viewer.dims.point)
        size = image.data.shape[settings.extra_axis]
        extra_index = int(np.clip(round(float(current[settings.extra_axis])), 0, size - 1))
    selection = L.VolumeSelection.of(image, settings.extra_axis, extra_index)
    spacing = [float(image.scale[i]) for i in selection.spatial_axes]
    axis = settings.axis
    if len(spacing) == 2:
        axis = 0
    elif axis is None:
        axis = default_slicing_axis(spacing)
    return image, selection, axis


def leftover_layers(viewer, inputs: Sequence, made: Labels | None, keep: Labels) -> list:
    """The layers a restart on ``keep`` removes from ``viewer``: the old input layers
    (clicks, prompts: what they gave is stored with the labels) and ``made``, the Labels
    layer the last Start made for '<new>', while it holds no labels and no clicks."""
    empty = made is not None and not (max_value(L.full_resolution(made)) or L.stored_records(made))
    return [
        layer
        for layer in (*inputs, made if empty else None)
        if layer is not None and layer is not keep and layer in viewer.layers
    ]


def check_free_id(labels: Labels) -> None:
    """Raise ValueError when ``labels`` (an integer layer) has no id left for a new object:
    its largest id, or that of its stored clicks, is its dtype's largest value."""
    used = [max_value(L.full_resolution(labels))]  # a labels store: slab by slab
    used += [record.object_id for record in L.stored_records(labels)]
    limit = np.iinfo(labels.data.dtype).max
    if max(used) >= limit:
        raise ValueError(
            f"Labels '{labels.name}' is full: its {labels.data.dtype} ids go up to {limit}, "
            "and that id is used, so a new object has none. Choose '<new>', or convert the "
            "layer to a wider dtype (e.g. int32)."
        )


@dataclass(frozen=True)
class VolumePlacement:
    """The annotated volume of ``image`` (``selection``, cut by ``geometry``) in ``viewer``."""

    viewer: object
    image: Image
    selection: L.VolumeSelection
    geometry: SliceGeometry

    def to_slice(self, image_point: Sequence[float]) -> tuple[int, float, float]:
        """A data point of the image layer -> (plane, row, col) of its slice."""
        return self.geometry.to_slice(self.selection.to_volume(image_point))

    def to_image(self, plane: int, row: float, col: float) -> list[float]:
        """(plane, row, col) of a slice -> a data point of the image layer."""
        return self.selection.to_layer(self.geometry.to_volume(plane, row, col))

    def current_plane(self) -> int:
        """The plane the viewer shows now."""
        point = self.image.world_to_data(self.viewer.dims.point)
        return int(np.clip(self.to_slice(point)[0], 0, self.geometry.planes - 1))

    def go_to_plane(self, plane: int) -> None:
        """Scroll the viewer to ``plane`` (nothing to scroll for a 2D image)."""
        if len(self.selection.spatial_axes) != 3:
            return
        rows, cols = self.geometry.slice_shape
        world = self.image.data_to_world(self.to_image(plane, rows / 2, cols / 2))
        layer_axis = self.selection.spatial_axes[self.geometry.axis]
        self.viewer.dims.set_point(
            self.viewer.dims.ndim - self.image.ndim + layer_axis, world[layer_axis]
        )

    def cut_along_axis(self) -> None:
        """Make the slicing axis the scrolled one (the last two spatial axes are shown)."""
        dims = self.viewer.dims
        if len(self.selection.spatial_axes) != 3 or dims.ndisplay != 2:
            return
        offset = dims.ndim - self.image.ndim
        spatial = [offset + a for a in self.selection.spatial_axes]
        cut = spatial.pop(self.geometry.axis)
        others = [a for a in range(dims.ndim) if a != cut and a not in spatial]
        dims.order = (*others, cut, *spatial)
