"""The widget's "Adapt model" box: fine-tune the model on the user's committed objects.

A thin form over :mod:`napari_adaptiveclick.learning.adapt_job`: :meth:`AdaptPanel.adapt`
checks on the Qt thread only what reads no data (the layers being annotated, else those
chosen; their shapes; lazy volumes not too big; nothing running in the controller, which may
be writing the labels), then reads the layers and checks everything in a worker
(:func:`.adapt_inputs.prepare_adaptation`: a problem, or an edit made while the labels were
read, is shown in the status and nothing trains), then runs :func:`~.adapt_job.run_job` in a
worker, with a progress bar (step, loss, time left) and Cancel. At the end it shows the
before / after NoC@85/90 table of the held-out objects and writes the checkpoint in a third
worker (:func:`~.adapt_job.save_adapted`), unless the held-out objects got worse and "Keep
even if worse" is not ticked. A failed save keeps the result: Save writes it once another
place is chosen. It never overwrites a file the user did not confirm in the file dialog, and
that only once (:class:`.adapt_inputs.OutputChoice`): an existing name gets ``-2``, ``-3``...
"Use adapted model" / "Use default model" put the checkpoint (or ``default``) into the
widget's model choice and restart annotating on the same layers; labels and clicks stay.

The objects: each 4-connected component of an id on a plane, not the one being edited
(:func:`.adapt_inputs.read_user_labels`).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from qtpy.QtCore import QObject, Signal
from qtpy.QtGui import QFontDatabase
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from napari_adaptiveclick._napari.adapt_inputs import (
    BUSY,
    SAVE_TO,
    UNSAVED,
    EditWatch,
    OutputChoice,
    cannot_text,
    choose_volumes,
    prepare_adaptation,
    progress_text,
    result_text,
    save_failed_text,
    saved_text,
    shipped_default,
    start_text,
    worse_text,
)
from napari_adaptiveclick._napari.jobs import brief, start_worker
from napari_adaptiveclick._napari.model_switch import switch_model
from napari_adaptiveclick.learning.adapt import (
    AdaptCancelled,
    AdaptProgress,
    AdaptResult,
    AdaptSettings,
)
from napari_adaptiveclick.learning.adapt_job import AdaptJob, run_job, save_adapted

BAR_STEPS = 1000  # resolution of the progress bar (share of the time budget)


class _Relay(QObject):
    """Carries the worker's progress callbacks to the Qt thread (a queued Qt signal)."""

    progress = Signal(object)


class AdaptPanel(QGroupBox):
    """Adapt, cancel, save and switch models; ``widget`` is the :class:`AdaptiveClickWidget`
    (its controller, layer and model choices, ``settings()`` and ``start()``).

    ``settings``: the adaptation settings the form does not show (the form sets ``minutes``
    and ``device``). After a run: ``result`` and ``job``; ``saved_path`` once written."""

    def __init__(self, widget) -> None:
        super().__init__("Adapt model")
        self.widget = widget
        self.controller = widget.controller
        self.settings = AdaptSettings()
        self.job: AdaptJob | None = None
        self.result: AdaptResult | None = None
        self.saved_path: Path | None = None
        self.updates: list[AdaptProgress] = []  # of the current run
        self._worker = None  # the adaptation or saving worker
        self._stop = threading.Event()
        live = self._live = {"stop": self._stop}  # the current run's, for the closure below
        self.destroyed.connect(lambda *_: live["stop"].set())  # widget closed: end the run
        self._output = OutputChoice()  # where the adapted checkpoint goes
        self._pending = self._warned = False  # a result in memory, not saved; Adapt warned once
        self._save_due = False  # save once the adaptation's worker has ended
        self._ready = None  # (labels read, job, model): train once their worker has ended
        self._relay = _Relay()
        self._relay.progress.connect(self._show_progress)
        self._build()
        self.controller.changed.connect(self._show_state)
        widget.model_combo.currentTextChanged.connect(self._show_state)
        self._show_state()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.minutes_spin = QDoubleSpinBox(
            decimals=1, minimum=0.1, maximum=600.0, singleStep=1.0, value=self.settings.minutes
        )
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setToolTip("Time budget: training stops earlier when it stops helping.")
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("beside the image: <image>_adapted.pt")
        self.path_edit.textChanged.connect(self._output.text_changed)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("Save the adapted model kept in memory to 'Save to'.")
        self.save_button.clicked.connect(self.save)
        self.keep_check = QCheckBox("Keep even if worse")
        self.keep_check.setToolTip(
            "Save the adapted model even when it does worse on the held-out objects."
        )
        self.keep_check.toggled.connect(lambda keep: self.save() if keep else self._show_state())
        self.adapt_button = QPushButton("Adapt model")
        self.adapt_button.setToolTip(
            "Fine-tune the model on the committed objects of the Labels layer; a quarter of "
            "them (whole planes of a volume) are held out to measure NoC before and after."
        )
        self.adapt_button.clicked.connect(self.adapt)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximum(BAR_STEPS)
        self.progress_bar.setTextVisible(True)
        self.table = QPlainTextEdit()
        self.table.setReadOnly(True)
        self.table.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.table.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.table.setMaximumHeight(100)
        self.table.setVisible(False)
        self.message = QLabel("Commit some objects, then adapt the model to them.")
        self.message.setWordWrap(True)
        self.use_adapted_button = QPushButton("Use adapted model")
        self.use_adapted_button.clicked.connect(self.use_adapted)
        self.use_default_button = QPushButton("Use default model")
        self.use_default_button.clicked.connect(self.use_default)

        form = QFormLayout()
        form.addRow("Minutes", self.minutes_spin)
        where = QHBoxLayout()
        where.addWidget(self.path_edit)
        where.addWidget(browse)
        where.addWidget(self.save_button)
        form.addRow("Save to", where)
        form.addRow(self.keep_check)
        buttons = QGridLayout()
        buttons.addWidget(self.adapt_button, 0, 0)
        buttons.addWidget(self.cancel_button, 0, 1)
        buttons.addWidget(self.use_adapted_button, 1, 0)
        buttons.addWidget(self.use_default_button, 1, 1)
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        self.setLayout(layout)

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        """True while an adaptation or a save runs."""
        return self._worker is not None

    def _model(self) -> str:
        """The model annotating now, else the one chosen in the form."""
        if self.controller.ready:
            return self.controller.settings.model
        return self.widget.settings().model

    def _show_state(self, *_args) -> None:
        self.adapt_button.setEnabled(not self.running)
        adapting = self.running and self.result is None
        self.cancel_button.setEnabled(adapting and not self._stop.is_set())
        self.use_adapted_button.setEnabled(self.saved_path is not None and not self.running)
        self.save_button.setEnabled(self._savable())
        self.use_default_button.setEnabled(self._model() != shipped_default(self.controller))

    def _say(self, text: str | None) -> None:  # None: nothing new to say
        if text:
            self.message.setText(text)

    def _fail(self, text: str) -> None:
        self._say(text)
        self.controller.report_error(text)

    # ------------------------------------------------------------------ adapt
    def adapt(self) -> None:
        """Check the layers (nothing read), then read them and load the model in a worker,
        then adapt in another; a problem is shown in the status (and nothing trains)."""
        if self.running:
            return
        if self._pending and not self._warned:  # a result in memory would be lost
            self._warned = True
            self._say(UNSAVED)
            return
        if self.controller.busy:  # a prediction or propagation may be writing the labels
            self._fail(BUSY)
            return
        layers = {layer.name: layer for layer in self.widget.viewer.layers}
        image = layers.get(self.widget.image_combo.currentText())
        labels = layers.get(self.widget.labels_combo.currentText())
        form = self.widget.settings()
        settings = replace(self.settings, minutes=self.minutes_spin.value(), device=form.device)
        model = self._model()
        try:
            volumes = choose_volumes(self.controller, image, labels, form)
        except ValueError as error:
            self._cannot(error)
            return
        self.job, self.result, self.updates = None, None, []
        self._pending = self._warned = False
        self._stop = self._live["stop"] = threading.Event()
        self.table.setVisible(False)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("reading the layers and loading the model...")
        self._say(f"Reading the image and labels, loading '{model}'...")
        watch = EditWatch(self.controller, volumes.labels_layer)  # edits while they are read

        def failed(error: Exception) -> None:
            watch.stop()
            self._cannot(error)

        self._worker = start_worker(
            prepare_adaptation,
            volumes,
            model,
            settings,
            self._target(),
            self._overwrite(),
            on_yield=lambda _read: watch.stop(),
            on_return=lambda prepared: self._on_prepared(*prepared, watch.edited, model),
            on_error=failed,
            on_finish=self._on_finished,
        )
        self._show_state()

    def _cannot(self, error: Exception) -> None:
        self.progress_bar.setFormat("not started")
        self._fail(f"Cannot adapt: {brief(cannot_text(error), limit=300)}")

    def _on_prepared(self, user, job: AdaptJob, edited: bool, model: str) -> None:
        if self._stop.is_set():
            self._on_error(AdaptCancelled())
        elif edited:
            self._cannot(
                ValueError("the labels were edited while they were read; adapt again once done")
            )
        else:
            self._ready = user, job, model  # trains once this worker has ended

    def _train(self, user, job: AdaptJob, model: str) -> None:
        self.job = job
        self.progress_bar.setFormat(
            f"measuring the source model on {len(job.split.measured)} objects"
        )
        self._say(start_text(model, job, user.left_out))
        self._worker = start_worker(
            run_job,
            job,
            self._relay.progress.emit,
            self._stop.is_set,
            on_return=self._on_adapted,
            on_error=self._on_error,
            on_finish=self._on_finished,
        )

    def cancel(self) -> None:
        """Stop the adaptation after the current step (or held-out object); while the layers
        are read and the model loads, no training follows. Nothing is saved."""
        if self.running and self.result is None:
            self._stop.set()
            self.progress_bar.setFormat("cancelling...")
            self._show_state()

    def _show_progress(self, update: AdaptProgress) -> None:
        self.updates.append(update)
        budget = max(self.job.settings.minutes * 60, 1e-9)
        self.progress_bar.setValue(round(BAR_STEPS * min(1.0, 1 - update.seconds_left / budget)))
        if not self._stop.is_set():
            self.progress_bar.setFormat(progress_text(update))

    def _on_error(self, error: Exception) -> None:
        if isinstance(error, AdaptCancelled):
            self.progress_bar.setFormat("cancelled")
            self._say("Adaptation cancelled: nothing was saved.")
        else:
            self._fail(f"Adaptation failed: {brief(str(error), limit=300)}")

    def _on_finished(self) -> None:
        self._worker = None
        ready, self._ready = self._ready, None
        if ready is not None:
            self._train(*ready)
        elif self._save_due:
            self._save_due = False
            self._save()
        self._show_state()

    def _on_adapted(self, result: AdaptResult) -> None:
        self.result = result
        self.progress_bar.setValue(BAR_STEPS)
        self.progress_bar.setFormat(f"done: {result.steps} steps, {result.stopped}")
        self.table.setPlainText(result_text(result, self.job))
        self.table.setVisible(True)
        if result.worse and not self.keep_check.isChecked():
            self._pending = True
            self._say(worse_text(result))
            return
        self._save_due = True  # when its worker has ended (one worker at a time)

    def _savable(self) -> bool:  # a result in memory, not withheld as worse, nothing running
        kept = self.result is not None and (not self.result.worse or self.keep_check.isChecked())
        return self._pending and kept and not self.running

    def save(self) -> None:
        """Write the adapted model kept in memory (its save failed, or it was worse and is
        now kept) to the path in "Save to"."""
        if self._savable():
            self._save()

    # ------------------------------------------------------------------ save
    def _target(self) -> Path:
        """The file to write (:class:`.adapt_inputs.OutputChoice`)."""
        return self._output.target(self.path_edit.text(), self._image_layer())

    def _overwrite(self) -> bool:
        return self._output.overwrite(self.path_edit.text(), self._image_layer())

    def _image_layer(self):
        if self.controller.ready:
            return self.controller.image
        layers = {layer.name: layer for layer in self.widget.viewer.layers}
        return layers.get(self.widget.image_combo.currentText())

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save the adapted model",
            str(self._target()),
            "Checkpoints (*.pt);;All files (*)",
        )
        if path:
            self.path_edit.setText(str(self._output.chosen(path)))

    def _save(self) -> None:
        self._pending = False
        target, overwrite, result = self._target(), self._overwrite(), self.result
        self._say(f"Saving the adapted model to {target}...")

        def saved(path: Path) -> None:
            self.saved_path = path
            self._output.saved()  # a confirmed replacement serves one save
            self._say(saved_text(result, path))

        self._worker = start_worker(
            save_adapted,
            target,
            self.job,
            result,
            overwrite,
            SAVE_TO,
            on_return=saved,
            on_error=self._save_failed,
            on_finish=self._on_finished,
        )
        self._show_state()

    def _save_failed(self, error: Exception) -> None:
        self._pending = True  # nothing is lost: it can be saved elsewhere
        self._fail(save_failed_text(error))

    # ------------------------------------------------------------------ switch
    def use_adapted(self) -> None:
        """Annotate with the saved adapted checkpoint."""
        if self.saved_path is not None:
            self._say(switch_model(self.widget, str(self.saved_path)))

    def use_default(self) -> None:
        """Annotate with the shipped weights for the image (``default-mri`` for scanner files)."""
        self._say(switch_model(self.widget, shipped_default(self.controller)))
