"""npe2 reader (NIfTI, MetaImage, NRRD with voxel spacing) and Labels writer (source geometry).

The reader sets each layer's ``scale`` from the voxel spacing and ``translate`` from the
origin, and keeps the :class:`~napari_adaptiveclick.io.images.ImageVolume` (affine, header,
direction) in ``metadata["adaptiveclick_source"]``; Labels made by the widget inherit it, and
the writer uses it to save them with the source geometry.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick._napari.layers import GEOMETRY_KEY
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
    """A napari layer-data tuple for ``volume`` with scale, translate and source geometry."""
    name = name or (_stem(volume.path) if volume.path else "image")
    spatial = [i for i, a in enumerate(volume.axes) if a != "c"]
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": tuple(volume.spacing[i] for i in spatial),
        "translate": tuple(volume.origin[i] for i in spatial),
        "metadata": {GEOMETRY_KEY: volume},
    }
    integer = np.issubdtype(volume.data.dtype, np.integer)
    if integer and any(word in name.lower() for word in LABEL_WORDS) and not volume.is_rgb:
        return volume.data, kwargs, "labels"
    if volume.is_rgb:
        kwargs["rgb"] = True
    elif "c" in volume.axes:
        kwargs["channel_axis"] = volume.axes.index("c")
    return volume.data, kwargs, "image"


def write_labels_layer(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: Labels to NIfTI/MetaImage/NRRD with the source geometry
    (the image's affine/direction when the layer came from this plugin's reader, otherwise
    the layer's scale and translate)."""
    labels = np.asarray(data)
    like = attributes.get("metadata", {}).get(GEOMETRY_KEY)
    if not isinstance(like, ImageVolume) or like.spatial_shape != labels.shape:
        like = ImageVolume(
            labels,
            tuple(float(s) for s in attributes.get("scale", (1.0,) * labels.ndim)),
            tuple(float(t) for t in attributes.get("translate", (0.0,) * labels.ndim)),
        )
    return [str(write_labels(path, labels, like, overwrite=True))]
