"""One NoC evaluation run: a checkpoint (or the random-walker baseline) on a dataset split.

:func:`run_evaluation` simulates up to ``max_clicks`` clicks per object (SPEC.md section 4,
:mod:`napari_adaptiveclick.evaluation.noc`) and writes to ``settings.out``:

- ``metrics.json``: NoC@80/85/90, NoF@85/90, the mIoU@k curve, the settings, checkpoint,
  device and versions. Everything is deterministic except the ``timing`` entry.
- ``per_object.csv`` and ``miou_curve.png`` (:mod:`napari_adaptiveclick.evaluation.report`).

It belongs to ``learning`` because its objects come from :mod:`.datasets`;
``python -m training.evaluate`` is the command line over it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick.evaluation.noc import (
    BOX_JITTER,
    FIRST_PROMPTS,
    Predictor,
    evaluate_dataset,
    summarize,
)
from napari_adaptiveclick.evaluation.report import (
    STALE_NOTE,
    EvaluationError,
    format_comparison,
    plot_miou_curve,
    write_per_object,
)
from napari_adaptiveclick.interactive.focus import BOX_MARGIN, ZOOM_MIN_SIZE
from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.learning.datasets import (
    DatasetError,
    ObjectDataset,
    ObjectSample,
    build_dataset,
)

RANDOM_WALKER = "random_walker"
# Evaluation protocol -> ClickSession protocol.
# "plugin" is whatever the plugin's session does ("auto": the release's path for released
# checkpoints, this project's for its own).
PROTOCOLS = {"plugin": "auto", "release": "release"}


@dataclass(frozen=True)
class EvaluationSettings:
    """What to evaluate and how (the options of ``python -m training.evaluate``).

    ``dataset``, ``data``, ``split`` and ``dataset_options`` go to
    :func:`~napari_adaptiveclick.learning.datasets.build_dataset`; ``objects`` keeps a random
    subset of that many objects (drawn with ``seed``). ``checkpoint`` is a path or
    "default"; ``model`` the architecture it must hold (None: read from the checkpoint) or
    :data:`RANDOM_WALKER` for the baseline (then no checkpoint). The rest is the protocol:
    ``max_clicks``, ``stop_at`` (stop clicking an object at this IoU), ``protocol``:
    "plugin" (exactly what the napari plugin does: ``ClickSession``'s defaults, the
    first-click window, no flips) or "release" (the authors' inference path,
    ``ClickSession(protocol="release")``: whole-image first click, flips on), and the
    session options that may override it: ``zoom_in``, ``flip_tta`` (None: the protocol's),
    ``first_click_window`` (None: the protocol's; pixels or "auto"; plugin only),
    ``first_click_grow``, ``zoom_min_size``, ``stretch_crops`` (stretch each crop to the
    square input instead of squaring it, as the release does) and ``device``. ``object_crop`` F crops every
    image to its object's bounding box grown F times about its centre (at least
    :data:`MIN_CROP` pixels a side): small images, as users crop them, instead of whole
    slices. ``first_prompt``: how each object starts (:data:`FIRST_PROMPTS`: a click, the
    object's box jittered with ``seed``, or a stroke along it); clicks follow; ``box_margin``
    is the session's (a box keeps the mask near it; None: no limit). Outputs go to ``out``.
    """

    dataset: str
    out: str | Path
    data: str | None = None
    split: str = "test"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    objects: int | None = None
    seed: int = 0
    checkpoint: str | None = None
    model: str | None = None
    max_clicks: int = 20
    stop_at: float | None = None
    protocol: str = "plugin"
    zoom_in: bool = True
    flip_tta: bool | None = None
    first_click_window: int | str | None = None
    first_click_grow: bool = True
    stretch_crops: bool = False  # stretch crops to the square input (the release's way)
    zoom_min_size: int = ZOOM_MIN_SIZE
    device: str = "auto"
    object_crop: float | None = None
    first_prompt: str = "click"
    box_margin: float | None = BOX_MARGIN


def load_samples(settings: EvaluationSettings) -> ObjectDataset:
    """The dataset split of ``settings``, reduced to ``objects`` random objects if asked."""
    try:
        samples = build_dataset(
            settings.dataset, settings.data, settings.split, **settings.dataset_options
        )
    except DatasetError as err:
        raise EvaluationError(str(err)) from err
    if settings.objects is not None:
        samples = samples.random_subset(settings.objects, seed=settings.seed)
    if settings.object_crop is not None:
        if settings.object_crop < 1.0:
            raise EvaluationError(f"object_crop must be >= 1, got {settings.object_crop}.")
        return [crop_to_object(s, settings.object_crop) for s in samples]
    return samples


MIN_CROP = 32


def crop_to_object(sample: ObjectSample, factor: float) -> ObjectSample:
    """``sample`` cut to its object's bounding box grown ``factor`` times about its centre
    (at least :data:`MIN_CROP` pixels a side, clipped to the image)."""
    rows, cols = np.nonzero(sample.mask.any(1))[0], np.nonzero(sample.mask.any(0))[0]
    window = []
    for lo, hi, limit in (
        (rows[0], rows[-1] + 1, sample.mask.shape[0]),
        (cols[0], cols[-1] + 1, sample.mask.shape[1]),
    ):
        half = max((hi - lo) * factor, MIN_CROP) / 2
        centre = (lo + hi) / 2
        window.append(
            slice(max(0, int(round(centre - half))), min(limit, int(round(centre + half))))
        )
    window = tuple(window)
    return ObjectSample(sample.image[window], sample.mask[window], sample.name, sample.group)


def build_predictor(settings: EvaluationSettings) -> tuple[Predictor, dict[str, Any]]:
    """The predictor ``settings`` ask for, and what to record about it in metrics.json."""
    import napari_adaptiveclick

    versions = {"napari_adaptiveclick": napari_adaptiveclick.__version__, "numpy": np.__version__}
    if settings.model == RANDOM_WALKER:
        import skimage

        from napari_adaptiveclick.evaluation.baseline import RandomWalkerPredictor

        versions["scikit-image"] = skimage.__version__
        info = {"model": RANDOM_WALKER, "checkpoint": None, "device": "cpu", "versions": versions}
        return RandomWalkerPredictor(), info

    import torch

    from napari_adaptiveclick.models.errors import CheckpointError
    from napari_adaptiveclick.models.registry import CONFIGS, build_model

    if settings.model is not None and settings.model not in CONFIGS:
        raise EvaluationError(
            f"Unknown model {settings.model!r}; choose one of {', '.join(sorted(CONFIGS))} or {RANDOM_WALKER}."
        )
    try:
        model = build_model(settings.model, settings.checkpoint)
    except (CheckpointError, OSError) as err:
        raise EvaluationError(f"Cannot load checkpoint {settings.checkpoint}: {err}") from err
    session = make_session(model, settings)
    versions["torch"] = torch.__version__
    info = {
        "model": session.model_name,
        "checkpoint": str(settings.checkpoint),
        "device": session.device,
        "versions": versions,
    }
    return session, info


def make_session(model: Any, settings: EvaluationSettings) -> Any:
    """The :class:`~napari_adaptiveclick.interactive.session.ClickSession` that evaluates
    ``model`` (a module, or what ``ClickSession`` accepts) under ``settings``' protocol and
    session options. Raises :class:`EvaluationError` for a bad protocol or device."""
    from napari_adaptiveclick.interactive.session import ClickSession

    if settings.protocol not in PROTOCOLS:
        raise EvaluationError(
            f"Unknown protocol {settings.protocol!r}; choose one of {', '.join(PROTOCOLS)}."
        )
    if settings.protocol == "release" and settings.first_click_window is not None:
        raise EvaluationError(
            "The release protocol shows the first click the whole image: "
            "drop --first-click-window or use --protocol plugin."
        )
    window = "auto" if settings.first_click_window is None else settings.first_click_window
    try:
        session = ClickSession(
            model,
            device=settings.device,
            zoom_in=settings.zoom_in,
            flip_tta=settings.flip_tta,
            threshold=PREDICTION_THRESHOLD,
            first_click_window=window,
            first_click_grow=settings.first_click_grow,
            zoom_min_size=settings.zoom_min_size,
            protocol=PROTOCOLS[settings.protocol],
            box_margin=settings.box_margin,
        )
    except ValueError as err:  # an unusable device
        raise EvaluationError(str(err)) from err
    session.square_crops = session.square_crops and not settings.stretch_crops
    return session


def run_evaluation(settings: EvaluationSettings) -> dict[str, Any]:
    """Evaluate as ``settings`` say (a progress bar on stderr), write the outputs, print the
    table and return the metrics.json content. Raises :class:`EvaluationError` on bad input."""
    from tqdm import tqdm

    if settings.first_prompt not in FIRST_PROMPTS:
        raise EvaluationError(f"first_prompt must be one of {', '.join(FIRST_PROMPTS)}.")
    if settings.first_prompt != "click" and settings.model == RANDOM_WALKER:
        raise EvaluationError(f"The {RANDOM_WALKER} baseline takes clicks only.")
    samples = load_samples(settings)
    predictor, info = build_predictor(settings)
    stop_at = settings.stop_at
    with tqdm(total=len(samples), desc="objects", unit="obj", file=sys.stderr) as bar:
        results = evaluate_dataset(
            predictor,
            samples,
            max_clicks=settings.max_clicks,
            threshold=PREDICTION_THRESHOLD,
            stop_at=stop_at,
            stats=(0.0, 1.0),  # samples are normalised to [0, 1] with their volume's statistics
            progress=lambda done, result: bar.update(1),
            first_prompt=settings.first_prompt,
            seed=settings.seed,
        )
    summary = summarize(results, settings.max_clicks)
    timing = summary.pop("timing")
    learned = info["model"] != RANDOM_WALKER  # the baseline has no zoom-in, TTA or window
    zoom_in = learned and settings.zoom_in
    window = predictor.first_click_window if zoom_in else None  # used only with zoom-in
    metrics = {
        "dataset": settings.dataset,
        "data": settings.data,
        "split": settings.split,
        "dataset_options": settings.dataset_options,
        "selection": {
            "object_crop": settings.object_crop,
            "objects": settings.objects,
            "seed": settings.seed if settings.objects else None,
        },
        **info,
        "protocol": {
            "name": settings.protocol if learned else None,
            "session": getattr(predictor, "protocol", None),
            "max_clicks": settings.max_clicks,
            "threshold": PREDICTION_THRESHOLD,
            "stop_at": stop_at,
            "zoom_in": zoom_in,
            "zoom_min_size": settings.zoom_min_size if zoom_in else None,
            "flip_tta": learned and predictor.flip_tta,
            # the window in pixels ("auto" resolved), and whether it may grow
            "first_click_window": window,
            "first_click_grow": window is not None and predictor.first_click_grow,
            "square_crops": learned and predictor.square_crops,
            "first_prompt": settings.first_prompt,  # a box: jittered with the seed
            "box_jitter": BOX_JITTER if settings.first_prompt == "box" else None,
            "seed": settings.seed if settings.first_prompt == "box" else None,
            "box_margin": settings.box_margin if settings.first_prompt == "box" else None,
        },
        "metrics": summary,
        "timing": timing,
    }
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / STALE_NOTE).unlink(missing_ok=True)  # a fresh evaluation of that folder
    write_per_object(out / "per_object.csv", results, settings.max_clicks)
    plot_miou_curve(out / "miou_curve.png", [(info["model"], metrics)])
    print(format_comparison([(out.name, metrics)], paper=False))
    print(f"wrote metrics.json, per_object.csv and miou_curve.png to {out}", file=sys.stderr)
    return metrics
