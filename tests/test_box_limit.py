"""A box prompt keeps the mask inside the box (issue #16): the limit's geometry against hand
values, which prompts keep or lift it, and a session whose masks stay inside it through later
clicks, undo and the compact undo form, until a positive click outside lifts it.

The model is a randomly initialised ``tiny``: its probability is non-zero almost everywhere,
so a zero outside the limit is the limit's doing.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_adaptiveclick.interactive.boxed import zero_outside
from napari_adaptiveclick.interactive.focus import box_limit, next_limit
from napari_adaptiveclick.interactive.prompts import BoxPrompt, Click, MaskPrompt, Scribble
from napari_adaptiveclick.interactive.transforms import Box


def test_the_limit_is_the_box_grown_by_its_margin_and_clamped():
    # 20 x 40 pixels: 0.2 of the sides + 2 px is 6 rows and 10 columns on every edge
    assert box_limit(BoxPrompt(10, 20, 30, 60), (100, 100), 0.2) == Box(4, 10, 36, 70)
    assert box_limit(BoxPrompt(2, 80, 22, 100), (100, 100), 0.2) == Box(0, 74, 28, 100)
    assert box_limit(BoxPrompt(10, 20, 30, 60), (100, 100), 0.0) == Box(8, 18, 32, 62)


def test_which_prompts_keep_or_lift_the_limit():
    shape, limit = (100, 100), Box(4, 10, 36, 70)
    assert next_limit(None, BoxPrompt(10, 20, 30, 60), shape, 0.2) == limit
    assert next_limit(limit, BoxPrompt(10, 20, 30, 60), shape, None) is None
    assert next_limit(limit, Click(20, 30, True), shape, 0.2) == limit  # inside
    assert next_limit(limit, Click(50, 30, False), shape, 0.2) == limit  # negative outside
    assert next_limit(limit, Click(50, 30, True), shape, 0.2) is None  # positive outside
    assert next_limit(limit, Click(35.6, 30, True), shape, 0.2) is None  # rounds to row 36
    assert next_limit(limit, Scribble([(20, 30), (20, 75)], True), shape, 0.2) is None
    assert next_limit(limit, Scribble([(20, 30), (20, 69)], True), shape, 0.2) == limit
    mask = MaskPrompt.of(np.ones((5, 5), bool), shape, Box(0, 0, 5, 5))
    assert next_limit(limit, mask, shape, 0.2) is None
    assert next_limit(None, Click(20, 30, True), shape, 0.2) is None


def test_zero_outside_against_hand_values():
    values = np.arange(1, 13, dtype=np.float32).reshape(3, 4)  # held in Box(10, 20, 13, 24)
    box = Box(10, 20, 13, 24)
    out = zero_outside(values, box, Box(11, 21, 20, 23))
    np.testing.assert_array_equal(out, [[0, 0, 0, 0], [0, 6, 7, 0], [0, 10, 11, 0]])
    assert zero_outside(values, box, None) is values
    assert zero_outside(values, box, Box(0, 0, 50, 50)) is values
    assert not zero_outside(values, box, Box(0, 0, 5, 5)).any()  # no overlap
    assert values[0, 0] == 1  # the input is not changed


@pytest.fixture(scope="module")
def session(random_tiny_session):
    return random_tiny_session


def _outside(probability: np.ndarray, limit: Box) -> np.ndarray:
    keep = np.zeros(probability.shape, bool)
    keep[limit.top : limit.bottom, limit.left : limit.right] = True
    return probability[~keep]


@pytest.mark.parametrize("size", [300, 700])  # 700: the crop is larger than the model's input
def test_masks_stay_in_the_box_until_a_positive_click_outside(session, size):
    rng = np.random.default_rng(0)
    image = rng.normal(100, 10, (size, size)).astype(np.float32)
    corners = (100, 80, 160, 150) if size == 300 else (100, 100, 500, 560)
    limit = box_limit(BoxPrompt(*corners), image.shape, 0.2)
    session.set_image(image)
    first = session.add_box(*corners).probability
    assert not _outside(first, limit).any()
    assert first.any()
    inside = session.add_click(limit.top + 3, limit.left + 3, False).probability
    assert not _outside(inside, limit).any()
    np.testing.assert_array_equal(session.undo().probability, first)  # remade if compacted
    lifted = session.add_click(limit.bottom + 5, limit.right + 5, True).probability
    assert _outside(lifted, limit).any()
    np.testing.assert_array_equal(session.undo().probability, first)


def test_no_margin_no_limit(session):
    rng = np.random.default_rng(1)
    image = rng.normal(100, 10, (300, 300)).astype(np.float32)
    session.set_image(image)
    session.box_margin = None
    try:
        free = session.add_box(100, 80, 160, 150).probability
    finally:
        session.box_margin = 0.2
    assert _outside(free, box_limit(BoxPrompt(100, 80, 160, 150), (300, 300), 0.2)).any()


def test_the_evaluation_takes_the_margin_and_shows_it():
    from napari_adaptiveclick.evaluation.report import describe_protocol
    from training.evaluate import parse_args, settings_from_args

    argv = ["--dataset", "sstem", "--out", "x", "--checkpoint", "default", "--first-prompt", "box"]
    assert settings_from_args(parse_args(argv)).box_margin == 0.2
    assert settings_from_args(parse_args([*argv, "--box-margin", "none"])).box_margin is None
    assert settings_from_args(parse_args([*argv, "--box-margin", "0.5"])).box_margin == 0.5
    with pytest.raises(SystemExit):
        parse_args([*argv, "--box-margin", "-1"])
    protocol = {"name": "plugin", "zoom_in": True, "first_prompt": "box", "box_margin": 0.2}
    assert describe_protocol(protocol).endswith("from a box limit +0.2")
    assert describe_protocol({**protocol, "box_margin": None}).endswith("from a box unlimited")


@pytest.mark.parametrize("margin", [-0.1, float("nan"), float("inf")])
def test_a_session_refuses_a_box_margin_that_is_not_a_fraction(margin):
    import warnings

    from napari_adaptiveclick.interactive.session import ClickSession

    with warnings.catch_warnings(), pytest.raises(ValueError, match="box_margin must be"):
        warnings.simplefilter("ignore")
        ClickSession("tiny", "cpu", box_margin=margin)
