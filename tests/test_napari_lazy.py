"""Big volumes in napari (issue #14): the reader's lazy and multiscale layers, Labels that
edit their zarr store, the writer's zarr / OME-Zarr stores, and (under xvfb) the widget on a
multiscale OME-Zarr image with labels on disk."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")

from napari.layers import Image, Labels  # noqa: E402

from lazy_stores import start_on_disk, write_ome_zarr  # noqa: E402
from napari_adaptiveclick._napari import lazy_layers  # noqa: E402
from napari_adaptiveclick._napari.files import get_reader, write_labels_layer  # noqa: E402
from napari_adaptiveclick.io import stores  # noqa: E402
from napari_adaptiveclick.io.images import read_image  # noqa: E402
from napari_adaptiveclick.io.lazy import LazyArray  # noqa: E402
from synthetic import needs_display  # noqa: E402

SHAPE = (4, 64, 80)


def _volume() -> np.ndarray:
    pixels = np.random.default_rng(1).normal(90, 6, SHAPE)
    pixels[:, 20:44, 30:60] += 80  # a bright box through every plane
    return np.clip(pixels, 0, 255).astype(np.uint8)


@pytest.fixture
def ome(tmp_path):
    return write_ome_zarr(tmp_path / "image.ome.zarr", _volume(), scale=(4.0, 0.5, 0.5))


def _layers(path):
    reader = get_reader(str(path))
    assert reader is not None
    return [Image(d, **k) if t == "image" else Labels(d, **k) for d, k, t in reader(str(path))]


def test_manifest_reads_stores_and_writes_zarr():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-adaptiveclick")
    reader = manifest.contributions.readers[0]
    assert {"*.zarr", "*.n5", "*.h5"} <= set(reader.filename_patterns)
    assert reader.accepts_directories
    assert ".ome.zarr" in manifest.contributions.writers[0].filename_extensions


def test_ome_zarr_opens_as_a_lazy_multiscale_layer_with_its_labels(ome, tmp_path):
    labels = stores.create_labels_store(ome / "labels" / "cells", SHAPE, np.uint16)
    labels[2, 25:30, 35:40] = 6
    image_layer, labels_layer = _layers(ome)
    assert image_layer.multiscale and len(image_layer.data) == 2
    assert all(isinstance(level, LazyArray) for level in image_layer.data)
    assert tuple(image_layer.scale) == (4.0, 0.5, 0.5)
    assert image_layer.contrast_limits[0] < 100 < image_layer.contrast_limits[1]
    assert labels_layer.name == "cells" and labels_layer.data.shape == SHAPE
    assert tuple(labels_layer.scale) == (4.0, 0.5, 0.5)
    # the image's levels on disk, shown at full resolution: a Labels layer napari paints on
    assert not labels_layer.multiscale and labels_layer.editable
    levels = labels_layer.data.levels  # the pyramid, which keeps its coarser levels in step
    assert [level.shape for level in levels] == [SHAPE, (4, 32, 40)]
    assert int(np.asarray(levels[1][2, 13, 18])) == 6  # voxel (2, 27, 37)
    plain = stores.create_labels_store(tmp_path / "cells_labels.zarr", SHAPE, np.uint16)
    plain[2, 25:30, 35:40] = 6
    (painted,) = _layers(tmp_path / "cells_labels.zarr")
    assert not painted.multiscale and painted.editable
    point = (np.array([2]), np.array([10]), np.array([11]))
    painted.data_setitem(point, 9)  # napari paints into the store
    again = stores.open_labels_store(tmp_path / "cells_labels.zarr", SHAPE)
    assert int(np.asarray(again[2, 10, 11])) == 9 and int(np.asarray(again[2, 27, 37])) == 6


def test_display_levels_and_full_resolution_coordinates_agree(ome):
    (image_layer,) = _layers(ome)[:1]
    full, coarse = image_layer.data
    assert coarse.shape == (4, 32, 40)
    # A full-resolution data point maps to one world point, whatever level napari shows:
    world = image_layer.data_to_world((2, 30, 44))
    np.testing.assert_allclose(world, (8.0, 15.0, 22.0))
    np.testing.assert_allclose(image_layer.world_to_data(world), (2, 30, 44))
    # ... and the coarse level holds that voxel's neighbourhood at half the index.
    assert (
        abs(int(np.asarray(coarse[2, 15, 22])) - int(np.asarray(full[2, 30:32, 44:46]).mean())) < 40
    )
    from napari_adaptiveclick._napari.layers import VolumeSelection

    annotated = VolumeSelection.of(image_layer, None).volume(image_layer.data)
    assert isinstance(annotated, LazyArray) and annotated.shape == SHAPE  # level 0, direct
    np.testing.assert_array_equal(np.asarray(annotated[2]), _volume()[2])


def test_writer_writes_zarr_and_ome_zarr_stores(tmp_path, ome):
    labels = np.zeros(SHAPE, np.uint32)
    labels[1, 5:9, 5:9] = 4
    like = read_image(ome)
    attributes = {"metadata": {"adaptiveclick_source": like}, "scale": (4.0, 0.5, 0.5)}
    (written,) = write_labels_layer(str(tmp_path / "out.zarr"), labels, attributes)
    back = read_image(written)
    assert back.spacing == (4.0, 0.5, 0.5)
    np.testing.assert_array_equal(np.asarray(back.data), labels)
    (inside,) = write_labels_layer(str(ome / "labels" / "saved"), labels, attributes)
    assert stores.ome_metadata(zarr.open_group(str(ome / "labels")))["labels"] == ["saved"]
    store = stores.open_labels_store(inside, SHAPE)
    assert write_labels_layer(inside, store.source, attributes) == [inside]  # in place already


def test_labels_above_the_limit_go_to_disk(ome, tmp_path):
    (image_layer,) = _layers(ome)[:1]
    small = lazy_layers.new_labels_layer(image_layer)
    assert isinstance(small.data, np.ndarray)
    big = lazy_layers.new_labels_layer(image_layer, limit=1000)
    path = big.metadata["adaptiveclick_store"]
    assert path == str(ome / "labels" / "adaptiveclick") and big.data.shape == SHAPE
    assert tuple(big.scale) == (4.0, 0.5, 0.5)
    second = lazy_layers.new_labels_layer(image_layer, limit=1000)
    assert second.metadata["adaptiveclick_store"].endswith("adaptiveclick-2")  # never replaced
    flat = Image(np.zeros((8, 8), np.uint8), name="flat")
    assert isinstance(lazy_layers.new_labels_layer(flat, limit=1).data, np.ndarray)  # 2D
    plain = Image(np.zeros((2, 8, 8), np.uint8), name="memory")
    elsewhere = lazy_layers.new_labels_layer(plain, limit=10)
    assert "memory_labels" in elsewhere.metadata["adaptiveclick_store"]


@needs_display
@pytest.mark.gui
def test_widget_on_a_multiscale_ome_zarr_with_labels_on_disk(make_napari_viewer, qtbot, ome):
    """The widget annotates the full resolution of a multiscale image: a click at a
    full-resolution data point labels that voxel in a store in the image's labels group,
    which survives closing the viewer and reopening the image."""
    viewer = make_napari_viewer()
    image, widget = start_on_disk(viewer, qtbot, ome)
    assert image.multiscale
    controller = widget.controller
    labels = controller.labels
    store = labels.metadata["adaptiveclick_store"]
    assert store == str(ome / "labels" / "adaptiveclick") and labels.data.shape == SHAPE
    controller.go_to_plane(2)
    controller.add_click(2, 32, 45)
    qtbot.waitUntil(
        lambda: controller.last_outcome is not None and not controller.busy, timeout=60_000
    )
    object_id = controller.object_id
    # the click's world position is the image's world position of that full-resolution voxel
    np.testing.assert_allclose(
        controller.points.data_to_world(controller.points.data[0]), image.data_to_world((2, 32, 45))
    )
    reopened = stores.open_labels_store(store, SHAPE)
    assert int(np.asarray(reopened[2, 32, 45])) == object_id  # written through to the store
    assert not np.asarray(reopened[0]).any() and not np.asarray(reopened[3]).any()
    # the labels have the image's levels: the click wrote level 0, and level 1 followed;
    # napari shows (and paints) the full resolution
    assert not labels.multiscale and labels.editable
    full = np.asarray(reopened[2])
    assert (full == object_id).any()
    np.testing.assert_array_equal(np.asarray(labels.data.levels[1][2]), full[1::2, 1::2])
    controller.stop()
    viewer.layers.clear()
    layers = viewer.open(str(ome), plugin="napari-adaptiveclick")
    assert [layer.name for layer in layers][-1] == "adaptiveclick"
    assert len(layers[-1].data.levels) == 2 and layers[-1].editable  # the image's pyramid
    assert int(np.asarray(layers[-1].data[2, 32, 45])) == object_id


@needs_display
@pytest.mark.gui
def test_saving_labels_never_replaces_the_open_image(make_napari_viewer, qtbot, ome):
    """A store is a folder, so a save dialog may not ask before replacing one (new-user trial
    2): saving the labels onto the open image, or into one of its arrays, is refused by
    *Save labels...* and by *File > Save Layers* alike, and the image stays as it was; its
    OME-Zarr labels group takes them."""
    from napari.plugins.io import save_layers

    before = np.asarray(read_image(ome).data).copy()
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(ome), plugin="napari-adaptiveclick")
    _, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
    widget.device_combo.setCurrentText("cpu")
    widget.image_combo.setCurrentText(image.name)
    widget.start()
    controller = widget.controller
    qtbot.waitUntil(lambda: controller.ready and not controller.busy, timeout=60_000)
    controller.add_click(2, 32, 45)
    qtbot.waitUntil(lambda: not controller.busy, timeout=60_000)
    assert np.asarray(controller.labels.data).any()
    assert (ome / "s0").is_dir()  # the full resolution
    for target in (ome, ome / "s0", ome / "labels"):
        with pytest.raises(FileExistsError, match="would replace the image"):
            controller.recovery.save_labels(target)
        with pytest.raises(FileExistsError, match="would replace the image"):
            save_layers(str(target), [controller.labels], plugin="napari-adaptiveclick")
    np.testing.assert_array_equal(np.asarray(read_image(ome).data), before)
    plain = ome.parent / "plain.zarr"  # a folder that is no store is never replaced
    (plain / "keep.txt").parent.mkdir()
    (plain / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="is a folder, not a labels file or zarr store"):
        controller.recovery.save_labels(plain)
    with pytest.raises(ValueError, match="ends with '/'"):  # napari saved a hidden .tif.tif
        controller.recovery.save_labels(f"{ome.parent / 'sub'}/")
    assert (plain / "keep.txt").read_text() == "mine" and not (ome.parent / "sub").exists()
    h5 = ome.parent / "other.h5"  # no writer for HDF5: refused, never a zarr folder by that name
    h5.write_bytes(b"someone's HDF5 file")
    with pytest.raises(ValueError, match="No writer could save labels"):
        controller.recovery.save_labels(h5)
    assert h5.read_bytes() == b"someone's HDF5 file"
    assert controller.recovery.save_labels(ome / "labels" / "saved") == [
        str(ome / "labels" / "saved")
    ]
    saved = np.asarray(read_image(ome / "labels" / "saved").data)
    np.testing.assert_array_equal(saved, np.asarray(controller.labels.data))
    np.testing.assert_array_equal(np.asarray(read_image(ome).data), before)
