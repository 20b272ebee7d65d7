"""Labels from a file of click records: the records replayed with a ClickSession."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from napari_adaptiveclick.interactive.transforms import IntensityStats
from napari_adaptiveclick.io.lazy import is_lazy
from napari_adaptiveclick.volume.annotator import VolumeAnnotator
from napari_adaptiveclick.volume.records import ClickRecord
from napari_adaptiveclick.volume.replay_checks import check_records

_INT32_MAX = int(np.iinfo(np.int32).max)


def labels_dtype_for(max_id: int) -> np.dtype:
    """The dtype of new labels that must hold ids up to ``max_id``: int32 (napari's default)
    when it fits, else uint64 (ids beyond uint64 are refused by :func:`check_records`)."""
    return np.dtype(np.int32 if max_id <= _INT32_MAX else np.uint64)


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
    in_place: bool = False,
) -> np.ndarray:
    """Labels from click records, applied in order with the rules of
    :mod:`napari_adaptiveclick.volume`.

    ``image``: a 2D image ``(R, C)``, an RGB image ``(R, C, 3)`` (``rgb=True``), a volume
    ``(P, R, C)`` or an RGB stack ``(P, R, C, 3)``; volumes are cut along the records'
    ``axis``. ``labels``: the integer labels the session started from, not modified; their
    dtype and ids are kept exactly (default: zeros of :func:`labels_dtype_for` the largest
    id). Everything is checked (:func:`check_records`) before the first prediction. Returns
    labels of the image's spatial shape and the start labels' dtype: those the napari widget
    showed when the records were made with the same model and overwrite setting (each record
    replays at its own threshold; one without, at the session's)
    (manual painting excepted). ``progress(done, total)`` is called after each click.

    Big volumes: ``image`` may be lazy (a :class:`~napari_adaptiveclick.io.lazy.LazyArray`
    over a zarr / HDF5 store: only the crops the clicks need are read), and with
    ``in_place`` the records are written into ``labels`` itself (a volume, e.g. a writable
    labels store), which is returned.
    """
    if not is_lazy(image) or image.ndim == (3 if rgb else 2):
        image = np.asarray(image)
    flat = image.ndim == (3 if rgb else 2)
    volume = image[None] if flat else image
    spatial = tuple(volume.shape[:3])
    if in_place:
        if labels is None or tuple(labels.shape) != spatial:
            raise ValueError(f"in_place needs labels of the volume's shape {spatial}.")
        start = labels
    elif labels is None:
        start = np.zeros(spatial, labels_dtype_for(max((r.object_id for r in records), default=0)))
    else:
        start = np.array(labels).reshape(spatial)  # a copy, in the caller's dtype
    ids = None if is_lazy(start) or not any(r.mask_label for r in records) else np.unique(start)
    axis = check_records(records, spatial, start.dtype, ids)
    annotator = VolumeAnnotator(volume, start, session, axis=axis, overwrite=overwrite, stats=stats)
    for done, _ in enumerate(annotator.replay(records), start=1):
        if progress is not None:
            progress(done, len(records))
    return start[0] if flat else start
