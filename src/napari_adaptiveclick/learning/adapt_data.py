"""The user's objects for adaptation (:mod:`.adapt`): read and check an image and its labels,
turn them into objects, and hold part of them out.

The labels are instance ids: every 4-connected component of one id on one plane is one object
(the datasets' rule, :func:`.datasets.base.components`), zero is background. A 3D volume is
sliced along ``axis`` (napari order). Every problem raises :class:`AdaptInputError` with a
one-line message before any model is loaded or trained.

Hold-out (:func:`hold_out`): with objects on four planes or more, whole planes are held out,
spread evenly over the labelled planes (the adapted model is meant for the planes the user did
not label, and neighbouring slices of one object look alike); with fewer planes, a seeded
random share of the objects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_adaptiveclick.io.images import ImageVolume
from napari_adaptiveclick.learning.datasets.base import (
    Collector,
    DatasetError,
    ObjectDataset,
    checked_labels,
    read_volume,
    volume_stats,
)

OBJECT_TAG = "obj"


class AdaptInputError(ValueError):
    """The image, the labels or the adaptation settings cannot be used (a one-line message)."""


@dataclass(frozen=True)
class UserObject:
    """Where one object of the user's labels is: ``plane`` along the slicing axis (None for a
    2D image), its ``label_id``, ``area`` in pixels and ``box`` (top, left, bottom, right)."""

    name: str
    plane: int | None
    label_id: int
    area: int
    box: tuple[int, int, int, int]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "plane": self.plane,
            "label_id": self.label_id,
            "area": self.area,
            "box": list(self.box),
        }


@dataclass(frozen=True)
class UserObjects:
    """Every object found in the user's labels (``dataset`` and ``objects`` in the same
    order) and the components dropped for being smaller than ``min_area``."""

    dataset: ObjectDataset
    objects: tuple[UserObject, ...]
    too_small: int
    min_area: int
    axis: int | None

    @property
    def planes(self) -> list[int | None]:
        """The labelled planes, sorted (``[None]`` for a 2D image)."""
        return sorted({o.plane for o in self.objects}, key=lambda p: -1 if p is None else p)


@dataclass(frozen=True)
class HeldOut:
    """Which objects train (``train``) and which are held out (``held_out``), as indices into
    :attr:`UserObjects.objects`; ``measured``: the held-out objects that are measured (all of
    them up to ``max_measured``); ``by``: "planes" or "objects"."""

    train: tuple[int, ...]
    held_out: tuple[int, ...]
    measured: tuple[int, ...]
    by: str


def read_grey(path: str | Path, what: str) -> ImageVolume:
    """Read an image or labels file; an empty or unreadable file is an :class:`AdaptInputError`."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise AdaptInputError(f"{what} {path} is an empty file (0 bytes).")
    try:
        return read_volume(path)
    except (DatasetError, OSError) as err:
        raise AdaptInputError(f"{what}: {err}") from None


def as_volume(data: ImageVolume | np.ndarray) -> ImageVolume:
    """``data`` as an :class:`ImageVolume` (an array, e.g. a napari layer's, gets unit
    spacing and no file)."""
    if isinstance(data, ImageVolume):
        return data
    array = np.asarray(data)
    return ImageVolume(array, (1.0,) * array.ndim, (0.0,) * array.ndim)


def collect_objects(
    image: ImageVolume, labels: ImageVolume, *, axis: int = 0, min_area: int = 16
) -> UserObjects:
    """The objects of ``labels`` on ``image`` (a 2D grey image or a grey 3D volume).

    Image slices are normalised with the whole volume's intensity range, as the datasets do.
    Raises :class:`AdaptInputError` for RGB or 4D images, labels of another shape, labels that
    are not whole non-negative numbers, a constant image, or labels without any object of at
    least ``min_area`` pixels.
    """
    if image.axes not in ("yx", "zyx"):
        raise AdaptInputError(
            f"Adaptation needs a 2D grey image or a grey 3D volume; {_name(image, 'the image')} "
            f"has axes {image.axes!r} and shape {image.data.shape} ("
            + (
                "convert RGB images to grey)."
                if "c" in image.axes
                else "save the time point or channel you labelled as its own file)."
            )
        )
    if min_area < 1:
        raise AdaptInputError(f"min_area must be at least 1 pixel, got {min_area}.")
    if image.data.ndim == 3 and not -3 <= axis < 3:
        raise AdaptInputError(f"--axis must be 0, 1 or 2 for a 3D volume, got {axis}.")
    try:
        data = checked_labels(image, labels)
        stats = volume_stats(image.data, image.path)
    except DatasetError as err:
        raise AdaptInputError(str(err)) from None
    if not data.any():
        raise AdaptInputError(
            f"{_name(labels, 'The labels')} hold no objects (every value is 0): label or "
            "commit some objects first."
        )
    spatial_axis = None if data.ndim == 2 else axis % 3
    numbering = _Numbering()
    collector = Collector()
    collector.add_volume(
        image,
        data,
        numbering,
        axis=0 if spatial_axis is None else spatial_axis,
        source=Path(image.path).name if image.path else "image",
        group="user",
        tag=OBJECT_TAG,
        min_area=min_area,
        stats=stats,
    )
    if not collector.objects:
        raise AdaptInputError(
            f"{_name(labels, 'The labels')} hold {numbering.count} object(s), all smaller "
            f"than min_area = {min_area} pixels: label larger objects or lower --min-area."
        )
    dataset = collector.build("adaptation objects")
    objects = []
    for obj in collector.objects:
        number = int(obj.name.rsplit("-", 1)[1])
        plane, label_id = numbering.origin[number]
        box = (obj.box.top, obj.box.left, obj.box.bottom, obj.box.right)
        objects.append(
            UserObject(obj.name, None if spatial_axis is None else plane, label_id, obj.area, box)
        )
    return UserObjects(
        dataset, tuple(objects), numbering.count - len(objects), min_area, spatial_axis
    )


def _name(volume: ImageVolume, default: str) -> str:
    """How messages name an input: ``default`` and its file, if it has one."""
    return f"{default} {volume.path}" if volume.path else default


class _Numbering:
    """Label plane -> object-number plane: each 4-connected component of one id gets its own
    number, counted over the whole volume; ``origin[number]`` = (plane index, label id)."""

    def __init__(self) -> None:
        self.origin: dict[int, tuple[int, int]] = {}
        self.count = 0
        self.planes = 0

    def __call__(self, plane: np.ndarray) -> np.ndarray:
        from skimage.measure import label

        index = self.planes
        self.planes += 1
        numbers = np.zeros(plane.shape, np.int64)
        if not plane.any():
            return numbers
        # equal neighbouring values are connected: components of each id separately
        components, count = label(plane, background=0, connectivity=1, return_num=True)
        first = np.unique(components.ravel(), return_index=True)[1][1:]  # skip background 0
        ids = plane.ravel()[first]
        numbers[components > 0] = components[components > 0] + self.count
        for k, value in enumerate(ids, start=1):
            self.origin[self.count + k] = (index, int(value))
        self.count += count
        return numbers


def hold_out(
    objects: UserObjects, fraction: float = 0.25, max_measured: int = 40, seed: int = 0
) -> HeldOut:
    """Split the objects into training and held-out ones (see the module docstring).

    At least one object is held out and at least one trains, so two objects are needed.
    """
    n = len(objects.objects)
    if not 0.0 < fraction < 1.0:
        raise AdaptInputError(f"The held-out fraction must be between 0 and 1, got {fraction}.")
    if n < 2:
        raise AdaptInputError(
            "Adaptation needs at least 2 objects (one to train on, one held out to check "
            f"that it helps); the labels hold {n} of at least {objects.min_area} pixels."
        )
    planes = [p for p in objects.planes if p is not None]
    rng = np.random.default_rng(seed)
    if len(planes) >= 4:
        k = min(max(1, round(fraction * len(planes))), len(planes) - 1)
        chosen = {planes[int((j + 0.5) * len(planes) / k)] for j in range(k)}
        held = [i for i, o in enumerate(objects.objects) if o.plane in chosen]
        by = "planes"
    else:
        k = min(max(1, round(fraction * n)), n - 1)
        held = sorted(int(i) for i in rng.choice(n, size=k, replace=False))
        by = "objects"
    held_set = set(held)
    train = tuple(i for i in range(n) if i not in held_set)
    measured = held
    if len(held) > max_measured:
        measured = sorted(int(i) for i in rng.choice(held, size=max_measured, replace=False))
    return HeldOut(train, tuple(held), tuple(measured), by)


def describe_volume(volume: ImageVolume) -> dict:
    """Provenance of an input: its file and the file's SHA-256 (None for arrays made in
    memory), the SHA-256 of its array (dtype, shape and bytes), shape and dtype."""
    from napari_adaptiveclick.models.checkpoint import sha256sum

    data = np.ascontiguousarray(volume.data)
    digest = hashlib.sha256(f"{data.dtype.str}{data.shape}".encode())
    digest.update(data)
    path = volume.path
    return {
        "file": str(Path(path).resolve()) if path else None,
        "sha256": sha256sum(path) if path else None,
        "data_sha256": digest.hexdigest(),
        "shape": list(data.shape),
        "dtype": data.dtype.name,
    }
