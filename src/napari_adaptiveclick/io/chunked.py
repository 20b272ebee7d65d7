"""Read big volumes lazily: OME-Zarr (multiscale), zarr and N5 arrays, HDF5 datasets.

:func:`read_chunked` gives an :class:`~.images.ImageVolume` whose ``data`` is a
:class:`~.lazy.LazyArray` over the stored array: nothing is read until a view is, and then
only the chunks it touches (zarr, zarr-n5 and h5py do the chunk work). An OME-Zarr image
keeps its pyramid in ``levels`` (full resolution first, same axes), for napari to display,
while clicks segment ``data``, the full-resolution level; its ``spacing`` and ``origin`` are
that level's ``scale`` and ``translation``, and ``level_transforms`` every level's (the
labels written beside it get the same levels, :mod:`.stores`).

Paths: a store (``volume.zarr``, ``stack.n5``, ``cells.h5``) opens its one image (an
OME-Zarr multiscale group, or its only array); a path inside names one node
(``volume.zarr/raw``, ``stack.n5/setup0/timepoint0/s0``, ``cells.h5/volumes/raw``).

Axes: OME-Zarr axes come from its metadata, time and channel axes of size 1 are dropped (a
bioformats2raw ``(t, c, z, y, x)`` export of one channel is read as ``(z, y, x)``); other
stores follow :class:`~.images.ImageVolume`'s defaults for their number of axes. N5 lists its
axes fastest first: they are reversed, so every volume is in napari order.

zarr, ome-zarr, zarr-n5 and h5py (the ``big`` extra) are imported inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_adaptiveclick.io.lazy import LazyArray
from napari_adaptiveclick.io.volume import ImageIOError, ImageVolume

# Store suffix (lower case) -> kind of store.
STORE_SUFFIXES: dict[str, str] = {
    ".ome.zarr": "zarr",
    ".zarr": "zarr",
    ".n5": "n5",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
}
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray")
AFFINE_ATTR = "napari_adaptiveclick_affine"  # the full voxel-to-world matrix of a labels store
LABELS_ATTR = "napari_adaptiveclick_labels"  # a plain zarr array that holds labels
_NEEDS = "pip install 'napari-adaptiveclick[big]'"


def _store_suffix(name: str) -> str:
    lower = name.lower()
    return next((s for s in STORE_SUFFIXES if lower.endswith(s)), "")


def is_zarr_store(path: str | os.PathLike) -> bool:
    """True for a folder holding zarr metadata (a store, group or array)."""
    path = Path(path)
    return path.is_dir() and any((path / m).exists() for m in _ZARR_MARKERS)


def split_store_path(path: str | os.PathLike) -> tuple[Path, str, str] | None:
    """``(store root, key inside it, kind)`` for a path to or into a chunked store (kind:
    "zarr", "n5" or "hdf5"); None for any other path. A folder holding zarr metadata counts
    as a zarr store whatever its name."""
    path = Path(path)
    parts = path.parts
    for i in range(len(parts), 0, -1):
        suffix = _store_suffix(parts[i - 1])
        if suffix:
            return Path(*parts[:i]), "/".join(parts[i:]), STORE_SUFFIXES[suffix]
    if is_zarr_store(path):
        return path, "", "zarr"
    return None


def is_chunked(path: str | os.PathLike) -> bool:
    """True for a path to or into a zarr, OME-Zarr, N5 or HDF5 store."""
    return split_store_path(path) is not None


def read_chunked(path: str | os.PathLike, *, writable: bool = False) -> ImageVolume:
    """Open the image at ``path`` lazily (see the module docstring); ``writable`` (zarr
    only: labels stores) opens it for writing through its ``data`` view. Raises
    FileNotFoundError when the store is missing and ImageIOError, naming the store and what
    is wrong, when it cannot be read as an image."""
    split = split_store_path(path)
    if split is None:
        raise ImageIOError(f"{path} is not a zarr, OME-Zarr, N5 or HDF5 store.")
    root, key, kind = split
    if not root.exists():
        raise FileNotFoundError(f"No such store: {root}")
    try:
        if writable and kind != "zarr":
            raise ImageIOError(f"{root.name}: only zarr stores are written here, not {kind}.")
        opener = {"zarr": _open_zarr, "n5": _open_n5, "hdf5": _open_hdf5}[kind]
        volume = opener(root, key, writable) if kind == "zarr" else opener(root, key)
    except ImportError as err:
        raise ImageIOError(f"Reading {root.name} needs {err.name}: {_NEEDS}.") from None
    except (ImageIOError, FileNotFoundError):
        raise
    except Exception as err:  # each library raises its own types for damaged stores
        raise ImageIOError(
            f"Cannot read {path} as a {kind} image: {type(err).__name__}: {err}"
        ) from err
    volume.path = Path(path)
    return volume


# ---------------------------------------------------------------------- zarr and OME-Zarr
def _open_zarr(root: Path, key: str, writable: bool = False) -> ImageVolume:
    import zarr

    mode = "r+" if writable else "r"
    node = zarr.open(str(root), mode=mode, path=key) if key else zarr.open(str(root), mode=mode)
    if isinstance(node, zarr.Array):
        return _plain(LazyArray(node, writable=writable), node.attrs, "zarr")
    multiscales = ome_metadata(node).get("multiscales")
    if multiscales:
        return _ome_zarr(node, multiscales[0], writable)
    only = _only_array(node, root / key)
    return _plain(LazyArray(only, writable=writable), only.attrs, "zarr")


def ome_metadata(group: Any) -> dict[str, Any]:
    """The OME attributes of a zarr group: under "ome" (OME-Zarr 0.5, zarr v3) or at the top
    (0.4 and earlier)."""
    attrs = group.attrs.asdict()
    return attrs.get("ome", attrs) if isinstance(attrs.get("ome"), dict) else attrs


def _only_array(group: Any, where: Path) -> Any:
    arrays = sorted(name for name, _ in group.arrays())
    if len(arrays) == 1:
        return group[arrays[0]]
    if not arrays:
        raise ImageIOError(f"{where} holds no array and no OME-Zarr image.")
    raise ImageIOError(
        f"{where} holds several arrays ({', '.join(arrays)}); open one of them, e.g. "
        f"{where / arrays[0]}."
    )


def _ome_zarr(group: Any, multiscale: dict[str, Any], writable: bool = False) -> ImageVolume:
    """An OME-Zarr multiscale image, its axes checked by ome-zarr's own :class:`Axes`."""
    from ome_zarr.axes import Axes
    from ome_zarr.format import format_from_version

    version = ome_metadata(group).get("version") or multiscale.get("version", "0.4")
    axes = Axes(multiscale.get("axes"), fmt=format_from_version(str(version))).to_list()
    datasets = multiscale["datasets"]
    if not datasets:
        raise ImageIOError(f"OME-Zarr image {group.store} lists no datasets.")
    arrays = [group[d["path"]] for d in datasets]
    names = [a if isinstance(a, str) else a["name"] for a in axes] if axes else []
    kinds = [
        (a.get("type") if isinstance(a, dict) else None) or _axis_type(n)
        for a, n in zip(axes, names, strict=True)
    ]
    if len(names) != arrays[0].ndim:
        raise ImageIOError(
            f"OME-Zarr axes {names} do not match the array's {arrays[0].ndim} dimensions."
        )
    drop = [i for i, k in enumerate(kinds) if k in ("time", "channel") and arrays[0].shape[i] == 1]
    key = tuple(0 if i in drop else slice(None) for i in range(len(names)))
    levels = tuple(LazyArray(a, writable=writable)[key] for a in arrays)
    kept = [i for i in range(len(names)) if i not in drop]
    letters = "".join(_letter(names[i], kinds[i]) for i in kept)
    scale, translation = _transform(datasets[0], len(names))
    unit = next(
        (
            a.get("unit")
            for a in axes
            if isinstance(a, dict) and a.get("type") == "space" and a.get("unit")
        ),
        None,
    )
    spacing = tuple(float(scale[i]) if kinds[i] != "channel" else 1.0 for i in kept)
    origin = tuple(float(translation[i]) if kinds[i] != "channel" else 0.0 for i in kept)
    spatial = [i for i, a in enumerate(letters) if a != "c"]
    volume = ImageVolume(
        levels[0],
        spacing,
        origin,
        format="ome-zarr",
        axes=letters,
        unit=unit,
        affine=stored_affine(
            group.attrs, [spacing[i] for i in spatial], [origin[i] for i in spatial]
        ),
        is_labels="image-label" in ome_metadata(group),
    )
    volume.levels = levels
    volume.level_transforms = tuple(_kept_transforms(d, kept) for d in datasets)
    return volume


def _axis_type(name: str) -> str:
    return {"t": "time", "c": "channel"}.get(name, "space")


def _letter(name: str, kind: str) -> str:
    if kind == "time":
        return "t"
    if kind == "channel":
        return "c"
    return name if name in ("z", "y", "x") else "z"


def _transform(dataset: dict[str, Any], ndim: int) -> tuple[list[float], list[float]]:
    """The ``scale`` and ``translation`` of an OME-Zarr dataset (ones and zeros if absent)."""
    scale, translation = [1.0] * ndim, [0.0] * ndim
    for t in dataset.get("coordinateTransformations") or []:
        if t.get("type") == "scale" and "scale" in t:
            scale = [float(v) for v in t["scale"]]
        elif t.get("type") == "translation" and "translation" in t:
            translation = [float(v) for v in t["translation"]]
    return scale, translation


def _kept_transforms(dataset: dict[str, Any], kept: list[int]) -> list[dict[str, Any]]:
    """The ``scale`` and ``translation`` transforms of an OME-Zarr dataset, over the axes
    ``kept`` (those of the volume read)."""
    kept_transforms = []
    for t in dataset.get("coordinateTransformations") or []:
        kind = t.get("type")
        if kind in ("scale", "translation") and kind in t:
            kept_transforms.append({"type": kind, kind: [float(t[kind][i]) for i in kept]})
    return kept_transforms


def _plain(data: LazyArray, attrs: Any, fmt: str, spacing: Any = None) -> ImageVolume:
    """A single array. Its spacing: ``spacing`` (N5 resolution), else the attributes
    ``spacing`` / ``origin`` / ``unit`` (the labels stores of :mod:`.stores`), else
    ``element_size_um`` (ilastik, Fiji HDF5), else 1."""
    attrs = dict(attrs) if attrs is not None else {}
    if data.ndim not in (2, 3, 4):
        raise ImageIOError(
            f"Expected a 2D image, a 3D volume or 4D data, got an array of shape {data.shape}."
        )
    unit = attrs.get("unit")
    if spacing is None:
        spacing = attrs.get("spacing")
    if spacing is None and "element_size_um" in attrs:
        spacing, unit = attrs["element_size_um"], "micron"
    if spacing is None or len(spacing) != data.ndim:
        spacing = (1.0,) * data.ndim
    origin = attrs.get("origin")
    if origin is None or len(origin) != data.ndim:
        origin = (0.0,) * data.ndim
    spacing, origin = tuple(float(s) for s in spacing), tuple(float(o) for o in origin)
    return ImageVolume(
        data,
        spacing,
        origin,
        format=fmt,
        unit=unit if isinstance(unit, str) else None,
        affine=stored_affine(attrs, spacing, origin),
        is_labels=attrs.get(LABELS_ATTR) is True,
    )


def stored_affine(attrs: Any, spacing: Sequence[float], origin: Sequence[float]) -> Any:
    """The voxel-to-world matrix a labels store of :mod:`.stores` keeps beside its spacing
    (:data:`AFFINE_ATTR`: the flips and rotations of the image it was made for, which the
    spacing / origin and OME-Zarr's scale / translation cannot hold), as a float array; None
    when there is none, or when it does not fit ``spacing`` and ``origin`` (a store another
    tool rescaled or moved: the standard metadata wins)."""
    import numpy as np

    from napari_adaptiveclick.io import geometry

    value = dict(attrs).get(AFFINE_ATTR) if attrs is not None else None
    n = len(spacing)
    try:
        affine = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if value is None or affine.shape != (n + 1, n + 1) or not np.isfinite(affine).all():
        return None
    if not np.allclose(geometry.steps(affine), spacing, rtol=1e-5, atol=1e-12):
        return None
    if not np.allclose(geometry.offset(affine), origin, rtol=1e-5, atol=1e-6):
        return None
    return affine


# ---------------------------------------------------------------------- N5 and HDF5
def _open_n5(root: Path, key: str) -> ImageVolume:
    """N5 through zarr-n5 (read-only): axes and ``resolution`` / ``pixelResolution`` reversed
    to napari order."""
    import zarr
    import zarr_n5
    from zarr.storage import LocalStore

    store = zarr_n5.ImplicitGroupWrapperStore(
        zarr_n5.N5WrapperStore(LocalStore(str(root), read_only=True))
    )
    node = zarr.open(store=store, mode="r", path=key) if key else zarr.open(store=store, mode="r")
    if not isinstance(node, zarr.Array):
        node = _only_array(node, root / key)
    attrs = node.attrs.asdict()
    resolution = attrs.get("resolution") or (attrs.get("pixelResolution") or {}).get("dimensions")
    spacing = tuple(resolution)[::-1] if resolution else None
    return _plain(LazyArray(node, reverse_axes=True), {}, "n5", spacing)


def _open_hdf5(root: Path, key: str) -> ImageVolume:
    """An HDF5 dataset (the file's only one when no key is given); the file stays open for
    reading while the volume is used."""
    import h5py

    handle = h5py.File(root, "r")
    if key:
        if key not in handle:
            raise ImageIOError(f"{root} has no dataset {key!r}; it holds {_h5_datasets(handle)}.")
        node = handle[key]
    else:
        names = _h5_datasets(handle)
        if len(names) != 1:
            raise ImageIOError(
                f"{root} holds {len(names)} datasets ({', '.join(names) or 'none'}); open one "
                f"of them, e.g. {root / (names[0] if names else 'NAME')}."
            )
        node = handle[names[0]]
    if not isinstance(node, h5py.Dataset):
        raise ImageIOError(f"{root}/{key} is an HDF5 group, not a dataset.")
    return _plain(LazyArray(node), node.attrs, "hdf5")


def _h5_datasets(handle: Any) -> list[str]:
    import h5py

    names: list[str] = []
    handle.visititems(
        lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
    )
    return names
