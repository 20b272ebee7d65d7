"""The image a reader returns: :class:`ImageVolume` (pixels and geometry), and
:class:`ImageIOError`, what every reader and writer raises for a file it cannot handle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick.io import geometry


class ImageIOError(ValueError):
    """A file that cannot be read or written: unsupported extension, unreadable, bad labels."""


@dataclass
class ImageVolume:
    """An image or volume with its geometry.

    Attributes:
        data: pixel array in napari order; ``axes`` names its axes, e.g. ``"yx"``, ``"yxc"``
            (RGB), ``"zyx"``, ``"tzyx"`` (4D NIfTI: all axes kept, callers choose).
        spacing: size of a pixel along each data axis (same order as ``data``; 1.0 for
            channel axes and where the file has no calibration): the lengths of the
            ``affine``'s columns.
        origin: world position of pixel 0, one entry per data axis (world axes are in data
            order; 0.0 for channel axes and where unknown): the ``affine``'s last column.
        path: the file it was read from (None for arrays made in memory).
        format: "tiff", "png", "jpeg", "nifti", "metaimage", "nrrd", or for the lazy
            stores of :mod:`.chunked` "ome-zarr", "zarr", "n5", "hdf5" (then ``data`` is a
            :class:`~.lazy.LazyArray`: index it, ``np.asarray`` reads).
        axes: one letter per data axis (t, z, y, x, c).
        unit: length unit of ``spacing`` when the file states one ("mm", "micron", ...).
        affine: the ``(N+1, N+1)`` voxel-to-world matrix over the ``N`` non-channel axes, in
            the convention of :mod:`.geometry` (napari order in, LPS world in ``(z, y, x)``
            order out). Built from ``spacing`` and ``origin`` when not given; with rotations
            or flips only the affine describes the full geometry, and the writers use it.
        header: NIfTI only, a copy of the nibabel header (qform/sform codes, units, zooms).
        levels: a multiscale image's pyramid (OME-Zarr), full resolution (``data``) first,
            each level lazy and in the same axes; empty for single-resolution images.
        level_transforms: for each of ``levels``, its OME-Zarr coordinate transformations
            (``scale`` and ``translation`` dicts) over the same axes.
        is_labels: the store says it holds labels (OME-Zarr ``image-label`` metadata, or a
            labels store of :mod:`.stores`), whatever its name.
    """

    data: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    path: Path | None = None
    format: str = ""
    axes: str = ""
    unit: str | None = None
    affine: np.ndarray | None = None
    header: Any = None
    levels: tuple[Any, ...] = ()
    level_transforms: tuple[list[dict[str, Any]], ...] = ()
    is_labels: bool = False

    def __post_init__(self) -> None:
        if not self.axes:
            self.axes = {2: "yx", 3: "zyx", 4: "tzyx"}.get(self.data.ndim, "")
        for name in ("spacing", "origin", "axes"):
            if len(getattr(self, name)) != self.data.ndim:
                raise ValueError(
                    f"ImageVolume {name} {getattr(self, name)!r} needs one entry per data axis "
                    f"(data shape {self.data.shape})."
                )
        spacing = [s for s, a in zip(self.spacing, self.axes, strict=True) if a != "c"]
        if self.affine is None:
            origin = [o for o, a in zip(self.origin, self.axes, strict=True) if a != "c"]
            self.affine = geometry.diagonal_affine(spacing, origin)
        self.affine = np.asarray(self.affine, dtype=np.float64)
        n = len(spacing)
        if self.affine.shape != (n + 1, n + 1):
            raise ValueError(
                f"ImageVolume affine needs shape {(n + 1, n + 1)} for axes {self.axes!r}, got "
                f"{self.affine.shape}."
            )
        if not np.allclose(geometry.steps(self.affine), spacing, rtol=1e-5, atol=1e-12):
            raise ValueError(
                f"ImageVolume spacing {tuple(spacing)} differs from the affine's column "
                f"lengths {geometry.steps(self.affine)}."
            )

    @classmethod
    def with_affine(
        cls,
        data: np.ndarray,
        affine: np.ndarray,
        axes: str,
        spacing: tuple[float, ...] | None = None,
        **kwargs: Any,
    ) -> ImageVolume:
        """A volume whose ``origin`` (and ``spacing``, unless given: one entry per
        non-channel axis) are read off ``affine``."""
        affine = np.asarray(affine, dtype=np.float64)
        steps = geometry.steps(affine) if spacing is None else spacing
        origin = geometry.per_axis(geometry.offset(affine), axes, 0.0)
        return cls(
            data, geometry.per_axis(steps, axes, 1.0), origin, axes=axes, affine=affine, **kwargs
        )

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape without the channel axis: the shape a labels array for this image has."""
        return tuple(n for n, a in zip(self.data.shape, self.axes, strict=True) if a != "c")

    @property
    def is_rgb(self) -> bool:
        return self.axes.endswith("c") and self.data.shape[-1] in (3, 4)
