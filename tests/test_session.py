"""ClickSession: input checks, undo/reset semantics, zoom-in, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from napari_adaptiveclick import ClickSession
from napari_adaptiveclick.interactive.focus import box_iou, expand_box, touches_inner_edge
from napari_adaptiveclick.interactive.transforms import Box


@pytest.fixture(scope="module")
def session():
    import torch

    torch.manual_seed(0)
    return ClickSession("tiny", device="cpu")


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    img = rng.normal(100, 10, (300, 260)).astype(np.float32)
    img[100:160, 80:150] += 80
    return img


@pytest.mark.parametrize(
    "dtype_image",
    [
        np.uint8,
        np.int16,
        np.float64,
        "rgb",
    ],
)
def test_any_numeric_dtype_and_rgb_give_full_size_results(session, image, dtype_image):
    if dtype_image == "rgb":
        data = np.repeat((image / image.max() * 255).astype(np.uint8)[..., None], 3, axis=2)
    else:
        data = image.astype(dtype_image)
    session.set_image(data)
    result = session.add_click(120, 100, positive=True)
    assert result.probability.shape == (300, 260) and result.probability.dtype == np.float32
    assert result.mask.dtype == bool and result.mask.shape == (300, 260)
    assert 0.0 <= result.probability.min() and result.probability.max() <= 1.0
    assert np.array_equal(result.mask, result.probability > session.threshold)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((4, 5, 6)), "2D grey"),
        (np.zeros((0, 5)), "empty"),
        (np.full((20, 20), 7.0), "constant"),
        (np.where(np.eye(20) > 0, np.nan, 1.0), "NaN or infinite"),
        (np.where(np.eye(20) > 0, np.inf, 1.0), "NaN or infinite"),
    ],
)
def test_bad_images_are_explained(session, bad, message):
    with pytest.raises(ValueError, match=message):
        session.set_image(bad)


@pytest.mark.parametrize("stats", [(100, 5), (float("nan"), 5)])  # equal: "constant"
def test_bad_stats_are_blamed_not_the_image(session, image, stats):
    with pytest.raises(ValueError, match=r"The intensity range stats=\(.*\) must be two finite"):
        session.set_image(image, stats=stats)  # the image itself is fine


def test_volume_wide_statistics_are_used(session, image):
    session.set_image(image, stats=(0.0, 1000.0))
    a = session.add_click(120, 100).probability
    session.set_image(image)
    b = session.add_click(120, 100).probability
    assert not np.allclose(a, b)


@pytest.mark.parametrize(
    ("row", "col", "message"),
    [(-1, 5, "outside"), (5, -1, "outside"), (300, 5, "outside"), (5, 260, "outside"),
     (np.nan, 3, "must be finite")],
)  # fmt: skip
def test_click_outside_image_is_refused(session, image, row, col, message):
    session.set_image(image)
    with pytest.raises(ValueError, match=message):
        session.add_click(row, col)
    assert session.clicks == []


def test_click_before_image():
    s = ClickSession("tiny", device="cpu")
    with pytest.raises(RuntimeError, match="set_image"):
        s.add_click(1, 1)


def test_undo_restores_every_previous_result(session, image):
    session.set_image(image)
    results = [
        session.add_click(r, c, p).probability
        for r, c, p in [(120, 100, True), (130, 140, True), (50, 50, False)]
    ]
    assert len(session.clicks) == 3
    assert np.array_equal(session.undo().probability, results[1])
    assert np.array_equal(session.undo().probability, results[0])
    assert len(session.clicks) == 1
    assert session.undo() is None
    assert session.clicks == [] and not session.probability.any()
    assert session.undo() is None  # nothing left: still no error


def test_reset_clears_clicks_and_mask(session, image):
    session.set_image(image)
    session.add_click(120, 100)
    session.reset()
    assert session.clicks == [] and not session.probability.any()


def test_same_clicks_same_result(session, image):
    session.set_image(image)
    a = [session.add_click(120, 100).probability, session.add_click(20, 20, False).probability]
    session.reset()
    b = [session.add_click(120, 100).probability, session.add_click(20, 20, False).probability]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)


def test_previous_mask_is_fed_back(session, image):
    session.set_image(image)
    first = session.add_click(120, 100).probability
    base = np.zeros(image.shape, np.float32)
    base[100:160, 80:150] = 1
    session.set_previous_mask(base)
    assert np.array_equal(session.probability, base)
    assert not np.array_equal(session.add_click(120, 100).probability, first)
    session.reset()
    assert np.array_equal(session.probability, base)
    with pytest.raises(ValueError, match="does not match"):
        session.set_previous_mask(np.zeros((3, 3)))


def test_zoom_in_crops_around_the_object_after_the_first_click(image):
    s = ClickSession("tiny", device="cpu", zoom_in=True, first_click_window=None)
    big = np.tile(image, (4, 4))  # 1200 x 1040
    s.set_image(big)
    s.add_click(120, 100)
    assert s._history[-1].roi is None  # first click: whole image
    base = np.zeros(big.shape, np.float32)
    base[100:160, 80:150] = 1
    s.set_previous_mask(base)
    s.add_click(130, 110)
    roi = s._history[-1].roi
    assert roi is not None and roi.height >= 200 and roi.width >= 200
    assert roi.top <= 100 and roi.bottom >= 160 and roi.left <= 80 and roi.right >= 150
    outside = np.ones(big.shape, bool)
    outside[roi.top : roi.bottom, roi.left : roi.right] = False
    assert not s.probability[outside].any()  # outside the crop the probability is 0


def test_flip_tta_runs_and_differs_from_plain(image):
    import torch

    torch.manual_seed(0)
    model = __import__("napari_adaptiveclick").build_model("tiny")
    plain, flipped = (
        ClickSession(model, device="cpu"),
        ClickSession(model, device="cpu", flip_tta=True),
    )
    plain.set_image(image)
    flipped.set_image(image)
    a, b = plain.add_click(120, 100).probability, flipped.add_click(120, 100).probability
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_expand_box_has_minimum_size_and_stays_inside():
    box = expand_box(Box(10, 10, 30, 30), (500, 400), 1.4, 200)
    assert (box.height, box.width) == (200, 200) and box.top == 0 and box.left == 0
    box = expand_box(Box(100, 100, 400, 300), (500, 400), 1.4, 200)
    assert box.height == 420 and box.width == 280 and box.bottom <= 500
    small = expand_box(Box(0, 0, 5, 5), (50, 60), 1.4, 200)
    assert (small.height, small.width) == (50, 60)


def test_box_iou():
    assert box_iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert box_iou(Box(0, 0, 10, 10), Box(0, 5, 10, 15)) == pytest.approx(50 / 150)


def test_bad_model_name_and_threshold():
    with pytest.raises(ValueError, match="Unknown model name"):
        ClickSession("vit_q")
    with pytest.raises(ValueError, match="threshold"):
        ClickSession("tiny", threshold=1.5)
    with pytest.raises(TypeError, match="model must be"):
        ClickSession(3.5)


def test_negative_prompts_alone_segment_nothing_and_a_positive_one_then_does(session, image):
    session.set_image(image)
    first = session.add_click(250, 200, positive=False)  # "not this" with no object yet
    assert not first.mask.any()  # nothing says where an object is
    assert not session.add_scribble([(20, 20), (40, 60)], positive=False).mask.any()
    found = session.add_click(130, 115, positive=True)
    assert found.mask[130, 115] and found.mask.sum() > 100
    assert session.undo() is not None and not session.prediction.mask.any()  # undo: empty again
    session.reset()


def test_an_architecture_without_weights_warns_that_its_masks_mean_nothing(monkeypatch):
    from napari_adaptiveclick.models import registry

    built = []
    monkeypatch.setattr(registry, "build_model", lambda name: built.append(name) or name)
    with pytest.warns(UserWarning, match="'vit_b' names an architecture without weights"):
        assert registry.resolve_model("vit_b") == "vit_b"
    assert built == ["vit_b"]


def test_first_click_window_focuses_the_first_click_on_large_images(image):
    s = ClickSession("tiny", device="cpu", first_click_window=200, first_click_grow=False)
    big = np.tile(image, (4, 4))  # 1200 x 1040
    s.set_image(big)
    s.add_click(600, 900)
    roi = s._history[-1].roi
    assert (
        (roi.height, roi.width) == (200, 200)
        and roi.top <= 600 < roi.bottom
        and roi.left <= 900 < roi.right
    )
    s.set_image(image)  # 300 x 260: larger than the window, still focused
    s.add_click(10, 10)
    assert s._history[-1].roi == Box(0, 0, 200, 200)
    small = ClickSession(s.model, device="cpu", first_click_window=512)
    small.set_image(image)  # smaller than the window: whole image
    small.add_click(10, 10)
    assert small._history[-1].roi is None
    auto = ClickSession(s.model, device="cpu")
    assert auto.first_click_window == s.config.input_size and auto.first_click_grow
    with pytest.raises(ValueError, match="first_click_window"):
        ClickSession(s.model, device="cpu", first_click_window=-3)


def test_touches_inner_edge_ignores_the_image_border():
    mask = np.zeros((100, 100), bool)
    box = Box(0, 0, 50, 50)  # top and left edges are the image's
    mask[0, 10] = mask[10, 0] = True
    assert not touches_inner_edge(mask, box, mask.shape)
    mask[49, 20] = True  # bottom edge, inside the image
    assert touches_inner_edge(mask, box, mask.shape)
    mask[:] = False
    mask[20, 49] = True  # right edge
    assert touches_inner_edge(mask, box, mask.shape)
    assert not touches_inner_edge(mask, Box(0, 0, 100, 100), mask.shape)


def _brightness_model(config):
    """A model with the session's interface whose mask is "brighter than mid-grey", so the
    window logic can be checked against a known answer."""
    import torch

    class Brightness(torch.nn.Module):
        def forward(self, image, prev, maps):
            return {"mask_logits": 40.0 * (image[:, :1] - 0.5)}

    model = Brightness()
    model.config = config
    return model


def _bright_disks(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """An 800 x 800 noise image and the mask of a bright disk of ``radius`` at (400, 400)."""
    from synthetic import disk_volume

    image = disk_volume(1, 800)[0]  # its own bright disk has radius 200 at the same centre
    rows, cols = np.mgrid[:800, :800]
    disk = (rows - 400) ** 2 + (cols - 400) ** 2 < radius**2
    if radius != 200:
        image[(rows - 400) ** 2 + (cols - 400) ** 2 < 200**2] = 100.0
        image[disk] += 80.0
    return image, disk


def test_first_click_window_grows_until_the_object_fits(session):
    """A click on an object larger than the first window: the mask runs to the window's edges,
    so the window doubles (here up to the whole image) and the object is found whole."""
    image, disk = _bright_disks(200)
    model = _brightness_model(session.config)
    grown = ClickSession(model, device="cpu", first_click_window=128)
    grown.set_image(image)
    mask = grown.add_click(400, 300).mask
    assert grown._history[-1].roi is None  # 128 -> 256 -> 512 -> whole image
    assert (mask & disk).sum() / (mask | disk).sum() > 0.95
    small, _ = _bright_disks(30)  # a 60 px disk: fits in 128
    kept = ClickSession(model, device="cpu", first_click_window=128)
    kept.set_image(small)
    kept.add_click(400, 400)
    assert kept._history[-1].roi == Box(336, 336, 464, 464)
    fixed = ClickSession(model, device="cpu", first_click_window=128, first_click_grow=False)
    fixed.set_image(image)
    assert fixed.add_click(400, 300).mask.sum() == 128 * 128  # the window, all bright
    assert fixed._history[-1].roi == Box(336, 236, 464, 364)
    fixed.add_click(400, 500)  # later clicks use the zoom-in box, never the window
    assert min(fixed._history[-1].roi.height, fixed._history[-1].roi.width) > 128


def test_second_click_leaves_the_first_click_window_for_the_zoom_in_box(session):
    """The first-click window is no zoom-in box: the second click zooms onto the first mask
    (here a 60 px disk: a 200 px box, the smallest), as the release does after its whole-image
    first click, instead of keeping the larger window."""
    image, _ = _bright_disks(30)
    s = ClickSession(_brightness_model(session.config), device="cpu", first_click_window=256)
    s.set_image(image)
    s.add_click(400, 400)
    assert s._history[-1].roi == Box(272, 272, 528, 528)
    s.add_click(400, 450, positive=False)
    roi = s._history[-1].roi
    assert (roi.height, roi.width) == (200, 200) and roi.top <= 400 < roi.bottom
