"""``segment`` and the annotator on lazy volumes (issue #14): a replay on a zarr / OME-Zarr /
HDF5 store gives exactly the labels of the same clicks on the volume in memory, reads only
the chunks around the clicks, writes zarr and OME-Zarr labels stores in place, and refuses
wrongly shaped or unreadable stores with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")
h5py = pytest.importorskip("h5py")

from zarr.storage import LocalStore  # noqa: E402

from lazy_stores import CountingStore, write_ome_zarr  # noqa: E402
from napari_adaptiveclick.__main__ import main  # noqa: E402
from napari_adaptiveclick.io import stores  # noqa: E402
from napari_adaptiveclick.io.images import read_image  # noqa: E402
from napari_adaptiveclick.io.lazy import LazyArray  # noqa: E402
from napari_adaptiveclick.volume.clicks_file import write_click_records  # noqa: E402
from napari_adaptiveclick.volume.records import ClickRecord  # noqa: E402

SHAPE = (5, 96, 112)
OBJECT = (slice(1, 4), slice(30, 60), slice(40, 75))  # a bright box through planes 1..3


def _volume() -> np.ndarray:
    pixels = np.random.default_rng(0).normal(100, 5, SHAPE).astype(np.float32)
    pixels[OBJECT] += 70
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _records() -> list[ClickRecord]:
    return [
        ClickRecord(2, 45, 57, True, object_id=3, order=0),
        ClickRecord(2, 70, 90, False, object_id=3, order=1),
        ClickRecord(1, 44, 56, True, object_id=4, order=2),
    ]


@pytest.fixture
def clicks(tmp_path):
    path = tmp_path / "clicks.csv"
    write_click_records(path, _records())
    return path


@pytest.fixture
def reference(tmp_path, clicks):
    """The labels of the clicks on the volume read into memory (a TIFF)."""
    tif = tmp_path / "volume.tif"
    tifffile.imwrite(tif, _volume())
    out = tmp_path / "reference.tif"
    assert _segment(tif, clicks, out) == 0
    return tifffile.imread(out)


def _segment(image, clicks, out, *extra) -> int:
    argv = ["segment", "--image", str(image), "--clicks", str(clicks), "--out", str(out)]
    return main([*argv, "--model", "tiny", *extra])


def _zarr_image(tmp_path):
    path = tmp_path / "volume.zarr"
    z = zarr.create_array(str(path), shape=SHAPE, chunks=(1, 32, 32), dtype=np.uint8)
    z[:] = _volume()
    return path


def test_zarr_in_zarr_out_equals_the_in_memory_replay(tmp_path, clicks, reference):
    out = tmp_path / "labels.zarr"
    assert _segment(_zarr_image(tmp_path), clicks, out) == 0
    labels = np.asarray(read_image(out).data)
    assert (labels == 3).any() and (labels == 4).any()
    np.testing.assert_array_equal(labels, reference)
    assert labels[2, 45, 57] == 3 and labels[1, 44, 56] == 4  # the clicked voxels
    inside = np.zeros(SHAPE, bool)
    inside[OBJECT] = True
    assert (labels > 0)[~inside].sum() < 0.2 * (labels > 0).sum()  # on the object, mostly
    assert not (labels[0] > 0).any() and not (labels[4] > 0).any()


def test_ome_zarr_in_labels_group_out(tmp_path, clicks, reference):
    image = write_ome_zarr(tmp_path / "image.ome.zarr", _volume(), scale=(3.0, 1.0, 1.0))
    out = image / "labels" / "cells"
    assert _segment(image, clicks, out) == 0
    written = read_image(out)
    assert written.format == "ome-zarr" and written.spacing == (3.0, 1.0, 1.0)
    np.testing.assert_array_equal(np.asarray(written.data), reference)
    group = zarr.open_group(str(image / "labels"), mode="r")
    assert stores.ome_metadata(group)["labels"] == ["cells"]
    assert _segment(image, clicks, out) == 2  # exists: refused without --overwrite
    assert _segment(image, clicks, out, "--overwrite") == 0
    assert stores.ome_metadata(zarr.open_group(str(image / "labels")))["labels"] == ["cells"]


def test_hdf5_in_file_out_and_zarr_start_labels(tmp_path, clicks, reference):
    h5 = tmp_path / "volume.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("raw", data=_volume(), chunks=(1, 32, 32))
    out = tmp_path / "labels.tif"
    assert _segment(h5, clicks, out) == 0
    np.testing.assert_array_equal(tifffile.imread(out), reference)
    start = stores.create_labels_store(tmp_path / "start.zarr", SHAPE, np.int32)
    start[4, :5, :5] = 9  # an earlier object, kept
    out2 = tmp_path / "continued.ome.zarr"
    assert _segment(h5, clicks, out2, "--labels", str(tmp_path / "start.zarr")) == 0
    labels = np.asarray(read_image(out2).data)
    assert labels.dtype == np.int32 and (labels[4, :5, :5] == 9).all()
    np.testing.assert_array_equal(labels[:4], reference[:4])


def test_a_replay_reads_only_chunks_near_its_clicks(tmp_path):
    """After the annotator's intensity sample, a click reads the chunks of its plane under
    its focus crop (a window of the model's input size: 256 pixels for tiny), not the
    plane; the labels store gets the chunks of the object only."""
    from napari_adaptiveclick.interactive.session import ClickSession
    from napari_adaptiveclick.volume import VolumeAnnotator

    shape, chunk = (3, 1024, 1024), 128
    pixels = np.random.default_rng(2).normal(100, 5, shape)
    pixels[1, 480:520, 580:630] += 70
    z = zarr.create_array(
        str(tmp_path / "big.zarr"), shape=shape, chunks=(1, chunk, chunk), dtype=np.uint8
    )
    z[:] = np.clip(pixels, 0, 255).astype(np.uint8)
    store = CountingStore(LocalStore(str(tmp_path / "big.zarr"), read_only=True))
    image = LazyArray(zarr.open_array(store=store, mode="r"))
    labels = stores.create_labels_store(tmp_path / "labels.zarr", shape, np.uint32)
    annotator = VolumeAnnotator(image, labels, ClickSession("tiny", "cpu"))
    store.read.clear()
    annotator.add_click(1, 500, 605)
    annotator.add_click(1, 490, 600)
    chunks = {tuple(int(i) for i in key.split("/")[1:]) for key in store.read}
    assert {c[0] for c in chunks} == {1}  # the clicked plane only
    assert len(chunks) <= 25  # a 448-pixel window: at most 5 x 5 of the plane's 8 x 8 chunks
    assert (1, 500 // chunk, 605 // chunk) in chunks
    written = [p for p in (tmp_path / "labels.zarr" / "c").rglob("*") if p.is_file()]
    assert 1 <= len(written) <= 4 and all(
        p.relative_to(tmp_path / "labels.zarr").parts[1] == "1" for p in written
    )
    assert int(np.asarray(labels[1, 500, 605])) == annotator.object_id


def test_wrongly_shaped_or_unreadable_stores_are_refused(tmp_path, clicks, capsys):
    image = _zarr_image(tmp_path)
    stores.create_labels_store(tmp_path / "small.zarr", (5, 96, 100), np.uint16)
    out = tmp_path / "out.zarr"
    assert _segment(image, clicks, out, "--labels", str(tmp_path / "small.zarr")) == 2
    assert (
        "--labels shape (5, 96, 100) does not match the image (5, 96, 112)"
        in capsys.readouterr().err
    )
    broken = tmp_path / "broken.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{")
    assert _segment(broken, clicks, out) == 2
    err = capsys.readouterr().err
    assert "Cannot read" in err and "broken.zarr" in err
    far = tmp_path / "far.csv"
    write_click_records(far, [ClickRecord(9, 5, 5, True, object_id=1, order=0)])
    assert _segment(image, far, out) == 2
    assert "outside the volume" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out.zarr*"))


@pytest.mark.parametrize(
    ("rows", "message"),
    [  # new-user trial 3: the first two failed only inside their job, on the cluster
        ("a.tif,c.csv,newdir/a.tif\n", "folder .*newdir of a.tif does not exist"),
        ("a.tif,c.csv,plain.zarr\n", "is a folder, not a labels file or zarr store"),
        ("a.tif,c.csv,results/labels/a.tif\n", "folder .*labels of a.tif does not exist"),
        ("a.tif,c.csv,x.tif\na.tif,c.csv,y.tif\na.tif,c.csv,x.tif\n", "lines 2, 4 all write"),
    ],
)
def test_batch_jobs_are_checked_before_any_starts(tmp_path, rows, message):
    from napari_adaptiveclick._segment_batch import read_jobs

    for name in ("a.tif", "c.csv"):
        (tmp_path / name).write_text("")
    (tmp_path / "plain.zarr" / "x").mkdir(parents=True)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("image,clicks,out\n" + rows)
    with pytest.raises(ValueError, match=message):
        read_jobs(jobs, None, overwrite=True)
    assert (tmp_path / "plain.zarr" / "x").is_dir()


def test_batch_mode_on_a_local_cluster(tmp_path, clicks, reference, capsys):
    pytest.importorskip("distributed")
    first = _zarr_image(tmp_path)
    h5 = tmp_path / "second.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("raw", data=_volume(), chunks=(1, 32, 32))
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        f"image,clicks,out\n{first.name},clicks.csv,\nsecond.h5,clicks.csv,b.ome.zarr\n"
    )
    argv = ["segment", "--batch", str(jobs), "--out-dir", str(tmp_path / "results")]
    assert main([*argv, "--model", "tiny", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "[2/2]" in out and "2 of 2 job(s) done, 0 failed." in out
    for path in (tmp_path / "results" / "volume-clicks.zarr", tmp_path / "b.ome.zarr"):
        np.testing.assert_array_equal(np.asarray(read_image(path).data), reference)
    jobs.write_text("image,clicks\nmissing.zarr,clicks.csv\n")
    assert main([*argv, "--model", "tiny"]) == 2  # checked before any job starts
    assert "no such image" in capsys.readouterr().err
