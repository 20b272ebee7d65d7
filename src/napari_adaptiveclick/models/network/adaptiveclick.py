"""The AdaptiveClick network: early click fusion, ViT, pixel decoder, click-aware decoder.

``forward`` is pure and trainable: tensors in, a dict of logits out; no thresholds, no
``no_grad``. Inference details (resizing, zoom-in, thresholds) live in :mod:`session`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_adaptiveclick.models.config import ModelConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AdaptiveClick(nn.Module):
    """Built from parts by :func:`napari_adaptiveclick.models.registry.build_model`.

    Inputs: ``image`` (B, 3, H, W) RGB in [0, 1] (grey repeated to 3 channels),
    ``prev_mask`` (B, 1, H, W) previous probability, ``click_maps`` (B, 2, H, W): channel 0
    positive disks, 1 negative disks. H and W must be multiples of 2 * patch size.

    Output dict: ``pred_logits`` (B, Q, 2) class logits of the last stage (index 1 = object),
    ``pred_masks`` (B, Q, H/4, W/4) mask logits of the last stage, ``aux_outputs`` the same two
    keys for each earlier stage, ``mask_logits`` (B, 1, H, W) fused logit (its sigmoid is the
    probability; SPEC.md 1.7).
    """

    def __init__(
        self,
        config: ModelConfig,
        patch_embed_coords: nn.Module,
        backbone: nn.Module,
        pixel_decoder: nn.Module,
        click_aware_decoder: nn.Module,
    ) -> None:
        super().__init__()
        self.config = config
        self.patch_embed_coords = patch_embed_coords
        self.backbone = backbone
        self.pixel_decoder = pixel_decoder
        self.click_aware_decoder = click_aware_decoder
        self.register_buffer(
            "pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )

    def _check_inputs(self, image, prev_mask, click_maps) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        b, _, h, w = image.shape
        if tuple(prev_mask.shape) != (b, 1, h, w):
            raise ValueError(f"prev_mask must be {(b, 1, h, w)}, got {tuple(prev_mask.shape)}")
        if tuple(click_maps.shape) != (b, 2, h, w):
            raise ValueError(f"click_maps must be {(b, 2, h, w)}, got {tuple(click_maps.shape)}")
        step = 2 * self.config.vit.patch_size
        if h % step or w % step:
            raise ValueError(f"image height and width must be multiples of {step}, got {h} x {w}")

    def forward(
        self, image: torch.Tensor, prev_mask: torch.Tensor, click_maps: torch.Tensor
    ) -> dict:
        self._check_inputs(image, prev_mask, click_maps)
        aux = torch.cat([prev_mask, click_maps], dim=1)
        x = (image - self.pixel_mean) / self.pixel_std
        vit_map = self.backbone(x, self.patch_embed_coords(aux))
        mask_features, multi_scale = self.pixel_decoder(vit_map)
        stages = self.click_aware_decoder(multi_scale, mask_features, click_maps[:, :1])
        class_logits, mask_logits = stages[-1]
        # sum_q sigmoid(object_q) * resize(mask_q) == resize(sum_q sigmoid(object_q) * mask_q):
        # bilinear resizing is linear, so weight at 1/4 resolution and resize once.
        weights = class_logits[..., 1].sigmoid()[..., None, None]
        fused = (weights * mask_logits).sum(1, keepdim=True)
        fused = F.interpolate(fused, size=image.shape[-2:], mode="bilinear", align_corners=True)
        return {
            "pred_logits": class_logits,
            "pred_masks": mask_logits,
            "aux_outputs": [{"pred_logits": c, "pred_masks": m} for c, m in stages[:-1]],
            "mask_logits": fused,
        }
