"""The focus crop: which window of the image the model sees for a click.

After the first click of an object, the release's ``ZoomIn`` crops around the current mask
and the positive clicks, grown by ``expand`` (at least ``min_size`` a side), and keeps the
previous crop while it still overlaps the new one enough (SPEC.md section 4). Boxes are
:class:`~napari_adaptiveclick.interactive.transforms.Box` (exclusive bottom / right).

The previous probability may be given whole, or as the crop that holds all of it (it is zero
outside): ``origin`` is then where the crop starts in the image and ``shape`` the image's
shape, so that choosing a box costs the crop's size, not the image's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from napari_adaptiveclick.interactive.boxed import BoxedArray, bounding_box, box_union, is_empty
from napari_adaptiveclick.interactive.prompts import BoxPrompt, Click
from napari_adaptiveclick.interactive.transforms import Box

Origin = tuple[int, int]

ZOOM_MIN_SIZE = 200  # the release's smallest zoom-in crop side (SPEC.md 4), the default


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


def touches_inner_edge(
    mask: np.ndarray, box: Box, shape: tuple[int, int], origin: Origin = (0, 0)
) -> bool:
    """True if ``mask`` (H, W) has a pixel on an edge row / column of ``box`` that is not an
    edge of the image (the object probably goes on outside the box). ``mask`` may be a crop
    of the image's mask that covers ``box``, starting at ``origin``."""
    top, bottom, left, right = (
        box.top - origin[0],
        box.bottom - origin[0],
        box.left - origin[1],
        box.right - origin[1],
    )
    edges = (
        (box.top > 0, mask[top, left:right]),
        (box.bottom < shape[0], mask[bottom - 1, left:right]),
        (box.left > 0, mask[top:bottom, left]),
        (box.right < shape[1], mask[top:bottom, right - 1]),
    )
    return any(inside and line.any() for inside, line in edges)


def box_iou(a: Box, b: Box) -> float:
    inter_h = max(0, min(a.bottom, b.bottom) - max(a.top, b.top))
    inter_w = max(0, min(a.right, b.right) - max(a.left, b.left))
    inter = inter_h * inter_w
    union = a.height * a.width + b.height * b.width - inter
    return inter / union if union else 0.0


def window_around(anchor: Click | Box, shape: tuple[int, int], size: int | None) -> Box | None:
    """A window of ``size`` pixels a side centred on ``anchor`` (a click, or the box a stroke
    must see, e.g. :func:`points_box` of its points), doubled until it holds all of it; None
    (the whole image) without a size or when the image fits in it."""
    h, w = shape
    if isinstance(anchor, Click):
        row, col = int(anchor.row), int(anchor.col)
        anchor = Box(row, col, row + 1, col + 1)
    while size is not None and (h > size or w > size):
        window = expand_box(anchor, (h, w), 1.0, size)
        if box_union(window, anchor) == window:
            return window
        size *= 2
    return None


def square_box(box: Box) -> Box:
    """``box`` grown about its centre to a square of its longer side. It may reach past the
    image (the crop is then padded with zeros, as training pads its crops): the model sees
    the image at one scale on both axes, as in training, instead of a stretched crop."""
    side = max(box.height, box.width)
    top, left = box.top - (side - box.height) // 2, box.left - (side - box.width) // 2
    return Box(top, left, top + side, left + side)


def box_focus(box: BoxPrompt, shape: tuple[int, int], expand: float, min_size: int) -> Box:
    """The focus crop of a box prompt on an image of ``shape``: its pixels grown ``expand``
    times about their centre, at least ``min_size`` a side, clamped (the zoom-in's rule for a
    mask's box, so the object fills the model's input as it does after a click). A
    :class:`~.transforms.CropResize` of this crop maps the box to network pixels and back."""
    return expand_box(box.pixel_box(shape), shape, expand, min_size)


def box_start(
    box: BoxPrompt,
    shape: tuple[int, int],
    prior: BoxedArray,
    expand: float,
    min_size: int,
    box_prior: float,
) -> tuple[Box, BoxedArray]:
    """The focus crop of a box prompt (:func:`box_focus`) and the previous mask it starts from:
    ``prior``, or, for weights whose config sets ``box_prior`` > 0 (trained with boxes, or
    chosen for them) and no mask yet, ``box_prior`` inside the box (the seed is the box's
    centre click, see ``strokes``)."""
    roi = box_focus(box, shape, expand, min_size)
    if box_prior > 0 and not (prior.values > 0.5).any():
        prior = BoxedArray.filled(shape, box.pixel_box(), box_prior)
    return roi, prior


BOX_MARGIN = 0.2


def checked_box_margin(margin: float | None) -> float | None:
    """``margin`` if it is a number >= 0 (a fraction of the box's sides) or None (no limit);
    ValueError otherwise."""
    if margin is not None and not (math.isfinite(margin) and margin >= 0):
        raise ValueError(
            f"box_margin must be a number >= 0 (a fraction of the box's sides) or None (no "
            f"limit), got {margin!r}."
        )
    return margin


def checked_window(window: int | str | None, input_size: int, release: bool) -> int | None:
    """The session's first-click window in pixels: None (the whole image; always under the
    release protocol), an int >= 32, or "auto" (the model's ``input_size``); ValueError
    otherwise."""
    window = None if release else window
    if window == "auto":
        window = input_size
    if window is not None and (not isinstance(window, int) or window < 32):
        raise ValueError(
            f"first_click_window must be None, 'auto' or an int >= 32, got {window!r}."
        )
    return window


def box_limit(box: BoxPrompt, shape: tuple[int, int], margin: float) -> Box:
    """Where the mask may be after a box prompt (the object is inside the box): its pixels
    grown by ``margin`` of each side plus 2 px on every edge, so that a box drawn a little
    tight still holds its object, clamped to an image of ``shape``."""
    b = box.pixel_box(shape)
    grow_rows, grow_cols = int(margin * b.height) + 2, int(margin * b.width) + 2
    return Box(
        max(b.top - grow_rows, 0),
        max(b.left - grow_cols, 0),
        min(b.bottom + grow_rows, shape[0]),
        min(b.right + grow_cols, shape[1]),
    )


def next_limit(
    limit: Box | None, prompt: object, shape: tuple[int, int], margin: float | None
) -> Box | None:
    """The limit on the mask after ``prompt`` (None: none): a box prompt sets it
    (:func:`box_limit`, unless ``margin`` is None), a mask prompt clears it, and so does a
    positive click or stroke with a point outside it (the object goes on there); anything
    else keeps ``limit``."""
    if isinstance(prompt, BoxPrompt):
        return None if margin is None else box_limit(prompt, shape, margin)
    if limit is None or not hasattr(prompt, "positive"):
        return None
    outside = any(
        not (limit.top <= round(r) < limit.bottom and limit.left <= round(c) < limit.right)
        for r, c in prompt.points
    )
    return None if prompt.positive and outside else limit


def points_box(points: Sequence[tuple[float, float]]) -> Box:
    """The box of the pixels (nearest to) the (row, col) ``points``."""
    rows = [int(round(r)) for r, _ in points]
    cols = [int(round(c)) for _, c in points]
    return Box(min(rows), min(cols), max(rows) + 1, max(cols) + 1)


def zoom_box(
    previous_probability: np.ndarray,
    clicks: tuple[Click, ...],
    previous_roi: Box | None,
    previous_clicks: int,
    *,
    expand: float,
    min_size: int,
    recompute_iou: float,
    origin: Origin = (0, 0),
    shape: tuple[int, int] | None = None,
) -> Box | None:
    """Zoom-in focus crop (release ``ZoomIn``) once a mask exists; None is the whole image.

    ``previous_probability`` (H, W) is the result before the newest click (or its crop at
    ``origin`` in an image of ``shape``, see the module), ``clicks`` all clicks including
    the newest, ``previous_roi`` the crop of the previous click and ``previous_clicks`` how
    many clicks that one had.
    """
    shape = previous_probability.shape if shape is None else shape
    positives = [c for c in clicks if c.positive]
    bounds = bounding_box(previous_probability > 0.5, origin)
    for c in positives:
        row, col = int(round(c.row)), int(round(c.col))
        bounds = box_union(bounds, Box(row, col, row + 1, col + 1))
    if is_empty(bounds):
        return previous_roi
    current = expand_box(bounds, shape, expand, min_size)
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


# --- the release's conventions (``isegm/inference/transforms/zoom_in.py`` and
# ``isegm/utils/misc.py``), for ``ClickSession(protocol="release")``: inclusive bounds,
# expand then clip (no shift), positive clicks marked with ``int()``, the box IoU as the
# product of the two axes' segment IoUs, and no mask meaning the whole image.


def release_object_box(
    previous_probability: np.ndarray,
    clicks: tuple[Click, ...],
    expand: float,
    min_size: int,
    *,
    origin: Origin = (0, 0),
    shape: tuple[int, int] | None = None,
) -> Box:
    """The release's ``get_object_roi``, or the whole image when the previous mask is empty
    (its ``skip_clicks=-1``: the positive clicks alone never make a box); returned as an
    exclusive :class:`Box`. ``origin`` / ``shape``: see the module."""
    h, w = previous_probability.shape if shape is None else shape
    box = bounding_box(previous_probability > 0.5, origin)
    if is_empty(box):
        return Box(0, 0, h, w)
    for c in clicks:
        if c.positive:
            box = box_union(box, Box(int(c.row), int(c.col), int(c.row) + 1, int(c.col) + 1))
    bounds = []
    for lo, hi, limit in ((box.top, box.bottom - 1, h), (box.left, box.right - 1, w)):
        centre = 0.5 * (lo + hi)
        size = max(expand * (hi - lo + 1), min_size)
        start, stop = int(round(centre - 0.5 * size)), int(round(centre + 0.5 * size))
        bounds.append((max(0, start), min(limit - 1, stop)))
    (r0, r1), (c0, c1) = bounds
    return Box(r0, c0, r1 + 1, c1 + 1)


def release_box_iou(a: Box, b: Box) -> float:
    """The release's ``get_bbox_iou``: product of the row and column segment IoUs, with
    inclusive bounds."""

    def segment(a0: int, a1: int, b0: int, b1: int) -> float:
        inter = max(0, min(a1, b1) - max(a0, b0) + 1)
        return inter / max(1e-6, max(a1, b1) - min(a0, b0) + 1)

    return segment(a.top, a.bottom - 1, b.top, b.bottom - 1) * segment(
        a.left, a.right - 1, b.left, b.right - 1
    )


def release_zoom_box(
    previous_probability: np.ndarray,
    clicks: tuple[Click, ...],
    previous_roi: Box | None,
    *,
    expand: float,
    min_size: int,
    recompute_iou: float,
    origin: Origin = (0, 0),
    shape: tuple[int, int] | None = None,
) -> Box:
    """The release's ``ZoomIn.transform`` box choice: a new box when there is none yet, when
    a positive click lies outside the old one (its ``check_object_roi``, which compares with
    the inclusive maximum by ``>=``) or when the two overlap by less than ``recompute_iou``.
    ``origin`` / ``shape``: see the module."""
    current = release_object_box(
        previous_probability, clicks, expand, min_size, origin=origin, shape=shape
    )
    old = previous_roi
    if old is None:
        return current
    for c in clicks:
        if c.positive and not (
            old.top <= c.row < old.bottom - 1 and old.left <= c.col < old.right - 1
        ):
            return current
    if release_box_iou(current, old) < recompute_iou:
        return current
    return old
