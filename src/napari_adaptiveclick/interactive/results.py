"""What a prompt gives back (:class:`Prediction`) and what one undo level of a
:class:`~napari_adaptiveclick.interactive.session.ClickSession` keeps (:class:`ClickState`).

Both hold the probability as its values inside the focus crop (it is zero outside), so that
neither costs the image's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_adaptiveclick.interactive.boxed import BoxedArray
from napari_adaptiveclick.interactive.prompts import Prompt
from napari_adaptiveclick.interactive.transforms import Box


class Prediction:
    """Result of a click: ``probability`` (H, W) float32 in [0, 1], ``mask`` (H, W) bool,
    both at the image's full resolution, and ``seconds``, the time the prediction took.

    The probability is zero outside ``box`` (the focus crop): ``crop`` and ``crop_mask``,
    ``(box.height, box.width)``, hold the probability and the mask inside it. Made from whole
    arrays, ``Prediction(probability, mask, seconds)``; with ``box=`` and ``shape=`` (H, W)
    the first two arguments are the crops, and ``probability`` / ``mask`` are made on first
    use (that costs the image's size: use the crops where you can). ``threshold``: the one
    the mask was cut at (mask = probability > threshold; None: not said).
    """

    __slots__ = (
        "_mask",
        "_probability",
        "box",
        "crop",
        "crop_mask",
        "seconds",
        "shape",
        "threshold",
    )

    def __init__(
        self,
        probability: np.ndarray,
        mask: np.ndarray,
        seconds: float = 0.0,
        *,
        box: Box | None = None,
        shape: tuple[int, int] | None = None,
        threshold: float | None = None,
    ) -> None:
        self.crop, self.crop_mask, self.seconds = probability, mask, seconds
        self.threshold = threshold
        if box is None:
            self.shape = tuple(probability.shape)
            self.box = Box(0, 0, *self.shape)
            self._probability, self._mask = probability, mask
        else:
            self.shape, self.box = tuple(shape), box
            self._probability = self._mask = None

    @property
    def probability(self) -> np.ndarray:
        if self._probability is None:
            self._probability = BoxedArray(self.shape, self.box, self.crop).full()
        return self._probability

    @property
    def mask(self) -> np.ndarray:
        if self._mask is None:
            self._mask = BoxedArray(self.shape, self.box, self.crop_mask).full()
        return self._mask


@dataclass(eq=False)
class ClickState:
    """One undo level of a :class:`~.session.ClickSession`: the prompts, the focus crop
    (``roi``, None = the whole image resized) and the probability, zero outside ``box``: its
    ``values`` (box.height, box.width), or, for a box larger than the model's input, the
    model's output ``net`` (S, S), from which the session remakes the values when needed
    (``values`` is then a cache that :meth:`compact` drops). ``limit``: where a box prompt
    lets the mask be (zero outside it; None: anywhere)."""

    prompts: tuple[Prompt, ...]
    roi: Box | None
    box: Box
    values: np.ndarray | None
    net: np.ndarray | None = None
    limit: Box | None = None

    def compact(self) -> None:
        """Keep only the model's output, when there is one (the values are remade from it)."""
        if self.net is not None:
            self.values = None

    @property
    def nbytes(self) -> int:
        """Bytes this level keeps in its compact form."""
        return int(self.net.nbytes if self.net is not None else self.values.nbytes)
