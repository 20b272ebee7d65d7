"""Autosave and recovery through the widget, headless (run under xvfb-run -a): a real napari
process annotating is killed with SIGKILL, and a fresh viewer restores exactly its labels;
restarts continue the store, Discard and unasked edits set an old store aside, damaged
stores are reported, saving the labels ends the store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from synthetic import disk_volume
from test_napari_widget import _quiet_random_model, dock_widget, idle  # noqa: F401

pytestmark = pytest.mark.gui

from napari_adaptiveclick.io.images import read_image  # noqa: E402
from napari_adaptiveclick.volume.autosave_state import open_state  # noqa: E402
from napari_adaptiveclick.volume.clicks_file import read_click_records  # noqa: E402

CHILD = r"""
import os, sys, time
from pathlib import Path
import numpy as np
import napari
from qtpy.QtWidgets import QApplication
from napari_adaptiveclick.volume import PropagationSettings

image_path, out = sys.argv[1], Path(sys.argv[2])
viewer = napari.Viewer(show=False)
app = QApplication.instance()

def wait(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        app.processEvents()
        time.sleep(0.005)
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")

(image,) = viewer.open(image_path, plugin="napari")
_, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
widget.model_combo.setCurrentText("tiny")
widget.device_combo.setCurrentText("cpu")
widget.image_combo.setCurrentText(image.name)
widget.start()
c = widget.controller
wait(lambda: c.ready and not c.busy, "the model")
c.propagation_settings = PropagationSettings(
    min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0, stop_rule=None
)

def act(do, *args):
    do(*args)
    wait(lambda: not c.busy, do.__name__)

c.go_to_plane(2)
act(c.add_click, 2, 20, 20)
act(c.propagate)
act(c.commit)
c.go_to_plane(1)
act(c.add_click, 1, 6, 6)
act(c.add_click, 1, 30, 30, False)
act(c.undo)
c.labels.brush_size = 3
c.labels.paint((4, 36, 36), 9)  # by hand
wait(lambda: not c.recovery.pending, "the paint to be saved")
c.save_clicks(out / "clicks.csv")
(out / "object").write_text(str(c.object_id))
np.save(out / "before.tmp.npy", c.labels.data)  # the state before the kill
os.replace(out / "before.tmp.npy", out / "before.npy")
while True:  # annotating goes on until the kill
    app.processEvents()
    time.sleep(0.02)
"""


def saved_image(tmp_path: Path, name: str = "cells.tif") -> Path:
    import tifffile

    path = tmp_path / name
    tifffile.imwrite(path, disk_volume(5, 40).clip(0, 255).astype(np.uint8))
    return path


def open_and_start(viewer, qtbot, path: Path):
    (layer,) = viewer.open(str(path), plugin="napari")
    widget = dock_widget(viewer, qtbot, layer)
    return widget, widget.controller


def test_labels_of_a_killed_napari_are_restored_exactly(make_napari_viewer, qtbot, tmp_path):
    path, out = saved_image(tmp_path), tmp_path / "child"
    out.mkdir()
    with (tmp_path / "child.log").open("w") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(out)], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 120
        while not (out / "before.npy").exists():
            failed = child.poll() is not None or time.monotonic() > deadline
            assert not failed, (tmp_path / "child.log").read_text()[-3000:]
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)  # napari dies mid-annotation
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    before = np.load(out / "before.npy")
    assert (before == 9).any() and (before == 1).any()  # painted by hand, clicked

    viewer = make_napari_viewer()
    widget, c = open_and_start(viewer, qtbot, path)
    records = read_click_records(out / "clicks.csv")
    assert not widget.restore_button.isHidden()
    assert widget.restore_button.text().startswith("Restore the autosaved annotation from ")
    # the offer counts the clicks and the planes whose labels changed (painting has no clicks)
    edited = int(np.count_nonzero(before.any(axis=(1, 2))))
    offered = re.search(
        r"\((\d+) clicks?, labels edited on (\d+) planes?\)$", widget.restore_button.text()
    )
    assert offered and int(offered[1]) == len(records) and int(offered[2]) >= edited >= 2
    assert not c.labels.data.any()
    widget.restore_button.click()
    np.testing.assert_array_equal(c.labels.data, before)  # exactly what was there
    assert widget.restore_button.isHidden() and "Restored" in widget.status.text()
    assert c.object_id == int((out / "object").read_text())
    path_clicks = tmp_path / "restored.csv"
    c.save_clicks(path_clicks)
    assert read_click_records(path_clicks) == records  # replay / segment go on from here

    c.go_to_plane(3)
    c.add_click(3, 8, 30)  # annotating continues, and so does the store
    idle(qtbot, c)
    qtbot.waitUntil(lambda: not c.recovery.pending, timeout=30_000)  # written in the background
    assert len(open_state(c.recovery.folder, None).records) > len(records)
    c.undo()
    idle(qtbot, c)
    np.testing.assert_array_equal(c.labels.data, before)


def test_restart_discard_damage_and_save(make_napari_viewer, qtbot, tmp_path):
    path = saved_image(tmp_path)
    sidecar = Path(f"{path}.adaptiveclick")
    viewer = make_napari_viewer()
    widget, c = open_and_start(viewer, qtbot, path)
    assert widget.restore_button.isHidden() and not sidecar.exists()  # nothing until an edit
    c.add_click(2, 20, 20)
    idle(qtbot, c)
    assert c.recovery.folder == sidecar / "autosave" and (sidecar / "autosave").is_dir()
    assert str(sidecar / "autosave") in widget.autosave_label.text()
    widget.start()  # a restart on the same labels continues the store
    idle(qtbot, c)
    assert widget.restore_button.isHidden() and c.recovery.offer is None

    other = make_napari_viewer()  # another viewer on the same image is offered the store
    widget2, c2 = open_and_start(other, qtbot, path)
    assert not widget2.restore_button.isHidden()
    widget2.autosave_buttons["Discard autosave"].click()
    assert widget2.restore_button.isHidden()
    assert [p.name.split("-")[0] for p in sidecar.iterdir()] == ["autosave.discarded"]
    c2.add_click(1, 20, 20)
    idle(qtbot, c2)
    manifest = sidecar / "autosave" / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(re.sub(r'"saved_at": "[^"]*"', '"saved_at": "later"', text))

    third = make_napari_viewer()
    widget3, c3 = open_and_start(third, qtbot, path)
    assert widget3.restore_button.isHidden() and "damaged" in widget3.autosave_label.text()
    c3.add_click(3, 20, 20)  # an edit sets the damaged store aside, never over it
    idle(qtbot, c3)
    names = sorted(p.name.split("-")[0] for p in sidecar.iterdir())
    assert names == ["autosave", "autosave.damaged", "autosave.discarded"]

    c3.recovery.save_labels(tmp_path / "labels.tif")  # the normal writer ends the store
    assert (tmp_path / "labels.tif").is_file() and not (sidecar / "autosave").exists()
    c3.add_click(3, 10, 10)
    idle(qtbot, c3)
    assert (sidecar / "autosave").is_dir()  # a new store for the edits that follow
    widget3.autosave_buttons["Clear autosave"].click()
    assert not (sidecar / "autosave").exists()

    c3.add_click(3, 12, 12)  # File > Save Layers through this plugin's writer ends it too
    idle(qtbot, c3)
    assert (sidecar / "autosave").is_dir()
    from napari.plugins.io import save_layers

    save_layers(str(tmp_path / "saved.nii.gz"), [c3.labels], plugin="napari-adaptiveclick")
    assert (tmp_path / "saved.nii.gz").is_file() and not (sidecar / "autosave").exists()
    other_labels = third.add_labels(np.zeros_like(c3.labels.data))  # another layer: no effect
    c3.add_click(3, 14, 14)
    idle(qtbot, c3)
    save_layers(str(tmp_path / "other.nii.gz"), [other_labels], plugin="napari-adaptiveclick")
    assert (sidecar / "autosave").is_dir()


@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
def test_labels_of_four_slices_saved_as_tiff_read_back_as_slices(
    make_napari_viewer, qtbot, tmp_path, suffix
):
    # napari's own TIFF writer tags a (4, H, W) array as one RGB image; the command line then
    # read the saved labels as (H, W, 3). Save labels writes grey label slices instead.
    import tifffile

    image = tmp_path / "four.tif"
    tifffile.imwrite(
        image, disk_volume(4, 40).clip(0, 255).astype(np.uint8), photometric="minisblack"
    )
    widget, c = open_and_start(make_napari_viewer(), qtbot, image)
    c.add_click(2, 20, 20)
    idle(qtbot, c)
    assert (np.asarray(c.labels.data) > 0).sum() > 0
    path = tmp_path / f"labels{suffix}"
    c.recovery.save_labels(path)
    with tifffile.TiffFile(path) as tif:  # grey slices, as Fiji and other readers expect
        assert "S" not in tif.series[0].axes and tif.pages[0].photometric == 1  # MINISBLACK
    saved = read_image(path)
    assert saved.axes == "zyx" and saved.spatial_shape == (4, 40, 40)
    np.testing.assert_array_equal(saved.data, np.asarray(c.labels.data))


def test_save_and_load_clicks_errors_go_to_the_status_and_change_nothing(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    from napari_adaptiveclick._napari import widget as widget_module
    from napari_adaptiveclick.volume.clicks_file import write_click_records

    widget, c = open_and_start(make_napari_viewer(), qtbot, saved_image(tmp_path, "four.tif"))
    c.add_click(2, 20, 20)
    idle(qtbot, c)
    before = np.asarray(c.labels.data).copy()
    dialog = widget_module.QFileDialog
    missing = tmp_path / "no such folder"
    for button, name in (("Save clicks...", "clicks.csv"), ("Save labels...", "labels.tif")):
        monkeypatch.setattr(
            dialog, "getSaveFileName", lambda *a, n=name, **k: (str(missing / n), "")
        )
        buttons = widget.autosave_buttons if button == "Save labels..." else widget.buttons
        buttons[button].click()  # Save clicks raised FileNotFoundError out of the slot before
        assert "no such folder" in widget.status.text() and not missing.exists()
    good = c.annotator.records[0]
    bad = tmp_path / "bad.csv"  # a good click, then one on plane 9 of 5
    write_click_records(bad, [good, replace(good, order=1, plane=9)])
    monkeypatch.setattr(dialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    widget.buttons["Load clicks..."].click()
    idle(qtbot, c)
    assert "outside the volume" in widget.status.text()
    np.testing.assert_array_equal(np.asarray(c.labels.data), before)  # nothing replayed


@pytest.mark.parametrize("choice", ["new", "refine", None])
def test_load_clicks_asks_before_changing_objects_the_labels_have(
    make_napari_viewer, qtbot, tmp_path, monkeypatch, choice
):
    # new-user trial 3: a clicks file for object 1 silently took 8 % of the user's object 1
    from napari_adaptiveclick._napari import clicks_loading
    from napari_adaptiveclick.volume.clicks_file import write_click_records

    widget, c = open_and_start(make_napari_viewer(), qtbot, saved_image(tmp_path, "four.tif"))
    c.add_click(2, 20, 20)
    idle(qtbot, c)
    c.commit()
    idle(qtbot, c)
    mine = np.asarray(c.labels.data).copy()
    assert (mine == 1).any()
    path = tmp_path / "other.csv"  # another object 1, clicked elsewhere
    write_click_records(path, [replace(c.annotator.records[0], row=8.0, col=8.0, plane=1)])
    asked = []
    monkeypatch.setattr(clicks_loading, "ask", lambda parent, ids: asked.append(ids) or choice)
    monkeypatch.setattr(
        "napari_adaptiveclick._napari.widget.QFileDialog.getOpenFileName",
        lambda *a, **k: (str(path), ""),
    )
    widget.buttons["Load clicks..."].click()
    idle(qtbot, c)
    after = np.asarray(c.labels.data)
    assert asked == [[1]]
    if choice is None:
        np.testing.assert_array_equal(after, mine)
        assert "nothing was replayed" in widget.status.text()
    elif choice == "new":  # object 1 untouched, the file's object under a new id
        np.testing.assert_array_equal(after[mine == 1], 1)
        assert set(np.unique(after)) == {0, 1, 2} and c.annotator.records[-1].object_id == 2
    else:  # the file's clicks refine object 1: it now has pixels on plane 1 as well
        assert c.annotator.records[-1].object_id == 1 and (after[1] == 1).any()


def test_without_a_folder_beside_the_image_stores_go_to_the_cache(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    monkeypatch.setenv("ADAPTIVECLICK_AUTOSAVE_DIR", str(cache))
    path = saved_image(tmp_path)
    Path(f"{path}.adaptiveclick").write_text("in the way")  # no sidecar folder can be made
    viewer = make_napari_viewer()
    widget, c = open_and_start(viewer, qtbot, path)
    c.add_click(2, 20, 20)
    idle(qtbot, c)
    assert c.recovery.folder.parent == cache and c.recovery.folder.name.startswith("cells-")
    assert (c.recovery.folder / "manifest.json").is_file()

    viewer.add_image(disk_volume(3, 32, seed=5), name="in memory")  # no file at all
    widget.image_combo.setCurrentText("in memory")
    widget.labels_combo.setCurrentText("<new>")
    widget.start()
    idle(qtbot, c)
    c.add_click(1, 16, 16)
    idle(qtbot, c)
    assert c.recovery.folder.parent == cache and c.recovery.folder.name.startswith("image-")
    assert (c.recovery.folder / "manifest.json").is_file()
