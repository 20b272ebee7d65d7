"""Clicks files: click records (:mod:`napari_adaptiveclick.volume.records`) as CSV or JSON.

CSV has one record per row under a header of the record's field names; JSON is a list of
objects with those keys (or ``{"clicks": [...]}`` / the layer metadata's ``{"records": ...}``).
Files written by older versions (clicks only, no ``kind``, no ``threshold``) load as they were
made. Every value is checked before a record is returned: a bad file is refused naming the
click, its line and what to fix.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from napari_adaptiveclick.interactive.prompts import Points, as_points
from napari_adaptiveclick.volume.records import ClickRecord, record_dict

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
        if not real.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        if abs(real) > _EXACT_FLOAT:
            raise ValueError(
                f"{name} must be a whole number, got {value!r}, too large to be exact as a "
                "decimal number: write it as an integer, without a decimal point or exponent"
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
            threshold=_given(row, "threshold", None),
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
    kind,points,mask_label,mask_sha256,intensity_min,intensity_max,threshold]``) or JSON (a list of
    objects with those keys).
    Records are returned sorted by ``order``; files of clicks only (no ``kind``) load as clicks.
    Records without a ``threshold`` keep None: the replay gives them its own (``segment
    --threshold``, the widget's *Threshold*).

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


_DECIMAL_FIELDS = ("row", "col", "points", "intensity_min", "intensity_max", "threshold")


def _decimal_points(row: dict) -> dict:
    """A row of a CSV separated by semicolons or tabs with its decimal commas (12,5) read as
    decimal points (its numbers hold no thousands separators)."""
    return {
        k: v.replace(",", ".")
        if isinstance(k, str) and k.strip().lower() in _DECIMAL_FIELDS and isinstance(v, str)
        else v
        for k, v in row.items()
    }


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
