"""Click records: the provenance of a volume annotation, and their CSV / JSON files.

A record is a prompt with the plane and object it belongs to, its order and the model that
predicted it; replaying the records of a session gives back its labels
(:func:`napari_adaptiveclick.volume.replay.replay_records`). Its ``kind`` (:data:`KINDS`) is
one of the prompts of :mod:`napari_adaptiveclick.interactive.prompts`:

- ``click``: at (row, col), ``positive`` or negative;
- ``scribble``: a stroke through ``points`` ((row, col) pairs), ``positive`` or negative;
- ``box``: ``points`` holds its corners (top, left) and (bottom, right);
- ``mask``: the object's mask, read on replay from the labels (``mask_label``, the id whose
  pixels on the plane it was) or rasterised from a lasso polygon (``points``, its vertices);
  ``mask_sha256`` is the mask's digest (``MaskPrompt.sha256``), and replay refuses a mask
  that differs.

A propagated slice whose mask was trimmed to the annotated slice's intensities
(:mod:`napari_adaptiveclick.volume.consistency`) records that range as ``intensity_min`` and
``intensity_max`` (image values; empty in CSV, null in JSON, when a side is open), and
replay trims the same way.

``threshold`` is the mask threshold the record's mask was written at (mask = probability >
threshold; a changed threshold re-applied to the last prompt updates its record), and replay
predicts each record at its own threshold. Files from before it was recorded leave it empty
(None): such records replay at the threshold the replay is given. (Records kept with a Labels
layer or an autosave from before it take the threshold stored with them: :func:`with_threshold`.)

(row, col) of a prompt other than a click is a point inside the plane that stands for it
(the stroke's first point, the box's seed, the centre of the mask's box). In CSV, ``points``
is written ``r c;r c;...``; JSON keeps a list of [r, c] pairs. Files without the ``kind``
column (clicks only, older versions) load as clicks. Files: :mod:`.clicks_file`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.interactive.prompts import (
    BoxPrompt,
    Click,
    MaskPrompt,
    Points,
    Prompt,
    Scribble,
    as_points,
    check_prompt,
)
from napari_adaptiveclick.volume.consistency import IntensityRange

KINDS: tuple[str, ...] = ("click", "scribble", "box", "mask")


@dataclass(frozen=True)
class ClickRecord:
    """A prompt as stored for provenance: which plane (index along the slicing ``axis`` of the
    volume) and object it belongs to, in which order, predicted with which model; ``kind``,
    ``points``, ``mask_label`` and ``mask_sha256`` say which prompt it is (see the module).
    Refuses fields that do not make a prompt of its kind."""

    plane: int
    row: float
    col: float
    positive: bool
    object_id: int
    order: int = 0
    model: str = ""
    axis: int = 0
    kind: str = "click"
    points: Points = ()
    mask_label: int = 0
    mask_sha256: str = ""
    intensity_min: float = -math.inf
    intensity_max: float = math.inf
    threshold: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", as_points(self.points))
        if self.threshold is not None:
            object.__setattr__(self, "threshold", checked_threshold(self.threshold))
        for name in ("intensity_min", "intensity_max"):
            value = getattr(self, name)
            object.__setattr__(self, name, _bound(value, name, name == "intensity_min"))
        if self.intensity_min == math.inf or self.intensity_max == -math.inf:
            raise ValueError(
                "an intensity range must keep some values: no +inf minimum or -inf maximum"
            )
        keep = self.keep  # raises for NaN or a minimum above the maximum
        if self.kind == "mask" and keep.limits:
            raise ValueError("a mask record keeps its mask as it is: no intensity range")
        n = len(self.points)
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "click" and n:
            raise ValueError("a click has no points (its position is row, col)")
        if self.kind == "scribble" and not n:
            raise ValueError("a scribble needs its points")
        if self.kind == "box" and n != 2:
            raise ValueError(f"a box needs 2 points, its corners; got {n}")
        if self.kind == "box" and not self.positive:
            raise ValueError("a box is always positive (it says where the object is): positive=1")
        if self.kind == "mask" and (self.mask_label > 0) == (n >= 3):
            raise ValueError(
                "a mask needs either mask_label (the label it was read from) or the 3 or more "
                "points of its polygon"
            )
        if self.mask_sha256 and not (
            len(self.mask_sha256) == 64 and set(self.mask_sha256) <= set("0123456789abcdef")
        ):
            raise ValueError(f"mask_sha256 must be 64 hex digits, got {self.mask_sha256!r}")

    @property
    def keep(self) -> IntensityRange:
        """The intensities the record's mask was trimmed to (every value: not trimmed)."""
        return IntensityRange(self.intensity_min, self.intensity_max)

    @property
    def click(self) -> Click:
        """The record's (row, col) as a click (for a click record, the click itself)."""
        return Click(self.row, self.col, self.positive)

    @property
    def prompt(self) -> Click | Scribble | BoxPrompt:
        """The prompt of a click, scribble or box record. A mask record's mask is read from
        the labels or its polygon when it is replayed: ValueError here."""
        if self.kind == "scribble":
            return Scribble(self.points, self.positive)
        if self.kind == "box":
            (top, left), (bottom, right) = self.points
            return BoxPrompt(top, left, bottom, right)
        if self.kind == "mask":
            raise ValueError(
                f"The record of order {self.order} is a mask: its mask is read when replayed."
            )
        return self.click


def checked_threshold(value: object) -> float:
    """``value`` as a mask threshold: a number strictly between 0 and 1; ValueError otherwise."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number in (0, 1), got {value!r}") from None
    if not 0.0 < number < 1.0:  # (True and False, 1.0 and 0.0, are refused here too)
        raise ValueError(f"threshold must be a number in (0, 1), got {value!r}")
    return number


def record_threshold(record: ClickRecord, default: float = PREDICTION_THRESHOLD) -> float:
    """The threshold ``record`` replays at: its own, or ``default`` when it has none."""
    return default if record.threshold is None else record.threshold


def with_threshold(records: Iterable[ClickRecord], threshold: object) -> list[ClickRecord]:
    """``records`` with ``threshold`` given to those that hold none (records stored before
    the field existed, beside settings that kept the session's threshold); as they are when
    ``threshold`` is None. ValueError for a threshold outside (0, 1)."""
    if threshold is None:
        return list(records)
    cut = checked_threshold(threshold)
    return [r if r.threshold is not None else replace(r, threshold=cut) for r in records]


def _bound(value: object, name: str, lower: bool) -> float:
    """An intensity bound: a number, or None / "" for the open side (NaN and the bounds'
    order are checked by :class:`IntensityRange`)."""
    if value is None or isinstance(value, str) and not value.strip():
        return -math.inf if lower else math.inf
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def record_problem(record: ClickRecord, shape: tuple[int, int]) -> str | None:
    """Why the scribble or box of ``record`` does not fit a plane of ``shape`` (rows, cols)
    (a stroke point outside it, a box without pixels in it); None when it fits. (Clicks and
    masks are checked by their (row, col) and when their mask is read.)"""
    if record.kind not in ("scribble", "box"):
        return None
    try:
        check_prompt(record.prompt, shape)
    except ValueError as err:
        return str(err)
    return None


def record_of(prompt: Prompt, shape: tuple[int, int], **fields) -> ClickRecord:
    """The record of ``prompt`` put on a plane of ``shape`` (rows, cols); ``fields``: plane,
    object_id, order, model, axis, intensity_min, intensity_max, threshold."""
    if isinstance(prompt, Click):
        return ClickRecord(row=prompt.row, col=prompt.col, positive=prompt.positive, **fields)
    if isinstance(prompt, Scribble):
        (row, col), kind = prompt.points[0], "scribble"
        fields.update(positive=prompt.positive, points=prompt.points)
    elif isinstance(prompt, BoxPrompt):
        seed, kind = prompt.seed(shape), "box"
        row, col = seed.row, seed.col
        fields.update(positive=True, points=prompt.points)
    elif isinstance(prompt, MaskPrompt):
        b, kind = prompt.box, "mask"
        row, col = float((b.top + b.bottom - 1) // 2), float((b.left + b.right - 1) // 2)
        fields.update(positive=True, points=prompt.polygon, mask_label=prompt.label)
        fields.update(mask_sha256=prompt.sha256)
    else:
        raise TypeError(f"Not a prompt: {prompt!r}")
    return ClickRecord(row=row, col=col, kind=kind, **fields)


def record_dict(record: ClickRecord) -> dict:
    """``record`` as plain data for JSON (click files, autosave, layer metadata): its open
    intensity bounds (infinite) as None, which :class:`ClickRecord` reads back as open."""
    row = asdict(record)
    for name in ("intensity_min", "intensity_max"):
        if not math.isfinite(row[name]):
            row[name] = None
    return row
