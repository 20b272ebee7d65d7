"""Painting by hand on the labels of a multiscale OME-Zarr image: napari shows their full
resolution as an editable single-scale Labels layer over the labels pyramid, and every
write napari makes (brush, fill, eraser, polygon, ``data_setitem``, undo, redo) goes
through the pyramid, so each coarser level follows level 0 (nearest neighbour, as ome-zarr
writes labels) in the box written and nowhere else; clicks still write through, and the
store reopens with all its levels consistent."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")

from napari.layers import Image, Labels  # noqa: E402

from lazy_stores import start_on_disk, write_ome_zarr  # noqa: E402
from napari_adaptiveclick._napari.files import get_reader  # noqa: E402
from napari_adaptiveclick.io import stores  # noqa: E402
from napari_adaptiveclick.io.pyramid import LabelsPyramid  # noqa: E402
from synthetic import needs_display  # noqa: E402

SHAPE = (4, 64, 80)
SCALE = (4.0, 0.5, 0.5)
MARK = 99  # written into the coarser levels by hand: what an edit must not touch


def _volume() -> np.ndarray:
    pixels = np.random.default_rng(1).normal(90, 6, SHAPE)
    pixels[:, 20:44, 30:60] += 80  # a bright box through every plane
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _image(tmp_path):
    """A three-level OME-Zarr image (rows and columns halved, then quartered)."""
    return write_ome_zarr(tmp_path / "image.ome.zarr", _volume(), scale=SCALE, factors=(2, 4))


def _levels(pyramid: LabelsPyramid) -> list[np.ndarray]:
    return [np.asarray(level) for level in pyramid.levels]


def _downsampled(pyramid: LabelsPyramid, level0: np.ndarray, level: int) -> np.ndarray:
    """What ``level`` of the pyramid is, nearest-downsampled from ``level0``."""
    return level0[np.ix_(*pyramid.voxels[level])]


def _written(item, shape) -> np.ndarray:
    """The level-0 voxels a napari history item writes (done, undone or redone): the box of
    each masked atom (napari writes it whole), the points of each ``data_setitem`` atom."""
    mask = np.zeros(shape, bool)
    for atom in item:
        key = getattr(atom, "slice_key", None)
        mask[key if key is not None else tuple(atom[0])] = True
    return mask


def _check_edit(pyramid: LabelsPyramid, before: list[np.ndarray], item) -> None:
    """The edit ``item`` changed level 0 within what it wrote, and each coarser level
    follows level 0 at the voxels it samples there and is as ``before`` elsewhere."""
    now = _levels(pyramid)
    written = _written(item, now[0].shape)
    changed = now[0] != before[0]
    assert changed.any() and not changed[~written].any()
    for level in range(1, len(now)):
        inside = written[np.ix_(*pyramid.voxels[level])]
        expected = np.where(inside, _downsampled(pyramid, now[0], level), before[level])
        np.testing.assert_array_equal(now[level], expected, err_msg=f"level {level}")


def test_napari_edits_keep_each_coarser_level_in_step_in_their_box_only(tmp_path):
    image = _image(tmp_path)
    stores.create_labels_store(image / "labels" / "cells", SHAPE, np.uint32)
    group = zarr.open_group(str(image / "labels" / "cells"), mode="r+")
    for key in ("1", "2"):
        group[key][:] = MARK
    layers = [
        Labels(d, **k) if t == "labels" else Image(d, **k)
        for d, k, t in get_reader(str(image))(str(image))
    ]
    picture, layer = layers
    assert picture.multiscale and not layer.multiscale and layer.editable
    pyramid = layer.data
    assert isinstance(pyramid, LabelsPyramid) and len(pyramid.levels) == 3
    np.testing.assert_allclose(layer.scale, picture.scale)  # the image's level-0 geometry
    np.testing.assert_allclose(layer.data_to_world((2, 30, 44)), picture.data_to_world((2, 30, 44)))
    items = []
    layer.events.paint.connect(lambda event: items.append(event.value))

    def edit(action) -> None:
        before, count = _levels(pyramid), len(items)
        action()
        assert len(items) == count + 1  # one undoable edit
        _check_edit(pyramid, before, items[-1])

    layer.brush_size = 7
    edit(lambda: layer.paint((0, 20, 30), 5))  # the brush (plane 0: the layer's default)
    edit(lambda: layer.fill((0, 20, 30), 7))  # the painted blob becomes 7
    edit(lambda: layer.paint((0, 22, 32), 0))  # the eraser paints the background
    edit(lambda: layer.paint_polygon([(0, 40, 10), (0, 50, 10), (0, 45, 30)], 3))
    points = (np.array([0, 0, 0]), np.array([3, 1, 2]), np.array([63, 61, 62]))
    edit(lambda: layer.data_setitem(points, [8, 9, 4]))
    assert int(np.asarray(group["2"][0, 0, 15])) == 8  # voxel (0, 3, 63)
    undone = []
    for _ in range(2):  # undo the points, then the polygon: no paint event, the same boxes
        before, item = _levels(pyramid), items.pop()
        count = len(items)
        layer.undo()
        assert len(items) == count  # (napari tells of no undo)
        _check_edit(pyramid, before, item)
        undone.append(item)
    before = _levels(pyramid)
    layer.redo()  # the polygon again
    _check_edit(pyramid, before, undone[-1])
    level0 = np.asarray(group["0"][:])
    assert (level0 == 7).any() and (level0 == 3).any() and not (level0 == 8).any()
    assert (np.asarray(group["1"][1:]) == MARK).all()  # planes never edited: untouched


@needs_display
@pytest.mark.gui
def test_brush_fill_eraser_undo_and_clicks_on_a_multiscale_ome_zarr(
    make_napari_viewer, qtbot, tmp_path
):
    """The widget's new labels of a multiscale OME-Zarr image are on disk with its levels:
    the Labels layer takes napari's brush, fill and eraser (through its mouse bindings),
    undo and redo, and a click; after each, every coarser level is the nearest downsampling
    of level 0, also after closing the viewer and reopening the image."""
    from test_napari_prompts import drag

    image_path = _image(tmp_path)
    viewer = make_napari_viewer()
    image, widget = start_on_disk(viewer, qtbot, image_path)
    controller = widget.controller
    labels = controller.labels
    pyramid = labels.data
    assert labels.editable and not labels.multiscale and isinstance(pyramid, LabelsPyramid)
    assert [level.shape for level in pyramid.levels] == [SHAPE, (4, 32, 40), (4, 16, 20)]
    np.testing.assert_allclose(labels.scale, image.scale)
    np.testing.assert_allclose(labels.translate, image.translate)

    def consistent() -> np.ndarray:
        levels = _levels(pyramid)
        for level in range(1, len(levels)):
            np.testing.assert_array_equal(
                levels[level], _downsampled(pyramid, levels[0], level), err_msg=f"level {level}"
            )
        return levels[0]

    controller.go_to_plane(1)
    labels.brush_size = 5
    labels.selected_label = 5
    drag(viewer, labels, "paint", [(1, 10, 10), (1, 10, 30), (1, 24, 30)])  # a brush stroke
    stroke = consistent()[1] == 5
    assert stroke[10, 10:31].all() and stroke[10:25, 30].all()
    labels.selected_label = 7
    drag(viewer, labels, "fill", [(1, 10, 20)])  # the bucket: the stroke becomes 7
    np.testing.assert_array_equal(consistent()[1] == 7, stroke)
    drag(viewer, labels, "erase", [(1, 24, 24), (1, 24, 36)])  # the eraser, across its end
    erased = consistent()[1]
    assert not erased[24, 26:35].any() and (erased == 7).any()
    labels.undo()
    np.testing.assert_array_equal(consistent()[1] == 7, stroke)
    labels.redo()
    np.testing.assert_array_equal(consistent()[1], erased)
    controller.select_object(None)  # a new object (7 was selected on the Labels layer)
    qtbot.waitUntil(lambda: not controller.busy, timeout=60_000)
    object_id = controller.object_id
    assert object_id > 7
    controller.go_to_plane(2)
    controller.add_click(2, 32, 45)  # the annotator writes level 0 through the pyramid
    qtbot.waitUntil(
        lambda: controller.last_outcome is not None and not controller.busy, timeout=60_000
    )
    clicked = consistent()
    assert clicked[2, 32, 45] == object_id
    assert (np.asarray(pyramid.levels[1][2]) == object_id).any()  # the click's mask there
    store = labels.metadata["adaptiveclick_store"]
    controller.stop()
    viewer.layers.clear()
    reopened = stores.open_labels_store(store, SHAPE)
    assert isinstance(reopened.source, LabelsPyramid)
    pyramid = reopened.source
    np.testing.assert_array_equal(consistent(), clicked)
    layers = viewer.open(str(image_path), plugin="napari-adaptiveclick")
    again = layers[-1]
    assert again.editable and not again.multiscale and len(again.data.levels) == 3
    np.testing.assert_array_equal(np.asarray(again.data[1]), erased)
