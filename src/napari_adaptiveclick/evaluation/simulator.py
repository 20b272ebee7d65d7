"""The NoC click simulator: where a user would click next, given the truth and a prediction.

Follows the evaluation protocol of the AdaptiveClick release (inherited from RITM's
``Clicker._get_next_click``): the next click goes to the point deepest inside the larger
error region, measured by an exact Euclidean distance transform of the 1-px zero-padded
error masks (so pixels on the image border count as 1 px away from "outside").
Shared by evaluation (NoC) and iterative training.

All arrays are ``(H, W)`` with (row, col) indexing; batches are ``(B, H, W)``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from napari_adaptiveclick.interactive.prompts import Click


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
