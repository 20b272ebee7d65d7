"""*Load clicks...*: a clicks file whose objects already have pixels in the labels would
change those objects (its clicks refine them, as a replay onto the labels they were saved
with does). The user is asked first: refine them, add the file's objects under new ids, or
cancel. Labels on disk are searched only where this session edited them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from qtpy.QtWidgets import QMessageBox, QWidget

from napari_adaptiveclick.io.lazy import held_values, is_lazy
from napari_adaptiveclick.volume.clicks_file import read_click_records
from napari_adaptiveclick.volume.records import ClickRecord

REFINE, NEW = "refine", "new"


def _ids_in_labels(annotator) -> set[int] | None:
    """The ids the annotator's labels hold, in one pass (None for labels on disk)."""
    return None if is_lazy(annotator.labels) else set(held_values(annotator.labels).tolist())


def existing_objects(annotator, records: Sequence[ClickRecord]) -> list[int]:
    """The object ids of ``records`` that already have pixels in the annotator's labels."""
    held = _ids_in_labels(annotator)
    ids = sorted({r.object_id for r in records})
    return [i for i in ids if (i in held if held is not None else annotator.has_pixels(i))]


def renumbered(annotator, records: Sequence[ClickRecord], ids: Sequence[int]) -> list:
    """``records`` with the objects ``ids`` moved to new ids, free in the labels and in the
    records (the other objects keep theirs)."""
    taken, mapping = {r.object_id for r in records} | (_ids_in_labels(annotator) or set()), {}
    candidate = annotator.next_free_id()
    for object_id in ids:
        while candidate in taken:
            candidate += 1
        mapping[object_id] = candidate
        taken.add(candidate)
    return [replace(r, object_id=mapping.get(r.object_id, r.object_id)) for r in records]


def ask(parent: QWidget, ids: Sequence[int]) -> str | None:
    """:data:`REFINE`, :data:`NEW` or None (cancel), asked in a dialog."""
    shown = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
    box = QMessageBox(parent)
    box.setWindowTitle("Load clicks")
    box.setText(
        f"The labels already have object{'s' * (len(ids) > 1)} {shown} of this clicks file. "
        "Replaying its clicks there changes those objects."
    )
    refine = box.addButton("Refine them", QMessageBox.AcceptRole)
    new = box.addButton("Add as new objects", QMessageBox.AcceptRole)
    box.addButton(QMessageBox.Cancel)
    box.setDefaultButton(new)
    box.exec_()
    return {id(refine): REFINE, id(new): NEW}.get(id(box.clickedButton()))


def load_clicks(widget, path: str | Path) -> bool:
    """Read the clicks file at ``path`` and replay it through ``widget``'s controller, after
    asking (:func:`ask`) when its objects exist in the labels; False when cancelled."""
    controller = widget.controller
    records = read_click_records(path)
    annotator = controller.annotator
    if annotator is not None:
        annotator.check_replay(records)  # a file that cannot be replayed fails before asking
    ids = [] if annotator is None else existing_objects(annotator, records)
    if ids:
        choice = ask(widget, ids)
        if choice is None:
            controller.status.emit("Load clicks cancelled: nothing was replayed.")
            return False
        if choice == NEW:
            records = renumbered(annotator, records, ids)
    controller.replay(records)
    return True
