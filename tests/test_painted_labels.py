"""Objects painted by hand on labels that live on disk (issue #14): the annotator learns of
each paint from napari's paint events (``_napari/painting.py`` -> ``VolumeAnnotator.painted``),
so a painted id is never handed out as a new one, its painted planes are read (a prior, a
commit) although the annotator skips unread planes of new ids on disk, and the painted
pixels survive clicks (overwrite protection) and closing and reopening the store."""

from __future__ import annotations

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from napari_adaptiveclick.interactive.transforms import Box  # noqa: E402
from napari_adaptiveclick.io import stores  # noqa: E402
from napari_adaptiveclick.volume import VolumeAnnotator  # noqa: E402
from synthetic import needs_display  # noqa: E402

SHAPE = (4, 64, 80)


def _volume() -> np.ndarray:
    pixels = np.random.default_rng(3).normal(90, 6, SHAPE)
    pixels[:, 20:44, 30:60] += 80  # a bright box through every plane
    return np.clip(pixels, 0, 255).astype(np.uint8)


def test_painted_ids_are_known_to_an_annotator_on_disk(tmp_path):
    labels = stores.create_labels_store(tmp_path / "labels.zarr", SHAPE, np.uint32)
    annotator = VolumeAnnotator(_volume(), labels, None)
    assert annotator.object_id == 1
    labels[1, 4:8, 4:8] = 1  # painted with the current (new) id: not told yet
    assert annotator.start_mask(2) is None  # unseen: a new id on disk, no run there
    assert not annotator.has_pixels(1)
    annotator.painted.note(1, {1: Box(4, 4, 8, 8)})  # what the paint event tells
    painted = np.asarray(labels[1]) == 1
    np.testing.assert_array_equal(annotator.start_mask(2), painted)  # the neighbour's prior
    np.testing.assert_array_equal(annotator.start_mask(1), painted)  # its own mask
    assert annotator.has_pixels(1) and annotator.commit() == 2  # committed, a new id
    labels[3, 30:32, 30:32] = 7
    annotator.painted.note(7, {3: Box(30, 30, 32, 32)})
    annotator.painted.note(0, {2: Box(0, 0, 5, 5)})  # erasing paints no object
    assert annotator.painted.max_id == 7
    assert annotator.select_object(None) == 8  # 2 had no pixels; 7 is taken
    reopened = VolumeAnnotator(_volume(), stores.open_labels_store(tmp_path / "labels.zarr"), None)
    assert reopened.object_id == 8  # the store's own ids, read at the start


def test_a_painted_object_is_clicked_and_propagated_on_disk_as_in_memory(tmp_path):
    """The same paint, click and propagation on labels in memory and on disk give the same
    labels: the painted pixels are the object's own on their planes (the run's prior and
    box), so a click replaces them as it does in memory."""
    from napari_adaptiveclick.volume import PropagationSettings
    from synthetic import disk_volume
    from test_scaling import STATS, _brightness_session

    image = disk_volume(4, 384)  # a disk of radius 96 around (192, 192) in every plane
    settings = PropagationSettings(0.0, np.inf, 0.0, max_slices=1, stop_rule=None)
    results = []
    for on_disk in (False, True):
        if on_disk:
            labels = stores.create_labels_store(tmp_path / "labels.zarr", image.shape, np.uint32)
        else:
            labels = np.zeros(image.shape, np.uint32)
        annotator = VolumeAnnotator(image, labels, _brightness_session(), stats=STATS)
        object_id = annotator.object_id
        for plane in (1, 2):  # painted by hand far from the disk, then told
            labels[plane, 10:20, 10:30] = object_id
            annotator.painted.note(object_id, {plane: Box(10, 10, 20, 30)})
        annotator.add_click(2, 192, 192)
        annotator.propagate(2, settings)  # to planes 1 and 3
        results.append((np.asarray(labels[:]), annotator.commit()))
    (in_memory, next_memory), (on_disk, next_disk) = results
    assert not in_memory[1:3, 10:20, 10:30].any()  # the object's pixels replaced by its masks
    assert in_memory[1:4, 192, 192].tolist() == [1, 1, 1]
    np.testing.assert_array_equal(on_disk, in_memory)
    assert next_disk == next_memory == 2


def test_paint_events_give_the_painted_ids_and_boxes():
    pytest.importorskip("napari")
    from napari.layers import Image, Labels

    from napari_adaptiveclick._napari.layers import VolumeSelection
    from napari_adaptiveclick._napari.painting import changed_boxes, painted_objects
    from napari_adaptiveclick.volume.slicing import SliceGeometry

    layer = Labels(np.zeros(SHAPE, np.uint32))
    events = []
    layer.events.paint.connect(lambda event: events.append(event.value))
    layer.brush_size = 3
    layer.paint((2, 10, 12), 5)  # a masked atom
    indices = (np.array([1, 1, 3]), np.array([40, 41, 50]), np.array([7, 8, 60]))
    layer.data_setitem(indices, [6, 6, 9])  # a fancy-index atom with several values
    selection = VolumeSelection.of(Image(np.zeros(SHAPE, np.uint8)), None)
    geometry = SliceGeometry(SHAPE, 0)
    brush = painted_objects(events[0], selection, geometry)
    assert list(brush) == [5] and list(brush[5]) == [2]
    box = brush[5][2]
    assert box.top <= 10 < box.bottom and box.left <= 12 < box.right and box.height <= 4
    assert (np.asarray(layer.data[2]) == 5).sum() > 0
    setitem = painted_objects(events[1], selection, geometry)
    assert setitem == {6: {1: Box(40, 7, 42, 9)}, 9: {3: Box(50, 60, 51, 61)}}
    assert changed_boxes(setitem) == {1: Box(40, 7, 42, 9), 3: Box(50, 60, 51, 61)}
    across = painted_objects(events[1], selection, SliceGeometry(SHAPE, 2))  # cut along x
    assert set(across[6]) == {7, 8} and across[6][7] == Box(1, 40, 2, 42)
    assert painted_objects([object()], selection, geometry) is None  # unreadable: all planes


@needs_display
@pytest.mark.gui
def test_painting_a_fresh_id_on_labels_on_disk_in_napari(make_napari_viewer, qtbot, tmp_path):
    """napari's brush on a Labels layer over a zarr store: the painted ids are not handed
    out again, a click does not overwrite them, the painted object's planes are read, and
    the paint is in the store after closing and reopening it."""
    pytest.importorskip("napari")
    path = tmp_path / "volume.zarr"
    zarr.create_array(str(path), shape=SHAPE, chunks=(1, 32, 32), dtype=np.uint8)[:] = _volume()
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(path), plugin="napari-adaptiveclick")
    _, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
    widget.model_combo.setCurrentText("tiny")
    widget.device_combo.setCurrentText("cpu")
    widget.image_combo.setCurrentText(image.name)
    widget.disk_spin.setValue(0.0)  # every new Labels layer on disk
    widget.start()
    controller = widget.controller

    def idle():
        qtbot.waitUntil(lambda: not controller.busy, timeout=60_000)

    idle()
    assert controller.ready, viewer.status
    labels, annotator = controller.labels, controller.annotator
    store = labels.metadata["adaptiveclick_store"]
    assert store == str(tmp_path / "volume_labels.zarr")
    assert not isinstance(labels.data, np.ndarray) and not labels.multiscale
    first = controller.object_id
    labels.brush_size = 5
    labels.paint((2, 30, 40), first)  # the current, fresh id, by hand before any click
    labels.paint((3, 30, 40), first)
    labels.paint((1, 5, 70), 7)  # an id far ahead
    painted = np.asarray(labels.data[2]) == first
    assert painted.any()
    controller.commit()
    idle()
    assert controller.object_id not in (first, 7)  # the painted object is kept
    controller.select_object(None)
    idle()
    new = controller.object_id
    assert new == 8  # above every painted id
    controller.go_to_plane(2)
    controller.add_click(2, 32, 45)  # on the painted object, overwrite protection on
    qtbot.waitUntil(
        lambda: controller.last_outcome is not None and not controller.busy, timeout=60_000
    )
    plane = np.asarray(zarr.open_array(store, mode="r")[2])
    assert (plane[painted] == first).all()  # not overwritten
    assert not (plane == new)[painted].any()
    controller.select_object(first)
    idle()
    # the painted object's own mask is the start of a run on its plane, and its painted
    # neighbour that of a run on plane 1 (new ids on disk are not read on planes they
    # were never painted or clicked on)
    np.testing.assert_array_equal(annotator.start_mask(2), painted)
    np.testing.assert_array_equal(annotator.start_mask(1), np.asarray(labels.data[2]) == first)
    controller.stop()
    viewer.layers.clear()
    reopened = stores.open_labels_store(store, SHAPE)
    assert (np.asarray(reopened[2])[painted] == first).all()
    assert int(np.asarray(reopened[1, 5, 70])) == 7
    again = VolumeAnnotator(_volume(), reopened, None)
    assert again.object_id > max(7, new if (plane == new).any() else 0)
