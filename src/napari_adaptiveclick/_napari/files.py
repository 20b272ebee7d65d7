"""npe2 reader (NIfTI, MetaImage, NRRD with their geometry; zarr, OME-Zarr, N5 and HDF5
lazily) and Labels writer (source geometry; zarr and OME-Zarr stores).

Chunked stores (:mod:`napari_adaptiveclick.io.chunked`) open as layers over lazy views:
napari reads the planes it shows, an OME-Zarr pyramid is a multiscale layer (napari shows the
level that fits the screen, clicks segment the full resolution), the contrast limits come
from a sample, and the labels of an OME-Zarr image (its ``labels`` group) open with it as
Labels layers that edit their store in place (a labels pyramid as a single-scale layer over
its full resolution, which napari paints on; the pyramid keeps its coarser levels in step).

The reader gives each layer the volume's full voxel-to-world map
(:mod:`napari_adaptiveclick.io.geometry`: data in file order, world LPS in ``(z, y, x)``
order, so axial slices look as in radiology viewers): ``scale`` is the voxel spacing and
``affine`` the rest (direction cosines with their flips and rotation, and the origin), so that
``layer.data_to_world(index)`` is the voxel's world position; ``translate`` stays 0. It keeps
the :class:`~napari_adaptiveclick.io.images.ImageVolume` (affine, header) in
``metadata["adaptiveclick_source"]``; Labels made by the widget inherit it, and the writer
uses it to save them with the source geometry.

napari slices along data axes: for an oblique volume its 2D view leaves out the part of the
rotation that tilts the slice plane (napari warns), the 3D view and the world coordinates are
exact.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick._napari.layers import GEOMETRY_KEY, image_path
from napari_adaptiveclick.io import geometry
from napari_adaptiveclick.io.chunked import is_chunked, ome_metadata
from napari_adaptiveclick.io.images import ImageVolume, read_image
from napari_adaptiveclick.io.labels import write_labels
from napari_adaptiveclick.io.lazy import LazyArray, is_lazy, sample_values
from napari_adaptiveclick.io.writable import writes_over

EXTENSIONS = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")
STORE_EXTENSIONS = (".zarr", ".ome.zarr")  # what the writer writes as a store
LABEL_WORDS = ("seg", "label", "truth", "mask", "annot")

LayerData = tuple[Any, dict[str, Any], str]
PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]


def _paths(path: PathOrPaths) -> list[Path]:
    return [Path(path)] if isinstance(path, str | os.PathLike) else [Path(p) for p in path]


def get_reader(path: PathOrPaths):
    """The reader for ``path`` if every path is a NIfTI, MetaImage or NRRD file or a zarr,
    OME-Zarr, N5 or HDF5 store, else None."""
    paths = _paths(path)
    if paths and all(p.name.lower().endswith(EXTENSIONS) or is_chunked(p) for p in paths):
        return read_layers
    return None


def read_layers(path: PathOrPaths) -> list[LayerData]:
    """One layer per file (and the labels of an OME-Zarr image); integer files named like a
    segmentation open as Labels."""
    layers = []
    for p in _paths(path):
        volume = read_image(p)
        layers.append(layer_data(volume))
        if volume.format == "ome-zarr":
            layers += [layer_data(read_image(q), labels=True) for q in _ome_labels(Path(p))]
    return layers


def _ome_labels(image: Path) -> list[Path]:
    """The labels images an OME-Zarr image lists in its ``labels`` group."""
    import zarr

    try:
        group = zarr.open_group(str(image / "labels"), mode="r")
    except Exception:  # no labels group
        return []
    names = ome_metadata(group).get("labels", [])
    return [image / "labels" / name for name in names if (image / "labels" / name).exists()]


def _stem(path: Path) -> str:
    name = path.name
    for ext in (*EXTENSIONS, ".ome.zarr", ".zarr", ".n5", ".h5", ".hdf5", ".hdf"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def layer_data(volume: ImageVolume, name: str | None = None, labels: bool = False) -> LayerData:
    """A napari layer-data tuple for ``volume`` with scale, affine and source geometry; lazy
    volumes keep their views (an image pyramid becomes a multiscale layer; Labels edit a zarr
    store in place). ``labels``: open as Labels whatever the name."""
    name = name or (_stem(volume.path) if volume.path else "image")
    scale = tuple(s for s, a in zip(volume.spacing, volume.axes, strict=True) if a != "c")
    affine = geometry.without_scale(volume.affine, scale)
    kwargs: dict[str, Any] = {"name": name, "scale": scale, "metadata": {GEOMETRY_KEY: volume}}
    integer = np.issubdtype(volume.data.dtype, np.integer)
    words = any(word in name.lower() for word in LABEL_WORDS)
    labels = labels or (integer and (volume.is_labels or words))
    if labels and not volume.is_rgb:
        data, multiscale = _labels_data(volume)
        return data, {**kwargs, "affine": affine, "multiscale": multiscale}, "labels"
    if is_lazy(volume.data):
        return _lazy_image_data(volume, {**kwargs, "affine": affine})
    if volume.is_rgb:
        kwargs.update(rgb=True, affine=affine)
    elif "c" in volume.axes:
        channel_axis = volume.axes.index("c")
        # One matrix per channel: napari would split a single matrix into its rows.
        kwargs.update(channel_axis=channel_axis, affine=[affine] * volume.data.shape[channel_axis])
    else:
        kwargs["affine"] = affine
    return volume.data, kwargs, "image"


def _labels_data(volume: ImageVolume) -> tuple[Any, bool]:
    """Labels data, and whether it is multiscale: in memory as read; a zarr store reopened
    for writing (napari paints into it, the widget's clicks write through; a pyramid is
    single-scale over its full resolution and keeps its coarser levels in step,
    :func:`~.lazy_layers.store_data`); other lazy stores read-only views (a pyramid of
    them multiscale)."""
    if not is_lazy(volume.data):
        return volume.data, False
    from napari_adaptiveclick._napari.lazy_layers import store_data
    from napari_adaptiveclick.io.stores import open_labels_store

    try:
        return store_data(open_labels_store(volume.path)), False
    except (ValueError, OSError):  # N5, HDF5, a read-only folder: shown, not edited
        levels = volume.levels or (volume.data,)
        return (list(levels), True) if len(levels) > 1 else (volume.data, False)


def _lazy_image_data(volume: ImageVolume, kwargs: dict[str, Any]) -> LayerData:
    """An image layer over lazy views: the pyramid as a multiscale layer, the contrast
    limits from a sample of the smallest level (no pass over the volume)."""
    levels = volume.levels or (volume.data,)
    if not volume.is_rgb and "c" not in volume.axes:
        lo, hi = np.percentile(sample_values(levels[-1]).astype(np.float64), [0.5, 99.5])
        kwargs["contrast_limits"] = [float(lo), float(hi) if hi > lo else float(lo) + 1.0]
    if "c" in volume.axes:
        channel_axis = volume.axes.index("c")
        kwargs.update(
            channel_axis=channel_axis, affine=[kwargs["affine"]] * volume.data.shape[channel_axis]
        )
    if volume.is_rgb:
        kwargs["rgb"] = True
    data = list(levels) if len(levels) > 1 else levels[0]
    return data, {**kwargs, "multiscale": len(levels) > 1}, "image"


def layer_affine(attributes: dict[str, Any], ndim: int) -> np.ndarray:
    """The full data-to-world matrix of a layer from its state (``scale``, ``translate``,
    ``rotate``, ``shear``, ``affine``), composed as napari does."""
    from napari.utils.transforms import Affine, CompositeAffine

    physical = CompositeAffine(
        scale=attributes.get("scale", (1.0,) * ndim),
        translate=attributes.get("translate", (0.0,) * ndim),
        rotate=attributes.get("rotate"),
        shear=attributes.get("shear"),
        ndim=ndim,
    )
    world = Affine(affine_matrix=attributes.get("affine", np.eye(ndim + 1)), ndim=ndim)
    return world.compose(physical).affine_matrix


SAVED_HOOKS: list[Callable[[Any, list[str]], None]] = []  # told (data, paths) of each save
#: This plugin's name and the extensions its labels writer takes (napari.yaml's writer).
PLUGIN = "napari-adaptiveclick"
WRITER_EXTENSIONS = (
    *(".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".ome.zarr", ".zarr"),
    *(".tif", ".tiff", ".png"),
)


def write_labels_layer(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: Labels to NIfTI/MetaImage/NRRD with the source geometry
    (the image's affine and header when the layer came from this plugin's reader, otherwise
    the layer's own data-to-world transform), or to a zarr / OME-Zarr store (copied slab by
    slab; labels that already live in that store are left as they are). Multiscale Labels
    are written from their full resolution. Each of :data:`SAVED_HOOKS` is then told which
    data was saved where (the autosave of an annotation ends once its labels are saved)."""
    paths = _write_labels_layer(path, data, attributes)
    for hook in list(SAVED_HOOKS):
        hook(data, paths)
    return paths


class WouldReplaceImageError(FileExistsError):
    """Saving labels to that path would replace an open image. Not a ValueError: napari's
    *Save Layers* takes a writer's ValueError for "no writer" and hides its message."""


def refuse_writing_over(path: str | os.PathLike, images: Sequence[str | None]) -> None:
    """Raise :class:`WouldReplaceImageError` when saving labels to ``path`` would replace
    one of the ``images`` (files or stores): the same path, a folder holding one, or a path
    inside a store (its OME-Zarr labels group ``<image>/labels/<name>`` excepted). A store is
    a folder, so a file dialog may not ask before replacing it."""
    for image in images:
        if image and writes_over(path, image):
            raise WouldReplaceImageError(
                f"Not saving the labels to {path}: that would replace the image {image} "
                "that is open. Choose another file name, or for an OME-Zarr image its labels "
                "group <image>/labels/<name>."
            )


def open_images() -> list[str]:
    """The files the Image layers of the current napari viewer were opened from."""
    from napari import current_viewer
    from napari.layers import Image

    viewer = current_viewer()
    layers = [] if viewer is None else list(viewer.layers)
    return [p for layer in layers if isinstance(layer, Image) and (p := image_path(layer))]


def _write_labels_layer(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    refuse_writing_over(path, open_images())
    if isinstance(data, Sequence):  # napari's MultiScaleData: the levels, largest first
        data = data[0]
    labels = data if is_lazy(data) else np.asarray(data)
    like = attributes.get("metadata", {}).get(GEOMETRY_KEY)
    if not isinstance(like, ImageVolume) or like.spatial_shape != labels.shape:
        affine = layer_affine(attributes, labels.ndim)
        like = ImageVolume.with_affine(labels, affine, "tzyx"[-labels.ndim :])
    if path.lower().rstrip("/").endswith(STORE_EXTENSIONS) or is_chunked(path):
        from napari_adaptiveclick.io.stores import write_labels_store

        if _same_store(labels, path):
            return [path]  # labels on disk, edited in place: already written
        source = (
            labels if isinstance(labels, LazyArray) or not is_lazy(labels) else LazyArray(labels)
        )
        return [str(write_labels_store(path, source, like, overwrite=True))]
    labels = np.asarray(labels)  # the layer's integer type is kept when the ids fit it
    return [str(write_labels(path, labels, like, overwrite=True, dtype=labels.dtype))]


def _same_store(labels: Any, path: str) -> bool:
    """True when ``labels`` is the zarr array stored at ``path`` (or its level "0"), or the
    pyramid of the labels image there."""
    from napari_adaptiveclick.io.pyramid import LabelsPyramid

    array = labels.source if isinstance(labels, LazyArray) else labels
    if isinstance(array, LabelsPyramid):
        array = getattr(array.levels[0], "source", array.levels[0])
    root = getattr(getattr(array, "store", None), "root", None)
    if root is None:
        return False
    where = (Path(str(root)) / getattr(array, "path", "")).resolve()
    target = Path(path).resolve()
    return where in (target, target / "0")
