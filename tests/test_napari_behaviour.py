"""The widget's behaviour around the clicks, headless (run under xvfb-run): which models it
offers, the threshold, undo after commit, replay, restarts, 2D images, errors and colours.
"""

from __future__ import annotations

import colorsys
import sys

import numpy as np
import pytest

from synthetic import disk_volume
from test_napari_widget import _quiet_random_model, dock_widget, idle  # noqa: F401

pytestmark = pytest.mark.gui


def test_only_models_with_weights_are_offered(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 32), name="vol")
    widget = dock_widget(viewer, qtbot, image, start=False)
    offered = [widget.model_combo.itemText(i) for i in range(widget.model_combo.count())]
    assert "default" in offered and "vit_b" not in offered and "vit_h" not in offered
    from napari_adaptiveclick._napari.loading import untrained

    assert not any(untrained(name) for name in offered)
    assert widget.untrained_warning.isHidden()

    widget.model_combo.setCurrentText("vit_b")  # typed: refused before anything loads
    widget.start()
    c = widget.controller
    assert "no trained weights" in widget.status.text() and not c.busy and not c.ready

    widget.untrained_check.setChecked(True)  # the explicit choice, with a visible warning
    offered = [widget.model_combo.itemText(i) for i in range(widget.model_combo.count())]
    assert offered[-2:] == ["vit_b", "vit_h"] and not widget.untrained_warning.isHidden()
    assert "random weights" in widget.untrained_warning.text()


def test_a_model_without_weights_needs_the_opt_in(make_napari_viewer, qtbot, monkeypatch):
    """Without shipped weights even 'default' would be a random tiny model."""
    import napari_adaptiveclick._napari.loading as loading
    import napari_adaptiveclick.models.registry as registry

    monkeypatch.setattr(registry, "default_checkpoint", lambda name="default": None)
    monkeypatch.setattr(loading, "shipped_weights_installed", lambda name: False)  # nor MRI
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 32), name="vol")
    widget = dock_widget(viewer, qtbot, image, model="", start=False)
    assert widget.model_combo.count() == 0  # nothing to offer: the user must choose
    widget.start()
    c = widget.controller
    assert "Model 'default' has no trained weights" in widget.status.text() and not c.busy

    widget.untrained_check.setChecked(True)
    widget.model_combo.setCurrentText("tiny")
    widget.start()
    idle(qtbot, c)
    assert c.ready and "random weights" in widget.status.text()
    assert "Ready" in widget.status.text()


def _started(make_napari_viewer, qtbot):
    """The widget and its controller, started on a 3-plane disk volume."""
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    return widget, widget.controller


def test_threshold_applies_to_the_last_click_at_once(make_napari_viewer, qtbot):
    widget, c = _started(make_napari_viewer, qtbot)
    c.go_to_plane(1)
    c.add_click(1, 20, 20)
    idle(qtbot, c)
    probability = c.annotator.session.probability
    assert (probability > 0.05).sum() > (probability > 0.95).sum()  # the threshold matters
    for threshold in (0.95, 0.05):
        widget.threshold_spin.setValue(threshold)
        np.testing.assert_array_equal(c.labels.data[1] == 1, probability > threshold)
    assert c.labels.metadata["adaptiveclick"]["threshold"] == pytest.approx(0.05)
    assert len(c.annotator.records) == 1
    assert c.annotator.records[0].threshold == pytest.approx(0.05)  # replays at 0.05
    assert c.labels.metadata["adaptiveclick"]["records"][0]["threshold"] == pytest.approx(0.05)
    c.undo()  # the click and its threshold changes are one undo level
    idle(qtbot, c)
    assert not c.labels.data.any() and not c.annotator.can_undo

    c.add_click(1, 20, 20, positive=True)
    idle(qtbot, c)
    c.commit()
    idle(qtbot, c)
    committed = c.labels.data.copy()
    widget.threshold_spin.setValue(0.5)  # a committed object stays as it is
    np.testing.assert_array_equal(c.labels.data, committed)


def test_threshold_after_an_undo_applies_to_the_click_now_last(make_napari_viewer, qtbot):
    # Before, after click, click, Undo a changed Threshold did nothing (the undone click was
    # still the one it re-applied to).
    widget, c = _started(make_napari_viewer, qtbot)
    c.add_click(1, 20, 20)
    idle(qtbot, c)
    probability = c.annotator.session.probability  # the first click's
    c.add_click(1, 4, 4, positive=False)
    idle(qtbot, c)
    c.undo()
    idle(qtbot, c)
    for threshold in (0.95, 0.05):
        widget.threshold_spin.setValue(threshold)
        idle(qtbot, c)
        np.testing.assert_array_equal(c.labels.data[1] == 1, probability > threshold)
    assert len(c.annotator.records) == 1
    assert c.annotator.records[0].threshold == pytest.approx(0.05)
    assert "Threshold 0.05" in widget.status.text()


def test_undo_after_commit_only_reopens_the_object(make_napari_viewer, qtbot):
    widget, c = _started(make_napari_viewer, qtbot)
    c.add_click(1, 20, 20)
    idle(qtbot, c)
    clicked = c.labels.data.copy()
    c.commit()
    idle(qtbot, c)
    assert c.object_id == 2
    c.undo()  # un-commit: object 1 again, with its click and pixels
    idle(qtbot, c)
    assert c.object_id == 1 == widget.object_spin.value() and len(c.annotator.records) == 1
    np.testing.assert_array_equal(c.labels.data, clicked)
    assert "Commit undone" in widget.status.text() and len(c.points.data) == 1
    c.undo()  # now its click
    idle(qtbot, c)
    assert c.annotator.records == [] and not c.labels.data.any()


def test_replay_says_when_it_finished(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    c.add_click(1, 20, 20)
    idle(qtbot, c)
    path = c.save_clicks(tmp_path / "clicks.csv")
    c.load_clicks(path)
    idle(qtbot, c)
    assert "Replay finished: 1 of 1 clicks applied." in widget.status.text()
    assert widget.progress_bar.value() == widget.progress_bar.maximum()


def test_restart_with_new_labels_leaves_no_layers_behind(make_napari_viewer, qtbot):
    from napari.layers import Labels, Points

    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller

    def count(kind) -> int:
        return sum(isinstance(layer, kind) for layer in viewer.layers)

    for _ in range(2):  # restart on empty new labels: no leftovers
        widget.labels_combo.setCurrentText("<new>")
        widget.start()
        idle(qtbot, c)
        assert c.ready and count(Labels) == 1 and count(Points) == 1
    c.add_click(1, 20, 20)
    idle(qtbot, c)
    annotated = c.labels
    widget.labels_combo.setCurrentText("<new>")  # annotated labels are kept
    widget.start()
    idle(qtbot, c)
    assert annotated in viewer.layers and count(Labels) == 2 and count(Points) == 1


def test_propagate_is_not_offered_on_a_2d_image(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(1, 32)[0], name="flat")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    c.add_click(0, 16, 16)
    idle(qtbot, c)
    assert not widget.buttons["Propagate (Shift-P)"].isEnabled()
    assert widget.buttons["Commit (C)"].isEnabled()
    c.propagate()
    assert "this image has one" in widget.status.text() and not c.busy


@pytest.mark.skipif(sys.platform == "darwin", reason="mps may exist on macOS")
def test_a_device_error_is_one_short_line(make_napari_viewer, qtbot):
    from napari_adaptiveclick._napari.loading import AnnotationSettings

    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 32), name="vol")
    widget = dock_widget(viewer, qtbot, image, start=False)
    c = widget.controller
    c.start(image, None, AnnotationSettings(model="tiny", device="mps"))
    idle(qtbot, c)
    text = widget.status.text()
    assert not c.ready and "\n" not in text and len(text) < 300
    assert "Device 'mps' is not usable here" in text and "'cpu'" in text
    assert "Could not load model" not in text


def test_a_full_uint8_labels_layer_is_reported_as_full(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 32), name="vol")
    full = np.zeros((3, 32, 32), np.uint8)
    full[0, 0, 0] = 255
    viewer.add_labels(full, name="full")
    widget = dock_widget(viewer, qtbot, image, start=False)
    widget.labels_combo.setCurrentText("full")
    widget.start()
    text = widget.status.text()
    assert "Labels 'full' is full" in text and "Could not load model" not in text
    assert not widget.controller.busy


def test_new_labels_have_colours_visible_on_grey(make_napari_viewer, qtbot):
    """Bright, saturated colours (far from any grey), consecutive ids far apart in hue."""
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 32), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    colors = widget.controller.labels.colormap.map(np.arange(1, 49))[:, :3]
    chroma = colors.max(axis=1) - colors.min(axis=1)  # distance from the grey axis
    hsv = np.array([colorsys.rgb_to_hsv(*rgb) for rgb in colors])
    hue_steps = np.abs(np.diff(hsv[:, 0]))
    assert chroma.min() >= 0.6 and hsv[:, 2].min() >= 0.9
    assert np.minimum(hue_steps, 1 - hue_steps).min() >= 0.15


def test_scanner_files_get_the_mri_weights_until_the_user_picks(
    make_napari_viewer, qtbot, tmp_path, mri_weights
):
    """A NIfTI image gets 'default-mri', a TIFF 'default'; a model the user picked stays."""
    import nibabel as nib
    import tifffile
    import torch

    volume = disk_volume(3, 32).astype(np.float32)
    nib.save(nib.Nifti1Image(volume.T, np.eye(4)), tmp_path / "t2.nii.gz")
    tifffile.imwrite(
        tmp_path / "em.tif", (disk_volume(3, 32) * 200).astype(np.uint8), photometric="minisblack"
    )
    viewer = make_napari_viewer()
    [em] = viewer.open(tmp_path / "em.tif", plugin="napari")
    [scan] = viewer.open(tmp_path / "t2.nii.gz", plugin="napari-adaptiveclick")
    _, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
    offered = [widget.model_combo.itemText(i) for i in range(widget.model_combo.count())]
    assert offered[:3] == ["default", "default-mri", "tiny"]
    widget.device_combo.setCurrentText("cpu")
    widget.image_combo.setCurrentText(scan.name)
    assert widget.model_combo.currentText() == "default-mri"
    widget.start()
    idle(qtbot, widget.controller)
    loaded = widget.controller.annotator.session.model.state_dict()["backbone.pos_embed"]
    expected = mri_weights.state_dict()["backbone.pos_embed"]
    torch.testing.assert_close(loaded, expected, atol=1e-3, rtol=1e-3)  # stored as float16
    widget.image_combo.setCurrentText(em.name)
    assert widget.model_combo.currentText() == "default"
    widget.model_combo.setCurrentText("tiny")  # the user's choice is kept
    widget.image_combo.setCurrentText(scan.name)
    assert widget.model_combo.currentText() == "tiny"
