"""Loading the model for the widget: the settings it is built from, which models it offers
(those with trained weights, unless the user asks for others), and the worker function.

Kept apart from the controller because it also carries a workaround for a crash that only
concerns loading torch inside a process that already draws with Mesa's OpenGL.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_adaptiveclick._napari.jobs import brief
from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.io.stores import ON_DISK_BYTES
from napari_adaptiveclick.models.errors import CheckpointError
from napari_adaptiveclick.models.registry import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_MODEL,
    MODELS,
    SHIPPED_MODELS,
    shipped_weights_installed,
)
from napari_adaptiveclick.volume import VolumeAnnotator


@dataclass(frozen=True)
class AnnotationSettings:
    """What the widget chose. ``model``: "default" or "default-mri" (shipped weights), a registry
    name or a checkpoint path; a name without trained weights (a random model) only with
    ``allow_untrained``. ``axis``: slicing axis of the volume (None: the coarsest spacing).
    ``extra_axis``: the time/channel axis of 4D data. ``labels_on_disk``: new Labels larger
    than this (bytes) live in a zarr store on disk (:mod:`.lazy_layers`)."""

    model: str = DEFAULT_MODEL
    device: str = "auto"
    threshold: float = PREDICTION_THRESHOLD
    axis: int | None = None
    extra_axis: int | None = None
    overwrite: bool = False
    allow_untrained: bool = False
    labels_on_disk: float = ON_DISK_BYTES  # new Labels above this many bytes: a zarr store


class DeviceError(ValueError):
    """The chosen device cannot run here (its message is one short sentence)."""


def load_error_text(error: Exception, model: str) -> str:
    """What the user reads when loading ``model`` failed with ``error``: one line."""
    if isinstance(error, DeviceError):
        return str(error)
    return (
        f"Could not load model '{model}': {brief(str(error)).rstrip('.')}. "
        "Choose another model or checkpoint."
    )


UNTRAINED_WARNING = (  # the widget's warning beside 'Allow models without weights'
    "Models without trained weights run random weights: their masks are meaningless, and a "
    "vit_h click takes tens of seconds on a CPU. For testing only."
)


def untrained(model: str) -> bool:
    """True when ``model`` (a widget choice) names an architecture without installed trained
    weights, which would run randomly initialised; False for checkpoint paths."""
    if model in SHIPPED_MODELS and model != DEFAULT_MODEL:
        return False  # another shipped file: loading it says so when it is not installed
    name = DEFAULT_ARCHITECTURE if model == DEFAULT_MODEL else model
    if name not in MODELS:
        return False
    try:
        return not MODELS[name].weights_installed
    except CheckpointError:  # installed but damaged: loading says so
        return False


def offered_models(with_untrained: bool = False) -> list[str]:
    """The model choices of the widget: those with trained weights, then (``with_untrained``)
    the architectures without, which run random weights."""
    without = {name: untrained(name) for name in (DEFAULT_MODEL, *MODELS)}
    trained = [name for name, random in without.items() if not random]
    shipped = [n for n in SHIPPED_MODELS[1:] if shipped_weights_installed(n)]
    at = 1 if trained[:1] == [DEFAULT_MODEL] else 0  # right after the default weights
    trained[at:at] = shipped
    return trained + (
        [name for name, random in without.items() if random] if with_untrained else []
    )


def untrained_warning(settings: AnnotationSettings) -> str:
    """The warning to show for ``settings.model`` ("" for trained weights or a checkpoint).
    Raises ValueError for a model without weights unless ``settings.allow_untrained``."""
    if not untrained(settings.model):
        return ""
    if not settings.allow_untrained:
        raise ValueError(
            f"Model '{settings.model}' has no trained weights installed: it would run random "
            "weights and give meaningless masks. Choose a model with weights, Browse... for a "
            "checkpoint, or tick 'Allow models without weights'."
        )
    return (
        f"WARNING: model '{settings.model}' has no trained weights: it runs random weights, "
        "whose masks are meaningless (for testing only)."
    )


def usable_device(device: str) -> str:
    """The torch device for ``device`` ("auto", "cpu", ...); DeviceError, in one sentence,
    when it cannot run here (torch's own message lists every backend it was built with)."""
    from napari_adaptiveclick.models.device import pick_device

    try:
        return pick_device(device)
    except ValueError as error:
        reason = brief(str(error.__context__ or error), limit=120).rstrip(".")
        where = (
            " (MPS is Apple's GPU, on macOS only)"
            if device == "mps" and sys.platform != "darwin"
            else ""
        )
        raise DeviceError(
            f"Device '{device}' is not usable here{where}: {reason}. Choose 'auto' or 'cpu'."
        ) from None


def avoid_triton_llvm_clash() -> None:
    """Stop ``triton`` from loading when an LLVM (Mesa's software OpenGL) is already mapped.

    timm imports torchvision, which imports torch._dynamo and with it triton; triton's own
    LLVM crashes (segfault) when it is loaded after Mesa's libLLVM, as happens under Xvfb or
    on Mesa drivers once napari has drawn. Inference here never uses triton, so it is marked
    unavailable instead (torch then treats it as not installed). No-op elsewhere.
    """
    if "triton" in sys.modules or not sys.platform.startswith("linux"):
        return
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return
    if "libLLVM" in maps:
        sys.modules["triton"] = None


def load_annotator(
    settings: AnnotationSettings, image: np.ndarray, labels: np.ndarray, axis: int
) -> VolumeAnnotator:
    """Build the ClickSession (loads the model, then one dummy forward so the user's first
    click does not pay for lazy kernel set-up) and the annotator; runs in a worker."""
    avoid_triton_llvm_clash()
    from napari_adaptiveclick.interactive.session import ClickSession

    device = usable_device(settings.device)
    model = None if settings.model == DEFAULT_MODEL else settings.model
    if model is None and untrained(DEFAULT_MODEL):  # allowed: a random tiny, said at Start
        model = DEFAULT_ARCHITECTURE
    session = ClickSession(model, device, threshold=settings.threshold)
    session.warmup()
    return VolumeAnnotator(
        image,  # numpy, or a lazy view of a store (only the crops clicks need are read)
        labels,
        session,
        axis=axis,
        model_name=settings.model,
        overwrite=settings.overwrite,
    )
