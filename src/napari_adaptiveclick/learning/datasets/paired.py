"""Datasets of ``images/`` and a label folder with matching file names.

- ``oaizib``: ``images/*`` and ``segmentations/*`` (or ``labels/``) volumes; each non-zero
  label of a slice is one object. Split by volume.
- ``folder``: ``images/*`` and ``labels/*``, 2D or 3D; labels are instance ids, or binary
  masks split into 4-connected components. Split by file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick.learning.datasets.base import (
    Collector,
    DatasetError,
    ObjectDataset,
    checked_labels,
    components,
    dataset_title,
    file_stem,
    image_files,
    read_volume,
)

_LABEL_DIRS = ("labels", "segmentations", "segmentation_masks", "masks")


def _pair_by_name(
    images: list[Path], labels: list[Path], label_dir: Path
) -> list[tuple[Path, Path]]:
    """Label file of each image: same name, or that name followed by a suffix after '.', '_'
    or '-' (``9001104.segmentation_masks.mhd``, ``case_seg.nii.gz``). Each label goes to the
    image with the longest matching name."""
    stems = {file_stem(p): p for p in images}
    paired: dict[str, Path] = {}
    for label in labels:
        stem = file_stem(label)
        owners = [s for s in stems if stem == s or (stem.startswith(s) and stem[len(s)] in "._-")]
        if not owners:
            continue
        owner = max(owners, key=len)
        if owner in paired:
            raise DatasetError(
                f"Two label files match image {stems[owner].name}: {paired[owner].name} and "
                f"{label.name}."
            )
        paired[owner] = label
    missing = [stems[s].name for s in stems if s not in paired]
    if missing:
        raise DatasetError(
            f"No label file in {label_dir} for {len(missing)} image(s): "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (expected the same "
            "name, e.g. images/a.tif -> labels/a.tif)."
        )
    return [(stems[s], paired[s]) for s in stems]


def _split_names(
    names: list[str], split: str, split_file: str | os.PathLike | None, test_fraction: float
) -> list[str]:
    """Names of ``split``: from a JSON ``{"train": [...], "test": [...]}`` file, or the last
    ``test_fraction`` of the sorted names as test (at least one, never all, when there are
    two or more)."""
    names = sorted(names)
    if split == "all":
        return names
    if split_file is not None:
        try:
            chosen = json.loads(Path(split_file).read_text())[split]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DatasetError(
                f"Cannot read the {split!r} list from split file {split_file} "
                f'(expected JSON {{"train": [...], "test": [...]}}): {err}'
            ) from err
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise DatasetError(
                f"Split file {split_file} names {', '.join(unknown[:5])}, not found among the "
                f"images ({', '.join(names[:5])}{' ...' if len(names) > 5 else ''})."
            )
        return [n for n in names if n in set(chosen)]
    if not 0.0 <= test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be in [0, 1), got {test_fraction}.")
    n_test = 0
    if test_fraction > 0.0 and len(names) >= 2:
        n_test = min(max(round(len(names) * test_fraction), 1), len(names) - 1)
    return names[len(names) - n_test :] if split == "test" else names[: len(names) - n_test]


def _paired_layout(root: Path, dataset: str) -> tuple[list[Path], list[Path], Path]:
    image_dir = root / "images"
    label_dir = next((root / d for d in _LABEL_DIRS if (root / d).is_dir()), None)
    if not image_dir.is_dir() or label_dir is None:
        raise DatasetError(
            f"Expected images/ and labels/ (or {', '.join(_LABEL_DIRS[1:])}) folders under "
            f"{root} for dataset {dataset!r}."
        )
    images, labels = image_files(image_dir), image_files(label_dir)
    if not images:
        raise DatasetError(f"Expected image files in {image_dir} (e.g. .tif, .nii.gz, .mhd).")
    return images, labels, label_dir


def _build_paired(
    dataset: str,
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    *,
    id_maps: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]],
    tag: str,
    split_file: str | os.PathLike | None,
    test_fraction: float,
    **settings: Any,
) -> ObjectDataset:
    """Datasets with ``images/`` and a label folder of matching names (oaizib, folder).
    ``id_maps(label_volume)`` returns the function giving a label plane's object ids."""
    images, labels, label_dir = _paired_layout(root, dataset)
    pairs = _pair_by_name(images, labels, label_dir)
    chosen = set(_split_names([file_stem(p) for p, _ in pairs], split, split_file, test_fraction))
    min_area = 0 if min_area is None else min_area
    collector = Collector()
    for image_path, label_path in pairs:
        if file_stem(image_path) not in chosen:
            continue
        image = read_volume(image_path)
        label_data = checked_labels(image, read_volume(label_path))
        collector.add_volume(
            image,
            label_data,
            id_maps(label_data),
            axis=0 if axis is None else axis,
            source=f"{dataset}/{image_path.name}",
            group=f"{dataset}/{file_stem(image_path)}",
            tag=tag,
            min_area=min_area,
        )
    return collector.build(
        dataset_title(
            dataset,
            split,
            axis=axis,
            min_area=min_area,
            split_file=split_file,
            test_fraction=None if split_file else test_fraction,
            **settings,
        )
    )


def build_oaizib(
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    labels: Sequence[int] | None = None,
    split_file: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
) -> ObjectDataset:
    """Each non-zero label value (restricted to ``labels`` when given) of a slice is one
    object: OAI-ZIB femoral and tibial cartilage (SPEC.md section 4)."""
    keep = None if labels is None else tuple(sorted(int(v) for v in labels))

    def label_values(plane: np.ndarray) -> np.ndarray:
        return plane if keep is None else np.where(np.isin(plane, keep), plane, 0)

    return _build_paired(
        "oaizib",
        root,
        split,
        axis,
        min_area,
        id_maps=lambda volume: label_values,
        tag="label",
        split_file=split_file,
        test_fraction=test_fraction,
        labels=keep,
    )


def build_folder(
    root: Path,
    split: str,
    axis: int | None,
    min_area: int | None,
    split_file: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
) -> ObjectDataset:
    """Instance labels as they are; a binary label file (exactly 0 and one other value) is
    split into 4-connected components."""

    def id_maps(volume: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        foreground = volume[volume != 0]
        if foreground.size and np.all(foreground == foreground[0]):
            return lambda plane: components(plane != 0)
        return lambda plane: plane

    return _build_paired(
        "folder",
        root,
        split,
        axis,
        min_area,
        id_maps=id_maps,
        tag="obj",
        split_file=split_file,
        test_fraction=test_fraction,
    )
