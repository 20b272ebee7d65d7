"""Multiscale labels on disk: an OME-Zarr labels pyramid edited at full resolution.

The labels of a multiscale OME-Zarr image have the image's levels (its shapes and scale
transforms, :mod:`.stores`), so that a viewer shows the labels pyramid with the image
pyramid. :class:`LabelsPyramid` is the array that edits them: it reads level 0, and a write
goes to level 0 and to each coarser level in the box it covers there, never a whole level.
Each level is the one before it downsampled by nearest neighbour, so ids stay ids: along an
axis ``r`` times shorter, voxel ``j`` is voxel ``r * j + r // 2`` of the level before (the
voxel nearest the centre of its block), which is what ome-zarr's own labels writer gives
(``ome_zarr.writer.write_labels``, ``Methods.NEAREST``: skimage's order-0 resize, level by
level). So every voxel of a level is one voxel of level 0 (:func:`level_voxels`), written
exactly when that voxel is, from the values just written: an edit reads nothing back.

Levels are :class:`~.lazy.LazyArray` views (zarr does the chunk work); the pyramid itself is
an array-like (``shape``, ``dtype``, ``chunks``; integers and slices, and napari's coordinate
index, a tuple of one integer array per axis), so that it can be the source of a
:class:`~.lazy.LazyArray` and the data of a napari Labels layer: napari's brush, fill,
polygon, eraser, ``data_setitem`` and its undo and redo all write ``layer.data[key] = values``
with such keys, so every one of them keeps the coarser levels in step as it writes.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_adaptiveclick.io.lazy import ArrayShape, LazyArray
from napari_adaptiveclick.io.volume import ImageIOError


def level_factors(base: Sequence[int], level: Sequence[int]) -> tuple[int, ...]:
    """The whole factor of each axis from a level of shape ``base`` to the next, of shape
    ``level``: ``round(base / level)``; ImageIOError when ``level`` is not such a
    downsampling (along each axis ``ceil(base / f)`` or one less)."""
    factors = []
    for n, m in zip(base, level, strict=True):
        f = max(1, round(n / m)) if m else 0
        if not m or not math.ceil(n / f) - 1 <= m <= math.ceil(n / f):
            raise ImageIOError(
                f"A labels level of shape {tuple(level)} is not a whole-factor downsampling of "
                f"{tuple(base)}; write the labels pyramid with integer factors (e.g. 2)."
            )
        factors.append(f)
    return tuple(factors)


def level_voxels(shapes: Sequence[Sequence[int]]) -> list[list[np.ndarray]]:
    """For each level of a pyramid of ``shapes`` (full resolution first) and each axis, the
    level-0 index of each of its voxels along that axis (increasing; see the module
    docstring); ImageIOError for levels that are not whole-factor downsamplings."""
    voxels = [[np.arange(n) for n in shapes[0]]]
    for before, shape in zip(shapes[:-1], shapes[1:], strict=True):
        factors = level_factors(before, shape)
        voxels.append(
            [
                index[np.minimum(np.arange(n) * r + r // 2, len(index) - 1)]
                for index, n, r in zip(voxels[-1], shape, factors, strict=True)
            ]
        )
    return voxels


class LabelsPyramid(ArrayShape):
    """The levels of a labels pyramid (``levels``: writable views, full resolution first,
    same axes) as one full-resolution array: reads come from level 0; ``pyramid[key] =
    values`` (integers and unit-step slices) writes level 0 and the same box of each coarser
    level (see the module docstring)."""

    def __init__(self, levels: Sequence[Any]) -> None:
        if not levels:
            raise ImageIOError("A labels pyramid needs at least one level.")
        self.levels = tuple(levels)
        self.voxels = level_voxels([tuple(level.shape) for level in self.levels])

    # ------------------------------------------------------------------ array protocol
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.levels[0].shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.levels[0].dtype)

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(self.levels[0].chunks)

    @property
    def fill_value(self) -> Any:
        return getattr(getattr(self.levels[0], "source", self.levels[0]), "fill_value", 0)

    @property
    def nchunks_initialized(self) -> int | None:
        """Chunks stored at full resolution (None when the store cannot tell)."""
        return getattr(
            getattr(self.levels[0], "source", self.levels[0]), "nchunks_initialized", None
        )

    def __getitem__(self, key: Any) -> np.ndarray:
        points = self._points(key)
        if points is not None:  # napari's fancy index: the zarr array's coordinate selection
            return np.asarray(_array(self.levels[0])[points])
        return np.asarray(self.levels[0][key])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """All of level 0 (what a writer to one file, e.g. NIfTI, reads of a layer)."""
        data = np.asarray(self.levels[0])
        return data if dtype is None else data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(level.shape)) for level in self.levels)
        return f"LabelsPyramid({len(self.levels)} levels: {shapes}, dtype={self.dtype})"

    # ------------------------------------------------------------------ writing
    def __setitem__(self, key: Any, values: Any) -> None:
        points = self._points(key)
        if points is not None:
            self._set_points(points, values)
            return
        key = self._full_key(key)
        bounds = [self._range(item, n) for item, n in zip(key, self.shape, strict=True)]
        box = tuple(hi - lo for lo, hi in bounds)
        kept = tuple(n for item, n in zip(key, box, strict=True) if isinstance(item, slice))
        values = np.broadcast_to(np.asarray(values, dtype=self.dtype), kept)
        self.levels[0][key] = values
        values = values.reshape(box)  # integer axes back, of length 1
        for level, voxels in zip(self.levels[1:], self.voxels[1:], strict=True):
            target, picks = [], []
            for (lo, hi), index in zip(bounds, voxels, strict=True):
                start, stop = np.searchsorted(index, lo), np.searchsorted(index, hi)
                target.append(slice(int(start), int(stop)))  # the voxels taken from the box
                picks.append(index[start:stop] - lo)
            if all(t.stop > t.start for t in target):  # else none of this level is in it
                level[tuple(target)] = values[np.ix_(*picks)]

    def _set_points(self, points: tuple[np.ndarray, ...], values: Any) -> None:
        """Write ``values`` at the voxels ``points`` (one index array per axis) of level 0,
        and at those of them that a coarser level samples (its :func:`level_voxels`) there."""
        values = np.broadcast_to(np.asarray(values, dtype=self.dtype), points[0].shape).ravel()
        points = tuple(p.ravel() for p in points)
        if not values.size:
            return
        _array(self.levels[0])[points] = values
        for level, voxels in zip(self.levels[1:], self.voxels[1:], strict=True):
            at = [np.searchsorted(index, p) for p, index in zip(points, voxels, strict=True)]
            kept = np.ones(values.size, bool)
            for i, p, index in zip(at, points, voxels, strict=True):
                kept &= index[np.minimum(i, len(index) - 1)] == p
            if kept.any():
                _array(level)[tuple(i[kept] for i in at)] = values[kept]

    def _points(self, key: Any) -> tuple[np.ndarray, ...] | None:
        """The voxels of a coordinate index (a tuple of one integer array or integer per
        axis, at least one an array), broadcast together and made non-negative; None for
        any other key. IndexError for voxels outside the pyramid."""
        if not isinstance(key, tuple) or len(key) != self.ndim:
            return None
        if not any(isinstance(item, np.ndarray | list) for item in key):
            return None
        arrays = [np.asarray(item) for item in key]
        if not all(np.issubdtype(a.dtype, np.integer) for a in arrays):
            return None
        points = []
        for a, n in zip(np.broadcast_arrays(*arrays), self.shape, strict=True):
            if a.size and not (-n <= a.min() and a.max() < n):
                raise IndexError(f"an index is out of bounds for an axis of size {n}")
            points.append(a % n)
        return tuple(points)

    def _full_key(self, key: Any) -> tuple:
        """``key`` with Ellipsis expanded and trailing axes added."""
        key = key if isinstance(key, tuple) else (key,)
        at = next((i for i, item in enumerate(key) if item is Ellipsis), None)
        if at is not None:
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1 :]
        return key + (slice(None),) * (self.ndim - len(key))

    @staticmethod
    def _range(item: Any, n: int) -> tuple[int, int]:
        """The ``[lo, hi)`` an integer or unit-step slice ``item`` writes of an axis of
        ``n``; IndexError for anything else (no fancy indexing: a box is written)."""
        if isinstance(item, slice):
            lo, hi, step = item.indices(n)
            if step != 1:
                raise IndexError(f"Write labels with unit-step slices, got {item!r}.")
            return lo, max(lo, hi)
        try:
            index = operator.index(item)
        except TypeError:
            raise IndexError(f"Write labels with integers and slices, got {item!r}.") from None
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of bounds for an axis of size {n}")
        return index % n, index % n + 1


def _array(level: Any) -> Any:
    """The array behind a level (for coordinate indexing, which a view reads as a whole):
    the source of a view of all of it, else the level itself."""
    if isinstance(level, LazyArray) and not level.reverse_axes:
        if level.shape == tuple(level.source.shape):
            return level.source
    return level
