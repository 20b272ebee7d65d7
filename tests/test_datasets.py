"""napari_adaptiveclick.learning.datasets on generated layouts (every builder, every error) and on the real data."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
from PIL import Image

from napari_adaptiveclick.interactive.transforms import intensity_stats, normalize_intensity
from napari_adaptiveclick.io.labels import write_labels
from napari_adaptiveclick.learning.datasets import (
    BRATS_SPLIT_CASES,
    DATASET_NAMES,
    DatasetError,
    ObjectDataset,
    build_dataset,
    dataset_root,
    dataset_subdir,
    default_data_root,
)


def _image(shape: tuple[int, ...], seed: int, dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 200, size=shape).astype(dtype)


def _instances_2d() -> np.ndarray:
    """(20, 24) instance labels: ids 3 (30 px), 7 (6 px) and 9 (two separate 4 px pieces)."""
    labels = np.zeros((20, 24), np.uint16)
    labels[2:7, 3:9] = 3
    labels[10:12, 10:13] = 7
    labels[15:17, 1:3] = 9
    labels[15:17, 20:22] = 9
    return labels


def _binary_2d() -> np.ndarray:
    """(20, 24) binary mask, value 255: three 4-connected blobs (diagonal neighbours split)."""
    mask = np.zeros((20, 24), np.uint8)
    mask[1:5, 1:5] = 255  # 16 px
    mask[5, 5] = 255  # touches the first blob only diagonally: its own component (1 px)
    mask[10:18, 12:20] = 255  # 64 px
    return mask


def _label_volume() -> np.ndarray:
    """(4, 10, 12) labels: planes 1 and 2 hold label 1 (12 px) and label 2 (6 px)."""
    labels = np.zeros((4, 10, 12), np.uint8)
    labels[1:3, 2:5, 2:6] = 1
    labels[1:3, 6:8, 7:10] = 2
    return labels


@pytest.fixture
def folder_2d(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.fromarray(_image((20, 24), 1)).save(tmp_path / "images" / "cells.png")
    Image.fromarray(_instances_2d()).save(tmp_path / "labels" / "cells.png")
    Image.fromarray(_image((20, 24, 3), 2)).save(tmp_path / "images" / "rgb.png")
    Image.fromarray(_binary_2d()).save(tmp_path / "labels" / "rgb.png")
    return tmp_path


def _write_oaizib(root: Path, n_volumes: int, suffix: str = ".mhd") -> list[str]:
    (root / "images").mkdir(parents=True)
    (root / "segmentations").mkdir()
    names = [f"90{i:02d}" for i in range(n_volumes)]
    for i, name in enumerate(names):
        sitk.WriteImage(
            sitk.GetImageFromArray(_image((4, 10, 12), i, np.int16)),
            str(root / "images" / f"{name}{suffix}"),
        )
        write_labels(root / "segmentations" / f"{name}.segmentation_masks{suffix}", _label_volume())
    return names


# --- folder -----------------------------------------------------------------------------


def test_folder_2d_instances_binary_and_rgb(folder_2d):
    ds = build_dataset("folder", folder_2d, "all")
    assert ds.names == [
        "folder/cells.png#obj-003",
        "folder/cells.png#obj-007",
        "folder/cells.png#obj-009",
        "folder/rgb.png#obj-001",
        "folder/rgb.png#obj-002",
        "folder/rgb.png#obj-003",
    ]
    assert [int(s.mask.sum()) for s in ds] == [30, 6, 8, 16, 1, 64]
    assert ds.areas.tolist() == [30, 6, 8, 16, 1, 64]
    np.testing.assert_array_equal(ds[2].mask, _instances_2d() == 9)  # one id, two pieces
    assert ds.groups == ["folder/cells"] * 3 + ["folder/rgb"] * 3
    grey, rgb = ds[0].image, ds[3].image
    assert grey.shape == (20, 24) and grey.dtype == np.float32 and rgb.shape == (20, 24, 3)
    expected = normalize_intensity(_image((20, 24), 1), intensity_stats(_image((20, 24), 1)))
    np.testing.assert_array_equal(grey, expected)


def test_only_and_exclude_hold_out_a_fold_by_object_name(folder_2d):
    """A validation fold of the training split: exclude it in training, only it in evaluation."""
    fold = "folder/rgb.png*"
    kept = build_dataset("folder", folder_2d, "all", exclude=fold)
    held = build_dataset("folder", folder_2d, "all", only=fold)
    assert kept.names == [f"folder/cells.png#obj-00{i}" for i in (3, 7, 9)]
    assert held.names == [f"folder/rgb.png#obj-00{i}" for i in (1, 2, 3)]
    both = build_dataset("folder", folder_2d, "all", only="*obj-003|*obj-002", exclude="*rgb*")
    assert both.names == ["folder/cells.png#obj-003"]
    assert sorted(kept.names + held.names) == sorted(
        build_dataset("folder", folder_2d, "all").names
    )
    with pytest.raises(DatasetError, match="leave no object.*folder/cells.png#obj-003"):
        build_dataset("folder", folder_2d, "all", only="nothing*")
    with pytest.raises(DatasetError, match="do not apply to synthetic"):
        build_dataset("synthetic", None, "train", exclude="*")


def test_folder_min_area_drops_small_objects(folder_2d):
    ds = build_dataset("folder", folder_2d, "all", min_area=8)
    assert [int(s.mask.sum()) for s in ds] == [30, 8, 16, 64]
    with pytest.raises(DatasetError, match="No objects in folder.*min_area=1000"):
        build_dataset("folder", folder_2d, "all", min_area=1000)


def test_folder_3d_sliced_along_axis(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    volume = _image((4, 10, 12), 3)
    tifffile.imwrite(tmp_path / "images" / "vol.tif", volume, photometric="minisblack")
    write_labels(tmp_path / "labels" / "vol.nii.gz", _label_volume())
    ds = build_dataset("folder", tmp_path, "all")
    assert ds.names == [
        "folder/vol.tif@z=1#obj-001",
        "folder/vol.tif@z=1#obj-002",
        "folder/vol.tif@z=2#obj-001",
        "folder/vol.tif@z=2#obj-002",
    ]
    assert ds[0].image is ds[1].image  # one slice image shared by its objects
    stats = intensity_stats(volume)  # volume-wide statistics, the same for every slice
    np.testing.assert_array_equal(ds[2].image, normalize_intensity(volume[2], stats))

    by_rows = build_dataset("folder", tmp_path, "all", axis=1)
    assert by_rows[0].name == "folder/vol.tif@y=2#obj-001"
    assert by_rows[0].image.shape == (4, 12)
    assert len(by_rows) == 3 + 2  # label 1 spans rows 2-4, label 2 rows 6-7


def test_folder_float_labels_must_be_whole_numbers(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    tifffile.imwrite(
        tmp_path / "images" / "vol.tif", _image((4, 10, 12), 3), photometric="minisblack"
    )
    labels = _label_volume().astype(np.float32).transpose()  # NIfTI file order (x, y, z)
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "labels" / "vol.nii.gz")
    assert len(build_dataset("folder", tmp_path, "all")) == 4
    with pytest.raises(DatasetError, match="axis must be 0, 1 or 2 .*vol.tif, got 3"):
        build_dataset("folder", tmp_path, "all", axis=3)
    nib.save(nib.Nifti1Image(labels * 0.5, np.eye(4)), tmp_path / "labels" / "vol.nii.gz")
    with pytest.raises(DatasetError, match=r"whole numbers: .*vol\.nii\.gz has dtype float32"):
        build_dataset("folder", tmp_path, "all")


def test_folder_split_by_file(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for i in range(5):
        Image.fromarray(_image((20, 24), i)).save(tmp_path / "images" / f"img{i}.tif")
        Image.fromarray(_instances_2d()).save(tmp_path / "labels" / f"img{i}_mask.png")
    train, test = (build_dataset("folder", tmp_path, s) for s in ("train", "test"))
    assert sorted(set(train.groups)) == [f"folder/img{i}" for i in range(4)]
    assert set(test.groups) == {"folder/img4"}
    test = build_dataset("folder", tmp_path, "test", test_fraction=0.4)
    assert set(test.groups) == {"folder/img3", "folder/img4"}


# --- oaizib -----------------------------------------------------------------------------


def test_oaizib_layout_labels_and_split(tmp_path):
    names = _write_oaizib(tmp_path, 5)
    train = build_dataset("oaizib", tmp_path, "train")
    test = build_dataset("oaizib", tmp_path, "test")
    assert len(train) == 4 * 4 and len(test) == 4  # 2 planes x 2 labels per volume
    assert test.names == [
        f"oaizib/{names[-1]}.mhd@z={z}#label-{v:03d}" for z in (1, 2) for v in (1, 2)
    ]
    femoral = build_dataset("oaizib", tmp_path, "test", labels=[1])
    assert [int(s.mask.sum()) for s in femoral] == [12, 12]

    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps({"train": names[1:], "test": [names[0]]}))
    test = build_dataset("oaizib", tmp_path, "test", split_file=split_file)
    assert set(test.groups) == {f"oaizib/{names[0]}"}


def test_oaizib_nifti_sliced_along_another_axis(tmp_path):
    _write_oaizib(tmp_path, 2, suffix=".nii.gz")
    ds = build_dataset("oaizib", tmp_path, "all", axis=2, min_area=3)
    assert {s.image.shape for s in ds} == {(4, 10)}
    assert all(s.mask.sum() >= 3 for s in ds)
    assert len(ds) == 2 * (4 + 3)  # label 1 spans columns 2-5, label 2 columns 7-9


# --- generated sstem / brats layouts ----------------------------------------------------


def _write_sstem(root: Path) -> None:
    for sub in ("raw", "mitochondria", "membranes", "synapses"):
        (root / "stack1" / sub).mkdir(parents=True)
    for i in range(20):
        tifffile.imwrite(root / "stack1" / "raw" / f"{i:02d}.tif", _image((16, 16), i))
        mito = np.zeros((16, 16), np.uint8)
        mito[2:5, 2:5] = 255
        mito[9:12, 9:12] = 128  # anti-aliased grey still counts as foreground
        Image.fromarray(mito).save(root / "stack1" / "mitochondria" / f"{i:02d}.png")
        membranes = np.zeros((16, 16), bool)
        membranes[:, 8] = True
        Image.fromarray(membranes).save(root / "stack1" / "membranes" / f"{i:02d}.png")


def test_sstem_layout_split_and_kinds(tmp_path):
    _write_sstem(tmp_path)
    test = build_dataset("sstem", tmp_path, "test")
    assert len(test) == 4 * 2
    assert test.names[0] == "sstem/stack1/16.tif#mito-001"
    assert set(test.groups) == {"sstem/stack1"}
    assert len(build_dataset("sstem", tmp_path, "train")) == 16 * 2
    cells = build_dataset("sstem", tmp_path, "all", kind="cells", min_area=0)
    assert len(cells) == 20 * 2 and {int(s.mask.sum()) for s in cells} == {8 * 16, 7 * 16}
    with pytest.raises(DatasetError, match="No objects in sstem.*kind=cells, min_area=400"):
        build_dataset("sstem", tmp_path, "all", kind="cells")
    with pytest.raises(DatasetError, match=r"No such image file: .*synapses/00\.png"):
        build_dataset("sstem", tmp_path, "train", kind="synapses")


def test_sstem_missing_layout_says_what_is_expected(tmp_path):
    with pytest.raises(DatasetError, match=r"Expected stack1/raw/\*\.tif under"):
        build_dataset("sstem", tmp_path)


def _write_brats_case(root: Path, case: str, *, year_2012: bool) -> None:
    labels = np.zeros((6, 10, 12), np.uint8)  # (z, y, x)
    labels[2, 2:9, 2:10] = 2  # 56 px
    labels[3, 1:3, 1:3] = 1  # 4 px
    labels[3, 6:9, 6:9] = 4 if not year_2012 else 2  # 9 px, a separate component
    image = _image(labels.shape, 7, np.int16)
    (root / case).mkdir(parents=True)
    if year_2012:
        stem = case.replace("BRATS2012_", "BRATS_")
        for key, array in (("FLAIR", image), ("T1C", image + 1), ("truth", labels)):
            sitk.WriteImage(sitk.GetImageFromArray(array), str(root / case / f"{stem}_{key}.mha"))
    else:
        for key, array in (("flair", image), ("t1ce", image + 1), ("seg", labels)):
            img = nib.Nifti1Image(array.transpose(), np.diag([-1.0, -1.0, 1.0, 1.0]))
            nib.save(img, root / case / f"{case}_{key}.nii.gz")


@pytest.fixture
def brats_root(tmp_path: Path) -> Path:
    for case in BRATS_SPLIT_CASES["train"]:
        _write_brats_case(tmp_path, case, year_2012=False)
    _write_brats_case(tmp_path, BRATS_SPLIT_CASES["test"][0], year_2012=True)
    return tmp_path


def test_brats_layout_targets_and_objects(brats_root):
    train = build_dataset("brats", brats_root, "train", min_area=0)
    assert train.names[:2] == [
        "brats/Brats18_2013_2_1/Brats18_2013_2_1_flair.nii.gz@z=2#wt-001",
        "brats/Brats18_2013_2_1/Brats18_2013_2_1_flair.nii.gz@z=3#wt-001",
    ]
    assert [int(s.mask.sum()) for s in train] == [56, 13] * 2
    assert len(build_dataset("brats", brats_root, "train")) == 2  # default min_area 50
    parts = build_dataset("brats", brats_root, "test", min_area=0, objects="components")
    assert [int(s.mask.sum()) for s in parts] == [56, 4, 9]
    assert set(parts.groups) == {"brats/BRATS2012_HG0015"}
    core = build_dataset("brats", brats_root, "test", min_area=0, target="tc", modality="t1ce")
    assert [int(s.mask.sum()) for s in core] == [56, 9]  # BRATS 2012 core = label 2
    et = build_dataset("brats", brats_root, "train", min_area=0, target="et")
    assert [int(s.mask.sum()) for s in et] == [9, 9]
    with pytest.raises(DatasetError, match="'et' is not defined for BRATS 2012"):
        build_dataset("brats", brats_root, "test", target="et")


def test_brats_missing_case_and_file(brats_root):
    (brats_root / "BRATS2012_HG0015" / "BRATS_HG0015_FLAIR.mha").unlink()
    with pytest.raises(DatasetError, match=r"Expected one \*_flair image file in .*HG0015"):
        build_dataset("brats", brats_root, "test")
    for path in (brats_root / "Brats18_2013_2_1").iterdir():
        path.unlink()
    (brats_root / "Brats18_2013_2_1").rmdir()
    with pytest.raises(DatasetError, match="case folder.*Brats18_2013_2_1.*'train' split"):
        build_dataset("brats", brats_root, "train")


# --- ObjectDataset ----------------------------------------------------------------------


def test_object_dataset_subsets_and_describe(folder_2d):
    ds = build_dataset("folder", folder_2d, "all")
    assert isinstance(ds, ObjectDataset) and len(list(ds)) == len(ds) == 6
    assert ds[-1].name == ds[5].name
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(ValueError, match="read-only"):
        ds[0].image[0, 0] = 1.0

    sub = ds.subset([4, 1])
    assert sub.names == [ds.names[4], ds.names[1]]
    assert len(sub._slices) == 2 and sub[1].image is ds[1].image
    assert ds[3:].names == ds.names[3:] and len(ds[3:]._slices) == 1

    first, again = ds.random_subset(3, seed=1), ds.random_subset(3, seed=1)
    assert first.names == again.names and len(first) == 3
    assert first.names == [n for n in ds.names if n in set(first.names)]  # dataset order
    assert len(ds.random_subset(100, seed=0)) == 6

    text = ds.describe()
    assert "folder [split=all" in text and "6 objects on 2 slices from 2 group(s)" in text
    assert "min 1, median 12, max 64" in text and "20x24 (1)" in text


# --- roots and errors -------------------------------------------------------------------


def test_data_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTIVECLICK_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("ADAPTIVECLICK_DATA")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    monkeypatch.chdir(checkout)  # commands run from the repository root
    assert default_data_root() == (tmp_path / "shared" / "data").resolve()
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert (
        default_data_root() == (Path(__file__).resolve().parents[2] / "shared" / "data").resolve()
    )
    assert dataset_subdir("sstem") == "sstem-drosophila-vnc" and dataset_subdir("folder") is None
    (tmp_path / "sstem-drosophila-vnc").mkdir()
    assert dataset_root("sstem", tmp_path) == tmp_path / "sstem-drosophila-vnc"
    assert dataset_root("brats", tmp_path) == tmp_path  # already the dataset folder
    with pytest.raises(DatasetError, match="does not exist"):
        dataset_root("folder", tmp_path / "nowhere")


def test_unknown_names_options_and_values(folder_2d):
    with pytest.raises(DatasetError, match="'coco'.*" + ".*".join(DATASET_NAMES)):
        build_dataset("coco", folder_2d)
    with pytest.raises(DatasetError, match="'validation'.*'train', 'test', 'all'"):
        build_dataset("folder", folder_2d, "validation")
    with pytest.raises(DatasetError, match="kind for dataset 'folder'.*split_file, test_fraction"):
        build_dataset("folder", folder_2d, kind="cells")
    with pytest.raises(DatasetError, match="'nuclei'.*'mitochondria', 'cells', 'synapses'"):
        build_dataset("sstem", folder_2d, kind="nuclei")
    with pytest.raises(DatasetError, match="'dwi'.*'flair'"):
        build_dataset("brats", folder_2d, modality="dwi")
    with pytest.raises(DatasetError, match=r"test_fraction must be in \[0, 1\)"):
        build_dataset("folder", folder_2d, "test", test_fraction=1.5)
    with pytest.raises(DatasetError, match="min_area must be >= 0"):
        build_dataset("folder", folder_2d, min_area=-1)


def test_layout_errors_name_files(folder_2d):
    (folder_2d / "labels" / "rgb.png").unlink()
    with pytest.raises(DatasetError, match=r"No label file in .*labels for 1 image\(s\): rgb\.png"):
        build_dataset("folder", folder_2d, "all")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder_2d / "labels" / "rgb.png")
    with pytest.raises(
        DatasetError, match=r"images/rgb\.png is \(20, 24\), .*rgb\.png is \(8, 8\)"
    ):
        build_dataset("folder", folder_2d, "all")
    (folder_2d / "labels" / "rgb.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"Cannot read .*labels/rgb\.png"):
        build_dataset("folder", folder_2d, "all")
    (folder_2d / "split.json").write_text(json.dumps({"train": ["cells"], "test": ["other"]}))
    with pytest.raises(DatasetError, match="names other, not found among the images"):
        build_dataset("folder", folder_2d, "test", split_file=folder_2d / "split.json")


def test_missing_folders_are_named(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="Expected images/ and labels/"):
        build_dataset("oaizib", tmp_path)
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError, match=r"Expected image files in .*images"):
        build_dataset("folder", tmp_path)


# --- real data (SOURCE.md counts) -------------------------------------------------------


@pytest.mark.data
def test_sstem_mitochondria_counts(shared_data):
    everything = build_dataset("sstem", shared_data, "all")
    assert len(everything) == 391  # SOURCE.md: 4-connected components in 20 slices
    assert everything.areas.min() == 205  # SOURCE.md: smallest mitochondrion
    test = build_dataset("sstem", shared_data, "test")
    slices = {name.split("#")[0] for name in test.names}
    assert slices == {f"sstem/stack1/{i}.tif" for i in range(16, 20)}
    assert len(test) == 82  # so 309 in the train split
    sample = test[0]
    assert sample.image.shape == (1024, 1024) and sample.image.dtype == np.float32
    assert sample.mask.sum() == test.areas[0]


@pytest.mark.data
def test_sstem_cell_and_synapse_counts(shared_data):
    cells = build_dataset("sstem", shared_data, "all", kind="cells", min_area=0)
    assert len(cells) == 4833  # SOURCE.md: components of ~membranes
    # The default min_area 400 keeps 3813; SOURCE.md's "3811 >= 400 px" counts > 400 px.
    assert (cells.areas >= 400).sum() == 3813 and (cells.areas > 400).sum() == 3811
    # SOURCE.md says 172 synapse components; the PNGs hold 184 (4- and 8-connected alike).
    assert len(build_dataset("sstem", shared_data, "all", kind="synapses")) == 184


@pytest.mark.data
def test_brats_counts(shared_data):
    test = build_dataset("brats", shared_data, "test", min_area=0)
    assert len(test) == 80  # SOURCE.md: tumour on 80 axial slices, z 71-150
    assert test.names[0].endswith("BRATS_HG0015_FLAIR.mha@z=71#wt-001")
    assert test[0].image.shape == (216, 160)
    assert len(build_dataset("brats", shared_data, "train", min_area=0)) == 58 + 76
    components = build_dataset("brats", shared_data, "all", objects="components")
    assert len(components) == 270  # SOURCE.md: 94 + 82 + 94 components >= 50 px
    with pytest.raises(DatasetError, match="'et' is not defined for BRATS 2012"):
        build_dataset("brats", shared_data, "all", target="et")
