"""Prompts: what a user gives the model on one 2D image, and their encodings.

Owns the prompt kinds (the click today) and their rasterisation into the network's prompt
channels. One coordinate convention: (row, col) in pixels of the image the prompt was put on
(napari data order for a 2D slice). Conversions into network-input pixels happen in
:mod:`napari_adaptiveclick.interactive.transforms` (``CropResize.forward_points``), nowhere
else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Click:
    """One click at (row, col) in image pixels; ``positive`` is True for the object."""

    row: float
    col: float
    positive: bool = True


def disk_maps(clicks: Iterable[Click], shape: tuple[int, int], radius: float = 5.0) -> np.ndarray:
    """Binary disk encodings of clicks, ``(2, H, W)`` float32: channel 0 positive, 1 negative.

    A pixel is 1 where its squared distance to some click of that polarity is <= radius^2
    (SPEC.md section 1.1; the release's DistMaps with ``use_disks=True``).
    """
    height, width = shape
    maps = np.zeros((2, height, width), dtype=np.float32)
    r2 = radius * radius
    span = int(np.ceil(radius))
    for click in clicks:
        r0, c0 = float(click.row), float(click.col)
        top, bottom = max(int(np.floor(r0)) - span, 0), min(int(np.ceil(r0)) + span + 1, height)
        left, right = max(int(np.floor(c0)) - span, 0), min(int(np.ceil(c0)) + span + 1, width)
        if top >= bottom or left >= right:
            continue
        rows = np.arange(top, bottom, dtype=np.float32)[:, None] - r0
        cols = np.arange(left, right, dtype=np.float32)[None, :] - c0
        inside = rows * rows + cols * cols <= r2
        channel = 0 if click.positive else 1
        np.maximum(
            maps[channel, top:bottom, left:right], inside, out=maps[channel, top:bottom, left:right]
        )
    return maps
