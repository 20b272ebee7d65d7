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
