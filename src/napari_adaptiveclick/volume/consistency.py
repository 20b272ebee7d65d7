"""Intensity consistency with the annotated slice: what a propagation may write on a slice.

A propagated mask drifts slice by slice, mostly by taking in tissue next to the object that
the object never looked like on the annotated (source) slice: on 7 of the 8 BraTS training
cases half or more of the false pixels of the whole tumour's propagated masks were darker
(FLAIR) than the darkest 5 % of the annotated slice's mask. When the source slice shows the object clearly
brighter (or darker) than its surroundings, :func:`source_range` gives the intensities from
that slice's ``quantile`` of the object's up (down), and :func:`trim_to_range` takes the
pixels outside it from a propagated mask, then gives back the holes this leaves inside the
object (dark spots inside a tumour stay part of it). An object that its surroundings do not
separate by intensity (:func:`separability` strictly between ``1 - SEPARABLE`` and
:data:`SEPARABLE`: textured or ring-shaped objects) is left alone. Intensities are the image's own values (the
mean of the channels for RGB), so a record of the range replays on the same image whatever
its display range.

Provenance: the consistency of intensity with the source slice that issue #13 proposes for
stopping, used here to limit the mask itself. Off by default: on the training cases it makes
the propagated slices better but stops no better (BENCHMARKS.md, propagation section).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_fill_holes

from napari_adaptiveclick.volume.stopping import ring

SEPARABLE = 0.9  # the source object must out-rank this share of its ring's pixels (or 1 - it)


@dataclass(frozen=True)
class IntensityRange:
    """The intensities a propagated mask keeps: ``low`` <= value <= ``high`` (one side is
    infinite for an object brighter or darker than its surroundings)."""

    low: float = -math.inf
    high: float = math.inf

    def __post_init__(self) -> None:
        if math.isnan(self.low) or math.isnan(self.high) or self.low > self.high:
            raise ValueError(
                f"An intensity range needs low <= high (numbers), got {self.low!r}, {self.high!r}."
            )

    @property
    def limits(self) -> bool:
        """False for the range that keeps every value."""
        return math.isfinite(self.low) or math.isfinite(self.high)

    def allows(self, image: np.ndarray) -> np.ndarray:
        """(H, W) bool: the pixels of ``image`` (H, W) inside the range."""
        return (image >= self.low) & (image <= self.high)


EVERY_VALUE = IntensityRange()  # no trim


def separability(image: np.ndarray, mask: np.ndarray) -> float:
    """The share of (object, ring) pixel pairs in which the object's pixel is the brighter
    (the area under the ROC curve of intensity as an object-against-ring classifier; ties
    count half): 1 for an object brighter than every pixel around it, 0 for a darker one,
    0.5 for no contrast. ``image`` (H, W) float, ``mask`` (H, W) bool."""
    inside, around = image[mask], image[ring(mask)]
    if not inside.size or not around.size:
        return 0.5
    around = np.sort(around)
    below = np.searchsorted(around, inside, side="left")
    ties = np.searchsorted(around, inside, side="right") - below
    return float(np.mean(below + 0.5 * ties) / around.size)


def source_range(image: np.ndarray, mask: np.ndarray, quantile: float) -> IntensityRange | None:
    """The :class:`IntensityRange` of the object ``mask`` (H, W) bool on the source slice
    ``image`` (H, W): from its ``quantile`` of the object's intensities up for a bright
    object, from its ``1 - quantile`` down for a dark one; None when the ring around it does
    not separate it (:func:`separability` strictly between ``1 - SEPARABLE`` and
    :data:`SEPARABLE`)."""
    if not 0.0 < quantile < 0.5:
        raise ValueError(f"The intensity quantile must be in (0, 0.5), got {quantile!r}.")
    score = separability(image, mask)
    if 1.0 - SEPARABLE < score < SEPARABLE:
        return None
    if score >= SEPARABLE:
        return IntensityRange(low=float(np.quantile(image[mask], quantile)))
    return IntensityRange(high=float(np.quantile(image[mask], 1.0 - quantile)))


def trim_to_range(mask: np.ndarray, image: np.ndarray, allowed: IntensityRange) -> np.ndarray:
    """``mask`` (H, W) bool without its pixels of ``image`` (H, W) outside ``allowed``, with
    the holes that leaves inside it filled again (never beyond ``mask``)."""
    kept = mask & allowed.allows(image)
    return binary_fill_holes(kept) & mask
