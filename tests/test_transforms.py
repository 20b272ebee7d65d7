"""Every resize / crop with its coordinate inverse; intensity normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_adaptiveclick.interactive.transforms import (
    Box,
    CropResize,
    intensity_stats,
    normalize_intensity,
)

TRANSFORMS = [
    CropResize.whole((1024, 1024), (256, 256)),
    CropResize.whole((240, 155), (448, 448)),
    CropResize((1024, 768), Box(100, 50, 400, 450), (256, 256)),
    CropResize((300, 300), Box(0, 0, 300, 300), (300, 300)),
    CropResize((500, 500), Box(10, 300, 210, 500), (448, 448)),
]


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_points_round_trip(transform):
    rng = np.random.default_rng(0)
    b = transform.box
    pts = np.stack([rng.uniform(b.top, b.bottom - 1, 50), rng.uniform(b.left, b.right - 1, 50)], 1)
    np.testing.assert_allclose(
        transform.inverse_points(transform.forward_points(pts)), pts, atol=1e-9
    )
    dst = rng.uniform(0, 200, (20, 2))
    np.testing.assert_allclose(
        transform.forward_points(transform.inverse_points(dst)), dst, atol=1e-9
    )


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_image_and_points_move_together(transform):
    """A bright square moved by forward_image has its centre where forward_points puts it."""
    h, w = transform.src_shape
    b = transform.box
    image = torch.zeros(1, 1, h, w)
    r0, c0 = b.top + b.height // 2, b.left + b.width // 2
    image[..., r0 - 8 : r0 + 8, c0 - 8 : c0 + 8] = 1.0
    out = transform.forward_image(image)[0, 0].numpy()
    assert out.shape == transform.dst_shape
    rows, cols = np.nonzero(out > 0.5)
    expected = transform.forward_points(np.array([[r0 - 0.5, c0 - 0.5]]))[0]
    assert abs(rows.mean() - expected[0]) < 1.0 and abs(cols.mean() - expected[1]) < 1.0


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_inverse_image_restores_the_box_and_fills_outside(transform):
    h, w = transform.src_shape
    image = torch.rand(1, 1, h, w)
    smooth = torch.nn.functional.avg_pool2d(image, 15, stride=1, padding=7)
    back = transform.inverse_image(transform.forward_image(smooth), fill=-1.0)
    b = transform.box
    inside = back[..., b.top : b.bottom, b.left : b.right]
    assert (inside - smooth[..., b.top : b.bottom, b.left : b.right]).abs().mean() < 0.05
    outside = torch.ones(h, w, dtype=torch.bool)
    outside[b.top : b.bottom, b.left : b.right] = False
    assert (back[0, 0][outside] == -1.0).all()


def test_normalize_uint8_int16_float():
    rng = np.random.default_rng(1)
    for dtype in (np.uint8, np.int16, np.float32):
        img = (rng.random((64, 64)) * 200).astype(dtype)
        out = normalize_intensity(img)
        assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0


def test_volume_statistics_treat_slices_alike():
    volume = np.stack([np.full((8, 8), 10.0), np.full((8, 8), 20.0)])
    volume[:, 0, 0] = [0.0, 30.0]
    stats = intensity_stats(volume, 0, 100)
    a, b = normalize_intensity(volume[0], stats), normalize_intensity(volume[1], stats)
    assert a[4, 4] == pytest.approx(1 / 3) and b[4, 4] == pytest.approx(2 / 3)


def test_constant_image_is_refused():
    with pytest.raises(ValueError, match="constant"):
        normalize_intensity(np.ones((5, 5)))


def test_all_nan_is_refused():
    with pytest.raises(ValueError, match="no finite values"):
        intensity_stats(np.full((3, 3), np.nan))
