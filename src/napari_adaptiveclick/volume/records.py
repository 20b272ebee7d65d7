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

(row, col) of a prompt other than a click is a point inside the plane that stands for it
(the stroke's first point, the box's seed, the centre of the mask's box). In CSV, ``points``
is written ``r c;r c;...``; JSON keeps a list of [r, c] pairs. Files without the ``kind``
column (clicks only, older versions) load as clicks.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", as_points(self.points))
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
            raise ValueError(f"Record {self.order} is a mask: its mask is read when replayed.")
        return self.click


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
    object_id, order, model, axis, intensity_min, intensity_max."""
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


_RECORD_FIELDS = [f.name for f in fields(ClickRecord)]
_REQUIRED_FIELDS = ["plane", "row", "col", "positive", "object_id"]


# with the TRUE / FALSE that spreadsheets write in German, French, Spanish, Italian, Dutch
_TRUE = {
    "1",
    "true",
    "yes",
    "y",
    "positive",
    "pos",
    "+",
    "wahr",
    "vrai",
    "verdadero",
    "vero",
    "waar",
}
_FALSE = {"0", "false", "no", "n", "negative", "neg", "-", "falsch", "faux", "falso", "onwaar"}
_EXACT_FLOAT = 2**53  # floats hold every whole number up to here, and not all beyond


def _parse_bool(value: object) -> bool:
    """``positive``: JSON true/false, the numbers 1/0, or text such as "false", "FALSE", "0",
    "no" (negative) and "true", "1", "yes" (positive); anything else is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"'positive' must be true/false, yes/no or 1/0, got {value!r}")


def _whole(value: object, name: str, minimum: int) -> int:
    """An integer field, read exactly: "3", 3, 3.0 and "3.0" are 3; 2.5 is refused (never
    truncated), as are floats too large to be exact (above 2**53) and values below ``minimum``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None:  # a float, or text such as "2.0" or "1e3"
        real = _number(value, name)
        if not real.is_integer() or abs(real) > _EXACT_FLOAT:
            raise ValueError(
                f"{name} must be a whole number, got {value!r} (write large ids as integers, "
                "without a decimal point or exponent)"
            )
        number = int(real)
    if number < minimum:
        raise ValueError(f"{name} must be {minimum} or more, got {value!r}")
    return number


def _number(value: object, name: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def _finite(value: object, name: str) -> float:
    number = _number(value, name)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _record_from_mapping(row: dict, where: str, index: int, line: int | None = None) -> ClickRecord:
    """The record of one CSV row or JSON object, the file's ``index``-th (from 0; on ``line``
    of a CSV): errors name it from 1, as people count, with its line."""
    surplus = [v for v in row.get(None) or () if str(v).strip()]  # values past the header's
    row = {str(k).strip().lower(): v for k, v in row.items() if k is not None and str(k).strip()}
    where = f"{where}: click {index + 1}" + ("" if line is None else f" (line {line})")
    missing = [name for name in _REQUIRED_FIELDS if row.get(name) in (None, "")]
    unknown = [k for k in row if k not in _RECORD_FIELDS]
    if missing or unknown or surplus:
        what = [f"lacks {', '.join(missing)}"] if missing else []
        what += [f"has unknown column(s) {', '.join(map(repr, unknown))}"] if unknown else []
        what += [f"has {len(surplus)} more value(s) than the header"] if surplus else []
        raise ValueError(
            f"{where} {' and '.join(what)}; expected columns {', '.join(_RECORD_FIELDS)} (all "
            "but the first five optional)"
            + ("; on a 2D image every click has plane 0." if "plane" in missing else ".")
        )
    try:
        axis = _whole(_given(row, "axis", 0), "axis", 0)
        if axis > 2:
            raise ValueError(f"axis must be 0, 1 or 2, got {row['axis']!r}")
        return ClickRecord(
            plane=_whole(row["plane"], "plane", 0),
            row=_finite(row["row"], "row"),
            col=_finite(row["col"], "col"),
            positive=_parse_bool(row["positive"]),
            object_id=_whole(row["object_id"], "object_id", 1),
            order=_whole(_given(row, "order", index), "order", 0),
            model=str(row.get("model") or "").strip(),
            axis=axis,
            kind=str(_given(row, "kind", "click")).strip().lower(),
            points=_parse_points(row.get("points")),
            mask_label=_whole(_given(row, "mask_label", 0), "mask_label", 0),
            mask_sha256=str(row.get("mask_sha256") or "").strip().lower(),
            intensity_min=row.get("intensity_min"),
            intensity_max=row.get("intensity_max"),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} is not valid: {exc}") from None


def _parse_points(value: object) -> Points:
    """``points``: JSON [[r, c], ...] or text ``r c;r c;...`` (empty: none)."""
    if value is None or isinstance(value, str) and not value.strip():
        return ()
    if isinstance(value, str):
        try:
            pairs = [[float(v) for v in pair.split()] for pair in value.split(";") if pair.strip()]
        except ValueError:
            raise ValueError(f"points must be 'row col;row col;...', got {value!r}") from None
        return as_points(pairs)
    return as_points(value)  # type: ignore[arg-type]


def _format_points(points: Points) -> str:
    return ";".join(f"{row!r} {col!r}" for row, col in points)


def read_click_records(path: str | Path) -> list[ClickRecord]:
    """Read click records from CSV (header ``plane,row,col,positive,object_id[,order,model,axis,
    kind,points,mask_label,mask_sha256,intensity_min,intensity_max]``) or JSON (a list of
    objects with those keys).
    Records are returned sorted by ``order``; files of clicks only (no ``kind``) load as clicks.

    Spreadsheet exports load as written: a UTF-8 byte-order mark, header names in any case or
    with spaces around them, and blank rows are accepted. Ids are read exactly (up to uint64);
    fractional or negative ids, non-finite positions and unclear ``positive`` values are
    refused with the click's index.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Click file not found: {path}")
    if path.suffix.lower() == ".json":
        try:
            items = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(items, dict):  # {"clicks": [...]}, or the layer metadata's {"records": ...}
            items = items.get("clicks", items.get("records", items))
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            keys = f" (it has {', '.join(map(repr, items))})" if isinstance(items, dict) else ""
            raise ValueError(f"{path}: expected a list of clicks or an object with 'clicks'{keys}.")
        lines: list[int | None] = [None] * len(items)
    else:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # spreadsheets add a BOM
            header = handle.readline()
            handle.seek(0)  # (the decoder starts again: the mark is skipped again)
            sep = _delimiter(header)
            reader = csv.DictReader(handle, delimiter=sep)
            rows = [(reader.line_num, row) for row in reader]
            rows = [(n, row) for n, row in rows if any(_filled(v) for v in row.values())]
            lines = [n for n, _ in rows]  # of the last physical line of each row
            items = [row if sep == "," else _decimal_points(row) for _, row in rows]
    records = [
        _record_from_mapping(dict(item), str(path), i, line)
        for i, (item, line) in enumerate(zip(items, lines, strict=True))
    ]
    return sorted(records, key=lambda r: r.order)


def _delimiter(header: str) -> str:
    """The separator of a clicks CSV, from its header line: commas, or the semicolons or tabs
    of spreadsheets set to a locale that writes decimal commas."""
    for sep in (",", ";", "\t"):
        if sep in header:
            return sep
    return ","


_DECIMAL_FIELDS = ("row", "col", "points", "intensity_min", "intensity_max")


def _decimal_points(row: dict) -> dict:
    """A row of a CSV separated by semicolons or tabs with its decimal commas (12,5) read as
    decimal points (its numbers hold no thousands separators)."""
    return {
        k: v.replace(",", ".")
        if isinstance(k, str) and k.strip().lower() in _DECIMAL_FIELDS and isinstance(v, str)
        else v
        for k, v in row.items()
    }


def record_dict(record: ClickRecord) -> dict:
    """``record`` as plain data for JSON (click files, autosave, layer metadata): its open
    intensity bounds (infinite) as None, which :class:`ClickRecord` reads back as open."""
    row = asdict(record)
    for name in ("intensity_min", "intensity_max"):
        if not math.isfinite(row[name]):
            row[name] = None
    return row


def _given(row: dict, name: str, default: object) -> object:
    value = row.get(name)
    return default if value is None or (isinstance(value, str) and not value.strip()) else value


def _filled(value: object) -> bool:
    return bool(value.strip()) if isinstance(value, str) else value is not None


def write_click_records(path: str | Path, records: Sequence[ClickRecord]) -> None:
    """Write click records as CSV, or JSON when ``path`` ends with ``.json``."""
    path = Path(path)
    rows = [record_dict(r) for r in records]
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=1))
        return
    rows = [{**row, "points": _format_points(row["points"])} for row in rows]  # None: empty
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_RECORD_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
