"""Labels that live on disk, in chunked zarr stores, edited in place.

Above a size the user sets (:data:`ON_DISK_BYTES`, 1 GiB by default) the labels of an
annotation are a zarr array on disk rather than in memory: :func:`create_labels_store` makes
an empty one (no chunk is written until it holds a label; zarr stores only chunks that differ
from the fill value) and returns it as a writable :class:`~.lazy.LazyArray`, so that every
edit writes through to the chunks it touches and napari reads the planes it shows.

Where the labels go, by the path's form:

- ``image.ome.zarr/labels/NAME`` (inside an OME-Zarr image): an OME-Zarr labels group, in
  the image's zarr format, with the image's spatial axes, and the image's levels when it is
  multiscale (the same shapes and scale transforms; coarser levels are nearest-downsampled
  copies of level 0, kept up to date in the box of each edit: :mod:`.pyramid`); the image's
  ``labels`` list names it (what napari-ome-zarr and other OME-Zarr viewers show).
- ``NAME.ome.zarr``: a new OME-Zarr store whose one multiscale image is the labels.
- ``NAME.zarr``: a plain zarr array with ``spacing`` / ``origin`` / ``unit`` attributes and
  a mark that it holds labels (:data:`~.chunked.LABELS_ATTR`).

:func:`write_labels_store` writes a whole labels array (in memory or lazy) into such a store,
plane slab by slab, into a temporary name that is renamed into place at the end, so a crash
leaves no half-written store under the final name. :func:`open_labels_store` reopens one and
checks its shape and dtype.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick.io.chunked import (
    AFFINE_ATTR,
    LABELS_ATTR,
    ome_metadata,
    split_store_path,
)
from napari_adaptiveclick.io.lazy import LazyArray
from napari_adaptiveclick.io.pyramid import LabelsPyramid, level_voxels
from napari_adaptiveclick.io.staging import staging_dir
from napari_adaptiveclick.io.volume import ImageIOError, ImageVolume
from napari_adaptiveclick.io.writable import replace_problem

ON_DISK_BYTES = 1 << 30  # labels larger than this live in a zarr store
CHUNK_ROWS = 512  # labels chunks: one plane thick, 512 x 512 pixels
_PYRAMID_METHOD = {  # how the coarser levels of a labels pyramid are made (OME-Zarr metadata)
    "method": "napari_adaptiveclick.io.pyramid.LabelsPyramid",
    "description": "nearest neighbour, level by level, as ome_zarr.writer.write_labels; "
    "updated in the box of each edit",
}


def on_disk(shape: tuple[int, ...], dtype: Any, limit: int = ON_DISK_BYTES) -> bool:
    """True when labels of ``shape`` and ``dtype`` are larger than ``limit`` bytes."""
    return int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize > limit


def labels_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One plane thick, at most :data:`CHUNK_ROWS` squared in-plane: a click's edit touches a
    few chunks, a plane's display reads only that plane's."""
    return (1,) * (len(shape) - 2) + tuple(min(n, CHUNK_ROWS) for n in shape[-2:])


def is_store_path(path: str | os.PathLike) -> bool:
    """True for a labels path this module writes (``.zarr``, ``.ome.zarr``, or inside one)."""
    split = split_store_path(path)
    return split is not None and split[2] == "zarr"


def default_labels_path(image: str | os.PathLike, name: str = "adaptiveclick") -> Path:
    """Where the labels store of the image at ``image`` goes: its ``labels/NAME`` group when
    it is an OME-Zarr image, else ``<image stem>_labels.zarr`` beside it."""
    image = Path(image)
    if _ome_image_root(image / "labels" / name) is not None:
        return image / "labels" / name
    stem = image.name
    for suffix in (".ome.zarr", ".zarr", ".n5", ".h5", ".hdf5", ".hdf"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return image.parent / f"{stem.split('.')[0]}_labels.zarr"


def _ome_image_root(path: Path) -> Path | None:
    """The OME-Zarr image group that ``path`` (``.../labels/NAME``) is a labels group of."""
    if path.parent.name != "labels":
        return None
    import zarr

    root = path.parent.parent
    try:
        group = zarr.open_group(str(root), mode="r")
    except Exception:  # not a zarr group
        return None
    return root if ome_metadata(group).get("multiscales") else None


def create_labels_store(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    dtype: Any,
    *,
    like: ImageVolume | None = None,
    overwrite: bool = False,
) -> LazyArray:
    """An empty (all 0) labels store of ``shape`` and ``dtype`` at ``path`` (see the module
    docstring for the forms of ``path``), with the geometry of ``like``; returned writable.
    Refuses an existing store unless ``overwrite``."""
    import zarr

    path = Path(path)
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise ImageIOError(f"Labels need an integer dtype, got {dtype}.")
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} already exists; choose another path or overwrite.")
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    image_root = _ome_image_root(path)
    if image_root is None and not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: folder {path.parent} does not exist.")
    if image_root is not None:
        image = _image_geometry(image_root, shape)
        fmt = _zarr_format(image_root)
        labels = _create_ome_labels(path, fmt, shape, dtype, like or image, image, True)
        _register_label(image_root, path.name)
        return labels
    if path.name.lower().endswith(".ome.zarr"):
        return _create_ome_labels(path, 3, shape, dtype, like)
    array = zarr.create_array(
        str(path), shape=shape, chunks=labels_chunks(shape), dtype=dtype, fill_value=0
    )
    array.attrs[LABELS_ATTR] = True  # the reader opens it as labels, whatever its name
    if like is not None:
        spatial = [i for i, a in enumerate(like.axes) if a != "c"]
        array.attrs.update(
            spacing=[like.spacing[i] for i in spatial],
            origin=[like.origin[i] for i in spatial],
            unit=like.unit,
            **_affine_attr(like, len(shape)),
        )
    return LazyArray(array, writable=True)


def _image_geometry(image_root: Path, shape: tuple[int, ...]) -> ImageVolume | None:
    """The OME-Zarr image at ``image_root`` (its geometry for its labels), if of ``shape``."""
    from napari_adaptiveclick.io.chunked import read_chunked

    image = read_chunked(image_root)
    return image if image.spatial_shape == tuple(shape) else None


def _zarr_format(root: Path) -> int:
    import zarr

    return zarr.open_group(str(root), mode="r").metadata.zarr_format


def _ome_format(zarr_format: int):
    from ome_zarr.format import FormatV04, FormatV05

    return FormatV05() if zarr_format == 3 else FormatV04()


def _create_ome_labels(
    path: Path,
    zarr_format: int,
    shape: tuple[int, ...],
    dtype: np.dtype,
    like,
    image: ImageVolume | None = None,
    in_image: bool = False,
) -> LazyArray:
    """The OME-Zarr labels image group at ``path``, returned writable: the levels of
    ``image`` (:func:`_label_levels`), multiscale metadata with the axes and unit of
    ``like``, and ``image-label`` metadata (naming the image two levels up when
    ``in_image``)."""
    import zarr
    from ome_zarr.writer import add_metadata, write_multiscales_metadata

    fmt = _ome_format(zarr_format)
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    levels = _label_levels(shape, like, image)
    arrays = [
        group.create_array(str(i), shape=s, chunks=labels_chunks(s), dtype=dtype, fill_value=0)
        for i, (s, _) in enumerate(levels)
    ]
    names = "zyx"[-len(shape) :] if len(shape) <= 3 else "t" + "zyx"
    axes = [{"name": n, "type": "time" if n == "t" else "space"} for n in names]
    if like is not None and like.unit:
        for axis in axes[-3:]:
            axis["unit"] = _ome_unit(like.unit)
    datasets = [{"path": str(i), "coordinateTransformations": t} for i, (_, t) in enumerate(levels)]
    method = {"metadata": _PYRAMID_METHOD} if len(levels) > 1 else {}
    write_multiscales_metadata(group, datasets, fmt=fmt, axes=axes, name=path.name, **method)
    image_label: dict[str, Any] = {"version": fmt.version}
    if in_image:
        image_label["source"] = {"image": "../../"}
    add_metadata(group, {"image-label": image_label}, fmt=fmt)
    group.attrs.update(_affine_attr(like, len(shape)))
    return labels_array([LazyArray(a, writable=True) for a in arrays])


def _affine_attr(like, ndim: int) -> dict[str, Any]:
    """The attribute that keeps ``like``'s full affine (flips, rotations) with the labels,
    when it has more than a scale and a translation (the store's standard metadata holds
    those); read back by :func:`~.chunked.stored_affine`. Other OME-Zarr viewers ignore it
    and show such labels unrotated."""
    affine = getattr(like, "affine", None)
    if affine is None or affine.shape != (ndim + 1, ndim + 1):
        return {}
    linear = affine[:ndim, :ndim]
    if np.count_nonzero(linear - np.diag(np.diag(linear))) == 0 and (np.diag(linear) > 0).all():
        return {}
    return {AFFINE_ATTR: np.asarray(affine, dtype=float).tolist()}


def _label_levels(
    shape: tuple[int, ...], like, image: ImageVolume | None
) -> list[tuple[tuple[int, ...], list[dict[str, Any]]]]:
    """Shape and coordinate transformations of each level of labels of ``shape``: those of
    the levels of ``image`` when it is a multiscale image of that shape (its channel axis
    left out) whose levels shrink by whole factors, else one level with the scale and
    translation of ``like`` (1 and 0 without it)."""
    if (
        image is not None
        and len(image.levels) > 1
        and len(image.level_transforms) == len(image.levels)
        and image.spatial_shape == tuple(shape)
    ):
        spatial = [i for i, a in enumerate(image.axes) if a != "c"]
        levels = [
            (
                tuple(int(level.shape[i]) for i in spatial),
                [{**t, t["type"]: [t[t["type"]][i] for i in spatial]} for t in transforms],
            )
            for level, transforms in zip(image.levels, image.level_transforms, strict=True)
        ]
        try:
            level_voxels([level_shape for level_shape, _ in levels])
            return levels
        except ImageIOError:  # an odd pyramid: the labels get the full resolution only
            pass
    scale, translation = [1.0] * len(shape), [0.0] * len(shape)
    if like is not None:
        spatial = [i for i, a in enumerate(like.axes) if a != "c"]
        scale = [float(like.spacing[i]) for i in spatial]
        translation = [float(like.origin[i]) for i in spatial]
    transforms = [
        {"type": "scale", "scale": scale},
        {"type": "translation", "translation": translation},
    ]
    return [(tuple(shape), transforms)]


def labels_array(levels: list[LazyArray]) -> LazyArray:
    """The writable labels of ``levels`` (full resolution first): level 0 itself, or a
    :class:`~.pyramid.LabelsPyramid` that keeps the coarser levels in step."""
    return levels[0] if len(levels) == 1 else LazyArray(LabelsPyramid(levels), writable=True)


def _register_label(image_root: Path, name: str) -> None:
    """List ``name`` (once) in the ``labels`` group of the OME-Zarr image at ``image_root``."""
    import zarr
    from ome_zarr.writer import add_metadata

    zarr_format = _zarr_format(image_root)
    labels = zarr.open_group(str(image_root / "labels"), mode="a", zarr_format=zarr_format)
    known = [n for n in ome_metadata(labels).get("labels", []) if n != name]
    add_metadata(labels, {"labels": [*known, name]}, fmt=_ome_format(zarr_format))


def _ome_unit(unit: str) -> str:
    """An OME-Zarr (UDUNITS) unit name for the unit names the readers give."""
    return {
        "mm": "millimeter",
        "micron": "micrometer",
        "um": "micrometer",
        "µm": "micrometer",
        "nm": "nanometer",
        "meter": "meter",
        "cm": "centimeter",
    }.get(unit, unit)


def open_labels_store(
    path: str | os.PathLike, shape: tuple[int, ...] | None = None, writable: bool = True
) -> LazyArray:
    """Reopen a labels store (a zarr array, or an OME-Zarr labels image's full resolution:
    written, its pyramid is kept in step), writable by default: ImageIOError, saying what is
    wrong, when it is unreadable, not integer, or of another ``shape`` than the image's."""
    from napari_adaptiveclick.io.chunked import read_chunked

    volume = read_chunked(path, writable=writable)
    data = volume.data
    if not np.issubdtype(data.dtype, np.integer):
        raise ImageIOError(f"Labels store {path} holds {data.dtype} values, not integer ids.")
    if shape is not None and tuple(data.shape) != tuple(shape):
        raise ImageIOError(
            f"Labels store {path} has shape {tuple(data.shape)}, but the image needs "
            f"{tuple(shape)}; choose the labels of this image or a new store."
        )
    return labels_array(list(volume.levels)) if writable and len(volume.levels) > 1 else data


@contextmanager
def new_labels_store(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    dtype: Any,
    like: ImageVolume | None = None,
    *,
    overwrite: bool = False,
) -> Iterator[LazyArray]:
    """An empty labels store to fill in place (a replay's output), made under a temporary
    name beside ``path`` and renamed to ``path`` when the block ends without an error (then
    an OME-Zarr image lists it); on an error it is removed and ``path`` is left as it was."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")
    if problem := replace_problem(path):
        raise FileExistsError(problem)
    image_root = _ome_image_root(path)
    if image_root is not None:
        path.parent.mkdir(exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: folder {path.parent} does not exist.")
    tmp_dir = staging_dir(path)
    tmp = tmp_dir / path.name
    try:
        if image_root is not None:
            image = _image_geometry(image_root, tuple(shape))
            fmt = _zarr_format(image_root)
            target = _create_ome_labels(tmp, fmt, shape, dtype, like or image, image, True)
        else:
            target = create_labels_store(tmp, shape, dtype, like=like)
        yield target
        old = tmp_dir / f"{path.name}.replaced"  # set aside, not deleted, until replaced
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old.exists():
                os.replace(old, path)
            raise
        if image_root is not None:
            _register_label(image_root, path.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_labels_store(
    path: str | os.PathLike,
    labels: Any,
    like: ImageVolume | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``labels`` (numpy or lazy, integer) into a new store at ``path``
    (:func:`new_labels_store`), plane slab by slab (memory: one slab). Returns ``path``."""
    path = Path(path)
    if not np.issubdtype(np.dtype(labels.dtype), np.integer) and labels.dtype != bool:
        raise ImageIOError(f"Labels must be an integer or bool array, got dtype {labels.dtype}.")
    dtype = np.uint8 if labels.dtype == bool else labels.dtype
    with new_labels_store(path, tuple(labels.shape), dtype, like, overwrite=overwrite) as target:
        copy_into(target, labels)
    return path


def copy_into(target: Any, labels: Any) -> None:
    """Copy ``labels`` into ``target`` (same shape), one slab of the target's chunk thickness
    along the first axis at a time."""
    if tuple(target.shape) != tuple(labels.shape):
        raise ImageIOError(f"Labels shape {labels.shape} does not match {target.shape}.")
    if len(labels.shape) < 3:
        target[...] = np.asarray(labels)
        return
    step = max(1, int(target.chunks[0]))
    for start in range(0, labels.shape[0], step):
        target[start : start + step] = np.asarray(labels[start : start + step])
