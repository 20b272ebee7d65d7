"""Square crops (issue #11 item 4): the session shows the model every crop at one scale on
both axes, as it was trained, padding past the image's edge with zeros, instead of stretching
a non-square crop to the square input (the release's way, still used by its protocol)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from napari_adaptiveclick.interactive.focus import square_box
from napari_adaptiveclick.interactive.predict import image_part, network_image, upsample
from napari_adaptiveclick.interactive.transforms import Box, CropResize


def test_square_box_grows_the_shorter_side_about_the_centre():
    assert square_box(Box(0, 0, 40, 60)) == Box(-10, 0, 50, 60)
    assert square_box(Box(10, 10, 20, 14)) == Box(10, 7, 20, 17)
    assert square_box(Box(5, 5, 9, 9)) == Box(5, 5, 9, 9)  # already square


def test_the_padded_crop_is_zero_past_the_image_and_the_output_is_cut_back():
    image = np.full((40, 60), 7.0, np.float32)
    transform = CropResize((40, 60), Box(-10, 0, 50, 60), (60, 60))  # 1:1, no resampling
    net = network_image(image, (0.0, 7.0), transform, "cpu")[0, 0].numpy()
    assert net.shape == (60, 60)
    np.testing.assert_array_equal(net[10:50], 1.0)  # the image, normalised
    np.testing.assert_array_equal(net[:10], 0.0)  # padding, as training pads its crops
    np.testing.assert_array_equal(net[50:], 0.0)
    assert image_part(transform) == Box(0, 0, 40, 60)
    output = np.arange(3600, dtype=np.float32).reshape(60, 60)
    np.testing.assert_array_equal(upsample(output, transform), output[10:50])


@pytest.fixture(scope="module")
def model():
    from napari_adaptiveclick.models.registry import build_from_config, get_config

    torch.manual_seed(0)
    return build_from_config(get_config("tiny")).eval()


def _session(model, **options):
    from napari_adaptiveclick.interactive.session import ClickSession

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ClickSession(model, device="cpu", **options)


def test_a_small_wide_image_is_seen_square_and_predicted_on_all_its_pixels(model, monkeypatch):
    image = np.random.default_rng(0).normal(100, 10, (40, 70)).astype(np.float32)
    image[15:25, 30:45] += 60
    seen = []
    real = CropResize.forward_crop
    monkeypatch.setattr(CropResize, "forward_crop", lambda t, c: seen.append(t.box) or real(t, c))
    squared, stretched = _session(model), _session(model)
    stretched.square_crops = False
    results = []
    for session in (squared, stretched):
        seen.clear()
        session.set_image(image)
        results.append(session.add_click(20, 37).probability)
        assert results[-1].shape == (40, 70)
        boxes = set(seen)
        assert len(boxes) == 1
        results.append(boxes.pop())
    assert results[1] == Box(-15, 0, 55, 70)  # the whole image, squared about its centre
    assert results[3] == Box(0, 0, 40, 70)  # the whole image, stretched
    assert not np.allclose(results[0], results[2])
    squared.undo()  # undo and redo of a padded crop keep the image's shape
    assert squared.prediction.probability.shape == (40, 70)


def test_the_release_protocol_still_stretches(model):
    assert _session(model, protocol="release").square_crops is False
    assert _session(model).square_crops is True
