"""The release's inference conventions (``protocol="release"``), pinned on hand-computed
boxes and coordinates: its ``isegm/inference/transforms/zoom_in.py`` and ``utils/misc.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_adaptiveclick import ClickSession
from napari_adaptiveclick.interactive.focus import (
    release_box_iou,
    release_object_box,
    release_zoom_box,
)
from napari_adaptiveclick.interactive.prompts import Click
from napari_adaptiveclick.interactive.transforms import Box, CropResize, normalize_intensity
from napari_adaptiveclick.models.registry import RELEASE_WEIGHTS, get_config, protocol_for

ZOOM = {"expand": 1.4, "min_size": 20, "recompute_iou": 0.5}


def _mask(shape, rows, cols) -> np.ndarray:
    prob = np.zeros(shape, np.float32)
    prob[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = 1.0
    return prob


def test_object_box_expands_about_the_centre_with_python_rounding():
    # rows 10..19: centre 14.5, height max(1.4 * 10, 20) = 20 -> round(4.5) = 4 .. round(24.5) = 24
    box = release_object_box(_mask((100, 100), (10, 19), (30, 39)), (), 1.4, 20)
    assert box == Box(4, 24, 25, 45)  # inclusive 4..24 and 24..44
    # a larger object: rows 10..49 -> height 56, centre 29.5 -> round(1.5) = 2 .. round(57.5) = 58
    box = release_object_box(_mask((100, 100), (10, 49), (10, 49)), (), 1.4, 20)
    assert (box.top, box.bottom - 1) == (2, 58)


def test_object_box_is_clipped_at_the_edge_not_shifted():
    box = release_object_box(_mask((100, 100), (0, 4), (50, 54)), (), 1.4, 20)
    # centre 2, height 20: round(-8) -> clipped to 0, round(12) = 12: 13 rows, not 20
    assert (box.top, box.bottom) == (0, 13)
    assert (box.left, box.right) == (42, 63)  # centre 52: round(42) .. round(62), inclusive


def test_positive_clicks_are_marked_with_int_and_no_mask_is_the_whole_image():
    prob = _mask((100, 120), (10, 19), (10, 19))
    clicks = (Click(50.9, 60.9, True), Click(80, 80, False))
    box = release_object_box(prob, clicks, 1.4, 20)
    # rows 10..50 (the click's int row 50): centre 30, height 1.4 * 41 = 57.4 -> round(1.3) = 1
    # .. round(58.7) = 59; cols 10..60: centre 35, width 71.4 -> round(-0.7) = -1 -> 0 .. 71
    assert box == Box(1, 0, 60, 72)
    empty = np.zeros((100, 120), np.float32)  # positive clicks alone make no box
    assert release_object_box(empty, clicks, 1.4, 20) == Box(0, 0, 100, 120)


def test_box_iou_is_the_product_of_segment_ious_with_inclusive_bounds():
    assert release_box_iou(Box(0, 0, 10, 10), Box(5, 0, 15, 10)) == pytest.approx(5 / 15)
    assert release_box_iou(Box(0, 0, 10, 10), Box(5, 5, 15, 15)) == pytest.approx((5 / 15) ** 2)
    assert release_box_iou(Box(0, 0, 10, 10), Box(20, 20, 30, 30)) == 0.0


def test_zoom_box_keeps_recomputes_and_checks_clicks_against_the_inclusive_maximum():
    prob = _mask((100, 100), (10, 19), (10, 19))
    current = release_object_box(prob, (), **{k: ZOOM[k] for k in ("expand", "min_size")})
    assert release_zoom_box(prob, (), None, **ZOOM) == current  # no box yet
    # the whole-image box of the first click vs the new one: IoU (21/100)^2 < 0.5 -> new
    assert release_zoom_box(prob, (), Box(0, 0, 100, 100), **ZOOM) == current
    old = Box(2, 2, 30, 30)  # overlaps the current box by more than 0.5: kept
    assert release_box_iou(current, old) > 0.5
    assert release_zoom_box(prob, (Click(15, 15, True),), old, **ZOOM) == old
    # a positive click on the old box's last row (29 >= inclusive max 29): a new box
    assert release_zoom_box(prob, (Click(29, 15, True),), old, **ZOOM) != old


def test_release_points_have_no_half_pixel_offset_and_round_trip():
    crop = CropResize((300, 400), Box(10, 20, 110, 220), (256, 256), "release")
    points = crop.forward_points(np.array([[60.0, 120.0], [10.0, 20.0]]))
    assert np.allclose(points, [[50 * 2.56, 100 * 1.28], [0.0, 0.0]])
    assert np.allclose(crop.inverse_points(points), [[60.0, 120.0], [10.0, 20.0]])
    centres = CropResize((300, 400), Box(10, 20, 110, 220), (256, 256))
    assert np.allclose(
        centres.forward_points([[10.0, 20.0]]), [[0.5 * 2.56 - 0.5, 0.5 * 1.28 - 0.5]]
    )


def test_release_images_are_resized_with_align_corners():
    image = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    up = CropResize.whole((2, 2), (3, 3), "release").forward_image(image)
    assert torch.allclose(up[0, 0], torch.tensor([[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]]))
    back = CropResize.whole((2, 2), (3, 3), "release").inverse_image(up)
    assert torch.allclose(back, image)


def _brightness_model(config):
    class Brightness(torch.nn.Module):
        def forward(self, image, prev, maps):
            return {"mask_logits": 40.0 * (image[:, :1] - 0.5)}

    model = Brightness()
    model.config = config
    return model


def test_release_session_sees_the_whole_image_first_and_matches_the_hand_computed_path():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.0, 0.4, (300, 260)).astype(np.float32)
    image[100:160, 80:150] = 0.9
    image[0, 0], image[-1, -1] = 0.0, 1.0  # normalisation keeps the values
    model = _brightness_model(get_config("tiny"))
    session = ClickSession(model, device="cpu", protocol="release", flip_tta=False)
    assert session.first_click_window is None
    session.set_image(image)
    first = session.add_click(130, 110)
    assert session.focus_box == Box(0, 0, 300, 260)
    normalised = torch.from_numpy(normalize_intensity(image))[None, None]
    small = F.interpolate(normalised, size=(256, 256), mode="bilinear", align_corners=True)
    prob = (40.0 * (small - 0.5)).sigmoid()
    expected = F.interpolate(prob, size=(300, 260), mode="bilinear", align_corners=True)
    assert np.allclose(first.probability, expected[0, 0].numpy(), atol=1e-4)
    second = session.add_click(120, 100)
    # the new box (rows 30..230, cols 14..214) overlaps the whole-image box of the first click
    # by (201 / 300) * (201 / 260) = 0.518 >= 0.5: the release keeps the whole image
    assert session.focus_box == Box(0, 0, 300, 260)
    assert second.mask[100:160, 80:150].all()
    session.add_click(300 - 1, 259, positive=False)
    assert session.focus_box == Box(0, 0, 300, 260)


def test_protocol_follows_where_the_weights_come_from_and_flips_follow_the_protocol():
    model = _brightness_model(get_config("vit_b"))  # a vit_b of this project's: project
    assert protocol_for(model) == "project"
    setattr(model, RELEASE_WEIGHTS, True)  # as load_model marks a released .pth
    assert protocol_for(model) == "release"
    assert ClickSession(model, device="cpu").protocol == "release"
    model = _brightness_model(get_config("tiny"))
    assert ClickSession(model, device="cpu").protocol == "project"
    assert not ClickSession(model, device="cpu").flip_tta
    assert ClickSession(model, device="cpu", protocol="release").flip_tta
    with pytest.raises(ValueError, match="protocol"):
        ClickSession(model, device="cpu", protocol="paper")
