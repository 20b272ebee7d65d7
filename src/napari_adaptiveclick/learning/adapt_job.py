"""One adaptation from start to file: check everything (:func:`prepare`), run it
(:func:`run_job`), write the adapted checkpoint with its provenance (:func:`save_adapted`).

:func:`prepare` is quick and raises :class:`~.adapt_data.AdaptInputError` (or
:class:`~napari_adaptiveclick.models.errors.CheckpointError`) for every problem a run would
meet: unreadable or mismatched inputs, no objects, a model without trained weights, an
unusable device, an output that may not be written. Nothing trains before it has passed. The
command line (``python -m napari_adaptiveclick adapt``) and the napari widget both use it;
the widget runs :func:`run_job` in a worker thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick.io.images import ImageVolume
from napari_adaptiveclick.io.writable import OutputNotWritableError, check_writable, writes_over
from napari_adaptiveclick.learning.adapt import (
    AdaptProgress,
    AdaptResult,
    AdaptSettings,
    adapt,
)
from napari_adaptiveclick.learning.adapt_data import (
    AdaptInputError,
    HeldOut,
    UserObjects,
    as_volume,
    collect_objects,
    describe_volume,
    hold_out,
)

PROVENANCE_KEY = "adaptation"


@dataclass
class AdaptJob:
    """An adaptation ready to run: the source ``model`` (loaded) and what it came from, the
    user's objects and their split, the settings, and the inputs' provenance."""

    model: Any
    source: dict[str, Any]
    objects: UserObjects
    split: HeldOut
    settings: AdaptSettings
    image: dict[str, Any]
    labels: dict[str, Any]

    def subset(self, indices: tuple[int, ...]) -> Any:
        return self.objects.dataset.subset(indices)

    @property
    def input_files(self) -> tuple[str | None, str | None]:
        """The image and labels files read (None for arrays made in memory)."""
        return self.image["file"], self.labels["file"]


def load_source(checkpoint: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """The model to adapt and its provenance: ``"default"`` or ``"default-mri"`` (the shipped
    weights) or a checkpoint file. A bare architecture name is refused: adaptation starts from trained
    weights."""
    from napari_adaptiveclick.models import registry
    from napari_adaptiveclick.models.checkpoint import default_checkpoint, sha256sum

    name = str(checkpoint)
    if name in registry.SHIPPED_MODELS:
        path = default_checkpoint(name)
        if path is None:
            raise AdaptInputError(
                f"No {name!r} weights are installed: pass --checkpoint FILE with trained weights."
            )
    elif name in registry.MODELS and not Path(name).is_file():
        raise AdaptInputError(
            f"{name!r} is an architecture without trained weights: adaptation starts from a "
            "trained model; pass --checkpoint default or a checkpoint file."
        )
    else:
        path = Path(name)
        if not path.is_file():
            raise AdaptInputError(f"--checkpoint {name}: no such file.")
    model = registry.load_model(path)  # CheckpointError: no weights, NaN weights, not a model
    # The adapted model is written in this project's format, so it is measured as one.
    setattr(model, registry.RELEASE_WEIGHTS, False)
    source = {
        "checkpoint": name,
        "file": str(Path(path).resolve()),
        "sha256": sha256sum(path),
        "model": model.config.name,
    }
    return model, source


def check_output(
    out: str | os.PathLike,
    source_file: str | None,
    overwrite: bool,
    inputs: Sequence[str | os.PathLike | None] = (),
    flag: str = "--out",
) -> Path:
    """The output path, refused now rather than after training if it cannot or may not be
    written: not a ``.pt`` / ``.pth`` name, a folder, a missing parent folder or one that takes
    no new file, an existing file without ``overwrite``, the source checkpoint, one of the
    ``inputs`` (the image and labels files: never written over, even with ``overwrite``), or
    anything in the package's weights folder (the default weights). The messages call the
    output ``flag`` (the widget's: its "Save to" field)."""
    from napari_adaptiveclick.models.checkpoint import WEIGHTS_DIR

    out = Path(out)
    resolved = out.resolve()
    for given in inputs:
        if given is not None and writes_over(out, given):  # the file, or in its store
            raise AdaptInputError(
                f"{flag} {out} is, holds or lies in one of the inputs ({given}); adaptation "
                f"never writes over your image or labels. Choose another {flag}."
            )
    if out.is_dir():
        raise AdaptInputError(f"{flag} {out} is a folder; give a file name such as model.pt.")
    if out.suffix.lower() not in (".pt", ".pth"):
        raise AdaptInputError(
            f"{flag} {out} is not a checkpoint name: give the adapted model a .pt file name "
            "such as model_adapted.pt."
        )
    if resolved.is_relative_to(WEIGHTS_DIR.resolve()):
        raise AdaptInputError(
            f"{flag} {out} is in the package's weights folder {WEIGHTS_DIR}: adaptation never "
            "writes over the default weights; choose another path."
        )
    if source_file is not None and resolved == Path(source_file).resolve():
        raise AdaptInputError(f"{flag} {out} is the source checkpoint; choose another path.")
    if out.exists() and not overwrite:
        raise AdaptInputError(
            f"{out} exists; pass --overwrite to replace it or choose another {flag}."
        )
    try:
        return check_writable(out, flag)
    except OutputNotWritableError as err:
        raise AdaptInputError(str(err)) from None


def prepare(
    image: ImageVolume | np.ndarray,
    labels: ImageVolume | np.ndarray,
    *,
    checkpoint: str | os.PathLike = "default",
    settings: AdaptSettings | None = None,
    axis: int = 0,
) -> AdaptJob:
    """Check the settings, the inputs (files read by
    :func:`~.adapt_data.read_grey`, or arrays in napari order) and their objects, split them,
    then load the source model and check the device. Raises on any problem; trains nothing."""
    from napari_adaptiveclick.models.device import pick_device

    settings = settings or AdaptSettings()
    settings.check()
    image, labels = as_volume(image), as_volume(labels)
    objects = collect_objects(image, labels, axis=axis, min_area=settings.min_area)
    split = hold_out(objects, settings.holdout, settings.max_measured, settings.seed)
    try:
        pick_device(settings.device)
    except ValueError as err:
        raise AdaptInputError(str(err)) from None
    model, source = load_source(checkpoint)
    return AdaptJob(
        model, source, objects, split, settings, describe_volume(image), describe_volume(labels)
    )


def run_job(
    job: AdaptJob,
    progress: Callable[[AdaptProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> AdaptResult:
    """Adapt ``job.model`` on the training objects, measured on the held-out ones."""
    return adapt(
        job.model,
        job.subset(job.split.train),
        job.subset(job.split.measured),
        job.settings,
        progress=progress,
        cancelled=cancelled,
    )


def provenance(job: AdaptJob, result: AdaptResult) -> dict[str, Any]:
    """What the adapted checkpoint records: source model and SHA-256, image and labels files
    with SHA-256, the objects used and held out, steps, minutes, before / after NoC."""
    import napari_adaptiveclick

    objects = job.objects.objects
    measured = set(job.split.measured)
    held = [objects[i].to_dict() | {"measured": i in measured} for i in job.split.held_out]
    return {
        "source": job.source,
        "image": job.image,
        "labels": job.labels,
        "axis": job.objects.axis,
        "min_area": job.objects.min_area,
        "objects_too_small": job.objects.too_small,
        "held_out_by": job.split.by,
        "objects_used": [objects[i].to_dict() for i in job.split.train],
        "objects_held_out": held,
        "steps": result.steps,
        "best_step": result.best_step,
        "minutes": result.seconds / 60,
        "stopped": result.stopped,
        "before": result.before,
        "after": result.after,
        "checks": result.checks,
        "settings": {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(job.settings).items()
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "version": napari_adaptiveclick.__version__,
    }


def save_adapted(
    out: str | os.PathLike,
    job: AdaptJob,
    result: AdaptResult,
    overwrite: bool,
    flag: str = "--out",
) -> Path:
    """Write the adapted weights (float32, exactly what was measured) with their provenance,
    atomically; the output is checked again (:func:`check_output`, naming it ``flag``)."""
    from napari_adaptiveclick.models.checkpoint import atomic_torch_save, checkpoint_dict

    path = check_output(out, job.source["file"], overwrite, job.input_files, flag)
    extra = {PROVENANCE_KEY: provenance(job, result), "train_steps": result.steps}
    atomic_torch_save(checkpoint_dict(result.model, extra=extra), path)
    return path
