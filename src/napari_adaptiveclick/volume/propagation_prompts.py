"""The prompts a propagation gives each next slice, derived from the previous slice's mask.

:func:`stroke_near` (the default: a positive stroke along the mask's middle), :func:`grown_box`
(its bounding box grown) and :func:`derived_click` (the NoC simulator's click with the mask as
the truth), used by :class:`~napari_adaptiveclick.volume.propagation.Propagation`.
"""

from __future__ import annotations

import numpy as np

from napari_adaptiveclick.evaluation.simulator import next_click, stroke_along
from napari_adaptiveclick.interactive.boxed import bounding_box, box_slices, box_union, paste
from napari_adaptiveclick.interactive.prompts import BoxPrompt, Click, Scribble
from napari_adaptiveclick.interactive.transforms import Box


def carried(crop: np.ndarray, box: Box, start: np.ndarray | None) -> bool:
    """True when a slice's ``start`` mask (whole plane, or None) holds nothing of the object
    but the previous slice's mask (``crop`` in ``box``) carried over as its prior."""
    if start is None:
        return True
    return bounding_box(start) == box and bool(np.array_equal(start[box_slices(box)], crop))


def grown_box(box: Box, grow: float, shape: tuple[int, int]) -> BoxPrompt:
    """The box prompt around an object whose bounding ``box`` is given: each side moved out by
    ``grow`` times the box's height (rows) or width (columns) + 2 px, clipped to a plane of
    ``shape``."""
    dr = grow * (box.bottom - box.top) + 2
    dc = grow * (box.right - box.left) + 2
    rows, cols = shape
    return BoxPrompt(
        max(box.top - dr, 0.0),
        max(box.left - dc, 0.0),
        min(box.bottom + dr, float(rows)),
        min(box.right + dc, float(cols)),
    )


def stroke_near(crop: np.ndarray, box: Box) -> Scribble:
    """The positive stroke along the previous slice's mask (``crop`` in ``box``): the NoC
    simulator's stroke (:func:`~napari_adaptiveclick.evaluation.simulator.stroke_along`) along
    the middle of its largest 8-connected part, in plane pixels."""
    from scipy.ndimage import label

    parts, count = label(crop, structure=np.ones((3, 3)))
    largest = 1 + int(np.argmax(np.bincount(parts.ravel())[1:])) if count > 1 else 1
    stroke = stroke_along(parts == largest, positive=True)
    return Scribble([(r + box.top, c + box.left) for r, c in stroke.points], True)


def derived_click_near(
    crop: np.ndarray, box: Box, start: np.ndarray | None, shape: tuple[int, int]
) -> Click:
    """:func:`derived_click` for the source mask given as its ``crop`` in ``box`` of a plane
    of ``shape`` (``start``: the whole plane's, or None): the same click, computed in the
    masks' bounding box plus a 1-px margin."""
    rows, cols = shape
    union = box if start is None else box_union(box, bounding_box(start))
    window = Box(
        max(union.top - 1, 0),
        max(union.left - 1, 0),
        min(union.bottom + 1, rows),
        min(union.right + 1, cols),
    )
    source = paste(crop, box, window)
    near = None if start is None else start[box_slices(window)]
    click = derived_click(source, near)
    return Click(click.row + window.top, click.col + window.left, click.positive)


def derived_click(source: np.ndarray, start: np.ndarray | None) -> Click:
    """The click propagation derives from the previous slice's mask ``source`` (H, W) bool for
    a slice whose prediction starts from ``start``: the NoC simulator's click with ``source``
    as the truth, or, when ``start`` already equals it, a positive click at its deepest point.
    Computed on the masks' bounding box plus a 1-px margin, which gives the same click as on
    the whole slice (every path out of the masks crosses that all-background margin)."""
    union = source if start is None else source | start
    rows, cols = np.nonzero(union.any(1))[0], np.nonzero(union.any(0))[0]
    top, left = max(int(rows[0]) - 1, 0), max(int(cols[0]) - 1, 0)
    box = (slice(top, int(rows[-1]) + 2), slice(left, int(cols[-1]) + 2))
    empty = np.zeros_like(source[box])
    click = None if start is None else next_click(source[box], start[box])
    if click is None:
        click = next_click(source[box], empty)
    return Click(click.row + top, click.col + left, click.positive)
