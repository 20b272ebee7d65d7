"""Big volumes (issue #14) on small generated stores: zarr, OME-Zarr (multiscale), N5 and HDF5
open lazily, a read touches only the chunks it needs, labels stores survive closing and
reopening, and broken or wrongly shaped stores give clear errors."""

from __future__ import annotations

import gc

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")
h5py = pytest.importorskip("h5py")

from zarr.storage import LocalStore  # noqa: E402

from lazy_stores import CountingStore, write_n5, write_ome_zarr  # noqa: E402
from napari_adaptiveclick.io import stores  # noqa: E402
from napari_adaptiveclick.io.chunked import read_chunked, split_store_path  # noqa: E402
from napari_adaptiveclick.io.images import ImageIOError, read_image  # noqa: E402
from napari_adaptiveclick.io.lazy import LazyArray, sample_values  # noqa: E402

SHAPE = (6, 40, 48)
CHUNKS = (1, 16, 16)


def _volume() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 250, SHAPE, dtype=np.uint8)


@pytest.fixture
def zarr_path(tmp_path):
    path = tmp_path / "volume.zarr"
    z = zarr.create_array(str(path), shape=SHAPE, chunks=CHUNKS, dtype=np.uint8)
    z[:] = _volume()
    z.attrs["element_size_um"] = [2.0, 0.5, 0.25]
    return path


# ---------------------------------------------------------------------- lazy views
def test_lazy_views_compose_and_read_only_touched_chunks(zarr_path):
    store = CountingStore(LocalStore(str(zarr_path), read_only=True))
    array = zarr.open_array(store=store, mode="r")
    store.read.clear()  # the metadata read on opening
    view = LazyArray(array)
    plane = view[3]
    crop = plane[20:30, 10:30]
    assert store.read == [] and crop.shape == (10, 20) and plane.ndim == 2
    np.testing.assert_array_equal(np.asarray(crop), _volume()[3, 20:30, 10:30])
    assert sorted(store.read) == ["c/3/1/0", "c/3/1/1"]  # two chunks, nothing else
    assert view[..., 5].shape == SHAPE[:2]
    assert view[-1, -1, -1] == _volume()[-1, -1, -1]
    np.testing.assert_array_equal(view[2, ::2, 0], _volume()[2, ::2, 0])  # steps read
    with pytest.raises(IndexError):
        view[6]
    with pytest.raises(TypeError, match="read-only"):
        plane[0, 0] = 1


def test_sample_values_is_bounded_and_deterministic(zarr_path):
    array = zarr.open_array(str(zarr_path), mode="r")
    small = sample_values(array, max_values=10**6)
    assert small.size == np.prod(SHAPE)  # small arrays are read whole
    store = CountingStore(LocalStore(str(zarr_path), read_only=True))
    sample = sample_values(zarr.open_array(store=store, mode="r"), max_values=2000, max_blocks=5)
    chunks = [k for k in store.read if k.startswith("c/")]
    assert len(chunks) == 5 and sample.size <= 2000
    np.testing.assert_array_equal(sample, sample_values(array, max_values=2000, max_blocks=5))


# ---------------------------------------------------------------------- readers
def test_zarr_array_reads_lazily_with_spacing(zarr_path):
    volume = read_image(zarr_path)
    assert isinstance(volume.data, LazyArray) and volume.format == "zarr"
    assert volume.spatial_shape == SHAPE and volume.axes == "zyx"
    assert volume.spacing == (2.0, 0.5, 0.25) and volume.unit == "micron"
    np.testing.assert_array_equal(np.asarray(volume.data), _volume())


def test_ome_zarr_multiscale_levels_and_geometry(tmp_path):
    data = _volume()
    path = write_ome_zarr(tmp_path / "image.ome.zarr", data, scale=(2.0, 0.5, 0.5))
    volume = read_image(path)
    assert volume.format == "ome-zarr" and volume.axes == "zyx"
    assert [lv.shape for lv in volume.levels] == [SHAPE, (6, 20, 24)]
    assert volume.data is volume.levels[0]
    assert volume.spacing == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(np.asarray(volume.data), data)  # full resolution as stored


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_drops_singleton_time_and_channel_axes(tmp_path, zarr_format):
    data = _volume()
    path = tmp_path / "export.ome.zarr"
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image

    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    write_image(
        data[None, None],
        group,
        axes="tczyx",
        fmt=FormatV05() if zarr_format == 3 else FormatV04(),
        scale_factors=[2],
    )
    volume = read_image(path)
    assert volume.axes == "zyx" and volume.data.shape == SHAPE
    np.testing.assert_array_equal(np.asarray(volume.data[4]), data[4])


def test_n5_axes_are_reversed_to_napari_order(tmp_path):
    data = _volume()
    volume = read_image(write_n5(tmp_path / "stack.n5", data) / "raw")
    assert volume.format == "n5" and volume.data.shape == SHAPE
    assert volume.spacing == (2.0, 0.5, 0.25)
    np.testing.assert_array_equal(np.asarray(volume.data[3, 5:30, 7:40]), data[3, 5:30, 7:40])
    np.testing.assert_array_equal(np.asarray(volume.data), data)


def test_hdf5_dataset_by_key_or_alone(tmp_path):
    data = _volume()
    path = tmp_path / "cells.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("volumes/raw", data=data, chunks=(1, 16, 16))
        f["volumes/raw"].attrs["element_size_um"] = [3.0, 1.0, 1.0]
    for target in (path, path / "volumes" / "raw"):
        volume = read_image(target)
        assert volume.format == "hdf5" and volume.spacing == (3.0, 1.0, 1.0)
        np.testing.assert_array_equal(np.asarray(volume.data[2, 10:20]), data[2, 10:20])
    del volume  # closes the file (h5py keeps one reader open per volume)
    gc.collect()
    with h5py.File(path, "a") as f:
        f.create_dataset("other", data=data[:1])
    with pytest.raises(ImageIOError, match="2 datasets"):
        read_image(path)
    with pytest.raises(ImageIOError, match="no dataset 'missing'"):
        read_image(path / "missing")


def test_store_paths_split_at_the_store():
    assert split_store_path("/d/a.ome.zarr/labels/x") == (
        __import__("pathlib").Path("/d/a.ome.zarr"),
        "labels/x",
        "zarr",
    )
    assert split_store_path("/d/f.h5/g/ds")[1:] == ("g/ds", "hdf5")
    assert split_store_path("/d/f.tif") is None


def test_unreadable_stores_give_clear_errors(tmp_path):
    broken = tmp_path / "broken.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{not json")
    with pytest.raises(ImageIOError, match=r"Cannot read .*broken.zarr"):
        read_image(broken)
    with pytest.raises(FileNotFoundError, match="No such store"):
        read_image(tmp_path / "missing.zarr")
    group = zarr.open_group(str(tmp_path / "two.zarr"), mode="w")
    group.create_array("a", shape=(4, 4), dtype=np.uint8)
    group.create_array("b", shape=(4, 4), dtype=np.uint8)
    with pytest.raises(ImageIOError, match=r"several arrays \(a, b\)"):
        read_image(tmp_path / "two.zarr")
    zarr.create_array(str(tmp_path / "line.zarr"), shape=(10,), dtype=np.uint8)
    with pytest.raises(ImageIOError, match="3D volume"):
        read_image(tmp_path / "line.zarr")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(ImageIOError, match="bad.h5"):
        read_image(tmp_path / "bad.h5")


# ---------------------------------------------------------------------- labels stores
def test_labels_store_survives_closing_and_reopening(zarr_path, tmp_path):
    image = read_image(zarr_path)
    path = stores.default_labels_path(image.path)
    assert path == tmp_path / "volume_labels.zarr"
    labels = stores.create_labels_store(path, SHAPE, np.uint32, like=image)
    labels[2][10:20, 30:40] = 7  # a view writes through
    del labels
    again = stores.open_labels_store(path, SHAPE)
    assert np.asarray(again[2, 10:20, 30:40]).min() == 7 and int(np.asarray(again).sum()) == 700
    assert read_image(path).spacing == image.spacing
    written = sorted(str(p.relative_to(path)) for p in (path / "c").rglob("*") if p.is_file())
    assert written == ["c/2/0/0"]  # only the touched chunk exists on disk
    with pytest.raises(FileExistsError):
        stores.create_labels_store(path, SHAPE, np.uint32)


def test_ome_zarr_labels_group_listed_and_reopened(tmp_path):
    image_path = write_ome_zarr(tmp_path / "image.ome.zarr", _volume())
    image = read_image(image_path)
    path = stores.default_labels_path(image_path, "cells")
    assert path == image_path / "labels" / "cells"
    labels = stores.create_labels_store(path, SHAPE, np.uint16, like=image)
    labels[1, 5:9, 5:9] = 3
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    names = [node.metadata.get("name") for node in Reader(parse_url(str(image_path)))()]
    assert "cells" in names  # what OME-Zarr viewers list
    reopened = read_image(path)
    assert reopened.format == "ome-zarr" and reopened.spacing == image.spacing
    assert int(np.asarray(reopened.data).sum()) == 3 * 16
    stores.write_labels_store(image_path / "labels" / "copy", reopened.data, like=image)
    group = zarr.open_group(str(image_path / "labels"), mode="r")
    assert stores.ome_metadata(group)["labels"] == ["cells", "copy"]


def test_wrongly_shaped_or_float_labels_store_is_refused(zarr_path, tmp_path):
    stores.create_labels_store(tmp_path / "small.zarr", (6, 40, 40), np.uint8)
    with pytest.raises(ImageIOError, match=r"shape \(6, 40, 40\), but the image needs"):
        stores.open_labels_store(tmp_path / "small.zarr", SHAPE)
    zarr.create_array(str(tmp_path / "float.zarr"), shape=SHAPE, dtype=np.float32)
    with pytest.raises(ImageIOError, match="not integer ids"):
        stores.open_labels_store(tmp_path / "float.zarr", SHAPE)
    with pytest.raises(ImageIOError, match="integer dtype"):
        stores.create_labels_store(tmp_path / "f.zarr", SHAPE, np.float32)


def test_write_labels_store_is_atomic_and_slab_by_slab(tmp_path):
    labels = np.zeros(SHAPE, np.uint32)
    labels[3, 4:8, 4:8] = 5
    out = stores.write_labels_store(tmp_path / "out.zarr", labels)
    np.testing.assert_array_equal(np.asarray(read_chunked(out).data), labels)
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]  # no temporary left
    with pytest.raises(FileExistsError):
        stores.write_labels_store(out, labels)
    ome = stores.write_labels_store(tmp_path / "out.ome.zarr", LazyArray(labels))
    assert read_image(ome).format == "ome-zarr"


def test_on_disk_threshold():
    assert not stores.on_disk((1000, 1000), np.uint32)
    assert stores.on_disk((1000, 4096, 4096), np.uint32)
    assert stores.on_disk((100, 100, 100), np.uint8, limit=10**5)
    assert stores.labels_chunks((1000, 4096, 4096)) == (1, 512, 512)


def test_largest_id_and_search_read_slab_by_slab(tmp_path):
    from napari_adaptiveclick.io.lazy import as_array, contains, max_value

    labels = stores.create_labels_store(tmp_path / "l.zarr", SHAPE, np.uint32)
    assert max_value(labels) == 0 and not contains(labels, 3)  # no chunk stored: no read
    labels[4, 1, 2] = 3
    assert max_value(labels) == 3 and contains(labels, 3) and not contains(labels, 4)
    assert max_value(np.arange(5)) == 4
    assert isinstance(as_array(labels.source, writable=True), LazyArray)
    assert isinstance(as_array([[1, 2]]), np.ndarray)
