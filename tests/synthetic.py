"""Synthetic test images shared by several test modules (import as ``from synthetic import ...``;
pytest puts ``tests/`` on ``sys.path``)."""

from __future__ import annotations

import numpy as np


def disk_volume(planes: int, size: int, seed: int = 0) -> np.ndarray:
    """(planes, size, size) float32 noise (mean 100, sd 10) with a bright disk (+80) of radius
    size / 4 in the middle of every plane."""
    rng = np.random.default_rng(seed)
    volume = rng.normal(100.0, 10.0, (planes, size, size)).astype(np.float32)
    rows, cols = np.mgrid[:size, :size]
    volume[:, (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (size / 4) ** 2] += 80.0
    return volume


def disks_with_labels(planes: int, size: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(planes, size, size) uint16 noise with two bright disks per plane, and their ids."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    image = rng.normal(60, 10, (planes, size, size))
    labels = np.zeros((planes, size, size), np.uint16)
    for z in range(planes):
        for obj, (r, c) in enumerate(((22, 24), (56, 54)), start=1):
            disk = (rows - r - rng.integers(-4, 5)) ** 2 + (cols - c) ** 2 <= rng.integers(
                7, 12
            ) ** 2
            image[z][disk] += 100
            labels[z][disk] = obj
    return image.astype(np.uint16), labels
