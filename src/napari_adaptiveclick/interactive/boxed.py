"""Arrays that are zero outside a box, so that what a click changes costs the size of its
focus crop, not of the image.

A prediction is zero outside the crop the model saw, and a click changes the labels only
around its object: :class:`BoxedArray` keeps such an ``(H, W)`` array as its box and the
values inside, and :func:`bounding_box` / :func:`box_union` are the box arithmetic.
Boxes are :class:`~napari_adaptiveclick.interactive.transforms.Box` (exclusive bottom / right).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_adaptiveclick.interactive.transforms import Box

EMPTY_BOX = Box(0, 0, 0, 0)


def is_empty(box: Box) -> bool:
    """True for a box without pixels."""
    return box.height <= 0 or box.width <= 0


def bounding_box(mask: np.ndarray, origin: tuple[int, int] = (0, 0)) -> Box:
    """The smallest box holding every True pixel of the 2D ``mask`` (:data:`EMPTY_BOX` when
    there is none); ``origin`` is where ``mask`` starts in the image (row, col)."""
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    if not rows.size:
        return EMPTY_BOX
    top, left = origin
    return Box(
        top + int(rows[0]), left + int(cols[0]), top + int(rows[-1]) + 1, left + int(cols[-1]) + 1
    )


def box_union(a: Box, b: Box) -> Box:
    """The smallest box holding both (an empty box adds nothing)."""
    if is_empty(a):
        return b
    if is_empty(b):
        return a
    return Box(
        min(a.top, b.top), min(a.left, b.left), max(a.bottom, b.bottom), max(a.right, b.right)
    )


def box_slices(box: Box) -> tuple[slice, slice]:
    """Index of ``box`` in a 2D array: ``array[box_slices(box)]``."""
    return slice(box.top, box.bottom), slice(box.left, box.right)


def paste(values: np.ndarray, box: Box, window: Box, fill=0) -> np.ndarray:
    """The pixels of ``window`` of an array that holds ``values`` in ``box`` and ``fill``
    elsewhere: an array of the window's shape (a copy)."""
    out = np.full((window.height, window.width), fill, dtype=values.dtype)
    top, left = max(box.top, window.top), max(box.left, window.left)
    bottom, right = min(box.bottom, window.bottom), min(box.right, window.right)
    if bottom > top and right > left:
        out[top - window.top : bottom - window.top, left - window.left : right - window.left] = (
            values[top - box.top : bottom - box.top, left - box.left : right - box.left]
        )
    return out


def zero_outside(values: np.ndarray, box: Box, limit: Box | None) -> np.ndarray:
    """``values`` (held in ``box``) with every pixel outside ``limit`` set to zero: a copy,
    or ``values`` itself when ``limit`` is None or holds the whole box."""
    if limit is None:
        return values
    top, left = max(limit.top, box.top), max(limit.left, box.left)
    bottom, right = min(limit.bottom, box.bottom), min(limit.right, box.right)
    if (top, left, bottom, right) == (box.top, box.left, box.bottom, box.right):
        return values
    out = np.zeros_like(values)
    if bottom > top and right > left:
        inner = slice(top - box.top, bottom - box.top), slice(left - box.left, right - box.left)
        out[inner] = values[inner]
    return out


@dataclass(frozen=True, eq=False)
class BoxedArray:
    """An ``shape = (H, W)`` array that is zero outside ``box``; ``values`` holds it inside,
    ``(box.height, box.width)``."""

    shape: tuple[int, int]
    box: Box
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.values.shape != (max(self.box.height, 0), max(self.box.width, 0)):
            raise ValueError(f"values of shape {self.values.shape} do not fill {self.box}.")

    @classmethod
    def zeros(cls, shape: tuple[int, int]) -> BoxedArray:
        """An all-zero float32 array of ``shape`` (an empty box)."""
        return cls(tuple(shape), EMPTY_BOX, np.zeros((0, 0), np.float32))

    @classmethod
    def filled(cls, shape: tuple[int, int], box: Box, value: float) -> BoxedArray:
        """``value`` inside ``box`` (clipped to the image of ``shape``), zero outside."""
        box = Box(
            max(box.top, 0), max(box.left, 0), min(box.bottom, shape[0]), min(box.right, shape[1])
        )
        return cls(tuple(shape), box, np.full((box.height, box.width), value, np.float32))

    @classmethod
    def of(
        cls, array: np.ndarray, shape: tuple[int, int] | None = None, at: Box | None = None
    ) -> BoxedArray:
        """The non-zero part of a full ``(H, W)`` array (its values copied); with ``at``,
        ``array`` is the part inside ``at`` of an array of ``shape``."""
        inner = bounding_box(array != 0)
        values = array[box_slices(inner)].copy()
        if at is None:
            return cls(tuple(array.shape), inner, values)
        top, left = at.top, at.left
        box = Box(inner.top + top, inner.left + left, inner.bottom + top, inner.right + left)
        return cls(tuple(shape), box if values.size else EMPTY_BOX, values)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)

    def full(self) -> np.ndarray:
        """The whole ``(H, W)`` array (made now: costs the image's size)."""
        return paste(self.values, self.box, Box(0, 0, *self.shape))

    def window(self, window: Box) -> np.ndarray:
        """The values inside ``window`` (another box of the same image), zero outside ``box``."""
        return paste(self.values, self.box, window)


__all__ = [
    "EMPTY_BOX",
    "BoxedArray",
    "bounding_box",
    "box_slices",
    "box_union",
    "is_empty",
    "paste",
    "zero_outside",
]
