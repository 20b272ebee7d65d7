"""npe2 reader (NIfTI, MetaImage, NRRD with their geometry) and Labels writer (source geometry).

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick._napari.layers import GEOMETRY_KEY
from napari_adaptiveclick.io import geometry
from napari_adaptiveclick.io.images import ImageVolume, read_image
from napari_adaptiveclick.io.labels import write_labels

EXTENSIONS = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")
LABEL_WORDS = ("seg", "label", "truth", "mask", "annot")

LayerData = tuple[Any, dict[str, Any], str]
PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]


def _paths(path: PathOrPaths) -> list[Path]:
    return [Path(path)] if isinstance(path, str | os.PathLike) else [Path(p) for p in path]


def get_reader(path: PathOrPaths):
    """The reader for ``path`` if every file is NIfTI, MetaImage or NRRD, else None."""
    paths = _paths(path)
    if paths and all(p.name.lower().endswith(EXTENSIONS) for p in paths):
        return read_layers
    return None


def read_layers(path: PathOrPaths) -> list[LayerData]:
    """One layer per file; integer files named like a segmentation open as Labels."""
    return [layer_data(read_image(p)) for p in _paths(path)]


def _stem(path: Path) -> str:
    name = path.name
    for ext in EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def layer_data(volume: ImageVolume, name: str | None = None) -> LayerData:
    """A napari layer-data tuple for ``volume`` with scale, affine and source geometry."""
    name = name or (_stem(volume.path) if volume.path else "image")
    scale = tuple(s for s, a in zip(volume.spacing, volume.axes, strict=True) if a != "c")
    affine = geometry.without_scale(volume.affine, scale)
    kwargs: dict[str, Any] = {"name": name, "scale": scale, "metadata": {GEOMETRY_KEY: volume}}
    integer = np.issubdtype(volume.data.dtype, np.integer)
    if integer and any(word in name.lower() for word in LABEL_WORDS) and not volume.is_rgb:
        return volume.data, {**kwargs, "affine": affine}, "labels"
    if volume.is_rgb:
        kwargs.update(rgb=True, affine=affine)
    elif "c" in volume.axes:
        channel_axis = volume.axes.index("c")
        # One matrix per channel: napari would split a single matrix into its rows.
        kwargs.update(channel_axis=channel_axis, affine=[affine] * volume.data.shape[channel_axis])
    else:
        kwargs["affine"] = affine
    return volume.data, kwargs, "image"


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


def write_labels_layer(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: Labels to NIfTI/MetaImage/NRRD with the source geometry
    (the image's affine and header when the layer came from this plugin's reader, otherwise
    the layer's own data-to-world transform)."""
    labels = np.asarray(data)
    like = attributes.get("metadata", {}).get(GEOMETRY_KEY)
    if not isinstance(like, ImageVolume) or like.spatial_shape != labels.shape:
        affine = layer_affine(attributes, labels.ndim)
        like = ImageVolume.with_affine(labels, affine, "tzyx"[-labels.ndim :])
    return [str(write_labels(path, labels, like, overwrite=True))]
