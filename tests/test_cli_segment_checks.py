"""``segment`` keeps the user's label ids and dtype exactly, and refuses before any work what it
cannot do: ids that do not fit, float or negative labels, and models without trained weights."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tifffile

from napari_adaptiveclick.__main__ import main
from napari_adaptiveclick.interactive import session as session_module
from napari_adaptiveclick.io.images import read_image
from napari_adaptiveclick.models import registry
from napari_adaptiveclick.volume.clicks_file import write_click_records
from napari_adaptiveclick.volume.records import ClickRecord
from synthetic import unwritable_folder

SHAPE = (96, 80)
OBJECT = (slice(30, 60), slice(20, 50))  # the bright square the clicks hit


@pytest.fixture
def image(tmp_path):
    pixels = np.random.default_rng(0).normal(100, 5, SHAPE).astype(np.uint16)
    pixels[OBJECT] += 60
    path = tmp_path / "slice.tif"
    tifffile.imwrite(path, pixels)
    return path


@pytest.fixture
def no_model_loading(monkeypatch):
    """Fails the test if a ClickSession (and so a model) is built: refusals come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(session_module.ClickSession, "__init__", refuse)


@pytest.fixture
def no_shipped_weights(monkeypatch):
    monkeypatch.setattr(registry, "default_checkpoint", lambda name="default": None)


def _clicks(tmp_path, *records: ClickRecord, name="clicks.csv"):
    path = tmp_path / name
    write_click_records(path, list(records))
    return path


def _labels_file(tmp_path, labels):
    path = tmp_path / "start.tif"
    tifffile.imwrite(path, labels)
    return path


def _segment(image, clicks, out, *extra) -> int:
    argv = ["segment", "--image", str(image), "--clicks", str(clicks), "--out", str(out)]
    return main([*argv, *extra])


def _click(object_id, order=0, model=""):
    return ClickRecord(0, 45, 35, True, object_id=object_id, order=order, model=model)


# ---------------------------------------------------------------------- labels: ids and dtype


@pytest.mark.parametrize("suffix", [".tif", ".nii.gz", ".mha"])
def test_uint64_ids_above_32_bits_stay_distinct(tmp_path, image, suffix):
    big, top = 2**32 + 5, 2**64 - 2
    start = np.zeros(SHAPE, np.uint64)
    start[:10, :10], start[85:, 70:] = big, top
    clicks = _clicks(tmp_path, _click(5))
    out = tmp_path / f"labels{suffix}"
    labels_arg = ("--labels", str(_labels_file(tmp_path, start)))
    assert _segment(image, clicks, out, "--model", "tiny", *labels_arg) == 0
    written = read_image(out).data
    assert written.dtype == np.uint64
    assert set(np.unique(written).tolist()) == {0, 5, big, top}
    assert (written[:10, :10] == big).all() and (written[85:, 70:] == top).all()
    assert (written[OBJECT] == 5).any()


def test_uint32_ids_above_2_31_replay(tmp_path, image):
    old, new = 2**31 + 7, 2**32 - 1
    start = np.zeros(SHAPE, np.uint32)
    start[:10, :10] = old
    clicks = _clicks(tmp_path, _click(new))
    out = tmp_path / "labels.tif"
    labels_arg = ("--labels", str(_labels_file(tmp_path, start)))
    assert _segment(image, clicks, out, "--model", "tiny", *labels_arg) == 0
    written = tifffile.imread(out)
    assert written.dtype == np.uint32
    assert set(np.unique(written).tolist()) == {0, old, new}
    assert (written[:10, :10] == old).all() and (written[OBJECT] == new).any()


@pytest.mark.parametrize(("suffix", "dtype"), [(".tif", np.uint16), (".nii.gz", np.int32)])
def test_the_start_labels_dtype_is_kept_even_when_the_ids_are_small(tmp_path, image, suffix, dtype):
    start = np.zeros(SHAPE, dtype)
    start[:10, :10] = 3  # fits uint8, which the output would otherwise shrink to
    out = tmp_path / f"labels{suffix}"
    labels_arg = ("--labels", str(_labels_file(tmp_path, start)))
    assert _segment(image, _clicks(tmp_path, _click(4)), out, "--model", "tiny", *labels_arg) == 0
    written = read_image(out).data
    assert written.dtype == dtype and set(np.unique(written).tolist()) == {0, 3, 4}


def test_without_start_labels_any_uint64_id_is_kept(tmp_path, image):
    clicks = _clicks(tmp_path, _click(2**40))
    out = tmp_path / "labels.tif"
    assert _segment(image, clicks, out, "--model", "tiny") == 0
    written = tifffile.imread(out)
    assert written.dtype == np.uint64 and set(np.unique(written).tolist()) == {0, 2**40}


@pytest.mark.parametrize(
    ("dtype", "new_id", "limit"),
    [(np.uint8, 256, 255), (np.int8, 128, 127), (np.int32, 2**31, 2**31 - 1)],
)
def test_new_ids_that_do_not_fit_are_refused_before_work(
    tmp_path, image, capsys, no_model_loading, dtype, new_id, limit
):
    clicks = _clicks(tmp_path, _click(1), _click(new_id, order=1))
    labels_arg = ("--labels", str(_labels_file(tmp_path, np.zeros(SHAPE, dtype))))
    out = tmp_path / "labels.tif"
    assert _segment(image, clicks, out, "--model", "tiny", *labels_arg) == 2
    err = capsys.readouterr().err
    name = np.dtype(dtype).name
    assert f"object id {new_id}" in err and f"{name} labels hold ids up to {limit}" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2.5, "holds values that are not whole numbers (e.g. 2.5)"),
        (np.nan, "holds values that are not whole numbers (e.g. nan)"),
        (2.0**25, "float32 cannot hold every id above 16777216 exactly"),
    ],
)
def test_float_labels_that_are_not_exact_ids_are_refused(
    tmp_path, image, capsys, no_model_loading, value, message
):
    start = np.zeros(SHAPE, np.float32)
    start[0, 0] = value
    labels_arg = ("--labels", str(_labels_file(tmp_path, start)))
    assert _segment(image, _clicks(tmp_path, _click(1)), tmp_path / "o.tif", *labels_arg) == 2
    err = capsys.readouterr().err
    assert "--labels" in err and message in err and "save the labels as integers" in err


def test_float_labels_with_whole_values_are_converted_with_a_note(tmp_path, image, capsys):
    start = np.zeros(SHAPE, np.float64)
    start[:10, :10] = 3
    labels_arg = ("--labels", str(_labels_file(tmp_path, start)))
    out = tmp_path / "labels.tif"
    assert _segment(image, _clicks(tmp_path, _click(9)), out, "--model", "tiny", *labels_arg) == 0
    err = capsys.readouterr().err
    assert "note: --labels" in err and "float64 values are all whole numbers" in err
    assert "used as int32 ids" in err
    written = tifffile.imread(out)
    assert set(np.unique(written).tolist()) == {0, 3, 9} and (written[:10, :10] == 3).all()


def test_negative_labels_are_refused_before_work(tmp_path, image, capsys, no_model_loading):
    start = np.zeros(SHAPE, np.int16)
    start[5, 5] = -1
    labels_arg = ("--labels", str(_labels_file(tmp_path, start)))
    assert _segment(image, _clicks(tmp_path, _click(1)), tmp_path / "o.tif", *labels_arg) == 2
    assert "--labels holds negative ids (e.g. -1)" in capsys.readouterr().err


def test_a_bad_last_click_is_refused_before_work(tmp_path, image, capsys, no_model_loading):
    late = ClickRecord(0, 200, 35, True, object_id=1, order=9)
    clicks = _clicks(tmp_path, _click(1), late)
    assert _segment(image, clicks, tmp_path / "o.tif", "--model", "tiny") == 2
    assert "The click of order 9 at plane 0, (row 200.0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "object_id", "message"),
    [
        (
            "o.png",
            70000,
            "PNG holds 2D labels up to 65535, these are (96, 80) with ids up to 70000",
        ),
        ("o.jpg", 1, "JPEG is lossy"),
        ("o.xyz", 1, "unsupported file type; use one of .tif, .tiff, .png, .nii"),
        ("missing/o.tif", 1, "folder"),
    ],
)
def test_outputs_that_cannot_be_written_are_refused_before_work(
    tmp_path, image, capsys, no_model_loading, name, object_id, message
):
    clicks = _clicks(tmp_path, _click(object_id))
    assert _segment(image, clicks, tmp_path / name, "--model", "tiny") == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("which", ["image", "clicks", "labels"])
def test_an_input_file_is_never_the_output(tmp_path, image, capsys, no_model_loading, which):
    clicks = _clicks(tmp_path, _click(1))
    start = _labels_file(tmp_path, np.zeros(SHAPE, np.uint8))
    before = {p: p.read_bytes() for p in (image, clicks, start)}
    out = {"image": image, "clicks": clicks, "labels": start}[which]
    extra = ("--labels", str(start), "--model", "tiny", "--overwrite")
    assert _segment(image, clicks, out, *extra) == 2
    assert f"is, holds or lies in the --{which}" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before  # nothing was written over


def test_an_output_store_never_holds_or_lies_in_the_image(tmp_path, capsys, no_model_loading):
    import zarr

    store = tmp_path / "image.zarr"
    group = zarr.open_group(str(store), mode="w")
    group.create_array("raw", shape=SHAPE, dtype="uint8")[:] = 7
    clicks = _clicks(tmp_path, _click(1))
    for image, out in ((store / "raw", store), (store, store / "raw")):
        assert _segment(image, clicks, out, "--model", "tiny", "--overwrite") == 2
        assert "is, holds or lies in the --image" in capsys.readouterr().err
        assert (zarr.open_group(str(store), mode="r")["raw"][:] == 7).all()  # still the image


@pytest.mark.parametrize("name", ["dir.tif", "results.zarr"])  # named like a file, a store
def test_an_out_that_is_a_plain_folder_is_never_replaced(
    tmp_path, image, capsys, no_model_loading, name
):
    # new-user trial 3: --overwrite deleted a folder named results.zarr that was no zarr
    # store, and a folder named dir.tif failed with a raw errno after the whole replay
    clicks = _clicks(tmp_path, _click(1))
    out = tmp_path / name
    (out / "x").mkdir(parents=True)
    (out / "x" / "keep.txt").write_text("mine")
    assert _segment(image, clicks, out, "--model", "tiny", "--overwrite") == 2
    assert "is a folder, not a labels file or zarr store" in capsys.readouterr().err
    assert (out / "x" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("name", ["labels.tif", "labels.zarr"])  # a file, a zarr store
def test_a_folder_that_takes_no_new_file_is_refused_before_the_replay(
    tmp_path, image, capsys, no_model_loading, name
):
    clicks = _clicks(tmp_path, _click(1))
    out = unwritable_folder(tmp_path) / name
    assert _segment(image, clicks, out, "--model", "tiny") == 2
    err = capsys.readouterr().err
    assert "does not take new files" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        ({"mask_label": 7}, "label 7 is in no labels the replay starts from.*pass --labels"),
        ({"points": ((-9, -9), (-9, -5), (-5, -5))}, "holds no pixel centre"),
        ({"points": ((1, 1), (1, 20), (20, 20)), "mask_sha256": "a" * 64}, "SHA-256 differs"),
    ],
)
def test_masks_that_cannot_be_replayed_are_refused_before_any_prediction(
    tmp_path, image, capsys, no_model_loading, mask, message
):
    clicks = _clicks(
        tmp_path, _click(1), ClickRecord(0, 5, 5, True, 2, order=1, kind="mask", **mask)
    )
    assert _segment(image, clicks, tmp_path / "out.tif", "--model", "tiny") == 2
    err = capsys.readouterr().err
    assert (
        re.search(f"The record of order 1 \\(mask, plane 0\\): .*{message}", err)
        and "Traceback" not in err
    )


def test_a_label_mask_of_the_start_labels_or_of_an_earlier_record_passes_the_checks(tmp_path):
    from napari_adaptiveclick.volume.replay_checks import check_records

    refine = ClickRecord(0, 5, 5, True, 7, order=1, kind="mask", mask_label=7)
    check_records([_click(7), refine], SHAPE, np.int32, start_ids=())  # made by record 0
    check_records([refine], SHAPE, np.int32, start_ids=[0, 7])  # in the start labels
    with pytest.raises(ValueError, match="label 7 is in no labels"):
        check_records([refine], SHAPE, np.int32, start_ids=[0, 3])


def test_a_stack_stored_as_rgb_says_so_when_a_click_is_on_a_later_plane(
    tmp_path, capsys, no_model_loading
):
    path = tmp_path / "three.tif"  # three planes saved as one RGB image (samples last)
    tifffile.imwrite(path, np.zeros((40, 50, 3), np.uint8), photometric="rgb")
    clicks = _clicks(tmp_path, ClickRecord(2, 10, 10, True, object_id=1))
    assert _segment(path, clicks, tmp_path / "out.tif", "--model", "tiny") == 2
    err = capsys.readouterr().err
    assert "outside the volume" in err and "was read as one RGB image" in err
    labels = tmp_path / "labels.tif"  # labels stored the same way: the hint too
    tifffile.imwrite(labels, np.zeros((40, 50, 3), np.uint8), photometric="rgb")
    clicks = _clicks(tmp_path, ClickRecord(0, 10, 10, True, object_id=1))
    image = tmp_path / "grey.tif"
    tifffile.imwrite(image, np.zeros((40, 50), np.uint8))
    assert _segment(image, clicks, tmp_path / "out.tif", "--labels", str(labels)) == 2
    assert "It was read as RGB: save a stack of label slices" in capsys.readouterr().err


def test_4d_data_is_refused_with_what_to_do(tmp_path, capsys, no_model_loading):
    nib = pytest.importorskip("nibabel")
    path = tmp_path / "series.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 9, 4, 2), np.int16), np.eye(4)), path)
    clicks = _clicks(tmp_path, _click(1))
    assert _segment(path, clicks, tmp_path / "out.nii.gz", "--model", "tiny") == 2
    err = capsys.readouterr().err
    assert "holds 4D data (axes 'tzyx')" in err and "Save the time point" in err


# ---------------------------------------------------------------------- models without weights
@pytest.mark.parametrize("via", ["clicks", "--model"])
@pytest.mark.parametrize("name", ["vit_b", "vit_h"])
def test_models_without_weights_are_refused(tmp_path, image, capsys, no_model_loading, via, name):
    clicks = _clicks(tmp_path, _click(1, model=name if via == "clicks" else ""))
    extra = ("--model", name) if via == "--model" else ()
    assert _segment(image, clicks, tmp_path / "o.tif", *extra) == 2
    err = capsys.readouterr().err
    assert f"model '{name}' has no trained weights installed" in err
    assert "--checkpoint FILE" in err and "--allow-random-weights" in err


def test_no_shipped_weights_refuses_default_and_checkpoint_default(
    tmp_path, image, capsys, no_model_loading, no_shipped_weights
):
    clicks = _clicks(tmp_path, _click(1))
    for extra in [(), ("--model", "tiny"), ("--model", "default"), ("--checkpoint", "default")]:
        assert _segment(image, clicks, tmp_path / "o.tif", *extra) == 2
        err = capsys.readouterr().err
        assert "has no trained weights installed" in err and "--checkpoint FILE" in err


def test_random_weights_only_when_asked_and_with_a_warning(
    tmp_path, image, capsys, no_shipped_weights
):
    clicks = _clicks(tmp_path, _click(1, model="tiny"))
    out = tmp_path / "o.tif"
    assert _segment(image, clicks, out, "--allow-random-weights", "--device", "cpu") == 0
    err = capsys.readouterr().err
    assert "WARNING: replaying with RANDOM weights for model 'tiny'" in err
    assert tifffile.imread(out).shape == SHAPE


def test_several_models_in_one_clicks_file_need_a_choice(tmp_path, image, capsys, no_model_loading):
    clicks = _clicks(tmp_path, _click(1, model="tiny"), _click(2, order=1, model="vit_b"))
    assert _segment(image, clicks, tmp_path / "o.tif") == 2
    err = capsys.readouterr().err
    assert "made with several models (tiny, vit_b)" in err and "--checkpoint" in err


def test_a_missing_checkpoint_named_in_the_clicks_is_refused(
    tmp_path, image, capsys, no_model_loading
):
    clicks = _clicks(tmp_path, _click(1, model="/nowhere/finetuned.pt"))
    assert _segment(image, clicks, tmp_path / "o.tif") == 2
    err = capsys.readouterr().err
    assert "'/nowhere/finetuned.pt'" in err and "--checkpoint FILE" in err


def test_a_checkpoint_overrides_the_models_of_the_clicks(tmp_path, image, capsys):
    clicks = _clicks(tmp_path, _click(1, model="vit_b"))
    out = tmp_path / "o.tif"
    assert _segment(image, clicks, out, "--checkpoint", "default") == 0
    assert "model default," in capsys.readouterr().out
    assert (tifffile.imread(out)[OBJECT] == 1).any()


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".tif"])
def test_scanner_files_are_replayed_with_the_mri_weights(
    tmp_path, image, capsys, mri_weights, suffix
):
    """No model named anywhere: the shipped weights for the image's kind."""
    import SimpleITK as sitk

    source = image
    if suffix != ".tif":  # the same pixels as a one-plane scanner volume
        source = tmp_path / f"scan{suffix}"
        sitk.WriteImage(sitk.GetImageFromArray(tifffile.imread(image)[None]), str(source))
    clicks = _clicks(tmp_path, ClickRecord(0, 45, 35, True, object_id=1))
    assert _segment(source, clicks, tmp_path / f"o{suffix}") == 0
    expected = "default" if suffix == ".tif" else "default-mri"
    assert f"model {expected}," in capsys.readouterr().out


def test_objects_left_without_pixels_are_named(tmp_path, image, capsys):
    clicks = _clicks(tmp_path, ClickRecord(0, 5, 5, False, object_id=3))  # "not this" only
    assert _segment(image, clicks, tmp_path / "out.tif", "--model", "tiny") == 0
    assert "no pixels for object(s) 3" in capsys.readouterr().out
    assert not tifffile.imread(tmp_path / "out.tif").any()


@pytest.mark.parametrize("value", ["1.5", "0", "nan", "high"])
def test_a_threshold_outside_0_1_is_refused_before_anything_is_said_or_read(
    tmp_path, capsys, no_model_loading, value
):
    with pytest.raises(SystemExit) as stop:
        _segment(
            tmp_path / "none.tif", tmp_path / "none.csv", tmp_path / "out.tif", "--threshold", value
        )
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --threshold: threshold must be a number in (0, 1)" in err
    assert "replay at" not in err and "no such file" not in err.lower()


def test_a_bool_mask_to_start_from_takes_the_clicks_files_ids():
    # new-user trial 3: a bool mask became uint8, then a click file's id 300 was refused with
    # "uint8 labels hold ids up to 255", which a user who gave a bool file could not follow
    from napari_adaptiveclick.__main__ import _start_labels

    mask = np.zeros(SHAPE, bool)
    mask[2:5, 2:5] = True
    small, wide = _start_labels(mask, SHAPE, 3), _start_labels(mask, SHAPE, 300)
    assert small.dtype == np.uint8 and np.iinfo(wide.dtype).max >= 300
    np.testing.assert_array_equal(small, mask)
    np.testing.assert_array_equal(wide, mask)
