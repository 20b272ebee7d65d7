"""Patch embedding shared by the image and the click/previous-mask maps (SPEC.md 1.2)."""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """Conv2d with kernel = stride = patch size; ``(B, C, H, W) -> (B, H/p * W/p, D)``.

    The click maps get their own instance (``patch_embed_coords`` in the release), whose
    tokens are added to the image tokens (SimpleClick's early fusion).
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)
