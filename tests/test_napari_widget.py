"""The napari dock widget, headless (run under xvfb-run: napari's canvas needs OpenGL).

The model is a randomly initialised ``tiny``: assertions are about which slices and ids get
labels, undo, commit, propagation and error handling, not about mask quality.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from synthetic import disk_volume

pytest.importorskip("napari")
pytestmark = pytest.mark.gui
if sys.platform.startswith("linux") and not (
    os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
):
    pytest.skip("napari's canvas needs a display: run under xvfb-run -a", allow_module_level=True)

from napari_adaptiveclick.volume import PropagationSettings  # noqa: E402
from napari_adaptiveclick.volume.clicks_file import read_click_records  # noqa: E402

TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def _quiet_random_model():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No default weights")
        yield


def dock_widget(viewer, qtbot, image, model: str = "tiny", start: bool = True):
    """The widget as napari builds it from the manifest, started on ``image``."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
    widget.model_combo.setCurrentText(model)
    widget.device_combo.setCurrentText("cpu")
    widget.image_combo.setCurrentText(image.name)
    if start:
        widget.start()
        qtbot.waitUntil(lambda: not widget.controller.busy, timeout=TIMEOUT_MS)
    return widget


def idle(qtbot, controller) -> None:
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT_MS)


def test_clicks_undo_commit_and_ids(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_adaptiveclick.interactive.session import ClickSession

    warmups = []  # for each warm-up call: did it run on the Qt (main) thread?
    warmup = ClickSession.warmup

    def recording_warmup(session):
        warmups.append(threading.current_thread() is threading.main_thread())
        warmup(session)

    monkeypatch.setattr(ClickSession, "warmup", recording_warmup)
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(5, 40), name="vol", scale=(3.0, 1.0, 1.0))
    labels_layer = viewer.add_labels(
        np.zeros((5, 40, 40), np.int32), name="seg", scale=(3.0, 1.0, 1.0)
    )
    labels_layer.data[0, :8, :8] = 4  # an existing object
    widget = dock_widget(viewer, qtbot, image, start=False)
    widget.labels_combo.setCurrentText("seg")
    widget.start()
    c = widget.controller
    idle(qtbot, c)
    assert c.ready and c.labels is labels_layer and c.object_id == 5
    assert warmups == [False]  # one dummy forward in the loader worker, not on the Qt thread
    assert c.annotator.geometry.axis == 0  # the coarsest spacing
    assert c.points.ndim == 3 and viewer.layers.selection.active is c.points

    c.go_to_plane(2)
    assert c.current_plane() == 2
    c.points.add([2, 20, 20])  # as a user click in add mode on plane 2
    idle(qtbot, c)
    data = labels_layer.data
    assert (data[2] == 5).any() and not (data[[1, 3, 4]] == 5).any()
    assert (data[0, :8, :8] == 4).all()
    assert "ms per click" in widget.status.text()
    after_first = data.copy()

    from napari.utils.key_bindings import KeyBinding

    c.points.keymap[KeyBinding.from_str("T")](c.points)  # the polarity key
    assert not c.positive
    c.add_click(2, 5, 35)
    idle(qtbot, c)
    assert [r.positive for r in c.annotator.object_records()] == [True, False]
    np.testing.assert_array_equal(c.points.face_color[1], [1, 0, 0, 1])  # negative = red
    c.undo()
    idle(qtbot, c)
    np.testing.assert_array_equal(labels_layer.data, after_first)
    assert len(c.points.data) == 1

    c.commit()
    idle(qtbot, c)
    assert c.object_id == 6 == widget.object_spin.value()
    assert len(c.points.data) == 0
    widget.object_spin.setValue(4)  # refine the existing object
    idle(qtbot, c)
    assert c.object_id == 4 and labels_layer.selected_label == 4

    stored = labels_layer.metadata["adaptiveclick"]
    assert [r["object_id"] for r in stored["records"]] == [5]
    assert stored["model"] == "tiny" and stored["axis"] == 0
    path = c.save_clicks(tmp_path / "clicks.csv")
    assert [(r.plane, r.row, r.col) for r in read_click_records(path)] == [(2, 20.0, 20.0)]
    c.load_clicks(path)  # replayed with the current model, as new undo levels
    idle(qtbot, c)
    assert [r.object_id for r in c.annotator.records] == [5, 5] and c.object_id == 5


def test_widget_settings_reach_the_session(make_napari_viewer, qtbot):
    """Threshold and overwrite changed in the form go through the controller's public API."""
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 32), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    assert c.annotator.session.threshold == pytest.approx(widget.threshold_spin.value())
    widget.threshold_spin.setValue(0.7)
    assert c.annotator.threshold == c.annotator.session.threshold == pytest.approx(0.7)
    widget.overwrite_check.setChecked(True)
    assert c.annotator.overwrite
    assert c.device == "cpu"


def test_propagation_and_least_sure_list(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(5, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    c.propagation_settings = PropagationSettings(
        min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0, stop_rule=None
    )
    c.go_to_plane(2)
    c.add_click(2, 20, 20)
    idle(qtbot, c)
    c.propagate()
    idle(qtbot, c)
    report = c.last_report
    assert sorted(report.written) == [0, 1, 3, 4]
    data = c.labels.data
    assert all((data[p] == c.object_id).any() for p in range(5))
    assert widget.least_sure.count() == len(report.least_sure) > 0
    widget.least_sure.itemClicked.emit(widget.least_sure.item(0))
    assert c.current_plane() == report.least_sure[0][0]
    c.undo()  # the whole propagation is one undo level
    idle(qtbot, c)
    assert [p for p in range(5) if (c.labels.data[p] == c.object_id).any()] == [2]

    c.propagate()  # from the least sure plane, where the object has no pixels any more
    assert "no pixels on plane" in widget.status.text() and not c.busy
    c.go_to_plane(2)
    c.propagate()
    c.add_click(2, 10, 10)  # a new click stops the propagation after the slice in progress
    idle(qtbot, c)
    assert "cancelled" in c.last_report.stops.values() and len(c.last_report.written) <= 1
    assert c.annotator.records[-1].row == 10.0


def test_bad_input_keeps_the_viewer_working(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 32), name="vol")
    viewer.add_labels(np.zeros((3, 32, 31), np.int32), name="wrong")
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    widget = dock_widget(viewer, qtbot, image, model=str(bad))
    assert not widget.controller.ready and "Could not load model" in widget.status.text()

    widget.model_combo.setCurrentText("tiny")
    widget.labels_combo.setCurrentText("wrong")
    widget.start()
    assert "has shape (3, 32, 31)" in widget.status.text() and not widget.controller.busy

    viewer.add_image(np.zeros((2, 3, 32, 32), np.float32), name="4d")
    widget.image_combo.setCurrentText("4d")
    widget.start()
    assert "choose its time/channel" in widget.status.text()

    widget.image_combo.setCurrentText("vol")
    widget.labels_combo.setCurrentText("<new>")
    widget.start()
    c = widget.controller
    idle(qtbot, c)
    c.points.add([1, 50, 50])  # outside the image
    assert "outside image" in widget.status.text() and len(c.points.data) == 0 and not c.busy

    labels, inputs = c.labels, (c.click_input.layer, c.prompt_input.layer)
    assert all(layer in viewer.layers for layer in inputs)
    c.add_click(1, 16, 16)
    viewer.layers.remove(image)  # deleted while the prediction runs
    idle(qtbot, c)
    assert not c.ready and "was removed" in widget.status.text()
    assert labels in viewer.layers and not labels.data.any()  # discarded: never written
    # its clicks and prompts layers go too (just after the removal)
    qtbot.waitUntil(lambda: not any(layer in viewer.layers for layer in inputs))
    viewer.add_points([[0, 1, 1]])  # the viewer still works


def test_another_image_gets_fitting_labels_and_a_failed_start_says_what_goes_on(
    make_napari_viewer, qtbot
):
    viewer = make_napari_viewer()
    first = viewer.add_image(disk_volume(2, 32), name="first")
    viewer.add_image(disk_volume(1, 24)[0], name="small")
    viewer.add_image(disk_volume(3, 32), name="deeper")  # same rows and columns, more planes
    widget = dock_widget(viewer, qtbot, first)
    assert widget.labels_combo.currentText() == "first labels"
    widget.image_combo.setCurrentText("deeper")
    assert widget.labels_combo.currentText() == "<new>"
    widget.image_combo.setCurrentText("first")
    widget.labels_combo.setCurrentText("first labels")
    widget.image_combo.setCurrentText("small")  # those labels do not fit it: back to <new>
    assert widget.labels_combo.currentText() == "<new>"
    widget.labels_combo.setCurrentText("first labels")  # chosen anyway: Start refuses
    widget.start()
    status = widget.status.text()
    assert "has shape (2, 32, 32)" in status and "Annotation of 'first' goes on." in status
    assert widget.controller.ready and widget.controller.image is first


def test_rgb_and_2d_images(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    rgb = np.stack([disk_volume(1, 32)[0]] * 3, axis=-1).astype(np.uint8)
    image = viewer.add_image(rgb, name="rgb")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    assert c.labels.data.shape == (32, 32)
    c.add_click(0, 10, 12)
    idle(qtbot, c)
    assert c.points.data.tolist() == [[10.0, 12.0]]
    assert (c.labels.data == c.object_id).any()
    c.points.remove([0])  # deleting the last click is an undo
    idle(qtbot, c)
    assert not c.labels.data.any() and c.annotator.records == [] and len(c.points.data) == 0


def test_screenshot_of_the_docked_widget(make_napari_viewer, qtbot, tmp_path):
    """Saved for people to look at: $ADAPTIVECLICK_SCREENSHOT_DIR (default: a temp dir)."""
    from napari_adaptiveclick._napari.sample_data import em_sample

    viewer = make_napari_viewer()
    data, kwargs, _ = em_sample()[0]
    image = viewer.add_image(data, **kwargs)
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    c.go_to_plane(8)
    c.add_click(8, 70, 80)
    idle(qtbot, c)
    viewer.window.resize(1400, 900)
    viewer.reset_view()
    out = Path(os.environ.get("ADAPTIVECLICK_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    shot = viewer.screenshot(str(out / "napari_widget.png"), canvas_only=False)
    assert shot.shape[0] > 400 and (out / "napari_widget.png").stat().st_size > 10_000


def test_time_axis_of_4d_images(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.stack([disk_volume(3, 32, seed) for seed in (1, 2)]), name="movie")
    viewer.dims.set_point(0, 1)  # time point 1 is on screen
    widget = dock_widget(viewer, qtbot, image, start=False)
    widget.extra_combo.setCurrentText("0")
    widget.start()
    c = widget.controller
    idle(qtbot, c)
    assert c.labels.data.shape == (2, 3, 32, 32) and c.selection.extra_index == 1
    c.add_click(1, 10, 12)
    idle(qtbot, c)
    assert (c.labels.data[1, 1] == c.object_id).any() and not c.labels.data[0].any()
    c.points.add([0, 1, 10, 12])  # on the other time point
    assert "press Start to annotate index 0" in widget.status.text() and not c.busy


def test_demo_script_through_the_widget(make_napari_viewer, qtbot, tmp_path, capsys):
    """The main job's scripted session (``demo --headless``) on the bundled EM sample."""
    from napari_adaptiveclick._napari.demo import open_demo, play_script

    viewer = make_napari_viewer()
    widget = open_demo(viewer, "tiny", "cpu")
    assert play_script(viewer, widget, tmp_path, timeout=120) == 0
    printed = capsys.readouterr().out
    assert printed.count("ms\n") == 3 and "propagated object 2" in printed
    from napari_adaptiveclick.io.images import read_image

    labels = read_image(tmp_path / "labels.tif")
    assert labels.data.shape == (16, 256, 256) and labels.spacing == pytest.approx((50.0, 4.6, 4.6))
    assert set(np.unique(labels.data)) <= {0, 1, 2} and (labels.data[8] == 1).any()
    assert len(read_click_records(tmp_path / "clicks.csv")) >= 3
    assert (tmp_path / "screenshot.png").stat().st_size > 10_000


def test_doubtful_propagated_slices_are_listed_first(make_napari_viewer, qtbot):
    from napari_adaptiveclick.volume.stopping import StopRule, default_stop_rule

    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(5, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    doubt_all = StopRule.from_json(
        {**default_stop_rule().to_json(), "stop_below": 0.0, "doubtful_below": 1.0}
    )
    c.propagation_settings = PropagationSettings(
        min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0, stop_rule=doubt_all
    )
    c.go_to_plane(2)
    c.add_click(2, 20, 20)
    idle(qtbot, c)
    c.propagate()
    idle(qtbot, c)
    report = c.last_report
    assert report.doubtful == tuple(sorted(report.written)) and report.doubtful
    texts = [widget.least_sure.item(i).text() for i in range(widget.least_sure.count())]
    assert texts[: len(report.doubtful)] == [
        f"plane {p}: DOUBTFUL, may be past the object's end" for p in report.doubtful
    ]
    assert "DOUBTFUL, check first" in widget.status.text()


def test_labels_with_ids_beyond_int32_start_and_take_clicks(make_napari_viewer, qtbot):
    # new-user trial 3: a uint32 id of 3e9 overflowed the object box (a QSpinBox holds only
    # int32) and napari aborted; EM segmentations often use such ids
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(4, 48), name="image")
    labels = np.zeros((4, 48, 48), np.uint32)
    labels[1, 2:6, 2:6] = 3_000_000_000
    viewer.add_labels(labels, name="seg")
    widget = dock_widget(viewer, qtbot, image, start=False)
    widget.labels_combo.setCurrentText("seg")
    widget.start()
    c = widget.controller
    qtbot.waitUntil(lambda: c.ready and not c.busy, timeout=TIMEOUT_MS)
    assert c.object_id == 3_000_000_001 == widget.object_spin.value()
    c.add_click(2, 24, 24)
    idle(qtbot, c)
    written = np.asarray(c.labels.data)
    assert (written[2] == 3_000_000_001).any() and (written[1, 2:6, 2:6] == 3_000_000_000).all()
    widget.object_spin.setValue(3_000_000_000)  # refine the existing object
    idle(qtbot, c)
    assert c.object_id == 3_000_000_000


def test_demo_never_replaces_files_in_out_unasked(tmp_path, capsys):
    # new-user trial 3: a second `demo --headless --out DIR` replaced the labels.tif there
    from napari_adaptiveclick._napari.demo import parse_args

    (tmp_path / "labels.tif").write_bytes(b"the user's labels")
    with pytest.raises(SystemExit):
        parse_args(["--headless", "--out", str(tmp_path)])
    assert "already holds labels.tif; pass --overwrite" in capsys.readouterr().err
    assert parse_args(["--headless", "--out", str(tmp_path), "--overwrite"]).overwrite
    assert (tmp_path / "labels.tif").read_bytes() == b"the user's labels"
