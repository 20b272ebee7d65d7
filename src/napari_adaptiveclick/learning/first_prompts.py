"""The first prompts of a training sample: an object of the dataset mix, augmented, started
from clicks (the multi-point sampler or the simulator's first click), a jittered box, a stroke,
or, as propagation prompts a slice, from the object's mask on an adjacent slice.

All randomness comes from the step's generator, and options at 0 draw no random number, so a
run replays exactly as it did before an option existed (:mod:`.trainer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_adaptiveclick.evaluation.simulator import jittered_box, next_click, stroke_along
from napari_adaptiveclick.learning.augment import augment_pair, randomize_domain
from napari_adaptiveclick.learning.config import TrainConfig
from napari_adaptiveclick.learning.datasets import ObjectDataset, ObjectSample
from napari_adaptiveclick.learning.sampler import sample_initial_clicks


def draw_sample(
    cfg: TrainConfig,
    datasets: Sequence[ObjectDataset],
    mix: np.ndarray,
    input_size: int,
    rng: np.random.Generator,
):
    """(image, mask, first prompts, box or None, prior or None): the box of a box-first
    sample, whose inside the previous mask holds ``box_prior`` (in input pixels); the
    prior of a propagation sample (:func:`neighbour_sample`)."""
    dataset = datasets[int(rng.choice(len(datasets), p=mix))]
    sample = dataset[int(rng.integers(len(dataset)))]
    scale = (cfg.scale_min, cfg.scale_max)
    if cfg.zoom_prob > 0 and rng.random() < cfg.zoom_prob:
        scale = (cfg.scale_max, max(cfg.zoom_max, cfg.scale_max))
    if sample.neighbours and cfg.neighbour_prob > 0:
        if rng.random() < cfg.neighbour_prob:
            drawn = neighbour_sample(cfg, sample, scale, input_size, rng)
            if drawn is not None:
                return drawn
    image, mask = augment_pair(sample.image, sample.mask, rng, input_size, scale=scale)
    if mask.sum() < 4:  # object cropped away or shrunk to nothing: a plain resize instead
        image, mask = augment_pair(sample.image, sample.mask, rng, input_size, scale=(1.0, 1.0))
    image, mask = randomize_domain(image, mask, rng, cfg.domain_randomization)
    if not mask.any():
        return image, mask, [], None, None
    if cfg.box_prob > 0 and rng.random() < cfg.box_prob:
        box = jittered_box(mask, rng)
        return image, mask, [box.seed(mask.shape)], box.pixel_box(mask.shape), None
    if cfg.stroke_prob > 0 and rng.random() < cfg.stroke_prob:
        return image, mask, [stroke_along(largest_part(mask))], None, None
    if cfg.first_click_prob > 0 and rng.random() < cfg.first_click_prob:
        return image, mask, [next_click(mask, np.zeros_like(mask), None)], None, None
    return image, mask, sample_initial_clicks(mask, rng), None, None


def neighbour_sample(
    cfg: TrainConfig,
    sample: ObjectSample,
    scale: tuple[float, float],
    input_size: int,
    rng: np.random.Generator,
):
    """A slice prompted as propagation prompts it (volume/propagation.py): one of the
    object's masks on an adjacent slice, warped with the slice, as the previous mask, and
    the click propagation derives from it (the deepest point of that mask). None when the
    crop leaves too little of either."""
    neighbour = sample.neighbours[int(rng.integers(len(sample.neighbours)))]
    image, mask, prior = augment_pair(
        sample.image, sample.mask, rng, input_size, scale=scale, companion=neighbour
    )
    if mask.sum() < 4 or prior.sum() < 4:
        return None
    image, mask = randomize_domain(image, mask, rng, cfg.domain_randomization)
    if not mask.any():
        return None
    click = next_click(prior, np.zeros_like(prior), None)
    return image, mask, [click], None, prior


def largest_part(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected part of ``mask`` (H, W) bool, where a first stroke goes."""
    from scipy import ndimage

    parts, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask.astype(bool)
    return parts == int(np.argmax(np.bincount(parts.ravel())[1:])) + 1
