"""Clicks, click history with undo, disk encodings and click-record files.

One coordinate convention: (row, col) in pixels of the image the click was put on
(napari data order for a 2D slice). Conversions into network-input pixels happen in
:mod:`napari_adaptiveclick.transforms` (``CropResize.forward_points``), nowhere else.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Click:
    """One click at (row, col) in image pixels; ``positive`` is True for the object."""

    row: float
    col: float
    positive: bool = True


def disk_maps(clicks: Iterable[Click], shape: tuple[int, int], radius: float = 5.0) -> np.ndarray:
    """Binary disk encodings of clicks, ``(2, H, W)`` float32: channel 0 positive, 1 negative.

    A pixel is 1 where its squared distance to some click of that polarity is <= radius^2
    (SPEC.md section 1.1; the release's DistMaps with ``use_disks=True``).
    """
    height, width = shape
    maps = np.zeros((2, height, width), dtype=np.float32)
    r2 = radius * radius
    span = int(np.ceil(radius))
    for click in clicks:
        r0, c0 = float(click.row), float(click.col)
        top, bottom = max(int(np.floor(r0)) - span, 0), min(int(np.ceil(r0)) + span + 1, height)
        left, right = max(int(np.floor(c0)) - span, 0), min(int(np.ceil(c0)) + span + 1, width)
        if top >= bottom or left >= right:
            continue
        rows = np.arange(top, bottom, dtype=np.float32)[:, None] - r0
        cols = np.arange(left, right, dtype=np.float32)[None, :] - c0
        inside = rows * rows + cols * cols <= r2
        channel = 0 if click.positive else 1
        np.maximum(
            maps[channel, top:bottom, left:right], inside, out=maps[channel, top:bottom, left:right]
        )
    return maps


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
            plane=int(float(row["plane"])),
            row=float(row["row"]),
            col=float(row["col"]),
            positive=_parse_bool(row["positive"], where),
            object_id=int(float(row["object_id"])),
            order=int(float(row.get("order") or index)),
            model=str(row.get("model") or ""),
            axis=int(float(row.get("axis") or 0)),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: click {index} is not valid: {exc}") from None


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
        with path.open(newline="") as handle:
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
