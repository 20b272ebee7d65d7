"""Joint geometric and intensity augmentation of a grey image and its object mask (SPEC.md
section 3: crop, random resize 0.75-1.25, flips, rot90, small shift/rotate, brightness/contrast).

One affine map sends output (crop) pixels to input pixels; it combines the scale, a horizontal
flip, a rotation by a multiple of 90 degrees and a small rotation (flip + rot90 together give
all 8 axis-aligned orientations). The crop is centred on the object's bounding box, jittered as
far as the object still fits with room for the shift, then shifted by up to ``max_shift`` of
the crop size: an object that fits in the crop stays whole. Only the input window the crop
needs is read, and only the crop is warped, so the cost depends on the crop size, not on the
slice size. Image and mask use the same bilinear warp; the mask is thresholded at 0.5, so both
stay aligned. Pixels outside the image are 0 (zero padding).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_adaptiveclick.learning.random_fields import smooth_field

# Marks warped pixels that fell outside the image (valid intensities are in [0, 1]).
_OUTSIDE = -1.0


def _orientation(rng: np.random.Generator, flip: bool, rot90: bool, max_deg: float) -> np.ndarray:
    """Random 2x2 rotation/flip matrix acting on (row, col) displacements."""
    matrix = np.eye(2)
    if flip and rng.random() < 0.5:
        matrix = np.diag([1.0, -1.0]) @ matrix
    if rot90:
        matrix = (
            np.linalg.matrix_power(np.array([[0.0, -1.0], [1.0, 0.0]]), rng.integers(4)) @ matrix
        )
    angle = np.deg2rad(rng.uniform(-max_deg, max_deg))
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin], [sin, cos]]) @ matrix


def _object_box(mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(centre (2,), corners (4, 2)) of the mask's bounding box in (row, col); for an empty
    mask, a random point of the image (with zero extent)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        centre = rng.uniform(0, np.array(mask.shape) - 1)
        return centre, np.repeat(centre[None], 4, axis=0)
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    corners = np.array([[top, left], [top, right], [bottom, left], [bottom, right]], float)
    return corners.mean(axis=0), corners


def _warp_window(
    image: np.ndarray, mask: np.ndarray, inverse: np.ndarray, offset: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``output[o] = input[inverse @ o + offset]`` for a ``size`` square, reading only the
    input window that the square maps into. Returns (image with _OUTSIDE off the input, mask
    as float)."""
    square = np.array([[0, 0], [0, size - 1], [size - 1, 0], [size - 1, size - 1]], float)
    reached = square @ inverse.T + offset
    low = np.maximum(np.floor(reached.min(axis=0)).astype(int) - 1, 0)
    high = np.minimum(np.ceil(reached.max(axis=0)).astype(int) + 2, image.shape)
    if np.any(high <= low):
        return np.full((size, size), _OUTSIDE, np.float32), np.zeros((size, size), np.float32)
    window = (slice(low[0], high[0]), slice(low[1], high[1]))
    shifted = offset - low

    def warp(array: np.ndarray, cval: float) -> np.ndarray:
        return ndimage.affine_transform(
            array, inverse, shifted, output_shape=(size, size), order=1, mode="constant", cval=cval
        )

    return warp(image[window], _OUTSIDE), warp(mask[window].astype(np.float32), 0.0)


def _adjust_intensity(
    warped: np.ndarray, rng: np.random.Generator, brightness: float, contrast: float
) -> np.ndarray:
    """Contrast about the mean of the valid pixels, then brightness shift, clipped to [0, 1];
    pixels outside the input become 0."""
    factor = rng.uniform(1.0 - contrast, 1.0 + contrast)
    shift = rng.uniform(-brightness, brightness)
    valid = warped >= 0.0
    if not valid.any():
        return np.zeros_like(warped)
    mean = float(warped[valid].mean())
    adjusted = np.clip((warped - mean) * factor + mean + shift, 0.0, 1.0)
    return np.where(valid, adjusted, 0.0).astype(np.float32)


def augment_pair(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    crop_size: int,
    scale: tuple[float, float] = (0.75, 1.25),
    flip: bool = True,
    rot90: bool = True,
    max_shift: float = 0.03,
    max_rotate_deg: float = 10.0,
    brightness: float = 0.1,
    contrast: float = 0.1,
    companion: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """Randomly warp and crop a grey image and its object mask together.

    Args:
        image: ``(H, W)`` float in [0, 1] (e.g. from ``transforms.normalize_intensity``).
        mask: ``(H, W)`` bool object mask (may be empty: the crop is then placed at random).
        rng: the random generator (all randomness comes from it).
        crop_size: side S of the square output.
        scale: range of the uniform zoom factor (output pixels per input pixel).
        flip: random horizontal flip (p = 0.5).
        rot90: random rotation by 0, 90, 180 or 270 degrees.
        max_shift: largest extra crop shift per axis, as a fraction of S.
        max_rotate_deg: largest small rotation, degrees.
        brightness: largest additive intensity shift.
        contrast: largest relative contrast change (about the crop's mean).
        companion: another ``(H, W)`` bool mask warped the same way (e.g. the object on the
            adjacent slice); the crop is placed by ``mask`` alone.

    Returns:
        ``(image (S, S) float32 in [0, 1], mask (S, S) bool)``, and the warped companion
        (S, S) bool after them when one is given.
    """
    image = np.asarray(image, dtype=np.float32)
    mask = np.asarray(mask)
    if image.ndim != 2 or mask.shape != image.shape:
        raise ValueError(
            f"augment_pair needs a 2D grey image and a mask of the same shape; got image "
            f"{image.shape} and mask {mask.shape}."
        )
    if crop_size < 1:
        raise ValueError(f"crop_size must be a positive number of pixels, got {crop_size}.")
    linear = rng.uniform(*scale) * _orientation(rng, flip, rot90, max_rotate_deg)
    centre, corners = _object_box(mask, rng)
    extent = np.ptp((corners - centre) @ linear.T, axis=0)
    shift = max_shift * crop_size
    slack = np.maximum((crop_size - 2 - extent) / 2.0 - shift, 0.0)
    target = (crop_size - 1) / 2.0 + rng.uniform(-slack, slack) + rng.uniform(-shift, shift, 2)
    inverse = np.linalg.inv(linear)
    offset = centre - inverse @ target
    warped, warped_mask = _warp_window(image, mask, inverse, offset, crop_size)
    adjusted = _adjust_intensity(warped, rng, brightness, contrast)
    if companion is None:
        return adjusted, warped_mask > 0.5
    if np.shape(companion) != image.shape:
        raise ValueError(
            f"augment_pair's companion mask {np.shape(companion)} must have the image's shape "
            f"{image.shape}."
        )
    _, warped_companion = _warp_window(image, np.asarray(companion), inverse, offset, crop_size)
    return adjusted, warped_mask > 0.5, warped_companion > 0.5


def _elastic(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, alpha: float, cells: float
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random displacement (up to about ``alpha`` px) of image and mask together."""
    shape = image.shape
    rows, cols = np.indices(shape, dtype=np.float32)
    coords = [
        rows + alpha * smooth_field(rng, shape, cells) / 2.0,
        cols + alpha * smooth_field(rng, shape, cells) / 2.0,
    ]
    warped = ndimage.map_coordinates(image, coords, order=1, mode="reflect")
    warped_mask = (
        ndimage.map_coordinates(mask.astype(np.float32), coords, order=1, mode="reflect") > 0.5
    )
    return warped.astype(np.float32), warped_mask


def randomize_domain(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, probability: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Domain randomisation of a training crop, so the model meets other microscopes,
    scanners and pixel sizes than the training data's. Each change below is applied with
    ``probability`` times its own rate, in this order:

    elastic deformation (image and mask together; 0.3), resolution change (down-sampling by
    1.5-4x and back, as other pixel sizes, thick slices or a small image shown at the model's
    input size look; 0.35; anisotropic half of the time), blur (0.3), contrast and bias field
    (0.5), gamma (0.5), intensity inversion (0.2), Gaussian or Poisson-like noise (0.4).

    ``image``: ``(S, S)`` float32 in [0, 1]; ``mask``: ``(S, S)`` bool. Returns new arrays of
    the same shapes and types. ``probability`` 0 returns the inputs unchanged.
    """
    if probability <= 0:
        return image, mask
    p = float(probability)
    image = np.asarray(image, np.float32)
    if rng.random() < 0.3 * p:
        image, mask = _elastic(image, mask, rng, rng.uniform(2, 10), rng.uniform(3, 8))
    if rng.random() < 0.35 * p:
        factor = (
            rng.uniform(1.5, 4.0, 2) if rng.random() < 0.5 else np.full(2, rng.uniform(1.5, 4.0))
        )
        small = ndimage.zoom(image, 1.0 / factor, order=1, prefilter=False)
        zoom = np.array(image.shape) / np.array(small.shape)
        image = ndimage.zoom(small, zoom, order=1, prefilter=False)[
            : mask.shape[0], : mask.shape[1]
        ]
        image = np.pad(
            image,
            [(0, mask.shape[0] - image.shape[0]), (0, mask.shape[1] - image.shape[1])],
            "edge",
        )
    if rng.random() < 0.3 * p:
        image = ndimage.gaussian_filter(image, rng.uniform(0.4, 1.5))
    if rng.random() < 0.5 * p:
        bias = np.exp(rng.uniform(0.05, 0.35) * smooth_field(rng, image.shape, 2))
        mean = float(image.mean())
        image = (image - mean) * rng.uniform(0.5, 1.5) + mean
        image = image * bias
    if rng.random() < 0.5 * p:
        image = np.clip(image, 0, 1) ** np.exp(rng.uniform(-0.5, 0.5))
    if rng.random() < 0.2 * p:
        image = 1.0 - np.clip(image, 0, 1)
    if rng.random() < 0.4 * p:
        sigma = rng.uniform(0.01, 0.08)
        if rng.random() < 0.5:
            image = image + sigma * rng.standard_normal(image.shape)
        else:  # signal-dependent (shot-like) noise
            image = image + sigma * np.sqrt(np.clip(image, 0, 1)) * rng.standard_normal(image.shape)
    return np.clip(image, 0, 1).astype(np.float32), mask
