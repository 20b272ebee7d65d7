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


def test_overlapping_paths_are_the_same_one_or_nested(tmp_path):
    from napari_adaptiveclick.io.writable import overlapping

    store = tmp_path / "image.zarr"
    assert overlapping(store, store) and overlapping(store / "raw", store)
    assert overlapping(store, store / "labels" / "0")  # a store holds its arrays
    assert overlapping(tmp_path / "a" / ".." / "image.zarr", store)  # spelled differently
    assert not overlapping(tmp_path / "image.zarr2", store)  # a sibling, not inside
    assert not overlapping(tmp_path / "other.zarr", store)
