"""``brats`` and ``brats2015``: brain tumour MRI, one object per target region and slice (or
per connected component of it).

- ``brats``: case folders with ``*_{flair,t1,t1ce,t2,seg}.nii.gz`` (BraTS 2017-2020 labels
  1/2/4) or ``*_{FLAIR,T1,T1C,T2,truth}.mha`` (BRATS 2012 labels 1 edema, 2 core). Split by
  case (SPEC.md section 5).
- ``brats2015``: the DeepMedic copies of BRATS 2015 cases:
  ``<case>/{Flair,T1c}_subtrMeanDivStd.nii.gz`` (z-scored inside the brain) with
  ``OTMultiClass.nii.gz`` (1 necrosis, 2 edema, 3 non-enhancing, 4 enhancing); whole tumour
  = any label > 0. All cases are training cases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from napari_adaptiveclick.interactive.transforms import intensity_stats
from napari_adaptiveclick.learning.datasets.base import (
    Collector,
    DatasetError,
    ObjectDataset,
    check_choice,
    checked_labels,
    components,
    dataset_title,
    file_stem,
    image_files,
    read_volume,
)

BRATS_SPLIT_CASES = {
    "train": ("Brats18_2013_2_1", "Brats18_TCIA05_396_1"),
    "test": ("BRATS2012_HG0015",),
}
# BraTS label file suffix -> target -> label values. 2017-2020: 1 NCR/NET, 2 edema, 4 ET.
# BRATS 2012: 1 edema, 2 active tumour/core (no separate enhancing label).
_BRATS_TARGETS = {
    "seg": {"wt": (1, 2, 4), "tc": (1, 4), "et": (4,)},
    "truth": {"wt": (1, 2), "tc": (2,)},
}
_BRATS_MODALITIES = {"flair": ("flair",), "t1": ("t1",), "t1ce": ("t1ce", "t1c"), "t2": ("t2",)}
# BRATS 2013/2015 (DeepMedic copies): 1 necrosis, 2 edema, 3 non-enhancing, 4 enhancing.
_BRATS2015_TARGETS = {"wt": (1, 2, 3, 4), "tc": (1, 3, 4), "et": (4,)}
_BRATS2015_MODALITIES = {"flair": "Flair", "t1c": "T1c", "t1ce": "T1c"}
_BRATS2015_LABELS = "OTMultiClass.nii.gz"


def _check_options(
    name: str, modality: str, modalities, target: str, objects: str, min_area: int | None
) -> int:
    """Check the options shared by the BraTS layouts; returns min_area (default 50)."""
    check_choice(f"{name} modality", modality, modalities)
    check_choice(f"{name} target", target, ("wt", "tc", "et"))
    check_choice(f"{name} objects", objects, ("slice", "components"))
    return 50 if min_area is None else min_area


def build_brats(
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    modality: str = "flair",
    target: str = "wt",
    objects: str = "slice",
) -> ObjectDataset:
    """BraTS 2017-2020 and BRATS 2012 cases; ``target`` wt, tc or et (not for 2012 labels)."""
    min_area = _check_options("brats", modality, _BRATS_MODALITIES, target, objects, min_area)
    if split == "all":
        cases = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    else:
        cases = [root / case for case in BRATS_SPLIT_CASES[split]]
        missing = [c.name for c in cases if not c.is_dir()]
        if missing:
            raise DatasetError(
                f"Expected case folder(s) {', '.join(missing)} under {root} for the {split!r} "
                "split (SPEC.md section 5)."
            )
    if not cases:
        raise DatasetError(f"Expected BraTS case folders under {root}.")
    plans = []  # check every case's files and labels before reading any volume
    for case in cases:
        label_path = _brats_file(case, tuple(_BRATS_TARGETS), "*_seg or *_truth")
        values = _BRATS_TARGETS[_suffix(label_path)].get(target)
        if values is None:
            raise DatasetError(
                f"Target {target!r} is not defined for BRATS 2012 labels ({label_path.name}: "
                "1 edema, 2 core); use target 'wt' or 'tc', or leave this case out."
            )
        image_path = _brats_file(case, _BRATS_MODALITIES[modality], f"*_{modality}")
        plans.append((case, image_path, label_path, values))

    collector = Collector()
    for case, image_path, label_path, values in plans:
        image = read_volume(image_path)
        collector.add_volume(
            image,
            checked_labels(image, read_volume(label_path)),
            _brats_id_maps(values, objects),
            axis=0 if axis is None else axis,
            source=f"brats/{case.name}/{image_path.name}",
            group=f"brats/{case.name}",
            tag=target,
            min_area=min_area,
            follow=objects != "components",
        )
    settings = dict(modality=modality, target=target, objects=objects, axis=axis)
    return collector.build(dataset_title("brats", split, **settings, min_area=min_area))


def build_brats2015(
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    modality: str = "flair",
    target: str = "wt",
    objects: str = "slice",
) -> ObjectDataset:
    """BRATS 2015 cases in the DeepMedic layout (SOURCE.md of ``brats2015-deepmedic``). The
    images are z-scored inside the brain, so the volume statistics come from the brain
    (every voxel above the volume's minimum, which fills the outside) and the outside maps to
    0."""
    min_area = _check_options(
        "brats2015", modality, _BRATS2015_MODALITIES, target, objects, min_area
    )
    if split == "test":
        raise DatasetError(
            "brats2015 has no test cases: all six are training cases (SPEC.md section 5); "
            "evaluate on the brats test split instead."
        )
    cases = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    prefix = _BRATS2015_MODALITIES[modality]
    plans = []
    for case in cases:
        image_path = case / f"{prefix}_subtrMeanDivStd.nii.gz"
        label_path = case / _BRATS2015_LABELS
        missing = [p.name for p in (image_path, label_path) if not p.is_file()]
        if missing:
            raise DatasetError(
                f"Expected {', '.join(missing)} in {case} (the DeepMedic BRATS 2015 layout)."
            )
        plans.append((case, image_path, label_path))
    if not plans:
        raise DatasetError(f"Expected BRATS 2015 case folders under {root}.")
    collector = Collector()
    for case, image_path, label_path in plans:
        image = read_volume(image_path)
        data = np.asarray(image.data, np.float32)
        brain = data > data.min()  # outside the brain, the z-scored copies hold one value
        if not brain.any():
            raise DatasetError(f"Image {image_path} is constant: nothing to segment.")
        lo, hi = intensity_stats(data[brain])
        data = np.where(brain, data, lo)
        collector.add_volume(
            dataclasses.replace(image, data=data),
            checked_labels(image, read_volume(label_path)),
            _brats_id_maps(_BRATS2015_TARGETS[target], objects),
            axis=0 if axis is None else axis,
            source=f"brats2015/{case.name}/{image_path.name}",
            group=f"brats2015/{case.name}",
            tag=target,
            min_area=min_area,
            stats=(lo, hi),
            follow=objects != "components",
        )
    settings = dict(modality=modality, target=target, objects=objects, axis=axis)
    return collector.build(dataset_title("brats2015", split, **settings, min_area=min_area))


def _brats_id_maps(values: tuple[int, ...], objects: str) -> Callable[[np.ndarray], np.ndarray]:
    """Object ids of a label plane: the target region as one object, or its components."""

    def to_id_map(plane: np.ndarray) -> np.ndarray:
        region = np.isin(plane, values)
        return components(region) if objects == "components" else region.astype(np.uint8)

    return to_id_map


def _suffix(path: Path) -> str:
    """Lower-case last ``_`` part of the stem: ``Brats18_x_t1ce.nii.gz`` -> ``t1ce``."""
    return file_stem(path).rsplit("_", 1)[-1].lower()


def _brats_file(case: Path, suffixes: tuple[str, ...], expected: str) -> Path:
    found = [p for p in image_files(case) if _suffix(p) in suffixes]
    if len(found) != 1:
        problem = "found none" if not found else f"found {', '.join(p.name for p in found)}"
        raise DatasetError(f"Expected one {expected} image file in {case}; {problem}.")
    return found[0]
