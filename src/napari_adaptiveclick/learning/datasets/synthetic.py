"""Synthetic training scenes: boundary following that belongs to no microscope or scanner.

Each scene is a grey image in [0, 1] and one object mask, drawn from one of five families:

- ``cells``: a tessellation of membrane-bounded cells (wavy Voronoi regions) with textured
  interiors; membranes of random thickness and contrast, sometimes faint, sometimes brighter
  than the interiors. The object is one cell's interior (as the EM cell labels are).
- ``organelles``: blob-like objects (smooth random shapes) with an optional dark or bright
  rim and inner texture, among clutter blobs of the same kind, some touching the object.
- ``lesions``: a smooth lesion with a diffuse edge in textured tissue, optionally with a
  brighter or darker core (as tumours in MRI); the object is the lesion or its core.
- ``touching``: a cluster of objects of the same intensity separated only by a thin, faint
  seam; the object is one of them.
- ``thin``: elongated curved structures a few pixels wide (processes, vessels, membranes).

Then one random intensity transfer function (a piecewise-linear map with a few knots,
inverted half the time), a multiplicative bias field, blur and noise. Everything comes from
``numpy.random.default_rng([seed, stream, index])`` (stream 0 for the train and "all" splits, 1
for test): item ``i`` is the same on every machine and every call, so the dataset is infinite
in effect (``length`` items) and a resumed run replays the same scenes. A 320 px scene takes
60-80 ms on one core (a training sample costs several times that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import overload

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from napari_adaptiveclick.learning.datasets.base import DatasetError, ObjectSample
from napari_adaptiveclick.learning.random_fields import smooth_field

KINDS: tuple[str, ...] = ("cells", "organelles", "lesions", "touching", "thin")


def _texture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Zero-mean texture: a mix of a coarse and a fine smooth field (unit-ish scale)."""
    coarse = smooth_field(rng, shape, rng.uniform(3, 10))
    fine = smooth_field(rng, shape, rng.uniform(20, 60))
    mix = rng.uniform(0.0, 1.0)
    return (mix * coarse + (1.0 - mix) * fine).astype(np.float32)


def _blob(
    rng: np.random.Generator, shape: tuple[int, int], centre: np.ndarray, radius: float
) -> np.ndarray:
    """A smooth random star-shaped blob: bool (H, W), radius modulated by a few harmonics and
    a random elongation (computed on the blob's bounding window only)."""
    angle = rng.uniform(0, np.pi)
    stretch = rng.uniform(1.0, 2.5)
    harmonics = [(k, rng.uniform(0, 0.5 / k), rng.uniform(0, 2 * np.pi)) for k in range(2, 6)]
    reach = radius * stretch * (1.0 + sum(a for _, a, _ in harmonics)) + 1
    top, left = (max(0, int(np.floor(c - reach))) for c in centre)
    bottom = min(shape[0], int(np.ceil(centre[0] + reach)) + 1)
    right = min(shape[1], int(np.ceil(centre[1] + reach)) + 1)
    blob = np.zeros(shape, bool)
    if bottom <= top or right <= left:
        return blob
    rows, cols = np.mgrid[top:bottom, left:right].astype(np.float32)
    dy, dx = rows - centre[0], cols - centre[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    theta = np.arctan2(v, u / stretch)
    outline = np.ones_like(theta)
    for k, amplitude, phase in harmonics:
        outline += amplitude * np.cos(k * theta + phase)
    blob[top:bottom, left:right] = np.hypot(u / stretch, v) <= radius * outline
    return blob


def _cells(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    shape = (size, size)
    n = int(rng.integers(12, 90))
    seeds = rng.uniform(0, size, (n, 2))
    rows, cols = np.indices(shape, dtype=np.float32)
    wobble = rng.uniform(0, size / np.sqrt(n) * 0.35)
    warped = np.stack(
        [
            rows + wobble * smooth_field(rng, shape, 6),
            cols + wobble * smooth_field(rng, shape, 6),
        ],
        axis=-1,
    )
    labels = cKDTree(seeds).query(warped.reshape(-1, 2))[1].reshape(shape)
    edges = np.zeros(shape, bool)
    edges[:-1] |= labels[:-1] != labels[1:]
    edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    thickness = rng.uniform(0.5, 5.0)
    membrane = ndimage.distance_transform_edt(~edges) <= thickness
    base = rng.uniform(0.35, 0.75, n).astype(np.float32)
    if rng.random() < 0.3:  # neighbours of the same intensity
        base[:] = base[0]
    image = base[labels] + rng.uniform(0.02, 0.15) * _texture(rng, shape)
    contrast = rng.uniform(0.08, 0.5) * (1 if rng.random() < 0.8 else -1)
    image = image - contrast * membrane
    # The object: an interior near the centre that does not touch the border.
    interiors = labels.copy()
    interiors[membrane] = -1
    candidates = []
    border = set(np.unique(labels[0])) | set(np.unique(labels[-1]))
    border |= set(np.unique(labels[:, 0])) | set(np.unique(labels[:, -1]))
    for index in range(n):
        if index not in border:
            candidates.append(index)
    chosen = int(rng.choice(candidates)) if candidates else int(labels[size // 2, size // 2])
    return image, interiors == chosen


def _organelles(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    shape = (size, size)
    image = rng.uniform(0.3, 0.7) + rng.uniform(0.02, 0.15) * _texture(rng, shape)
    value = rng.uniform(-0.4, 0.4)
    value = value if abs(value) > 0.08 else 0.08 * np.sign(value or 1.0)
    rim = rng.uniform(0.0, 0.3) * (1 if rng.random() < 0.5 else -1) if rng.random() < 0.6 else 0.0
    rim_width = rng.uniform(1.0, 4.0)
    radius = rng.uniform(size * 0.04, size * 0.2)
    target = None
    count = int(rng.integers(1, 12))
    inner_texture = rng.uniform(0, 0.1) * _texture(rng, shape)
    for k in range(count):
        if k == 0:
            centre = rng.uniform(size * 0.35, size * 0.65, 2)
            r = radius
        elif rng.random() < 0.4 and target is not None:  # a neighbour touching the object
            angle = rng.uniform(0, 2 * np.pi)
            r = radius * rng.uniform(0.5, 1.2)
            centre = np.array([size / 2, size / 2]) + (radius + r * 0.9) * np.array(
                [np.sin(angle), np.cos(angle)]
            )
        else:
            centre = rng.uniform(0, size, 2)
            r = radius * rng.uniform(0.4, 1.5)
        blob = _blob(rng, shape, centre, r)
        if target is not None:
            blob &= ~target
        own = value * rng.uniform(0.8, 1.2)
        image = np.where(blob, image + own + inner_texture, image)
        if rim:
            image = image + rim * (blob & ~ndimage.binary_erosion(blob, iterations=int(rim_width)))
        if k == 0:
            target = blob
    return image, target


def _lesions(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    shape = (size, size)
    image = rng.uniform(0.2, 0.6) + rng.uniform(0.03, 0.15) * _texture(rng, shape)
    # Anatomy-like clutter: a few smooth structures of other intensities.
    for _ in range(int(rng.integers(0, 4))):
        structure = _blob(rng, shape, rng.uniform(0, size, 2), rng.uniform(size * 0.1, size * 0.4))
        image = image + rng.uniform(-0.2, 0.2) * ndimage.gaussian_filter(
            structure.astype(np.float32), rng.uniform(1, 4)
        )
    radius = rng.uniform(size * 0.06, size * 0.3)
    centre = rng.uniform(size * 0.35, size * 0.65, 2)
    lesion = _blob(rng, shape, centre, radius)
    ragged = smooth_field(rng, shape, rng.uniform(8, 25)) > rng.uniform(-2.5, -0.5)
    lesion &= ragged | ndimage.binary_erosion(lesion, iterations=3)
    lesion = ndimage.binary_fill_holes(lesion)
    labels, n = ndimage.label(lesion)
    if n > 1:
        sizes = ndimage.sum_labels(lesion, labels, range(1, n + 1))
        lesion = labels == 1 + int(np.argmax(sizes))
    signed = ndimage.distance_transform_edt(lesion) - ndimage.distance_transform_edt(~lesion)
    edge = rng.uniform(0.5, 6.0)
    profile = 1.0 / (1.0 + np.exp(-signed / edge))
    amplitude = rng.uniform(0.15, 0.45) * (1 if rng.random() < 0.75 else -1)
    image = image + amplitude * profile * (1 + rng.uniform(0, 0.3) * _texture(rng, shape))
    target = lesion
    if rng.random() < 0.4:  # a core of another intensity inside the lesion
        inner = ndimage.distance_transform_edt(lesion)
        core = lesion & (inner > rng.uniform(0.3, 0.6) * inner.max())
        core &= smooth_field(rng, shape, 10) > -1.0
        if core.sum() > 30:
            image = image + rng.uniform(-0.3, 0.3) * ndimage.gaussian_filter(
                core.astype(np.float32), edge / 2
            )
            if rng.random() < 0.5:
                target = core
    return image, target


def _touching(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    shape = (size, size)
    image = rng.uniform(0.2, 0.5) + rng.uniform(0.02, 0.1) * _texture(rng, shape)
    n = int(rng.integers(2, 7))
    centre = np.array([size / 2, size / 2])
    spread = rng.uniform(size * 0.08, size * 0.2)
    seeds = centre + rng.normal(0, spread, (n, 2))
    cluster = np.zeros(shape, bool)
    for seed in seeds:
        cluster |= _blob(rng, shape, seed, spread * rng.uniform(0.8, 1.6))
    labels = cKDTree(seeds).query(np.indices(shape).reshape(2, -1).T)[1].reshape(shape)
    seam = np.zeros(shape, bool)
    seam[:-1] |= labels[:-1] != labels[1:]
    seam[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    seam = ndimage.binary_dilation(seam, iterations=int(rng.integers(0, 2))) & cluster
    image = image + rng.uniform(0.15, 0.4) * cluster - rng.uniform(0.02, 0.2) * seam
    pieces = np.where(cluster & ~seam, labels, -1)
    chosen = int(labels[tuple(np.clip(np.round(seeds[0]).astype(int), 0, size - 1))])
    target = pieces == chosen
    if target.sum() < 20:
        target = cluster
    return image, target


def _thin(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    shape = (size, size)
    image = rng.uniform(0.3, 0.7) + rng.uniform(0.02, 0.12) * _texture(rng, shape)
    value = rng.uniform(0.15, 0.45) * (1 if rng.random() < 0.5 else -1)
    target = None
    for k in range(int(rng.integers(1, 6))):
        start = rng.uniform(size * 0.3, size * 0.7, 2) if k == 0 else rng.uniform(0, size, 2)
        heading = rng.uniform(0, 2 * np.pi)
        steps = int(rng.integers(40, 160))
        points = [start]
        turn = rng.uniform(0.02, 0.15)
        for _ in range(steps):
            heading += rng.normal(0, turn)
            points.append(points[-1] + 2.0 * np.array([np.sin(heading), np.cos(heading)]))
        path = np.clip(np.round(np.array(points)).astype(int), 0, size - 1)
        line = np.zeros(shape, bool)
        line[path[:, 0], path[:, 1]] = True
        width = rng.uniform(1.0, 5.0)
        structure = ndimage.distance_transform_edt(~line) <= width
        if target is not None:
            structure &= ~target
        image = image + value * rng.uniform(0.8, 1.2) * structure
        if k == 0:
            target = structure
    return image, target


_SCENES: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "cells": _cells,
    "organelles": _organelles,
    "lesions": _lesions,
    "touching": _touching,
    "thin": _thin,
}


def _transfer(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random intensity transfer: rescale to [0, 1], a monotone piecewise-linear map through
    3-6 random knots (a non-monotone map could hide the object), inverted half the time."""
    lo, hi = np.percentile(image, [0.5, 99.5])
    x = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
    knots = int(rng.integers(3, 7))
    xs = np.linspace(0, 1, knots)
    ys = np.sort(rng.uniform(0, 1, knots))
    ys = (ys - ys.min()) / max(np.ptp(ys), 1e-6)
    y = np.interp(x, xs, ys)
    return 1.0 - y if rng.random() < 0.5 else y


def _acquire(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bias field, blur and noise of a random "instrument"; returns float32 in [0, 1]."""
    shape = image.shape
    if rng.random() < 0.7:
        image = image * np.exp(rng.uniform(0.05, 0.4) * smooth_field(rng, shape, 2))
    if rng.random() < 0.6:
        image = ndimage.gaussian_filter(image, rng.uniform(0.3, 2.0))
    noise = rng.uniform(0.0, 0.12)
    image = image + noise * rng.standard_normal(shape)
    lo, hi = np.percentile(image, [0.5, 99.5])
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


def synthetic_scene(
    rng: np.random.Generator, kind: str | None = None, size: int = 320
) -> tuple[np.ndarray, np.ndarray, str]:
    """One scene: ``(image (size, size) float32 in [0, 1], mask (size, size) bool, kind)``.
    ``kind`` is one of :data:`KINDS` or None for a random family."""
    if kind is None:
        kind = KINDS[int(rng.integers(len(KINDS)))]
    if kind not in _SCENES:
        raise DatasetError(f"Unknown synthetic kind {kind!r}; choose one of {', '.join(KINDS)}.")
    for _ in range(100):  # a scene whose object came out too small is drawn again
        image, mask = _SCENES[kind](rng, size)
        if mask is not None and mask.sum() >= 20:
            break
    else:
        raise DatasetError(f"No synthetic {kind!r} scene with an object of 20 px in 100 draws.")
    image = _acquire(_transfer(np.asarray(image, np.float64), rng), rng)
    return image, np.asarray(mask, bool), kind


class SyntheticDataset(Sequence[ObjectSample]):
    """``length`` seeded synthetic objects; item ``i`` is drawn from
    ``default_rng([seed, stream, i])`` (the test split uses stream 1, train and "all" 0)."""

    def __init__(
        self,
        split: str = "train",
        kind: str = "mix",
        size: int = 320,
        length: int = 1_000_000,
        seed: int = 0,
    ) -> None:
        if kind != "mix" and kind not in KINDS:
            raise DatasetError(
                f"Unknown synthetic kind {kind!r}; choose 'mix' or one of {', '.join(KINDS)}."
            )
        if split not in ("train", "test", "all"):
            raise DatasetError(f"Unknown split {split!r} for synthetic data.")
        if not 32 <= size <= 2048 or length < 1:
            raise DatasetError(f"synthetic size must be 32..2048 and length >= 1, got {size}.")
        self.kind = None if kind == "mix" else kind
        self.size = size
        self.length = length
        self.stream = (seed, 1 if split == "test" else 0)
        self.title = f"synthetic [split={split}, kind={kind}, size={size}]"

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, index: int) -> ObjectSample: ...

    @overload
    def __getitem__(self, index: slice) -> list[ObjectSample]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(self.length)[index]]
        if not -self.length <= index < self.length:
            raise IndexError(index)
        index %= self.length
        rng = np.random.default_rng([*self.stream, index])
        image, mask, kind = synthetic_scene(rng, self.kind, self.size)
        image.flags.writeable = False
        return ObjectSample(image, mask, f"synthetic/{kind}#{index:07d}", f"synthetic/{kind}")

    def describe(self) -> str:
        return f"{self.title}: {self.length} seeded objects (generated on demand)"
