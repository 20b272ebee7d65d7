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
