"""The NoC click simulator: where a user would click next, given the truth and a prediction.

Follows the evaluation protocol of the AdaptiveClick release (inherited from RITM's
``Clicker._get_next_click``): the next click goes to the point deepest inside the larger
error region, measured by an exact Euclidean distance transform of the 1-px zero-padded
error masks (so pixels on the image border count as 1 px away from "outside").
Shared by evaluation (NoC) and iterative training.

Other first prompts (issue #16): :func:`jittered_box`, the object's box with each edge moved
by Gaussian noise (segment-anything's box noise: 10 % of the side, at most 20 px), and
:func:`next_scribble`, a stroke along the skeleton of the larger error region (for the first
prompt, the object), as a user draws along the middle of what is wrong.

All arrays are ``(H, W)`` with (row, col) indexing; batches are ``(B, H, W)``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from napari_adaptiveclick.interactive.boxed import bounding_box
from napari_adaptiveclick.interactive.prompts import BoxPrompt, Click, Scribble


def _padded_distance(region: np.ndarray) -> np.ndarray:
    """Distance of every pixel of ``region`` (H, W) bool to the nearest pixel outside it,
    with everything beyond the image border counting as outside (1 px zero padding).

    Computed on the region's bounding box padded by 1 px: the nearest outside pixel of any
    region pixel is never farther than that ring, so this equals the transform of the whole
    padded image (exactly) at a fraction of the cost for local errors.
    """
    distance = np.zeros(region.shape, dtype=np.float64)
    rows = np.flatnonzero(region.any(axis=1))
    if rows.size == 0:
        return distance
    cols = np.flatnonzero(region.any(axis=0))
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    padded = np.pad(region[window], 1, mode="constant", constant_values=False)
    distance[window] = distance_transform_edt(padded)[1:-1, 1:-1]
    return distance


def next_click(gt: np.ndarray, pred: np.ndarray, clicked: np.ndarray | None = None) -> Click | None:
    """The simulated user's next click for one object.

    Parameters
    ----------
    gt, pred : (H, W) bool
        Ground-truth object mask and the current predicted mask.
    clicked : (H, W) bool, optional
        Pixels already clicked; they are never chosen again.

    Returns
    -------
    Click | None
        A positive click in the false-negative region if its largest distance-to-boundary
        is strictly greater than that of the false-positive region (ties give a negative
        click), placed at the first pixel in row-major order that attains the maximum.
        ``None`` when no unclicked error pixel is left.
    """
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.ndim != 2 or gt.shape != pred.shape:
        raise ValueError(
            f"gt and pred must be 2D masks of the same shape, got {gt.shape} and {pred.shape}."
        )
    fn_dt = _padded_distance(gt & ~pred)
    fp_dt = _padded_distance(~gt & pred)
    if clicked is not None:
        clicked = np.asarray(clicked, dtype=bool)
        if clicked.shape != gt.shape:
            raise ValueError(f"clicked has shape {clicked.shape}, expected {gt.shape}.")
        fn_dt[clicked] = 0.0
        fp_dt[clicked] = 0.0
    fn_max, fp_max = fn_dt.max(), fp_dt.max()
    if fn_max == 0.0 and fp_max == 0.0:
        return None
    positive = bool(fn_max > fp_max)
    dt = fn_dt if positive else fp_dt
    row, col = np.unravel_index(int(np.argmax(dt)), dt.shape)  # argmax: first maximum
    return Click(row=float(row), col=float(col), positive=positive)


def next_clicks(
    gts: np.ndarray, preds: np.ndarray, clicked: np.ndarray | None = None
) -> list[Click | None]:
    """:func:`next_click` for each item of a batch of ``(B, H, W)`` bool masks."""
    gts = np.asarray(gts, dtype=bool)
    preds = np.asarray(preds, dtype=bool)
    if gts.ndim != 3 or gts.shape != preds.shape:
        raise ValueError(
            f"gts and preds must be (B, H, W) batches of the same shape, got {gts.shape} "
            f"and {preds.shape}."
        )
    if clicked is None:
        clicked = np.zeros_like(gts)
    elif np.shape(clicked) != gts.shape:
        raise ValueError(f"clicked has shape {np.shape(clicked)}, expected {gts.shape}.")
    return [next_click(g, p, c) for g, p, c in zip(gts, preds, clicked, strict=True)]


def jittered_box(
    gt: np.ndarray,
    rng: np.random.Generator | None = None,
    jitter: float = 0.1,
    max_shift: float = 20.0,
) -> BoxPrompt:
    """The box around the object ``gt`` (H, W) bool, each edge moved by N(0, ``jitter`` times
    the box's side) pixels, at most ``max_shift``, and kept inside the image; without ``rng``
    the exact box. A jitter that would empty the box gives the exact box."""
    box = bounding_box(np.asarray(gt, dtype=bool))
    if box.height <= 0:
        raise ValueError("The object mask is empty: there is no box around it.")
    exact = np.array([box.top, box.left, box.bottom, box.right], dtype=np.float64)
    if rng is None:
        return BoxPrompt(*exact)
    sides = np.array([box.height, box.width, box.height, box.width], dtype=np.float64)
    shift = np.clip(rng.normal(0.0, jitter * sides), -max_shift, max_shift)
    h, w = gt.shape
    top, left, bottom, right = np.clip(exact + shift, 0, [h, w, h, w])
    jittered = BoxPrompt(top, left, bottom, right)
    b = jittered.pixel_box()
    return jittered if b.height > 0 and b.width > 0 else BoxPrompt(*exact)


def _longest_path(skeleton: np.ndarray) -> list[tuple[int, int]]:
    """The longest 8-connected path of a skeleton (H, W) bool, from two breadth-first
    searches (exact on a tree): its pixels in order; the first pixel alone for one pixel."""
    pixels = {(int(r), int(c)) for r, c in zip(*np.nonzero(skeleton), strict=True)}
    steps = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]

    def farthest(start: tuple[int, int]) -> tuple[tuple[int, int], dict]:
        parent, frontier, last = {start: start}, [start], start
        while frontier:
            following = []
            for r, c in frontier:
                for dr, dc in steps:
                    q = (r + dr, c + dc)
                    if q in pixels and q not in parent:
                        parent[q] = (r, c)
                        following.append(q)
            if following:
                last = min(following)  # the first in row-major order: deterministic
            frontier = following
        return last, parent

    end, _ = farthest(min(pixels))
    other, parent = farthest(end)
    path = [other]
    while path[-1] != end:
        path.append(parent[path[-1]])
    return path


def stroke_along(region: np.ndarray, positive: bool = True, spacing: int = 4) -> Scribble:
    """A stroke along the middle of ``region`` (H, W) bool (one connected region): the longest
    path of its skeleton, without the ends where the region is less than half its largest
    depth (the skeleton's spurs run out to the border), a vertex every ``spacing`` pixels.
    A region too small for a skeleton gives a one-point stroke at its deepest pixel."""
    from skimage.morphology import skeletonize

    region = np.asarray(region, dtype=bool)
    depth = _padded_distance(region)
    skeleton = skeletonize(region) & region
    if not skeleton.any():
        row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
        return Scribble([(float(row), float(col))], positive)
    path = _longest_path(skeleton)
    deep = [i for i, p in enumerate(path) if depth[p] >= 0.5 * max(depth[q] for q in path)]
    path = path[deep[0] : deep[-1] + 1]
    vertices = path[::spacing] + ([path[-1]] if (len(path) - 1) % spacing else [])
    return Scribble([(float(r), float(c)) for r, c in vertices], positive)


def next_scribble(
    gt: np.ndarray, pred: np.ndarray, clicked: np.ndarray | None = None
) -> Scribble | None:
    """The simulated user's next stroke: along the error region (8-connected part of the
    false negatives or false positives) that holds the point :func:`next_click` would
    choose, positive in a false negative. None when no error is left."""
    from scipy.ndimage import label

    click = next_click(gt, pred, clicked)
    if click is None:
        return None
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    error = gt & ~pred if click.positive else ~gt & pred
    parts, _ = label(error, structure=np.ones((3, 3)))
    return stroke_along(parts == parts[int(click.row), int(click.col)], click.positive)
