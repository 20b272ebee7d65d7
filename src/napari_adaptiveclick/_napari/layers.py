"""Conversions between napari layers and the annotator's arrays.

Coordinates follow napari's data order. An image layer of ``ndim`` 2 (row, col), 3
(plane, row, col) or 4 (an extra time/channel axis plus three spatial axes) is annotated as a
``(plane, row, col)`` volume (a 2D image as one plane); an RGB layer keeps its trailing
colour axis. Points are mapped between layers through world coordinates, so a click layer
with a different scale or translation still lands on the right pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Points, Shapes

from napari_adaptiveclick.io.lazy import as_array
from napari_adaptiveclick.io.pyramid import LabelsPyramid
from napari_adaptiveclick.volume.records import ClickRecord, record_dict, with_threshold

POSITIVE_COLOR = "lime"
NEGATIVE_COLOR = "red"
POSITIVE_SYMBOL = "disc"
NEGATIVE_SYMBOL = "cross"
METADATA_KEY = "adaptiveclick"
GEOMETRY_KEY = "adaptiveclick_source"  # the io.ImageVolume an image was read from


def image_path(image: Image) -> str | None:
    """The file ``image`` was opened from (None when it has none)."""
    source = getattr(getattr(image, "source", None), "path", None)
    volume = image.metadata.get(GEOMETRY_KEY)
    return source or (str(volume.path) if getattr(volume, "path", None) else None)


def unwrap(obj):
    """The object behind napari's ``PublicOnlyProxy`` (plugins get the viewer through one,
    and layers from it are proxies too: identity checks need the real objects)."""
    return getattr(obj, "__wrapped__", obj)


@dataclass(frozen=True)
class VolumeSelection:
    """Which part of an image layer is annotated.

    ``layer_ndim``: the image layer's ndim (without the RGB axis); ``extra_axis``: for 4D
    layers the time/channel axis held at ``extra_index``; ``rgb``: trailing colour axis.
    """

    layer_ndim: int
    extra_axis: int | None = None
    extra_index: int = 0
    rgb: bool = False

    @classmethod
    def of(cls, layer: Image, extra_axis: int | None, extra_index: int = 0) -> VolumeSelection:
        """Validate an image layer and choose its annotated volume (messages say what to do)."""
        ndim = layer.ndim  # a multiscale layer: its full resolution (see volume())
        if ndim not in (2, 3, 4):
            raise ValueError(
                f"Image '{layer.name}' has {ndim} dimensions; AdaptiveClick annotates 2D images, "
                "3D volumes and 4D data with one time/channel axis."
            )
        if ndim == 4 and extra_axis is None:
            raise ValueError(
                f"Image '{layer.name}' is 4D {tuple(layer.data.shape)}: choose its time/channel "
                "axis in the widget ('Time/channel axis')."
            )
        if ndim < 4:
            extra_axis = None
        elif not 0 <= extra_axis < 4:
            raise ValueError(f"Time/channel axis must be 0..3 for a 4D image, got {extra_axis}.")
        else:
            size = layer.data.shape[extra_axis]
            if not 0 <= extra_index < size:
                raise ValueError(f"Index {extra_index} is outside axis {extra_axis} (size {size}).")
        return cls(ndim, extra_axis, int(extra_index), bool(layer.rgb))

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """Layer axes of the annotated volume (2 or 3 of them), in order."""
        return tuple(i for i in range(self.layer_ndim) if i != self.extra_axis)

    def _key(self) -> tuple:
        return tuple(
            self.extra_index if i == self.extra_axis else slice(None)
            for i in range(self.layer_ndim)
        )

    def volume(self, array: np.ndarray) -> np.ndarray:
        """``(P, R, C[, 3])`` view of an image or labels array (a 2D array gets one plane).
        Lazy data (zarr, dask, HDF5: :func:`~napari_adaptiveclick.io.lazy.as_array`) gives a
        lazy view, reading only what is indexed (a labels store's writes go through); a
        multiscale layer's data gives its full-resolution level, whose coordinates are the
        layer's data coordinates whatever level napari shows."""
        if isinstance(array, Sequence):  # napari's MultiScaleData: the levels, largest first
            array = array[0]
        view = as_array(array, writable=True)[self._key()]
        return view[None] if len(self.spatial_axes) == 2 else view

    def to_volume(self, layer_point: Sequence[float]) -> tuple[float, float, float]:
        """A point in the layer's data coordinates -> (plane, row, col) volume coordinates."""
        spatial = [float(layer_point[i]) for i in self.spatial_axes]
        return tuple([0.0, *spatial]) if len(spatial) == 2 else tuple(spatial)

    def to_layer(self, volume_point: Sequence[float]) -> list[float]:
        """(plane, row, col) volume coordinates -> a point in the layer's data coordinates."""
        spatial = list(volume_point[1:]) if len(self.spatial_axes) == 2 else list(volume_point)
        point = [float(self.extra_index)] * self.layer_ndim
        for axis, value in zip(self.spatial_axes, spatial, strict=True):
            point[axis] = float(value)
        return point

    def extra_of(self, layer_point: Sequence[float]) -> int | None:
        """Index of the extra axis at a layer point (None for 2D/3D layers)."""
        return None if self.extra_axis is None else int(round(float(layer_point[self.extra_axis])))


def spatial_shape(layer: Image) -> tuple[int, ...]:
    """Shape a Labels layer for this image needs (the RGB axis dropped)."""
    shape = tuple(layer.data.shape)
    return shape[:-1] if layer.rgb else shape


def geometry_kwargs(layer: Image) -> dict[str, Any]:
    """Keyword arguments that give a new layer the same world geometry as ``layer``."""
    return {
        "scale": layer.scale,
        "translate": layer.translate,
        "rotate": layer.rotate,
        "shear": layer.shear,
        "affine": layer.affine.affine_matrix,
    }


def new_labels_dtype(shape: Sequence[int]) -> np.dtype:
    """The dtype of a new Labels layer of ``shape``: uint16 for a 2D image (65,535 objects,
    far more than anyone clicks on one image; half the memory of int32, and napari draws
    uint8/uint16 labels without converting the slice at each refresh), uint32 for a volume
    (propagation makes many objects cheap: 4.29e9 ids, never full). An existing Labels
    layer keeps its own dtype."""
    return np.dtype(np.uint16 if len(shape) == 2 else np.uint32)


def new_labels_layer(image: Image) -> Labels:
    """An empty Labels layer matching ``image`` (shape, geometry, source geometry), of
    :func:`new_labels_dtype` (allocated lazily: untouched planes take no memory)."""
    metadata = (
        {GEOMETRY_KEY: image.metadata[GEOMETRY_KEY]} if GEOMETRY_KEY in image.metadata else {}
    )
    shape = spatial_shape(image)
    return Labels(
        np.zeros(shape, dtype=new_labels_dtype(shape)),
        name=f"{image.name} labels",
        metadata=metadata,
        **geometry_kwargs(image),
    )


def full_resolution(layer: Labels) -> Any:
    """The data of a Labels layer, of a multiscale one its full-resolution level."""
    return layer.data[0] if layer.multiscale else layer.data


def check_labels(labels: Labels, image: Image) -> None:
    """Raise ValueError if ``labels`` cannot hold labels for ``image``."""
    expected = spatial_shape(image)
    if tuple(labels.data.shape) != expected:
        raise ValueError(
            f"Labels '{labels.name}' has shape {tuple(labels.data.shape)} but image "
            f"'{image.name}' needs {expected}; choose another Labels layer or '<new>'."
        )
    data = full_resolution(labels)  # numpy, zarr, or a labels pyramid on disk (multiscale)
    if labels.multiscale and not isinstance(data, LabelsPyramid):
        raise ValueError(
            f"Labels '{labels.name}' is a multiscale layer whose coarser levels would not follow "
            "the edits; choose '<new>' (labels on disk beside the image keep their pyramid)."
        )
    writable = isinstance(data, np.ndarray | LabelsPyramid) or hasattr(data, "store")
    if not writable or not np.issubdtype(data.dtype, np.integer):
        raise ValueError(
            f"Labels '{labels.name}' must be an integer array in memory or in a zarr store "
            f"(got {type(data).__name__} of {data.dtype}); choose '<new>'."
        )


def new_click_layer(image: Image) -> Points:
    """An empty Points layer for clicks, with the image's geometry, in add mode."""
    shape = spatial_shape(image)
    size = max(4.0, 0.025 * min(shape[-2:]))
    layer = Points(
        np.empty((0, image.ndim)),
        ndim=image.ndim,
        name=f"{image.name} clicks",
        size=size,
        face_color=POSITIVE_COLOR,
        border_color="black",
        border_width=0.1,
        out_of_slice_display=False,
        **geometry_kwargs(image),
    )
    layer.mode = "add"
    return layer


def new_prompt_layer(image: Image) -> Shapes:
    """An empty Shapes layer for boxes, strokes and lassos, with the image's geometry, in
    rectangle mode; its next shapes are drawn in the positive colour
    (:func:`set_shape_polarity`)."""
    shape = spatial_shape(image)
    layer = Shapes(
        ndim=image.ndim,
        name=f"{image.name} prompts",
        edge_width=max(1.0, 0.005 * min(shape[-2:])),
        edge_color=POSITIVE_COLOR,
        face_color="transparent",
        **geometry_kwargs(image),
    )
    layer.mode = "add_rectangle"
    return layer


def set_shape_polarity(layer: Shapes, positive: bool) -> None:
    """Edge colour of the next drawn shape (no shape is recoloured)."""
    layer.selected_data = set()
    layer.current_edge_color = POSITIVE_COLOR if positive else NEGATIVE_COLOR


def map_point(point: Sequence[float], source, target) -> np.ndarray:
    """A data point of layer ``source`` in the data coordinates of layer ``target``."""
    return np.asarray(target.world_to_data(source.data_to_world(np.asarray(point, dtype=float))))


def show_clicks(layer: Points, points: np.ndarray, positive: Sequence[bool]) -> None:
    """Show ``points`` (N, ndim) on ``layer`` with colours and symbols by polarity; nothing
    happens (no redraw) when the layer already shows exactly these clicks."""
    symbols = [POSITIVE_SYMBOL if p else NEGATIVE_SYMBOL for p in positive]
    shown = [str(s) for s in layer.symbol] if len(layer.data) else []
    if len(layer.data) == len(points) and np.allclose(layer.data, points) and shown == symbols:
        return
    layer.selected_data = set()
    layer.data = points if len(points) else np.empty((0, layer.ndim))
    if len(points):
        layer.face_color = [POSITIVE_COLOR if p else NEGATIVE_COLOR for p in positive]
        layer.symbol = symbols


def set_polarity(layer: Points, positive: bool) -> None:
    """Colour and symbol of the next added point (no point is recoloured)."""
    symbol = POSITIVE_SYMBOL if positive else NEGATIVE_SYMBOL
    if str(layer.current_symbol) == symbol:
        return
    layer.selected_data = set()
    layer.current_face_color = POSITIVE_COLOR if positive else NEGATIVE_COLOR
    layer.current_symbol = symbol


def store_provenance(
    labels: Labels, records: Sequence[ClickRecord], settings: dict[str, Any]
) -> None:
    """Keep the click records (as dicts) and the settings that made them with ``labels``."""
    labels.metadata[METADATA_KEY] = {"records": [record_dict(r) for r in records], **settings}


def stored_records(labels: Labels) -> list[ClickRecord]:
    """Click records stored with ``labels`` by :func:`store_provenance`, in order."""
    stored = labels.metadata.get(METADATA_KEY, {})
    records = sorted((ClickRecord(**i) for i in stored.get("records", [])), key=lambda r: r.order)
    return with_threshold(records, stored.get("threshold"))  # older records: the session's
