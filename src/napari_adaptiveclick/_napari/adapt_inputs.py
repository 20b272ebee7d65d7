"""What the widget's adaptation (:mod:`.adapt_panel`) reads and where it writes: the user's
Image and Labels layers as arrays for :func:`~napari_adaptiveclick.learning.adapt_job.prepare`,
the source checkpoint of a model choice, the default path of the adapted checkpoint (never an
existing file) and the progress line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick._napari.loading import untrained
from napari_adaptiveclick._napari.placement import choose_layers
from napari_adaptiveclick._napari.recovery import image_path
from napari_adaptiveclick.io.images import split_image_name
from napari_adaptiveclick.io.volume import ImageVolume
from napari_adaptiveclick.learning.adapt import AdaptProgress
from napari_adaptiveclick.models.registry import DEFAULT_ARCHITECTURE, DEFAULT_MODEL


@dataclass(frozen=True)
class UserLabels:
    """What an adaptation trains on: the image and a snapshot of its labels (napari order,
    ``(R, C)`` or ``(P, R, C)``; the image may keep an RGB axis, which prepare refuses), the
    slicing ``axis`` and the id of the object left out for being edited (None if none)."""

    image: ImageVolume
    labels: np.ndarray
    axis: int
    left_out: int | None


def read_user_labels(controller, image, labels, settings) -> UserLabels:
    """The layers the controller annotates (its volume and slicing axis), or else ``image``
    and ``labels`` as the form chose them (checked by :func:`.placement.choose_layers`).
    Raises ValueError saying what to do."""
    if controller.ready:
        image, labels, selection = controller.image, controller.labels, controller.selection
        axis, current = controller.annotator.geometry.axis, controller.annotator.object_id
        left_out = current if controller.annotator.has_pixels(current) else None
    else:
        if L.unwrap(labels) is None:
            raise ValueError(
                "Choose the Labels layer that holds your objects (not '<new>') to adapt on."
            )
        image, labels, selection, axis = choose_layers(controller.viewer, image, labels, settings)
        left_out = None
    data = np.asarray(selection.volume(image.data))
    snapshot = np.array(selection.volume(labels.data))  # a copy: annotating goes on
    if len(selection.spatial_axes) == 2:
        data, snapshot = data[0], snapshot[0]
    if left_out is not None:
        snapshot[snapshot == left_out] = 0
    axes = "zyx"[-len(selection.spatial_axes) :] + ("c" if selection.rgb else "")
    path = image_path(image)
    volume = ImageVolume(
        data,
        (1.0,) * data.ndim,
        (0.0,) * data.ndim,
        path=Path(path) if path and Path(path).is_file() else None,
        axes=axes,
    )
    return UserLabels(volume, snapshot, axis, left_out)


def fresh_path(path: Path) -> Path:
    """``path``, or ``path`` with ``-2``, ``-3``, ... before its suffix when it exists."""
    count = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{count}{path.suffix}")
        count += 1
    return candidate


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
