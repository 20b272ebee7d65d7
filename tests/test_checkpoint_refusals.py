"""Checkpoints that must be refused with the loader's clear error, everywhere: non-finite
weights, malformed contents, and files that declare more than they hold."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
import torch

from napari_adaptiveclick.models.checkpoint import checkpoint_dict
from napari_adaptiveclick.models.errors import CheckpointError
from napari_adaptiveclick.models.registry import build_model, load_model


@pytest.fixture(scope="module")
def good() -> dict:
    torch.manual_seed(0)
    return checkpoint_dict(build_model("tiny"))


def _write(tmp_path, ckpt: dict, name: str = "model.pt"):
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


def _with(good: dict, **changes) -> dict:
    out = dict(good)
    out["state_dict"] = dict(good["state_dict"])
    out.update(changes)
    return out


def test_non_finite_weights_are_refused(tmp_path, good):
    for bad in (float("nan"), float("inf")):
        ckpt = _with(good)
        key = next(iter(ckpt["state_dict"]))
        ckpt["state_dict"][key] = ckpt["state_dict"][key].clone().fill_(bad)
        with pytest.raises(CheckpointError, match="NaN or infinite weights in " + key):
            load_model(_write(tmp_path, ckpt))


def test_bytes_changed_after_saving_are_called_damage_not_divergence(tmp_path, good):
    path = _write(tmp_path, good)
    with zipfile.ZipFile(path) as archive:  # the largest tensor record, where a bad copy hits
        record = max(archive.infolist(), key=lambda r: r.file_size)
        start = record.header_offset + 30 + len(record.filename) + len(record.extra)
    data = bytearray(path.read_bytes())
    data[start + 100 : start + 4196] = b"\xff" * 4096  # float32 0xFFFFFFFF is NaN
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is damaged: its record .* does not match") as err:
        load_model(path)
    assert "diverged" not in str(err.value)


def test_files_saved_without_checksums_load(tmp_path, good):
    from torch.utils.serialization import config

    with config.patch({"save.compute_crc32": False}):  # a documented torch option
        path = _write(tmp_path, good)
    with zipfile.ZipFile(path) as archive:
        assert all(r.CRC == 0 for r in archive.infolist())
    load_model(path)  # not "damaged"


def test_a_record_that_cannot_be_decompressed_is_the_loaders_error(tmp_path, good):
    stored = _write(tmp_path, good, "stored.pt")
    path = tmp_path / "deflated.pt"
    with zipfile.ZipFile(stored) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for record in src.infolist():
            dst.writestr(record.filename, src.read(record))
    with zipfile.ZipFile(path) as archive:
        record = max(archive.infolist(), key=lambda r: r.compress_size)
        start = record.header_offset + 30 + len(record.filename) + len(record.extra)
    data = bytearray(path.read_bytes())
    data[start] = 0xFF  # a deflate block of the reserved type: zlib.error, not BadZipFile
    path.write_bytes(bytes(data))
    readable = r"is not a readable PyTorch checkpoint: its record .* cannot be read \(error"
    with pytest.raises(CheckpointError, match=readable):
        load_model(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("string_value", "not tensors"),
        ("nested_dict_value", "not tensors"),
        ("config_number", "malformed model config: A model config must be a dict"),
        ("field_wrong_type", "ViTConfig.depth must be int"),
        ("part_not_dict", "'vit' must be a dict"),
        ("absurd_width", "G-parameter backbone"),
        ("negative_size", "out of range"),
    ],
)
def test_malformed_checkpoints_give_the_loaders_error(tmp_path, good, change, message):
    ckpt = _with(good)
    key = next(iter(ckpt["state_dict"]))
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in good["config"].items()}
    if change == "string_value":
        ckpt["state_dict"][key] = "weights"
    elif change == "nested_dict_value":
        ckpt["state_dict"][key] = {"weight": torch.zeros(2)}
    elif change == "config_number":
        config = 7
    elif change == "field_wrong_type":
        config["vit"]["depth"] = "8"
    elif change == "part_not_dict":
        config["vit"] = 3
    elif change == "absurd_width":
        config["vit"].update(embed_dim=16384, depth=1000)
    elif change == "negative_size":
        config["decoder"]["num_queries"] = -1
    ckpt["config"] = config
    with pytest.raises(CheckpointError, match=message):
        load_model(_write(tmp_path, ckpt))


def test_a_record_that_would_expand_hugely_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * (64 << 20))
    assert path.stat().st_size < 1 << 20
    expected = r"^\S*bomb\.pt declares records archive/data\.pkl that expand to 0\.1 GiB: refused"
    with pytest.raises(CheckpointError, match=expected):
        load_model(path)


def test_segment_refuses_a_nan_checkpoint_without_a_traceback(tmp_path, good):
    import numpy as np
    import tifffile

    ckpt = _with(good)
    key = next(iter(ckpt["state_dict"]))
    ckpt["state_dict"][key] = ckpt["state_dict"][key].clone().fill_(float("nan"))
    model = _write(tmp_path, ckpt)
    image = tmp_path / "image.tif"
    tifffile.imwrite(image, np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("plane,row,col,positive,object_id\n0,30,30,1,1\n")
    out = tmp_path / "labels.tif"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_adaptiveclick",
            "segment",
            "--image",
            str(image),
            "--clicks",
            str(clicks),
            "--out",
            str(out),
            "--checkpoint",
            str(model),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert "NaN or infinite" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
