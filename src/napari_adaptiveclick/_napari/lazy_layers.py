"""Labels that live on disk, for images too big for labels in memory.

:func:`new_labels_layer` makes the Labels layer of a new annotation: in memory up to a size
the user sets (:data:`~napari_adaptiveclick.io.stores.ON_DISK_BYTES`, 1 GiB, by default),
else an empty zarr store that napari shows plane by plane and the annotator edits in place
(:mod:`napari_adaptiveclick.io.stores`): the image's OME-Zarr ``labels`` group, else
``<image>_labels.zarr`` beside it, else (no file, or a folder that cannot be written) the
per-user cache; an existing store is never replaced (``-2``, ``-3``, ... are added).

The labels of a multiscale image have its levels on disk
(:mod:`napari_adaptiveclick.io.pyramid`) but are a single-scale Labels layer over the
pyramid's full resolution (:func:`store_data`), with the image's full-resolution geometry:
napari reads the plane it shows, and paints on it (it makes multiscale Labels not editable).
Every write, the annotator's (clicks, prompts, propagation) and napari's (brush, fill,
polygon, eraser, their undo and redo), goes through the
:class:`~napari_adaptiveclick.io.pyramid.LabelsPyramid`, which keeps the coarser levels in
step in the box it writes, for other OME-Zarr viewers and for the next opening.

What a click reads of a lazy image (this plugin's reader gives napari
:class:`~napari_adaptiveclick.io.lazy.LazyArray` views; other readers dask arrays), and of a
multiscale layer (its full resolution), is :meth:`.layers.VolumeSelection.volume`'s part.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from napari.layers import Image, Labels

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick.io.images import ImageVolume
from napari_adaptiveclick.io.lazy import LazyArray
from napari_adaptiveclick.io.pyramid import LabelsPyramid
from napari_adaptiveclick.io.stores import (
    ON_DISK_BYTES,
    create_labels_store,
    default_labels_path,
    on_disk,
)


def _source_volume(layer: Image) -> ImageVolume | None:
    volume = layer.metadata.get(L.GEOMETRY_KEY)
    return volume if isinstance(volume, ImageVolume) else None


def labels_store_path(image: Image, name: str = "adaptiveclick") -> Path:
    """Where a new labels store for ``image`` goes (a name not yet used)."""
    volume = _source_volume(image)
    source = volume.path if volume is not None and volume.path else None
    source = source or getattr(getattr(image, "source", None), "path", None)
    if source:
        path = default_labels_path(source, name)
        folder = path.parent if path.parent.exists() else path.parent.parent
        if os.access(folder, os.W_OK):
            return _unused(path)
    from napari_adaptiveclick.volume.image_key import user_cache_dir

    folder = user_cache_dir().parent / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    return _unused(folder / f"{image.name or 'image'}_labels.zarr".replace("/", "_"))


def _unused(path: Path) -> Path:
    """``path``, or ``path`` with ``-2``, ``-3``, ... before its suffix when it exists."""
    if not path.exists():
        return path
    stem, suffix = (path.name[:-5], ".zarr") if path.name.endswith(".zarr") else (path.name, "")
    count = 2
    while (path.parent / f"{stem}-{count}{suffix}").exists():
        count += 1
    return path.parent / f"{stem}-{count}{suffix}"


def store_data(store: LazyArray) -> Any:
    """The data of a (single-scale: napari paints no multiscale) Labels layer over a labels
    store: the zarr array itself, or the pyramid (both take napari's fancy indices; the
    pyramid writes its coarser levels too), else the view when it is a part of its source."""
    source = store.source
    if isinstance(source, LabelsPyramid):
        return source
    full = store.shape == tuple(source.shape) and not store.reverse_axes
    return source if full else store


def new_labels_layer(image: Image, limit: float = ON_DISK_BYTES) -> Labels:
    """An empty Labels layer for ``image``: in memory (:func:`layers.new_labels_layer`) up
    to ``limit`` bytes (and for 2D images), else on disk (:func:`labels_store_path`), shown
    lazily by napari."""
    shape = L.spatial_shape(image)
    dtype = L.new_labels_dtype(shape)
    if len(shape) < 3 or not on_disk(shape, dtype, int(limit)):  # 2D images: in memory
        return L.new_labels_layer(image)
    volume = _source_volume(image)
    like = volume if volume is not None and volume.spatial_shape == shape else None
    path = labels_store_path(image)
    store = create_labels_store(path, shape, dtype, like=like)
    metadata = {L.GEOMETRY_KEY: volume} if volume is not None else {}
    layer = Labels(
        store_data(store),
        name=f"{image.name} labels",
        metadata={**metadata, "adaptiveclick_store": str(path)},
        **L.geometry_kwargs(image),
    )
    return layer
