"""Click records: the provenance of a volume annotation, and their CSV / JSON files.

A record is a click with the plane and object it belongs to, its order and the model that
predicted it; replaying the records of a session gives back its labels
(:func:`napari_adaptiveclick.volume.replay.replay_records`).
"""

from __future__ import annotations

import csv
import json
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


def _parse_bool(value: object, where: str) -> bool:
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "y", "positive", "pos", "+"}:
        return True
    if text in {"0", "false", "no", "n", "negative", "neg", "-"}:
        return False
    raise ValueError(f"{where}: 'positive' must be true/false or 1/0, got {value!r}.")


def _record_from_mapping(row: dict, where: str, index: int) -> ClickRecord:
    missing = [name for name in _REQUIRED_FIELDS if row.get(name) in (None, "")]
    if missing:
        raise ValueError(
            f"{where}: click {index} lacks {', '.join(missing)}; expected columns "
            f"{', '.join(_RECORD_FIELDS)} (order and model optional)."
        )
    try:
        return ClickRecord(
            plane=_whole(row["plane"], "plane"),
            row=float(row["row"]),
            col=float(row["col"]),
            positive=_parse_bool(row["positive"], where),
            object_id=_whole(row["object_id"], "object_id"),
            order=_whole(row.get("order") or index, "order"),
            model=str(row.get("model") or ""),
            axis=_whole(row.get("axis") or 0, "axis"),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: click {index} is not valid: {exc}") from None


def _whole(value: object, name: str) -> int:
    """An integer field: "3", 3 and 3.0 are 3; 2.5 is refused (never truncated)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def read_click_records(path: str | Path) -> list[ClickRecord]:
    """Read click records from CSV (header ``plane,row,col,positive,object_id[,order,model,axis]``)
    or JSON (a list of objects with those keys). Records are returned sorted by ``order``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Click file not found: {path}")
    if path.suffix.lower() == ".json":
        items = json.loads(path.read_text())
        if isinstance(items, dict):
            items = items.get("clicks", [])
        if not isinstance(items, list):
            raise ValueError(f"{path}: expected a JSON list of clicks.")
    else:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # spreadsheets add a BOM
            items = list(csv.DictReader(handle))
    records = [_record_from_mapping(dict(item), str(path), i) for i, item in enumerate(items)]
    return sorted(records, key=lambda r: r.order)


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
