"""Multiscale labels on disk (issue #14): the labels group of a multiscale OME-Zarr image has
the image's levels (shapes and scale transforms), its coarser levels are nearest-downsampled
as ome-zarr's own labels writer does, an edit updates them in its box only, they read back
after reopening, ome-zarr's reader accepts them, and napari shows their full resolution as
a Labels layer that it paints on (the pyramid keeps the coarser levels in step:
test_painting_pyramid.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")

from ome_zarr.format import FormatV04, FormatV05  # noqa: E402
from ome_zarr.writer import write_image, write_labels  # noqa: E402

from napari_adaptiveclick.io import stores  # noqa: E402
from napari_adaptiveclick.io.pyramid import LabelsPyramid, level_voxels  # noqa: E402

SCALE = {"z": 3.0, "y": 0.5, "x": 0.5}


def _image(path, shape, zarr_format=3):
    """An OME-Zarr image of three levels (rows and columns halved twice), as ome-zarr writes."""
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    pixels = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    fmt = FormatV05() if zarr_format == 3 else FormatV04()
    write_image(pixels, group, axes="zyx", fmt=fmt, scale_factors=[2, 4], scale=SCALE)
    return path


def _ome(group) -> dict:
    return stores.ome_metadata(group)


def _ome_zarr_pyramid(tmp_path, level0: np.ndarray) -> list[np.ndarray]:
    """The levels ome-zarr's own labels writer makes of ``level0`` (nearest)."""
    group = zarr.open_group(str(tmp_path / "reference.ome.zarr"), mode="w", zarr_format=3)
    write_image(np.zeros(level0.shape, np.uint8), group, axes="zyx", scale_factors=[2, 4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        write_labels(level0, group, name="x", axes="zyx", scale_factors=[2, 4], scaler=None)
    labels = group["labels/x"]
    paths = [d["path"] for d in _ome(labels)["multiscales"][0]["datasets"]]
    return [np.asarray(labels[p][:]) for p in paths]


@pytest.mark.parametrize(("shape", "zarr_format"), [((3, 64, 80), 3), ((3, 65, 81), 2)])
def test_labels_of_a_multiscale_image_get_its_levels(tmp_path, shape, zarr_format):
    image = _image(tmp_path / "image.ome.zarr", shape, zarr_format)
    labels = stores.create_labels_store(image / "labels" / "cells", shape, np.uint32)
    assert isinstance(labels.source, LabelsPyramid) and labels.shape == shape
    image_meta = _ome(zarr.open_group(str(image), mode="r"))["multiscales"][0]
    group = zarr.open_group(str(image / "labels" / "cells"), mode="r")
    assert group.metadata.zarr_format == zarr_format
    meta = _ome(group)
    multiscale = meta["multiscales"][0]
    assert len(multiscale["datasets"]) == 3 == len(image_meta["datasets"])
    for ours, theirs in zip(multiscale["datasets"], image_meta["datasets"], strict=True):
        assert ours["coordinateTransformations"] == theirs["coordinateTransformations"]
        image_level = zarr.open_array(str(image / theirs["path"]), mode="r")
        assert group[ours["path"]].shape == image_level.shape
    assert [a["name"] for a in multiscale["axes"]] == ["z", "y", "x"]
    assert meta["image-label"]["source"] == {"image": "../../"}
    assert _ome(zarr.open_group(str(image / "labels"), mode="r"))["labels"] == ["cells"]
    assert all(group[d["path"]].nchunks_initialized == 0 for d in multiscale["datasets"])


@pytest.mark.parametrize("shape", [(3, 64, 80), (3, 65, 81)])
def test_coarse_levels_follow_level_0_as_ome_zarr_downsamples(tmp_path, shape):
    image = _image(tmp_path / "image.ome.zarr", shape)
    labels = stores.create_labels_store(image / "labels" / "cells", shape, np.uint16)
    rng = np.random.default_rng(4)
    for _ in range(12):  # boxes of all sizes and offsets, some one voxel wide
        z = int(rng.integers(0, shape[0]))
        top, left = int(rng.integers(0, shape[1])), int(rng.integers(0, shape[2]))
        bottom, right = top + int(rng.integers(1, 20)), left + int(rng.integers(1, 20))
        labels[z, top:bottom, left:right] = rng.integers(0, 50, (1, 1)) + rng.integers(
            0, 2, (min(bottom, shape[1]) - top, min(right, shape[2]) - left)
        )
    labels[1][3, 7] = 77  # integer indices, through a view
    levels = labels.source.levels
    level0 = np.asarray(levels[0])
    assert level0[1, 3, 7] == 77
    for ours, theirs in zip(levels, _ome_zarr_pyramid(tmp_path, level0), strict=True):
        np.testing.assert_array_equal(np.asarray(ours), theirs)


def test_an_edit_updates_the_coarser_levels_in_its_box_only(tmp_path):
    shape = (3, 64, 80)
    image = _image(tmp_path / "image.ome.zarr", shape)
    labels = stores.create_labels_store(image / "labels" / "cells", shape, np.uint16)
    group = zarr.open_group(str(image / "labels" / "cells"), mode="r+")
    for key in ("1", "2"):
        group[key][:] = 5  # a marker: what an edit must not touch
    labels[1, 10:27, 30:51] = 9  # rows 10..26, columns 30..50 of level 0
    level0 = np.asarray(group["0"][:])
    assert (level0[1, 10:27, 30:51] == 9).all() and level0.sum() == 9 * 17 * 21
    voxels = level_voxels([group[k].shape for k in ("0", "1", "2")])
    for key, (_, rows, cols) in zip(("1", "2"), voxels[1:], strict=True):
        level = np.asarray(group[key][:])
        inside = np.zeros(level.shape, bool)
        in_rows = (rows >= 10) & (rows < 27)
        in_cols = (cols >= 30) & (cols < 51)
        inside[1] = in_rows[:, None] & in_cols[None, :]
        assert inside.any()
        assert (level[inside] == 9).all()  # downsampled from the edit
        assert (level[~inside] == 5).all()  # outside the edit's box: untouched
    assert (rows == [3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47, 51, 55, 59, 63]).all()


def test_a_labels_pyramid_survives_reopening_and_reads_with_ome_zarr(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    shape = (3, 64, 80)
    image = _image(tmp_path / "image.ome.zarr", shape)
    labels = stores.create_labels_store(image / "labels" / "cells", shape, np.uint32)
    labels[2, 20:30, 40:60] = 3
    again = stores.open_labels_store(image / "labels" / "cells", shape)
    assert isinstance(again.source, LabelsPyramid) and len(again.source.levels) == 3
    assert int(np.asarray(again[2, 25, 45])) == 3
    assert int(np.asarray(again.source.levels[1][2, 12, 22])) == 3  # voxel (2, 25, 45)
    again[0, 0:4, 0:4] = 8  # reopened, the pyramid is still kept in step
    assert int(np.asarray(again.source.levels[2][0, 0, 0])) == 8  # voxel (0, 3, 3)
    read_only = stores.open_labels_store(image / "labels" / "cells", shape, writable=False)
    assert not isinstance(read_only.source, LabelsPyramid)  # reading needs level 0 only
    nodes = list(Reader(parse_url(str(image)))())
    label = next(n for n in nodes if any(isinstance(s, Label) for s in n.specs))
    assert any(isinstance(s, Multiscales) for s in label.specs)
    assert [tuple(d.shape) for d in label.data] == [shape, (3, 32, 40), (3, 16, 20)]
    assert int(np.asarray(label.data[1][2, 12, 22])) == 3
    transforms = label.metadata["coordinateTransformations"]
    assert [t[0]["scale"] for t in transforms] == [
        [3.0, 0.5, 0.5],
        [3.0, 1.0, 1.0],
        [3.0, 2.0, 2.0],
    ]


def test_whole_labels_written_into_a_multiscale_image_get_all_levels(tmp_path):
    shape = (3, 65, 81)
    image = _image(tmp_path / "image.ome.zarr", shape)
    level0 = np.random.default_rng(5).integers(0, 4, shape).astype(np.uint16)
    path = stores.write_labels_store(image / "labels" / "saved", level0)
    group = zarr.open_group(str(path), mode="r")
    for key, theirs in zip(("0", "1", "2"), _ome_zarr_pyramid(tmp_path, level0), strict=True):
        np.testing.assert_array_equal(np.asarray(group[key][:]), theirs)


def test_coordinate_writes_reach_the_coarser_levels_at_their_voxels_only(tmp_path):
    """napari's own index (one integer array per axis: ``data_setitem``, its undo) writes
    level 0 and, of a coarser level, exactly the voxels it samples among those points."""
    shape = (3, 65, 81)
    image = _image(tmp_path / "image.ome.zarr", shape)
    labels = stores.create_labels_store(image / "labels" / "cells", shape, np.uint16)
    pyramid = labels.source
    group = zarr.open_group(str(image / "labels" / "cells"), mode="r+")
    for key in ("1", "2"):
        group[key][:] = 5  # a marker: what an edit must not touch
    points = (np.array([0, 0, 0, 2, 2]), np.array([3, 1, 2, 64, 63]), np.array([3, 1, 2, 80, 7]))
    pyramid[points] = [7, 8, 9, 4, 6]
    assert pyramid[points].tolist() == [7, 8, 9, 4, 6]
    assert np.asarray(group["0"][:]).sum() == 7 + 8 + 9 + 4 + 6  # those voxels, no more
    level1, level2 = np.asarray(group["1"][:]), np.asarray(group["2"][:])
    # level 1 (32 x 40) samples voxels 2j + 1, level 2 (16 x 20) voxels 4j + 3
    assert level1[0, 1, 1] == 7 and level1[0, 0, 0] == 8 and level2[0, 0, 0] == 7
    assert level1[2, 31, 3] == 6 == level2[2, 15, 1]  # voxel (2, 63, 7)
    # (0, 2, 2) and the last row and column (2, 64, 80) are in neither
    assert (level1 != 5).sum() == 3 and (level2 != 5).sum() == 2
    pyramid[(np.array([0]), np.array([3]), np.array([-78]))] = 0  # negative: from the end
    assert np.asarray(group["2"][0, 0, 0]) == 0
    with pytest.raises(IndexError):
        pyramid[(np.array([3]), np.array([0]), np.array([0]))] = 1


def test_napari_paints_the_labels_of_a_multiscale_image_at_full_resolution(tmp_path):
    pytest.importorskip("napari")
    from napari.layers import Image

    from napari_adaptiveclick._napari import lazy_layers
    from napari_adaptiveclick._napari.files import get_reader, write_labels_layer
    from napari_adaptiveclick._napari.layers import VolumeSelection, check_labels
    from napari_adaptiveclick.io.images import read_image

    shape = (3, 64, 80)
    path = _image(tmp_path / "image.ome.zarr", shape)
    ((data, kwargs, _),) = get_reader(str(path))(str(path))
    image = Image(data, **kwargs)
    layer = lazy_layers.new_labels_layer(image, limit=1000)  # on disk, in the image
    pyramid = layer.data  # single-scale over the full resolution: napari paints on it
    assert not layer.multiscale and layer.editable and isinstance(pyramid, LabelsPyramid)
    assert [level.shape for level in pyramid.levels] == [shape, (3, 32, 40), (3, 16, 20)]
    np.testing.assert_allclose(layer.scale, image.scale)  # the image's full resolution
    check_labels(layer, image)  # a pyramid on disk is a valid Labels layer to annotate
    volume = VolumeSelection.of(image, None).volume(layer.data)  # what the annotator edits
    volume[1][10:14, 20:24] = 6  # a click's write, at full resolution
    assert int(np.asarray(layer.data[1, 11, 21])) == 6
    assert int(np.asarray(pyramid.levels[1][1, 5, 10])) == 6  # voxel (1, 11, 21)
    saved = write_labels_layer(str(tmp_path / "copy.zarr"), layer.data, {"metadata": {}})
    assert int(np.asarray(zarr.open_array(saved[0], mode="r")[1, 11, 21])) == 6
    (nifti,) = write_labels_layer(str(tmp_path / "copy.nii.gz"), layer.data, {"metadata": {}})
    assert int(np.asarray(read_image(nifti).data)[1, 11, 21]) == 6  # level 0, read whole
    store = layer.metadata["adaptiveclick_store"]
    assert write_labels_layer(store, layer.data, {"metadata": {}}) == [store]  # in place


def test_a_multiscale_labels_layer_of_plain_arrays_is_refused():
    from napari.layers import Image, Labels

    from napari_adaptiveclick._napari.layers import check_labels

    image = Image(np.zeros((2, 16, 16), np.uint8), name="em")
    levels = [np.zeros((2, 16, 16), np.uint16), np.zeros((2, 8, 8), np.uint16)]
    with pytest.raises(ValueError, match="multiscale layer whose coarser levels would not follow"):
        check_labels(Labels(levels, multiscale=True, name="pyr"), image)
    check_labels(Labels(levels[0], name="flat"), image)  # level 0 alone is fine
