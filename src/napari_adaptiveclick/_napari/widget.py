"""The AdaptiveClick dock widget: a form over an :class:`AnnotationController`.

It only reads the user's choices, forwards button presses and shows the controller's state
(with its autosave: restore or discard what an earlier session left, save the labels);
all napari-layer logic lives in the controller (which also loads and warms up the model in a
worker), all segmentation logic in the core (``napari_adaptiveclick.volume``).
"""

from __future__ import annotations

from pathlib import Path

from napari.layers import Image, Labels
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_adaptiveclick._napari.adapt_panel import AdaptPanel
from napari_adaptiveclick._napari.clicks_loading import load_clicks
from napari_adaptiveclick._napari.controller import AnnotationController
from napari_adaptiveclick._napari.layers import spatial_shape
from napari_adaptiveclick._napari.loading import (
    UNTRAINED_WARNING,
    AnnotationSettings,
    offered_models,
)
from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.models.registry import SHIPPED_MODELS, default_for_image

NEW_LABELS = "<new>"
AUTO_AXIS = "auto (coarsest spacing)"
NO_AXIS = "none"


class AdaptiveClickWidget(QWidget):
    """Pick image, labels, model, device and threshold; click; commit, undo, propagate."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.controller = AnnotationController(napari_viewer)
        self._build()
        self._refresh_layers()
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self._refresh_layers)
        self.controller.changed.connect(self._show_state)
        self.controller.status.connect(self._show_status)
        self.controller.progress.connect(self._show_progress)
        self.controller.propagated.connect(self._show_report)
        self._show_state()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.image_combo, self.labels_combo = QComboBox(), QComboBox()
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setToolTip(
            "Models with trained weights, or a checkpoint path (Browse...). Shipped: 'default' "
            "(EM and general use) and 'default-mri' (MRI), chosen for you by the image's file "
            "type (NIfTI, MetaImage, NRRD: MRI) until you pick another."
        )
        self._suggested_for: object = None  # the image layer the model was suggested for
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse_checkpoint)
        self.untrained_check = QCheckBox("Allow models without weights")
        self.untrained_check.toggled.connect(self._offer_models)
        self.untrained_warning = QLabel(UNTRAINED_WARNING)
        self.untrained_warning.setWordWrap(True)
        self.untrained_warning.setStyleSheet("color: orange; font-weight: bold")
        self._offer_models(False)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda", "mps"])
        self.threshold_spin = QDoubleSpinBox(
            decimals=2, minimum=0.01, maximum=0.99, singleStep=0.05, value=PREDICTION_THRESHOLD
        )
        self.threshold_spin.valueChanged.connect(self._threshold_changed)
        self.axis_combo, self.extra_combo = QComboBox(), QComboBox()
        self.axis_combo.addItems([AUTO_AXIS, "0", "1", "2"])
        self.extra_combo.addItems([NO_AXIS, "0", "1", "2", "3"])
        self.disk_spin = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1e6, value=1.0)
        self.disk_spin.setToolTip("New Labels larger than this live in a zarr store on disk")
        self.overwrite_check = QCheckBox("Overwrite other objects")
        self.overwrite_check.toggled.connect(self._overwrite_changed)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)

        setup = QFormLayout()
        setup.addRow("Image", self.image_combo)
        self.image_combo.currentTextChanged.connect(self._image_chosen)
        setup.addRow("Labels", self.labels_combo)
        setup.addRow("Model", self.model_combo)
        setup.addRow("", browse)
        setup.addRow(self.untrained_check)
        setup.addRow(self.untrained_warning)
        setup.addRow("Device", self.device_combo)
        setup.addRow("Threshold", self.threshold_spin)
        setup.addRow("Slicing axis", self.axis_combo)
        setup.addRow("Time/channel axis", self.extra_combo)
        setup.addRow("Labels on disk above (GiB)", self.disk_spin)
        setup.addRow(self.overwrite_check)
        setup.addRow(self.start_button)
        setup_box = QGroupBox("Setup")
        setup_box.setLayout(setup)

        # a double: a QSpinBox holds only int32, and EM labels use uint32 / uint64 ids
        self.object_spin = QDoubleSpinBox(minimum=1, maximum=float(2**53), decimals=0)
        self.object_spin.setKeyboardTracking(False)
        self.object_spin.valueChanged.connect(self._object_chosen)
        self.polarity_button = QPushButton()
        self.polarity_button.clicked.connect(self.controller.toggle_polarity)
        buttons = {
            "Commit (C)": self.controller.commit,
            "Undo (Ctrl-Z)": self.controller.undo,
            "Reset (Shift-C)": self.controller.reset,
            "New object": lambda: self.controller.select_object(None),
            "Refine label": self.controller.refine_label,
            "Propagate (Shift-P)": self.controller.propagate,
            "Cancel": self.controller.cancel,
            "Save clicks...": self._save_clicks,
            "Load clicks...": self._load_clicks,
        }
        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        grid.addWidget(QLabel("Object id"), 0, 0)
        grid.addWidget(self.object_spin, 0, 1)
        grid.addWidget(self.polarity_button, 1, 0, 1, 2)
        for i, (text, action) in enumerate(buttons.items()):
            button = QPushButton(text)
            button.clicked.connect(action)
            self.buttons[text] = button
            grid.addWidget(button, 2 + i // 2, i % 2)
        self.progress_bar = QProgressBar()
        self.least_sure = QListWidget()
        self.least_sure.setMaximumHeight(90)
        self.least_sure.setToolTip(
            "Propagated slices to check, doubtful ones first (they may lie past the object's "
            "end), then those where the model was least sure: click to go there."
        )
        self.least_sure.itemClicked.connect(self._go_to_item)
        self.status = QLabel("Choose an image and press Start.")
        self.status.setWordWrap(True)
        annotate_box = QGroupBox("Annotate")
        annotate = QVBoxLayout()
        annotate.addLayout(grid)
        annotate.addWidget(self.progress_bar)
        annotate.addWidget(QLabel("Slices to check"))
        annotate.addWidget(self.least_sure)
        annotate_box.setLayout(annotate)

        layout = QVBoxLayout(self)
        layout.addWidget(setup_box)
        layout.addWidget(annotate_box)
        layout.addWidget(self._build_autosave())
        layout.addWidget(AdaptPanel(self))
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _build_autosave(self) -> QGroupBox:
        """Restore or discard an autosave found at Start; save the labels; clear; folder."""
        self.restore_button = QPushButton()
        self.restore_button.setStyleSheet("font-weight: bold")
        self.restore_button.clicked.connect(self._restore)
        self.autosave_buttons: dict[str, QPushButton] = {}
        box, layout = QGroupBox("Autosave"), QGridLayout()
        layout.addWidget(self.restore_button, 0, 0, 1, 2)
        for i, (text, action) in enumerate(
            {
                "Discard autosave": self.controller.recovery.discard,
                "Save labels...": self._save_labels,
                "Clear autosave": self.controller.recovery.clear,
                "Autosave folder...": self._choose_autosave_folder,
            }.items()
        ):
            button = QPushButton(text)
            button.clicked.connect(action)
            self.autosave_buttons[text] = button
            layout.addWidget(button, 1 + i // 2, i % 2)
        self.autosave_label = QLabel()
        self.autosave_label.setWordWrap(True)
        layout.addWidget(self.autosave_label, 3, 0, 1, 2)
        box.setLayout(layout)
        return box

    # ------------------------------------------------------------------ choices
    def _offer_models(self, with_untrained: bool) -> None:
        """List the models with weights, and the others only when allowed (with a warning)."""
        current = self.model_combo.currentText()
        self.model_combo.clear()
        self.model_combo.addItems(offered_models(with_untrained))
        if current:
            self.model_combo.setCurrentText(current)
        self.untrained_warning.setVisible(with_untrained)

    def _refresh_layers(self, event=None) -> None:
        for combo, kind, extra in (
            (self.image_combo, Image, []),
            (self.labels_combo, Labels, [NEW_LABELS]),
        ):
            current = combo.currentText()
            names = extra + [layer.name for layer in self.viewer.layers if isinstance(layer, kind)]
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            if current in names:
                combo.setCurrentText(current)
            combo.blockSignals(False)
        self._suggest_model()

    def _image_chosen(self, name: str) -> None:
        """Labels chosen for an image of another size go back to '<new>', then the model."""
        layers = {layer.name: layer for layer in self.viewer.layers}
        image, labels = layers.get(name), layers.get(self.labels_combo.currentText())
        if None not in (image, labels) and tuple(labels.data.shape) != spatial_shape(image):
            self.labels_combo.setCurrentText(NEW_LABELS)
        self._suggest_model()

    def _suggest_model(self, *_) -> None:
        """When the chosen image changes and the model is one of the shipped weights, choose
        the shipped weights for the image's kind (:func:`default_for_image`: MRI for the file
        types of scanners); a checkpoint or architecture the user chose is kept."""
        layer = next(
            (la for la in self.viewer.layers if la.name == self.image_combo.currentText()), None
        )
        if layer is None or layer is self._suggested_for:
            return
        self._suggested_for = layer
        if self.model_combo.currentText() not in SHIPPED_MODELS:
            return
        suggested = default_for_image(getattr(layer.source, "path", None))
        if self.model_combo.findText(suggested) >= 0:
            self.model_combo.setCurrentText(suggested)

    def settings(self) -> AnnotationSettings:
        """The settings the form shows."""
        axis, extra = self.axis_combo.currentText(), self.extra_combo.currentText()
        return AnnotationSettings(
            model=self.model_combo.currentText().strip() or "default",
            device=self.device_combo.currentText(),
            threshold=self.threshold_spin.value(),
            axis=None if axis == AUTO_AXIS else int(axis),
            extra_axis=None if extra == NO_AXIS else int(extra),
            overwrite=self.overwrite_check.isChecked(),
            allow_untrained=self.untrained_check.isChecked(),
            labels_on_disk=self.disk_spin.value() * 2**30,
        )

    def start(self) -> None:
        """Start (or restart with new settings) on the chosen layers."""
        layers = {layer.name: layer for layer in self.viewer.layers}
        image = layers.get(self.image_combo.currentText())
        labels_name = self.labels_combo.currentText()
        labels = None if labels_name in ("", NEW_LABELS) else layers.get(labels_name)
        try:
            self.controller.start(image, labels, self.settings())
        except ValueError as error:  # a session already running goes on: say which
            c = self.controller
            on = f" Annotation of '{c.image.name}' goes on." if c.ready else ""
            c.report_error(f"{error}{on}")

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model checkpoint", "", "Checkpoints (*.pt *.pth *.ckpt);;All files (*)"
        )
        if path:
            self.model_combo.setCurrentText(path)

    def _threshold_changed(self, value: float) -> None:
        self.controller.set_threshold(value)

    def _overwrite_changed(self, checked: bool) -> None:
        self.controller.set_overwrite(checked)

    def _object_chosen(self, value: float) -> None:
        if self.controller.ready and int(value) != self.controller.object_id:
            self.controller.select_object(int(value))

    def _save_clicks(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save clicks", "clicks.csv", "CSV (*.csv);;JSON (*.json)"
        )
        if path and self._reported(self.controller.save_clicks, path):
            self.controller.status.emit(f"Saved the clicks to {path}.")

    def _load_clicks(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load clicks", "", "Clicks (*.csv *.json)")
        if path:
            self._reported(load_clicks, self, path)  # asks first if its objects exist

    def _restore(self) -> None:
        self._reported(self.controller.restore_autosave)

    def _save_labels(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save labels",
            "labels.tif",
            "Labels (*.tif *.tiff *.png *.nii.gz *.nii *.mha *.nrrd *.zarr *.ome.zarr)",
        )
        if path and self._reported(self.controller.recovery.save_labels, path):
            self.controller.status.emit(f"Saved the labels to {path}.")

    def _reported(self, action, *args) -> bool:
        """``action(*args)``; False, with the error on the status line, when it raises
        OSError (a folder that does not exist, no permission, a full disk) or ValueError."""
        try:
            action(*args)
        except (OSError, ValueError) as error:
            self.controller.report_error(str(error))
            return False
        return True

    def _choose_autosave_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Autosave folder")
        if path:
            self.controller.recovery.root = Path(path)
            self.controller.status.emit(f"Autosaves go to {path} from the next Start.")

    # ------------------------------------------------------------------ state
    def _show_autosave(self) -> None:
        recovery, ready = self.controller.recovery, self.controller.ready
        self.restore_button.setText(recovery.offer_text)
        self.restore_button.setVisible(recovery.offer is not None)
        self.restore_button.setEnabled(ready and not self.controller.busy)
        undecided = recovery.offer is not None or bool(recovery.problem)
        for text, button in self.autosave_buttons.items():
            button.setEnabled(
                text.startswith("Autosave")
                or (ready and (undecided or not text.startswith("Discard")))
            )
        where = f"Each edit is saved at once in {recovery.folder}." if ready else ""
        self.autosave_label.setText(recovery.problem or f"{where} {recovery.note}".strip())

    def _show_state(self) -> None:
        ready, busy = self.controller.ready, self.controller.busy
        self.start_button.setText("Restart with these settings" if ready else "Start")
        self.start_button.setEnabled(not busy)
        for text, button in self.buttons.items():
            button.setEnabled(
                ready
                and (self.controller.can_propagate or not text.startswith("Propagate"))
                and (
                    text == "Cancel"
                    or text.startswith("Save")
                    or not busy
                    or text.startswith(("Undo", "Commit"))
                )
            )
        self.object_spin.setEnabled(ready)
        self._show_autosave()
        self.polarity_button.setEnabled(ready)
        self.polarity_button.setText(
            "Clicks: positive (object) - T toggles"
            if self.controller.positive
            else "Clicks: negative (background) - T toggles"
        )
        if ready:
            self.labels_combo.setCurrentText(self.controller.labels.name)
            self.object_spin.blockSignals(True)
            self.object_spin.setValue(float(self.controller.object_id))
            self.object_spin.blockSignals(False)

    def _show_status(self, text: str) -> None:
        self.status.setText(text)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress_bar.setMaximum(max(total, 1))
        self.progress_bar.setValue(min(done, max(total, 1)))

    def _show_report(self, report) -> None:
        """Doubtful slices first (marked, in orange), then the least sure of the others."""
        self.least_sure.clear()
        doubt = "DOUBTFUL, may be past the object's end"
        entries = [(p, f"plane {p}: {doubt}") for p in report.doubtful]
        others = [(p, u) for p, u in report.least_sure if p not in report.doubtful]
        entries += [(p, f"plane {p}: uncertainty {u:.2f}") for p, u in others]
        for plane, text in entries:
            item = QListWidgetItem(text)
            item.setData(256, plane)  # Qt.UserRole
            if plane in report.doubtful:
                item.setForeground(QColor("#ff8c00"))
            self.least_sure.addItem(item)

    def _go_to_item(self, item: QListWidgetItem) -> None:
        if self.controller.ready:
            self.controller.go_to_plane(int(item.data(256)))
