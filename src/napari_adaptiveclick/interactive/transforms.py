"""Intensity normalisation and geometric transforms, each with its coordinate inverse.

Coordinates are (row, col) in pixels of the array they refer to; a pixel's centre is at
its integer index. All geometric maps here are affine per axis: ``dst = (src + 0.5) * s - 0.5``
for a resize by factor ``s`` (pixel-centre convention, as ``align_corners=False``), or, in the
release's convention (:data:`CONVENTIONS`), ``dst = src * s`` with ``align_corners=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IntensityStats = tuple[float, float]


def intensity_stats(
    array: np.ndarray, low: float = 0.5, high: float = 99.5, max_samples: int = 2_000_000
) -> IntensityStats:
    """Robust intensity range ``(lo, hi)`` of ``array`` from its ``low``/``high`` percentiles.

    Works for a slice or a whole volume (pass the volume to treat all its slices alike).
    Non-finite values are ignored. Large arrays are subsampled deterministically.
    """
    values = np.asarray(array)
    if values.size == 0:
        raise ValueError("Cannot compute intensity statistics of an empty array.")
    flat = values.reshape(-1)
    if flat.size > max_samples:
        flat = flat[:: int(np.ceil(flat.size / max_samples))]
    flat = flat.astype(np.float64, copy=False)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        raise ValueError("The image has no finite values (all NaN or inf).")
    lo, hi = np.percentile(flat, [low, high])
    if hi <= lo:  # very peaked histograms (e.g. MRI background): fall back to min/max
        lo, hi = float(flat.min()), float(flat.max())
    return float(lo), float(hi)


def normalize_intensity(image: np.ndarray, stats: IntensityStats | None = None) -> np.ndarray:
    """Map a 2D grey ``(H, W)`` or RGB ``(H, W, 3)`` image of any numeric dtype to float32 [0, 1].

    ``stats`` is ``(lo, hi)`` from :func:`intensity_stats`; computed from ``image`` if None.
    Values are clipped to [lo, hi]; NaN becomes 0. Raises ``ValueError`` for a constant image.
    """
    image = np.asarray(image)
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise TypeError(f"Image dtype {image.dtype} is not numeric.")
    lo, hi = stats if stats is not None else intensity_stats(image)
    if not hi > lo:
        raise ValueError(
            f"The image is constant (all values {lo:g}): there is nothing to segment. "
            "Pass volume-wide statistics if this slice belongs to a volume."
        )
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
        import torch.nn.functional as F

        b = self.box
        crop = image[..., b.top : b.bottom, b.left : b.right]
        if tuple(crop.shape[-2:]) == tuple(self.dst_shape):
            return crop
        return F.interpolate(
            crop, size=self.dst_shape, mode="bilinear", align_corners=self._align_corners
        )

    def inverse_image(self, image, fill: float = 0.0):
        """Resize a ``(B, C, h, w)`` tensor in destination space back into the box of a
        ``(B, C, H, W)`` source-sized canvas; outside the box the value is ``fill``."""
        import torch
        import torch.nn.functional as F

        b = self.box
        canvas = torch.full(
            (*image.shape[:-2], *self.src_shape), fill, dtype=image.dtype, device=image.device
        )
        patch = image
        if tuple(image.shape[-2:]) != (b.height, b.width):
            patch = F.interpolate(
                image, size=(b.height, b.width), mode="bilinear", align_corners=self._align_corners
            )
        canvas[..., b.top : b.bottom, b.left : b.right] = patch
        return canvas
