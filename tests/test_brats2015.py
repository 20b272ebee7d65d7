"""The ``brats2015`` dataset (DeepMedic copies of BRATS 2015) on a tiny generated case."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_adaptiveclick.learning.datasets import DatasetError, build_dataset

CASE = "brats_2013_pat0001_1"
OUTSIDE = -4.0  # the z-scored copies fill the outside of the brain with the volume minimum


def _labels() -> np.ndarray:
    """(5, 16, 18) labels (z, y, x): 1 necrosis, 2 edema, 3 non-enhancing, 4 enhancing.

    z=1: edema 80 px holding 6 px of enhancing tumour; z=2: necrosis (9 px) and a separate
    non-enhancing piece (20 px); z=3: edema only (20 px).
    """
    labels = np.zeros((5, 16, 18), np.uint8)
    labels[1, 2:10, 2:12] = 2
    labels[1, 4:6, 4:7] = 4
    labels[2, 2:5, 2:5] = 1
    labels[2, 10:14, 10:15] = 3
    labels[3, 8:12, 3:8] = 2
    return labels


def _z_scored(labels: np.ndarray, seed: int) -> np.ndarray:
    """Brain (rows 1..14, cols 1..16) z-scored with brighter tumour; OUTSIDE elsewhere."""
    rng = np.random.default_rng(seed)
    image = np.full(labels.shape, OUTSIDE, np.float32)
    brain = np.s_[:, 1:15, 1:17]
    image[brain] = np.clip(rng.normal(0.0, 1.0, image[brain].shape), -3, 3)
    return np.where(labels > 0, image + 2.0, image).astype(np.float32)


def _save(array: np.ndarray, path: Path) -> None:
    nib.save(nib.Nifti1Image(array.transpose(), np.eye(4)), path)


@pytest.fixture
def shared_root(tmp_path: Path) -> Path:
    """A shared data root holding ``brats2015-deepmedic/<CASE>/`` with both modalities."""
    case = tmp_path / "brats2015-deepmedic" / CASE
    case.mkdir(parents=True)
    labels = _labels()
    _save(_z_scored(labels, 0), case / "Flair_subtrMeanDivStd.nii.gz")
    _save(_z_scored(labels, 1), case / "T1c_subtrMeanDivStd.nii.gz")
    _save(labels, case / "OTMultiClass.nii.gz")
    return tmp_path


def _areas(dataset) -> list[int]:
    return [int(sample.mask.sum()) for sample in dataset]


def test_objects_per_target(shared_root):
    whole = build_dataset("brats2015", shared_root, "train", min_area=0)
    assert _areas(whole) == [80, 29, 20]  # any label > 0, one object per slice
    assert whole.names == [
        f"brats2015/{CASE}/Flair_subtrMeanDivStd.nii.gz@z={z}#wt-001" for z in (1, 2, 3)
    ]
    assert set(whole.groups) == {f"brats2015/{CASE}"}
    core = build_dataset("brats2015", shared_root, "train", min_area=0, target="tc")
    assert _areas(core) == [6, 29]  # labels 1, 3, 4
    enhancing = build_dataset("brats2015", shared_root, "train", min_area=0, target="et")
    assert _areas(enhancing) == [6] and enhancing.names[0].endswith("@z=1#et-001")
    assert _areas(build_dataset("brats2015", shared_root, "train")) == [80]  # min_area 50
    everything = build_dataset("brats2015", shared_root, "all", min_area=0)
    assert everything.names == whole.names  # every case is a training case


def test_components_mode_splits_each_region(shared_root):
    parts = build_dataset("brats2015", shared_root, "train", min_area=0, objects="components")
    assert _areas(parts) == [80, 9, 20, 20]
    assert [name.rsplit("@", 1)[1] for name in parts.names] == [
        "z=1#wt-001",
        "z=2#wt-001",
        "z=2#wt-002",
        "z=3#wt-001",
    ]


def test_modalities_and_normalisation(shared_root):
    for modality in ("t1c", "t1ce"):
        t1c = build_dataset("brats2015", shared_root, "train", min_area=0, modality=modality)
        assert all("/T1c_subtrMeanDivStd.nii.gz@" in name for name in t1c.names)
    flair = build_dataset("brats2015", shared_root, "train", min_area=0)
    assert not np.array_equal(flair[0].image, t1c[0].image)
    image = flair[0].image
    assert image.dtype == np.float32 and image.shape == (16, 18)
    assert 0.0 <= image.min() and image.max() <= 1.0 and not image.flags.writeable
    # Statistics come from the brain, and the outside maps to 0.
    assert image[0, 0] == 0.0 and image[15, 17] == 0.0
    assert image[1:15, 1:17].std() > 0.05


def test_no_test_split(shared_root):
    with pytest.raises(DatasetError, match="brats2015 has no test cases.*brats test split"):
        build_dataset("brats2015", shared_root, "test")


@pytest.mark.parametrize(
    ("missing", "options"),
    [
        ("OTMultiClass.nii.gz", {}),
        ("Flair_subtrMeanDivStd.nii.gz", {}),
        ("T1c_subtrMeanDivStd.nii.gz", {"modality": "t1c"}),
    ],
)
def test_missing_file_is_named(shared_root, missing, options):
    (shared_root / "brats2015-deepmedic" / CASE / missing).unlink()
    with pytest.raises(DatasetError, match=rf"Expected {missing} in .*{CASE}"):
        build_dataset("brats2015", shared_root, "train", **options)


def test_bad_options_and_empty_folder(shared_root, tmp_path):
    with pytest.raises(DatasetError, match="Unknown brats2015 target 'ncr'"):
        build_dataset("brats2015", shared_root, target="ncr")
    with pytest.raises(DatasetError, match="Unknown brats2015 modality 't2'"):
        build_dataset("brats2015", shared_root, modality="t2")
    with pytest.raises(DatasetError, match="Unknown option.*kind"):
        build_dataset("brats2015", shared_root, kind="cells")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="Expected BRATS 2015 case folders"):
        build_dataset("brats2015", empty)


def test_the_range_comes_from_the_brain_even_when_the_outside_is_most_of_the_volume(tmp_path):
    """A small brain in a large outside: the brain's 0.5 / 99.5 percentiles map to 0 / 1
    (over the whole volume the outside would pull the upper bound down and clip tumour)."""
    case = tmp_path / "brats2015-deepmedic" / CASE
    case.mkdir(parents=True)
    labels = np.zeros((3, 60, 60), np.uint8)
    labels[1, 10:14, 10:14] = 2
    rng = np.random.default_rng(3)
    image = np.full(labels.shape, OUTSIDE, np.float32)
    image[:, 8:18, 8:18] = rng.normal(0.0, 1.0, (3, 10, 10))  # the brain: 8 % of the volume
    _save(image, case / "Flair_subtrMeanDivStd.nii.gz")
    _save(labels, case / "OTMultiClass.nii.gz")
    [sample] = build_dataset("brats2015", tmp_path, "train", min_area=0)
    brain = image[:, 8:18, 8:18]
    lo, hi = np.percentile(brain, [0.5, 99.5])
    plane = np.clip((image[1, 8:18, 8:18] - lo) / (hi - lo), 0, 1)
    assert np.allclose(sample.image[8:18, 8:18], plane, atol=1e-5)
