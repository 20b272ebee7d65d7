"""ClickSession: prompts (clicks, strokes, boxes, masks) on one 2D image in, probability and
mask out.

A thin, explicit object (like segment-anything's ``SamPredictor``) that the napari widget,
the command line and the evaluation drive. It owns inference-time policy: intensity
normalisation, the zoom-in focus crop (square, padded past the image's edge, as the model was
trained: ``square_crops``; the release stretches it), flip test-time augmentation (SPEC.md
section 4), feeding the previous probability back, the box limit, thresholds and undo.

What a click costs does not grow with the image: the image is kept as given (no copy) and
only the crop the model sees is normalised; a prediction is zero outside that crop, so each
undo level keeps the crop (:class:`~.boxed.BoxedArray`) or, for crops larger than the model's
input, the model's output, from which the crop is resized again exactly when undo needs it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from napari_adaptiveclick.interactive.boxed import BoxedArray, zero_outside
from napari_adaptiveclick.interactive.focus import (
    BOX_MARGIN,
    ZOOM_MIN_SIZE,
    box_start,
    checked_box_margin,
    checked_window,
    next_limit,
    points_box,
    release_zoom_box,
    square_box,
    touches_inner_edge,
    window_around,
    zoom_box,
)
from napari_adaptiveclick.interactive.predict import (
    PREDICTION_THRESHOLD,
    image_part,
    network_image,
    predict_probability,
    prompt_maps,
    upsample,
    warm_up,
)
from napari_adaptiveclick.interactive.prompts import (
    BoxPrompt,
    Click,
    MaskPrompt,
    Prompt,
    Scribble,
    anchor_clicks,
    check_prompt,
    only_negative,
    strokes,
)
from napari_adaptiveclick.interactive.results import ClickState, Prediction
from napari_adaptiveclick.interactive.transforms import (
    Box,
    CropResize,
    IntensityStats,
    check_intensity_range,
    intensity_stats,
)
from napari_adaptiveclick.io.lazy import LazyArray, sample_values
from napari_adaptiveclick.models.device import pick_device
from napari_adaptiveclick.models.registry import protocol_for, resolve_model

PROTOCOLS: tuple[str, ...] = ("project", "release")


class ClickSession:
    """Interactive segmentation of one object at a time on a 2D image.

    Parameters: ``model`` (None = shipped default, registry name, checkpoint path, or module),
    ``device`` ("auto", "cpu", "cuda", "mps"), ``zoom_in`` (focus crop after the first click),
    ``flip_tta`` (average with the horizontally flipped input), ``threshold`` (mask = prob >
    threshold), ``zoom_expand`` / ``zoom_min_size`` / ``zoom_recompute_iou`` (SPEC.md 4),
    ``first_click_window`` (with ``zoom_in``; None: the first click sees the whole image, as
    in the release; N: a window of N pixels a side centred on it, for images larger than that;
    "auto": the model's input size, so the first click sees the image at its own resolution,
    which gave EM objects a much better first mask), ``first_click_grow`` (with a window: when
    the first mask touches the window's edge inside the image, the object is larger than the
    window, so the window doubles and the click is predicted again, up to the whole image),
    ``half_precision`` ("auto" = float16 autocast on CUDA only), ``protocol``: "project"
    (this project's conventions: pixel-centre resizing, the first-click window), "release" (the
    authors' inference path exactly: whole-image first click, their zoom-in box rules and
    ``align_corners=True`` resizing, see :mod:`.focus`; ``first_click_window`` is then ignored;
    after :meth:`set_previous_mask` the first click zooms onto that mask) or "auto" (release
    for weights loaded from a released ``.pth``, project for everything else).
    ``flip_tta`` None: on for the release protocol, else off. ``box_margin`` (>= 0): a box
    keeps the mask near it (:func:`~.focus.next_limit`); None: no limit."""

    def __init__(
        self,
        model: Any = None,
        device: str = "auto",
        *,
        zoom_in: bool = True,
        flip_tta: bool | None = None,
        threshold: float = PREDICTION_THRESHOLD,
        zoom_expand: float = 1.4,
        zoom_min_size: int = ZOOM_MIN_SIZE,
        zoom_recompute_iou: float = 0.5,
        first_click_window: int | str | None = "auto",
        first_click_grow: bool = True,
        half_precision: bool | str = "auto",
        protocol: str = "auto",
        box_margin: float | None = BOX_MARGIN,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}.")
        self.device = pick_device(device)
        self.model = resolve_model(model).to(self.device).eval()
        self.config = self.model.config
        self.protocol = protocol_for(self.model) if protocol == "auto" else protocol
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be 'auto' or one of {PROTOCOLS}, got {protocol!r}.")
        release = self.protocol == "release"
        flip_tta = release if flip_tta is None else bool(flip_tta)
        self.zoom_in, self.flip_tta, self.threshold = zoom_in, flip_tta, threshold
        self.zoom_expand, self.zoom_min_size = zoom_expand, zoom_min_size
        self.zoom_recompute_iou = zoom_recompute_iou
        self.box_margin = checked_box_margin(box_margin)
        self.square_crops = not release  # the release stretches crops to the square input
        self.first_click_window = checked_window(
            first_click_window, self.config.input_size, release
        )
        self.first_click_grow = bool(first_click_grow)
        self.half_precision = (
            self.device == "cuda" if half_precision == "auto" else bool(half_precision)
        )
        self._image: np.ndarray | None = None  # (H, W) or (H, W, 3), as given (not copied)
        self._stats: IntensityStats = (0.0, 1.0)
        self._history: list[ClickState] = []
        self._base = BoxedArray.zeros((0, 0))

    # ------------------------------------------------------------------ image and state
    @property
    def model_name(self) -> str:
        return self.config.name

    @property
    def image_shape(self) -> tuple[int, int]:
        self._require_image()
        return tuple(self._image.shape[:2])

    @property
    def clicks(self) -> list[Click]:
        """The clicks among the :attr:`prompts`."""
        return [p for p in self.prompts if isinstance(p, Click)]

    @property
    def prompts(self) -> list[Prompt]:
        """Every prompt since the last reset, in order (each one an undo step)."""
        return list(self._history[-1].prompts) if self._history else []

    @property
    def focus_box(self) -> Box | None:
        """The crop the last prediction saw: a Box, or None for the whole image resized (or
        no click yet). The release protocol records its whole-image first box as a Box."""
        return self._history[-1].roi if self._history else None

    @property
    def prediction(self) -> Prediction:
        """The current result (after the last click, or the base mask)."""
        self._require_image()
        return self._prediction(self._history[-1])

    @property
    def probability(self) -> np.ndarray:
        """The current probability (H, W) float32 (made now: costs the image's size; the
        :attr:`prediction`'s crop is the cheap form)."""
        return self.prediction.probability

    @property
    def undo_nbytes(self) -> int:
        """Bytes the undo levels and the base mask keep (each level: its crop, or the model's
        output when that is smaller), whatever the image's size."""
        return sum(state.nbytes for state in self._history)

    def _require_image(self) -> None:
        if self._image is None:
            raise RuntimeError("No image: call set_image(array) first.")

    def set_image(self, image: np.ndarray, stats: IntensityStats | None = None) -> None:
        """Set a 2D grey ``(H, W)`` or RGB(A) ``(H, W, 3|4)`` image of any numeric dtype.

        Intensities are normalised with percentiles (``stats=(lo, hi)`` from
        :func:`transforms.intensity_stats` of a whole volume treats its slices alike).
        The image is kept as given, not copied (do not change it while the session uses it);
        each click normalises only the crop the model sees: a
        :class:`~napari_adaptiveclick.io.lazy.LazyArray` (a plane of a zarr / HDF5 store) is
        read crop by crop (NaNs there read as 0). Clears the clicks.
        """
        lazy = isinstance(image, LazyArray)  # a plane of a store: crops are read per click
        array = image if lazy else np.asarray(image)
        if array.ndim == 3 and array.shape[-1] in (3, 4):
            array = array[..., :3]
        elif array.ndim != 2:
            raise ValueError(
                f"set_image expects a 2D grey (H, W) or RGB (H, W, 3) image, got shape {array.shape}. "
                "For a volume pass one slice; for multichannel data choose one channel."
            )
        if array.size == 0 or min(array.shape[:2]) < 2:
            raise ValueError(f"The image is empty or degenerate (shape {array.shape}).")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise TypeError(f"Image dtype {array.dtype} is not numeric.")
        if not lazy and np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(
                f"The image has {bad} NaN or infinite values. Replace them first, e.g. "
                "np.nan_to_num(image, nan=image[np.isfinite(image)].min())."
            )
        given = stats is not None
        stats = stats if given else intensity_stats(sample_values(array) if lazy else array)
        stats = (float(stats[0]), float(stats[1]))
        check_intensity_range(stats, given)
        self._image, self._stats = array, stats
        self._base = BoxedArray.zeros(array.shape[:2])
        self.reset()

    def set_previous_mask(self, probability: np.ndarray, box: Box | None = None) -> None:
        """Start from an existing mask or probability (H, W) (propagate, start a run); with
        ``box``, ``probability`` is its crop in ``box`` (zero outside). Clears the prompts;
        :meth:`reset` goes back to this mask, :meth:`undo` never past it (:meth:`set_mask`
        is the undoable prompt)."""
        self._require_image()
        prob = np.clip(np.nan_to_num(np.asarray(probability, dtype=np.float32)), 0.0, 1.0)
        expected = self.image_shape if box is None else (box.height, box.width)
        if prob.shape != expected:
            raise ValueError(
                f"previous mask shape {prob.shape} does not match the image {self.image_shape}"
                + ("." if box is None else f" box {box}.")
            )
        self._base = BoxedArray.of(prob, self.image_shape, box)
        self.reset()

    def reset(self) -> None:
        """Remove all prompts; the probability returns to the base mask (zeros by default)."""
        self._require_image()
        self._history = [ClickState((), None, self._base.box, self._base.values)]

    def undo(self) -> Prediction | None:
        """Remove the last prompt and restore the previous result; None when none is left."""
        self._require_image()
        if len(self._history) > 1:
            self._history.pop()
        if len(self._history) == 1:
            return None
        return self._prediction(self._history[-1])

    # ------------------------------------------------------------------ prediction
    def warmup(self) -> None:
        """Run one dummy forward so the first real click does not pay for lazy kernel set-up
        (seconds on a busy CPU, a GPU's first launch); call it in a background thread."""
        warm_up(self.model, self.config.input_size, self.device, half_precision=self.half_precision)

    def add_click(self, row: float, col: float, positive: bool = True) -> Prediction:
        """Add a click at (row, col) image pixels and predict; returns the full-size result."""
        return self.add_prompt(Click(float(row), float(col), bool(positive)))

    def add_scribble(self, points, positive: bool = True) -> Prediction:
        """Add a stroke through ``points`` ((N, 2) row, col image pixels, drawing order) and
        predict: one undo step, encoded along its path. ValueError for a point outside."""
        return self.add_prompt(Scribble(points, bool(positive)))

    def add_box(self, top: float, left: float, bottom: float, right: float) -> Prediction:
        """Add a box around the object (pixel centres in [top, bottom) x [left, right), see
        :class:`~.prompts.BoxPrompt`) and predict: one undo step. It chooses the focus crop and
        seeds the object (:func:`~.focus.box_start`), the mask stays near it (``box_margin``)
        and later prompts refine. ValueError for an empty box or one outside the image."""
        return self.add_prompt(BoxPrompt(top, left, bottom, right))

    def set_mask(self, mask: np.ndarray, box: Box | None = None) -> Prediction:
        """Make ``mask`` (H, W) (non-zero = object; with ``box``, its crop there) the result:
        one undo step, no prediction. Later prompts refine it (it is their previous mask);
        earlier ones are no longer encoded. ValueError for a wrong shape or no pixels."""
        self._require_image()
        return self.add_prompt(MaskPrompt.of(mask, self.image_shape, box))

    def add_prompt(self, prompt: Prompt) -> Prediction:
        """Add a prompt (any kind of :mod:`.prompts`) and predict; one undo step. Raises
        ValueError, saying why, for a prompt that does not fit the image."""
        self._require_image()
        check_prompt(prompt, self.image_shape)
        start, previous = time.perf_counter(), self._history[-1]
        prompts, prior = (*previous.prompts, prompt), self._probability(previous)
        given = strokes(prompts, self.image_shape)
        limit = next_limit(previous.limit, prompt, self.image_shape, self.box_margin)
        if isinstance(prompt, MaskPrompt):
            state = ClickState(prompts, None, prompt.box, prompt.values.astype(np.float32))
        elif isinstance(prompt, BoxPrompt):
            sizes = (self.zoom_expand, self.zoom_min_size, self.config.box_prior)
            roi, prior = box_start(prompt, self.image_shape, prior, *sizes)
            state = self._predict(prompts, prior, roi, limit)
        elif self.protocol != "release" and only_negative(given) and not (prior.values > 0.5).any():
            state = ClickState(prompts, None, Box(0, 0, 1, 1), np.zeros((1, 1), np.float32))
        elif self.protocol != "release" and len(given) == 1 and not (prior.values > 0.5).any():
            state = self._predict_first_click(prompts, prior, limit)
        else:
            state = self._predict(prompts, prior, self._focus_roi(given, previous, prior), limit)
        previous.compact()
        self._history.append(state)
        return self._prediction(state, time.perf_counter() - start)

    def _probability(self, state: ClickState) -> BoxedArray:
        return BoxedArray(self.image_shape, state.box, self._values(state))

    def _values(self, state: ClickState) -> np.ndarray:
        """The probability of ``state`` in its box (remade from the model's output if only
        that is kept: the same resize as when it was predicted, so the same values)."""
        if state.values is None:  # the limit applies again to the remade values
            net = upsample(state.net, self._transform(state.roi))
            state.values = zero_outside(net, state.box, state.limit)
        return state.values

    def _prediction(self, state: ClickState, seconds: float = 0.0) -> Prediction:
        values, cut = self._values(state), self.threshold  # read once: the mask's
        shape = self.image_shape
        return Prediction(values, values > cut, seconds, box=state.box, shape=shape, threshold=cut)

    def _predict_first_click(self, prompts: tuple, prior: BoxedArray, limit: Box | None):
        """The first click or stroke of an object (no mask yet): with zoom-in and
        ``first_click_window`` it sees a window around it (small objects keep their pixels),
        else the whole image (the release). With ``first_click_grow``, while the mask touches
        an edge of the window inside the image, the window doubles (the whole image at last).
        The edge test cuts at PREDICTION_THRESHOLD, not :attr:`threshold`: the probability
        does not depend on the mask threshold (a changed one re-cuts it)."""
        size = self.first_click_window if self.zoom_in else None
        anchor = points_box(strokes(prompts, self.image_shape)[0].points)
        roi = window_around(anchor, self.image_shape, size)
        state = self._predict(prompts, prior, roi, limit)
        while self.first_click_grow and roi is not None and self._at_edge(state, roi):
            size = 2 * max(roi.height, roi.width)
            roi = window_around(anchor, self.image_shape, size)
            state = self._predict(prompts, prior, roi, limit)
        return state

    def _at_edge(self, state: ClickState, roi: Box) -> bool:
        mask = self._values(state) > PREDICTION_THRESHOLD
        return touches_inner_edge(mask, roi, self.image_shape, (roi.top, roi.left))

    def _focus_roi(self, given: tuple, previous: ClickState, prior: BoxedArray) -> Box | None:
        """The zoom-in crop of a click or stroke on an existing mask (the release's rules under
        its protocol); ``given``: the strokes the model sees (:func:`~.prompts.strokes`)."""
        if not self.zoom_in:
            return None
        arguments = {
            "expand": self.zoom_expand,
            "min_size": self.zoom_min_size,
            "recompute_iou": self.zoom_recompute_iou,
            "origin": (prior.box.top, prior.box.left),
            "shape": self.image_shape,
        }
        points = anchor_clicks(given)
        if self.protocol == "release":
            return release_zoom_box(prior.values, points, previous.roi, **arguments)
        earlier = len(strokes(previous.prompts, self.image_shape))
        return zoom_box(prior.values, points, previous.roi, earlier, **arguments)

    def _transform(self, roi: Box | None) -> CropResize:
        size, box = self.config.input_size, Box(0, 0, *self.image_shape) if roi is None else roi
        convention = "release" if self.protocol == "release" else "centers"
        box = square_box(box) if self.square_crops else box
        return CropResize(self.image_shape, box, (size, size), convention)

    def _predict(
        self, prompts: tuple[Prompt, ...], prior: BoxedArray, roi: Box | None, limit: Box | None
    ) -> ClickState:
        """One forward on the crop ``roi`` (None: the whole image) with the strokes of
        ``prompts`` mapped into network pixels and ``prior`` as the previous mask; the
        probability is zero outside ``limit`` (a Box, or None)."""
        import torch

        transform = self._transform(roi)
        size = self.config.input_size
        given = strokes(prompts, self.image_shape)
        net_prompts = [p.moved(transform.forward_points) for p in given]
        maps = prompt_maps([net_prompts], size, self.config.click_radius, self.device)
        previous = torch.from_numpy(prior.window(transform.box))[None, None]
        prob = predict_probability(
            self.model,
            network_image(self._image, self._stats, transform, self.device),
            transform.forward_crop(previous).to(self.device),
            maps,
            flip_tta=self.flip_tta,
            half_precision=self.half_precision,
        )
        net = prob[0, 0].cpu().numpy().astype(np.float32, copy=False)
        box = image_part(transform)  # the box of ``values``: the crop's part inside the image
        values = zero_outside(upsample(net, transform), box, limit)  # kept as ``net`` if smaller
        return ClickState(prompts, roi, box, values, net if net.size < values.size else None, limit)


__all__ = ["ClickSession", "Prediction"]
