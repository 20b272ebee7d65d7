"""Sine position encoding (DETR / Mask2Former ``PositionEmbeddingSine``, normalize=True)."""

from __future__ import annotations

import math

import torch


def sine_position_encoding(
    height: int,
    width: int,
    channels: int,
    device=None,
    dtype=torch.float32,
    temperature: float = 10000.0,
) -> torch.Tensor:
    """``(1, channels, H, W)`` encoding: first half y, second half x, scale 2*pi."""
    num_feats = channels // 2
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, height + 1, device=device, dtype=torch.float32)
    x = torch.arange(1, width + 1, device=device, dtype=torch.float32)
    y = y / (y[-1] + eps) * scale
    x = x / (x[-1] + eps) * scale
    dim_t = torch.arange(num_feats, device=device, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos_y = y[:, None] / dim_t  # (H, F)
    pos_x = x[:, None] / dim_t  # (W, F)
    pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
    pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
    pos = torch.cat(
        (
            pos_y[:, None, :].expand(height, width, num_feats),
            pos_x[None, :, :].expand(height, width, num_feats),
        ),
        dim=2,
    )
    return pos.permute(2, 0, 1).unsqueeze(0).to(dtype)
