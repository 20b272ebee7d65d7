"""3D objects of the shared data for propagation experiments: BraTS whole tumour and tumour
core, ssTEM mitochondria that span several planes (SPEC.md section 5 split).

Each :class:`Object3D` is one connected object in a ``(plane, row, col)`` volume cut along
axis 0 (axial MRI slices, EM sections), with the volume's intensity range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_adaptiveclick.interactive.transforms import IntensityStats, intensity_stats
from napari_adaptiveclick.learning.datasets.base import DatasetError, read_volume
from napari_adaptiveclick.learning.datasets.brats import BRATS_SPLIT_CASES
from napari_adaptiveclick.learning.datasets.sstem import SSTEM_TEST_SLICES


@dataclass(frozen=True)
class Object3D:
    """``truth`` (P, R, C) bool of one connected object in ``image`` (P, R, C) float32."""

    name: str
    image: np.ndarray
    truth: np.ndarray
    stats: IntensityStats

    @property
    def planes(self) -> np.ndarray:
        """Indices of the planes where the object has pixels."""
        return np.flatnonzero(self.truth.reshape(len(self.truth), -1).any(1))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of ``mask`` (3D bool)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


# case layout -> (modality file suffix, label values) per target; see datasets/brats.py
_BRATS = {
    "seg": {"wt": ("flair", (1, 2, 4)), "tc": ("t1ce", (1, 4))},
    "truth": {"wt": ("FLAIR", (1, 2)), "tc": ("T1C", (2,))},
}
_BRATS2015 = {"wt": ("Flair", (1, 2, 3, 4)), "tc": ("T1c", (1, 3, 4))}


def _one_file(case: Path, suffix: str) -> Path:
    found = [p for p in case.iterdir() if p.name.split(".")[0].endswith(f"_{suffix}")]
    if len(found) != 1:
        raise DatasetError(f"Expected one *_{suffix} image in {case}, found {len(found)}.")
    return found[0]


def brats_objects(root: Path, split: str, targets=("wt", "tc")) -> list[Object3D]:
    """Whole tumour (FLAIR) and tumour core (T1ce) of each case of ``split``: ``brats`` cases
    of the split and, for ``train``, the ``brats2015-deepmedic`` cases; the largest connected
    part of each target is the object."""
    objects = []
    for name in BRATS_SPLIT_CASES[split]:
        case = root / "brats" / name
        label_file = next((p for p in case.iterdir() if "_seg." in p.name), None)
        layout = "seg" if label_file is not None else "truth"
        label_file = label_file or _one_file(case, "truth")
        labels = np.asarray(read_volume(label_file).data)
        for target in targets:
            modality, values = _BRATS[layout][target]
            image = np.asarray(read_volume(_one_file(case, modality)).data, np.float32)
            truth = largest_component(np.isin(labels, values))
            objects.append(Object3D(f"brats/{name}/{target}", image, truth, intensity_stats(image)))
    if split == "train":
        for case in sorted((root / "brats2015-deepmedic").glob("*/OTMultiClass.nii.gz")):
            labels = np.asarray(read_volume(case).data)
            for target in targets:
                prefix, values = _BRATS2015[target]
                image = np.asarray(
                    read_volume(case.parent / f"{prefix}_subtrMeanDivStd.nii.gz").data, np.float32
                )
                brain = image > image.min()  # z-scored inside the brain (datasets/brats.py)
                stats = intensity_stats(image[brain])
                image = np.where(brain, image, stats[0]).astype(np.float32)
                truth = largest_component(np.isin(labels, values))
                name = f"brats2015/{case.parent.name}/{target}"
                objects.append(Object3D(name, image, truth, stats))
    return objects


def sstem_objects(
    root: Path, split: str, min_planes: int = 2, min_area: int = 100, limit: int | None = None
) -> list[Object3D]:
    """Mitochondria of ssTEM stack 1 as 3D objects: face-connected components of the
    stacked masks of the split's planes (train 00-15, test 16-19, all 00-19) that span at least
    ``min_planes`` planes with at least ``min_area`` pixels on their largest plane. The
    largest ``limit`` objects (by volume) are kept."""
    stack = root / "sstem-drosophila-vnc" / "stack1"
    raws = sorted((stack / "raw").glob("*.tif"))
    if not raws:
        raise DatasetError(f"Expected stack1/raw/*.tif under {root / 'sstem-drosophila-vnc'}.")
    all_images = np.stack([np.asarray(read_volume(p).data, np.float32) for p in raws])
    stats = intensity_stats(all_images)
    keep = [
        i
        for i, p in enumerate(raws)
        if split == "all" or (int(p.stem) in SSTEM_TEST_SLICES) == (split == "test")
    ]
    image = all_images[keep]
    masks = np.stack(
        [
            np.asarray(read_volume(stack / "mitochondria" / f"{raws[i].stem}.png").data) > 0
            for i in keep
        ]
    )
    labels, n = ndimage.label(masks)
    found = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        truth_box = labels[box] == index
        per_plane = truth_box.reshape(len(truth_box), -1).sum(1)
        if (per_plane > 0).sum() >= min_planes and per_plane.max() >= min_area:
            found.append((int(per_plane.sum()), index))
    found.sort(reverse=True)
    plane0 = keep[0]
    return [
        Object3D(f"sstem/stack1/mito{index}@{plane0:02d}", image, labels == index, stats)
        for _, index in found[:limit]
    ]
