"""What every dataset layout builds on: object samples, the object dataset, and the collector
that turns image planes and label planes into objects.

Slices are normalised to float32 [0, 1] with statistics of their WHOLE volume or stack
(:func:`~napari_adaptiveclick.interactive.transforms.intensity_stats`), so all slices of a
volume look alike, and each slice is kept once in memory; masks are stored as a bounding box
and a crop.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from scipy import ndimage

from napari_adaptiveclick.interactive.boxed import bounding_box, box_slices
from napari_adaptiveclick.interactive.transforms import (
    Box,
    IntensityStats,
    intensity_stats,
    normalize_intensity,
)
from napari_adaptiveclick.io.images import ImageIOError, ImageVolume, read_image, split_image_name

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


class DatasetError(ValueError):
    """The data on disk does not fit the dataset layout or the options asked for."""


@dataclass(frozen=True)
class ObjectSample:
    """One object on one slice.

    ``image``: (H, W) float32 in [0, 1] (``(H, W, 3)`` for RGB files of a ``folder``
    dataset), normalised with its volume's statistics; read-only and shared by all objects of
    the slice. ``mask``: (H, W) bool. ``name``: unique, e.g. ``sstem/stack1/16.tif#mito-012``.
    ``group``: the volume, case or image it comes from. ``neighbours``: the same object's
    (H, W) bool masks on the adjacent planes of its volume where it is there too (empty
    unless the dataset follows objects across planes: :meth:`Collector.add_volume`'s
    ``follow``); training prompts a slice with them as propagation does.
    """

    image: np.ndarray
    mask: np.ndarray
    name: str
    group: str
    neighbours: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class _Slice:
    image: np.ndarray  # normalised, read-only
    group: str


@dataclass(frozen=True)
class _Object:
    slice_index: int
    box: Box
    crop: np.ndarray  # (box.height, box.width) bool
    name: str
    near: tuple[tuple[Box, np.ndarray], ...] = ()  # the object on the adjacent planes

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.crop))


class ObjectDataset(Sequence[ObjectSample]):
    """Objects of a dataset split; ``dataset[i]`` builds the i-th :class:`ObjectSample`."""

    def __init__(self, slices: list[_Slice], objects: list[_Object], title: str) -> None:
        self._slices = slices
        self._objects = objects
        self.title = title

    def __len__(self) -> int:
        return len(self._objects)

    @overload
    def __getitem__(self, index: int) -> ObjectSample: ...

    @overload
    def __getitem__(self, index: slice) -> ObjectDataset: ...

    def __getitem__(self, index: int | slice) -> ObjectSample | ObjectDataset:
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        obj = self._objects[index]  # IndexError ends iteration, as Sequence expects
        piece = self._slices[obj.slice_index]
        shape = piece.image.shape[:2]
        neighbours = tuple(_full_mask(shape, box, crop) for box, crop in obj.near)
        return ObjectSample(
            piece.image, _full_mask(shape, obj.box, obj.crop), obj.name, piece.group, neighbours
        )

    @property
    def names(self) -> list[str]:
        return [obj.name for obj in self._objects]

    @property
    def areas(self) -> np.ndarray:
        """(N,) int64 pixel count of each object's mask, in dataset order."""
        return np.array([obj.area for obj in self._objects], dtype=np.int64)

    @property
    def groups(self) -> list[str]:
        """Group of each object, in dataset order."""
        return [self._slices[obj.slice_index].group for obj in self._objects]

    def subset(self, indices: Iterable[int]) -> ObjectDataset:
        """The objects at ``indices`` (in that order); keeps only the slices they use."""
        chosen = [self._objects[int(i)] for i in indices]
        new_index: dict[int, int] = {}
        for obj in chosen:
            new_index.setdefault(obj.slice_index, len(new_index))
        slices = [self._slices[old] for old in new_index]
        objects = [dataclasses.replace(o, slice_index=new_index[o.slice_index]) for o in chosen]
        return ObjectDataset(slices, objects, self.title)

    def random_subset(self, n: int, seed: int = 0) -> ObjectDataset:
        """``n`` objects drawn without replacement (all of them if ``n >= len``), kept in
        dataset order; the same ``seed`` gives the same subset."""
        if n < 0:
            raise ValueError(f"random_subset needs n >= 0, got {n}.")
        if n >= len(self):
            return self.subset(range(len(self)))
        picks = np.random.default_rng(seed).choice(len(self), size=n, replace=False)
        return self.subset(np.sort(picks))

    def describe(self) -> str:
        """A few lines: counts, object areas, slice shapes and objects per group."""
        if not self._objects:
            return f"{self.title}: empty"
        areas = self.areas
        shapes = Counter("x".join(map(str, s.image.shape)) for s in self._slices)
        per_group = Counter(self.groups)
        listed = ", ".join(f"{g} ({n})" for g, n in list(per_group.items())[:6])
        more = f", ... {len(per_group) - 6} more" if len(per_group) > 6 else ""
        return "\n".join(
            [
                f"{self.title}: {len(self)} objects on {len(self._slices)} slices "
                f"from {len(per_group)} group(s)",
                f"  object area px: min {areas.min()}, median {int(np.median(areas))}, "
                f"max {areas.max()}",
                "  slice shapes: " + ", ".join(f"{s} ({n})" for s, n in shapes.most_common()),
                f"  groups: {listed}{more}",
            ]
        )


class Collector:
    """Accumulates normalised slices and the objects found on them."""

    def __init__(self) -> None:
        self.slices: list[_Slice] = []
        self.objects: list[_Object] = []

    def add_plane(
        self,
        image: np.ndarray,
        stats: IntensityStats,
        id_map: np.ndarray,
        *,
        source: str,
        group: str,
        tag: str,
        min_area: int,
        near_maps: tuple[np.ndarray, ...] = (),
    ) -> None:
        """Add the objects of one plane: every non-zero id of ``id_map`` (H, W) covering at
        least ``min_area`` pixels. The image is stored only if some object remains.
        ``near_maps``: the id maps of the adjacent planes, where an id is the same object
        (its masks there become the objects' ``neighbours``)."""
        found = _objects_in(id_map, min_area)
        if not found:
            return
        normalised = normalize_intensity(image, stats)
        normalised.flags.writeable = False
        self.slices.append(_Slice(normalised, group))
        index = len(self.slices) - 1
        for value, box, crop in found:
            near = []
            for near_map in near_maps:
                there = near_map == value
                if there.any():
                    near_box = bounding_box(there)
                    near.append((near_box, there[box_slices(near_box)].copy()))
            name = f"{source}#{tag}-{value:03d}"
            self.objects.append(_Object(index, box, crop, name, tuple(near)))

    def add_volume(
        self,
        image: ImageVolume,
        labels: np.ndarray,
        to_id_map: Callable[[np.ndarray], np.ndarray],
        *,
        axis: int,
        source: str,
        group: str,
        tag: str,
        min_area: int,
        stats: IntensityStats | None = None,
        follow: bool = False,
    ) -> None:
        """Add every plane of a 2D image or grey 3D volume with its labels (checked by
        :func:`checked_labels`); 3D is sliced along ``axis`` (napari order), 2D ignores it.
        ``to_id_map`` turns a label plane into an object-id plane. ``stats``: the intensity
        range to normalise with (default: the whole volume's). ``follow``: an id is the same
        object on every plane (e.g. a tumour region, not per-plane components), so each
        object also keeps its masks on the adjacent planes (``ObjectSample.neighbours``)."""
        stats = volume_stats(image.data, image.path) if stats is None else stats
        if len(image.spatial_shape) == 2:
            planes = [(source, image.data, labels)]
        else:
            if not -3 <= axis < 3:
                raise DatasetError(
                    f"axis must be 0, 1 or 2 for the 3D volume {image.path}, got {axis}."
                )
            letter = "zyx"[axis]
            pairs = zip(np.moveaxis(image.data, axis, 0), np.moveaxis(labels, axis, 0), strict=True)
            planes = [(f"{source}@{letter}={i}", im, lab) for i, (im, lab) in enumerate(pairs)]
        # followed objects need the neighbours' id maps: all of them, else one at a time
        id_maps = [to_id_map(label_plane) for _, _, label_plane in planes] if follow else None
        for i, (plane_source, plane, label_plane) in enumerate(planes):
            near = [id_maps[j] for j in (i - 1, i + 1) if 0 <= j < len(planes)] if follow else []
            self.add_plane(
                plane,
                stats,
                id_maps[i] if follow else to_id_map(label_plane),
                source=plane_source,
                group=group,
                tag=tag,
                min_area=min_area,
                near_maps=tuple(near),
            )

    def build(self, title: str) -> ObjectDataset:
        if not self.objects:
            raise DatasetError(
                f"No objects in {title}. Check the split and options (min_area may be too "
                "large, or the labels may be empty)."
            )
        return ObjectDataset(self.slices, self.objects, title)


def _full_mask(shape: tuple[int, int], box: Box, crop: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[box.top : box.bottom, box.left : box.right] = crop
    return mask


def _objects_in(id_map: np.ndarray, min_area: int) -> list[tuple[int, Box, np.ndarray]]:
    """(id value, bounding box, bool crop) for each non-zero id of a (H, W) map, if its area
    is at least ``min_area``."""
    from skimage.segmentation import relabel_sequential

    if not id_map.any():
        return []
    if id_map.dtype == bool:
        id_map = id_map.view(np.uint8)
    sequential, _, inverse = relabel_sequential(id_map)
    found = []
    for index, window in enumerate(ndimage.find_objects(sequential), start=1):
        if window is None:
            continue
        crop = sequential[window] == index
        if np.count_nonzero(crop) >= max(min_area, 1):
            rows, cols = window
            box = Box(rows.start, cols.start, rows.stop, cols.stop)
            found.append((int(inverse[index]), box, crop))
    return found


def components(mask: np.ndarray) -> np.ndarray:
    """4-connected components of a (H, W) bool mask, numbered 1.. in row-major order."""
    return ndimage.label(mask, structure=_FOUR_CONNECTED)[0]


def checked_labels(image: ImageVolume, labels: ImageVolume) -> np.ndarray:
    """The label array of ``labels`` as non-negative integers, after checking that it fits
    ``image``. Float files holding whole numbers (some NIfTI exports) are accepted."""
    if image.axes not in ("yx", "yxc", "zyx") or labels.axes not in ("yx", "zyx"):
        raise DatasetError(
            "Expected a 2D image, a 2D RGB image or a grey 3D volume, with grey labels; "
            f"{image.path} has axes {image.axes!r} {image.data.shape}, {labels.path} has "
            f"axes {labels.axes!r} {labels.data.shape}."
        )
    if image.spatial_shape != labels.data.shape:
        raise DatasetError(
            f"Image and labels differ in shape: {image.path} is {image.spatial_shape}, "
            f"{labels.path} is {labels.data.shape}."
        )
    data = labels.data
    if data.dtype.kind == "f" and np.array_equal(data, np.round(data)):
        data = data.astype(np.int64)
    if data.dtype.kind not in "biu":
        raise DatasetError(
            f"Labels must be whole numbers: {labels.path} has dtype {labels.data.dtype} with "
            "fractional or non-finite values."
        )
    if data.size and data.min() < 0:
        raise DatasetError(f"Labels must be >= 0: {labels.path} holds {data.min()}.")
    return data


def volume_stats(data: np.ndarray, source: Path | str | None) -> IntensityStats:
    """Intensity statistics of a whole volume or stack (raises if it is constant)."""
    lo, hi = intensity_stats(data)
    if not hi > lo:
        raise DatasetError(f"Image {source} is constant ({lo:g}): nothing to segment.")
    return lo, hi


def read_volume(path: Path) -> ImageVolume:
    """:func:`~napari_adaptiveclick.io.images.read_image`, its errors as :class:`DatasetError`."""
    try:
        return read_image(path)
    except (ImageIOError, FileNotFoundError) as err:
        raise DatasetError(str(err)) from err


def check_choice(what: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise :class:`DatasetError` naming the choices unless ``value`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise DatasetError(
            f"Unknown {what} {value!r}; choose one of {', '.join(map(repr, allowed))}."
        )


def dataset_title(name: str, split: str, **settings: Any) -> str:
    """``name [split=..., key=value, ...]`` with the settings that are not None."""
    shown = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
    return f"{name} [split={split}{', ' + shown if shown else ''}]"


def file_stem(path: Path) -> str:
    """File name without its image extension (``a.nii.gz`` -> ``a``)."""
    return split_image_name(path)[0]


def image_files(folder: Path) -> list[Path]:
    """Image files of ``folder`` with a readable extension (hidden files and the .raw/.zraw
    data files of .mhd headers skipped)."""
    return [
        path
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".") and split_image_name(path)[1]
    ]
