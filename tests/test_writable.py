"""``io.writable.check_writable``: the probe that an output's folder takes a new file."""

from __future__ import annotations

import pytest

from napari_adaptiveclick.io.writable import OutputNotWritableError, check_writable
from synthetic import unwritable_folder


def test_a_long_valid_name_passes_and_nothing_stays(tmp_path):
    out = tmp_path / ("m" * 240 + ".pt")  # 243 characters: the longest names still work
    out.write_bytes(b"")  # the file system takes the name itself
    out.unlink()
    assert check_writable(out) == out
    assert list(tmp_path.iterdir()) == []  # the probe is gone, the output not made


def test_missing_and_unwritable_folders_name_the_flag(tmp_path):
    with pytest.raises(OutputNotWritableError, match="Cannot write 'Save to' file .* does not exist"):  # fmt: skip
        check_writable(tmp_path / "gone" / "model.pt", "'Save to' file")
    folder = unwritable_folder(tmp_path)
    with pytest.raises(OutputNotWritableError, match="Cannot write --out .* does not take new files"):  # fmt: skip
        check_writable(folder / "labels.tif")


def test_an_output_never_writes_over_an_input_or_its_store(tmp_path):
    from napari_adaptiveclick.io.writable import writes_over

    store = tmp_path / "image.ome.zarr"
    assert writes_over(store, store) and writes_over(store, store / "0")  # holds the image
    assert writes_over(store / "0", store)  # its full-resolution level
    assert writes_over(store / "labels", store)  # the labels group itself (all its labels)
    assert writes_over(tmp_path / "a" / ".." / "image.ome.zarr", store)  # spelled differently
    assert not writes_over(store / "labels" / "cells", store)  # where OME-Zarr keeps labels
    assert not writes_over(tmp_path / "image.ome.zarr2", store)  # a sibling, not inside
    assert not writes_over(tmp_path / "other.zarr", store)


def test_only_a_zarr_store_is_replaced_among_folders(tmp_path):
    import numpy as np
    import zarr

    from napari_adaptiveclick.io.labels import write_labels
    from napari_adaptiveclick.io.stores import new_labels_store

    plain = tmp_path / "plain.zarr"
    (plain / "keep.txt").parent.mkdir()
    (plain / "keep.txt").write_text("mine")
    with pytest.raises(OutputNotWritableError, match="is a folder, not a labels file or zarr"):
        check_writable(plain)
    with pytest.raises(FileExistsError, match="is a folder"):
        with new_labels_store(plain, (2, 4, 4), np.uint8, overwrite=True):
            pass
    (tmp_path / "dir.tif").mkdir()
    with pytest.raises(FileExistsError, match="is a folder"):
        write_labels(tmp_path / "dir.tif", np.zeros((2, 4, 4), np.uint8), overwrite=True)
    assert (plain / "keep.txt").read_text() == "mine"
    store = tmp_path / "labels.zarr"
    zarr.open_array(str(store), mode="w", shape=(2, 4, 4), dtype="uint8")
    assert check_writable(store) == store  # a store: replaced with --overwrite
    with new_labels_store(store, (2, 4, 4), np.uint8, overwrite=True) as target:
        target[0] = 1
    assert int(np.asarray(zarr.open_array(str(store), mode="r"))[0].max()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.tif", "labels.zarr", "plain.zarr"]


def test_a_store_replaced_is_kept_when_the_rename_fails(tmp_path, monkeypatch):
    import numpy as np
    import zarr

    from napari_adaptiveclick.io import stores

    store = tmp_path / "labels.zarr"
    zarr.open_array(str(store), mode="w", shape=(2, 4, 4), dtype="uint8")[:] = 7
    rename = stores.os.replace

    def failing(src, dst):  # the new store cannot take the old one's place
        if str(src).endswith("labels.zarr") and ".labels.zarr." in str(src):
            raise OSError("disk full")
        rename(src, dst)

    monkeypatch.setattr(stores.os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        with stores.new_labels_store(store, (2, 4, 4), np.uint8, overwrite=True) as target:
            target[0] = 1
    assert (np.asarray(zarr.open_array(str(store), mode="r")) == 7).all()  # the old one, whole
