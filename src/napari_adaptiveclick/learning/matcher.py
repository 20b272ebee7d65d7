"""Hungarian matching of query predictions to target masks (SPEC.md section 2).

The matching cost only ranks queries and carries no gradient: queries are compared at their
own resolution (1/4 of the input) with the target area-averaged down to it, and the cost is
``cost_class * (-p_object) + cost_mask * BCE + cost_dice * dice``, with pixel-mean sigmoid
BCE and dice in their pairwise forms as Mask2Former does, whatever mask loss is trained.
AFL's per-mask statistics (gamma_a, mu) have no cheap pairwise form, and BCE + dice rank
queries the same way for the near-binary masks matching cares about. The losses of the
matched pairs are :mod:`.criterion`'s.

Provenance: DETR / Mask2Former ``HungarianMatcher``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

Stage = dict[str, Tensor]
Match = tuple[Tensor, Tensor]


def check_targets(outputs: Stage, targets: list[Tensor]) -> None:
    """Raise unless ``targets`` holds one ``(T_b, H, W)`` tensor per image of ``outputs``."""
    batch = outputs["pred_logits"].shape[0]
    if len(targets) != batch:
        raise ValueError(
            f"Got {len(targets)} target tensors for a batch of {batch} predictions; pass one "
            "(T_b, H, W) tensor per image (T_b = 0 for an image without object)."
        )
    for b, target in enumerate(targets):
        if target.ndim != 3:
            raise ValueError(
                f"targets[{b}] has shape {tuple(target.shape)}; expected (T_b, H, W) float "
                "masks in {0, 1} (use target[None] for a single (H, W) mask)."
            )


class HungarianMatcher(nn.Module):
    """One-to-one assignment of the Q queries of each image to its T_b target masks.

    Args:
        cost_class: weight of ``-p_object`` (softmax over the 2 class logits).
        cost_mask: weight of the pixel-mean sigmoid BCE between query and target mask.
        cost_dice: weight of the dice loss between query and target mask.
    """

    def __init__(self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0):
        super().__init__()
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice

    def cost_matrix(self, class_logits: Tensor, mask_logits: Tensor, target: Tensor) -> Tensor:
        """Matching cost ``(Q, T)`` for one image: ``class_logits`` ``(Q, 2)``, ``mask_logits``
        ``(Q, h, w)``, ``target`` ``(T, H, W)``."""
        # Ranking only (no gradient): compare at the prediction's resolution, with the target
        # area-averaged down to it, which is 16x cheaper than upsampling every query.
        logits = mask_logits.flatten(1).float()
        if tuple(target.shape[-2:]) != tuple(mask_logits.shape[-2:]):
            target = F.adaptive_avg_pool2d(target[None].float(), mask_logits.shape[-2:])[0]
        target = target.flatten(1).to(logits)
        pixels = logits.shape[1]
        cost_class = -class_logits.float().softmax(-1)[:, 1:2]
        # BCE(z, y) = softplus(z) - z y: linear in y, so the pairwise pixel mean is one matmul.
        cost_mask = (F.softplus(logits).sum(1, keepdim=True) - logits @ target.T) / pixels
        prob = logits.sigmoid()
        cost_dice = 1.0 - (2.0 * prob @ target.T + 1.0) / (
            prob.sum(1, keepdim=True) + target.sum(1)[None] + 1.0
        )
        return (
            self.cost_class * cost_class + self.cost_mask * cost_mask + self.cost_dice * cost_dice
        )

    @torch.no_grad()
    def forward(self, outputs: Stage, targets: list[Tensor]) -> list[Match]:
        """Match one decoder stage.

        Args:
            outputs: ``"pred_logits"`` ``(B, Q, 2)`` and ``"pred_masks"`` ``(B, Q, h, w)``.
            targets: B tensors ``(T_b, H, W)`` in {0, 1}.

        Returns:
            Per image ``(query_indices, target_indices)``, int64 tensors of length
            ``min(Q, T_b)`` on the prediction device, sorted by query index.
        """
        check_targets(outputs, targets)
        device = outputs["pred_logits"].device
        matches = []
        for class_logits, mask_logits, target in zip(
            outputs["pred_logits"], outputs["pred_masks"], targets, strict=True
        ):
            if target.shape[0] == 0:
                empty = torch.empty(0, dtype=torch.int64, device=device)
                matches.append((empty, empty))
                continue
            cost = self.cost_matrix(class_logits, mask_logits, target)
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            matches.append(
                (
                    torch.as_tensor(rows, dtype=torch.int64, device=device),
                    torch.as_tensor(cols, dtype=torch.int64, device=device),
                )
            )
        return matches
