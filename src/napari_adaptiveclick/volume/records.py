"""Click records: the provenance of a volume annotation, and their CSV / JSON files.

A record is a click with the plane and object it belongs to, its order and the model that
predicted it; replaying the records of a session gives back its labels
(:func:`napari_adaptiveclick.volume.replay.replay_records`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from napari_adaptiveclick.interactive.prompts import Click


@dataclass(frozen=True)
class ClickRecord:
    """A click as stored for provenance: which plane (index along the slicing ``axis`` of the
    volume) and object it belongs to, in which order, predicted with which model."""

    plane: int
    row: float
    col: float
    positive: bool
    object_id: int
    order: int = 0
    model: str = ""
    axis: int = 0

    @property
    def click(self) -> Click:
        return Click(self.row, self.col, self.positive)


_RECORD_FIELDS = [f.name for f in fields(ClickRecord)]
_REQUIRED_FIELDS = ["plane", "row", "col", "positive", "object_id"]


_TRUE = {"1", "true", "yes", "y", "positive", "pos", "+"}
_FALSE = {"0", "false", "no", "n", "negative", "neg", "-"}
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
        real = float(value)
        if not real.is_integer() or abs(real) > _EXACT_FLOAT:
            raise ValueError(
                f"{name} must be a whole number, got {value!r} (write large ids as integers, "
                "without a decimal point or exponent)"
            )
        number = int(real)
    if number < minimum:
        raise ValueError(f"{name} must be {minimum} or more, got {value!r}")
    return number


def _finite(value: object, name: str) -> float:
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _record_from_mapping(row: dict, where: str, index: int) -> ClickRecord:
    row = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    missing = [name for name in _REQUIRED_FIELDS if row.get(name) in (None, "")]
    if missing:
        raise ValueError(
            f"{where}: click {index} lacks {', '.join(missing)}; expected columns "
            f"{', '.join(_RECORD_FIELDS)} (order, model and axis optional)."
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
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: click {index} is not valid: {exc}") from None


def read_click_records(path: str | Path) -> list[ClickRecord]:
    """Read click records from CSV (header ``plane,row,col,positive,object_id[,order,model,axis]``)
    or JSON (a list of objects with those keys). Records are returned sorted by ``order``.

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
        if isinstance(items, dict):
            items = items.get("clicks", [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError(f"{path}: expected a JSON list of clicks (objects).")
    else:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # spreadsheets add a BOM
            items = [row for row in csv.DictReader(handle) if any(_filled(v) for v in row.values())]
    records = [_record_from_mapping(dict(item), str(path), i) for i, item in enumerate(items)]
    return sorted(records, key=lambda r: r.order)


def _given(row: dict, name: str, default: object) -> object:
    value = row.get(name)
    return default if value is None or (isinstance(value, str) and not value.strip()) else value


def _filled(value: object) -> bool:
    return bool(value.strip()) if isinstance(value, str) else value is not None


def write_click_records(path: str | Path, records: Sequence[ClickRecord]) -> None:
    """Write click records as CSV, or JSON when ``path`` ends with ``.json``."""
    path = Path(path)
    rows = [asdict(r) for r in records]
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=1))
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_RECORD_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
