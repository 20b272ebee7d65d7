"""Label colours that stay visible on grey images (electron micrographs, MRI).

napari's default label colours are random, and some of them are dark or nearly grey (value
0.3, saturation 0.13), which vanish on an electron micrograph. These are bright, strongly
saturated hues stepped by the golden angle, so that consecutive ids (objects made one after
another, often neighbours) differ widely in hue; deep blue, dark to the eye, is skipped.
"""

from __future__ import annotations

import colorsys

import numpy as np
from napari.utils.colormaps import CyclicLabelColormap

GOLDEN = (5**0.5 - 1) / 2  # hue step: each new hue falls in the widest gap left
DARK_HUES = (0.6, 0.72)  # deep blue
SATURATION, VALUE = 0.85, 1.0


def visible_label_colors(count: int = 48) -> np.ndarray:
    """``(count, 4)`` RGBA colours for label ids 1..count (then repeating)."""
    colors, step = [], 0
    while len(colors) < count:
        hue = (step * GOLDEN) % 1.0
        step += 1
        if not DARK_HUES[0] <= hue <= DARK_HUES[1]:
            colors.append((*colorsys.hsv_to_rgb(hue, SATURATION, VALUE), 1.0))
    return np.asarray(colors, dtype=np.float32)


def visible_label_colormap(count: int = 48) -> CyclicLabelColormap:
    """A napari label colormap of :func:`visible_label_colors`; 0 (background) transparent."""
    colors = np.concatenate([np.zeros((1, 4), np.float32), visible_label_colors(count)])
    return CyclicLabelColormap(colors=colors, name="adaptiveclick")
