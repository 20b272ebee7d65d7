"""Prompts: what a user gives the model on one 2D image, and their encodings.

Owns the prompt kinds and their rasterisation into the network's prompt channels:

- :class:`Click`: a point, positive (the object) or negative;
- :class:`Scribble`: a stroke, a polyline through (row, col) points, positive or negative;
  rasterised along its path into the same disk maps as clicks (a capsule of the click radius
  around each segment);
- :class:`BoxPrompt`: a rectangle around the object: it chooses the focus crop and seeds the
  object with a positive click at its centre (:meth:`BoxPrompt.seed`);
- :class:`MaskPrompt`: an existing mask (a label, a lasso polygon) that becomes the previous-mask
  input; the clicks and strokes after it refine it.

One coordinate convention: (row, col) in pixels of the image the prompt was put on (napari
data order for a 2D slice), a pixel's centre at its integer index. Conversions into
network-input pixels happen in :mod:`napari_adaptiveclick.interactive.transforms`
(``CropResize.forward_points``), nowhere else. :func:`check_prompt` refuses a prompt that
does not fit an image with a message that says why.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_adaptiveclick.interactive.boxed import BoxedArray, is_empty
from napari_adaptiveclick.interactive.transforms import Box

Points = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Click:
    """One click at (row, col) in image pixels; ``positive`` is True for the object."""

    row: float
    col: float
    positive: bool = True

    @property
    def points(self) -> Points:
        return ((self.row, self.col),)

    def moved(self, move: Callable[[np.ndarray], np.ndarray]) -> Click:
        """The click with its point mapped by ``move`` ((N, 2) -> (N, 2) row, col)."""
        ((row, col),) = move(np.array(self.points))
        return Click(float(row), float(col), self.positive)


@dataclass(frozen=True)
class Scribble:
    """A stroke through ``points`` ((row, col) image pixels, in drawing order; one point is a
    click); ``positive`` is True for the object."""

    points: Points
    positive: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", as_points(self.points))
        if not self.points:
            raise ValueError("A scribble needs at least one (row, col) point.")

    def moved(self, move: Callable[[np.ndarray], np.ndarray]) -> Scribble:
        """The stroke with its points mapped by ``move`` (an affine map keeps it a polyline)."""
        return Scribble(as_points(move(np.array(self.points))), self.positive)


@dataclass(frozen=True)
class BoxPrompt:
    """A rectangle around the object, edges in image pixel coordinates: it holds the pixels
    whose centres lie in [top, bottom) x [left, right) (:meth:`pixel_box`; whole numbers give
    the :class:`~.transforms.Box` of the same values, a napari rectangle drawn over pixels
    r0..r1 has edges r0 - 0.5 and r1 + 0.5). Corners may come in any order."""

    top: float
    left: float
    bottom: float
    right: float

    def __post_init__(self) -> None:
        values = [float(v) for v in (self.top, self.left, self.bottom, self.right)]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"The box {tuple(values)} has a non-finite corner.")
        rows, cols = sorted(values[0::2]), sorted(values[1::2])
        for name, value in zip(("top", "bottom", "left", "right"), (*rows, *cols), strict=True):
            object.__setattr__(self, name, value)

    @property
    def points(self) -> Points:
        """The corners (top, left) and (bottom, right), as records store them."""
        return ((self.top, self.left), (self.bottom, self.right))

    def pixel_box(self, shape: tuple[int, int] | None = None) -> Box:
        """The pixels the box holds (clipped to an image of ``shape`` when given)."""
        box = Box(*(math.ceil(v) for v in (self.top, self.left, self.bottom, self.right)))
        if shape is None:
            return box
        h, w = shape
        return Box(
            min(max(box.top, 0), h),
            min(max(box.left, 0), w),
            min(max(box.bottom, 0), h),
            min(max(box.right, 0), w),
        )

    def seed(self, shape: tuple[int, int]) -> Click:
        """The positive click that seeds the object: the centre pixel of the box's part inside
        the image (the inner region of a box drawn over the image's edge)."""
        b = self.pixel_box(shape)
        return Click(float((b.top + b.bottom - 1) // 2), float((b.left + b.right - 1) // 2), True)


def _mask_values(mask: np.ndarray) -> np.ndarray:
    """``mask`` if it is bool, integer, or floats that are all 0 or 1; ValueError otherwise
    (text, objects, NaN, or a probability, which ``set_previous_mask`` takes)."""
    if mask.dtype == bool or np.issubdtype(mask.dtype, np.integer):
        return mask
    if not np.issubdtype(mask.dtype, np.floating):
        raise ValueError(
            f"The mask must be bool or numbers (non-zero: the object), got {mask.dtype}."
        )
    if not np.isin(mask, (0.0, 1.0)).all():
        raise ValueError(
            "The mask holds values other than 0 and 1 (NaN, or a probability): give a bool or "
            "label mask, or threshold it first (a probability belongs in set_previous_mask)."
        )
    return mask


@dataclass(frozen=True, eq=False)
class MaskPrompt:
    """An existing mask: ``values`` (box.height, box.width) bool inside ``box`` of an image of
    ``shape`` (False outside). ``label`` (the label id it was read from) and ``polygon`` (the
    lasso's (row, col) vertices) say where it came from, for the provenance."""

    values: np.ndarray
    box: Box
    shape: tuple[int, int]
    label: int = 0
    polygon: Points = field(default=())

    @classmethod
    def of(
        cls, mask: np.ndarray, shape: tuple[int, int], box: Box | None = None, **source
    ) -> MaskPrompt:
        """The mask prompt of ``mask`` (H, W) on an image of ``shape``: bool, or numbers where
        non-zero is the object (label ids; floats only 0 and 1); with ``box``, ``mask`` is its
        crop in ``box``. Raises ValueError for a mask of the wrong shape or values (a
        probability belongs in ``set_previous_mask``), a box outside the image or a mask
        without pixels."""
        mask = _mask_values(np.asarray(mask))
        shape = (int(shape[0]), int(shape[1]))
        where = Box(0, 0, *shape) if box is None else box
        if box is not None and not (
            0 <= box.top <= box.bottom <= shape[0] and 0 <= box.left <= box.right <= shape[1]
        ):
            raise ValueError(f"The mask's box {box} is not inside the image of {shape}.")
        if mask.shape != (where.height, where.width):
            target = f"the image {shape}" if box is None else f"its box {box}"
            raise ValueError(f"The mask has shape {mask.shape}; it must match {target}.")
        boxed = BoxedArray.of(mask.astype(bool, copy=False), shape, where)
        if is_empty(boxed.box):
            raise ValueError("The mask has no pixels: there is nothing to refine.")
        label, polygon = int(source.get("label", 0)), as_points(source.get("polygon", ()))
        return cls(boxed.values, boxed.box, shape, label, polygon)

    @classmethod
    def of_polygon(cls, polygon: Sequence[Sequence[float]], shape: tuple[int, int]) -> MaskPrompt:
        """The mask prompt of the pixels whose centres lie inside ``polygon`` (a lasso) on an
        image of ``shape``; ValueError when it holds none."""
        full = polygon_mask(polygon, shape)
        if not full.any():
            raise ValueError("The polygon holds no pixel centre of the plane.")
        return cls.of(full, shape, polygon=polygon)

    @property
    def points(self) -> Points:
        return self.polygon

    @property
    def sha256(self) -> str:
        """A digest of the mask (its image shape, bounding box and pixels): equal masks give
        equal digests, whatever crop they were given in."""
        b = self.box
        head = f"{self.shape[0]}x{self.shape[1]}:{b.top},{b.left},{b.bottom},{b.right}:".encode()
        return hashlib.sha256(head + np.packbits(self.values, axis=None).tobytes()).hexdigest()


Prompt = Click | Scribble | BoxPrompt | MaskPrompt
Stroke = Click | Scribble  # the prompts the disk maps encode


def as_points(points: Iterable[Sequence[float]] | np.ndarray) -> Points:
    """(row, col) points as a tuple of float pairs; refuses other shapes and non-finite values."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):  # ragged ("1 2;3") or not numbers
        raise ValueError(
            f"Points must be (row, col) pairs of numbers, got {points!r:.80}."
        ) from None
    if array.size == 0:
        return ()
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"Points must be (row, col) pairs, got an array of shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError("Points must be finite numbers.")
    return tuple((float(r), float(c)) for r, c in array)


def polygon_mask(vertices: Sequence[Sequence[float]], shape: tuple[int, int]) -> np.ndarray:
    """The (H, W) bool mask of the pixels whose centres lie inside the polygon of
    ``vertices`` ((row, col), a lasso; clipped to the image)."""
    from skimage.draw import polygon

    points = np.asarray(as_points(vertices))
    if len(points) < 3:
        raise ValueError(f"A polygon needs at least 3 vertices, got {len(points)}.")
    mask = np.zeros(shape, dtype=bool)
    rows, cols = polygon(points[:, 0], points[:, 1], shape=shape)
    mask[rows, cols] = True
    return mask


def check_prompt(prompt: Prompt, shape: tuple[int, int]) -> None:
    """Raise ValueError, saying why, unless ``prompt`` fits an image of ``shape`` (H, W):
    every point of a click or stroke inside the image, a box with pixels inside it, a mask
    of the image's shape."""
    h, w = shape
    if isinstance(prompt, MaskPrompt):
        if prompt.shape != (h, w):
            raise ValueError(f"The mask is for an image of {prompt.shape}, not {h} x {w}.")
        return
    if isinstance(prompt, BoxPrompt):
        b = prompt.pixel_box()
        if b.height <= 0 or b.width <= 0:
            raise ValueError(f"The box {prompt.points} is empty: it holds no pixel centre.")
        clipped = prompt.pixel_box((h, w))
        if clipped.height <= 0 or clipped.width <= 0:
            raise ValueError(
                f"The box {prompt.points} is outside the image of {h} x {w} pixels (row, col)."
            )
        return
    kind = "Click" if isinstance(prompt, Click) else "Stroke point"
    for row, col in prompt.points:
        if not np.isfinite([row, col]).all():
            raise ValueError(f"{kind} ({row}, {col}) must be finite numbers (row, col).")
        if not (-0.5 <= row < h - 0.5 and -0.5 <= col < w - 0.5):
            raise ValueError(
                f"{kind} ({row}, {col}) is outside the image of {h} x {w} pixels (row, col)."
            )


def only_negative(given: Iterable[Stroke]) -> bool:
    """True when every click and stroke of ``given`` (:func:`strokes`) is negative: nothing
    says where the object is, so there is nothing to segment yet."""
    given = tuple(given)
    return bool(given) and not any(stroke.positive for stroke in given)


def strokes(prompts: Iterable[Prompt], shape: tuple[int, int]) -> tuple[Stroke, ...]:
    """What the disk maps encode of a sequence of prompts: the clicks and strokes after the
    last mask prompt (a mask replaces what came before it), each box as its seed click."""
    out: list[Stroke] = []
    for prompt in prompts:
        if isinstance(prompt, MaskPrompt):
            out = []
        elif isinstance(prompt, BoxPrompt):
            out.append(prompt.seed(shape))
        else:
            out.append(prompt)
    return tuple(out)


def anchor_clicks(prompts: Iterable[Stroke]) -> tuple[Click, ...]:
    """Every point of the strokes as a click of its stroke's polarity (a polyline lies in the
    bounding box of its vertices): what the focus crop must hold."""
    return tuple(Click(r, c, p.positive) for p in prompts for r, c in p.points)


def disk_maps(prompts: Iterable[Stroke], shape: tuple[int, int], radius: float = 5.0) -> np.ndarray:
    """Binary disk encodings of clicks and strokes, ``(2, H, W)`` float32: channel 0 positive,
    1 negative.

    A pixel is 1 where its squared distance to some click of that polarity, or to some
    segment of a stroke of that polarity, is <= radius^2 (SPEC.md section 1.1, the release's
    DistMaps with ``use_disks=True``; a stroke is the union of the disks of all the points on
    its path).
    """
    height, width = shape
    maps = np.zeros((2, height, width), dtype=np.float32)
    for prompt in prompts:
        points = prompt.points
        segments = (
            zip(points[:-1], points[1:], strict=True)
            if len(points) > 1
            else [(points[0], points[0])]
        )
        channel = maps[0 if prompt.positive else 1]
        for start, end in segments:
            _draw_capsule(channel, start, end, radius)
    return maps


def _draw_capsule(
    target: np.ndarray, start: tuple[float, float], end: tuple[float, float], radius: float
) -> None:
    """Set to 1 the pixels of ``target`` (H, W) within ``radius`` of the segment start-end."""
    height, width = target.shape
    span = int(np.ceil(radius))
    (r0, c0), (r1, c1) = start, end
    top = max(int(np.floor(min(r0, r1))) - span, 0)
    bottom = min(int(np.ceil(max(r0, r1))) + span + 1, height)
    left = max(int(np.floor(min(c0, c1))) - span, 0)
    right = min(int(np.ceil(max(c0, c1))) + span + 1, width)
    if top >= bottom or left >= right:
        return
    rows = np.arange(top, bottom, dtype=np.float32)[:, None] - np.float32(r0)
    cols = np.arange(left, right, dtype=np.float32)[None, :] - np.float32(c0)
    dr, dc = np.float32(r1 - r0), np.float32(c1 - c0)
    length2 = dr * dr + dc * dc
    if length2 > 0:  # the nearest point of the segment, as a fraction t of it
        t = np.clip((rows * dr + cols * dc) / length2, 0.0, 1.0)
        rows, cols = rows - t * dr, cols - t * dc
    inside = rows * rows + cols * cols <= np.float32(radius * radius)
    window = target[top:bottom, left:right]
    np.maximum(window, inside, out=window)
