"""The focus crop: which window of the image the model sees for a click.

After the first click of an object, the release's ``ZoomIn`` crops around the current mask
and the positive clicks, grown by ``expand`` (at least ``min_size`` a side), and keeps the
previous crop while it still overlaps the new one enough (SPEC.md section 4). Boxes are
:class:`~napari_adaptiveclick.interactive.transforms.Box` (exclusive bottom / right).
"""

from __future__ import annotations

import numpy as np

from napari_adaptiveclick.interactive.prompts import Click
from napari_adaptiveclick.interactive.transforms import Box


def expand_box(box: Box, shape: tuple[int, int], ratio: float, min_size: int) -> Box:
    """Grow ``box`` about its centre by ``ratio`` (at least ``min_size`` a side), clamped to
    the image (release ``expand_bbox`` + ``clamp_bbox``)."""
    out = []
    for lo, hi, limit in ((box.top, box.bottom, shape[0]), (box.left, box.right, shape[1])):
        centre = 0.5 * (lo + hi)
        half = 0.5 * min(max((hi - lo) * ratio, min_size), limit)
        start = int(round(centre - half))
        start = min(max(start, 0), limit - int(round(2 * half)))
        out.append((max(start, 0), min(start + int(round(2 * half)), limit)))
    return Box(out[0][0], out[1][0], out[0][1], out[1][1])


def touches_inner_edge(mask: np.ndarray, box: Box, shape: tuple[int, int]) -> bool:
    """True if ``mask`` (H, W) has a pixel on an edge row / column of ``box`` that is not an
    edge of the image (the object probably goes on outside the box)."""
    edges = (
        (box.top > 0, mask[box.top, box.left : box.right]),
        (box.bottom < shape[0], mask[box.bottom - 1, box.left : box.right]),
        (box.left > 0, mask[box.top : box.bottom, box.left]),
        (box.right < shape[1], mask[box.top : box.bottom, box.right - 1]),
    )
    return any(inside and line.any() for inside, line in edges)


def box_iou(a: Box, b: Box) -> float:
    inter_h = max(0, min(a.bottom, b.bottom) - max(a.top, b.top))
    inter_w = max(0, min(a.right, b.right) - max(a.left, b.left))
    inter = inter_h * inter_w
    union = a.height * a.width + b.height * b.width - inter
    return inter / union if union else 0.0


def window_around(click: Click, shape: tuple[int, int], size: int | None) -> Box | None:
    """A window of ``size`` pixels a side centred on ``click``; None (the whole image)
    without a size or when the image fits in it."""
    h, w = shape
    if size is None or (h <= size and w <= size):
        return None
    centre = Box(int(click.row), int(click.col), int(click.row) + 1, int(click.col) + 1)
    return expand_box(centre, (h, w), 1.0, size)


def zoom_box(
    previous_probability: np.ndarray,
    clicks: tuple[Click, ...],
    previous_roi: Box | None,
    previous_clicks: int,
    *,
    expand: float,
    min_size: int,
    recompute_iou: float,
) -> Box | None:
    """Zoom-in focus crop (release ``ZoomIn``) once a mask exists; None is the whole image.

    ``previous_probability`` (H, W) is the result before the newest click, ``clicks`` all
    clicks including the newest, ``previous_roi`` the crop of the previous click and
    ``previous_clicks`` how many clicks that one had.
    """
    shape = previous_probability.shape
    mask = previous_probability > 0.5
    positives = [c for c in clicks if c.positive]
    for c in positives:
        mask[int(round(c.row)), int(round(c.col))] = True
    if not mask.any():
        return previous_roi
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    current = expand_box(Box(rows[0], cols[0], rows[-1] + 1, cols[-1] + 1), shape, expand, min_size)
    # The first click's box (the first-click window) is not a zoom-in box: as in the
    # release, whose first click sees the whole image, the second click chooses afresh.
    old = previous_roi if previous_clicks > 1 else None
    if old is None or box_iou(current, old) < recompute_iou:
        return current
    if any(
        not (old.top <= c.row < old.bottom and old.left <= c.col < old.right) for c in positives
    ):
        return current
    return old
