"""The click records kept with a Labels layer, brought up to date edit by edit.

The Labels layer's metadata holds the records of the clicks that made it
(:func:`~.layers.store_provenance`): those it had before Start, then the annotator's,
numbered after them, and the settings that made them. After each edit only the records added
since the last update are converted; those an undo removed are dropped, so an edit costs the
records it changed, not all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from napari.layers import Labels
from napari.utils.notifications import show_info

from napari_adaptiveclick._napari.layers import METADATA_KEY, stored_records
from napari_adaptiveclick._napari.loading import AnnotationSettings
from napari_adaptiveclick.volume.clicks_file import write_click_records
from napari_adaptiveclick.volume.records import ClickRecord, record_dict


def stored_settings(
    settings: AnnotationSettings, axis: int, extra_index: int, image: str
) -> dict[str, Any]:
    """The settings kept with the records: all but the device (the machine's), with the
    slicing ``axis``, the time/channel ``extra_index`` and the ``image`` layer's name."""
    kept = {k: v for k, v in asdict(settings).items() if k != "device"}
    return {**kept, "axis": axis, "extra_index": extra_index, "image": image}


def save_clicks(labels: Labels | None, path: str | Path) -> Path:
    """Write the click records kept with ``labels`` (CSV, or JSON for .json)."""
    if labels is None:
        raise ValueError("Nothing to save: start annotating first.")
    records = stored_records(labels)
    write_click_records(path, records)
    show_info(f"Saved {len(records)} clicks to {path}")
    return Path(path)


class RecordMirror:
    """The records of ``labels``: ``earlier`` ones (stored before Start, kept first) and the
    annotator's, given to :meth:`update` after each edit."""

    def __init__(self, labels: Labels, earlier: Sequence[ClickRecord] = ()) -> None:
        self.labels = labels
        self.records: list[ClickRecord] = list(earlier)  # what the labels hold, in order
        self._offset = len(self.records)
        self._dicts = [record_dict(r) for r in self.records]  # the list kept in the metadata
        self._seen: list[ClickRecord] = []  # the annotator's records at the last update

    def update(self, annotator_records: Sequence[ClickRecord], settings: dict[str, Any]) -> None:
        """Store ``annotator_records`` (all of them, in order) after the earlier ones, and
        ``settings``, with the labels."""
        seen, same = self._seen, 0
        limit = min(len(seen), len(annotator_records))
        while same < limit and seen[same] is annotator_records[same]:
            same += 1
        del self.records[self._offset + same :], self._dicts[self._offset + same :]
        for record in annotator_records[same:]:
            if self._offset:
                record = replace(record, order=record.order + self._offset)
            self.records.append(record)
            self._dicts.append(record_dict(record))
        self._seen = list(annotator_records)
        self.labels.metadata[METADATA_KEY] = {"records": self._dicts, **settings}
