"""The annotation controller: napari layers in, :class:`VolumeAnnotator` calls out.

Every action (click, undo, commit, reset, object choice, propagation, replay) goes through
one queue and runs in order; predictions run in napari thread workers, so the viewer never
waits for the model. A click that arrives while an earlier one is predicted makes the earlier
result stale: it is recorded (the next prediction builds on it) but not drawn. A click or
Cancel during a propagation stops it after the slice in progress.

The controller is assembled from one part per file: :mod:`.jobs` (the queue),
:mod:`.actions` (what each action does and says), :mod:`.click_input` (the click layer) and
:mod:`.placement` (which layers, and where the volume sits in the viewer). This file starts
and stops annotating, follows the layers and keeps the click records with the labels.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from psygnal import Signal
from qtpy.QtCore import QTimer

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick._napari.actions import KEY_HINTS, AnnotationActions
from napari_adaptiveclick._napari.click_input import ClickInput
from napari_adaptiveclick._napari.loading import AnnotationSettings, load_annotator
from napari_adaptiveclick._napari.placement import VolumePlacement, choose_layers
from napari_adaptiveclick.volume import (
    ClickOutcome,
    Propagation,
    PropagationReport,
    PropagationSettings,
    VolumeAnnotator,
)
from napari_adaptiveclick.volume.records import ClickRecord, read_click_records, write_click_records


class AnnotationController(ClickInput, AnnotationActions):
    """Connects an image, its Labels and a click Points layer of ``viewer`` to an annotator."""

    changed = Signal()  # object id, busy state or undo levels changed
    status = Signal(str)
    progress = Signal(int, int)  # done, total (propagation, replay)
    propagated = Signal(object)  # PropagationReport

    def __init__(self, viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.image: Image | None = None
        self.labels: Labels | None = None
        self.points = None
        self.annotator: VolumeAnnotator | None = None
        self.selection: L.VolumeSelection | None = None
        self.placement: VolumePlacement | None = None  # set once the model is loaded
        self.settings = AnnotationSettings()
        self.positive = True
        self.propagation_settings = PropagationSettings()
        self.last_report: PropagationReport | None = None
        self.last_outcome: ClickOutcome | None = None
        self._earlier: list[ClickRecord] = []  # records stored with the labels before start
        self._pending: list[tuple[np.ndarray, bool]] = []  # clicks shown but not predicted yet
        self._loader = None
        self._propagation: Propagation | None = None
        self._syncing = False
        viewer.layers.events.removed.connect(self._on_layer_removed)

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        return self.annotator is not None

    @property
    def busy(self) -> bool:
        return self._loader is not None or self._acting

    @property
    def object_id(self) -> int | None:
        return None if self.annotator is None else self.annotator.object_id

    def _say(self, text: str) -> None:
        self.viewer.status = text
        self.status.emit(text)

    def _fail(self, text: str) -> None:
        show_error(text)
        self.status.emit(text)

    def current_plane(self) -> int:
        """The plane of the annotated volume the viewer shows now."""
        return self.placement.current_plane()

    def go_to_plane(self, plane: int) -> None:
        """Scroll the viewer to ``plane`` of the annotated volume."""
        self.placement.go_to_plane(plane)

    # ------------------------------------------------------------------ start / stop
    def start(self, image: Image, labels: Labels | None, settings: AnnotationSettings) -> None:
        """Check the layers, then load the model in a worker; ready when :attr:`ready`.
        Raises ValueError (with what to do) for unusable layers."""
        if self.busy:
            raise ValueError(
                "Wait for the current prediction to finish (or Cancel) before restarting."
            )
        image, labels, selection, axis = choose_layers(self.viewer, image, labels, settings)
        self.stop()
        self.image, self.labels, self.selection, self.settings = image, labels, selection, settings
        self._earlier = L.stored_records(labels)
        self._say(f"Loading model '{settings.model}' on {settings.device}...")
        self._loader = create_worker(
            load_annotator,
            settings,
            selection.volume(image.data),
            selection.volume(labels.data),
            axis,
            _start_thread=False,
            _ignore_errors=True,
        )
        self._loader.returned.connect(self._on_loaded)
        self._loader.errored.connect(self._on_load_error)
        self._loader.finished.connect(self._on_loader_finished)
        self._loader.start()
        self.changed.emit()

    def _on_loaded(self, annotator: VolumeAnnotator) -> None:
        if self.image is None:  # stopped (a layer was removed) while loading
            return
        self.annotator = annotator
        self.placement = VolumePlacement(
            self.viewer, self.image, self.selection, annotator.geometry
        )
        if self.labels not in self.viewer.layers:
            self.labels = L.unwrap(self.viewer.add_layer(self.labels))
        if self._earlier:
            annotator.select_object(
                max(annotator.next_free_id(), max(r.object_id for r in self._earlier) + 1)
            )
        self.labels.events.selected_label.connect(self._on_selected_label)
        self._ensure_points()
        self.placement.cut_along_axis()
        self.labels.selected_label = annotator.object_id
        self._store()
        self.changed.emit()
        device = annotator.session.device
        self._say(
            f"Ready: model '{self.settings.model}' on {device}; click on the image. {KEY_HINTS}"
        )
        self.viewer.help = KEY_HINTS

    def _on_load_error(self, error: Exception) -> None:
        self.image = self.labels = None
        self._fail(
            f"Could not load model '{self.settings.model}': {error}. Choose another model or checkpoint."
        )

    def _on_loader_finished(self) -> None:
        self._loader = None
        self.changed.emit()

    def stop(self) -> None:
        """Detach from the layers (the labels stay as they are); pending clicks are dropped."""
        self._queue.clear()
        self._pending.clear()
        self._stop_long_job()
        if self.points is not None:
            self.points.events.data.disconnect(self._on_points_data)
        if self.labels is not None:
            self.labels.events.selected_label.disconnect(self._on_selected_label)
        self.annotator = self.placement = self.image = self.labels = self.points = None
        self.changed.emit()

    def _on_layer_removed(self, event) -> None:
        layer = L.unwrap(event.value)
        if layer is self.points:
            self.points = None
            QTimer.singleShot(0, self._restore_points)  # not now: the viewer may be closing
        elif layer is self.image or layer is self.labels:
            running = self._worker is not None
            self.stop()
            text = f"Layer '{layer.name}' was removed, so annotation stopped"
            if running:
                self._fail(
                    f"{text}; the prediction in progress was discarded (other layers are unchanged). Press Start to continue."
                )
            else:
                self._say(f"{text}. Press Start to continue.")

    # ------------------------------------------------------------------ labels
    def _on_selected_label(self, event) -> None:
        if (
            not self._syncing
            and self.ready
            and self.labels.selected_label != self.annotator.object_id
        ):
            self.select_object(int(self.labels.selected_label))

    def _after_edit(self) -> None:
        if self.ready:
            self.labels.refresh()
            if self.labels.selected_label != self.annotator.object_id:
                self._syncing = True
                self.labels.selected_label = self.annotator.object_id
                self._syncing = False
            self._store()
            self._show_points()
        self.changed.emit()

    def _store(self) -> None:
        records = list(self._earlier)
        offset = len(records)
        records += [
            ClickRecord(**{**asdict(r), "order": r.order + offset}) for r in self.annotator.records
        ]
        settings = {k: v for k, v in asdict(self.settings).items() if k != "device"}
        settings.update(
            axis=self.annotator.geometry.axis,
            extra_index=self.selection.extra_index,
            image=self.image.name,
        )
        L.store_provenance(self.labels, records, settings)

    def save_clicks(self, path: str | Path) -> Path:
        """Write the click records of the labels (CSV, or JSON for .json)."""
        if self.labels is None:
            raise ValueError("Nothing to save: start annotating first.")
        write_click_records(path, L.stored_records(self.labels))
        show_info(f"Saved {len(L.stored_records(self.labels))} clicks to {path}")
        return Path(path)

    def load_clicks(self, path: str | Path) -> int:
        """Read click records and replay them onto the labels; returns how many."""
        records = read_click_records(path)
        self.replay(records)
        return len(records)
