"""What the widget's adaptation (:mod:`.adapt_panel`) reads and where it writes: the user's
Image and Labels layers, chosen and checked on the Qt thread without reading them
(:func:`choose_volumes`), then read and prepared in a worker (:func:`prepare_adaptation`,
with :class:`EditWatch` noting edits during the read), the source checkpoint of a model
choice, the default path of the adapted checkpoint (never an existing file) and the texts
of the panel.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Labels

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick._napari.jobs import brief
from napari_adaptiveclick._napari.layers import image_path
from napari_adaptiveclick._napari.loading import avoid_triton_llvm_clash, untrained
from napari_adaptiveclick._napari.placement import choose_volume
from napari_adaptiveclick.io.images import split_image_name
from napari_adaptiveclick.io.volume import ImageVolume
from napari_adaptiveclick.learning.adapt import (
    AdaptProgress,
    AdaptResult,
    AdaptSettings,
    format_table,
)
from napari_adaptiveclick.learning.adapt_job import AdaptJob, check_output, prepare
from napari_adaptiveclick.models.errors import CheckpointError
from napari_adaptiveclick.models.registry import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_MODEL,
    default_for_image,
)

LAZY_LIMIT = 2 * 1024**3  # bytes: a lazy (on-disk) volume larger than this is not read to adapt


@dataclass(frozen=True)
class UserVolumes:
    """What an adaptation reads, chosen on the Qt thread without reading anything: the
    ``image`` and ``labels`` volumes (``(P, R, C[, 3])`` views, in memory or lazy), the Labels
    layer they come from, whether the image is 2D (``flat``: one plane), its ``axes``
    (``"zyx"``, ``"yx"``, ``+ "c"`` for RGB) and file, the slicing ``axis`` and the id of the
    object being edited (None when not annotating)."""

    image: Any
    labels: Any
    labels_layer: Labels
    flat: bool
    axes: str
    path: Path | None
    axis: int
    editing: int | None


@dataclass(frozen=True)
class UserLabels:
    """What an adaptation trains on: the image and a snapshot of its labels (napari order,
    ``(R, C)`` or ``(P, R, C)``; the image may keep an RGB axis, which prepare refuses), the
    slicing ``axis`` and the id of the object left out for being edited (None if none)."""

    image: ImageVolume
    labels: np.ndarray
    axis: int
    left_out: int | None


def choose_volumes(controller, image, labels, settings) -> UserVolumes:
    """The layers the controller annotates (its volume and slicing axis), or else ``image``
    and ``labels`` as the form chose them (checked as :func:`.placement.choose_volume` and
    :func:`.layers.check_labels` do). Reads no data: cheap on the Qt thread. Raises
    ValueError saying what to do, also for a lazy volume over :data:`LAZY_LIMIT` bytes."""
    if controller.ready:
        image, labels, selection = controller.image, controller.labels, controller.selection
        axis, editing = controller.annotator.geometry.axis, controller.annotator.object_id
    else:
        labels = L.unwrap(labels)
        if labels is None:
            raise ValueError(
                "Choose the Labels layer that holds your objects (not '<new>') to adapt on."
            )
        image, selection, axis = choose_volume(controller.viewer, image, settings)
        L.check_labels(labels, image)
        editing = None
    views = selection.volume(image.data), selection.volume(labels.data)
    for layer, view in zip((image, labels), views, strict=True):
        if not isinstance(view, np.ndarray) and view.nbytes > LAZY_LIMIT:
            raise ValueError(
                f"'{layer.name}' is {view.nbytes / 1024**3:.1f} GiB on disk, more than the "
                f"{LAZY_LIMIT / 1024**3:g} GiB an adaptation reads into memory: adapt on a crop "
                "(a smaller layer that holds your objects), or with the command line "
                "(python -m napari_adaptiveclick adapt) on a smaller file."
            )
    path = image_path(image)
    axes = "zyx"[-len(selection.spatial_axes) :] + ("c" if selection.rgb else "")
    path = Path(path) if path and Path(path).is_file() else None
    flat = len(selection.spatial_axes) == 2
    return UserVolumes(*views, labels, flat, axes, path, axis, editing)


def read_user_labels(volumes: UserVolumes) -> UserLabels:
    """Read ``volumes`` (in a worker: lazy data is read whole) into the image and a snapshot
    of the labels, without the object being edited when it has pixels (not committed)."""
    data = np.asarray(volumes.image)
    snapshot = np.asarray(volumes.labels)
    if isinstance(volumes.labels, np.ndarray) or not snapshot.flags.owndata:
        snapshot = snapshot.copy()  # a copy: annotating goes on
    if volumes.flat:
        data, snapshot = data[0], snapshot[0]
    left_out = volumes.editing
    if left_out is not None:
        inside = snapshot == left_out
        left_out = left_out if inside.any() else None
        snapshot[inside] = 0
    volume = ImageVolume(
        data, (1.0,) * data.ndim, (0.0,) * data.ndim, path=volumes.path, axes=volumes.axes
    )
    return UserLabels(volume, snapshot, volumes.axis, left_out)


SAVE_TO = "'Save to' file"  # what output messages call the panel's output
UNSAVED = "The adapted model in memory is not saved: press Save, or Adapt model again to drop it."
BUSY = (
    "Cannot adapt while a prediction, propagation or model loading runs: wait for it to finish "
    "(or Cancel it), then adapt."
)


def prepare_adaptation(
    volumes: UserVolumes, model: str, settings: AdaptSettings, out: Path, overwrite: bool
) -> Generator[UserLabels, None, tuple[UserLabels, AdaptJob]]:
    """In a worker: read ``volumes`` (:func:`read_user_labels`; yields once they are read),
    then check them and load ``model`` (:func:`~.adapt_job.prepare`) and check the output
    ``out``. Returns the labels read and the job; raises what those raise."""
    user = read_user_labels(volumes)
    yield user
    avoid_triton_llvm_clash()  # prepare loads the model (torch)
    job = prepare(
        user.image, user.labels, checkpoint=adapt_source(model), settings=settings, axis=user.axis
    )
    check_output(out, job.source["file"], overwrite, job.input_files, SAVE_TO)
    return user, job


def cannot_text(error: Exception) -> str:
    """Why the layers could not be read or the job prepared: the message of a bad input
    (:class:`~.adapt_data.AdaptInputError` is a ValueError), a bad checkpoint or file, else
    the error's type with it (a MemoryError: with what to do)."""
    if isinstance(error, ValueError | CheckpointError | OSError):
        return str(error)
    text = f"{type(error).__name__}: {error}".removesuffix(": ")
    if isinstance(error, MemoryError):
        return (
            f"{text}: not enough memory for these layers; adapt on a crop, or with the "
            "command line on a smaller file."
        )
    return text


class EditWatch:
    """Whether the labels may have been written while a worker read them: from its creation
    until :meth:`stop`, a job of the controller ran (a prompt, undo, propagation...) or napari
    painted on the Labels layer or replaced its data."""

    def __init__(self, controller, labels: Labels) -> None:
        self.edited = False
        self._controller, self._labels = controller, labels
        controller.changed.connect(self._on_changed)
        labels.events.paint.connect(self._on_edit)
        labels.events.data.connect(self._on_edit)

    def _on_changed(self) -> None:
        self.edited = self.edited or self._controller.busy

    def _on_edit(self, _event=None) -> None:
        self.edited = True

    def stop(self) -> None:
        """Stop watching (again: no-op)."""
        if self._labels is not None:
            self._controller.changed.disconnect(self._on_changed)
            self._labels.events.paint.disconnect(self._on_edit)
            self._labels.events.data.disconnect(self._on_edit)
            self._labels = None


def fresh_path(path: Path) -> Path:
    """``path``, or ``path`` with ``-2``, ``-3``, ... before its suffix when it exists."""
    count = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{count}{path.suffix}")
        count += 1
    return candidate


class OutputChoice:
    """Where the adapted checkpoint goes: the path typed or chosen in the save dialog, else
    the default beside the image (:func:`default_checkpoint_path`); an existing file only
    when the dialog confirmed replacing exactly that file (:attr:`confirmed`), else the next
    free name. A confirmation serves one save (:meth:`saved`) and ends when the path text
    changes to another file (:meth:`text_changed`)."""

    def __init__(self) -> None:
        self.confirmed: Path | None = None

    def target(self, text: str, image) -> Path:
        """The file to write for the path ``text`` (empty: the default beside ``image``; a
        name without a suffix gets ``.pt``, as in the save dialog)."""
        if not text.strip():
            return default_checkpoint_path(image)
        path = Path(text.strip()).expanduser()
        if path.is_dir():
            return path  # refused as a folder when checked (adapt_job.check_output)
        path = path if path.suffix else path.with_name(f"{path.name}.pt")
        return path if path == self.confirmed else fresh_path(path)

    def overwrite(self, text: str, image) -> bool:
        """True when :meth:`target` is an existing file the user confirmed replacing."""
        target = self.target(text, image)
        return target == self.confirmed and target.exists()

    def chosen(self, answer: str) -> Path:
        """The path to show for the save dialog's ``answer``: that file (confirmed when it
        exists: the dialog asked to replace it); without a suffix, with ``.pt`` added, and
        the next free name when that file exists (the dialog asked nothing about it)."""
        path = Path(answer)
        if path.suffix:
            self.confirmed = path if path.exists() else None
            return path
        self.confirmed = None
        return fresh_path(Path(f"{path}.pt"))

    def text_changed(self, text: str) -> None:
        if self.confirmed is not None and Path(text.strip()).expanduser() != self.confirmed:
            self.confirmed = None

    def saved(self) -> None:
        """The confirmed file was written: the next save goes to a free name again."""
        self.confirmed = None


def default_checkpoint_path(image) -> Path:
    """Where an adapted model goes by default: ``<image stem>_adapted.pt`` beside the image's
    file (when it is known and its folder writable), else in the home folder; never a file
    that exists (:func:`fresh_path`)."""
    source = image_path(image) if image is not None else None
    folder = Path(source).parent if source else None
    if folder is None or not folder.is_dir() or not os.access(folder, os.W_OK):
        folder = Path.home()
    stem = split_image_name(source)[0] if source else getattr(image, "name", "") or "image"
    stem = re.sub(r"[^\w.-]+", "_", stem)  # a layer name may hold any character
    return fresh_path(folder / f"{stem}_adapted.pt")


def shipped_default(controller) -> str:
    """The shipped weights for the image being annotated (``default-mri`` for scanner files)."""
    image = getattr(controller.image if controller.ready else None, "source", None)
    return default_for_image(getattr(image, "path", None))


def adapt_source(model: str) -> str:
    """The checkpoint to adapt for a widget model choice: the shipped weights for
    ``default`` and for their architecture's name (the session loads them for both)."""
    return DEFAULT_MODEL if model == DEFAULT_ARCHITECTURE and not untrained(model) else model


def progress_text(update: AdaptProgress) -> str:
    """One line for the progress bar: the step, its loss and the time left."""
    minutes, seconds = divmod(int(update.seconds_left), 60)
    left = f"{minutes}:{seconds:02d} left"
    if update.check is not None:  # the source model measured, or a check
        what = "source model" if update.phase == "before" else f"step {update.step} check"
        c = update.check
        return f"{what}: NoC@85 {c['NoC@85']:.2f}, NoC@90 {c['NoC@90']:.2f} | {left}"
    return f"step {update.step} | loss {update.loss:.3f} | {left}"


def start_text(model: str, job: AdaptJob, left_out: int | None) -> str:
    """The panel's message when training starts: the objects, their split, those left out."""
    split, objects, settings = job.split, job.objects, job.settings
    edited = (
        f" Object {left_out} is being edited, so it is left out: commit it to use it."
        if left_out is not None
        else ""
    )
    return (
        f"Adapting '{model}' for up to {settings.minutes:g} min on {len(objects.objects)} "
        f"objects: {len(split.train)} to train on, {len(split.held_out)} held out by "
        f"{split.by} ({objects.too_small} smaller than {settings.min_area} px left out)."
        f"{edited}"
    )


def result_text(result: AdaptResult, job: AdaptJob) -> str:
    """The before / after table of a finished run and how it ended."""
    split = job.split
    return (
        f"{format_table(result, len(split.measured), split.by)}\n"
        f"{result.steps} steps in {result.seconds / 60:.1f} min, stopped: {result.stopped}; "
        f"kept the weights of step {result.best_step}."
    )


def worse_text(result: AdaptResult) -> str:
    """What the panel says of a worse result that it does not save."""
    return (
        "Adaptation made the held-out objects WORSE (mean of NoC@85 and NoC@90 "
        f"{result.before['score']:.2f} -> {result.after['score']:.2f}): not saved. "
        "Tick 'Keep even if worse' to save it anyway, or label more objects and adapt again."
    )


def saved_text(result: AdaptResult, path: Path) -> str:
    """What the panel says once the adapted checkpoint is written (a worse result only when
    kept)."""
    if result.worse:
        verdict = "WARNING: the held-out objects got worse; saved as asked. "
    elif not result.improved:
        verdict = "The held-out objects did not improve (no change in NoC). "
    else:
        verdict = ""
    return (
        f"{verdict}Saved the adapted model to {path} (provenance under 'adaptation'). "
        "'Use adapted model' annotates with it."
    )


def save_failed_text(error: Exception) -> str:
    """What the panel says when the adapted checkpoint could not be written (it is kept)."""
    return (
        f"Could not save the adapted model: {brief(str(error), limit=300)} It is kept: "
        "choose another file in 'Save to' and press Save."
    )
