"""Propagation experiments on 3D objects: annotate the largest slice with simulated clicks,
propagate both ways, measure; and the calibration of the propagation stop rule.

:func:`run_object` is the protocol of ``benchmarks/bench_propagation.py`` (#13 item 1): the
object's largest slice is clicked with the NoC simulator until IoU 0.9 (at most 5 clicks),
then propagated both ways with the annotator; reported are the 3D Dice, slices written where
the object is absent, object slices missed, and seconds. With ``stop_rule=None`` and the
collapse checks off, the same run logs every slice's evidence up to ``margin`` slices past
the object's ends, which :func:`fit_stop_rule` learns from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from napari_adaptiveclick.evaluation.simulator import next_click
from napari_adaptiveclick.learning.objects3d import Object3D
from napari_adaptiveclick.learning.propagation_guard import guard_failures
from napari_adaptiveclick.learning.propagation_options import is_mri_object
from napari_adaptiveclick.volume.annotator import VolumeAnnotator
from napari_adaptiveclick.volume.propagation import PropagationSettings
from napari_adaptiveclick.volume.stopping import FEATURES, TRIM_FEATURES, StopRule, with_kept


@dataclass
class SliceLog:
    """One propagated slice: direction, distance from the source, the rule's evidence, and
    the truth there (present on the plane; IoU of the prediction with it)."""

    direction: int
    distance: int
    evidence: dict[str, float]
    present: bool
    iou: float


@dataclass
class ObjectResult:
    """Outcome of :func:`run_object` for one object."""

    name: str
    clicks: int
    source_iou: float
    dice: float
    false_slices: int
    missed_slices: int
    seconds: float
    stops: dict[int, str]
    doubtful: tuple[int, ...]
    slices: list[SliceLog] = field(default_factory=list)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def run_object(
    obj: Object3D,
    session,
    settings: PropagationSettings,
    max_clicks: int = 5,
    target_iou: float = 0.9,
) -> ObjectResult:
    """Annotate ``obj``'s largest slice (simulated clicks), propagate both ways, measure."""
    planes = obj.truth.reshape(len(obj.truth), -1).sum(1)
    source = int(np.argmax(planes))
    labels = np.zeros(obj.truth.shape, np.uint8)
    annotator = VolumeAnnotator(obj.image, labels, session, stats=obj.stats)
    gt = obj.truth[source]
    clicked = np.zeros_like(gt)
    clicks, iou = 0, 0.0
    while clicks < max_clicks and iou < target_iou:
        click = next_click(gt, annotator.mask(source), clicked)
        if click is None:
            break
        clicked[int(click.row), int(click.col)] = True
        annotator.add_click(source, click.row, click.col, click.positive)
        clicks, iou = clicks + 1, _iou(annotator.mask(source), gt)
    slices: list[SliceLog] = []
    start = time.perf_counter()
    if annotator.mask(source).any():
        job = annotator.propagation(source, settings)
        for result in job:
            if result.evidence is not None:
                truth = obj.truth[result.plane]
                predicted = annotator.mask(result.plane) if result.accepted else None
                slices.append(
                    SliceLog(
                        1 if result.plane > source else -1,
                        abs(result.plane - source),
                        result.evidence,
                        bool(truth.any()),
                        _iou(predicted, truth) if predicted is not None else float("nan"),
                    )
                )
        report = job.report()
        stops, doubtful = report.stops, report.doubtful
    else:
        stops, doubtful = {1: "nothing to propagate", -1: "nothing to propagate"}, ()
    seconds = time.perf_counter() - start
    written = labels > 0
    flat_written = written.reshape(len(written), -1).any(1)
    present = planes > 0
    total = written.sum() + obj.truth.sum()
    return ObjectResult(
        obj.name,
        clicks,
        iou,
        float(2 * np.logical_and(written, obj.truth).sum() / total) if total else 1.0,
        int((flat_written & ~present).sum()),
        int((present & ~flat_written).sum()),
        seconds,
        dict(stops),
        tuple(doubtful),
        slices,
    )


def read_log(path) -> tuple[dict, list[ObjectResult]]:
    """The settings and object results of a calibration log (``calibrate_propagation
    --log``: ``{"settings": {...}, "objects": [...]}``; logs written before settings were
    kept are a bare list, whose settings are ``{}``), checked: ValueError naming the file and
    the first entry that does not fit."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"Cannot read the calibration log {path}: {err}") from None
    settings = {}
    if isinstance(raw, dict):
        settings, raw = raw.get("settings", {}), raw.get("objects")
        if not isinstance(settings, dict):
            raise ValueError(f"The settings of the calibration log {path} must be a mapping.")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"The calibration log {path} must hold a non-empty list of objects.")
    results = []
    for i, entry in enumerate(raw):
        try:
            slices = [SliceLog(**s) for s in entry["slices"]]
            for s in slices:
                if set(s.evidence) not in (set(FEATURES), set(TRIM_FEATURES)):
                    raise ValueError(
                        f"evidence lists {sorted(s.evidence)}, not {list(TRIM_FEATURES)} "
                        f"(or those without 'kept')"
                    )
            results.append(ObjectResult(**{**entry, "slices": slices}))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"Entry {i} of the calibration log {path} is malformed: {err}"
            ) from None
    return settings, results


def logging_settings(obj: Object3D, margin: int = 12, **options) -> PropagationSettings:
    """Settings that log evidence for ``obj``: no stop rule, no collapse checks, as far as
    ``margin`` slices past the object's farther end; ``options``: other
    :class:`PropagationSettings` fields (:func:`propagation_options`)."""
    planes = obj.planes
    source = int(np.argmax(obj.truth.reshape(len(obj.truth), -1).sum(1)))
    reach = max(source - int(planes[0]), int(planes[-1]) - source) + margin
    return PropagationSettings(
        min_area_ratio=0.0,
        max_area_ratio=float("inf"),
        min_iou=0.0,
        stop_rule=None,
        max_slices=reach,
        **options,
    )


def _features(results: list[ObjectResult]) -> tuple[str, ...]:
    """The evidence a rule for ``results`` uses: :data:`TRIM_FEATURES` when the logged
    propagations trimmed to the source's intensities (``kept`` varies), else :data:`FEATURES`."""
    trimmed = any(s.evidence.get("kept", 1.0) != 1.0 for r in results for s in r.slices)
    return TRIM_FEATURES if trimmed else FEATURES


def _training_rows(
    results: list[ObjectResult], features: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets: present with IoU >= 0.5 -> 1, absent -> 0 (others left out)."""
    x, y = [], []
    for result in results:
        for s in result.slices:
            if s.present and not s.iou >= 0.5:
                continue
            x.append([with_kept(s.evidence)[name] for name in features])
            y.append(1.0 if s.present else 0.0)
    return np.asarray(x, np.float64), np.asarray(y, np.float64)


def object_errors(result: ObjectResult, rule: StopRule, stop: float | None = None) -> int:
    """False + missed slices of one logged object when each direction stops at its first
    slice with presence below ``stop`` (default: the rule's ``stop_below``)."""
    stop = rule.stop_below if stop is None else stop
    cost = 0
    for direction in (1, -1):
        seq = sorted(
            (s for s in result.slices if s.direction == direction), key=lambda s: s.distance
        )
        stopped = False
        for s in seq:
            stopped = stopped or rule.presence(s.evidence) < stop
            cost += (not stopped and not s.present) + (stopped and s.present)
    return cost


def _sequence_errors(results: list[ObjectResult], rule: StopRule, stop: float) -> float:
    """Mean over objects of :func:`object_errors` at ``stop`` (objects weigh equally)."""
    costs = [object_errors(result, rule, stop) for result in results]
    return float(np.mean(costs)) if costs else 0.0


def case_folds(results: list[ObjectResult], em_folds: int = 5) -> Callable[[ObjectResult], str]:
    """The folds of :func:`cross_validated_errors` for the calibration's objects: a BraTS
    case's objects (its whole tumour and core) form one fold; the ssTEM mitochondria, all of
    one stack, are dealt into ``em_folds`` folds in their order in ``results``."""
    order = {r.name: i for i, r in enumerate(r for r in results if not is_mri_object(r.name))}

    def fold(result: ObjectResult) -> str:
        if is_mri_object(result.name):
            return "/".join(result.name.split("/")[:2])
        return f"sstem fold {order[result.name] % em_folds}"

    return fold


def cross_validated_errors(
    results: list[ObjectResult], fold_of: Callable[[ObjectResult], str], **fit_options
) -> dict[str, int]:
    """False + missed slices of every object under a rule fitted (:func:`fit_stop_rule`
    with ``fit_options``) on the objects of the other folds (``fold_of`` names an object's
    fold: a case, so that a case's objects are held out together). ValueError naming the
    fold when a fit fails."""
    errors = {}
    for fold in sorted({fold_of(r) for r in results}):
        held = [r for r in results if fold_of(r) == fold]
        rest = [r for r in results if fold_of(r) != fold]
        try:
            rule = fit_stop_rule(rest, **fit_options)
        except ValueError as err:
            raise ValueError(f"Fold {fold}: {err}") from None
        errors.update({r.name: object_errors(r, rule) for r in held})
    return errors


def fit_stop_rule(
    results: list[ObjectResult],
    l2: float = 1.0,
    source: str = "",
    guard: Callable[[StopRule], list[str]] | None = guard_failures,
    intensity_quantile: float | None = None,
) -> StopRule:
    """Logistic regression on the logged slices (L2-regularised, classes balanced), then the
    stop level that minimises the mean false + missed slices per object on the same logs
    among those with which ``guard`` finds nothing wrong (default: the copied-mask case of
    :mod:`.propagation_guard`; ValueError when no level passes it), and the doubtful level
    that flags 90 % of the absent slices still written. ``intensity_quantile``: the trim the
    logged propagations made, recorded in the rule (``guard`` should propagate with it)."""
    features = _features(results)
    x, y = _training_rows(results, features)
    if len(np.unique(y)) < 2:
        raise ValueError("Calibration needs slices where the object is present and absent.")
    low, high = np.percentile(x, 0.5, axis=0), np.percentile(x, 99.5, axis=0)
    x = np.clip(x, low, high)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    weight = np.where(y > 0, 0.5 / y.mean(), 0.5 / (1 - y.mean()))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        logits = w[0] + z @ w[1:]
        p = 1.0 / (1.0 + np.exp(-logits))
        nll = weight * (np.logaddexp(0, logits) - y * logits)
        grad_logits = weight * (p - y)
        grad = np.concatenate([[grad_logits.sum()], z.T @ grad_logits]) / len(y)
        grad[1:] += l2 * w[1:] / len(y)
        return float(nll.mean() + 0.5 * l2 * np.sum(w[1:] ** 2) / len(y)), grad

    w = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B").x
    rule = StopRule(
        tuple(mean),
        tuple(scale),
        tuple(w[1:]),
        float(w[0]),
        tuple(low),
        tuple(high),
        0.0,
        0.0,
        source,
        features,
    )
    levels = np.round(np.arange(0.05, 0.96, 0.05), 2)
    costs = [_sequence_errors(results, rule, stop) for stop in levels]
    stop, failures = None, {}
    for i in np.argsort(costs, kind="stable"):  # the cheapest level the guard accepts
        candidate = replace(rule, stop_below=float(levels[i]), doubtful_below=float(levels[i]))
        failures[float(levels[i])] = guard(candidate) if guard is not None else []
        if not failures[float(levels[i])]:
            stop = float(levels[i])
            break
    if stop is None:
        low, high = min(failures), max(failures)
        raise ValueError(
            "No stop level of the fitted rule passes the guard, a propagation that copies the "
            f"previous mask past the object's end (at {low}: {'; '.join(failures[low])}; at "
            f"{high}: {'; '.join(failures[high])}): the logged evidence does not separate it; "
            "log more objects or check the model."
        )
    absent = [
        rule.presence(s.evidence)
        for r in results
        for s in r.slices
        if not s.present and rule.presence(s.evidence) >= stop
    ]
    doubtful = float(min(max(np.percentile(absent, 90), stop), 1.0)) if absent else stop
    return StopRule(
        rule.mean,
        rule.scale,
        rule.coef,
        rule.intercept,
        rule.low,
        rule.high,
        stop,
        round(doubtful, 3),
        source,
        features,
        intensity_quantile,
    )
