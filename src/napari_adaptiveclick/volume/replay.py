"""Labels from a file of click records: the records replayed with a ClickSession."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np

from napari_adaptiveclick.interactive.prompts import MaskPrompt
from napari_adaptiveclick.interactive.transforms import IntensityStats
from napari_adaptiveclick.io.lazy import is_lazy
from napari_adaptiveclick.volume.annotator import VolumeAnnotator
from napari_adaptiveclick.volume.records import ClickRecord, record_problem
from napari_adaptiveclick.volume.slicing import SliceGeometry

_INT32_MAX = int(np.iinfo(np.int32).max)


def labels_dtype_for(max_id: int) -> np.dtype:
    """The dtype of new labels that must hold ids up to ``max_id``: int32 (napari's default)
    when it fits, else uint64 (ids beyond uint64 are refused by :func:`check_records`)."""
    return np.dtype(np.int32 if max_id <= _INT32_MAX else np.uint64)


def check_records(
    records: Sequence[ClickRecord],
    spatial_shape: Sequence[int],
    labels_dtype: np.dtype,
    start_ids: Collection[int] | None = None,
) -> int:
    """Refuse, before any prediction, records that cannot be replayed on a volume of
    ``spatial_shape`` (``(R, C)`` or ``(P, R, C)``) into labels of ``labels_dtype``: several
    slicing axes, clicks outside the volume, object ids the dtype cannot hold, a polygon mask
    without pixels or with another SHA-256 than recorded, a label mask whose label neither the
    start labels (``start_ids``, the ids in them; None: not known, not checked) nor an earlier
    record has. Returns the slicing axis. Raises ValueError naming the first offending click
    (by ``order``)."""
    shape = tuple(spatial_shape)
    geometry_shape = (1, *shape) if len(shape) == 2 else shape
    axes = {r.axis for r in records} or {0}
    if len(axes) > 1:
        raise ValueError(
            f"The clicks were made along several slicing axes {sorted(axes)}; replay one axis "
            "at a time."
        )
    geometry = SliceGeometry(geometry_shape, axes.pop())  # type: ignore[arg-type]
    dtype = np.dtype(labels_dtype)
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"Labels must have an integer dtype, got {dtype}.")
    limit = int(np.iinfo(dtype).max)
    rows, cols = geometry.slice_shape
    made: set[int] = set()  # object ids of the records before
    start_ids = None if start_ids is None else {int(i) for i in start_ids}
    for r in sorted(records, key=lambda r: r.order):
        if not geometry.contains(r.plane, r.row, r.col):
            raise ValueError(
                f"Click {r.order} at plane {r.plane}, (row {r.row:.1f}, col {r.col:.1f}) is "
                f"outside the volume ({geometry.planes} planes of {rows} x {cols} along axis "
                f"{geometry.axis}); nothing was predicted."
            )
        known = None if start_ids is None or r.kind != "mask" else start_ids | made
        problem = record_problem(r, (rows, cols)) or _mask_problem(r, (rows, cols), known)
        made.add(r.object_id)
        if problem is not None:
            raise ValueError(
                f"Record {r.order} ({r.kind}, plane {r.plane}): {problem} Nothing was predicted."
            )
        if not 1 <= r.object_id <= limit:
            raise ValueError(
                f"Click {r.order}: object id {r.object_id} does not fit: {dtype.name} labels "
                f"hold ids up to {limit} (0 is background); start from labels of a wider "
                "integer dtype (e.g. uint32 or uint64). Nothing was predicted."
            )
    return geometry.axis


def _mask_problem(
    record: ClickRecord, shape: tuple[int, int], start_ids: set[int] | None
) -> str | None:
    """Why the mask of ``record`` cannot be what it was (see :func:`check_records`), or None."""
    if record.kind != "mask":
        return None
    if record.mask_label:
        if start_ids is None or record.mask_label in start_ids:
            return None
        return (
            f"label {record.mask_label} is in no labels the replay starts from, and no earlier "
            "record makes it: pass --labels with the labels the annotation started from (a label "
            "painted by hand is in no record: paint it into those labels first)."
        )
    try:
        prompt = MaskPrompt.of_polygon(record.points, shape)
    except ValueError as err:
        return str(err)
    if record.mask_sha256 and prompt.sha256 != record.mask_sha256:
        return "the polygon's mask is not the one recorded (its SHA-256 differs)."
    return None


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
