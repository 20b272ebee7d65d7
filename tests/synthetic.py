"""Synthetic test images and stand-ins shared by several test modules (import as ``from
synthetic import ...``; pytest puts ``tests/`` on ``sys.path``), and the ``needs_display``
marker of tests that open napari's canvas."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

needs_display = pytest.mark.skipif(
    sys.platform.startswith("linux")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")),
    reason="napari's canvas needs a display: run under xvfb-run -a",
)


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


def fake_measure(scores: list[float]):
    """A stand-in for ``learning.adapt.measure`` returning the given NoC scores in turn."""
    calls = iter(scores)

    def measure(model, samples, **kwargs):
        value = next(calls)
        return {"NoC@85": value, "NoC@90": value, "NoF@85": 0, "NoF@90": 0, "objects": len(samples),
                "clicks": 1, "score": value, "per_object": [value] * len(samples), "seconds": 0.0}  # fmt: skip

    return measure


def unwritable_folder(tmp_path) -> Path:
    """A real folder that refuses new files: a read-only (0o555) folder under ``tmp_path``, or,
    for root (whom permissions do not stop), ``/sys``, which takes no new files for anyone.
    Skips the test where neither refuses (nothing is written to try it but an empty probe)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            with tempfile.NamedTemporaryFile(dir=candidate):
                pass
        except OSError:
            return candidate
    pytest.skip("no folder here refuses new files (root on a system without /sys)")
