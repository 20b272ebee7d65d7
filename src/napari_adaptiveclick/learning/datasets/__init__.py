"""Datasets: 2D object samples for training and evaluation, built from the real dataset
layouts and from synthetic scenes.

Every dataset is a list of objects; an object is one bool mask on one 2D slice, with the
slice normalised to float32 [0, 1] by its whole volume's statistics (:mod:`.base`).

Datasets (``build_dataset(name, root, split, ...)``; splits per SPEC.md section 5):

- ``sstem`` (:mod:`.sstem`): ``stack1/raw/NN.tif`` with
  ``stack1/{mitochondria,membranes,synapses}/NN.png``; objects are 4-connected components.
  Slices 00-15 train, 16-19 test.
- ``brats`` and ``brats2015`` (:mod:`.brats`): BraTS 2012 / 2017-2020 case folders, and the
  DeepMedic copies of BRATS 2015 cases; per slice the whole target region is one object (or
  its components). ``brats`` is split by case; all ``brats2015`` cases are training cases.
- ``oaizib`` and ``folder`` (:mod:`.paired`): ``images/*`` with a label folder of matching
  names; each label value (or each component of a binary mask) is one object. Split by file.
- ``synthetic`` (:mod:`.synthetic`): seeded scenes that belong to no microscope or scanner.

Every layout or data problem raises :class:`DatasetError` while the dataset is built, i.e.
before any training starts.

May import: ``interactive`` (intensity normalisation, boxes), ``io`` (image readers).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from napari_adaptiveclick.learning.datasets.base import (
    DatasetError,
    ObjectDataset,
    ObjectSample,
    check_choice,
)
from napari_adaptiveclick.learning.datasets.brats import (
    BRATS_SPLIT_CASES,
    build_brats,
    build_brats2015,
)
from napari_adaptiveclick.learning.datasets.paired import build_folder, build_oaizib
from napari_adaptiveclick.learning.datasets.sstem import SSTEM_TEST_SLICES, build_sstem
from napari_adaptiveclick.learning.datasets.synthetic import SyntheticDataset

DATASET_NAMES: tuple[str, ...] = ("sstem", "brats", "brats2015", "oaizib", "folder")
SPLITS: tuple[str, ...] = ("train", "test", "all")
_SUBDIRS = {
    "sstem": "sstem-drosophila-vnc",
    "brats": "brats",
    "brats2015": "brats2015-deepmedic",
    "oaizib": "oai-zib",
}
_BUILDERS: dict[str, tuple[Callable[..., ObjectDataset], tuple[str, ...]]] = {
    "sstem": (build_sstem, ("kind",)),
    "brats": (build_brats, ("modality", "target", "objects")),
    "brats2015": (build_brats2015, ("modality", "target", "objects")),
    "oaizib": (build_oaizib, ("labels", "split_file", "test_fraction")),
    "folder": (build_folder, ("split_file", "test_fraction")),
}

__all__ = [
    "BRATS_SPLIT_CASES",
    "DATASET_NAMES",
    "SPLITS",
    "SSTEM_TEST_SLICES",
    "DatasetError",
    "ObjectDataset",
    "ObjectSample",
    "SyntheticDataset",
    "build_dataset",
    "dataset_root",
    "dataset_subdir",
    "default_data_root",
]


def default_data_root() -> Path:
    """``$ADAPTIVECLICK_DATA`` if set, else ``../shared/data`` seen from the working
    directory, resolved: the shared data next to the repository, as the commands run from
    the repository root (the installed package cannot know where a checkout is)."""
    env = os.environ.get("ADAPTIVECLICK_DATA")
    if env:
        return Path(env)
    return (Path.cwd().parent / "shared" / "data").resolve()


def dataset_subdir(name: str) -> str | None:
    """Folder of dataset ``name`` inside the shared data root (None for ``folder``)."""
    check_choice("dataset name", name, DATASET_NAMES)
    return _SUBDIRS.get(name)


def dataset_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """The dataset's own folder: ``root`` may be the shared data root (its subfolder for
    ``name`` is used when present) or the dataset folder itself; None means
    :func:`default_data_root`."""
    base = Path(root) if root is not None else default_data_root()
    subdir = dataset_subdir(name)
    if subdir and (base / subdir).is_dir():
        base = base / subdir
    if not base.is_dir():
        raise DatasetError(
            f"Data folder {base} does not exist. Pass the {name} folder or the shared data "
            "root (or set ADAPTIVECLICK_DATA)."
        )
    return base


def build_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    split: str = "train",
    *,
    axis: int | None = None,
    min_area: int | None = None,
    **options: Any,
) -> ObjectDataset:
    """Load the objects of dataset ``name`` (one of :data:`DATASET_NAMES`) for ``split``
    ("train", "test" or "all").

    ``axis``: slicing axis of 3D volumes in napari order (default 0; not used by ``sstem``).
    ``min_area``: drop objects with fewer pixels (default per dataset: sstem cells 400, brats
    50, otherwise 0). Options per dataset:

    - sstem: ``kind`` "mitochondria" (default), "cells" or "synapses".
    - brats: ``modality`` "flair" (default), "t1", "t1ce", "t2"; ``target`` "wt" (default),
      "tc", "et"; ``objects`` "slice" (default: the target on a slice is one object) or
      "components".
    - oaizib: ``labels`` label values to use (default all non-zero); ``split_file``;
      ``test_fraction``.
    - folder: ``split_file``; ``test_fraction`` (default 0.2).
    - synthetic: ``kind`` "mix" (default) or one scene family; ``size``; ``length``;
      ``seed`` (see :class:`SyntheticDataset`; axis and min_area do not apply).

    Every dataset but synthetic also takes ``only`` and ``exclude``: shell patterns (several
    joined by ``|``) matched against the object names (``SOURCE#TAG-NNN``, e.g.
    ``sstem/stack1/14.tif#mito-003``), which keep or drop objects: a validation fold held out of
    the training split, e.g. ``exclude=brats2015/*pat0005*`` in training and
    ``only=brats2015/*pat0005*`` in the evaluation.

    ``split_file`` is a JSON file ``{"train": [names], "test": [names]}`` naming images by
    file name without extension; without it the last ``test_fraction`` of the sorted names
    are the test split. Raises :class:`DatasetError` for any layout, data or option problem.
    """
    only, exclude = options.pop("only", None), options.pop("exclude", None)
    if name == "synthetic":
        if axis is not None or min_area is not None or only or exclude:
            raise DatasetError("axis, min_area, only and exclude do not apply to synthetic data.")
        return SyntheticDataset(split, **options)
    check_choice("dataset name", name, DATASET_NAMES)
    check_choice("split", split, SPLITS)
    builder, accepted = _BUILDERS[name]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DatasetError(
            f"Unknown option(s) {', '.join(unknown)} for dataset {name!r}; it accepts "
            f"{', '.join(accepted) or 'no options'}."
        )
    if min_area is not None and min_area < 0:
        raise DatasetError(f"min_area must be >= 0, got {min_area}.")
    dataset = builder(dataset_root(name, root), split, axis, min_area, **options)
    return select_names(dataset, only, exclude)


def select_names(dataset: ObjectDataset, only: str | None, exclude: str | None) -> ObjectDataset:
    """The objects of ``dataset`` whose names match a pattern of ``only`` (all if None) and no
    pattern of ``exclude``; patterns are joined by ``|``. A filter that keeps nothing raises."""
    if only is None and exclude is None:
        return dataset
    keep_any = [p for p in str(only).split("|") if p] if only is not None else ["*"]
    drop_any = [p for p in str(exclude).split("|") if p] if exclude is not None else []
    kept = [
        i
        for i, obj_name in enumerate(dataset.names)
        if any(fnmatchcase(obj_name, p) for p in keep_any)
        and not any(fnmatchcase(obj_name, p) for p in drop_any)
    ]
    if not kept:
        example = dataset.names[0] if len(dataset) else "none"
        raise DatasetError(
            f"only={only!r} / exclude={exclude!r} leave no object of {dataset.title}; the "
            f"patterns match object names such as {example!r}."
        )
    return dataset.subset(kept)
