"""Initial clicks for iterative training (SPEC.md section 3; in the spirit of RITM's
MultiPointSampler).

Counts: ``1 + K`` positives and ``K'`` negatives, with K and K' truncated geometric
(``P(k) ~ gamma ** k``, gamma = 0.8). Positions: each click is drawn with probability
proportional to the Euclidean distance transform of its allowed region after removing the
pixels of the clicks already placed, so clicks fall deep inside their region, away from each
other and from the image border. The region of a positive is the object; the region of a
negative is a background band around the object (most of the time) or the whole background.
A click is always on a pixel of the right side.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_adaptiveclick.interactive.prompts import Click


def truncated_geometric(rng: np.random.Generator, ratio: float, max_value: int) -> int:
    """A draw from ``{0, ..., max_value}`` with ``P(k)`` proportional to ``ratio ** k``."""
    weights = ratio ** np.arange(max_value + 1, dtype=np.float64)
    return int(rng.choice(max_value + 1, p=weights / weights.sum()))


def _sample_in(
    region: np.ndarray, taken: list[Click], positive: bool, rng: np.random.Generator
) -> Click | None:
    """A click on a pixel of ``region`` (bool (H, W)) drawn with probability proportional to its
    distance to the nearest pixel outside the region, outside the image, or already clicked;
    None if no pixel is free. The distance transform runs on the bounding box of the free
    pixels padded by 1 px of "outside", which gives the same distances as on the whole image.
    """
    free = region.copy()
    for click in taken:
        free[int(click.row), int(click.col)] = False
    rows, cols = np.flatnonzero(free.any(axis=1)), np.flatnonzero(free.any(axis=0))
    if rows.size == 0:
        return None
    window = np.pad(free[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], 1)
    weights = ndimage.distance_transform_edt(window)[1:-1, 1:-1].ravel()
    index = int(rng.choice(weights.size, p=weights / weights.sum()))
    row, col = divmod(index, window.shape[1] - 2)
    return Click(float(rows[0] + row), float(cols[0] + col), positive)


def _negative_band(mask: np.ndarray, band_width: float, margin: float) -> np.ndarray:
    """Background pixels whose Euclidean distance to the object is in ``(margin, margin +
    band_width]``, bool (H, W); computed on the object's bounding box grown by the band."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    reach = int(np.ceil(margin + band_width)) + 1
    top, left = max(rows[0] - reach, 0), max(cols[0] - reach, 0)
    bottom, right = rows[-1] + reach + 1, cols[-1] + reach + 1
    distance = ndimage.distance_transform_edt(~mask[top:bottom, left:right])
    band = np.zeros_like(mask)
    band[top:bottom, left:right] = (distance > margin) & (distance <= margin + band_width)
    return band


def sample_initial_clicks(
    mask: np.ndarray,
    rng: np.random.Generator,
    max_positive: int = 24,
    max_negative: int = 24,
    gamma: float = 0.8,
    band_fraction: float = 0.25,
    anywhere_prob: float = 0.3,
) -> list[Click]:
    """Initial positive and negative clicks for one object.

    Args:
        mask: bool ``(H, W)`` object mask; must contain at least one pixel.
        rng: the random generator (all randomness comes from it).
        max_positive: most positives (1 + truncated Geometric(gamma), so 1..max_positive).
        max_negative: most negatives (truncated Geometric(gamma), so 0..max_negative).
        gamma: ratio of the geometric distributions (0.8 in RITM and the paper).
        band_fraction: width of the negative band around the object, as a fraction of the
            object's equivalent diameter (at least 3 px); negatives lie more than 2 px off the
            object.
        anywhere_prob: chance that a negative is drawn from the whole background instead of
            the band.

    Returns:
        Positives first (the first one deep inside the object), then negatives; ``(row, col)``
        are integer pixel coordinates. Fewer clicks than drawn when a region has no free pixel.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2D (H, W) array, got shape {mask.shape}.")
    if max_positive < 1 or max_negative < 0 or not 0.0 < gamma < 1.0:
        raise ValueError(
            f"Need max_positive >= 1, max_negative >= 0 and 0 < gamma < 1; got max_positive="
            f"{max_positive}, max_negative={max_negative}, gamma={gamma}."
        )
    mask = mask.astype(bool, copy=False)
    area = int(mask.sum())
    if area == 0:
        raise ValueError("mask is empty: initial clicks need an object with at least one pixel.")
    num_positive = 1 + truncated_geometric(rng, gamma, max_positive - 1)
    num_negative = truncated_geometric(rng, gamma, max_negative)

    clicks: list[Click] = []
    for _ in range(num_positive):
        click = _sample_in(mask, clicks, True, rng)
        if click is None:
            break
        clicks.append(click)

    background = ~mask
    band_width = max(3.0, band_fraction * 2.0 * np.sqrt(area / np.pi))
    band = _negative_band(mask, band_width, margin=2.0)
    for _ in range(num_negative):
        region = background if rng.random() < anywhere_prob or not band.any() else band
        click = _sample_in(region, clicks, False, rng)
        if click is None:
            break
        clicks.append(click)
    return clicks
