"""The NoC click simulator against hand-computed cases."""

import numpy as np
import pytest

from napari_adaptiveclick.evaluation.simulator import next_click, next_clicks
from napari_adaptiveclick.interactive.prompts import Click


def mask(shape, *boxes):
    """(H, W) bool with True inside each (top, bottom, left, right) half-open box."""
    out = np.zeros(shape, dtype=bool)
    for top, bottom, left, right in boxes:
        out[top:bottom, left:right] = True
    return out


def test_first_click_goes_to_the_centre_of_the_object():
    gt = mask((7, 7), (1, 4, 1, 4))
    assert next_click(gt, np.zeros_like(gt)) == Click(2.0, 2.0, True)


def test_no_error_left_gives_none():
    gt = mask((5, 5), (1, 3, 1, 3))
    assert next_click(gt, gt.copy()) is None
    assert next_click(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) is None


def test_larger_false_positive_gives_a_negative_click():
    gt = mask((8, 10), (1, 3, 1, 3))  # 2x2 miss: max distance 1
    pred = mask((8, 10), (2, 7, 4, 9))  # 5x5 false positive: max distance 3 at its centre
    assert next_click(gt, pred) == Click(4.0, 6.0, False)


def test_ties_are_negative_at_the_first_false_positive_pixel():
    gt = mask((6, 8), (1, 3, 1, 3))
    pred = mask((6, 8), (1, 3, 5, 7))  # both errors 2x2, both maxima 1
    assert next_click(gt, pred) == Click(1.0, 5.0, False)


def test_first_pixel_in_row_major_order_among_equal_maxima():
    gt = mask((6, 7), (2, 5, 1, 6))  # 3x5 block: distance 2 along the middle row, cols 2..4
    assert next_click(gt, np.zeros_like(gt)) == Click(3.0, 2.0, True)


def test_image_border_counts_as_outside():
    # Whole image is missed: without the 1-px padding the distance transform has no zero.
    gt = np.ones((4, 6), dtype=bool)
    assert next_click(gt, np.zeros_like(gt)) == Click(1.0, 1.0, True)
    # A 3x3 block touching the top border: the padded DT is 1 on row 0 and 2 at (1, 3);
    # unpadded, (0, 3) would already be at distance 2 and be chosen first.
    gt = mask((6, 7), (0, 3, 2, 5))
    assert next_click(gt, np.zeros_like(gt)) == Click(1.0, 3.0, True)


def test_distances_are_exact_euclidean():
    # fn: 3x3 block, max distance 2. fp: a plus sign whose centre is sqrt(2) from the
    # removed corners (a city-block transform would give 2 and a negative tie).
    gt = mask((9, 12), (1, 4, 1, 4))
    pred = mask((9, 12), (5, 6, 6, 9), (4, 7, 7, 8))
    assert next_click(gt, pred) == Click(2.0, 2.0, True)


def test_clicked_pixels_are_excluded():
    gt = mask((7, 7), (1, 4, 1, 4))
    clicked = np.zeros_like(gt)
    clicked[2, 2] = True
    assert next_click(gt, np.zeros_like(gt), clicked) == Click(1.0, 1.0, True)
    # With the deepest miss clicked, fn (now 1) ties with a 2x2 false positive (1): negative.
    pred = mask((7, 7), (5, 7, 5, 7))
    assert next_click(gt, pred, clicked) == Click(5.0, 5.0, False)
    # Every error pixel already clicked: nothing left to click.
    single = mask((4, 4), (1, 2, 1, 2))
    assert next_click(single, np.zeros_like(single), single) is None


def test_batch_matches_single_calls():
    rng = np.random.default_rng(0)
    gts = rng.random((3, 12, 14)) > 0.4
    preds = rng.random((3, 12, 14)) > 0.5
    clicked = rng.random((3, 12, 14)) > 0.9
    expected = [next_click(g, p, c) for g, p, c in zip(gts, preds, clicked, strict=True)]
    assert next_clicks(gts, preds, clicked) == expected
    assert next_clicks(gts, gts) == [None, None, None]


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="same shape"):
        next_click(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="clicked has shape"):
        next_click(np.zeros((4, 4), bool), np.zeros((4, 4), bool), np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        next_clicks(np.zeros((4, 4), bool), np.zeros((4, 4), bool))


def _release_rule(gt, pred, clicked):
    """The release's rule written out on the whole padded image (no bounding-box shortcut)."""
    from scipy.ndimage import distance_transform_edt

    def dt(region):
        return distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1] * ~clicked

    fn_dt, fp_dt = dt(gt & ~pred), dt(~gt & pred)
    if max(fn_dt.max(), fp_dt.max()) == 0:
        return None
    positive = bool(fn_dt.max() > fp_dt.max())
    rows, cols = np.where(fn_dt == fn_dt.max()) if positive else np.where(fp_dt == fp_dt.max())
    return Click(float(rows[0]), float(cols[0]), positive)


def test_agrees_with_the_release_rule_on_random_masks():
    from scipy.ndimage import binary_opening

    rng = np.random.default_rng(3)
    for _ in range(60):
        shape = tuple(rng.integers(2, 30, size=2))
        gt = binary_opening(rng.random(shape) > rng.uniform(0.2, 0.8))
        pred = gt ^ (rng.random(shape) > rng.uniform(0.7, 1.0))
        clicked = rng.random(shape) > 0.95
        assert next_click(gt, pred, clicked) == _release_rule(gt, pred, clicked)
