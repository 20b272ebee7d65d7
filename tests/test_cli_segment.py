"""``python -m napari_adaptiveclick segment``: replay clicks on a 2D image and on a volume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_adaptiveclick.__main__ import main
from napari_adaptiveclick.io.images import read_image
from napari_adaptiveclick.models.checkpoint import save_checkpoint
from napari_adaptiveclick.models.registry import build_model
from napari_adaptiveclick.volume.clicks_file import write_click_records
from napari_adaptiveclick.volume.records import ClickRecord


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model("tiny"))
    return path


def _volume(rng, shape=(6, 96, 80)):
    vol = rng.normal(100, 5, shape).astype(np.int16)
    vol[:, 30:60, 20:50] += 60
    return vol


def _write_nifti(path, data, spacing):
    import nibabel as nib

    affine = np.diag([*spacing[::-1], 1.0])  # file order x, y, z
    nib.save(nib.Nifti1Image(np.transpose(data, (2, 1, 0)), affine), path)


def test_volume_replay_writes_labels_on_the_clicked_planes(tmp_path, checkpoint, capsys):
    rng = np.random.default_rng(0)
    vol = _volume(rng)
    image = tmp_path / "vol.nii.gz"
    _write_nifti(image, vol, (3.0, 0.8, 0.8))
    clicks = tmp_path / "clicks.csv"
    write_click_records(
        clicks,
        [
            ClickRecord(2, 45, 35, True, object_id=1, order=0),
            ClickRecord(2, 10, 70, False, object_id=1, order=1),
            ClickRecord(4, 45, 35, True, object_id=7, order=2),
        ],
    )
    out = tmp_path / "labels.nii.gz"
    ckpt = ("--checkpoint", str(checkpoint), "--device", "cpu")
    assert _segment(image, clicks, out, *ckpt) == 0
    assert "3 of 3 records hold no threshold" in capsys.readouterr().err  # said, not guessed
    labels = read_image(out)
    assert labels.data.shape == vol.shape
    np.testing.assert_allclose(labels.spacing, read_image(image).spacing)
    assert set(np.unique(labels.data[2])) <= {0, 1} and set(np.unique(labels.data[4])) <= {0, 7}
    assert not labels.data[[0, 1, 3, 5]].any()
    # Refuses to overwrite, then replays identically when allowed.
    assert _segment(image, clicks, out, *ckpt) == 2
    first = labels.data.copy()
    assert _segment(image, clicks, out, *ckpt, "--overwrite") == 0
    assert np.array_equal(read_image(out).data, first)


def test_2d_tiff_replay(tmp_path, checkpoint):
    import tifffile

    rng = np.random.default_rng(1)
    image = tmp_path / "slice.tif"
    tifffile.imwrite(image, _volume(rng, (1, 96, 80))[0].astype(np.uint16))
    clicks = tmp_path / "clicks.json"
    write_click_records(clicks, [ClickRecord(0, 45, 35, True, object_id=3)])
    out = tmp_path / "labels.tif"
    assert _segment(image, clicks, out, "--checkpoint", str(checkpoint)) == 0
    labels = tifffile.imread(out)
    assert labels.shape == (96, 80) and set(np.unique(labels)) <= {0, 3}


def _segment(image, clicks, out, *extra) -> int:
    return main(
        ["segment", "--image", str(image), "--clicks", str(clicks), "--out", str(out), *extra]
    )


def test_bad_inputs_give_messages(tmp_path, checkpoint, capsys):
    import tifffile

    image = tmp_path / "slice.tif"
    tifffile.imwrite(image, np.random.default_rng(2).integers(0, 255, (40, 40), dtype=np.uint8))
    clicks = tmp_path / "clicks.csv"
    out = tmp_path / "o.tif"
    write_click_records(clicks, [ClickRecord(5, 1, 1, True, object_id=1)])
    assert _segment(image, clicks, out, "--checkpoint", str(checkpoint)) == 2
    assert "plane 5" in capsys.readouterr().err
    write_click_records(clicks, [ClickRecord(0, 100, 1, True, object_id=1)])
    assert _segment(image, clicks, out, "--checkpoint", str(checkpoint)) == 2
    assert "is outside the volume" in capsys.readouterr().err
    assert _segment(tmp_path / "missing.tif", clicks, out) == 2
    assert "missing.tif" in capsys.readouterr().err
    assert not out.exists()
