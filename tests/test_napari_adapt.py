"""The widget's "Adapt model" box, headless (run under xvfb-run: napari's canvas needs OpenGL):
a short adaptation in a worker on committed objects, its progress, table and checkpoint,
cancel, the checks that refuse bad input before any worker starts, and switching the
annotation to the adapted model and back. Runs are a step or two on a few 80 x 80 planes."""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import tifffile

from synthetic import disks_with_labels, fake_measure

pytest.importorskip("napari")
pytestmark = pytest.mark.gui
if sys.platform.startswith("linux") and not (
    os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
):
    pytest.skip("napari's canvas needs a display: run under xvfb-run -a", allow_module_level=True)

import torch  # noqa: E402

from napari_adaptiveclick._napari import adapt_inputs, adapt_panel  # noqa: E402
from napari_adaptiveclick._napari.adapt_inputs import (  # noqa: E402
    choose_volumes,
    default_checkpoint_path,
    read_user_labels,
)
from napari_adaptiveclick._napari.adapt_panel import AdaptPanel  # noqa: E402
from napari_adaptiveclick._napari.layers import GEOMETRY_KEY  # noqa: E402
from napari_adaptiveclick.io.volume import ImageVolume  # noqa: E402
from napari_adaptiveclick.learning import adapt as adapt_module  # noqa: E402
from napari_adaptiveclick.learning.adapt import AdaptSettings  # noqa: E402
from napari_adaptiveclick.models.checkpoint import (  # noqa: E402
    default_checkpoint,
    read_checkpoint,
    sha256sum,
)

TIMEOUT_MS = 60_000
# One training step, a check after it, three clicks per held-out object: seconds on a CPU.
QUICK = AdaptSettings(batch_size=1, max_steps=1, check_every=1, max_clicks=3, threads=1)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No default weights")
        yield


def _viewer_with_objects(make_napari_viewer, tmp_path, planes: int = 2):
    """A viewer with an image read from ``cells.tif`` (its source volume, as the plugin's
    reader gives it) and a Labels layer of two committed disks per plane."""
    image, labels = disks_with_labels(planes)
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, image, photometric="minisblack")
    viewer = make_napari_viewer()
    source = ImageVolume(image, (1.0,) * 3, (0.0,) * 3, path=path)
    image_layer = viewer.add_image(image, name="cells", metadata={GEOMETRY_KEY: source})
    labels_layer = viewer.add_labels(labels, name="cells labels")
    return viewer, image_layer, labels_layer


def _panel(viewer, qtbot, labels_name: str = "cells labels", start: bool = False):
    _, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
    widget.model_combo.setCurrentText("default")
    widget.device_combo.setCurrentText("cpu")
    widget.image_combo.setCurrentText("cells")
    widget.labels_combo.setCurrentText(labels_name)
    if start:
        widget.start()
        qtbot.waitUntil(lambda: widget.controller.ready and not widget.controller.busy, timeout=TIMEOUT_MS)  # fmt: skip
    panel = widget.findChild(AdaptPanel)
    panel.settings = QUICK
    return widget, panel


def _finish(qtbot, panel) -> None:
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT_MS)


def _on_thread(func, threads: list):
    """``func``, noting in ``threads`` whether each call ran on the Qt (main) thread."""

    def recording(*args, **kwargs):
        threads.append(threading.current_thread() is threading.main_thread())
        return func(*args, **kwargs)

    return recording


def test_adapt_in_a_worker_saves_beside_the_image_then_switch_and_back(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    viewer, image, labels = _viewer_with_objects(make_napari_viewer, tmp_path)
    widget, panel = _panel(viewer, qtbot, start=True)
    c = widget.controller
    taken = tmp_path / "cells_adapted.pt"
    taken.write_bytes(b"not to be overwritten")
    threads = []  # for the reading, the model loading and the training: on the Qt thread?
    steps = [
        (adapt_inputs, "read_user_labels"),
        (adapt_inputs, "prepare"),
        (adapt_panel, "run_job"),
    ]
    for module, name in steps:
        monkeypatch.setattr(module, name, _on_thread(getattr(module, name), threads))
    said = []
    monkeypatch.setattr(panel, "_say", lambda text, say=panel._say: (said.append(text), say(text)))
    panel.keep_check.setChecked(True)  # one step may not help: this test is about the saving
    before_labels = labels.data.copy()
    panel.adapt()
    assert panel.running and panel.result is None  # adapt() returned while the worker runs
    assert not panel.adapt_button.isEnabled() and panel.cancel_button.isEnabled()
    _finish(qtbot, panel)
    assert threads == [False, False, False]  # read, loaded and trained in workers
    assert any("4 objects: 3 to train on, 1 held out by objects" in text for text in said)
    phases = [u.phase for u in panel.updates]
    assert phases == ["before", "train", "check"]
    assert panel.progress_bar.value() == panel.progress_bar.maximum()
    table = panel.table.toPlainText()
    assert not panel.table.isHidden()
    assert "before (source model)" in table and "after (step 1 of 1)" in table
    assert "NoC@85" in table  # after its one step (a model good on these disks: a perfect check)
    assert "stopped: step limit" in table or "stopped: held-out objects perfect" in table

    saved = tmp_path / "cells_adapted-2.pt"  # beside the image, never over an existing file
    assert panel.saved_path == saved and saved.is_file()
    assert taken.read_bytes() == b"not to be overwritten"
    assert str(saved) in panel.message.text()
    prov = read_checkpoint(saved)["adaptation"]
    assert prov["source"]["checkpoint"] == "default"
    assert prov["source"]["sha256"] == sha256sum(default_checkpoint())
    assert prov["image"]["file"] == str(tmp_path / "cells.tif")
    assert prov["image"]["sha256"] == sha256sum(tmp_path / "cells.tif")
    assert prov["labels"]["shape"] == [2, 80, 80] and prov["labels"]["file"] is None
    assert prov["steps"] == 1 and prov["held_out_by"] == "objects"
    assert len(prov["objects_used"]) == 3 and len(prov["objects_held_out"]) == 1
    assert {o["label_id"] for o in prov["objects_used"] + prov["objects_held_out"]} == {1, 2}
    np.testing.assert_array_equal(labels.data, before_labels)  # adapting changes no labels

    # switch the annotation to the adapted model: a restart on the same layers
    assert panel.use_adapted_button.isEnabled()
    panel.use_adapted()
    qtbot.waitUntil(lambda: c.ready and not c.busy, timeout=TIMEOUT_MS)
    assert c.settings.model == str(saved) == widget.model_combo.currentText()
    assert c.labels is labels and labels in viewer.layers
    np.testing.assert_array_equal(labels.data, before_labels)
    adapted = read_checkpoint(saved)["state_dict"]
    default = read_checkpoint(default_checkpoint())["state_dict"]
    session = {k: v.cpu() for k, v in c.annotator.session.model.state_dict().items()}
    floats = [k for k, v in adapted.items() if v.is_floating_point()]
    assert all(torch.equal(session[k], adapted[k]) for k in floats)
    assert any(not torch.equal(adapted[k], default[k]) for k in floats)  # it did train
    assert panel.use_default_button.isEnabled()

    panel.use_default()
    qtbot.waitUntil(lambda: c.ready and not c.busy, timeout=TIMEOUT_MS)
    assert c.settings.model == "default" and not panel.use_default_button.isEnabled()
    session = {k: v.cpu() for k, v in c.annotator.session.model.state_dict().items()}
    assert all(torch.equal(session[k], default[k]) for k in floats)
    np.testing.assert_array_equal(labels.data, before_labels)


def test_worse_is_not_saved_until_kept(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    viewer, *_ = _viewer_with_objects(make_napari_viewer, tmp_path)
    widget, panel = _panel(viewer, qtbot)
    monkeypatch.setattr(adapt_module, "measure", fake_measure([2.0, 3.0]))
    out = tmp_path / "chosen.pt"
    panel.path_edit.setText(str(out))
    panel.adapt()
    _finish(qtbot, panel)
    assert "WORSE" in panel.message.text() and "not saved" in panel.message.text()
    assert "3.00" in panel.table.toPlainText()
    assert not out.exists() and panel.saved_path is None
    assert not panel.use_adapted_button.isEnabled()
    panel.keep_check.setChecked(True)  # the user keeps it after all
    _finish(qtbot, panel)
    assert panel.saved_path == out and out.is_file()
    assert "WARNING" in panel.message.text()
    assert read_checkpoint(out)["adaptation"]["after"]["NoC@85"] == 3.0


def _training(make_napari_viewer, qtbot, tmp_path):
    """A 5-minute adaptation that has reached its training steps: (viewer, widget, panel)."""
    viewer, *_ = _viewer_with_objects(make_napari_viewer, tmp_path)
    widget, panel = _panel(viewer, qtbot)
    panel.settings = AdaptSettings(batch_size=1, max_clicks=3, threads=1)  # 5 minutes
    panel.path_edit.setText(str(tmp_path / "never.pt"))
    panel.adapt()
    qtbot.waitUntil(lambda: any(u.phase == "train" for u in panel.updates), timeout=TIMEOUT_MS)
    return viewer, widget, panel


def test_cancel_stops_the_run_promptly_and_writes_nothing(make_napari_viewer, qtbot, tmp_path):
    _, _, panel = _training(make_napari_viewer, qtbot, tmp_path)
    assert "loss" in panel.progress_bar.format() and "left" in panel.progress_bar.format()
    panel.cancel()
    cancelled_at = time.monotonic()
    assert not panel.cancel_button.isEnabled()
    _finish(qtbot, panel)
    assert time.monotonic() - cancelled_at < 20  # after the step in progress
    assert "cancelled" in panel.message.text() and "nothing was saved" in panel.message.text()
    assert panel.result is None and panel.saved_path is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.tif"]
    assert panel.adapt_button.isEnabled()


@pytest.mark.parametrize(
    "case, message",
    [
        ("no objects", "hold no objects"),
        ("other shape", "has shape (2, 40, 40) but image 'cells' needs (2, 80, 80)"),
        ("new labels", "not '<new>'"),
        ("untrained model", "without trained weights"),
        ("not a model", "holds no 'state_dict'"),
        ("one object", "at least 2 objects"),
    ],
)
def test_bad_input_is_shown_and_starts_no_worker(
    make_napari_viewer, qtbot, tmp_path, monkeypatch, case, message
):
    viewer, _, labels = _viewer_with_objects(make_napari_viewer, tmp_path)
    labels_name = "cells labels"
    if case == "no objects":
        labels.data = np.zeros_like(labels.data)
    elif case == "other shape":
        labels_name = viewer.add_labels(np.ones((2, 40, 40), np.uint16), name="small").name
    elif case == "new labels":
        labels_name = "<new>"
    elif case == "one object":
        labels.data = (labels.data == 1).astype(np.uint16) * np.array([1, 0])[:, None, None]
    widget, panel = _panel(viewer, qtbot, labels_name)
    if case == "untrained model":
        widget.model_combo.setCurrentText("vit_b")
    elif case == "not a model":
        config_only = tmp_path / "config_only.pt"
        torch.save({"format": "napari-adaptiveclick", "config": {}}, config_only)
        widget.model_combo.setCurrentText(str(config_only))
    trained = []
    monkeypatch.setattr(adapt_panel, "run_job", lambda *args: trained.append(args))
    panel.adapt()  # checked on the Qt thread, or read and checked in a worker
    _finish(qtbot, panel)
    assert not trained and not panel.running and panel.job is None  # no training started
    assert message in panel.message.text() and message in widget.status.text()
    assert panel.message.text().startswith("Cannot adapt: ")


def test_the_object_being_edited_is_left_out(make_napari_viewer, qtbot, tmp_path):
    viewer, _, labels = _viewer_with_objects(make_napari_viewer, tmp_path)
    widget, panel = _panel(viewer, qtbot, start=True)
    c = widget.controller
    settings = widget.settings()
    user = read_user_labels(choose_volumes(c, None, None, settings))  # a fresh id: none out
    assert user.left_out is None and user.axis == 0 and (user.labels == 1).any()
    widget.object_spin.setValue(1)  # refine object 1: it is not committed any more
    qtbot.waitUntil(lambda: c.object_id == 1 and not c.busy, timeout=TIMEOUT_MS)
    user = read_user_labels(choose_volumes(c, None, None, settings))
    assert user.left_out == 1 and not (user.labels == 1).any() and (user.labels == 2).any()
    assert (labels.data == 1).any()  # a snapshot: the layer keeps the object
    assert user.image.path == tmp_path / "cells.tif" and user.image.axes == "zyx"


def test_default_path_beside_the_image_or_at_home(tmp_path, monkeypatch):
    from napari.layers import Image

    (tmp_path / "scan.nii.gz").write_bytes(b"")
    source = ImageVolume(np.zeros((4, 4)), (1.0, 1.0), (0.0, 0.0), path=tmp_path / "scan.nii.gz")
    layer = Image(np.zeros((4, 4)), name="scan", metadata={GEOMETRY_KEY: source})
    assert default_checkpoint_path(layer) == tmp_path / "scan_adapted.pt"
    (tmp_path / "scan_adapted.pt").write_bytes(b"")
    (tmp_path / "scan_adapted-2.pt").write_bytes(b"")
    assert default_checkpoint_path(layer) == tmp_path / "scan_adapted-3.pt"
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    unsaved = Image(np.zeros((4, 4)), name="my cells/2")
    assert default_checkpoint_path(unsaved) == home / "my_cells_2_adapted.pt"


def test_closing_the_widget_ends_the_run(make_napari_viewer, qtbot, tmp_path):
    viewer, widget, panel = _training(make_napari_viewer, qtbot, tmp_path)
    stop, worker = panel._stop, panel._worker
    viewer.window.remove_dock_widget("all")
    widget.deleteLater()
    qtbot.waitUntil(stop.is_set, timeout=TIMEOUT_MS)  # the run is told to end at once
    qtbot.waitUntil(lambda: not worker.is_running, timeout=TIMEOUT_MS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.tif"]


def test_the_save_dialog_confirms_only_the_file_it_asked_about_and_once(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    viewer, *_ = _viewer_with_objects(make_napari_viewer, tmp_path)
    widget, panel = _panel(viewer, qtbot)
    existing = tmp_path / "model.pt"
    existing.write_bytes(b"the user's model")
    answers = []
    monkeypatch.setattr(
        adapt_panel.QFileDialog, "getSaveFileName", lambda *args, **kwargs: (answers.pop(0), "")
    )
    answers.append(str(tmp_path / "model"))  # typed without .pt: the dialog asked nothing
    panel._browse()
    assert panel.path_edit.text() == str(tmp_path / "model-2.pt")
    assert panel._target() == tmp_path / "model-2.pt" and not panel._overwrite()
    answers.append(str(existing))  # chosen as it is: the dialog asked to replace it
    panel._browse()
    assert panel._target() == existing and panel._overwrite()
    panel.path_edit.setText(str(tmp_path / "other.pt"))  # another path: that answer is gone
    panel.path_edit.setText(str(existing))
    assert panel._target() == tmp_path / "model-2.pt" and not panel._overwrite()

    answers.append(str(existing))
    panel._browse()
    monkeypatch.setattr(adapt_module, "measure", fake_measure([3.0, 2.0, 3.0, 2.0]))  # better
    panel.adapt()
    _finish(qtbot, panel)
    assert panel.saved_path == existing and read_checkpoint(existing)["adaptation"]
    replaced = existing.read_bytes()
    panel.adapt()  # the same path again: the confirmation served one save
    _finish(qtbot, panel)
    assert panel.saved_path == tmp_path / "model-2.pt" and existing.read_bytes() == replaced


def test_no_adaptation_while_the_controller_writes_the_labels(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    viewer, *_ = _viewer_with_objects(make_napari_viewer, tmp_path)
    widget, panel = _panel(viewer, qtbot, start=True)
    c = widget.controller
    trained = []
    monkeypatch.setattr(adapt_panel, "run_job", lambda *args: trained.append(args))
    c.add_click(0, 40, 10)  # its prediction runs: the labels may be half written
    assert c.busy
    panel.adapt()
    assert not panel.running and panel.job is None
    assert "Cannot adapt while a prediction" in panel.message.text()
    qtbot.waitUntil(lambda: not c.busy, timeout=TIMEOUT_MS)

    reading, go = threading.Event(), threading.Event()
    read = adapt_inputs.read_user_labels

    def slow_read(volumes):
        reading.set()
        go.wait(TIMEOUT_MS / 1000)
        return read(volumes)

    monkeypatch.setattr(adapt_inputs, "read_user_labels", slow_read)
    panel.adapt()
    qtbot.waitUntil(reading.is_set, timeout=TIMEOUT_MS)
    c.add_click(1, 40, 10)  # a click while the worker reads the labels
    go.set()
    _finish(qtbot, panel)
    qtbot.waitUntil(lambda: not c.busy, timeout=TIMEOUT_MS)
    assert not trained and panel.job is None
    assert "edited while they were read" in panel.message.text()


def test_lazy_volumes_are_read_in_the_worker_and_too_big_ones_refused(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    da = pytest.importorskip("dask.array")
    image, labels = disks_with_labels(2)
    viewer = make_napari_viewer()
    lazy = da.from_array(image, chunks=(1, 80, 80))
    viewer.add_image(lazy, name="cells", contrast_limits=(0, 300))
    viewer.add_labels(labels, name="cells labels")
    widget, panel = _panel(viewer, qtbot)
    trained = []
    monkeypatch.setattr(adapt_panel, "run_job", lambda *args: trained.append(args))
    monkeypatch.setattr(adapt_inputs, "LAZY_LIMIT", image.nbytes - 1)
    panel.adapt()
    assert not panel.running  # refused before any reading
    text = panel.message.text()
    assert text.startswith("Cannot adapt: 'cells' is") and "on disk" in text
    assert "adapt on a crop" in text and "command line" in text

    monkeypatch.setattr(adapt_inputs, "LAZY_LIMIT", image.nbytes)  # labels in memory: no limit
    threads = []
    monkeypatch.setattr(adapt_inputs, "read_user_labels", _on_thread(read_user_labels, threads))
    panel.adapt()
    assert panel.running  # adapt() returned: the worker reads
    panel.cancel()  # while the layers are read: no training
    _finish(qtbot, panel)
    assert threads == [False] and not trained and panel.job is None
    assert "cancelled" in panel.message.text()

    def too_big(volumes):
        raise MemoryError("Unable to allocate 5.00 GiB")

    monkeypatch.setattr(adapt_inputs, "read_user_labels", too_big)
    panel.adapt()
    _finish(qtbot, panel)
    text = panel.message.text()
    assert text.startswith("Cannot adapt: MemoryError: Unable to allocate") and "crop" in text
    assert not trained and panel.job is None
