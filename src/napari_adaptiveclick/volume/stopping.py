"""Where a propagated object ends: per-slice evidence and a stop rule calibrated on training cases.

A propagation prompts each next slice with a click derived from the previous slice's mask, so
the model nearly always returns *something* there, also past the object's last slice (into
normal tissue, the brainstem, the next cell). The rule below tells those slices apart from
real continuations with evidence the prediction alone does not give:

- ``contrast``: the object's contrast against its surroundings (mean inside minus mean of a
  ring around it) relative to the source slice's, signed: tumour tissue stays brighter than
  its surroundings in FLAIR, a mitochondrion darker than the cytoplasm; past the end the
  contrast drops towards 0;
- ``shift``: how far the mean inside moved from the source slice's, in units of the source
  contrast;
- ``log_area_prev`` / ``log_area_source``: area change against the previous and the source
  slice; ``iou_prev``: overlap with the previous slice;
- ``confidence``: mean of ``|2p - 1|`` of the probability on the predicted mask;
- ``kept``: when the propagation trims to the annotated slice's intensity range
  (:mod:`napari_adaptiveclick.volume.consistency`), the share of the mask the model may
  write there (rule 3) that the trim leaves, logged also where the trim is not made
  (``max_trim``); 1 without a trim. Only rules fitted on trimmed propagations use it
  (:attr:`StopRule.features`).

A logistic model of these (:class:`StopRule`) gives the probability that the object is
present on the slice; the propagation stops below ``stop_below`` and flags written slices
below ``doubtful_below``. Its coefficients are fitted by ``python -m training.calibrate_propagation``
on the training cases only (SPEC.md section 5), one rule per shipped weights file (the evidence,
the confidence above all, comes from the model): ``weights/propagation_stop.json`` for
``default`` (EM, fitted on ssTEM mitochondria) and ``weights/propagation_stop_mri.json`` for
``default-mri`` (fitted on BraTS tumours, whose propagations trim to the annotated slice's
intensities: the rule's ``intensity_quantile``); :func:`shipped_stop_rule`.

Provenance: an intensity-and-shape consistency check with the annotated slice as a stop
criterion, in place of micro-sam's fixed IoU threshold between slices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_dilation

from napari_adaptiveclick.interactive.boxed import EMPTY_BOX, box_union, is_empty
from napari_adaptiveclick.interactive.transforms import Box

FEATURES = ("contrast", "shift", "log_area_prev", "log_area_source", "iou_prev", "confidence")
TRIM_FEATURES = (*FEATURES, "kept")  # a rule for propagations that trim to the source's range
_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
STOP_RULE_FILES = {  # the rule for each shipped weights file (models.checkpoint.SHIPPED_MODELS)
    "default": _WEIGHTS / "propagation_stop.json",
    "default-mri": _WEIGHTS / "propagation_stop_mri.json",
}
STOP_RULE_FILE = STOP_RULE_FILES["default"]  # also the rule of any other model
MARGIN = 14  # px around the masks that the evidence looks at
_EPS = 1e-6


def ring(mask: np.ndarray) -> np.ndarray:
    """Pixels around ``mask`` (H, W) bool within a width that grows with the object's size."""
    radius = int(np.clip(round(0.15 * math.sqrt(mask.sum())), 2, 12))
    return binary_dilation(mask, iterations=radius) & ~mask


def _window(*masks: np.ndarray, margin: int = MARGIN) -> tuple[slice, slice]:
    """Bounding box of the masks' union plus ``margin`` px (all work stays local)."""
    union = np.logical_or.reduce(masks)
    rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    h, w = union.shape
    return (
        slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, h)),
        slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, w)),
    )


def evidence_window(boxes: Iterable[Box], shape: tuple[int, int]) -> Box:
    """The part of a (rows, cols) ``shape`` plane that :func:`appearance` and
    :func:`slice_evidence` look at for masks whose bounding ``boxes`` are given: their union
    plus :data:`MARGIN`, clipped to the plane. Both give the same on the arrays' parts in
    this window as on the whole arrays, so a caller can pass just those (work and memory
    stay with the object, whatever the plane's size)."""
    union = EMPTY_BOX
    for box in boxes:
        union = box_union(union, box)
    if is_empty(union):
        return EMPTY_BOX
    return Box(
        max(union.top - MARGIN, 0),
        max(union.left - MARGIN, 0),
        min(union.bottom + MARGIN, shape[0]),
        min(union.right + MARGIN, shape[1]),
    )


@dataclass(frozen=True)
class Appearance:
    """An object's look on one slice: mean intensity inside, of a ring around it, and area."""

    inside: float
    around: float
    area: int

    @property
    def contrast(self) -> float:
        return self.inside - self.around


def appearance(image: np.ndarray, mask: np.ndarray) -> Appearance:
    """:class:`Appearance` of ``mask`` (H, W) bool on ``image`` (H, W) float (normalised)."""
    window = _window(mask)
    crop, region = image[window], mask[window]
    around_mask = ring(region)
    inside = float(crop[region].mean()) if region.any() else 0.0
    around = float(crop[around_mask].mean()) if around_mask.any() else inside
    return Appearance(inside, around, int(region.sum()))


def slice_evidence(
    image: np.ndarray,
    mask: np.ndarray,
    probability: np.ndarray,
    previous: np.ndarray,
    source: Appearance,
    kept: float = 1.0,
) -> dict[str, float]:
    """The :data:`TRIM_FEATURES` of a propagated slice: ``image`` (H, W) float normalised to
    about [0, 1], the written ``mask`` and the ``probability`` (H, W) of the prediction, the
    ``previous`` slice's mask, the source slice's :class:`Appearance`, and the share of the
    prediction the intensity trim ``kept``. The arrays may be the parts of a plane's in
    :func:`evidence_window` (the same result)."""
    window = _window(mask, previous)
    region, before = mask[window], previous[window]
    area, area_prev = int(region.sum()), int(before.sum())
    here = appearance(image[window], region) if area else Appearance(0.0, 0.0, 0)
    scale = max(abs(source.contrast), 0.02)
    sign = 1.0 if source.contrast >= 0 else -1.0
    p = probability[window][region]
    union = (region | before).sum()
    return {
        "contrast": sign * here.contrast / scale if area else 0.0,
        "shift": abs(here.inside - source.inside) / scale if area else 10.0,
        "log_area_prev": math.log((area + 1) / (area_prev + 1)),
        "log_area_source": math.log((area + 1) / (source.area + 1)),
        "iou_prev": float((region & before).sum() / max(union, 1)),
        "confidence": float(np.mean(np.abs(2.0 * p - 1.0))) if p.size else 0.0,
        "kept": float(kept),
    }


def with_kept(evidence: dict[str, float]) -> dict[str, float]:
    """``evidence`` with ``kept`` = 1 where it lacks it (logged without a trim, or before the
    feature existed); any other missing feature is a KeyError."""
    return evidence if "kept" in evidence else {**evidence, "kept": 1.0}


@dataclass(frozen=True)
class StopRule:
    """Logistic model of "the object is present on this slice" from :func:`slice_evidence`.

    ``presence = sigmoid(intercept + sum(coef * (feature - mean) / scale))`` with the
    features clipped to the ranges seen in calibration (``low``, ``high``). A propagation
    stops where ``presence < stop_below`` and flags written slices below ``doubtful_below``.
    ``features``: the evidence it uses, :data:`FEATURES` or :data:`TRIM_FEATURES`.
    ``intensity_quantile``: the intensity trim of the propagations it was fitted on (None:
    none); a propagation with the rule trims the same
    (:meth:`~napari_adaptiveclick.volume.propagation.PropagationSettings.for_model`).
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    low: tuple[float, ...]
    high: tuple[float, ...]
    stop_below: float = 0.5
    doubtful_below: float = 0.75
    source: str = ""
    features: tuple[str, ...] = FEATURES
    intensity_quantile: float | None = None

    def __post_init__(self) -> None:
        q = self.intensity_quantile
        if q is not None and not (
            isinstance(q, (int, float)) and not isinstance(q, bool) and 0.0 < q < 0.5
        ):
            raise ValueError(f"StopRule.intensity_quantile must be in (0, 0.5) or null, got {q!r}.")
        if self.features not in (FEATURES, TRIM_FEATURES):
            raise ValueError(
                f"StopRule.features must be {list(FEATURES)} or {list(TRIM_FEATURES)}, got "
                f"{self.features!r}."
            )
        n = len(self.features)
        for name in ("mean", "scale", "coef", "low", "high"):
            values = getattr(self, name)
            if (
                not isinstance(values, tuple)
                or len(values) != n
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
            ):
                raise ValueError(f"StopRule.{name} needs {n} finite numbers, got {values!r}.")
        if not isinstance(self.intercept, (int, float)) or not math.isfinite(self.intercept):
            raise ValueError(f"StopRule.intercept must be a finite number, got {self.intercept!r}.")
        if not all(float(s) > 0 for s in self.scale):
            raise ValueError(f"StopRule.scale must be positive, got {self.scale!r}.")
        if not 0.0 <= self.stop_below <= self.doubtful_below <= 1.0:
            raise ValueError(
                "StopRule needs 0 <= stop_below <= doubtful_below <= 1, got "
                f"{self.stop_below} and {self.doubtful_below}."
            )

    def presence(self, evidence: dict[str, float]) -> float:
        """Probability in [0, 1] that the object is present on the slice."""
        x = np.array([with_kept(evidence)[name] for name in self.features], np.float64)
        x = np.clip(x, self.low, self.high)
        z = self.intercept + float(np.dot(self.coef, (x - self.mean) / np.asarray(self.scale)))
        return float(1.0 / (1.0 + math.exp(-np.clip(z, -50.0, 50.0))))

    def to_json(self) -> dict:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "features"}
        return {"features": list(self.features), **data}

    @classmethod
    def from_json(cls, data: dict) -> StopRule:
        features = tuple(data.get("features", ())) if isinstance(data, dict) else ()
        if features not in (FEATURES, TRIM_FEATURES):
            raise ValueError(
                f"A stop rule file must list the features {list(FEATURES)} (or those and "
                f"'kept'); got "
                f"{data.get('features') if isinstance(data, dict) else type(data).__name__}."
            )
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        except TypeError as err:
            raise ValueError(f"Malformed stop rule: {err}") from None


def read_stop_rule(path: str | Path) -> StopRule:
    """A :class:`StopRule` from a JSON file (ValueError naming the file when malformed)."""
    try:
        return StopRule.from_json(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError, ValueError) as err:
        raise ValueError(f"Cannot read the propagation stop rule {path}: {err}") from None


@lru_cache(maxsize=4)
def shipped_stop_rule(model: str = "default") -> StopRule | None:
    """The calibrated rule shipped for the weights ``model`` (a shipped name; any other
    model, a checkpoint file too, gets ``default``'s); None when its file is not installed."""
    path = STOP_RULE_FILES.get(model, STOP_RULE_FILE)
    return read_stop_rule(path) if path.is_file() else None


def default_stop_rule() -> StopRule | None:
    """The rule shipped for ``default`` (:func:`shipped_stop_rule`)."""
    return shipped_stop_rule("default")
