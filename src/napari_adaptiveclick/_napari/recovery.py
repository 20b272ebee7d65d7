"""Autosave and recovery of the controller's annotation.

Every edit of a running annotation is saved at once in the image's store
(:mod:`napari_adaptiveclick.volume.autosave`: beside the image file, in :attr:`Recovery.root`
when the user chose a folder, else in the per-user cache), so that after a crash or a kill,
Start on the same image offers to restore it exactly. The controller tells
:class:`Recovery` when a session begins (:meth:`~Recovery.begin`, once the annotator is
loaded), after each edit (:meth:`~Recovery.save`, on the Qt thread, once the records are
stored with the labels) and when it stops (:meth:`~Recovery.end`). Then:

- a store left by an earlier session is offered (:attr:`~Recovery.offer`,
  :attr:`~Recovery.offer_text`) until the first edit: :meth:`~Recovery.restore` writes its
  planes into the labels and returns its records and object id; :meth:`~Recovery.discard`
  sets it aside (renamed, never deleted), and so does an edit made without either;
- a damaged store, or one made for another image, is reported (:attr:`~Recovery.problem`),
  never loaded, and set aside at the first edit;
- each save writes the records and the planes that changed: those of records added or
  removed since the last save (a click, propagation, undo, reset or replay), the plane of
  the last click (a new threshold) and planes painted by hand;
- :meth:`~Recovery.save_labels` (napari's writers) and :meth:`~Recovery.clear` end the store.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from psygnal import Signal
from qtpy.QtCore import QTimer

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick.volume import VolumeAnnotator
from napari_adaptiveclick.volume.autosave import AutosaveError, AutosaveSnapshot, AutosaveStore
from napari_adaptiveclick.volume.image_key import ImageKey, store_folders
from napari_adaptiveclick.volume.records import ClickRecord
from napari_adaptiveclick.volume.slicing import SliceGeometry


def image_path(image: Image) -> str | None:
    """The file ``image`` was opened from (None when it has none)."""
    source = getattr(getattr(image, "source", None), "path", None)
    volume = image.metadata.get(L.GEOMETRY_KEY)
    return source or (str(volume.path) if getattr(volume, "path", None) else None)


def changed_planes(before: Sequence[ClickRecord], after: Sequence[ClickRecord], axis: int):
    """Planes (along ``axis``) of the records in one list and not the other."""
    old, new = Counter(before), Counter(after)
    return {r.plane for r in (old - new) + (new - old) if r.axis == axis}


def painted_planes(
    atoms: Iterable, selection: L.VolumeSelection, geometry: SliceGeometry
) -> set[int] | None:
    """Planes of the annotated volume that a napari paint event's history ``atoms`` touched
    (masked atoms with a ``slice_key`` box, or ``(indices, old, new)`` tuples); None when
    they cannot be read (then every plane is compared)."""
    if len(selection.spatial_axes) == 2:
        return {0}
    axis, planes = selection.spatial_axes[geometry.axis], set()
    try:
        for atom in atoms:
            box = getattr(atom, "slice_key", None)
            if box is not None:
                bounds = [(int(s.start), int(s.stop) - 1) for s in box]
            else:
                bounds = [(int(min(i)), int(max(i))) for i in atom[0]]
            if selection.extra_axis is not None:
                low, high = bounds[selection.extra_axis]
                if not low <= selection.extra_index <= high:
                    continue
            planes.update(range(bounds[axis][0], bounds[axis][1] + 1))
    except (TypeError, ValueError, IndexError):
        return None
    return planes


class Recovery:
    """The autosave of one controller's annotations (see the module docstring)."""

    changed = Signal()  # the offer, the problem or the store changed
    status = Signal(str)

    def __init__(self, busy: Callable[[], bool]) -> None:
        self.root: Path | None = None  # a folder the user chose for stores (None: beside)
        self.offer: AutosaveSnapshot | None = None
        self.problem = ""  # what is wrong with the store found at Start
        self.note = ""  # what became of it (set aside where), or why saving failed
        self._busy = busy  # True while a worker may edit the annotator
        self._store: AutosaveStore | None = None  # written, or found at Start
        self._undecided = False  # the store was found at Start: restore, discard or set aside
        self._folders: list[Path] = []  # where the image's store may be, preferred first
        self._written: dict[Path, tuple[AutosaveStore, Labels]] = {}  # stores of this viewer
        self._labels: Labels | None = None
        self._selection: L.VolumeSelection | None = None
        self._annotator: VolumeAnnotator | None = None
        self._saved: list[ClickRecord] = []  # the records at the last save
        self._painted: set[int] | None = set()  # planes painted since then (None: any)

    @property
    def folder(self) -> Path | None:
        """Where the store is (or will be, after the first edit)."""
        return None if self._store is None else self._store.folder

    @property
    def offer_text(self) -> str:
        if self.offer is None:
            return ""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.offer.saved))
        return f"Restore unsaved annotation from {when} ({len(self.offer.records)} clicks)"

    # ------------------------------------------------------------------ session
    def begin(
        self,
        image: Image,
        labels: Labels,
        selection: L.VolumeSelection,
        annotator: VolumeAnnotator,
    ) -> None:
        """Follow a session that starts: continue its store when it is this viewer's store
        of these labels, else look for one to offer."""
        self.end()
        extra = selection.extra_axis
        name = "" if extra is None else f"axis{extra}-{selection.extra_index}"
        key = ImageKey.of(annotator.image, image_path(image), name)
        self._folders = store_folders(key, self.root)
        self._labels, self._selection, self._annotator = labels, selection, annotator
        self._saved, self._painted = L.stored_records(labels), set()
        labels.events.paint.connect(self._on_paint)
        self.offer, self.problem, self.note, self._undecided = None, "", "", False
        for folder in self._folders:
            store, mirrored = self._written.get(folder, (None, None))
            if mirrored is labels and store.key == key:  # this viewer's store of these labels
                self._store = store
                self.changed.emit()
                return
        found = [AutosaveStore(f, key) for f in self._folders if AutosaveStore(f, key).exists]
        self._store = found[0] if found else AutosaveStore(self._folders[0], key)
        if found:
            self._undecided = True
            try:
                self.offer = self._store.read()
            except (AutosaveError, OSError) as error:
                self.problem = (
                    f"{error} It was not loaded, and will be set aside at your first edit."
                )
            show_warning(
                self.problem
                or f"Unsaved annotation of '{image.name}' found: press '{self.offer_text}' in "
                "the AdaptiveClick panel, or Discard."
            )
        self.changed.emit()

    def end(self) -> None:
        """Stop following the session (its store stays, to be continued or offered)."""
        if self._labels is not None:
            self._labels.events.paint.disconnect(self._on_paint)
        self._labels = self._selection = self._annotator = None

    @property
    def pending(self) -> bool:
        """True while planes painted by hand wait to be saved (at the next turn of the
        event loop: napari tells of a paint before it writes it; during a job, after it)."""
        return self._painted is None or bool(self._painted)

    def _on_paint(self, event) -> None:
        if self._annotator is None:
            return
        planes = painted_planes(event.value, self._selection, self._annotator.geometry)
        self._painted = None if planes is None or self._painted is None else self._painted | planes
        QTimer.singleShot(0, self._save_painted)

    def _save_painted(self) -> None:
        if self.pending and not self._busy():
            self.save()

    # ------------------------------------------------------------------ saving
    def save(self) -> None:
        """Save the state after an edit (see the module docstring)."""
        annotator = self._annotator
        if annotator is None or self._store is None:
            return
        if self._undecided:
            self._set_aside("damaged" if self.problem else "replaced")
        records, geometry = L.stored_records(self._labels), annotator.geometry
        if self._painted is None:
            touched = set(range(geometry.planes))
        else:
            touched = self._painted | changed_planes(self._saved, records, geometry.axis)
        if records and records[-1].axis == geometry.axis:
            touched.add(records[-1].plane)
        info = dict(self._labels.metadata.get(L.METADATA_KEY, {}))  # the settings
        info.pop("records", None)
        info.update(labels=self._labels.name, labels_path=self._labels.source.path)
        args = (annotator.labels, geometry.axis, records, annotator.object_id, touched, info)
        failure = None
        for store in self._candidates():
            try:
                store.write(*args)
            except (AutosaveError, OSError) as error:  # e.g. a read-only folder: the next
                failure = failure or error
                continue
            self._store, self._written[store.folder] = store, (store, self._labels)
            self._saved, self._painted = records, set()
            if store.generation == 1:
                self.changed.emit()  # a new store: its folder is shown
            return
        self.note = f"Autosave failed ({failure}); choose another Autosave folder."
        self.status.emit(self.note)
        self.changed.emit()

    def _candidates(self) -> list[AutosaveStore]:
        """The store to write; a new one may go to the next folder if its own fails."""
        store = self._store
        if store.generation:
            return [store]
        others = [AutosaveStore(f, store.key) for f in self._folders if f != store.folder]
        return [store, *(other for other in others if not other.exists)]

    def _set_aside(self, reason: str) -> None:
        """Rename the store found at Start (the status is left to the edit that caused it)."""
        try:
            aside = self._store.set_aside(reason)
            self.note = f"The earlier autosave was set aside (nothing deleted): {aside}"
        except OSError as error:
            self.note = f"Could not set the earlier autosave aside: {error}"
        show_info(self.note)
        self.offer, self.problem, self._undecided = None, "", False
        self.changed.emit()

    # ------------------------------------------------------------------ the user's choices
    def restore(self) -> tuple[list[ClickRecord], int]:
        """Write the offered planes into the labels; returns the records and the object id
        to continue with. Raises ValueError when nothing is offered or it does not fit."""
        snapshot, annotator = self.offer, self._annotator
        if snapshot is None or annotator is None:
            raise ValueError("There is no autosaved annotation to restore.")
        differ = snapshot.apply(annotator.labels)
        self._store.continue_from(snapshot)
        self._written[self._store.folder] = (self._store, self._labels)
        self.offer, self._undecided, self._saved = None, False, list(snapshot.records)
        text = (
            f"Restored {len(snapshot.records)} clicks and the labels of {len(snapshot.planes)} "
            f"planes from {snapshot.folder}."
        )
        if differ:
            shown = ", ".join(map(str, differ[:10])) + (" ..." if len(differ) > 10 else "")
            made_on = snapshot.info.get("labels_path") or snapshot.info.get("labels")
            text += (
                f" Planes {shown} differ from the autosaved state: the annotation was made "
                f"on other labels ({made_on})."
            )
            show_warning(text)
        self.status.emit(text)
        self.changed.emit()
        return list(snapshot.records), snapshot.object_id

    def discard(self) -> None:
        """Set the store found at Start aside (renamed, nothing deleted)."""
        if self._undecided:
            self._set_aside("discarded")
            self.status.emit(self.note)

    def clear(self) -> None:
        """End the store: delete it (a store found at Start is only set aside)."""
        if self._undecided:
            self.discard()
        elif self._store is not None and self._store.exists:
            self._store.clear()
            self.status.emit(f"Autosave cleared ({self._store.folder}).")
            self.changed.emit()

    def save_labels(self, path: str | Path) -> list[str]:
        """Write the labels with napari's writers (this plugin's for NIfTI, MetaImage and
        NRRD), then :meth:`clear` the store."""
        if self._labels is None:
            raise ValueError("Nothing to save: start annotating first.")
        written = self._labels.save(str(path))
        if not written:
            raise ValueError(f"No writer could save labels as {path}; try .tif or .nii.gz.")
        self.clear()
        return list(written)
