"""NoC / NoF / mIoU@k evaluation of an interactive segmenter with simulated clicks.

Protocol of the AdaptiveClick release (SPEC.md section 4, after RITM's ``evaluate_sample``):
for each object, click where :func:`~napari_adaptiveclick.evaluation.simulator.next_click` says, let the
predictor update its mask (it feeds its previous mask back itself), threshold the probability
at 0.49 and record the IoU after every click, up to ``max_clicks`` (20). NoC@t is the first
click count whose IoU reaches t (``max_clicks`` if never), averaged over objects.

The first prompt of an object may instead be a box from the ground truth (jittered) or a
stroke along it (``first_prompt``, :data:`FIRST_PROMPTS`; :mod:`.simulator`); it counts as
one interaction, and the clicks after it follow the same rule.

All masks are ``(H, W)`` bool, images ``(H, W)`` grey or ``(H, W, 3)`` RGB, (row, col) indexing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from napari_adaptiveclick.evaluation.simulator import jittered_box, next_click, next_scribble
from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.interactive.prompts import BoxPrompt, Click, Scribble

NOC_THRESHOLDS = (0.80, 0.85, 0.90)
FIRST_PROMPTS: tuple[str, ...] = ("click", "box", "scribble")
BOX_JITTER = 0.1  # std of each simulated box edge, as a fraction of the box's side
NOF_THRESHOLDS = (0.85, 0.90)

#: Paper results on medical data, NoC@85 / NoC@90 (AdaptiveClick, TNNLS, trained on natural
#: images only), keyed by dataset name as used by
#: ``napari_adaptiveclick.learning.datasets.build_dataset``.
PAPER_RESULTS: dict[str, dict[str, tuple[float, float]]] = {
    "sstem": {
        "RITM HRNet18, SBD": (3.71, 5.68),
        "SimpleClick ViT-B, SBD": (3.78, 5.21),
        "AdaptiveClick ViT-B, SBD": (3.17, 4.56),
        "SimpleClick ViT-H, COCO-LVIS": (4.27, 5.45),
        "AdaptiveClick ViT-H, COCO-LVIS": (3.95, 4.97),
    },
    "brats": {
        "RITM HRNet18, SBD": (8.47, 12.59),
        "SimpleClick ViT-B, SBD": (9.93, 13.90),
        "AdaptiveClick ViT-B, SBD": (10.79, 14.39),
        "SimpleClick ViT-H, COCO-LVIS": (6.73, 10.27),
        "AdaptiveClick ViT-H, COCO-LVIS": (6.51, 9.77),
    },
    "oaizib": {
        "RITM HRNet18, SBD": (17.70, 19.95),
        "SimpleClick ViT-B, SBD": (18.44, 19.90),
        "AdaptiveClick ViT-B, SBD": (17.43, 19.62),
        "SimpleClick ViT-H, COCO-LVIS": (14.93, 18.95),
        "AdaptiveClick ViT-H, COCO-LVIS": (12.65, 16.69),
    },
}


class HasProbability(Protocol):
    probability: np.ndarray  # (H, W) float in [0, 1]


class Predictor(Protocol):
    """What the evaluation needs of an interactive segmenter (``ClickSession`` fits it; a
    first prompt other than a click also needs ``add_prompt(prompt)``)."""

    def set_image(self, image: np.ndarray, stats: tuple[float, float] | None = None) -> None: ...

    def reset(self) -> None: ...

    def add_click(self, row: float, col: float, positive: bool = True) -> HasProbability: ...


class ObjectSampleLike(Protocol):
    """One object to evaluate: ``image`` (H, W) or (H, W, 3), ``mask`` (H, W) bool."""

    image: np.ndarray
    mask: np.ndarray
    name: str
    group: str


@dataclass(frozen=True)
class ObjectResult:
    """The prompts made on one object (``clicks``: clicks, after a first box or stroke) and
    the IoU and seconds after each of them.

    ``ious`` may be shorter than ``max_clicks`` when clicking stopped early (``stop_at``
    reached or no error pixel left); metrics then carry the last IoU forward.
    """

    ious: tuple[float, ...]
    seconds: tuple[float, ...]
    clicks: tuple[Click | Scribble | BoxPrompt, ...]
    area: int
    name: str = ""
    group: str = ""

    def noc(self, threshold: float, max_clicks: int) -> int:
        """First click count (1-based) with IoU >= ``threshold``; ``max_clicks`` if never."""
        for count, iou in enumerate(self.ious[:max_clicks], start=1):
            if iou >= threshold:
                return count
        return max_clicks

    def reached(self, threshold: float, max_clicks: int) -> bool:
        return any(iou >= threshold for iou in self.ious[:max_clicks])

    def iou_curve(self, max_clicks: int) -> np.ndarray:
        """(max_clicks,) IoU after clicks 1..max_clicks, the last value carried forward."""
        if not self.ious:
            raise ValueError("This object has no clicks recorded.")
        curve = np.full(max_clicks, self.ious[-1], dtype=np.float64)
        n = min(len(self.ious), max_clicks)
        curve[:n] = self.ious[:n]
        return curve


def mask_iou(gt: np.ndarray, pred: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks (1.0 when both are empty)."""
    union = np.count_nonzero(gt | pred)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(gt & pred) / union)


def _check_object(image: np.ndarray, gt: np.ndarray) -> np.ndarray:
    gt = np.asarray(gt).astype(bool, copy=False)
    if gt.ndim != 2 or tuple(np.shape(image)[:2]) != gt.shape:
        raise ValueError(
            f"The object mask must be 2D and match the image's (H, W); got mask {gt.shape} "
            f"for image {np.shape(image)}."
        )
    if not gt.any():
        raise ValueError("The object mask is empty: there is nothing to click on.")
    return gt


def _check_first_prompt(predictor: Predictor, first_prompt: str) -> None:
    if first_prompt not in FIRST_PROMPTS:
        raise ValueError(
            f"first_prompt must be one of {', '.join(FIRST_PROMPTS)}, got {first_prompt!r}."
        )
    if first_prompt != "click" and not hasattr(predictor, "add_prompt"):
        raise ValueError(f"This predictor takes clicks only, not a first {first_prompt}.")


def _click_through(
    predictor: Predictor,
    gt: np.ndarray,
    max_clicks: int,
    threshold: float,
    stop_at: float | None,
    first_prompt: str = "click",
    rng: np.random.Generator | None = None,
) -> ObjectResult:
    """Simulate up to ``max_clicks`` prompts on ``gt`` with the image already set: the first
    one of kind ``first_prompt`` (a box jittered with ``rng``), then clicks."""
    predictor.reset()
    pred = np.zeros_like(gt)
    clicked = np.zeros_like(gt)
    ious: list[float] = []
    seconds: list[float] = []
    prompts: list[Click | Scribble | BoxPrompt] = []
    for index in range(max_clicks):
        kind = first_prompt if index == 0 else "click"
        if kind == "box":
            prompt = jittered_box(gt, rng, BOX_JITTER)
        else:
            prompt = (next_scribble if kind == "scribble" else next_click)(gt, pred, clicked)
        if prompt is None:  # perfect mask: nothing left to correct
            break
        for row, col in () if kind == "box" else prompt.points:
            clicked[int(row), int(col)] = True
        start = time.perf_counter()
        if kind == "click":
            prediction = predictor.add_click(prompt.row, prompt.col, prompt.positive)
        else:
            prediction = predictor.add_prompt(prompt)
        seconds.append(time.perf_counter() - start)
        pred = np.asarray(prediction.probability) > threshold
        ious.append(mask_iou(gt, pred))
        prompts.append(prompt)
        if stop_at is not None and ious[-1] >= stop_at:
            break
    return ObjectResult(tuple(ious), tuple(seconds), tuple(prompts), area=int(gt.sum()))


def evaluate_object(
    predictor: Predictor,
    image: np.ndarray,
    gt: np.ndarray,
    max_clicks: int = 20,
    threshold: float = PREDICTION_THRESHOLD,
    stop_at: float | None = None,
    stats: tuple[float, float] | None = None,
    first_prompt: str = "click",
    seed: int = 0,
) -> ObjectResult:
    """Evaluate one object of ``image`` (H, W[, 3]) with ground truth ``gt`` (H, W) bool.

    All ``max_clicks`` clicks are made (as the release does for the mIoU curve) unless
    ``stop_at`` is given: then clicking stops once IoU >= ``stop_at`` (faster; NoC at
    thresholds up to ``stop_at`` is unchanged). ``stats`` is passed to ``set_image``.
    ``first_prompt``: "click", "box" (the object's box, its edges jittered with ``seed``) or
    "scribble" (:data:`FIRST_PROMPTS`).
    """
    _check_first_prompt(predictor, first_prompt)
    gt = _check_object(image, gt)
    predictor.set_image(image, stats=stats)
    rng = np.random.default_rng(seed)
    return _click_through(predictor, gt, max_clicks, threshold, stop_at, first_prompt, rng)


def evaluate_dataset(
    predictor: Predictor,
    samples: Iterable[ObjectSampleLike],
    max_clicks: int = 20,
    threshold: float = PREDICTION_THRESHOLD,
    stop_at: float | None = None,
    stats: tuple[float, float] | None = None,
    progress: Callable[[int, ObjectResult], None] | None = None,
    first_prompt: str = "click",
    seed: int = 0,
) -> list[ObjectResult]:
    """Evaluate every sample in order; see :func:`evaluate_object` for the arguments (one
    random generator from ``seed`` jitters the boxes of all objects, in order).

    The image is set once for consecutive samples that share it (several objects of one
    slice). ``progress(done, result)`` is called after each object.
    """
    _check_first_prompt(predictor, first_prompt)
    rng = np.random.default_rng(seed)
    results: list[ObjectResult] = []
    current: np.ndarray | None = None
    for sample in samples:
        gt = _check_object(sample.image, sample.mask)
        image = np.asarray(sample.image)
        if current is None or not (
            image is current or (image.shape == current.shape and np.array_equal(image, current))
        ):
            predictor.set_image(image, stats=stats)
            current = image
        result = _click_through(predictor, gt, max_clicks, threshold, stop_at, first_prompt, rng)
        results.append(replace(result, name=str(sample.name), group=str(sample.group)))
        if progress is not None:
            progress(len(results), results[-1])
    return results


def summarize(results: Sequence[ObjectResult], max_clicks: int = 20) -> dict[str, Any]:
    """Dataset figures: ``NoC@80/85/90``, ``NoF@85/90``, ``mIoU`` (list, IoU after 1..K clicks),
    ``objects``, ``clicks``, ``max_clicks``, and ``timing`` (the only non-deterministic part:
    ``seconds_per_click`` and ``seconds``).

    NoF@t counts objects that never reach t within ``max_clicks``. (The release counts
    ``NoC == max_clicks``, which also includes objects first reaching t on the last click.)
    """
    if not results:
        raise ValueError("No objects were evaluated: the dataset or selection is empty.")
    summary: dict[str, Any] = {"objects": len(results), "max_clicks": max_clicks}
    for t in NOC_THRESHOLDS:
        summary[f"NoC@{round(t * 100)}"] = float(np.mean([r.noc(t, max_clicks) for r in results]))
    for t in NOF_THRESHOLDS:
        summary[f"NoF@{round(t * 100)}"] = sum(not r.reached(t, max_clicks) for r in results)
    curve = np.mean([r.iou_curve(max_clicks) for r in results], axis=0)
    summary["mIoU"] = [float(v) for v in curve]
    clicks = sum(len(r.seconds) for r in results)
    seconds = float(sum(sum(r.seconds) for r in results))
    summary["clicks"] = clicks
    summary["timing"] = {"seconds_per_click": seconds / max(clicks, 1), "seconds": seconds}
    return summary
