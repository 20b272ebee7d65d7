"""2D object samples for training and evaluation, built from the real dataset layouts.

Every dataset is a list of objects; an object is one bool mask on one 2D slice. Slices are
normalised to float32 [0, 1] with statistics of their WHOLE volume or stack
(:func:`~napari_adaptiveclick.interactive.transforms.intensity_stats`), so all slices of a volume look
alike, and each slice is kept once in memory; masks are stored as a bounding box and a crop.

Datasets (``build_dataset(name, root, split, ...)``; splits per SPEC.md section 5):

- ``sstem``: ``stack1/raw/NN.tif`` with ``stack1/{mitochondria,membranes,synapses}/NN.png``;
  objects are 4-connected components. Slices 00-15 train, 16-19 test.
- ``brats``: case folders with ``*_{flair,t1,t1ce,t2,seg}.nii.gz`` (BraTS 2017-2020 labels
  1/2/4) or ``*_{FLAIR,T1,T1C,T2,truth}.mha`` (BRATS 2012 labels 1 edema, 2 core); per
  slice the whole target region is one object (or its components). Split by case.
- ``brats2015``: the DeepMedic copies of BRATS 2015 cases: ``<case>/{Flair,T1c}_subtrMeanDivStd.nii.gz``
  (z-scored inside the brain) with ``OTMultiClass.nii.gz`` (1 necrosis, 2 edema, 3
  non-enhancing, 4 enhancing); whole tumour = any label > 0. All cases are training cases.
- ``oaizib``: ``images/*`` and ``segmentations/*`` (or ``labels/``) volumes with matching
  names; each non-zero label of a slice is one object. Split by volume.
- ``folder``: ``images/*`` and ``labels/*`` with matching names, 2D or 3D; labels are instance
  ids, or binary masks split into 4-connected components. Split by file.

Every layout or data problem raises :class:`DatasetError` while the dataset is built, i.e.
before any training starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from scipy import ndimage

from napari_adaptiveclick.interactive.transforms import (
    Box,
    IntensityStats,
    intensity_stats,
    normalize_intensity,
)
from napari_adaptiveclick.io.images import ImageIOError, ImageVolume, read_image, split_image_name

DATASET_NAMES: tuple[str, ...] = ("sstem", "brats", "brats2015", "oaizib", "folder")
SPLITS: tuple[str, ...] = ("train", "test", "all")
_SUBDIRS = {
    "sstem": "sstem-drosophila-vnc",
    "brats": "brats",
    "brats2015": "brats2015-deepmedic",
    "oaizib": "oai-zib",
}
_LABEL_DIRS = ("labels", "segmentations", "segmentation_masks", "masks")
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)

# SPEC.md section 5.
SSTEM_TEST_SLICES = range(16, 20)
BRATS_SPLIT_CASES = {
    "train": ("Brats18_2013_2_1", "Brats18_TCIA05_396_1"),
    "test": ("BRATS2012_HG0015",),
}
# ssTEM label folder, object tag and default min_area per kind (SOURCE.md of the data).
_SSTEM_KINDS = {
    "mitochondria": ("mitochondria", "mito", 0),
    "cells": ("membranes", "cell", 400),
    "synapses": ("synapses", "synapse", 0),
}
# BraTS label file suffix -> target -> label values. 2017-2020: 1 NCR/NET, 2 edema, 4 ET.
# BRATS 2012: 1 edema, 2 active tumour/core (no separate enhancing label).
_BRATS_TARGETS = {
    "seg": {"wt": (1, 2, 4), "tc": (1, 4), "et": (4,)},
    "truth": {"wt": (1, 2), "tc": (2,)},
}
# BRATS 2013/2015 (DeepMedic copies): 1 necrosis, 2 edema, 3 non-enhancing, 4 enhancing.
_BRATS2015_TARGETS = {"wt": (1, 2, 3, 4), "tc": (1, 3, 4), "et": (4,)}
_BRATS2015_MODALITIES = {"flair": "Flair", "t1c": "T1c", "t1ce": "T1c"}
_BRATS2015_LABELS = "OTMultiClass.nii.gz"
_BRATS_MODALITIES = {"flair": ("flair",), "t1": ("t1",), "t1ce": ("t1ce", "t1c"), "t2": ("t2",)}


class DatasetError(ValueError):
    """The data on disk does not fit the dataset layout or the options asked for."""


@dataclass(frozen=True)
class ObjectSample:
    """One object on one slice.

    ``image``: (H, W) float32 in [0, 1] (``(H, W, 3)`` for RGB files of a ``folder``
    dataset), normalised with its volume's statistics; read-only and shared by all objects of
    the slice. ``mask``: (H, W) bool. ``name``: unique, e.g. ``sstem/stack1/16.tif#mito-012``.
    ``group``: the volume, case or image it comes from.
    """

    image: np.ndarray
    mask: np.ndarray
    name: str
    group: str


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
        mask = np.zeros(piece.image.shape[:2], dtype=bool)
        b = obj.box
        mask[b.top : b.bottom, b.left : b.right] = obj.crop
        return ObjectSample(piece.image, mask, obj.name, piece.group)

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
        objects = [_Object(new_index[o.slice_index], o.box, o.crop, o.name) for o in chosen]
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


class _Collector:
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
    ) -> None:
        """Add the objects of one plane: every non-zero id of ``id_map`` (H, W) covering at
        least ``min_area`` pixels. The image is stored only if some object remains."""
        found = _objects_in(id_map, min_area)
        if not found:
            return
        normalised = normalize_intensity(image, stats)
        normalised.flags.writeable = False
        self.slices.append(_Slice(normalised, group))
        index = len(self.slices) - 1
        for value, box, crop in found:
            self.objects.append(_Object(index, box, crop, f"{source}#{tag}-{value:03d}"))

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
    ) -> None:
        """Add every plane of a 2D image or grey 3D volume with its labels (checked by
        :func:`_checked_labels`); 3D is sliced along ``axis`` (napari order), 2D ignores it.
        ``to_id_map`` turns a label plane into an object-id plane."""
        stats = _volume_stats(image.data, image.path)
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
        for plane_source, plane, label_plane in planes:
            self.add_plane(
                plane,
                stats,
                to_id_map(label_plane),
                source=plane_source,
                group=group,
                tag=tag,
                min_area=min_area,
            )

    def build(self, title: str) -> ObjectDataset:
        if not self.objects:
            raise DatasetError(
                f"No objects in {title}. Check the split and options (min_area may be too "
                "large, or the labels may be empty)."
            )
        return ObjectDataset(self.slices, self.objects, title)


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


def _components(mask: np.ndarray) -> np.ndarray:
    """4-connected components of a (H, W) bool mask, numbered 1.. in row-major order."""
    return ndimage.label(mask, structure=_FOUR_CONNECTED)[0]


def _checked_labels(image: ImageVolume, labels: ImageVolume) -> np.ndarray:
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


def _volume_stats(data: np.ndarray, source: Path | str | None) -> IntensityStats:
    """Intensity statistics of a whole volume or stack (raises if it is constant)."""
    lo, hi = intensity_stats(data)
    if not hi > lo:
        raise DatasetError(f"Image {source} is constant ({lo:g}): nothing to segment.")
    return lo, hi


def _read(path: Path) -> ImageVolume:
    try:
        return read_image(path)
    except (ImageIOError, FileNotFoundError) as err:
        raise DatasetError(str(err)) from err


# --- roots --------------------------------------------------------------------------------


def default_data_root() -> Path:
    """``$ADAPTIVECLICK_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("ADAPTIVECLICK_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def dataset_subdir(name: str) -> str | None:
    """Folder of dataset ``name`` inside the shared data root (None for ``folder``)."""
    _check_choice("dataset name", name, DATASET_NAMES)
    return _SUBDIRS.get(name)


def dataset_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """The dataset's own folder: ``root`` may be the shared data root (its subfolder for
    ``name`` is used when present) or the dataset folder itself; None means
    :func:`default_data_root`."""
    base = Path(root) if root is not None else default_data_root()
    subdir = dataset_subdir(name)
    if subdir and (base / subdir).is_dir():
        base = base / subdir
    if not base.is_dir():
        raise DatasetError(
            f"Data folder {base} does not exist. Pass the {name} folder or the shared data "
            "root (or set ADAPTIVECLICK_DATA)."
        )
    return base


def _check_choice(what: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise DatasetError(
            f"Unknown {what} {value!r}; choose one of {', '.join(map(repr, allowed))}."
        )


# --- build_dataset ---------------------------------------------------------------------------


def build_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    split: str = "train",
    *,
    axis: int | None = None,
    min_area: int | None = None,
    **options: Any,
) -> ObjectDataset:
    """Load the objects of dataset ``name`` (one of :data:`DATASET_NAMES`) for ``split``
    ("train", "test" or "all").

    ``axis``: slicing axis of 3D volumes in napari order (default 0; not used by ``sstem``).
    ``min_area``: drop objects with fewer pixels (default per dataset: sstem cells 400, brats
    50, otherwise 0). Options per dataset:

    - sstem: ``kind`` "mitochondria" (default), "cells" or "synapses".
    - brats: ``modality`` "flair" (default), "t1", "t1ce", "t2"; ``target`` "wt" (default),
      "tc", "et"; ``objects`` "slice" (default: the target on a slice is one object) or
      "components".
    - oaizib: ``labels`` label values to use (default all non-zero); ``split_file``;
      ``test_fraction``.
    - folder: ``split_file``; ``test_fraction`` (default 0.2).

    ``split_file`` is a JSON file ``{"train": [names], "test": [names]}`` naming images by
    file name without extension; without it the last ``test_fraction`` of the sorted names
    are the test split. Raises :class:`DatasetError` for any layout, data or option problem.
    """
    if name == "synthetic":
        from training.synthetic import SyntheticDataset

        if axis is not None or min_area is not None:
            raise DatasetError("axis and min_area do not apply to synthetic data.")
        return SyntheticDataset(split, **options)
    _check_choice("dataset name", name, DATASET_NAMES)
    _check_choice("split", split, SPLITS)
    builder, accepted = _BUILDERS[name]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DatasetError(
            f"Unknown option(s) {', '.join(unknown)} for dataset {name!r}; it accepts "
            f"{', '.join(accepted) or 'no options'}."
        )
    if min_area is not None and min_area < 0:
        raise DatasetError(f"min_area must be >= 0, got {min_area}.")
    return builder(dataset_root(name, root), split, axis, min_area, **options)


def _title(name: str, split: str, **settings: Any) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
    return f"{name} [split={split}{', ' + shown if shown else ''}]"


def _build_sstem(
    root: Path, split: str, axis: int | None, min_area: int | None, kind: str = "mitochondria"
) -> ObjectDataset:
    _check_choice("sstem kind", kind, _SSTEM_KINDS)
    if axis is not None:
        raise DatasetError("axis does not apply to sstem: its slices are separate 2D files.")
    label_dir, tag, default_area = _SSTEM_KINDS[kind]
    min_area = default_area if min_area is None else min_area
    stack = root / "stack1"
    raws = sorted((stack / "raw").glob("*.tif"))
    if not raws:
        raise DatasetError(f"Expected stack1/raw/*.tif under {root}.")
    if not all(p.stem.isdigit() for p in raws):
        raise DatasetError(f"Expected slice files named NN.tif in {stack / 'raw'}.")
    images = [_read(p) for p in raws]
    for image in images:
        if image.axes != "yx":
            raise DatasetError(f"Expected a 2D grey slice: {image.path} is {image.data.shape}.")
    stats = _volume_stats(np.stack([im.data for im in images]), stack / "raw")
    collector = _Collector()
    for image in images:
        number = int(image.path.stem)
        in_test = number in SSTEM_TEST_SLICES
        if split != "all" and in_test != (split == "test"):
            continue
        label_path = stack / label_dir / f"{image.path.stem}.png"
        foreground = _checked_labels(image, _read(label_path)) > 0
        id_map = _components(~foreground if kind == "cells" else foreground)
        collector.add_plane(
            image.data,
            stats,
            id_map,
            source=f"sstem/stack1/{image.path.name}",
            group="sstem/stack1",
            tag=tag,
            min_area=min_area,
        )
    return collector.build(_title("sstem", split, kind=kind, min_area=min_area))


def _build_brats(
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    modality: str = "flair",
    target: str = "wt",
    objects: str = "slice",
) -> ObjectDataset:
    _check_choice("brats modality", modality, _BRATS_MODALITIES)
    _check_choice("brats target", target, ("wt", "tc", "et"))
    _check_choice("brats objects", objects, ("slice", "components"))
    min_area = 50 if min_area is None else min_area
    if split == "all":
        cases = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    else:
        cases = [root / case for case in BRATS_SPLIT_CASES[split]]
        missing = [c.name for c in cases if not c.is_dir()]
        if missing:
            raise DatasetError(
                f"Expected case folder(s) {', '.join(missing)} under {root} for the {split!r} "
                "split (SPEC.md section 5)."
            )
    if not cases:
        raise DatasetError(f"Expected BraTS case folders under {root}.")
    plans = []  # check every case's files and labels before reading any volume
    for case in cases:
        label_path = _brats_file(case, tuple(_BRATS_TARGETS), "*_seg or *_truth")
        values = _BRATS_TARGETS[_suffix(label_path)].get(target)
        if values is None:
            raise DatasetError(
                f"Target {target!r} is not defined for BRATS 2012 labels ({label_path.name}: "
                "1 edema, 2 core); use target 'wt' or 'tc', or leave this case out."
            )
        image_path = _brats_file(case, _BRATS_MODALITIES[modality], f"*_{modality}")
        plans.append((case, image_path, label_path, values))

    collector = _Collector()
    for case, image_path, label_path, values in plans:
        image = _read(image_path)
        collector.add_volume(
            image,
            _checked_labels(image, _read(label_path)),
            _brats_id_maps(values, objects),
            axis=0 if axis is None else axis,
            source=f"brats/{case.name}/{image_path.name}",
            group=f"brats/{case.name}",
            tag=target,
            min_area=min_area,
        )
    return collector.build(
        _title(
            "brats",
            split,
            modality=modality,
            target=target,
            objects=objects,
            axis=axis,
            min_area=min_area,
        )
    )


def _brats_id_maps(values: tuple[int, ...], objects: str) -> Callable[[np.ndarray], np.ndarray]:
    """Object ids of a label plane: the target region as one object, or its components."""

    def to_id_map(plane: np.ndarray) -> np.ndarray:
        region = np.isin(plane, values)
        return _components(region) if objects == "components" else region.astype(np.uint8)

    return to_id_map


def _build_brats2015(
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    modality: str = "flair",
    target: str = "wt",
    objects: str = "slice",
) -> ObjectDataset:
    """BRATS 2015 cases in the DeepMedic layout (SOURCE.md of ``brats2015-deepmedic``). The
    images are z-scored inside the brain, so the volume statistics come from the brain
    (every voxel above the volume's minimum, which fills the outside) and the outside maps to
    0."""
    _check_choice("brats2015 modality", modality, _BRATS2015_MODALITIES)
    _check_choice("brats2015 target", target, _BRATS2015_TARGETS)
    _check_choice("brats2015 objects", objects, ("slice", "components"))
    if split == "test":
        raise DatasetError(
            "brats2015 has no test cases: all six are training cases (SPEC.md section 5); "
            "evaluate on the brats test split instead."
        )
    min_area = 50 if min_area is None else min_area
    cases = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    prefix = _BRATS2015_MODALITIES[modality]
    plans = []
    for case in cases:
        image_path = case / f"{prefix}_subtrMeanDivStd.nii.gz"
        label_path = case / _BRATS2015_LABELS
        missing = [p.name for p in (image_path, label_path) if not p.is_file()]
        if missing:
            raise DatasetError(
                f"Expected {', '.join(missing)} in {case} (the DeepMedic BRATS 2015 layout)."
            )
        plans.append((case, image_path, label_path))
    if not plans:
        raise DatasetError(f"Expected BRATS 2015 case folders under {root}.")
    collector = _Collector()
    for case, image_path, label_path in plans:
        image = _read(image_path)
        data = np.asarray(image.data, np.float32)
        brain = data > data.min()  # outside the brain, the z-scored copies hold one value
        if not brain.any():
            raise DatasetError(f"Image {image_path} is constant: nothing to segment.")
        lo, hi = intensity_stats(data[brain])
        data = np.where(brain, data, lo)
        collector.add_volume(
            dataclasses.replace(image, data=data),
            _checked_labels(image, _read(label_path)),
            _brats_id_maps(_BRATS2015_TARGETS[target], objects),
            axis=0 if axis is None else axis,
            source=f"brats2015/{case.name}/{image_path.name}",
            group=f"brats2015/{case.name}",
            tag=target,
            min_area=min_area,
        )
    return collector.build(
        _title(
            "brats2015",
            split,
            modality=modality,
            target=target,
            objects=objects,
            axis=axis,
            min_area=min_area,
        )
    )


def _stem(path: Path) -> str:
    """File name without its image extension (``a.nii.gz`` -> ``a``)."""
    return split_image_name(path)[0]


def _suffix(path: Path) -> str:
    """Lower-case last ``_`` part of the stem: ``Brats18_x_t1ce.nii.gz`` -> ``t1ce``."""
    return _stem(path).rsplit("_", 1)[-1].lower()


def _brats_file(case: Path, suffixes: tuple[str, ...], expected: str) -> Path:
    found = [p for p in _image_files(case) if _suffix(p) in suffixes]
    if len(found) != 1:
        problem = "found none" if not found else f"found {', '.join(p.name for p in found)}"
        raise DatasetError(f"Expected one {expected} image file in {case}; {problem}.")
    return found[0]


def _image_files(folder: Path) -> list[Path]:
    """Image files of ``folder`` with a readable extension (hidden files and the .raw/.zraw
    data files of .mhd headers skipped)."""
    return [
        path
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".") and split_image_name(path)[1]
    ]


def _pair_by_name(
    images: list[Path], labels: list[Path], label_dir: Path
) -> list[tuple[Path, Path]]:
    """Label file of each image: same name, or that name followed by a suffix after '.', '_'
    or '-' (``9001104.segmentation_masks.mhd``, ``case_seg.nii.gz``). Each label goes to the
    image with the longest matching name."""
    stems = {_stem(p): p for p in images}
    paired: dict[str, Path] = {}
    for label in labels:
        stem = _stem(label)
        owners = [s for s in stems if stem == s or (stem.startswith(s) and stem[len(s)] in "._-")]
        if not owners:
            continue
        owner = max(owners, key=len)
        if owner in paired:
            raise DatasetError(
                f"Two label files match image {stems[owner].name}: {paired[owner].name} and "
                f"{label.name}."
            )
        paired[owner] = label
    missing = [stems[s].name for s in stems if s not in paired]
    if missing:
        raise DatasetError(
            f"No label file in {label_dir} for {len(missing)} image(s): "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (expected the same "
            "name, e.g. images/a.tif -> labels/a.tif)."
        )
    return [(stems[s], paired[s]) for s in stems]


def _split_names(
    names: list[str], split: str, split_file: str | os.PathLike | None, test_fraction: float
) -> list[str]:
    """Names of ``split``: from a JSON ``{"train": [...], "test": [...]}`` file, or the last
    ``test_fraction`` of the sorted names as test (at least one, never all, when there are
    two or more)."""
    names = sorted(names)
    if split == "all":
        return names
    if split_file is not None:
        try:
            chosen = json.loads(Path(split_file).read_text())[split]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DatasetError(
                f"Cannot read the {split!r} list from split file {split_file} "
                f'(expected JSON {{"train": [...], "test": [...]}}): {err}'
            ) from err
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise DatasetError(
                f"Split file {split_file} names {', '.join(unknown[:5])}, not found among the "
                f"images ({', '.join(names[:5])}{' ...' if len(names) > 5 else ''})."
            )
        return [n for n in names if n in set(chosen)]
    if not 0.0 <= test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be in [0, 1), got {test_fraction}.")
    n_test = 0
    if test_fraction > 0.0 and len(names) >= 2:
        n_test = min(max(round(len(names) * test_fraction), 1), len(names) - 1)
    return names[len(names) - n_test :] if split == "test" else names[: len(names) - n_test]


def _paired_layout(root: Path, dataset: str) -> tuple[list[Path], list[Path], Path]:
    image_dir = root / "images"
    label_dir = next((root / d for d in _LABEL_DIRS if (root / d).is_dir()), None)
    if not image_dir.is_dir() or label_dir is None:
        raise DatasetError(
            f"Expected images/ and labels/ (or {', '.join(_LABEL_DIRS[1:])}) folders under "
            f"{root} for dataset {dataset!r}."
        )
    images, labels = _image_files(image_dir), _image_files(label_dir)
    if not images:
        raise DatasetError(f"Expected image files in {image_dir} (e.g. .tif, .nii.gz, .mhd).")
    return images, labels, label_dir


def _build_paired(
    dataset: str,
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    *,
    id_maps: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]],
    tag: str,
    split_file: str | os.PathLike | None,
    test_fraction: float,
    **settings: Any,
) -> ObjectDataset:
    """Datasets with ``images/`` and a label folder of matching names (oaizib, folder).
    ``id_maps(label_volume)`` returns the function giving a label plane's object ids."""
    images, labels, label_dir = _paired_layout(root, dataset)
    pairs = _pair_by_name(images, labels, label_dir)
    chosen = set(_split_names([_stem(p) for p, _ in pairs], split, split_file, test_fraction))
    min_area = 0 if min_area is None else min_area
    collector = _Collector()
    for image_path, label_path in pairs:
        if _stem(image_path) not in chosen:
            continue
        image = _read(image_path)
        label_data = _checked_labels(image, _read(label_path))
        collector.add_volume(
            image,
            label_data,
            id_maps(label_data),
            axis=0 if axis is None else axis,
            source=f"{dataset}/{image_path.name}",
            group=f"{dataset}/{_stem(image_path)}",
            tag=tag,
            min_area=min_area,
        )
    return collector.build(
        _title(
            dataset,
            split,
            axis=axis,
            min_area=min_area,
            split_file=split_file,
            test_fraction=None if split_file else test_fraction,
            **settings,
        )
    )


def _build_oaizib(
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    labels: Sequence[int] | None = None,
    split_file: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
) -> ObjectDataset:
    """Each non-zero label value (restricted to ``labels`` when given) of a slice is one
    object: OAI-ZIB femoral and tibial cartilage (SPEC.md section 4)."""
    keep = None if labels is None else tuple(sorted(int(v) for v in labels))

    def label_values(plane: np.ndarray) -> np.ndarray:
        return plane if keep is None else np.where(np.isin(plane, keep), plane, 0)

    return _build_paired(
        "oaizib",
        root,
        split,
        axis,
        min_area,
        id_maps=lambda volume: label_values,
        tag="label",
        split_file=split_file,
        test_fraction=test_fraction,
        labels=keep,
    )


def _build_folder(
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    split_file: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
) -> ObjectDataset:
    """Instance labels as they are; a binary label file (exactly 0 and one other value) is
    split into 4-connected components."""

    def id_maps(volume: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        foreground = volume[volume != 0]
        if foreground.size and np.all(foreground == foreground[0]):
            return lambda plane: _components(plane != 0)
        return lambda plane: plane

    return _build_paired(
        "folder",
        root,
        split,
        axis,
        min_area,
        id_maps=id_maps,
        tag="obj",
        split_file=split_file,
        test_fraction=test_fraction,
    )


_BUILDERS: dict[str, tuple[Callable[..., ObjectDataset], tuple[str, ...]]] = {
    "sstem": (_build_sstem, ("kind",)),
    "brats": (_build_brats, ("modality", "target", "objects")),
    "brats2015": (_build_brats2015, ("modality", "target", "objects")),
    "oaizib": (_build_oaizib, ("labels", "split_file", "test_fraction")),
    "folder": (_build_folder, ("split_file", "test_fraction")),
}
