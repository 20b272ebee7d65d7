"""The set criterion: the deep-supervised loss of the AdaptiveClick decoder (SPEC.md section 2).

Choices (documented here once):

- Resolution: query masks are predicted at 1/4 of the input. For the losses, the matched
  queries are upsampled bilinearly (``align_corners=True``, as the model's query fusion does) to
  the target resolution and evaluated densely there: loss targets are never downsampled (the
  release's soft downsampled targets created spurious background targets). Which query goes
  with which target is :class:`~.matcher.HungarianMatcher`'s choice.
- Class loss: cross-entropy over {0 = no object, 1 = object} with class weights
  ``[no_object_weight, 1.0]`` (the intended weighting; the release inverted it).

Provenance: DETR / Mask2Former ``SetCriterion``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from napari_adaptiveclick.learning.losses import dice, get_mask_loss
from napari_adaptiveclick.learning.matcher import HungarianMatcher, Match, check_targets


def upsample_masks(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of mask logits ``(n, h, w) -> (n, H, W)`` (align_corners=True)."""
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return F.interpolate(masks[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]


class SetCriterion(nn.Module):
    """Deep-supervised loss of the AdaptiveClick decoder (paper Eq. 21-22, SPEC.md section 2).

    For every stage (the last one and each of ``outputs["aux_outputs"]``), queries are matched
    to the targets; the stage adds ``weight_class * CE + weight_mask * mask_loss +
    weight_dice * dice`` (mask terms over the matched pairs, averaged over them). With
    ``fused_weight > 0`` it also adds ``fused_weight * (mask_loss + dice)`` of the fused
    ``"mask_logits"`` against the union of each image's targets.

    Args:
        mask_loss: a name from :data:`~napari_adaptiveclick.learning.losses.MASK_LOSSES`
            ("afl" in the paper).
        weight_class, weight_mask, weight_dice: term weights (2, 5, 5 in the paper).
        no_object_weight: CE class weight of "no object" (the object class weighs 1).
        fused_weight: weight of the loss on the fused mask (0 = off, as in the paper).
        matcher: the matcher (default :class:`HungarianMatcher` with the paper's costs).
    """

    def __init__(
        self,
        mask_loss: str = "afl",
        weight_class: float = 2.0,
        weight_mask: float = 5.0,
        weight_dice: float = 5.0,
        no_object_weight: float = 0.1,
        fused_weight: float = 0.0,
        matcher: HungarianMatcher | None = None,
    ):
        super().__init__()
        self.mask_loss_name = mask_loss
        self.mask_loss = get_mask_loss(mask_loss)
        self.weight_class = weight_class
        self.weight_mask = weight_mask
        self.weight_dice = weight_dice
        self.no_object_weight = no_object_weight
        self.fused_weight = fused_weight
        self.matcher = matcher if matcher is not None else HungarianMatcher()

    def extra_repr(self) -> str:
        return (
            f"mask_loss={self.mask_loss_name!r}, weight_class={self.weight_class}, "
            f"weight_mask={self.weight_mask}, weight_dice={self.weight_dice}, "
            f"no_object_weight={self.no_object_weight}, fused_weight={self.fused_weight}"
        )

    def _class_loss(self, class_logits: Tensor, matches: list[Match]) -> Tensor:
        """Weighted CE of ``(B, Q, 2)`` logits; matched queries are "object" (1)."""
        labels = torch.zeros(class_logits.shape[:2], dtype=torch.int64, device=class_logits.device)
        for b, (queries, _) in enumerate(matches):
            labels[b, queries] = 1
        weight = torch.tensor(
            [self.no_object_weight, 1.0], dtype=torch.float32, device=class_logits.device
        )
        return F.cross_entropy(class_logits.float().transpose(1, 2), labels, weight=weight)

    def _mask_losses(
        self, mask_logits: Tensor, targets: list[Tensor], matches: list[Match]
    ) -> tuple[Tensor, Tensor]:
        """(mask loss, dice) over matched pairs, each mean over pairs; zeros if none."""
        pairs = [
            (
                upsample_masks(mask_logits[b, queries], tuple(targets[b].shape[-2:])),
                targets[b][t.to(targets[b].device)],
            )
            for b, (queries, t) in enumerate(matches)
            if len(queries) > 0
        ]
        if not pairs:
            zero = mask_logits.new_zeros((), dtype=torch.float32)
            return zero, zero
        logits = torch.cat([p.flatten(1) for p, _ in pairs]).float()
        target = torch.cat([t.flatten(1) for _, t in pairs]).to(logits)
        return self.mask_loss(logits, target), dice(logits, target)

    def _fused_losses(self, fused_logits: Tensor, targets: list[Tensor]) -> tuple[Tensor, Tensor]:
        """(mask loss, dice) of ``(B, 1, H, W)`` fused logits against the target unions."""
        size = tuple(fused_logits.shape[-2:])
        for b, target in enumerate(targets):
            if tuple(target.shape[-2:]) != size:
                raise ValueError(
                    f"targets[{b}] is {tuple(target.shape[-2:])} but the fused mask_logits are "
                    f"{size}; targets must be at the input resolution."
                )
        union = torch.stack([t.amax(0) if len(t) else t.new_zeros(size) for t in targets])
        logits = fused_logits.flatten(1).float()
        union = union.flatten(1).to(logits)
        return self.mask_loss(logits, union), dice(logits, union)

    def forward(self, outputs: dict, targets: list[Tensor]) -> dict[str, Tensor]:
        """Loss terms for a model output.

        Args:
            outputs: the model's dict: ``"pred_logits"`` ``(B, Q, 2)``, ``"pred_masks"``
                ``(B, Q, h, w)``, ``"aux_outputs"`` (list of such dicts, any length),
                ``"mask_logits"`` ``(B, 1, H, W)`` (used only when ``fused_weight > 0``).
            targets: B float tensors ``(T_b, H, W)`` in {0, 1} at input resolution.

        Returns:
            Unweighted terms ``loss_class``, ``loss_mask``, ``loss_dice`` for the last stage,
            ``loss_class_aux{i}`` etc. for ``aux_outputs[i]``, ``loss_fused_mask`` and
            ``loss_fused_dice`` when ``fused_weight > 0``, and the weighted total ``"loss"``.
        """
        check_targets(outputs, targets)
        stages = [("", outputs)] + [
            (f"_aux{i}", stage) for i, stage in enumerate(outputs.get("aux_outputs", []))
        ]
        terms: dict[str, Tensor] = {}
        total = outputs["pred_logits"].new_zeros((), dtype=torch.float32)
        for suffix, stage in stages:
            matches = self.matcher(stage, targets)
            loss_class = self._class_loss(stage["pred_logits"], matches)
            loss_mask, loss_dice = self._mask_losses(stage["pred_masks"], targets, matches)
            terms[f"loss_class{suffix}"] = loss_class
            terms[f"loss_mask{suffix}"] = loss_mask
            terms[f"loss_dice{suffix}"] = loss_dice
            total = (
                total
                + self.weight_class * loss_class
                + self.weight_mask * loss_mask
                + self.weight_dice * loss_dice
            )
        if self.fused_weight > 0:
            fused_mask, fused_dice = self._fused_losses(outputs["mask_logits"], targets)
            terms["loss_fused_mask"] = fused_mask
            terms["loss_fused_dice"] = fused_dice
            total = total + self.fused_weight * (fused_mask + fused_dice)
        terms["loss"] = total
        return terms
