"""Per-pixel mask losses: the Adaptive Focal Loss and the baselines the paper compares against.

Every loss takes ``logits`` ``(N, P)`` (N masks, each flattened to P pixels) and ``targets``
``(N, P)`` float in {0, 1}, and returns a scalar: the mean over the N masks of the per-mask loss
(0 when N == 0). Pixel terms use ``-log p_t = BCE-with-logits`` and ``1 - p_t`` computed as the
sigmoid of the logit on the wrong side, so values and gradients stay finite where p = 0 or 1.

The focal family (FL, NFL, PL, AFL) shares one core, so these relations hold exactly
(bit for bit; tested):

- ``adaptive_focal_loss(use_ada=False, use_agr=False, alpha=e) == poly1_focal(epsilon=e)``
- ``adaptive_focal_loss(use_ada=False, use_agr=False, alpha=0) == focal``
- ``adaptive_focal_loss(use_ada=False, use_agr=False, alpha=0, gamma=0)
  == wbce(pos_weight=balance, neg_weight=1 - balance)``, i.e. ``0.5 * bce`` for balance 0.5
- ``adaptive_focal_loss(use_ada=False, use_agr=True, alpha=0, delta=0) == normalized_focal``

Provenance: AFL from Lin et al., AdaptiveClick (TNNLS, arXiv 2305.04276) Sec. III-C with the
constants and reduction of its release (SPEC.md section 2); NFL as RITM's
NormalizedFocalLossSigmoid; PL from Leng et al., PolyLoss (ICLR 2022); dice as Mask2Former.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

MaskLoss = Callable[[Tensor, Tensor], Tensor]

# Added to normaliser denominators (as the release does) so a perfect prediction gives 0, not NaN.
_EPS = 1e-12


def _check(logits: Tensor, targets: Tensor) -> None:
    if logits.ndim != 2 or logits.shape != targets.shape:
        raise ValueError(
            f"Mask losses need logits and targets of the same shape (N masks, P pixels); got "
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)}. Flatten each "
            "mask with .flatten(1) first."
        )


def _mean_over_masks(per_mask: Tensor) -> Tensor:
    """Sum over masks divided by the number of masks (at least 1), ``(N,) -> ()``."""
    return per_mask.sum() / max(per_mask.shape[0], 1)


def _wrong_side_probability(logits: Tensor, targets: Tensor) -> Tensor:
    """``1 - p_t``, ``(N, P)``, without the cancellation of ``1 - sigmoid(z)``."""
    return targets * torch.sigmoid(-logits) + (1.0 - targets) * torch.sigmoid(logits)


def _power(base: Tensor, exponent: float | Tensor) -> Tensor:
    """``base ** exponent`` with base clamped to the smallest normal float, so the gradient of
    ``x ** g`` stays finite at x = 0 (g = 0 gives 1 and gradient 0, as it should)."""
    return base.clamp_min(torch.finfo(base.dtype).tiny).pow(exponent)


def _class_balance(targets: Tensor, balance: float) -> Tensor:
    """``balance`` on foreground pixels and ``1 - balance`` on background, ``(N, P)``."""
    return balance * targets + (1.0 - balance) * (1.0 - targets)


def _gradient_normaliser(wrong: Tensor, exponent: float | Tensor, delta: float = 0.0) -> Tensor:
    """``P / ((1 + delta * exponent) * sum_i (1 - p_t,i) ** exponent)`` per mask, ``(N, 1)``,
    without gradient (AFL's AGR ``mu``; with delta = 0 RITM's NFL multiplier)."""
    with torch.no_grad():
        beta_sum = _power(wrong, exponent).sum(dim=1, keepdim=True)
        return wrong.shape[1] / ((1.0 + delta * exponent) * beta_sum + _EPS)


def _focal_family(
    logits: Tensor,
    targets: Tensor,
    exponent: float | Tensor,
    multiplier: float | Tensor,
    poly: float,
    balance: float,
) -> Tensor:
    """Mean over masks of the pixel mean of
    ``balance_t * (multiplier * (1 - p_t) ** g * (-log p_t) + poly * (1 - p_t) ** (g + 1))``.

    ``exponent`` g and ``multiplier`` are floats or per-mask ``(N, 1)`` tensors.
    """
    _check(logits, targets)
    nll = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    wrong = _wrong_side_probability(logits, targets)
    pixel = multiplier * _power(wrong, exponent) * nll
    if poly != 0.0:
        pixel = pixel + poly * _power(wrong, exponent + 1.0)
    pixel = _class_balance(targets, balance) * pixel
    return _mean_over_masks(pixel.mean(dim=1))


def adaptive_focal_loss(
    logits: Tensor,
    targets: Tensor,
    gamma: float = 2.0,
    delta: float = 0.4,
    alpha: float = 1.0,
    use_ada: bool = True,
    use_agr: bool = True,
    balance: float = 0.5,
) -> Tensor:
    """Adaptive Focal Loss (AFL), ``(N, P), (N, P) -> ()``.

    Per mask (no gradient through gamma_a or mu):

    - ADA: ``gamma_a = 1 - mean of p_t over foreground pixels`` (1 for an empty foreground),
      ``gamma_d = gamma + gamma_a``; with ``use_ada=False`` gamma_d = gamma.
    - AGR: ``mu = P / ((1 + delta * gamma_d) * sum_i (1 - p_t,i) ** gamma_d)``; with
      ``use_agr=False`` mu = 1.
    - pixel loss ``-mu (1 - p_t) ** gamma_d log p_t + alpha (1 - p_t) ** (gamma_d + 1)``,
      multiplied by the class balance (``balance`` on foreground, ``1 - balance`` on
      background; 0.5 as in the release), averaged over pixels, then over masks.

    Golden value: one all-foreground mask of 100 pixels with z = 0 gives 0.217481.
    """
    _check(logits, targets)
    exponent: float | Tensor = gamma
    if use_ada:
        with torch.no_grad():
            foreground = targets > 0.5
            count = foreground.sum(dim=1, keepdim=True)
            p_t = 1.0 - _wrong_side_probability(logits, targets)
            mean_fg = (p_t * foreground).sum(dim=1, keepdim=True) / count.clamp_min(1)
            exponent = gamma + torch.where(count > 0, 1.0 - mean_fg, torch.ones_like(mean_fg))
    multiplier: float | Tensor = 1.0
    if use_agr:
        multiplier = _gradient_normaliser(_wrong_side_probability(logits, targets), exponent, delta)
    return _focal_family(logits, targets, exponent, multiplier, alpha, balance)


def focal(logits: Tensor, targets: Tensor, gamma: float = 2.0, balance: float = 0.5) -> Tensor:
    """Focal loss (FL), ``balance_t (1 - p_t) ** gamma (-log p_t)``, ``(N, P), (N, P) -> ()``."""
    return _focal_family(logits, targets, gamma, 1.0, 0.0, balance)


def normalized_focal(
    logits: Tensor, targets: Tensor, gamma: float = 2.0, balance: float = 0.5
) -> Tensor:
    """Normalised focal loss (NFL, RITM): focal weights rescaled, without gradient, to sum to
    P per mask, ``(N, P), (N, P) -> ()``."""
    _check(logits, targets)
    multiplier = _gradient_normaliser(_wrong_side_probability(logits, targets), gamma)
    return _focal_family(logits, targets, gamma, multiplier, 0.0, balance)


def poly1_focal(
    logits: Tensor,
    targets: Tensor,
    gamma: float = 2.0,
    balance: float = 0.5,
    epsilon: float = 1.0,
) -> Tensor:
    """Poly-1 focal loss (PL), focal + ``epsilon (1 - p_t) ** (gamma + 1)`` (both balanced),
    ``(N, P), (N, P) -> ()``."""
    return _focal_family(logits, targets, gamma, 1.0, epsilon, balance)


def _weighted_ce(
    logits: Tensor, targets: Tensor, pos_weight: float, neg_weight: float, by_weight: bool
) -> Tensor:
    """Class-weighted BCE per mask, averaged over pixels (or over the weight sum when
    ``by_weight``), then over masks."""
    _check(logits, targets)
    weight = pos_weight * targets + neg_weight * (1.0 - targets)
    pixel = weight * F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    per_mask = pixel.sum(dim=1) / (weight.sum(dim=1) if by_weight else logits.shape[1])
    return _mean_over_masks(per_mask)


def bce(logits: Tensor, targets: Tensor) -> Tensor:
    """Binary cross-entropy, pixel mean per mask, ``(N, P), (N, P) -> ()``."""
    return _weighted_ce(logits, targets, 1.0, 1.0, by_weight=False)


def wbce(
    logits: Tensor, targets: Tensor, pos_weight: float = 3.0, neg_weight: float = 1.0
) -> Tensor:
    """Weighted BCE (WBCE): foreground pixels weighted ``pos_weight``, pixel mean per mask."""
    return _weighted_ce(logits, targets, pos_weight, neg_weight, by_weight=False)


def balanced_ce(
    logits: Tensor, targets: Tensor, pos_weight: float = 3.0, neg_weight: float = 1.0
) -> Tensor:
    """Balanced CE: the same class weights as :func:`wbce`, but a weighted *average* per mask
    (divided by the sum of the weights, not by P), so the loss scale does not depend on the
    foreground fraction. The paper gives only the weights (positive 3, negative 1)."""
    return _weighted_ce(logits, targets, pos_weight, neg_weight, by_weight=True)


def soft_iou(logits: Tensor, targets: Tensor) -> Tensor:
    """Soft IoU loss (RITM's SoftIoU): ``1 - sum(p y) / sum(max(p, y))`` per mask."""
    _check(logits, targets)
    prob = torch.sigmoid(logits)
    intersection = (prob * targets).sum(dim=1)
    union = torch.maximum(prob, targets).sum(dim=1)
    return _mean_over_masks(1.0 - intersection / (union + 1e-8))


def dice(logits: Tensor, targets: Tensor) -> Tensor:
    """Mask2Former's dice loss: ``1 - (2 sum(p y) + 1) / (sum p + sum y + 1)`` per mask."""
    _check(logits, targets)
    prob = torch.sigmoid(logits)
    numerator = 2.0 * (prob * targets).sum(dim=1) + 1.0
    denominator = prob.sum(dim=1) + targets.sum(dim=1) + 1.0
    return _mean_over_masks(1.0 - numerator / denominator)


MASK_LOSSES: dict[str, MaskLoss] = {
    "afl": adaptive_focal_loss,
    "bce": bce,
    "wbce": wbce,
    "balanced_ce": balanced_ce,
    "soft_iou": soft_iou,
    "fl": focal,
    "nfl": normalized_focal,
    "pl": poly1_focal,
}


def get_mask_loss(name: str) -> MaskLoss:
    """The mask loss registered as ``name`` (paper settings as defaults); see MASK_LOSSES."""
    try:
        return MASK_LOSSES[name]
    except KeyError:
        raise ValueError(
            f"Unknown mask loss {name!r}. Choose one of: {', '.join(sorted(MASK_LOSSES))}."
        ) from None
