"""Labels from a file of click records: the records replayed with a ClickSession."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from napari_adaptiveclick.interactive.transforms import IntensityStats
from napari_adaptiveclick.volume.annotator import VolumeAnnotator
from napari_adaptiveclick.volume.records import ClickRecord


def replay_records(
    image: np.ndarray,
    records: Sequence[ClickRecord],
    session,
    *,
    rgb: bool = False,
    labels: np.ndarray | None = None,
    overwrite: bool = False,
    stats: IntensityStats | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Labels from click records, applied in order with the rules of
    :mod:`napari_adaptiveclick.volume`.

    ``image``: a 2D image ``(R, C)``, an RGB image ``(R, C, 3)`` (``rgb=True``), a volume
    ``(P, R, C)`` or an RGB stack ``(P, R, C, 3)``; volumes are cut along the records'
    ``axis``. ``labels``: the labels the session started from (default: zeros, int32), not
    modified. Returns labels of the image's spatial shape: those the napari widget showed when
    the records were made with the same model, threshold and overwrite setting (manual
    painting excepted). ``progress(done, total)`` is called after each click.
    """
    image = np.asarray(image)
    flat = image.ndim == (3 if rgb else 2)
    volume = image[None] if flat else image
    axes = {r.axis for r in records} or {0}
    if len(axes) > 1:
        raise ValueError(
            f"The clicks were made along several slicing axes {sorted(axes)}; replay one axis "
            "at a time."
        )
    spatial = volume.shape[:3]
    start = np.zeros(spatial, np.int32)
    if labels is not None:
        start[...] = np.asarray(labels).reshape(spatial)
    annotator = VolumeAnnotator(
        volume, start, session, axis=axes.pop(), overwrite=overwrite, stats=stats
    )
    for done, _ in enumerate(annotator.replay(records), start=1):
        if progress is not None:
            progress(done, len(records))
    return start[0] if flat else start
