"""Loading the model for the widget: the settings it is built from, and the worker function.

Kept apart from the controller because it also carries a workaround for a crash that only
concerns loading torch inside a process that already draws with Mesa's OpenGL.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.volume import VolumeAnnotator


@dataclass(frozen=True)
class AnnotationSettings:
    """What the widget chose. ``model``: "default" (the shipped ``tiny`` weights, else a
    random ``tiny``), a registry name or a checkpoint path. ``axis``: slicing axis of the
    volume (None: the coarsest spacing). ``extra_axis``: the time/channel axis of 4D data."""

    model: str = "default"
    device: str = "auto"
    threshold: float = PREDICTION_THRESHOLD
    axis: int | None = None
    extra_axis: int | None = None
    overwrite: bool = False


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

    model = None if settings.model == "default" else settings.model
    session = ClickSession(model, settings.device, threshold=settings.threshold)
    session.warmup()
    return VolumeAnnotator(
        np.asarray(image),
        labels,
        session,
        axis=axis,
        model_name=settings.model,
        overwrite=settings.overwrite,
    )
