"""Mask losses: AFL golden values, exact relations to the baselines, detached statistics,
numerical stability."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_adaptiveclick.learning.losses import (
    MASK_LOSSES,
    adaptive_focal_loss,
    bce,
    dice,
    focal,
    get_mask_loss,
    normalized_focal,
    poly1_focal,
    wbce,
)


def _random_batch(
    seed: int, masks: int = 4, pixels: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    logits = torch.tensor(rng.normal(0.0, 3.0, (masks, pixels)), dtype=torch.float32)
    targets = torch.tensor(rng.random((masks, pixels)) < 0.3, dtype=torch.float32)
    targets[-1] = 0.0  # one mask with an empty foreground
    return logits, targets


def test_afl_golden_value_all_foreground():
    loss = adaptive_focal_loss(torch.zeros(1, 100), torch.ones(1, 100))
    assert loss.item() == pytest.approx(0.217481, abs=1e-6)
    # closed form: p_t = 0.5, gamma_a = 0.5, gamma_d = 2.5, mu * beta = 1 / (1 + 0.4 * 2.5)
    assert loss.item() == pytest.approx(0.5 * (math.log(2) / 2.0 + 0.5**3.5), rel=1e-6)


def test_afl_empty_foreground_uses_gamma_a_one():
    loss = adaptive_focal_loss(torch.zeros(1, 100), torch.zeros(1, 100))
    # gamma_d = 3: 0.5 * (log 2 / (1 + 0.4 * 3) + 0.5 ** 4)
    assert loss.item() == pytest.approx(0.5 * (math.log(2) / 2.2 + 0.5**4), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_focal_family_relations_are_exact(seed):
    logits, targets = _random_batch(seed)
    plain = {"use_ada": False, "use_agr": False}
    assert torch.equal(adaptive_focal_loss(logits, targets, **plain), poly1_focal(logits, targets))
    assert torch.equal(
        adaptive_focal_loss(logits, targets, alpha=0.0, **plain), focal(logits, targets)
    )
    as_ce = adaptive_focal_loss(logits, targets, alpha=0.0, gamma=0.0, **plain)
    assert torch.equal(as_ce, wbce(logits, targets, pos_weight=0.5, neg_weight=0.5))
    torch.testing.assert_close(as_ce, 0.5 * bce(logits, targets), rtol=1e-6, atol=0.0)
    unbalanced = adaptive_focal_loss(logits, targets, alpha=0.0, gamma=0.0, balance=0.8, **plain)
    assert torch.equal(unbalanced, wbce(logits, targets, pos_weight=0.8, neg_weight=0.2))
    nfl = adaptive_focal_loss(logits, targets, alpha=0.0, delta=0.0, use_ada=False, use_agr=True)
    assert torch.equal(nfl, normalized_focal(logits, targets))


def test_bce_matches_torch():
    logits, targets = _random_batch(2)
    expected = F.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(bce(logits, targets), expected)


def _afl_by_hand(logits, targets, gamma_d, mu):
    """The paper's AFL with gamma_d (N, 1) and mu (N, 1) given, release reduction."""
    prob = torch.sigmoid(logits)
    p_t = prob * targets + (1 - prob) * (1 - targets)
    pixel = -mu * (1 - p_t) ** gamma_d * torch.log(p_t) + (1 - p_t) ** (gamma_d + 1)
    return (0.5 * pixel).mean(dim=1).mean()


def _statistics(logits, targets):
    """gamma_d and mu per mask, (N, 1) each, as SPEC.md section 2 defines them."""
    prob = torch.sigmoid(logits)
    p_t = prob * targets + (1 - prob) * (1 - targets)
    fg = targets > 0.5
    count = fg.sum(1, keepdim=True)
    gamma_a = torch.where(
        count > 0, 1 - (p_t * fg).sum(1, keepdim=True) / count.clamp_min(1), torch.ones(1)
    )
    gamma_d = 2.0 + gamma_a
    beta_sum = ((1 - p_t) ** gamma_d).sum(1, keepdim=True)
    mu = logits.shape[1] / ((1 + 0.4 * gamma_d) * beta_sum)
    return gamma_d, mu


def test_afl_statistics_carry_no_gradient():
    raw, targets = _random_batch(3)
    raw = raw.clamp(-6, 6)  # keep log(p_t) of the hand-written reference finite
    logits = raw.clone().requires_grad_(True)
    adaptive_focal_loss(logits, targets).backward()

    reference = raw.clone().requires_grad_(True)
    gamma_d, mu = _statistics(reference.detach(), targets)
    expected = _afl_by_hand(reference, targets, gamma_d, mu)
    expected.backward()
    torch.testing.assert_close(adaptive_focal_loss(raw, targets), expected.detach())
    torch.testing.assert_close(logits.grad, reference.grad, rtol=1e-5, atol=1e-8)

    # the check is sensitive: letting gradient flow through gamma_d and mu changes it
    attached = raw.clone().requires_grad_(True)
    _afl_by_hand(attached, targets, *_statistics(attached, targets)).backward()
    assert not torch.allclose(attached.grad, reference.grad, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", [*sorted(MASK_LOSSES), "dice"])
@pytest.mark.parametrize("magnitude", [30.0, 100.0])
def test_losses_finite_at_saturated_logits_and_empty_masks(name, magnitude):
    loss_fn = dice if name == "dice" else get_mask_loss(name)
    rng = np.random.default_rng(4)
    signs = torch.tensor(rng.choice([-1.0, 1.0], (4, 64)), dtype=torch.float32)
    targets = torch.tensor(rng.random((4, 64)) < 0.5, dtype=torch.float32)
    targets[2] = 0.0  # empty foreground
    targets[3] = 1.0  # all foreground
    signs[1] = 2.0 * targets[1] - 1.0  # a perfectly predicted mask
    logits = (magnitude * signs).requires_grad_(True)
    loss = loss_fn(logits, targets)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", sorted(MASK_LOSSES))
def test_every_loss_rewards_better_logits(name):
    loss_fn = get_mask_loss(name)
    _, targets = _random_batch(5)
    good = 4.0 * (2.0 * targets - 1.0)
    assert loss_fn(good, targets) < loss_fn(torch.zeros_like(good), targets)
    assert loss_fn(torch.zeros_like(good), targets) < loss_fn(-good, targets)


def test_no_masks_gives_zero():
    empty = torch.zeros(0, 16)
    for loss_fn in [*MASK_LOSSES.values(), dice]:
        assert loss_fn(empty, empty).item() == 0.0


def test_unknown_name_and_bad_shapes_explain_themselves():
    with pytest.raises(ValueError, match="afl, balanced_ce, bce"):
        get_mask_loss("focal_loss")
    with pytest.raises(ValueError, match="flatten"):
        adaptive_focal_loss(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4))
