"""Hungarian matcher and set criterion on small random model outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_adaptiveclick.learning.criterion import SetCriterion, upsample_masks
from napari_adaptiveclick.learning.losses import MASK_LOSSES, bce, dice
from napari_adaptiveclick.learning.matcher import HungarianMatcher

SIZE = 32  # input / target resolution
LOW = SIZE // 4  # query mask resolution
QUERIES = 5


def _disk(center: tuple[float, float], radius: float, size: int = SIZE) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    inside = (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2
    return inside.float()


def _stage(rng: np.random.Generator, batch: int) -> dict[str, torch.Tensor]:
    logits = rng.normal(0.0, 1.0, (batch, QUERIES, 2))
    masks = rng.normal(0.0, 1.0, (batch, QUERIES, LOW, LOW))
    return {
        "pred_logits": torch.tensor(logits, dtype=torch.float32, requires_grad=True),
        "pred_masks": torch.tensor(masks, dtype=torch.float32, requires_grad=True),
    }


def _outputs(seed: int, batch: int = 2, aux: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    outputs = _stage(rng, batch)
    outputs["aux_outputs"] = [_stage(rng, batch) for _ in range(aux)]
    fused = rng.normal(0.0, 1.0, (batch, 1, SIZE, SIZE))
    outputs["mask_logits"] = torch.tensor(fused, dtype=torch.float32, requires_grad=True)
    return outputs


def _low_res_logits(target: torch.Tensor) -> torch.Tensor:
    """Confident (h, w) logits for a (H, W) target."""
    small = F.interpolate(target[None, None], size=(LOW, LOW), mode="area")[0, 0]
    return 8.0 * (2.0 * small - 1.0)


def _targets() -> list[torch.Tensor]:
    return [_disk((10, 12), 6)[None], torch.stack([_disk((20, 20), 7), _disk((6, 6), 4)])]


def test_matcher_picks_the_obviously_best_query():
    outputs = _outputs(0)
    targets = _targets()
    with torch.no_grad():
        outputs["pred_masks"][0, 3] = _low_res_logits(targets[0][0])
        outputs["pred_masks"][1, 1] = _low_res_logits(targets[1][0])
        outputs["pred_masks"][1, 4] = _low_res_logits(targets[1][1])
    matches = HungarianMatcher()(outputs, targets)
    assert matches[0][0].tolist() == [3] and matches[0][1].tolist() == [0]
    assert dict(zip(matches[1][0].tolist(), matches[1][1].tolist(), strict=True)) == {1: 0, 4: 1}


def test_cost_matrix_is_the_pairwise_bce_and_dice():
    rng = np.random.default_rng(8)
    class_logits = torch.tensor(rng.normal(0, 1, (QUERIES, 2)), dtype=torch.float32)
    masks = torch.tensor(rng.normal(0, 2, (QUERIES, LOW, LOW)), dtype=torch.float32)
    targets = torch.stack([_disk((10, 12), 6), _disk((20, 20), 9)])
    cost = HungarianMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=5.0).cost_matrix(
        class_logits, masks, targets
    )
    # Costs are computed at the prediction's resolution, the target area-averaged down to it.
    logits = masks.flatten(1)
    low_targets = torch.nn.functional.adaptive_avg_pool2d(targets[None], (LOW, LOW))[0]
    p_object = class_logits.softmax(-1)[:, 1]
    for q in range(QUERIES):
        for t in range(2):
            pair = (logits[q : q + 1], low_targets[t].flatten()[None])
            expected = -2.0 * p_object[q] + 5.0 * bce(*pair) + 5.0 * dice(*pair)
            torch.testing.assert_close(cost[q, t], expected, rtol=1e-5, atol=1e-5)


def test_matcher_uses_class_cost_to_break_mask_ties():
    outputs = _outputs(1, batch=1)
    target = [_disk((16, 16), 8)[None]]
    with torch.no_grad():
        outputs["pred_masks"][0] = _low_res_logits(target[0][0])  # all queries equally good
        outputs["pred_logits"][0, :, :] = torch.tensor([2.0, -2.0])
        outputs["pred_logits"][0, 2] = torch.tensor([-2.0, 2.0])  # only query 2 says "object"
    assert HungarianMatcher()(outputs, target)[0][0].tolist() == [2]


@pytest.mark.parametrize("name", sorted(MASK_LOSSES))
def test_loss_decreases_as_matched_query_moves_toward_target(name):
    outputs = _outputs(2, batch=1, aux=0)
    goal = _low_res_logits(_disk((14, 18), 7))
    # the target the goal logits reproduce exactly after the criterion's upsampling
    target = [(upsample_masks(goal[None], (SIZE, SIZE)) > 0).float()]
    criterion = SetCriterion(mask_loss=name)
    query = int(criterion.matcher(outputs, target)[0][0][0])
    start = outputs["pred_masks"][0, query].detach().clone()
    losses = []
    for step in (0.0, 0.25, 0.5, 0.75, 1.0):
        with torch.no_grad():
            outputs["pred_masks"][0, query] = (1 - step) * start + step * goal
        terms = criterion(outputs, target)
        losses.append((terms["loss_mask"].item(), terms["loss_dice"].item()))
    for (mask_a, dice_a), (mask_b, dice_b) in zip(losses, losses[1:], strict=False):
        assert mask_b < mask_a and dice_b < dice_a


def test_every_stage_contributes_and_total_is_the_weighted_sum():
    outputs = _outputs(3, aux=4)
    criterion = SetCriterion(fused_weight=0.5)
    terms = criterion(outputs, _targets())
    terms["loss"].backward()
    stages = [outputs, *outputs["aux_outputs"]]
    for stage in stages:
        assert stage["pred_masks"].grad.abs().sum() > 0
        assert stage["pred_logits"].grad.abs().sum() > 0
    assert outputs["mask_logits"].grad.abs().sum() > 0
    suffixes = ["", *(f"_aux{i}" for i in range(4))]
    expected = sum(
        2.0 * terms[f"loss_class{s}"] + 5.0 * terms[f"loss_mask{s}"] + 5.0 * terms[f"loss_dice{s}"]
        for s in suffixes
    ) + 0.5 * (terms["loss_fused_mask"] + terms["loss_fused_dice"])
    torch.testing.assert_close(terms["loss"], expected)
    assert len(terms) == 3 * len(suffixes) + 3


def test_unmatched_queries_get_only_the_class_loss():
    outputs = _outputs(4, batch=1, aux=0)
    target = [_disk((16, 16), 6)[None]]
    criterion = SetCriterion()
    query = int(criterion.matcher(outputs, target)[0][0][0])
    criterion(outputs, target)["loss"].backward()
    grads = outputs["pred_masks"].grad[0].flatten(1).abs().sum(1)
    assert grads[query] > 0
    assert torch.count_nonzero(grads) == 1
    # class weights: 1.0 on the matched "object" query, 0.1 on the others
    labels = torch.zeros(1, QUERIES, dtype=torch.int64)
    labels[0, query] = 1
    expected = F.cross_entropy(
        outputs["pred_logits"].detach().transpose(1, 2), labels, weight=torch.tensor([0.1, 1.0])
    )
    torch.testing.assert_close(criterion(outputs, target)["loss_class"], expected)


def test_images_without_object_make_every_query_no_object():
    outputs = _outputs(5, batch=2, aux=1)
    empty = [torch.zeros(0, SIZE, SIZE), torch.zeros(0, SIZE, SIZE)]
    terms = SetCriterion(fused_weight=1.0)(outputs, empty)
    assert terms["loss_mask"].item() == 0.0 and terms["loss_dice"].item() == 0.0
    no_object = torch.zeros(2, QUERIES, dtype=torch.int64)
    expected = F.cross_entropy(outputs["pred_logits"].detach().transpose(1, 2), no_object)
    torch.testing.assert_close(terms["loss_class"], expected)
    terms["loss"].backward()
    assert torch.isfinite(outputs["pred_logits"].grad).all()
    # the gradient raises the no-object logit of every query
    assert (outputs["pred_logits"].grad[..., 0] < 0).all()
    assert outputs["mask_logits"].grad.abs().sum() > 0  # fused mask learns to be empty


def test_mixed_batch_with_one_empty_image():
    outputs = _outputs(6, batch=2, aux=0)
    targets = [torch.zeros(0, SIZE, SIZE), _disk((16, 16), 6)[None]]
    matches = HungarianMatcher()(outputs, targets)
    assert len(matches[0][0]) == 0 and len(matches[1][0]) == 1
    terms = SetCriterion()(outputs, targets)
    assert all(torch.isfinite(v) for v in terms.values())


def test_bad_targets_explain_themselves():
    outputs = _outputs(7, batch=2, aux=0)
    with pytest.raises(ValueError, match="one"):
        SetCriterion()(outputs, [_disk((5, 5), 3)[None]])
    with pytest.raises(ValueError, match=r"\(T_b, H, W\)"):
        SetCriterion()(outputs, [_disk((5, 5), 3), _disk((5, 5), 3)])
    with pytest.raises(ValueError, match="input resolution"):
        SetCriterion(fused_weight=1.0)(outputs, [torch.zeros(1, 16, 16), torch.zeros(1, 16, 16)])
    with pytest.raises(ValueError, match="Unknown mask loss"):
        SetCriterion(mask_loss="nope")
