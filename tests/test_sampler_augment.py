"""Initial click sampler and joint image/mask augmentation on synthetic shapes."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import disk, ellipse

from napari_adaptiveclick.learning.augment import augment_pair
from napari_adaptiveclick.learning.sampler import sample_initial_clicks, truncated_geometric


def _blob(shape=(96, 112), center=(40, 60), radii=(18, 26)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[ellipse(*center, *radii, shape=shape)] = True
    return mask


# --- sampler -----------------------------------------------------------------------------


def test_truncated_geometric_distribution():
    rng = np.random.default_rng(0)
    draws = np.array([truncated_geometric(rng, 0.8, 5) for _ in range(4000)])
    assert draws.min() == 0 and draws.max() == 5
    weights = 0.8 ** np.arange(6)
    expected = weights / weights.sum()
    observed = np.bincount(draws, minlength=6) / draws.size
    np.testing.assert_allclose(observed, expected, atol=0.03)


def test_clicks_are_on_the_right_side_and_within_bounds():
    mask = _blob()
    rng = np.random.default_rng(1)
    for _ in range(100):
        clicks = sample_initial_clicks(mask, rng, max_positive=6, max_negative=5)
        positives = [c for c in clicks if c.positive]
        negatives = [c for c in clicks if not c.positive]
        assert clicks[: len(positives)] == positives  # positives first
        assert 1 <= len(positives) <= 6 and len(negatives) <= 5
        for click in clicks:
            assert float(click.row).is_integer() and float(click.col).is_integer()
            assert mask[int(click.row), int(click.col)] == click.positive
        assert len({(c.row, c.col) for c in clicks}) == len(clicks)


def test_click_counts_follow_the_geometric_law():
    mask = _blob()
    rng = np.random.default_rng(2)
    counts = [sample_initial_clicks(mask, rng) for _ in range(300)]
    positives = np.array([sum(c.positive for c in clicks) for clicks in counts])
    negatives = np.array([sum(not c.positive for c in clicks) for clicks in counts])
    assert abs(np.mean(positives == 1) - 0.2) < 0.07  # P(K = 0) = 1 - 0.8
    assert abs(np.mean(negatives == 0) - 0.2) < 0.07
    assert 3.0 < positives.mean() < 5.5  # 1 + E[K], E[K] ~ 3.6 when truncated at 23


def test_first_positive_lies_deep_inside_and_negatives_hug_the_object():
    mask = _blob()
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    rng = np.random.default_rng(3)
    first_depth, negative_gaps = [], []
    for _ in range(200):
        clicks = sample_initial_clicks(mask, rng, anywhere_prob=0.3)
        first_depth.append(inside[int(clicks[0].row), int(clicks[0].col)])
        negative_gaps += [outside[int(c.row), int(c.col)] for c in clicks if not c.positive]
    assert np.mean(first_depth) > 1.3 * inside[mask].mean()
    near = np.mean(np.array(negative_gaps) <= 2.0 + 0.25 * 2 * np.sqrt(mask.sum() / np.pi))
    assert 0.6 < near < 0.9  # about 70 % from the band, the rest anywhere in the background
    assert min(negative_gaps) > 2.0


def test_tiny_object_and_full_image():
    rng = np.random.default_rng(4)
    dot = np.zeros((20, 20), bool)
    dot[7, 9] = True
    clicks = sample_initial_clicks(dot, rng, max_positive=5, max_negative=0)
    assert [(c.row, c.col, c.positive) for c in clicks] == [(7.0, 9.0, True)]
    full = np.ones((41, 41), bool)
    firsts = []
    for _ in range(50):
        clicks = sample_initial_clicks(full, rng, max_negative=3)
        assert all(c.positive for c in clicks)
        firsts.append((clicks[0].row, clicks[0].col))
    # the image border counts as outside the object: first clicks gather around the centre
    assert np.abs(np.mean(firsts, axis=0) - 20).max() < 3
    assert np.abs(np.array(firsts) - 20).max(axis=1).mean() < 12


def test_sampler_is_deterministic_and_rejects_bad_masks():
    mask = _blob()
    first = sample_initial_clicks(mask, np.random.default_rng(5))
    assert first == sample_initial_clicks(mask, np.random.default_rng(5))
    with pytest.raises(ValueError, match="empty"):
        sample_initial_clicks(np.zeros((8, 8), bool), np.random.default_rng(0))
    with pytest.raises(ValueError, match="2D"):
        sample_initial_clicks(np.ones((2, 8, 8), bool), np.random.default_rng(0))
    with pytest.raises(ValueError, match="max_positive >= 1"):
        sample_initial_clicks(mask, np.random.default_rng(0), max_positive=0)


# --- augmentation ------------------------------------------------------------------------


def test_mask_stays_aligned_with_image_and_object_stays_in_crop():
    mask = _blob((300, 260), (150, 120), (20, 35))
    image = mask.astype(np.float32)
    rng = np.random.default_rng(6)
    for _ in range(30):
        out_image, out_mask = augment_pair(image, mask, rng, crop_size=128)
        assert out_image.shape == (128, 128) and out_image.dtype == np.float32
        assert out_mask.shape == (128, 128) and out_mask.dtype == bool
        assert 0.0 <= out_image.min() and out_image.max() <= 1.0
        assert np.mean((out_image > 0.5) != out_mask) < 0.005
        # the 41 x 71 object, zoomed at most 1.25 and rotated, fits in the crop: kept whole
        scale_range = mask.sum() * np.array([0.75**2, 1.25**2])
        assert scale_range[0] * 0.95 < out_mask.sum() < scale_range[1] * 1.05
        assert not (out_mask[0].any() or out_mask[-1].any())
        assert not (out_mask[:, 0].any() or out_mask[:, -1].any())


def test_large_object_is_cropped_around_its_centre():
    mask = np.zeros((200, 200), bool)
    mask[20:180, 20:180] = True
    rng = np.random.default_rng(7)
    _, out_mask = augment_pair(mask.astype(np.float32), mask, rng, crop_size=64, max_shift=0.0)
    assert out_mask.all()


def test_small_image_is_zero_padded():
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True
    image = np.full(mask.shape, 0.6, np.float32)
    image[mask] = 0.9
    out_image, out_mask = augment_pair(
        image, mask, np.random.default_rng(8), crop_size=96, brightness=0.0, contrast=0.0
    )
    inside_image = out_image > 0
    assert 0.5 * 600 < inside_image.sum() < 1.7 * 600  # the 20 x 30 image, zoomed 0.75-1.25
    assert out_mask.sum() > 0 and (inside_image | ~out_mask).all()
    assert np.allclose(out_image[out_mask & ~ndimage.binary_erosion(~out_mask)], 0.9, atol=0.16)


def test_empty_mask_gives_empty_crop():
    image = np.random.default_rng(9).random((64, 64)).astype(np.float32)
    out_image, out_mask = augment_pair(
        image, np.zeros((64, 64), bool), np.random.default_rng(9), 32
    )
    assert not out_mask.any() and out_image.shape == (32, 32)


def test_augmentation_is_deterministic_and_random():
    mask = _blob()
    image = np.random.default_rng(10).random(mask.shape).astype(np.float32)
    first = augment_pair(image, mask, np.random.default_rng(11), crop_size=64)
    again = augment_pair(image, mask, np.random.default_rng(11), crop_size=64)
    other = augment_pair(image, mask, np.random.default_rng(12), crop_size=64)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_augmenting_a_large_slice_is_fast():
    mask = np.zeros((1024, 1024), bool)
    mask[disk((500, 520), 60)] = True
    image = np.random.default_rng(13).random(mask.shape).astype(np.float32)
    rng = np.random.default_rng(14)
    augment_pair(image, mask, rng, crop_size=448)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        augment_pair(image, mask, rng, crop_size=448)
        times.append(time.perf_counter() - start)
    assert np.median(times) < 0.15  # about 15 ms on one core; loose for shared CI machines


def test_augment_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="same shape"):
        augment_pair(np.zeros((8, 8), np.float32), np.zeros((8, 9), bool), rng, 4)
    with pytest.raises(ValueError, match="2D grey"):
        augment_pair(np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), bool), rng, 4)
    with pytest.raises(ValueError, match="crop_size"):
        augment_pair(np.zeros((8, 8), np.float32), np.zeros((8, 8), bool), rng, 0)


def test_a_companion_mask_is_warped_with_the_pair_and_changes_nothing_else():
    rng_image = np.random.default_rng(0)
    image = rng_image.random((90, 70)).astype(np.float32)
    mask = np.zeros((90, 70), bool)
    mask[30:60, 20:45] = True
    shifted = np.roll(mask, 4, axis=1)
    alone = augment_pair(image, mask, np.random.default_rng(5), 64)
    with_it = augment_pair(image, mask, np.random.default_rng(5), 64, companion=shifted)
    same = augment_pair(image, mask, np.random.default_rng(5), 64, companion=mask)
    assert len(alone) == 2 and len(with_it) == 3
    np.testing.assert_array_equal(alone[0], with_it[0])  # same crop and intensity draws
    np.testing.assert_array_equal(alone[1], with_it[1])
    np.testing.assert_array_equal(same[2], same[1])  # the same transform as the mask's
    assert with_it[2].any() and not np.array_equal(with_it[2], with_it[1])
    with pytest.raises(ValueError, match="companion"):
        augment_pair(image, mask, np.random.default_rng(5), 64, companion=mask[:10])
