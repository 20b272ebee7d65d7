"""Lazy views of chunked arrays: index a 16 GiB volume and read only the crop asked for.

A :class:`LazyArray` wraps an array that reads what it is indexed with and no more (a zarr
array, an N5 array opened through zarr, an HDF5 dataset, a dask array, a numpy memmap):
indexing it with integers and slices gives another view and reads nothing; ``np.asarray``
reads the view (the chunk libraries decompress only the chunks it touches). So a plane of a
volume can be handed around as ``volume[plane]`` and a click reads only its focus crop. A view
of a writable source (a zarr labels store) also writes through: ``view[box] = values``.

:func:`sample_values` reads a bounded, chunk-aligned sample for volume-wide intensity
statistics, never the whole volume.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

# One entry per axis of the source: an int (axis dropped) or a (start, stop) range.
_Entry = int | tuple[int, int]


def is_lazy(array: Any) -> bool:
    """True for an array-like that is not held in memory (anything but a numpy array)."""
    return not isinstance(array, np.ndarray) and hasattr(array, "shape")


def as_array(array: Any, writable: bool = False) -> np.ndarray | LazyArray:
    """``array`` as numpy (in memory) or as a :class:`LazyArray` (zarr, h5py, dask, ...)."""
    if isinstance(array, np.ndarray | LazyArray):
        return array
    return LazyArray(array, writable=writable) if is_lazy(array) else np.asarray(array)


def _slabs(array: Any) -> Any:
    """``array`` read in slabs of its chunk thickness along the first axis (numpy: whole);
    a zarr array without stored chunks reads as nothing but its fill value, at once."""
    if isinstance(array, np.ndarray):
        yield array
        return
    source = array.source if isinstance(array, LazyArray) else array
    if getattr(source, "nchunks_initialized", None) == 0:
        yield np.full((1,), source.fill_value or 0, np.dtype(array.dtype))
        return
    step = max(1, int(array.chunks[0]) if isinstance(array, LazyArray) else 1)
    for start in range(0, int(array.shape[0]), step):
        yield np.asarray(array[start : start + step])


def max_value(array: Any) -> int:
    """The largest value of an integer array (0 for an empty one), slab by slab."""
    return max((int(s.max()) for s in _slabs(array) if s.size), default=0)


def contains(array: Any, value: int) -> bool:
    """True when ``array`` holds ``value`` somewhere (slab by slab, stops at the first)."""
    return any(bool((s == value).any()) for s in _slabs(array))


def held_values(array: np.ndarray) -> np.ndarray:
    """The sorted values an array in memory holds, in one pass (counted for small unsigned
    types, sorted otherwise)."""
    flat = np.asarray(array).ravel()
    if flat.dtype.kind == "u" and flat.dtype.itemsize <= 2:
        return np.flatnonzero(np.bincount(flat))
    return np.unique(flat)


class ArrayShape:
    """What an array-like derives from its ``shape`` and ``dtype``: ``ndim``, ``size``,
    ``nbytes`` and ``len`` (shared by :class:`LazyArray` and the labels pyramid)."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]


class LazyArray(ArrayShape):
    """A view of ``source`` (zarr, h5py, dask or numpy array) that reads nothing until
    ``np.asarray``.

    ``reverse_axes``: the source stores its axes fastest first (N5 through zarr): the view's
    axes are the source's reversed, so it is in C (napari) order. ``writable``: views accept
    ``view[key] = values`` (written to the source at once).
    """

    def __init__(
        self,
        source: Any,
        *,
        reverse_axes: bool = False,
        writable: bool = False,
        _key: tuple[_Entry, ...] | None = None,
    ) -> None:
        if isinstance(source, LazyArray):
            raise TypeError("LazyArray of a LazyArray: index the view instead.")
        self.source, self.reverse_axes, self.writable = source, reverse_axes, writable
        shape = tuple(int(n) for n in source.shape)
        self._key = (
            _key if _key is not None else tuple((0, n) for n in shape[:: -1 if reverse_axes else 1])
        )

    # ------------------------------------------------------------------ array protocol
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(e[1] - e[0] for e in self._key if isinstance(e, tuple))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.source.dtype)

    @property
    def chunks(self) -> tuple[int, ...]:
        """The source's chunk shape along the view's axes (the whole axis when unchunked)."""
        chunks = _chunk_shape(self.source)
        if self.reverse_axes:
            chunks = chunks[::-1]
        return tuple(
            min(c, e[1] - e[0])
            for c, e in zip(chunks, self._key, strict=True)
            if isinstance(e, tuple)
        )

    def __repr__(self) -> str:
        return f"LazyArray(shape={self.shape}, dtype={self.dtype}, source={type(self.source).__name__})"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self.source[self._source_key()]
        if hasattr(data, "compute"):  # dask
            data = data.compute()
        data = np.asarray(data)
        if self.reverse_axes:
            data = data.transpose()
        return data if dtype is None else data.astype(dtype, copy=False)

    def read(self) -> np.ndarray:
        """The view's values, read now."""
        return np.asarray(self)

    def __getitem__(self, key: Any) -> LazyArray | np.ndarray | Any:
        """Integers and slices (step 1) give a view; anything else reads the view first."""
        composed = self._compose(key)
        if composed is None:
            return np.asarray(self)[key]
        view = LazyArray(
            self.source, reverse_axes=self.reverse_axes, writable=self.writable, _key=composed
        )
        return view if view.ndim else np.asarray(view)[()]

    def __setitem__(self, key: Any, values: Any) -> None:
        if not self.writable:
            raise TypeError("This view is read-only (the image); labels stores are writable.")
        composed = self._compose(key)
        if composed is None:
            raise IndexError(f"Write with integers and slices only, got {key!r}.")
        view = LazyArray(self.source, reverse_axes=self.reverse_axes, _key=composed)
        values = np.broadcast_to(np.asarray(values, dtype=self.dtype), view.shape)
        source_key = view._source_key()
        self.source[source_key] = values.transpose() if self.reverse_axes else values

    # ------------------------------------------------------------------ indexing
    def _source_key(self) -> tuple:
        key = tuple(e if isinstance(e, int) else slice(*e) for e in self._key)
        return key[::-1] if self.reverse_axes else key

    def _compose(self, key: Any) -> tuple[_Entry, ...] | None:
        """The source key of ``self[key]``; None when ``key`` is not integers and unit-step
        slices (and Ellipsis). Raises IndexError for integers out of range."""
        key = key if isinstance(key, tuple) else (key,)
        if key.count(Ellipsis) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        if Ellipsis in key:
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1 :]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices: view is {self.ndim}-dimensional, got {len(key)}")
        key = key + (slice(None),) * (self.ndim - len(key))
        out: list[_Entry] = []
        ranges = iter(key)
        for entry in self._key:
            if isinstance(entry, int):
                out.append(entry)
                continue
            start, stop = entry
            item = next(ranges)
            if isinstance(item, slice):
                lo, hi, step = item.indices(stop - start)
                if step != 1:
                    return None
                out.append((start + lo, start + max(lo, hi)))
                continue
            try:
                index = operator.index(item)
            except TypeError:
                return None  # arrays, masks, None: not a view
            length = stop - start
            if not -length <= index < length:
                raise IndexError(f"index {index} is out of bounds for an axis of size {length}")
            out.append(start + index % length)
        return tuple(out)


def _chunk_shape(source: Any) -> tuple[int, ...]:
    """The chunk shape of a zarr / h5py / dask array (its shape when it has none)."""
    shape = tuple(int(n) for n in source.shape)
    chunks = getattr(source, "chunks", None)
    if chunks is None:
        return shape
    if chunks and isinstance(chunks[0], tuple):  # dask: chunk sizes per axis
        return tuple(int(c[0]) if c else 0 for c in chunks)
    return tuple(int(c) for c in chunks)


def sample_values(
    array: Any, max_values: int = 2_000_000, max_blocks: int = 48, seed: int = 0
) -> np.ndarray:
    """About ``max_values`` values of ``array`` (1D, its dtype) read from at most
    ``max_blocks`` chunk-aligned blocks spread over it (each block at most one chunk, so a
    block decompresses one chunk), chosen with a seeded generator: deterministic, and the same
    cost whatever the volume's size. An array of at most ``max_values`` values is read whole.
    """
    shape = tuple(int(n) for n in array.shape)
    size = math.prod(shape)
    if size == 0:
        return np.zeros(0, np.dtype(array.dtype))
    if size <= max_values:
        return np.asarray(array[...]).reshape(-1)
    chunks = array.chunks if isinstance(array, LazyArray) else _chunk_shape(array)
    per_block = max(1, max_values // max_blocks)
    block = list(max(1, min(c, n)) for c, n in zip(chunks, shape, strict=True))
    for axis in range(len(block)):  # shrink the leading axes first, down to one value each
        while math.prod(block) > per_block and block[axis] > 1:
            block[axis] = max(1, block[axis] // 2)
    grid = [math.ceil(n / c) for n, c in zip(shape, chunks, strict=True)]
    rng = np.random.default_rng(seed)
    count = min(max_blocks, math.prod(grid))
    flat = rng.choice(math.prod(grid), size=count, replace=False)
    values = []
    corners = np.stack(np.unravel_index(np.sort(flat), grid), axis=1) * np.asarray(chunks)
    for corner in corners:
        key = tuple(
            slice(int(c), min(int(c) + b, n)) for c, b, n in zip(corner, block, shape, strict=True)
        )
        values.append(np.asarray(array[key]).reshape(-1))
    return np.concatenate(values)
