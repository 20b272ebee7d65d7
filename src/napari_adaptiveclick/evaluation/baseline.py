"""A non-learned interactive segmenter for comparison: the random walker seeded by clicks.

Grady's random walker (``skimage.segmentation.random_walker``) solves, for every unseeded
pixel, the probability that a random walk biased by image edges first reaches an object
seed rather than a background seed. Seeds:

- positive clicks: disks labelled "object", negative clicks: disks labelled "background",
  of radius ``click_radius`` (2 px, smaller than the network's 5 px: seeds are hard
  constraints, and the simulator clicks next to boundaries, where a 5 px disk would seed
  the wrong side of the edge);
- the border of the working crop, labelled "background" too, with or without negative
  clicks. The crop is the box around the clicks and the current mask, grown on every side
  by ``margin`` times the box's longer side (``context`` times the image's longer side while
  there is no mask yet; never less than ``min_margin`` px), so its border approximates
  "far from the positive clicks". This is what lets the first click, with no negative click
  yet, give a bounded object (objects wider than about half the image need more clicks).

The crop is downsampled so its longer side is at most ``max_side`` px for speed (a 1024^2
slice costs a fraction of a second per click on a CPU), and the probability is resized back
into the crop at full resolution; outside the crop it is 0.

Implements the :class:`napari_adaptiveclick.evaluation.noc.Predictor` protocol; images are
``(H, W)`` grey or ``(H, W, 3)`` RGB (averaged to grey), clicks (row, col) in image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_adaptiveclick.interactive.prompts import Click, disk_maps
from napari_adaptiveclick.interactive.transforms import (
    Box,
    CropResize,
    IntensityStats,
    normalize_intensity,
)


@dataclass(frozen=True)
class BaselinePrediction:
    """``probability`` (H, W) float32 in [0, 1] and ``mask`` (H, W) bool."""

    probability: np.ndarray
    mask: np.ndarray


class RandomWalkerPredictor:
    """Click-seeded random walker; ``beta`` is skimage's edge-sensitivity parameter."""

    def __init__(
        self,
        beta: float = 130.0,
        threshold: float = 0.5,
        click_radius: float = 2.0,
        max_side: int = 192,
        margin: float = 0.5,
        min_margin: int = 16,
        context: float = 0.25,
    ) -> None:
        self.beta = beta
        self.threshold = threshold
        self.click_radius = click_radius
        self.max_side = max_side
        self.margin = margin
        self.min_margin = min_margin
        self.context = context
        self._image: np.ndarray | None = None
        self._clicks: list[Click] = []
        self._probability: np.ndarray | None = None

    @property
    def clicks(self) -> list[Click]:
        return list(self._clicks)

    def set_image(self, image: np.ndarray, stats: IntensityStats | None = None) -> None:
        """Set a ``(H, W)`` or ``(H, W, 3)`` image of any numeric dtype and clear the clicks;
        ``stats`` = (lo, hi) for :func:`~napari_adaptiveclick.interactive.transforms.normalize_intensity`."""
        image = np.asarray(image)
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
            raise ValueError(f"Expected a (H, W) or (H, W, 3) image, got shape {image.shape}.")
        grey = normalize_intensity(image, stats)
        self._image = grey.mean(axis=-1) if grey.ndim == 3 else grey
        self.reset()

    def reset(self) -> None:
        """Forget the clicks and the current mask (the image stays)."""
        self._clicks = []
        self._probability = None

    def add_click(self, row: float, col: float, positive: bool = True) -> BaselinePrediction:
        """Add a click at (row, col) and re-run the walker on the crop around all clicks."""
        if self._image is None:
            raise RuntimeError("Call set_image(image) before add_click.")
        height, width = self._image.shape
        if not (0 <= row < height and 0 <= col < width):
            raise ValueError(
                f"Click ({row}, {col}) lies outside the image of shape {(height, width)}."
            )
        self._clicks.append(Click(float(row), float(col), bool(positive)))
        probability = np.zeros((height, width), dtype=np.float32)
        if any(c.positive for c in self._clicks):  # no object seed: nothing is object yet
            box = self._working_box()
            probability[box.top : box.bottom, box.left : box.right] = self._walk(box)
        self._probability = probability
        return BaselinePrediction(probability, probability > self.threshold)

    def _working_box(self) -> Box:
        """Box around the clicks and the current mask, grown by the margin, clamped."""
        height, width = self._image.shape
        rows = [c.row for c in self._clicks]
        cols = [c.col for c in self._clicks]
        mask = self._probability > self.threshold if self._probability is not None else None
        current = mask is not None and bool(mask.any())
        if current:
            mask_rows, mask_cols = np.nonzero(mask)
            rows += [mask_rows.min(), mask_rows.max()]
            cols += [mask_cols.min(), mask_cols.max()]
        top, bottom = int(min(rows)), int(max(rows)) + 1
        left, right = int(min(cols)), int(max(cols)) + 1
        if current:  # the current mask bounds the object: grow relative to it
            relative = self.margin * max(bottom - top, right - left)
        else:  # nothing known about the object's size yet: take a wide context
            relative = self.context * max(height, width)
        grow = max(self.min_margin, int(np.ceil(relative)))
        return Box(
            max(top - grow, 0),
            max(left - grow, 0),
            min(bottom + grow, height),
            min(right + grow, width),
        )

    def _walk(self, box: Box) -> np.ndarray:
        """Object probability inside ``box``, ``(box.height, box.width)`` float32."""
        from skimage.segmentation import random_walker
        from skimage.transform import resize

        scale = min(1.0, self.max_side / max(box.height, box.width))
        small_shape = (max(round(box.height * scale), 1), max(round(box.width * scale), 1))
        geometry = CropResize(self._image.shape, box, small_shape)
        crop = self._image[box.top : box.bottom, box.left : box.right]
        small = resize(crop, small_shape, order=1, anti_aliasing=scale < 1.0)

        labels = np.zeros(small_shape, dtype=np.int32)
        labels[[0, -1], :] = 2
        labels[:, [0, -1]] = 2
        points = geometry.forward_points([(c.row, c.col) for c in self._clicks])
        small_clicks = [
            Click(r, c, click.positive) for (r, c), click in zip(points, self._clicks, strict=True)
        ]
        disks = disk_maps(small_clicks, small_shape, radius=max(self.click_radius * scale, 1.0))
        labels[disks[1] > 0] = 2
        labels[disks[0] > 0] = 1

        if np.ptp(small) == 0 or (labels > 0).all():  # no edges to follow or nothing to solve
            small_probability = (labels == 1).astype(np.float32)
        else:
            full = random_walker(small, labels, beta=self.beta, mode="bf", return_full_prob=True)
            small_probability = full[0]
        back = resize(small_probability.astype(np.float32), (box.height, box.width), order=1)
        return np.clip(back, 0.0, 1.0).astype(np.float32)
