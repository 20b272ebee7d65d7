"""Adapt a trained model to the user's own objects, measured on objects it does not train on.

:func:`adapt` fine-tunes a model on the training objects with the trainer's own step
(:meth:`.trainer.Trainer.train_step`: augmentation, multi-point initial clicks, clicks from the
model's own errors with the previous mask, the set criterion), and measures NoC@85/90 on the
held-out objects with the standard click simulator and the plugin's session
(:mod:`napari_adaptiveclick.evaluation.noc`) before training and at regular checks. It keeps
the weights of the best check and stops early when ``patience`` checks in a row do not improve
on it. The guards against forgetting and over-fitting are a small constant learning rate
(after a short warm-up), gradient clipping, the augmentation of every crop and the early stop
on held-out objects; the run is also bounded by its time budget.

Built to run in a worker thread: ``progress`` is called after every step and check with an
:class:`AdaptProgress`, ``cancelled`` is polled between steps and between held-out objects
(:class:`AdaptCancelled` is raised), and the result is an :class:`AdaptResult`. Reading and
checking the input, the hold-out split and writing the checkpoint are :mod:`.adapt_data`'s and
:mod:`.adapt_job`'s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_adaptiveclick.learning.adapt_data import AdaptInputError

#: Clicking an object stops at this IoU: NoC@85 and NoC@90 are then exact.
STOP_AT = 0.90
#: The figures kept from a held-out measurement (besides ``score``, ``per_object`` scores and
#: ``seconds``).
MEASURED = ("NoC@85", "NoC@90", "NoF@85", "NoF@90", "objects", "clicks")


class AdaptCancelled(Exception):
    """The caller's ``cancelled()`` returned True: the adaptation stopped, nothing is kept."""


@dataclass(frozen=True)
class AdaptSettings:
    """How to adapt (the options of ``python -m napari_adaptiveclick adapt``).

    ``minutes``: wall-time budget of the held-out measurement before training, the training
    steps and the checks. ``lr``: Adam's learning rate after ``warmup_steps`` linear warm-up
    steps. ``batch_size``: crops per step. ``scale``: the augmentation's zoom range.
    ``holdout``: share of the objects (or labelled planes) held out; at most ``max_measured``
    of them are measured. ``checks``: held-out checks in the budget (``check_every``: every so
    many steps instead). ``patience``: checks without improvement before stopping.
    ``max_steps``: a step limit besides the budget. ``max_clicks``: clicks per held-out object.
    ``min_area``: smaller components are not objects. ``threads``: torch CPU threads (None:
    torch's default). ``freeze_blocks``: the patch embeddings and the first so many blocks of
    the ViT backbone are not trained (0: every weight trains; the backbone's depth or more:
    the whole backbone is frozen and only the decoders train). ``freeze_pixel_decoder``: the
    pixel decoder is not trained either (with the whole backbone frozen, only the click-aware
    decoder trains, and a step costs about half: nothing is back-propagated below it).
    ``average_checks``: keep the mean of the weights at every check (measured once more at
    the end) instead of the weights of the best check.
    """

    minutes: float = 5.0
    lr: float = 3e-5
    warmup_steps: int = 5
    batch_size: int = 4
    scale: tuple[float, float] = (0.5, 1.6)
    max_extra_clicks: int = 3
    first_click_prob: float = 0.5
    holdout: float = 0.25
    max_measured: int = 40
    checks: int = 8
    check_every: int | None = None
    patience: int = 3
    max_steps: int | None = None
    max_clicks: int = 20
    min_area: int = 16
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    freeze_blocks: int = 0
    freeze_pixel_decoder: bool = False
    average_checks: bool = False

    def check(self) -> None:
        """Raise :class:`AdaptInputError` for a value no adaptation can run with."""
        problems = [
            f"minutes must be > 0 (got {self.minutes})" if not self.minutes > 0 else "",
            f"lr must be > 0 (got {self.lr})" if not self.lr > 0 else "",
            f"batch size must be >= 1 (got {self.batch_size})" if self.batch_size < 1 else "",
            f"checks must be >= 1 (got {self.checks})" if self.checks < 1 else "",
            f"patience must be >= 1 (got {self.patience})" if self.patience < 1 else "",
            f"max clicks must be >= 1 (got {self.max_clicks})" if self.max_clicks < 1 else "",
            "max steps must be >= 1" if self.max_steps is not None and self.max_steps < 1 else "",
            "check every must be >= 1"
            if self.check_every is not None and self.check_every < 1
            else "",
            f"threads must be >= 1 (got {self.threads})" if (self.threads or 1) < 1 else "",
            f"freeze blocks must be >= 0 (got {self.freeze_blocks})"
            if self.freeze_blocks < 0
            else "",
            "scale must be 0 < min <= max" if not 0 < self.scale[0] <= self.scale[1] else "",
            "first click prob must be in [0, 1]" if not 0 <= self.first_click_prob <= 1 else "",
        ]
        problems = [p for p in problems if p]
        if problems:
            raise AdaptInputError("Bad adaptation settings: " + "; ".join(problems) + ".")


@dataclass(frozen=True)
class AdaptProgress:
    """What :func:`adapt` reports: ``phase`` "before" (the source model measured), "train"
    (after a step) or "check" (after a held-out check); ``check``: the figures measured;
    ``step``: steps done; ``loss``: the last step's loss; ``seconds_left`` of the budget."""

    phase: str
    step: int
    loss: float | None
    seconds_left: float
    check: dict[str, Any] | None = None


@dataclass
class AdaptResult:
    """The outcome: ``model`` holds the weights of the best check (eval mode, on the device
    it trained on); ``before`` / ``after``: the held-out figures of the source model and of
    those weights (:data:`MEASURED`, plus ``score``); ``steps`` trained, ``best_step``, wall
    ``seconds``, why it ``stopped``, and every check."""

    model: Any
    before: dict[str, Any]
    after: dict[str, Any]
    steps: int
    best_step: int
    seconds: float
    stopped: str
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def worse(self) -> bool:
        """The adapted weights do worse on the held-out objects than the source model."""
        return self.after["score"] > self.before["score"]

    @property
    def improved(self) -> bool:
        return self.after["score"] < self.before["score"]

    @property
    def change(self) -> tuple[float, float]:
        """(after - before score, its standard error over the held-out objects): the pairs of
        each object's score before and after. A change within about two standard errors is
        what chance gives with so few objects."""
        pairs = np.subtract(self.after["per_object"], self.before["per_object"])
        spread = float(np.std(pairs, ddof=1)) if pairs.size > 1 else 0.0
        return float(pairs.mean()), spread / math.sqrt(pairs.size)


def score(summary: dict[str, Any]) -> float:
    """The figure that decides (lower is better): the mean of NoC@85 and NoC@90."""
    return (summary["NoC@85"] + summary["NoC@90"]) / 2


def measure(
    model: Any,
    samples: Any,
    *,
    device: str = "auto",
    max_clicks: int = 20,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """NoC@85/90 and NoF@85/90 of ``model`` on ``samples`` (objects normalised to [0, 1]),
    with the plugin's session and the standard click simulator (clicking an object stops at
    IoU :data:`STOP_AT`). The model is left in eval mode."""
    from napari_adaptiveclick.evaluation.noc import evaluate_dataset, summarize
    from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
    from napari_adaptiveclick.learning.evaluation_run import EvaluationSettings, make_session

    session = make_session(model, EvaluationSettings(dataset="adaptation", out="", device=device))

    def poll(done: int, result: Any) -> None:  # noqa: ARG001
        if cancelled is not None and cancelled():
            raise AdaptCancelled

    results = evaluate_dataset(
        session,
        samples,
        max_clicks=max_clicks,
        threshold=PREDICTION_THRESHOLD,
        stop_at=STOP_AT,
        stats=(0.0, 1.0),
        progress=poll,
    )
    summary = summarize(results, max_clicks)
    kept = {k: summary[k] for k in MEASURED}
    per_object = [(r.noc(0.85, max_clicks) + r.noc(0.90, max_clicks)) / 2 for r in results]
    return kept | {
        "score": score(kept),
        "per_object": per_object,
        "seconds": summary["timing"]["seconds"],
    }


def _train_config(settings: AdaptSettings, model_name: str) -> Any:
    from napari_adaptiveclick.learning.config import TrainConfig

    return TrainConfig(
        datasets=[],
        data="",
        out="",
        model=model_name,
        loss="afl",
        batch_size=settings.batch_size,
        lr=settings.lr,
        epochs=1,
        lr_drop_epoch=1,  # no drop: the rate stays constant after the warm-up
        max_steps=settings.max_steps or 10**9,
        warmup_steps=settings.warmup_steps,
        clip_grad=1.0,
        max_extra_clicks=settings.max_extra_clicks,
        first_click_prob=settings.first_click_prob,
        scale_min=settings.scale[0],
        scale_max=settings.scale[1],
        fused_weight=1.0,  # as the default weights were trained
        seed=settings.seed,
        evaluate=False,
        device=settings.device,
        num_threads=settings.threads,
    )


def freeze(model: Any, blocks: int, pixel_decoder: bool = False) -> None:
    """Stop training the patch embeddings (image and click maps) and the first ``blocks`` ViT
    blocks of ``model`` (``blocks`` <= 0: nothing is frozen), and its pixel decoder when
    ``pixel_decoder``. The frozen weights keep ``requires_grad`` False, so the optimiser never
    moves them."""
    if pixel_decoder:
        model.pixel_decoder.requires_grad_(False)
    if blocks <= 0:
        return
    backbone = model.backbone
    for module in (model.patch_embed_coords, backbone.patch_embed, *backbone.blocks[:blocks]):
        module.requires_grad_(False)
    backbone.pos_embed.requires_grad_(False)


def adapt(
    model: Any,
    train: Any,
    held_out: Any,
    settings: AdaptSettings,
    *,
    progress: Callable[[AdaptProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> AdaptResult:
    """Fine-tune ``model`` (trained weights; changed in place) on the ``train`` objects
    (an :class:`~.datasets.ObjectDataset`), measuring the ``held_out`` ones before and at
    every check; see the module docstring. At least one step is trained."""
    import torch

    from napari_adaptiveclick.learning.trainer import Trainer

    settings.check()
    report = progress or (lambda update: None)
    is_cancelled = cancelled or (lambda: False)
    clock = time.monotonic
    start = clock()
    deadline = start + settings.minutes * 60

    def left() -> float:
        return max(0.0, deadline - clock())

    freeze(model, settings.freeze_blocks, settings.freeze_pixel_decoder)
    trainer = Trainer.for_objects(_train_config(settings, model.config.name), [train], model)
    device = str(trainer.device)

    def check_now() -> dict[str, Any]:
        began = clock()
        figures = measure(trainer.model, held_out, device=device,
                          max_clicks=settings.max_clicks, cancelled=is_cancelled)  # fmt: skip
        trainer.model.train()
        return figures | {"check_seconds": clock() - began}

    before = check_now()
    report(AdaptProgress("before", 0, None, left(), before))
    check_seconds = before["check_seconds"]
    interval = max(settings.minutes * 60 / settings.checks, 3 * check_seconds)
    next_check = clock() + interval
    checks: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    best_state: dict[str, Any] | None = None
    stale, step, step_seconds, losses, mean = 0, 0, 0.0, [], _MeanState()
    stopped = ""
    while not stopped:
        if is_cancelled():
            raise AdaptCancelled
        over_steps = settings.max_steps is not None and step >= settings.max_steps
        final = check_seconds * (1 + settings.average_checks)  # the mean is measured too
        out_of_time = step > 0 and clock() + step_seconds + final > deadline
        if over_steps or out_of_time:
            stopped = "step limit" if over_steps else "time budget"
            since = step - (checks[-1]["step"] if checks else 0)
            if checks and (since == 0 or (out_of_time and 2 * since < checks[0]["step"])):
                break  # measured already, or too few steps since the last check to pay for one
        else:
            began = clock()
            metrics = trainer.train_step(step)
            step += 1
            step_seconds = clock() - began
            losses.append(metrics["loss"])
            if not math.isfinite(metrics["loss"]):
                stopped = "loss not finite"
            report(AdaptProgress("train", step, metrics["loss"], left()))
            due = (
                step % settings.check_every == 0 if settings.check_every else clock() >= next_check
            )
            if not due and not stopped:
                continue
        figures = check_now()
        check_seconds = figures["check_seconds"]
        next_check = clock() + max(interval, 3 * check_seconds)
        figures |= {"step": step, "loss": sum(losses) / max(len(losses), 1)}
        losses = []
        checks.append(figures)
        if settings.average_checks and math.isfinite(figures["loss"]):
            mean.add(model.state_dict())
        if best is None or figures["score"] < best["score"]:
            best, stale = figures, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            stale += 1
        report(AdaptProgress("check", step, figures["loss"], left(), figures))
        if not stopped and stale >= settings.patience:
            stopped = "early stop"
        elif not stopped and figures["NoC@90"] <= 1.0:
            stopped = "held-out objects perfect"
    if settings.average_checks and mean.count > 1:
        best_state = mean.state
        with torch.no_grad():
            model.load_state_dict(best_state)
        best = check_now() | {"step": step, "loss": checks[-1]["loss"], "averaged": mean.count}
    with torch.no_grad():
        model.load_state_dict(best_state)
    return AdaptResult(
        model=model.eval(),
        before=before,
        after=best,
        steps=step,
        best_step=best["step"],
        seconds=clock() - start,
        stopped=stopped,
        checks=checks,
    )


class _MeanState:
    """The running mean of state dicts (floating tensors; the others: the latest), on the CPU."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.count = 0

    def add(self, state: dict[str, Any]) -> None:
        self.count += 1
        for key, value in state.items():
            value = value.detach().to("cpu", copy=True)
            if key in self.state and value.is_floating_point():
                self.state[key] += (value - self.state[key]) / self.count
            else:
                self.state[key] = value


def format_table(result: AdaptResult, measured: int, by: str) -> str:
    """The before / after table of the held-out objects."""
    keys = ("NoC@85", "NoC@90", "NoF@85", "NoF@90")
    head = f"held-out objects ({measured}, by {by})"
    rows = [
        ("before (source model)", result.before),
        (f"after (step {result.best_step} of {result.steps})", result.after),
    ]
    width = max(len(head), *(len(r[0]) for r in rows)) + 2
    lines = [head.ljust(width) + "".join(k.rjust(8) for k in keys)]
    for name, figures in rows:
        cells = [f"{figures[k]:.2f}" if k.startswith("NoC") else str(figures[k]) for k in keys]
        lines.append(f"  {name}".ljust(width) + "".join(c.rjust(8) for c in cells))
    mean, error = result.change
    if measured < 2:  # one object: no spread to tell chance from a change
        lines.append(
            f"change of the mean of NoC@85 and NoC@90: {mean:+.2f} (one held-out object: "
            "too few to tell a change from chance; label more objects)"
        )
    else:
        lines.append(
            f"change of the mean of NoC@85 and NoC@90: {mean:+.2f} +- {error:.2f} (standard "
            f"error over {measured} objects{'; within chance' if abs(mean) < 2 * error else ''})"
        )
    return "\n".join(lines)
