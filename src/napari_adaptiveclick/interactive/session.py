"""ClickSession: clicks on one 2D image in, probability and mask out.

A thin, explicit object (like segment-anything's ``SamPredictor``): the napari widget, the
command line and the evaluation all drive it. It owns inference-time policy: intensity
normalisation, the zoom-in focus crop and flip test-time augmentation (SPEC.md section 4),
feeding the previous probability back, thresholds and undo.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_adaptiveclick.interactive.focus import (
    release_zoom_box,
    touches_inner_edge,
    window_around,
    zoom_box,
)
from napari_adaptiveclick.interactive.predict import (
    PREDICTION_THRESHOLD,
    predict_probability,
    prompt_maps,
)
from napari_adaptiveclick.interactive.prompts import Click
from napari_adaptiveclick.interactive.transforms import (
    Box,
    CropResize,
    IntensityStats,
    normalize_intensity,
)
from napari_adaptiveclick.models.device import pick_device
from napari_adaptiveclick.models.registry import protocol_for, resolve_model

PROTOCOLS: tuple[str, ...] = ("project", "release")


@dataclass(frozen=True)
class Prediction:
    """Result of a click: ``probability`` (H, W) float32 in [0, 1] and ``mask`` (H, W) bool,
    both at the image's full resolution; ``seconds`` the time the prediction took."""

    probability: np.ndarray
    mask: np.ndarray
    seconds: float = 0.0


@dataclass
class _State:
    clicks: tuple[Click, ...]
    probability: np.ndarray  # (H, W) float32
    roi: Box | None


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
    (this project's conventions: pixel-centre resizing, the first-click window), "release"
    (the authors' inference path exactly: whole-image first click, their zoom-in box rules
    and ``align_corners=True`` resizing, see :mod:`.focus`; ``first_click_window`` is then
    ignored; after :meth:`set_previous_mask` the first click zooms onto that mask) or "auto"
    (release for weights loaded from a released ``.pth``, project for everything else).
    ``flip_tta`` None means on for the release protocol and off otherwise.
    """

    def __init__(
        self,
        model: Any = None,
        device: str = "auto",
        *,
        zoom_in: bool = True,
        flip_tta: bool | None = None,
        threshold: float = PREDICTION_THRESHOLD,
        zoom_expand: float = 1.4,
        zoom_min_size: int = 200,
        zoom_recompute_iou: float = 0.5,
        first_click_window: int | str | None = "auto",
        first_click_grow: bool = True,
        half_precision: bool | str = "auto",
        protocol: str = "auto",
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
        self.zoom_expand, self.zoom_min_size, self.zoom_recompute_iou = (
            zoom_expand,
            zoom_min_size,
            zoom_recompute_iou,
        )
        if release:
            first_click_window = None
        if first_click_window == "auto":
            first_click_window = self.config.input_size
        if first_click_window is not None and (
            not isinstance(first_click_window, int) or first_click_window < 32
        ):
            raise ValueError(
                f"first_click_window must be None, 'auto' or an int >= 32, got {first_click_window!r}."
            )
        self.first_click_window = first_click_window
        self.first_click_grow = bool(first_click_grow)
        self.half_precision = (
            self.device == "cuda" if half_precision == "auto" else bool(half_precision)
        )
        self._image = None  # torch (1, 3, H, W) float32 in [0, 1] on device
        self._history: list[_State] = []
        self._base: np.ndarray | None = None

    # ------------------------------------------------------------------ image and state
    @property
    def model_name(self) -> str:
        return self.config.name

    @property
    def image_shape(self) -> tuple[int, int]:
        self._require_image()
        return tuple(self._image.shape[-2:])

    @property
    def clicks(self) -> list[Click]:
        return list(self._history[-1].clicks) if self._history else []

    @property
    def focus_box(self) -> Box | None:
        """The crop the last prediction saw: a Box, or None for the whole image resized (or
        no click yet). The release protocol records its whole-image first box as a Box."""
        return self._history[-1].roi if self._history else None

    @property
    def probability(self) -> np.ndarray:
        self._require_image()
        return self._history[-1].probability

    def _require_image(self) -> None:
        if self._image is None:
            raise RuntimeError("No image: call set_image(array) first.")

    def set_image(self, image: np.ndarray, stats: IntensityStats | None = None) -> None:
        """Set a 2D grey ``(H, W)`` or RGB(A) ``(H, W, 3|4)`` image of any numeric dtype.

        Intensities are normalised with percentiles (``stats=(lo, hi)`` from
        :func:`transforms.intensity_stats` of a whole volume treats its slices alike).
        Clears the clicks.
        """
        import torch

        array = np.asarray(image)
        if array.ndim == 3 and array.shape[-1] in (3, 4):
            array = array[..., :3]
        elif array.ndim != 2:
            raise ValueError(
                f"set_image expects a 2D grey (H, W) or RGB (H, W, 3) image, got shape {array.shape}. "
                "For a volume pass one slice; for multichannel data choose one channel."
            )
        if array.size == 0 or min(array.shape[:2]) < 2:
            raise ValueError(f"The image is empty or degenerate (shape {array.shape}).")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(
                f"The image has {bad} NaN or infinite values. Replace them first, e.g. "
                "np.nan_to_num(image, nan=image[np.isfinite(image)].min())."
            )
        normalised = normalize_intensity(array, stats)
        grey = normalised[None] if normalised.ndim == 2 else None
        chw = np.repeat(grey, 3, axis=0) if grey is not None else normalised.transpose(2, 0, 1)
        self._image = torch.from_numpy(np.ascontiguousarray(chw))[None].to(self.device)
        self._base = np.zeros(array.shape[:2], dtype=np.float32)
        self.reset()

    def set_previous_mask(self, probability: np.ndarray) -> None:
        """Start from an existing mask or probability (H, W) (refine a label, propagate).
        Clears the clicks; :meth:`reset` goes back to this mask, :meth:`undo` never past it."""
        self._require_image()
        prob = np.asarray(probability, dtype=np.float32)
        if prob.shape != self.image_shape:
            raise ValueError(
                f"previous mask shape {prob.shape} does not match the image {self.image_shape}."
            )
        self._base = np.clip(np.nan_to_num(prob), 0.0, 1.0)
        self.reset()

    def reset(self) -> None:
        """Remove all clicks; the probability returns to the base mask (zeros by default)."""
        self._require_image()
        self._history = [_State((), self._base.copy(), None)]

    def undo(self) -> Prediction | None:
        """Remove the last click and restore the previous result; None when no click is left."""
        self._require_image()
        if len(self._history) > 1:
            self._history.pop()
        if len(self._history) == 1:
            return None
        return self._prediction(self._history[-1].probability)

    # ------------------------------------------------------------------ prediction
    def warmup(self) -> None:
        """Run one dummy forward so the first real click does not pay for lazy kernel set-up
        (seconds on a busy CPU, a GPU's first launch); call it in a background thread."""
        import torch

        size = self.config.input_size
        zeros = torch.zeros(1, 1, size, size, device=self.device)
        predict_probability(
            self.model,
            zeros.expand(-1, 3, -1, -1),
            zeros,
            zeros.expand(-1, 2, -1, -1),
            half_precision=self.half_precision,
        )

    def add_click(self, row: float, col: float, positive: bool = True) -> Prediction:
        """Add a click at (row, col) image pixels and predict; returns the full-size result."""
        return self.add_prompt(Click(float(row), float(col), bool(positive)))

    def add_prompt(self, click: Click) -> Prediction:
        """Add a prompt (a :class:`~napari_adaptiveclick.interactive.prompts.Click`) and
        predict; one undo step. Raises ValueError for a prompt outside the image."""
        self._require_image()
        h, w = self.image_shape
        row, col = click.row, click.col
        if not (np.isfinite(row) and np.isfinite(col)) or not (
            -0.5 <= row < h - 0.5 and -0.5 <= col < w - 0.5
        ):
            raise ValueError(
                f"Click ({row}, {col}) is outside the image of {h} x {w} pixels (row, col)."
            )
        start = time.perf_counter()
        previous = self._history[-1]
        clicks = (*previous.clicks, click)
        if self.protocol == "release":
            roi = self._release_roi(clicks, previous)
            prob = self._predict(clicks, previous.probability, roi)
        elif len(clicks) == 1 and not (previous.probability > 0.5).any():
            roi, prob = self._predict_first_click(clicks, previous.probability)
        else:
            roi = self._zoom_roi(clicks, previous)
            prob = self._predict(clicks, previous.probability, roi)
        self._history.append(_State(clicks, prob, roi))
        return self._prediction(prob, time.perf_counter() - start)

    def _prediction(self, prob: np.ndarray, seconds: float = 0.0) -> Prediction:
        return Prediction(prob, prob > self.threshold, seconds)

    def _predict_first_click(
        self, clicks: tuple[Click, ...], prev_prob: np.ndarray
    ) -> tuple[Box | None, np.ndarray]:
        """The first click of an object (no mask yet): with zoom-in and ``first_click_window``
        it sees a window around it (small objects keep their pixels), else the whole image as
        in the release. With ``first_click_grow``, while the mask touches an edge of the window
        that is not the image's edge, the window doubles (the whole image at last)."""
        size = self.first_click_window if self.zoom_in else None
        roi = window_around(clicks[0], self.image_shape, size)
        prob = self._predict(clicks, prev_prob, roi)
        while (
            self.first_click_grow
            and roi is not None
            and touches_inner_edge(prob > self.threshold, roi, self.image_shape)
        ):
            size *= 2
            roi = window_around(clicks[0], self.image_shape, size)
            prob = self._predict(clicks, prev_prob, roi)
        return roi, prob

    def _release_roi(self, clicks: tuple[Click, ...], previous: _State) -> Box | None:
        if not self.zoom_in:
            return None
        return release_zoom_box(
            previous.probability,
            clicks,
            previous.roi,
            expand=self.zoom_expand,
            min_size=self.zoom_min_size,
            recompute_iou=self.zoom_recompute_iou,
        )

    def _zoom_roi(self, clicks: tuple[Click, ...], previous: _State) -> Box | None:
        if not self.zoom_in:
            return None
        return zoom_box(
            previous.probability,
            clicks,
            previous.roi,
            len(previous.clicks),
            expand=self.zoom_expand,
            min_size=self.zoom_min_size,
            recompute_iou=self.zoom_recompute_iou,
        )

    def _predict(
        self, clicks: tuple[Click, ...], prev_prob: np.ndarray, roi: Box | None
    ) -> np.ndarray:
        import torch

        size = self.config.input_size
        shape = self.image_shape
        convention = "release" if self.protocol == "release" else "centers"
        transform = (
            CropResize(shape, roi, (size, size), convention)
            if roi
            else CropResize.whole(shape, (size, size), convention)
        )
        points = transform.forward_points(np.array([[c.row, c.col] for c in clicks]))
        net_clicks = [Click(r, c, k.positive) for (r, c), k in zip(points, clicks, strict=True)]
        maps = prompt_maps([net_clicks], size, self.config.click_radius, self.device)
        prev = transform.forward_image(torch.from_numpy(prev_prob)[None, None].to(self.device))
        prob = predict_probability(
            self.model,
            transform.forward_image(self._image),
            prev,
            maps,
            flip_tta=self.flip_tta,
            half_precision=self.half_precision,
        )
        prob = transform.inverse_image(prob, fill=0.0)
        return prob[0, 0].cpu().numpy().astype(np.float32)


__all__ = ["ClickSession", "Prediction"]
