"""Simple feature pyramid from the single 1/16 ViT map (SPEC.md 1.4).

Provenance: SimpleClick's ``SimpleFPN`` (after ViTDet's simple feature pyramid). Layer
indices inside each ``nn.Sequential`` match the released checkpoint's key names.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(1, channels)


class SimpleFeaturePyramid(nn.Module):
    """``forward((B, D, h, w)) -> [1/4, 1/8, 1/16, 1/32]`` maps with ``out_dims`` channels."""

    def __init__(self, in_dim: int, out_dims: tuple[int, int, int, int]) -> None:
        super().__init__()
        c4 = max(out_dims[0] * 2, in_dim // 2)
        c8 = max(out_dims[1], in_dim // 2)
        c32 = max(out_dims[3], in_dim * 2)
        self.down_4 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, c4, 2, stride=2),
            _norm(c4),
            nn.GELU(),
            nn.ConvTranspose2d(c4, c4 // 2, 2, stride=2),
            _norm(c4 // 2),
            nn.Conv2d(c4 // 2, out_dims[0], 1),
            _norm(out_dims[0]),
            nn.GELU(),
        )
        self.down_8 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, c8, 2, stride=2),
            _norm(c8),
            nn.Conv2d(c8, out_dims[1], 1),
            _norm(out_dims[1]),
            nn.GELU(),
        )
        self.down_16 = nn.Sequential(
            nn.Conv2d(in_dim, out_dims[2], 1), _norm(out_dims[2]), nn.GELU()
        )
        self.down_32 = nn.Sequential(
            nn.Conv2d(in_dim, c32, 2, stride=2),
            _norm(c32),
            nn.Conv2d(c32, out_dims[3], 1),
            _norm(out_dims[3]),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.down_4(x), self.down_8(x), self.down_16(x), self.down_32(x)]
