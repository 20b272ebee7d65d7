"""``sstem``: the ssTEM Drosophila VNC stack (``stack1/raw/NN.tif`` with
``stack1/{mitochondria,membranes,synapses}/NN.png``); objects are 4-connected components.
Slices 00-15 train, 16-19 test (SPEC.md section 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_adaptiveclick.learning.datasets.base import (
    Collector,
    DatasetError,
    ObjectDataset,
    check_choice,
    checked_labels,
    components,
    dataset_title,
    read_volume,
    volume_stats,
)

# SPEC.md section 5.
SSTEM_TEST_SLICES = range(16, 20)
# ssTEM label folder, object tag and default min_area per kind (SOURCE.md of the data).
_SSTEM_KINDS = {
    "mitochondria": ("mitochondria", "mito", 0),
    "cells": ("membranes", "cell", 400),
    "synapses": ("synapses", "synapse", 0),
}


def build_sstem(
    root: Path, split: str, axis: int | None, min_area: int | None, kind: str = "mitochondria"
) -> ObjectDataset:
    """Mitochondria, cells (the regions between membranes) or synapses of stack 1."""
    check_choice("sstem kind", kind, _SSTEM_KINDS)
    if axis is not None:
        raise DatasetError("axis does not apply to sstem: its slices are separate 2D files.")
    label_dir, tag, default_area = _SSTEM_KINDS[kind]
    min_area = default_area if min_area is None else min_area
    stack = root / "stack1"
    raws = sorted((stack / "raw").glob("*.tif"))
    if not raws:
        raise DatasetError(f"Expected stack1/raw/*.tif under {root}.")
    if not all(p.stem.isdigit() for p in raws):
        raise DatasetError(f"Expected slice files named NN.tif in {stack / 'raw'}.")
    images = [read_volume(p) for p in raws]
    for image in images:
        if image.axes != "yx":
            raise DatasetError(f"Expected a 2D grey slice: {image.path} is {image.data.shape}.")
    stats = volume_stats(np.stack([im.data for im in images]), stack / "raw")
    collector = Collector()
    for image in images:
        number = int(image.path.stem)
        in_test = number in SSTEM_TEST_SLICES
        if split != "all" and in_test != (split == "test"):
            continue
        label_path = stack / label_dir / f"{image.path.stem}.png"
        foreground = checked_labels(image, read_volume(label_path)) > 0
        id_map = components(~foreground if kind == "cells" else foreground)
        collector.add_plane(
            image.data,
            stats,
            id_map,
            source=f"sstem/stack1/{image.path.name}",
            group="sstem/stack1",
            tag=tag,
            min_area=min_area,
        )
    return collector.build(dataset_title("sstem", split, kind=kind, min_area=min_area))
