"""Domain randomisation of training crops (augment.randomize_domain), and the training
options that switch it and the small-image zoom on (off by default, so older runs resume
unchanged)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from napari_adaptiveclick.learning.augment import randomize_domain
from napari_adaptiveclick.learning.config import TrainConfig

SIZE = 128
ELASTIC_RATE = 0.3  # the first draw of randomize_domain decides the elastic deformation


@pytest.fixture
def crop() -> tuple[np.ndarray, np.ndarray]:
    """(128, 128) float32 image in [0, 1] with a brighter 60 x 60 square, and its mask."""
    mask = np.zeros((SIZE, SIZE), bool)
    mask[30:90, 40:100] = True
    image = np.random.default_rng(0).uniform(0.2, 0.5, (SIZE, SIZE)).astype(np.float32)
    image[mask] += 0.4
    return image, mask


def test_probability_zero_returns_the_inputs_and_draws_nothing(crop):
    image, mask = crop
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    out_image, out_mask = randomize_domain(image, mask, rng, 0.0)
    assert out_image is image and out_mask is mask
    assert rng.bit_generator.state == state  # a run without it keeps its random stream


@pytest.mark.parametrize("probability", [0.5, 1.0])
def test_shapes_types_and_range(crop, probability):
    image, mask = crop
    before = image.copy(), mask.copy()
    for seed in range(12):
        out_image, out_mask = randomize_domain(
            image, mask, np.random.default_rng(seed), probability
        )
        assert out_image.shape == out_mask.shape == (SIZE, SIZE)
        assert out_image.dtype == np.float32 and out_mask.dtype == bool
        assert 0.0 <= out_image.min() and out_image.max() <= 1.0
    assert np.array_equal(image, before[0]) and np.array_equal(mask, before[1])  # not in place


def test_same_seed_same_result_other_seeds_differ(crop):
    image, mask = crop
    runs = [randomize_domain(image, mask, np.random.default_rng(s), 1.0) for s in (7, 7, 8)]
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_mask_moves_only_with_the_elastic_deformation(crop):
    image, mask = crop
    kept = deformed = 0
    for seed in range(30):
        elastic = np.random.default_rng(seed).random() < ELASTIC_RATE
        _, out_mask = randomize_domain(image, mask, np.random.default_rng(seed), 1.0)
        if not elastic:
            assert np.array_equal(out_mask, mask)
            kept += 1
        else:
            assert 0.7 < out_mask.sum() / mask.sum() < 1.3  # a smooth displacement of <= 10 px
            iou = (out_mask & mask).sum() / (out_mask | mask).sum()
            assert iou > 0.6
            deformed += 1
    assert kept and deformed


def test_new_training_options_default_to_off():
    cfg = TrainConfig(datasets=["sstem"], data="data", out="run")
    assert cfg.domain_randomization == 0.0 and cfg.zoom_prob == 0.0
    # A train_config.json written before these options existed resumes with them off.
    older = {f.name: getattr(cfg, f.name) for f in fields(TrainConfig)}
    for key in ("domain_randomization", "zoom_prob", "zoom_max"):
        older.pop(key)
    resumed = TrainConfig(**older)
    assert resumed.domain_randomization == 0.0 and resumed.zoom_prob == 0.0
