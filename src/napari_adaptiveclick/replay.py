"""Replay stored clicks to labels: how an annotation is reproduced or batch-run without the GUI.

Clicks of one object on one plane are replayed in their stored order on a fresh session (the
previous probability fed back as during annotation); the final mask is written under the
object's id where no earlier object already claimed the pixel, as the widget does by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby

import numpy as np

from .clicks import ClickRecord
from .session import ClickSession
from .transforms import intensity_stats


def plane_of(data: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Slice ``index`` along ``axis`` of a 3D array (a 2D array is its own only plane)."""
    if data.ndim == 2:
        if index != 0:
            raise ValueError(f"The image is 2D: clicks must be on plane 0, got plane {index}.")
        return data
    if not 0 <= index < data.shape[axis]:
        raise ValueError(
            f"Plane {index} is outside the volume: axis {axis} has {data.shape[axis]} planes."
        )
    return np.take(data, index, axis=axis)


def replay_clicks(
    data: np.ndarray,
    records: Sequence[ClickRecord],
    session: ClickSession,
    *,
    rgb: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Labels (same spatial shape as ``data``, uint32) from click records.

    ``data`` is a 2D image, a 2D RGB image (``rgb=True``, last axis channels) or a 3D volume;
    planes are taken along each record's ``axis``. Volume-wide intensity statistics make all
    planes of a volume normalised alike, as in the widget.
    """
    spatial = data.shape[:-1] if rgb else data.shape
    if len(spatial) not in (2, 3):
        raise ValueError(f"Expected a 2D image or a 3D volume, got data of shape {data.shape}.")
    labels = np.zeros(spatial, dtype=np.uint32)
    stats = intensity_stats(data)
    ordered = sorted(records, key=lambda r: r.order)
    key = lambda r: (r.object_id, r.axis, r.plane)  # noqa: E731
    first_seen = {}
    for r in ordered:
        first_seen.setdefault(key(r), r.order)
    groups = sorted({key(r) for r in ordered}, key=lambda k: first_seen[k])
    by_key = {k: list(g) for k, g in groupby(sorted(ordered, key=key), key=key)}
    for done, group_key in enumerate(groups):
        object_id, axis, plane = group_key
        if object_id <= 0:
            raise ValueError(f"Object ids must be positive integers, got {object_id}.")
        if len(spatial) == 3 and not 0 <= axis < 3:
            raise ValueError(f"Slicing axis {axis} is not an axis of a 3D volume.")
        image = plane_of(data, axis, plane) if len(spatial) == 3 else plane_of(data, 0, plane)
        session.set_image(image, stats=stats)
        result = None
        for r in by_key[group_key]:
            result = session.add_click(r.row, r.col, r.positive)
        target = np.moveaxis(labels, axis, 0)[plane] if len(spatial) == 3 else labels
        target[result.mask & (target == 0)] = object_id
        if progress is not None:
            progress(done + 1, len(groups))
    return labels
