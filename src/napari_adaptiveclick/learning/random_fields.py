"""Smooth random fields: the shapes, textures and bias fields of the synthetic scenes
(:mod:`.datasets.synthetic`) and the elastic deformation and bias field of the domain
randomisation (:mod:`.augment`)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> np.ndarray:
    """A smooth random field of ``shape``, zero mean and unit standard deviation, with about
    ``cells`` independent values across the larger side: a coarse Gaussian grid, cubic
    interpolation to at most a quarter of ``shape`` (at least 4 px per grid cell), then
    bilinear up to ``shape`` (cheap, and smooth at that ratio)."""
    coarse = max(2, int(round(cells)))
    grid_shape = tuple(max(2, int(np.ceil(coarse * n / max(shape)))) + 3 for n in shape)
    grid = rng.standard_normal(grid_shape)
    middle = tuple(
        min(n, max(4 * (g - 3), int(np.ceil(n / 4))))
        for n, g in zip(shape, grid_shape, strict=True)
    )
    zoom = tuple((m + 2) / (g - 3) for m, g in zip(middle, grid_shape, strict=True))
    field = ndimage.zoom(grid, zoom, order=3, mode="reflect")
    field = ndimage.zoom(
        field,
        tuple(n / f for n, f in zip(shape, field.shape, strict=True)),
        order=1,
        prefilter=False,
    )
    field = field[: shape[0], : shape[1]]
    field = np.pad(field, [(0, shape[0] - field.shape[0]), (0, shape[1] - field.shape[1])], "edge")
    std = field.std()
    return ((field - field.mean()) / (std if std > 0 else 1.0)).astype(np.float32)
