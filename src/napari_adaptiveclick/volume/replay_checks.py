"""The checks every replay of click records passes before its first prediction
(:func:`check_records`): used by ``segment``, by :func:`~.replay.replay_records` and by
:meth:`~.prompt_annotation.PromptAnnotation.replay`, so that a bad file changes nothing."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from napari_adaptiveclick.interactive.prompts import MaskPrompt
from napari_adaptiveclick.volume.records import ClickRecord, record_problem
from napari_adaptiveclick.volume.slicing import SliceGeometry


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
                f"The click of order {r.order} at plane {r.plane}, (row {r.row:.1f}, col "
                f"{r.col:.1f}) is outside the volume ({geometry.planes} planes of {rows} x "
                f"{cols} along axis {geometry.axis}); nothing was predicted."
            )
        known = None if start_ids is None or r.kind != "mask" else start_ids | made
        problem = record_problem(r, (rows, cols)) or _mask_problem(r, (rows, cols), known)
        made.add(r.object_id)
        if problem is not None:
            raise ValueError(
                f"The record of order {r.order} ({r.kind}, plane {r.plane}): {problem} "
                "Nothing was predicted."
            )
        if not 1 <= r.object_id <= limit:
            raise ValueError(
                f"The record of order {r.order}: object id {r.object_id} does not fit: "
                f"{dtype.name} labels hold ids up to {limit} (0 is background); start from "
                "labels of a wider integer dtype (e.g. uint32 or uint64). Nothing was predicted."
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
