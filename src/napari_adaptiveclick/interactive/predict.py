"""The one prediction path: image + prompts + prior -> probability.

Used by :class:`~napari_adaptiveclick.interactive.session.ClickSession` (clicks and its
warm-up) and by the trainer's iterative clicks, so the model sees its inputs built the same
way everywhere. Everything here works in the network's input space (S x S pixels); the
session maps image pixels in and probabilities back out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from napari_adaptiveclick.interactive.boxed import box_slices
from napari_adaptiveclick.interactive.prompts import Stroke, disk_maps
from napari_adaptiveclick.interactive.transforms import (
    Box,
    CropResize,
    IntensityStats,
    normalize_intensity,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

# mask = probability > PREDICTION_THRESHOLD (the release's 0.49): sessions, the NoC
# evaluation, the trainer's simulated clicks and the widget's default all use this one value.
PREDICTION_THRESHOLD = 0.49


def prompt_maps(
    clicks: Sequence[Sequence[Stroke]], size: int, radius: float, device: str | torch.device
) -> torch.Tensor:
    """Prompt channels of a batch, ``(B, 2, S, S)`` float32 on ``device``: channel 0 the
    positive disks, 1 the negative ones (``clicks[b]``: clicks and strokes in input pixels,
    S = ``size``)."""
    import torch

    maps = np.stack([disk_maps(c, (size, size), radius) for c in clicks])
    return torch.from_numpy(maps).to(device)


def network_image(
    image: np.ndarray, stats: IntensityStats, transform: CropResize, device: str | torch.device
) -> torch.Tensor:
    """The crop of ``transform`` out of ``image`` (H, W) grey or (H, W, 3) RGB, normalised
    with ``stats`` and resized: ``(1, 3, S, S)`` float32 on ``device``. Only the crop is
    read and normalised."""
    import torch

    box, inside = transform.box, image_part(transform)
    crop = normalize_intensity(image[box_slices(inside)], stats)
    if inside != box:  # a square crop past the image's edge: zeros there, as in training
        crop = paste_into(crop, inside, box)
    chw = np.repeat(crop[None], 3, axis=0) if crop.ndim == 2 else crop.transpose(2, 0, 1)
    crop = torch.from_numpy(np.ascontiguousarray(chw))[None]
    return transform.forward_crop(crop).to(device)


def upsample(net: np.ndarray, transform: CropResize) -> np.ndarray:
    """The model's output ``net`` (S, S) resized back to the crop of ``transform`` and cut
    to the image: ``(box.height, box.width)`` float32 of :func:`image_part` of its box."""
    import torch

    values = transform.inverse_crop(torch.from_numpy(net)[None, None])[0, 0].numpy()
    box, inside = transform.box, image_part(transform)
    values = values[inside.top - box.top : inside.bottom - box.top,
                    inside.left - box.left : inside.right - box.left]  # fmt: skip
    return values.astype(np.float32, copy=False)


def image_part(transform: CropResize) -> Box:
    """The part of ``transform``'s crop inside its image (all of it unless it is padded)."""
    box, (h, w) = transform.box, transform.src_shape
    return Box(max(box.top, 0), max(box.left, 0), min(box.bottom, h), min(box.right, w))


def paste_into(crop: np.ndarray, inside: Box, box: Box) -> np.ndarray:
    """``crop`` (the pixels of ``inside``; grey or with channels last) placed in a zero array
    of ``box``, which holds ``inside``."""
    out = np.zeros((box.height, box.width, *crop.shape[2:]), dtype=crop.dtype)
    out[inside.top - box.top : inside.bottom - box.top,
        inside.left - box.left : inside.right - box.left] = crop  # fmt: skip
    return out


def warm_up(model: nn.Module, size: int, device: str, *, half_precision: bool = False) -> None:
    """One dummy forward of ``model`` at input ``size`` on ``device``, so that the first real
    click does not pay for lazy kernel set-up."""
    import torch

    zeros = torch.zeros(1, 1, size, size, device=device)
    predict_probability(
        model,
        zeros.expand(-1, 3, -1, -1),
        zeros,
        zeros.expand(-1, 2, -1, -1),
        half_precision=half_precision,
    )


def predict_probability(
    model: nn.Module,
    image: torch.Tensor,
    prior: torch.Tensor,
    prompts: torch.Tensor,
    *,
    flip_tta: bool = False,
    half_precision: bool = False,
    inference: bool = True,
) -> torch.Tensor:
    """Foreground probability ``(B, 1, S, S)`` float32, without gradient.

    ``image``: ``(B, 3, S, S)`` in [0, 1]; ``prior``: ``(B, 1, S, S)`` previous probability
    (zeros for none); ``prompts``: ``(B, 2, S, S)`` from :func:`prompt_maps`. ``flip_tta``
    averages the logits with those of the horizontally flipped input; ``half_precision``
    runs under float16 autocast (CUDA). ``inference`` runs under ``torch.inference_mode``
    (interactive use); pass False when the result feeds a forward with gradient (the
    trainer's iterative clicks), which inference tensors may not.
    """
    import torch

    batch = image.shape[0]
    if flip_tta:
        image, prior, prompts = (torch.cat([t, t.flip(-1)]) for t in (image, prior, prompts))
    with (
        torch.inference_mode() if inference else torch.no_grad(),
        torch.autocast(image.device.type, dtype=torch.float16, enabled=half_precision),
    ):
        logits = model(image, prior, prompts)["mask_logits"].float()
    if flip_tta:
        logits = 0.5 * (logits[:batch] + logits[batch:].flip(-1))
    return logits.sigmoid()
