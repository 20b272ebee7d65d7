"""Intensity normalisation and geometric transforms, each with its coordinate inverse.

Coordinates are (row, col) in pixels of the array they refer to; a pixel's centre is at
its integer index. All geometric maps here are affine per axis: ``dst = (src + 0.5) * s - 0.5``
for a resize by factor ``s`` (pixel-centre convention, as ``align_corners=False``), or, in the
release's convention (:data:`CONVENTIONS`), ``dst = src * s`` with ``align_corners=True``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

IntensityStats = tuple[float, float]


def intensity_stats(
    array: np.ndarray, low: float = 0.5, high: float = 99.5, max_samples: int = 2_000_000
) -> IntensityStats:
    """Robust intensity range ``(lo, hi)`` of ``array`` from its ``low``/``high`` percentiles.

    Works for a slice or a whole volume (pass the volume to treat all its slices alike).
    Non-finite values are ignored. Large arrays are subsampled deterministically (every k-th
    value, so the whole array is read: :func:`sampled_intensity_stats` reads a bounded part).
    """
    values = np.asarray(array)
    if values.size == 0:
        raise ValueError("Cannot compute intensity statistics of an empty array.")
    flat = values.reshape(-1)
    if flat.size > max_samples:
        flat = flat[:: int(np.ceil(flat.size / max_samples))]
    return _percentile_range(flat, low, high)


def sampled_intensity_stats(
    volume: np.ndarray,
    low: float = 0.5,
    high: float = 99.5,
    max_samples: int = 2_000_000,
    min_planes: int = 32,
) -> IntensityStats:
    """:func:`intensity_stats` of a volume or image at a cost that does not grow with it
    (for a viewer's Start): an array of more than ``max_samples`` values is read at evenly
    spaced entries along its first axis (planes of a volume, rows of an image; at least
    ``min_planes``, and enough for ``max_samples``), every k-th value of each, about
    ``max_samples`` in all. Arrays up to ``max_samples`` give exactly :func:`intensity_stats`.
    """
    values = np.asarray(volume)
    if values.size == 0:
        raise ValueError("Cannot compute intensity statistics of an empty array.")
    return _percentile_range(_bounded_sample(values, max_samples, min_planes), low, high)


def _percentile_range(flat: np.ndarray, low: float, high: float) -> IntensityStats:
    flat = flat.astype(np.float64, copy=False)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        raise ValueError("The image has no finite values (all NaN or inf).")
    lo, hi = np.percentile(flat, [low, high])
    if hi <= lo:  # very peaked histograms (e.g. MRI background): fall back to min/max
        lo, hi = float(flat.min()), float(flat.max())
    return float(lo), float(hi)


def _bounded_sample(values: np.ndarray, max_samples: int, min_planes: int) -> np.ndarray:
    """About ``max_samples`` values of ``values`` (all of them when it has no more), read
    from a bounded number of entries along its first axis (see
    :func:`sampled_intensity_stats`); a single entry is sampled along its own first axis."""
    if values.size <= max_samples or values.ndim < 2:
        flat = values.reshape(-1)
        return flat[:: int(np.ceil(flat.size / max_samples))]
    if values.shape[0] == 1:
        return _bounded_sample(values[0], max_samples, min_planes)
    count, per_plane = values.shape[0], values.size // values.shape[0]
    planes = min(count, max(min_planes, int(np.ceil(max_samples / per_plane))))
    step = int(np.ceil(planes * per_plane / max_samples))
    index = np.unique(np.linspace(0, count - 1, planes).round().astype(np.int64))
    return np.concatenate([values[i].reshape(-1)[::step] for i in index])


def check_intensity_range(stats: IntensityStats, given: bool = False) -> None:
    """Raise ``ValueError`` unless ``stats = (lo, hi)`` spans a range (hi > lo); ``given``:
    they were passed by the caller (the message blames them, not the image)."""
    lo, hi = stats
    if given and not (math.isfinite(lo) and math.isfinite(hi) and hi >= lo):
        raise ValueError(
            f"The intensity range stats=({lo:g}, {hi:g}) must be two finite numbers, the "
            "first below the second (intensity_stats(volume) gives them)."
        )
    if not hi > lo:
        raise ValueError(
            f"The image is constant (all values {lo:g}): there is nothing to segment. "
            "Pass volume-wide statistics if this slice belongs to a volume."
        )


def normalize_intensity(image: np.ndarray, stats: IntensityStats | None = None) -> np.ndarray:
    """Map a 2D grey ``(H, W)`` or RGB ``(H, W, 3)`` image of any numeric dtype to float32 [0, 1].

    ``stats`` is ``(lo, hi)`` from :func:`intensity_stats`; computed from ``image`` if None.
    Values are clipped to [lo, hi]; NaN becomes 0. Raises ``ValueError`` for a constant image.
    """
    image = np.asarray(image)
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise TypeError(f"Image dtype {image.dtype} is not numeric.")
    lo, hi = stats if stats is not None else intensity_stats(image)
    check_intensity_range((lo, hi))
    out = (image.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)
    out = np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(out, 0.0, 1.0, out=out)


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in pixel indices: rows [top, bottom), cols [left, right)."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


# Resize conventions. "centers" (this project's): pixel centres map onto pixel centres,
# dst = (src - top + 0.5) * s - 0.5 with s = dst_size / crop_size, images resized with
# align_corners=False. "release" (the authors' ``isegm/inference/transforms/zoom_in.py``):
# images resized with align_corners=True both ways, points mapped as dst = (src - top) * s.
CONVENTIONS: tuple[str, ...] = ("centers", "release")


@dataclass(frozen=True)
class CropResize:
    """Crop ``box`` out of an image of ``src_shape`` and resize the crop to ``dst_shape``.

    The whole-image resize is the special case ``box = (0, 0, H, W)``. ``forward_points``
    maps source (row, col) to destination coordinates, ``inverse_points`` maps back;
    ``convention`` is one of :data:`CONVENTIONS`.
    """

    src_shape: tuple[int, int]
    box: Box
    dst_shape: tuple[int, int]
    convention: str = "centers"

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {self.convention!r}.")

    @classmethod
    def whole(
        cls, src_shape: tuple[int, int], dst_shape: tuple[int, int], convention: str = "centers"
    ) -> CropResize:
        box = Box(0, 0, src_shape[0], src_shape[1])
        return cls(tuple(src_shape), box, tuple(dst_shape), convention)

    @property
    def scale(self) -> tuple[float, float]:
        return self.dst_shape[0] / self.box.height, self.dst_shape[1] / self.box.width

    @property
    def _offset(self) -> float:
        return 0.5 if self.convention == "centers" else 0.0

    @property
    def _align_corners(self) -> bool:
        return self.convention == "release"

    def forward_points(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) source (row, col) -> (N, 2) destination (row, col), float."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        (sr, sc), o = self.scale, self._offset
        return np.stack(
            [
                (pts[:, 0] - self.box.top + o) * sr - o,
                (pts[:, 1] - self.box.left + o) * sc - o,
            ],
            axis=1,
        )

    def inverse_points(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) destination (row, col) -> (N, 2) source (row, col), float."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        (sr, sc), o = self.scale, self._offset
        return np.stack(
            [
                (pts[:, 0] + o) / sr - o + self.box.top,
                (pts[:, 1] + o) / sc - o + self.box.left,
            ],
            axis=1,
        )

    def forward_image(self, image):
        """Crop and resize a torch tensor ``(B, C, H, W)`` (bilinear)."""
        b = self.box
        return self.forward_crop(image[..., b.top : b.bottom, b.left : b.right])

    def forward_crop(self, crop):
        """Resize a ``(B, C, box.height, box.width)`` tensor, the box already cut out, to
        ``dst_shape`` (bilinear); :meth:`forward_image` is the crop then this."""
        import torch.nn.functional as F

        if tuple(crop.shape[-2:]) == tuple(self.dst_shape):
            return crop
        return F.interpolate(
            crop, size=self.dst_shape, mode="bilinear", align_corners=self._align_corners
        )

    def inverse_crop(self, image):
        """Resize a ``(B, C, h, w)`` tensor in destination space back to the box's size,
        ``(B, C, box.height, box.width)``: the inside of :meth:`inverse_image`."""
        import torch.nn.functional as F

        b = self.box
        if tuple(image.shape[-2:]) == (b.height, b.width):
            return image
        return F.interpolate(
            image, size=(b.height, b.width), mode="bilinear", align_corners=self._align_corners
        )

    def inverse_image(self, image, fill: float = 0.0):
        """Resize a ``(B, C, h, w)`` tensor in destination space back into the box of a
        ``(B, C, H, W)`` source-sized canvas; outside the box the value is ``fill``."""
        import torch

        b = self.box
        canvas = torch.full(
            (*image.shape[:-2], *self.src_shape), fill, dtype=image.dtype, device=image.device
        )
        canvas[..., b.top : b.bottom, b.left : b.right] = self.inverse_crop(image)
        return canvas
