"""How a volume is cut into 2D slices, and which axis to cut along.

Axis convention: volumes are ``(plane, row, col)`` in napari data order (an RGB volume has a
trailing channel axis ``(plane, row, col, 3)``). A :class:`SliceGeometry` cuts the volume
along one ``axis``; a slice's "plane" is its index along that axis and its (row, col) are the
two remaining axes in order. A 2D image is a volume of one plane (``image[None]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def default_slicing_axis(spacing: Sequence[float]) -> int:
    """The axis with the coarsest spacing (the first on ties), so anisotropic EM and MRI
    stacks are cut in-plane. ``spacing`` has one entry per spatial axis."""
    values = np.asarray(spacing, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(values > 0):
        raise ValueError(f"spacing must be positive numbers, one per axis; got {tuple(spacing)}.")
    return int(np.argmax(values))


@dataclass(frozen=True)
class SliceGeometry:
    """How a ``shape = (n0, n1, n2)`` volume is cut into 2D slices along ``axis``."""

    shape: tuple[int, int, int]
    axis: int = 0

    def __post_init__(self) -> None:
        if len(self.shape) != 3:
            raise ValueError(f"SliceGeometry needs a 3D shape, got {self.shape}.")
        if self.axis not in (0, 1, 2):
            raise ValueError(f"Slicing axis must be 0, 1 or 2 for a volume, got {self.axis}.")

    @property
    def planes(self) -> int:
        return self.shape[self.axis]

    @property
    def slice_shape(self) -> tuple[int, int]:
        rows, cols = (n for i, n in enumerate(self.shape) if i != self.axis)
        return rows, cols

    def index(self, plane: int) -> tuple:
        """Index tuple selecting ``plane``: ``volume[geometry.index(p)]`` is a (rows, cols) view."""
        key: list = [slice(None)] * 3
        key[self.axis] = int(plane)
        return tuple(key)

    def to_slice(self, point: Sequence[float]) -> tuple[int, float, float]:
        """A volume point (3 coordinates, data order) -> (plane, row, col) of its slice."""
        if len(point) != 3:
            raise ValueError(f"Expected a 3D point, got {tuple(point)}.")
        row, col = (float(v) for i, v in enumerate(point) if i != self.axis)
        return int(round(float(point[self.axis]))), row, col

    def to_volume(self, plane: int, row: float, col: float) -> tuple[float, float, float]:
        """(plane, row, col) of a slice -> the volume point in data order."""
        point = [float(row), float(col)]
        point.insert(self.axis, float(plane))
        return point[0], point[1], point[2]

    def contains(self, plane: int, row: float, col: float) -> bool:
        """True when the point falls on a pixel of the volume (pixel centres at integers)."""
        rows, cols = self.slice_shape
        return 0 <= plane < self.planes and -0.5 <= row < rows - 0.5 and -0.5 <= col < cols - 0.5
