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
- each save writes the records and the tiles of the labels that changed: the boxes the
  annotator changed (clicks, propagation, undo, reset, replay, a new threshold), handed over
  by the controller (:meth:`~Recovery.note_changes`), and those painted by hand
  (:mod:`.painting`; the annotator is told of the painted ids too, also for labels on disk,
  which need no autosave: their store is written at once). The first
  save of a store is made at once (it chooses the folder); later ones are prepared on the Qt
  thread (the changed tiles copied) and written in a background thread, so a kill loses at
  most the edit being written; :attr:`~Recovery.pending` is False once all is on disk, and
  the store is flushed before a restore, Stop, set-aside and clear;
- :meth:`~Recovery.save_labels` (napari's writers) and :meth:`~Recovery.clear` end the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from psygnal import Signal
from qtpy.QtCore import QTimer

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick._napari.files import (
    PLUGIN,
    SAVED_HOOKS,
    WRITER_EXTENSIONS,
    refuse_writing_over,
    write_labels_layer,
)
from napari_adaptiveclick._napari.layers import image_path
from napari_adaptiveclick._napari.painting import changed_boxes, painted_objects
from napari_adaptiveclick.interactive.boxed import box_union
from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.io.chunked import split_store_path
from napari_adaptiveclick.io.lazy import is_lazy
from napari_adaptiveclick.io.writable import replace_problem
from napari_adaptiveclick.volume import VolumeAnnotator
from napari_adaptiveclick.volume.autosave import AutosaveError, AutosaveSnapshot, AutosaveStore
from napari_adaptiveclick.volume.image_key import ImageKey, store_folders
from napari_adaptiveclick.volume.records import ClickRecord, with_threshold


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
        self._image: str | None = None  # the file the annotated image was opened from
        self._selection: L.VolumeSelection | None = None
        self._annotator: VolumeAnnotator | None = None
        self._records: Callable[[], list[ClickRecord]] = list  # the records kept now
        self._changes: dict[int, Box | None] = {}  # changed since the last save (None: all)
        self._painted = False  # painted by hand since then

    @property
    def folder(self) -> Path | None:
        """Where the store is (or will be, after the first edit)."""
        return None if self._store is None else self._store.folder

    @property
    def offer_text(self) -> str:
        if self.offer is None:
            return ""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.offer.saved))
        clicks, planes = len(self.offer.records), len(self.offer.planes)  # painting has no clicks
        return (
            f"Restore the autosaved annotation from {when} ({clicks} click"
            f"{'s' * (clicks != 1)}, labels edited on {planes} plane{'s' * (planes != 1)})"
        )

    # ------------------------------------------------------------------ session
    def begin(
        self,
        image: Image,
        labels: Labels,
        selection: L.VolumeSelection,
        annotator: VolumeAnnotator,
        records: Callable[[], list[ClickRecord]] | None = None,
    ) -> None:
        """Follow a session that starts: continue its store when it is this viewer's store
        of these labels, else look for one to offer. ``records()``: the click records kept
        with the labels now (default: read from their metadata). Labels on disk (a zarr
        store) need no autosave: every edit is written to their store at once (the ids
        painted by hand are told to ``annotator`` all the same)."""
        self.end()
        self._labels, self._selection, self._annotator = labels, selection, annotator
        self._image = image_path(image)
        labels.events.paint.connect(self._on_paint)
        SAVED_HOOKS.append(self._on_saved)  # File > Save Layers with this plugin's writer
        if is_lazy(annotator.labels):
            self._store, self.offer, self.problem, self._undecided = None, None, "", False
            self.note = "Labels on disk: each edit is written to their store at once."
            self.changed.emit()
            return
        extra = selection.extra_axis
        name = "" if extra is None else f"axis{extra}-{selection.extra_index}"
        key = ImageKey.of(annotator.image, self._image, name)
        self._folders = store_folders(key, self.root)
        self._records = records or (lambda: L.stored_records(labels))
        self._changes, self._painted = {}, False
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
                or f"An autosaved annotation of '{image.name}' was found: press "
                f"'{self.offer_text}' in the AdaptiveClick panel, or Discard."
            )
        self.changed.emit()

    def end(self) -> None:
        """Stop following the session (its store stays, to be continued or offered; what
        waits to be written is written first)."""
        if self._labels is not None:
            self._labels.events.paint.disconnect(self._on_paint)
        if self._on_saved in SAVED_HOOKS:
            SAVED_HOOKS.remove(self._on_saved)
        self._labels = self._selection = self._annotator = self._image = None
        self._flush()

    def _on_saved(self, data: object, paths: list[str]) -> None:
        """The labels of this session were saved (the writer's hook): end the store, as
        *Save labels...* does."""
        if self._labels is not None and data is self._labels.data:
            self._flush()
            self.clear()

    def _flush(self) -> None:
        if self._store is not None and not self._store.flush():
            self.note = f"Autosave failed ({self._store.error}); choose another Autosave folder."
            self.status.emit(self.note)

    @property
    def pending(self) -> bool:
        """True while edits painted by hand wait to be saved (at the next turn of the event
        loop: napari tells of a paint before it writes it; during a job, after it), or a save
        is not yet on disk."""
        return self._painted or (self._store is not None and self._store.busy)

    def note_changes(self, changes: Mapping[int, Box | None]) -> None:
        """The annotator changed the labels in these boxes (plane -> box; None: anywhere on
        the plane): saved at the next :meth:`save`."""
        if self._annotator is not None and self._store is not None:
            self._add_changes(changes)

    def _add_changes(self, changes: Mapping[int, Box | None]) -> None:
        for plane, box in changes.items():
            old = self._changes.get(plane, box)
            self._changes[plane] = None if old is None or box is None else box_union(old, box)

    def _on_paint(self, event) -> None:
        if self._annotator is None:
            return
        geometry = self._annotator.geometry
        objects = painted_objects(event.value, self._selection, geometry)
        for object_id, boxes in (objects or {}).items():
            self._annotator.painted.note(object_id, boxes)  # (copied: safe during a job)
        if self._store is None:  # labels on disk: written to their store already
            return
        boxes = None if objects is None else changed_boxes(objects)
        self._add_changes(dict.fromkeys(range(geometry.planes)) if boxes is None else boxes)
        self._painted = True
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
        info = dict(self._labels.metadata.get(L.METADATA_KEY, {}))  # the settings
        info.pop("records", None)
        info.update(labels=self._labels.name, labels_path=self._labels.source.path)
        changes, self._changes, self._painted = self._changes, {}, False
        args = (annotator.labels, annotator.geometry.axis, self._records(), annotator.object_id)
        if self._store.started:
            self._store.save_later(*args, changes, info)
            if self._store.error is not None:  # an earlier write failed (tried again now)
                self._failed(self._store.error)
            return
        failure = None
        for store in self._candidates():
            try:
                store.write(*args, changes, info)
            except (AutosaveError, OSError) as error:  # e.g. a read-only folder: the next
                failure = failure or error
                continue
            self._store, self._written[store.folder] = store, (store, self._labels)
            if store.generation:
                self.changed.emit()  # a new store: its folder is shown
            return
        self._add_changes(changes)  # tried again at the next save
        self._failed(failure)

    def _failed(self, error: Exception) -> None:
        self.note = f"Autosave failed ({error}); choose another Autosave folder."
        self.status.emit(self.note)
        self.changed.emit()

    def _candidates(self) -> list[AutosaveStore]:
        """The store to write first; a new one may go to the next folder if its own fails."""
        store = self._store
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
        """Write the offered labels into the labels; returns the records and the object id
        to continue with. Raises ValueError when nothing is offered or it does not fit."""
        snapshot, annotator = self.offer, self._annotator
        if snapshot is None or annotator is None:
            raise ValueError("There is no autosaved annotation to restore.")
        differ = snapshot.apply(annotator.labels)
        self._store.continue_from(snapshot)
        self._written[self._store.folder] = (self._store, self._labels)
        self.offer, self._undecided, self._changes = None, False, {}
        text = (
            f"Restored {len(snapshot.records)} clicks and the labels of {len(snapshot.planes)} "
            f"planes from {snapshot.folder}."
        )
        if snapshot.torn:
            text += " (The edit being saved when it stopped was cut short: it is not in it.)"
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
        records = with_threshold(snapshot.records, snapshot.info.get("threshold"))
        return records, snapshot.object_id  # (older records: the session's threshold)

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
        """Write the labels with this plugin's writer where it takes the file's extension
        (NIfTI, MetaImage, NRRD, zarr, TIFF as a stack of grey label slices, PNG) or the path
        lies in a store (an OME-Zarr image's labels group), else with napari's, then
        :meth:`clear` the store; a path that would replace the annotated image is refused.
        napari's own TIFF writer tags a stack of 3 or 4 slices as one RGB image, which the
        command line would not read as slices."""
        if self._labels is None:
            raise ValueError("Nothing to save: start annotating first.")
        problem = replace_problem(path)
        if not problem and str(path).endswith(("/", os.sep)):
            problem = f"{path} ends with '/'; give a file name (e.g. labels.tif) to save to."
        if problem:
            raise ValueError(problem)
        refuse_writing_over(path, [self._image])
        split = split_store_path(path)
        if split is not None and split[2] == "zarr":  # napari would add an extension there
            data, attributes, _ = self._labels.as_layer_data_tuple()
            written = write_labels_layer(str(path), data, attributes)
        else:
            ours = str(path).lower().rstrip("/").endswith(WRITER_EXTENSIONS)
            written = self._labels.save(str(path), plugin=PLUGIN if ours else None)
        if not written:
            raise ValueError(f"No writer could save labels as {path}; try .tif or .nii.gz.")
        self.clear()
        return list(written)
