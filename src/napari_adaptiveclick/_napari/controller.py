"""The annotation controller: napari layers in, :class:`VolumeAnnotator` calls out.

Every action (click, undo, commit, reset, object choice, propagation, replay) goes through
one queue and runs in order; predictions run in napari thread workers, so the viewer never
waits for the model. A click that arrives while an earlier one is predicted makes the earlier
result stale: it is recorded (the next prediction builds on it) but not drawn. A click or
Cancel during a propagation stops it after the slice in progress.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error, show_info
from psygnal import Signal
from qtpy.QtCore import QTimer

from ..clicks import ClickRecord, read_click_records, write_click_records
from ..volume import (
    ClickOutcome,
    PropagatedSlice,
    Propagation,
    PropagationReport,
    PropagationSettings,
    VolumeAnnotator,
    default_slicing_axis,
)
from . import layers as L
from .loading import AnnotationSettings, load_annotator

KEY_HINTS = "T: polarity | C: commit | Shift-C: reset | Ctrl-Z: undo | Shift-P: propagate"


def _steps(items: Iterator) -> Iterator:
    yield from items


class AnnotationController:
    """Connects an image, its Labels and a click Points layer of ``viewer`` to an annotator."""

    changed = Signal()  # object id, busy state or undo levels changed
    status = Signal(str)
    progress = Signal(int, int)  # done, total (propagation, replay)
    propagated = Signal(object)  # PropagationReport

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.image: Image | None = None
        self.labels: Labels | None = None
        self.points = None
        self.annotator: VolumeAnnotator | None = None
        self.selection: L.VolumeSelection | None = None
        self.settings = AnnotationSettings()
        self.positive = True
        self.propagation_settings = PropagationSettings()
        self.last_report: PropagationReport | None = None
        self.last_outcome: ClickOutcome | None = None
        self._earlier: list[ClickRecord] = []  # records stored with the labels before start
        self._queue: deque[tuple[str, tuple]] = deque()
        self._pending: list[tuple[np.ndarray, bool]] = []  # clicks shown but not predicted yet
        self._worker = None
        self._on_finish: Callable[[], None] | None = None  # run when the worker ends
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
        return self._loader is not None or self._worker is not None or bool(self._queue)

    @property
    def object_id(self) -> int | None:
        return None if self.annotator is None else self.annotator.object_id

    def _say(self, text: str) -> None:
        self.viewer.status = text
        self.status.emit(text)

    def _fail(self, text: str) -> None:
        show_error(text)
        self.status.emit(text)

    # ------------------------------------------------------------------ start / stop
    def start(self, image: Image, labels: Labels | None, settings: AnnotationSettings) -> None:
        """Check the layers, then load the model in a worker; ready when :attr:`ready`.
        Raises ValueError (with what to do) for unusable layers."""
        if self.busy:
            raise ValueError(
                "Wait for the current prediction to finish (or Cancel) before restarting."
            )
        image, labels = L.unwrap(image), L.unwrap(labels)
        if not isinstance(image, Image):
            raise ValueError("Choose an Image layer to annotate.")
        extra_index = 0
        if settings.extra_axis is not None and image.ndim == 4:
            current = image.world_to_data(self.viewer.dims.point)
            extra_index = int(
                np.clip(
                    round(float(current[settings.extra_axis])),
                    0,
                    image.data.shape[settings.extra_axis] - 1,
                )
            )
        selection = L.VolumeSelection.of(image, settings.extra_axis, extra_index)
        if labels is None:
            labels = L.new_labels_layer(image)  # added to the viewer once the model loads
        else:
            L.check_labels(labels, image)
        spacing = [float(image.scale[i]) for i in selection.spatial_axes]
        axis = settings.axis
        if len(spacing) == 2:
            axis = 0
        elif axis is None:
            axis = default_slicing_axis(spacing)
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
        if self.labels not in self.viewer.layers:
            self.labels = L.unwrap(self.viewer.add_layer(self.labels))
        if self._earlier:
            annotator.select_object(
                max(annotator.next_free_id(), max(r.object_id for r in self._earlier) + 1)
            )
        self.labels.events.selected_label.connect(self._on_selected_label)
        self._ensure_points()
        self._cut_along_axis()
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
        self.annotator = self.image = self.labels = self.points = None
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

    def _restore_points(self) -> None:
        if self.ready and self.points is None and self.image in self.viewer.layers:
            self._ensure_points()
            self._say(
                "The click layer was removed; here it is again with the current object's clicks."
            )

    def _ensure_points(self) -> None:
        if self.points is None:
            self.points = L.unwrap(self.viewer.add_layer(L.new_click_layer(self.image)))
            self.points.events.data.connect(self._on_points_data)
            for key, action in (
                ("t", self.toggle_polarity),
                ("c", self.commit),
                ("Shift-C", self.reset),
                ("Control-Z", self.undo),
                ("Shift-P", self.propagate),
            ):
                self.points.bind_key(key, lambda _layer, action=action: action(), overwrite=True)
        L.set_polarity(self.points, self.positive)
        self.viewer.layers.selection.active = self.points
        self.points.mode = "add"
        self._show_points()

    def _cut_along_axis(self) -> None:
        """Make the slicing axis the scrolled one (the last two spatial axes are shown)."""
        if len(self.selection.spatial_axes) != 3 or self.viewer.dims.ndisplay != 2:
            return
        offset = self.viewer.dims.ndim - self.image.ndim
        spatial = [offset + a for a in self.selection.spatial_axes]
        cut = spatial.pop(self.annotator.geometry.axis)
        others = [a for a in range(self.viewer.dims.ndim) if a != cut and a not in spatial]
        self.viewer.dims.order = (*others, cut, *spatial)

    # ------------------------------------------------------------------ geometry
    def _volume_point(self, image_point: Sequence[float]) -> tuple[int, float, float]:
        return self.annotator.geometry.to_slice(self.selection.to_volume(image_point))

    def _points_point(self, plane: int, row: float, col: float) -> np.ndarray:
        layer_point = self.selection.to_layer(self.annotator.geometry.to_volume(plane, row, col))
        return L.map_point(layer_point, self.image, self.points)

    def current_plane(self) -> int:
        """The plane of the annotated volume the viewer shows now."""
        point = self.image.world_to_data(self.viewer.dims.point)
        plane = self._volume_point(point)[0]
        return int(np.clip(plane, 0, self.annotator.geometry.planes - 1))

    def go_to_plane(self, plane: int) -> None:
        """Scroll the viewer to ``plane`` of the annotated volume."""
        if len(self.selection.spatial_axes) != 3:
            return
        rows, cols = self.annotator.geometry.slice_shape
        layer_point = self.selection.to_layer(
            self.annotator.geometry.to_volume(plane, rows / 2, cols / 2)
        )
        world = self.image.data_to_world(layer_point)
        layer_axis = self.selection.spatial_axes[self.annotator.geometry.axis]
        self.viewer.dims.set_point(
            self.viewer.dims.ndim - self.image.ndim + layer_axis, world[layer_axis]
        )

    # ------------------------------------------------------------------ clicks
    def _on_points_data(self, event) -> None:
        if self._syncing or not self.ready:
            return
        if event.action == "added":  # napari's ActionType is a string enum
            added = [self.points.data[i] for i in event.data_indices]
            for point in added:
                self._add_point(point)
            self._show_points()
        elif event.action in ("removed", "changed"):
            shown = len(self.annotator.object_records()) + len(self._pending)
            if event.action == "removed" and tuple(event.data_indices) == (shown - 1,):
                self.undo()
            else:
                self._say("Clicks cannot be moved or deleted one by one: use Ctrl-Z (undo).")
            self._show_points()

    def _add_point(self, point: np.ndarray) -> None:
        if self.viewer.dims.ndisplay != 2:
            self._say("Clicks work in the 2D view: switch off 3D (Ctrl-Y) and click on a slice.")
            return
        image_point = L.map_point(point, self.points, self.image)
        extra = self.selection.extra_of(image_point)
        if extra is not None and extra != self.selection.extra_index:
            self._say(
                f"You are annotating index {self.selection.extra_index} of axis "
                f"{self.selection.extra_axis}; press Start to annotate index {extra}."
            )
            return
        plane, row, col = self._volume_point(image_point)
        if not self.annotator.geometry.contains(plane, row, col):
            self._say(
                f"The click at {np.round(image_point, 1).tolist()} is outside image '{self.image.name}'."
            )
            return
        self._pending.append((point, self.positive))
        self._enqueue("click", plane, row, col, self.positive)

    def add_click(self, plane: int, row: float, col: float, positive: bool | None = None) -> None:
        """Add a click as a user would: a point on the click layer at (plane, row, col)."""
        if positive is not None and positive != self.positive:
            self.toggle_polarity()
        self.points.add(self._points_point(plane, row, col))

    def toggle_polarity(self) -> None:
        self.positive = not self.positive
        if self.points is not None:
            L.set_polarity(self.points, self.positive)
        self._say(
            f"Next clicks are {'positive (object)' if self.positive else 'negative (background)'}."
        )
        self.changed.emit()

    def _show_points(self) -> None:
        if self.points is None or not self.ready:
            return
        records = self.annotator.object_records()
        points = [self._points_point(r.plane, r.row, r.col) for r in records]
        points += [p for p, _ in self._pending]
        positive = [r.positive for r in records] + [p for _, p in self._pending]
        self._syncing = True
        try:
            L.show_clicks(self.points, np.array(points).reshape(-1, self.points.ndim), positive)
            L.set_polarity(self.points, self.positive)
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ queue
    def undo(self) -> None:
        self._enqueue("undo")

    def commit(self) -> None:
        self._enqueue("commit")

    def reset(self) -> None:
        self._enqueue("reset")

    def select_object(self, object_id: int | None) -> None:
        self._enqueue("select", object_id)

    def propagate(self) -> None:
        """Propagate the current object from the plane on screen."""
        if self.ready:
            self._enqueue("propagate", self.current_plane())

    def replay(self, records: Sequence[ClickRecord]) -> None:
        """Apply click records (e.g. loaded from a file) with the current model."""
        self._enqueue("replay", list(records))

    def cancel(self) -> None:
        """Stop a propagation or replay after the current slice; drop queued actions."""
        self._queue.clear()
        self._pending.clear()
        self._stop_long_job()
        self._show_points()

    def _enqueue(self, kind: str, *args) -> None:
        if not self.ready:
            self._say("Press Start first to load the model.")
            return
        self._queue.append((kind, args))
        if kind in ("click", "undo", "reset"):
            self._stop_long_job()  # a new click stops a running propagation or replay
        self._pump()

    def _stop_long_job(self) -> None:
        """Ask a propagation or replay to stop after its current slice (a single click's
        prediction always finishes: the session must stay in step with the records)."""
        if isinstance(self._worker, GeneratorWorker):
            self._worker.quit()

    def _pump(self) -> None:
        while self._worker is None and self._queue and self.ready:
            kind, args = self._queue.popleft()
            try:
                getattr(self, f"_do_{kind}")(*args)
            except ValueError as error:
                self._fail(str(error))
        self.changed.emit()

    def _run(
        self,
        func: Callable,
        *args,
        on_yield: Callable | None = None,
        on_return: Callable | None = None,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True)
        if on_yield is not None:
            worker.yielded.connect(on_yield)
        if on_return is not None:
            worker.returned.connect(on_return)
        worker.errored.connect(self._on_worker_error)
        worker.finished.connect(self._on_worker_finished)
        self._worker, self._on_finish = worker, on_finish
        worker.start()

    def _on_worker_error(self, error: Exception) -> None:
        self._pending[:1] = []
        self._fail(f"Prediction failed: {type(error).__name__}: {error}")
        self._after_edit()

    def _on_worker_finished(self) -> None:
        finish, self._worker, self._on_finish = self._on_finish, None, None
        if finish is not None:
            finish()
        self._pump()

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

    # ------------------------------------------------------------------ actions (main thread)
    def _do_click(self, plane: int, row: float, col: float, positive: bool) -> None:
        self._run(
            self.annotator.add_click, plane, row, col, positive, on_return=self._on_click_done
        )

    def _on_click_done(self, outcome: ClickOutcome) -> None:
        self._pending[:1] = []
        self.last_outcome = outcome
        if not self.ready or any(kind == "click" for kind, _ in self._queue):
            return  # stale: a newer click is queued and will be drawn instead
        self._after_edit()
        record = outcome.record
        self._say(
            f"{outcome.seconds * 1000:.0f} ms per click | object {record.object_id}, plane "
            f"{record.plane}: {outcome.area} px | {KEY_HINTS}"
        )

    def _do_undo(self) -> None:
        if self.annotator.undo():
            self._say(
                f"Undone; {len(self.annotator.object_records())} clicks on object {self.annotator.object_id}."
            )
        else:
            self._say("Nothing to undo.")
        self._after_edit()

    def _do_commit(self) -> None:
        old = self.annotator.object_id
        new = self.annotator.commit()
        self._say(
            f"Object {old} committed; now segmenting object {new}."
            if new != old
            else f"Object {old} has no pixels yet: nothing to commit."
        )
        self._after_edit()

    def _do_reset(self) -> None:
        count = self.annotator.reset()
        self._say(f"Object {self.annotator.object_id} reset ({count} steps removed).")
        self._after_edit()

    def _do_select(self, object_id: int | None) -> None:
        new = self.annotator.select_object(object_id)
        self._say(
            f"Segmenting object {new}"
            + (" (refining its existing pixels)." if (self.annotator.labels == new).any() else ".")
        )
        self._after_edit()

    def _on_selected_label(self, event) -> None:
        if (
            not self._syncing
            and self.ready
            and self.labels.selected_label != self.annotator.object_id
        ):
            self.select_object(int(self.labels.selected_label))

    def _do_propagate(self, plane: int) -> None:
        self._propagation = self.annotator.propagation(plane, self.propagation_settings)
        self.progress.emit(0, self._propagation.total)
        self._say(
            f"Propagating object {self.annotator.object_id} from plane {plane}... (Cancel to stop)"
        )
        self._run(
            _steps,
            self._propagation,
            on_yield=self._on_propagated_slice,
            on_finish=self._finish_propagation,
        )

    def _on_propagated_slice(self, result: PropagatedSlice) -> None:
        done = len(self._propagation._results)
        self.progress.emit(done, max(self._propagation.total, done))
        if result.accepted and result.plane == self.current_plane():
            self.labels.refresh()  # other planes are drawn when the user scrolls there
        self._say(
            f"Plane {result.plane}: {result.area} px, {result.seconds * 1000:.0f} ms"
            + (f" | stopped: {result.reason}" if result.reason else "")
        )

    def _finish_propagation(self) -> None:
        job, self._propagation = self._propagation, None
        if not job.done:  # the worker was quit (Cancel, a new click, a removed layer)
            job.cancel()
        if not self.ready:
            return
        report = job.report()
        self.last_report = report
        self.progress.emit(1, 1)
        stops = "; ".join(f"{'up' if d > 0 else 'down'}: {why}" for d, why in report.stops.items())
        unsure = ", ".join(f"{p} ({u:.2f})" for p, u in report.least_sure)
        self._say(
            f"Propagated to {len(report.written)} planes in {report.seconds:.1f} s ({stops}). Least sure: {unsure or '-'}"
        )
        self._after_edit()
        self.propagated.emit(report)

    def _do_replay(self, records: list[ClickRecord]) -> None:
        total, done = len(records), []
        self.progress.emit(0, total)

        def count(_outcome: ClickOutcome) -> None:
            done.append(1)
            self.progress.emit(len(done), total)

        self._say(f"Replaying {total} clicks...")
        self._run(self.annotator.replay, records, on_yield=count, on_finish=self._after_edit)

    # ------------------------------------------------------------------ files
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
