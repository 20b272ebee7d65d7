"""The annotation controller: napari layers in, :class:`VolumeAnnotator` calls out.

Every action (a click or other prompt, undo, commit, reset, object choice, propagation,
replay) goes through one queue and runs in order; predictions run in napari thread workers,
so the viewer never waits for the model. A prompt that arrives while an earlier one is
predicted makes the earlier result stale: it is recorded (the next prediction builds on it)
but not drawn. A prompt or Cancel during a propagation stops it after the slice in progress.

:class:`AnnotationController` is composed of parts that know nothing of each other, each in
its own file, and wires them together:

- ``jobs`` (:class:`~.jobs.JobQueue`): runs callables in order, one worker at a time;
- ``click_input`` (:class:`~.click_input.ClickInput`): the click layer; emits clicks;
- ``prompt_input`` (:class:`~.prompt_input.PromptInput`): the shapes layer: boxes, strokes, lassos;
- ``actions`` (:class:`~.actions.AnnotationActions`): each action's work on the annotator, queued;
- ``label_choice`` (:class:`~.label_choice.LabelChoice`): the Labels layer's selected label;
- ``placement`` (:class:`~.placement.VolumePlacement`): where the volume sits in the viewer;
- ``recovery`` (:class:`~.recovery.Recovery`): saves each edit at once, offers to restore.

This file starts and stops annotating (loading the model in a worker), follows the image and
Labels layers, redraws after each edit and keeps the click records with the labels. A
restart removes the old input layers and an empty Labels layer the last Start made. Its
public methods are all the widget and the demo use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from napari.layers import Image, Labels, Points, Shapes
from napari.utils.notifications import show_error, show_warning
from psygnal import Signal

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick._napari.actions import KEY_HINTS, AnnotationActions
from napari_adaptiveclick._napari.click_input import ClickInput
from napari_adaptiveclick._napari.colours import visible_label_colormap
from napari_adaptiveclick._napari.jobs import JobQueue, start_worker
from napari_adaptiveclick._napari.label_choice import LabelChoice
from napari_adaptiveclick._napari.loading import (
    AnnotationSettings,
    load_annotator,
    load_error_text,
    untrained_warning,
)
from napari_adaptiveclick._napari.placement import VolumePlacement, choose_layers, leftover_layers
from napari_adaptiveclick._napari.prompt_input import PromptInput
from napari_adaptiveclick._napari.provenance import RecordMirror, save_clicks, stored_settings
from napari_adaptiveclick._napari.recovery import Recovery
from napari_adaptiveclick._napari.redraw import redraw_changes
from napari_adaptiveclick.volume import (
    ClickOutcome,
    PropagationReport,
    PropagationSettings,
    VolumeAnnotator,
)
from napari_adaptiveclick.volume.clicks_file import read_click_records
from napari_adaptiveclick.volume.records import ClickRecord


class AnnotationController:
    """Connects an image, its Labels and a click Points layer of ``viewer`` to an annotator."""

    changed = Signal()  # object id, polarity, busy state or undo levels changed
    status = Signal(str)
    progress = Signal(int, int)  # done, total (propagation, replay)
    propagated = Signal(object)  # PropagationReport

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.image: Image | None = None
        self.labels: Labels | None = None
        self.selection: L.VolumeSelection | None = None
        self.placement: VolumePlacement | None = None  # set once the model is loaded
        self.settings = AnnotationSettings()
        self.jobs = JobQueue()
        self.actions = AnnotationActions(self.jobs)
        keys = {
            "c": self.commit,
            "Shift-C": self.reset,
            "Control-Z": self.undo,
            "Shift-P": self.propagate,
        }
        self.click_input = ClickInput(viewer, keys, self.actions.others_pending)
        self.prompt_input = PromptInput(viewer, keys={"t": self.toggle_polarity, **keys})
        self._earlier: list[ClickRecord] = []  # records stored with the labels before start
        self._mirror: RecordMirror | None = None  # the records kept with the labels
        self._loader = None
        self._warning = ""  # shown with the model while it runs (random weights)
        self._made: Labels | None = None  # the Labels layer the last Start made
        self._stopped: Labels | None = None  # labels of a session stopped while a job ran
        self.label_choice = LabelChoice(lambda: self.annotator.object_id)
        self.label_choice.chosen.connect(self.select_object)
        self.jobs.changed.connect(self.changed.emit)
        self.actions.status.connect(self._say)
        self.actions.failed.connect(self.report_error)
        self.actions.edited.connect(self._after_edit)
        self.actions.prediction_ended.connect(self.click_input.settle_oldest)
        self.actions.slice_written.connect(self._on_slice_written)
        self.actions.progress.connect(self.progress.emit)
        self.actions.propagated.connect(self.propagated.emit)
        self.actions.discarded.connect(self._on_discarded)
        self.click_input.clicked.connect(self.actions.click)
        self.click_input.undo_requested.connect(self.undo)
        self.click_input.polarity_changed.connect(self.prompt_input.set_polarity)
        self.click_input.polarity_changed.connect(lambda _positive: self.changed.emit())
        self.click_input.status.connect(self._say)
        self.prompt_input.boxed.connect(self.actions.box)
        self.prompt_input.scribbled.connect(self.actions.scribble)
        self.prompt_input.lassoed.connect(self.actions.lasso)
        self.prompt_input.status.connect(self._say)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        self.recovery = Recovery(lambda: self.jobs.running)
        self.recovery.status.connect(self._say)
        self.recovery.changed.connect(self.changed.emit)

    # ------------------------------------------------------------------ state
    @property
    def annotator(self) -> VolumeAnnotator | None:
        """The annotator of the running session (None before Start and after Stop)."""
        return self.actions.annotator

    @property
    def ready(self) -> bool:
        return self.annotator is not None

    @property
    def busy(self) -> bool:
        """True while the model loads or an action is queued or runs."""
        return self._loader is not None or self.jobs.busy

    @property
    def can_propagate(self) -> bool:
        """True when annotating a volume of more than one plane."""
        return self.ready and self.annotator.geometry.planes > 1

    @property
    def object_id(self) -> int | None:
        return None if self.annotator is None else self.annotator.object_id

    @property
    def device(self) -> str | None:
        """The device the model runs on (None before it is loaded)."""
        return None if self.annotator is None else self.annotator.session.device

    @property
    def points(self) -> Points | None:
        """The click layer."""
        return self.click_input.layer

    @property
    def prompts(self) -> Shapes | None:  # the prompts layer (boxes, strokes, lassos)
        return self.prompt_input.layer

    @property
    def positive(self) -> bool:
        """The polarity of the next click or stroke."""
        return self.click_input.positive

    @property
    def propagation_settings(self) -> PropagationSettings | None:  # None: the model's own
        return self.actions.propagation_settings

    @propagation_settings.setter
    def propagation_settings(self, settings: PropagationSettings | None) -> None:
        self.actions.propagation_settings = settings

    @property
    def last_outcome(self) -> ClickOutcome | None:
        return self.actions.last_outcome

    @property
    def last_report(self) -> PropagationReport | None:
        return self.actions.last_report

    def set_threshold(self, value: float) -> None:
        """Mask threshold of the predictions, applied at once to the last click's probability
        while that click is the current object's last edit (no-op before Start)."""
        if self.ready:
            self.annotator.threshold = value
            self.settings = replace(self.settings, threshold=value)
            self.actions.rethreshold()

    def set_overwrite(self, flag: bool) -> None:
        """Whether new masks may overwrite other objects' pixels (no-op before Start)."""
        if self.ready:
            self.annotator.overwrite = flag

    def report_error(self, text: str) -> None:
        """Show ``text`` as an error notification and in the status."""
        show_error(text)
        self.status.emit(text)

    def _say(self, text: str) -> None:
        self.viewer.status = text
        self.status.emit(text)

    def current_plane(self) -> int:
        """The plane of the annotated volume the viewer shows now."""
        return self.placement.current_plane()

    def go_to_plane(self, plane: int) -> None:
        """Scroll the viewer to ``plane`` of the annotated volume."""
        self.placement.go_to_plane(plane)

    # ------------------------------------------------------------------ actions
    def add_click(self, plane: int, row: float, col: float, positive: bool | None = None) -> None:
        """Add a click as a user would: a point on the click layer at (plane, row, col)."""
        self.click_input.add_click(plane, row, col, positive)

    def toggle_polarity(self) -> None:
        self.click_input.toggle_polarity()

    def refine_label(self) -> None:
        """Refine the label selected in the Labels layer on the plane on screen: its pixels
        there start that object (a mask prompt), the next clicks refine it, commit keeps its id."""
        if self.ready:
            self.actions.refine_label(self.current_plane(), int(self.labels.selected_label))

    def undo(self) -> None:
        self.actions.undo()

    def commit(self) -> None:
        self.actions.commit()

    def reset(self) -> None:
        self.actions.reset()

    def select_object(self, object_id: int | None) -> None:
        """Segment ``object_id`` (an existing id refines that object); None picks a new id."""
        self.actions.select_object(object_id)

    def propagate(self) -> None:
        """Propagate the current object from the plane on screen (of a volume)."""
        if self.ready and not self.can_propagate:
            self._say("Propagation goes through the planes of a volume; this image has one.")
        elif self.ready:
            self.actions.propagate(self.current_plane())

    def replay(self, records: Sequence[ClickRecord]) -> None:
        """Apply click records (e.g. loaded from a file) with the current model."""
        self.actions.replay(records)

    def cancel(self) -> None:
        """Stop a propagation or replay after the current slice; drop queued actions."""
        self.actions.cancel()
        self.click_input.clear_pending()
        self._show_clicks()

    # ------------------------------------------------------------------ start / stop
    def start(self, image: Image, labels: Labels | None, settings: AnnotationSettings) -> None:
        """Check the layers, then load the model in a worker; ready when :attr:`ready`.
        Raises ValueError (with what to do) for unusable layers."""
        if self.busy:
            raise ValueError(
                "Wait for the current prediction to finish (or Cancel) before restarting."
            )
        image, labels, selection, axis = choose_layers(self.viewer, image, labels, settings)
        warning = untrained_warning(settings)
        inputs = (self.click_input.layer, self.prompt_input.layer)
        leftovers = leftover_layers(self.viewer, inputs, self._made, labels)
        self.stop()
        for layer in leftovers:
            self.viewer.layers.remove(layer)
        self.image, self.labels, self.selection, self.settings = image, labels, selection, settings
        self._earlier, self._warning = L.stored_records(labels), warning
        if warning:
            show_warning(warning)
        self._say(f"{warning} Loading model '{settings.model}' on {settings.device}...".strip())
        self._loader = start_worker(
            load_annotator,
            settings,
            selection.volume(image.data),
            selection.volume(labels.data),
            axis,
            on_return=self._on_loaded,
            on_error=self._on_load_error,
            on_finish=self._on_loader_finished,
        )
        self.changed.emit()

    def _on_loaded(self, annotator: VolumeAnnotator) -> None:
        if self.image is None:  # stopped (a layer was removed) while loading
            return
        self.placement = VolumePlacement(
            self.viewer, self.image, self.selection, annotator.geometry
        )
        if self.labels not in self.viewer.layers:  # made for '<new>'
            self.labels.colormap = visible_label_colormap()
            self.labels = self._made = L.unwrap(self.viewer.add_layer(self.labels))
        if self._earlier:
            annotator.select_object(
                max(annotator.next_free_id(), max(r.object_id for r in self._earlier) + 1)
            )
        self.actions.attach(annotator)
        self.prompt_input.attach(self.placement)
        self.click_input.attach(self.placement)  # after: the click layer is made active
        self.placement.cut_along_axis()
        self.label_choice.attach(self.labels)
        self._mirror = RecordMirror(self.labels, self._earlier)
        self._store()
        self.recovery.begin(
            self.image, self.labels, self.selection, annotator, lambda: self._mirror.records
        )
        self.changed.emit()
        self._say(
            f"{self._warning} Ready: model '{self.settings.model}' on {self.device}; click on the "
            f"image, or draw on '{self.prompts.name}' (boxes, paths, polygons). {KEY_HINTS}".strip()
        )
        self.viewer.help = KEY_HINTS

    def _on_load_error(self, error: Exception) -> None:
        self.image = self.labels = None
        self.report_error(load_error_text(error, self.settings.model))

    def _on_loader_finished(self) -> None:
        self._loader = None
        self.changed.emit()

    def stop(self, remove_inputs: bool = False) -> None:
        """Detach from the layers (``remove_inputs``: remove the clicks and prompts layers); pending
        clicks are dropped, and so is a running job's result (the labels stay as before it)."""
        if self.jobs.running:
            self._stopped = self.labels
        self.jobs.cancel()
        self.recovery.end()
        self.click_input.detach(remove_inputs)
        self.prompt_input.detach(remove_inputs)
        self.label_choice.detach()
        self.actions.detach()
        self.placement = self.image = self.labels = None
        self.changed.emit()

    def _on_layer_removed(self, event) -> None:
        layer = L.unwrap(event.value)
        if layer is self.image or layer is self.labels:
            running = self.jobs.running
            self.stop(remove_inputs=True)  # its clicks and prompts layers go with it
            text = f"Layer '{layer.name}' was removed, so annotation stopped (its clicks and prompts layers go too)"
            if running:
                self.report_error(
                    f"{text}; the prediction in progress was discarded (other layers are unchanged). Press Start to continue."
                )
            else:
                self._say(f"{text}. Press Start to continue.")

    def _on_discarded(self) -> None:
        layer, self._stopped = self._stopped, None
        if layer is not None and layer in self.viewer.layers:
            layer.refresh()  # a stopped propagation or replay was undone

    # ------------------------------------------------------------------ labels
    def _on_slice_written(self, plane: int) -> None:  # the worker goes on: no take_changes
        if self.ready and plane == self.current_plane():  # (other planes: drawn on scrolling)
            self.labels.refresh()

    def _show_clicks(self) -> None:
        if self.ready:  # the clicks (other prompts are not points); the kind of the last step
            records = self.annotator.object_records()
            clicks = [(r.plane, r.row, r.col, r.positive) for r in records if r.kind == "click"]
            self.click_input.show(clicks, records[-1].kind if records else "click")

    def _after_edit(self) -> None:
        if self.ready:  # redraw the changes on the plane on screen, autosave them all
            changes, plane = self.annotator.take_changes(), self.current_plane()
            redraw_changes(self.labels, self.selection, self.annotator.geometry, plane, changes)
            self.recovery.note_changes(changes)
            self.label_choice.show()
            self._store()
            self.recovery.save()
            self._show_clicks()
        self.changed.emit()

    def restore_autosave(self) -> None:
        """Restore the annotation :attr:`recovery` offers: its labels and clicks, and the
        object it was on (its undo levels start anew). Raises ValueError when it cannot."""
        if not self.ready or self.busy:
            raise ValueError("Wait for the current action to finish before restoring.")
        earlier, object_id = self.recovery.restore()
        self._mirror = RecordMirror(self.labels, earlier)
        self.annotator.select_object(object_id)
        self.labels.refresh()  # the restored planes
        self._after_edit()

    def _store(self) -> None:
        axis, extra = self.annotator.geometry.axis, self.selection.extra_index
        settings = stored_settings(self.settings, axis, extra, self.image.name)
        self._mirror.update(self.annotator.records, settings)

    def save_clicks(self, path: str | Path) -> Path:
        """Write the click records of the labels (CSV, or JSON for .json)."""
        return save_clicks(self.labels, path)

    def load_clicks(self, path: str | Path) -> int:
        """Read click records and replay them onto the labels; returns how many."""
        records = read_click_records(path)
        self.replay(records)
        return len(records)
