"""Multi-scale deformable attention in pure PyTorch (``grid_sample``, align_corners=False).

Provenance: Deformable DETR (Zhu et al. 2021) ``MSDeformAttn`` and its
``ms_deform_attn_core_pytorch``, as used by Mask2Former's pixel decoder. No compiled op.
:func:`ms_deform_attn_core` gives the same values as that formulation
(:func:`ms_deform_attn_reference`, kept for the tests and ``benchmarks/bench_deform_attn.py``)
in less time on CPUs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def ms_deform_attn_core(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """value (N, S, M, Dh); sampling_locations (N, Lq, M, L, P, 2) in [0, 1] (x, y);
    attention_weights (N, Lq, M, L, P) -> (N, Lq, M * Dh)."""
    n, _, m, dh = value.shape
    _, lq, _, levels, points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    # Contiguous (L, N*M, Lq, P, 2) grids and (N*M, Dh, h, w) values: on CPUs grid_sample is
    # 2-4x slower on strided views (BENCHMARKS.md, "Pixel decoder").
    grids = (2 * sampling_locations - 1).permute(3, 0, 2, 1, 4, 5)
    grids = grids.reshape(levels, n * m, lq, points, 2).contiguous()
    weights = attention_weights.permute(3, 0, 2, 1, 4).reshape(levels, n * m, 1, lq, points)
    out = None
    for level, (h, w) in enumerate(spatial_shapes):
        v = values[level].permute(0, 2, 3, 1).reshape(n * m, dh, h, w).contiguous()
        sampled = F.grid_sample(
            v, grids[level], mode="bilinear", padding_mode="zeros", align_corners=False
        )
        # The weighted sum over the points as a product and a sum: an einsum here becomes a
        # permuted copy and one tiny matrix product per query on CPUs.
        term = (sampled * weights[level]).sum(-1)
        out = term if out is None else out + term
    return out.reshape(n, m * dh, lq).transpose(1, 2).contiguous()


def ms_deform_attn_reference(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """:func:`ms_deform_attn_core` as Deformable DETR's ``ms_deform_attn_core_pytorch`` writes
    it (strided views into ``grid_sample``, the levels' samples stacked, then weighted)."""
    n, _, m, dh = value.shape
    _, lq, _, levels, points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (h, w) in enumerate(spatial_shapes):
        v = values[level].flatten(2).transpose(1, 2).reshape(n * m, dh, h, w)
        g = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        )
    weights = attention_weights.transpose(1, 2).reshape(n * m, 1, lq, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)
    return out.view(n, m * dh, lq).transpose(1, 2).contiguous()


class MSDeformAttn(nn.Module):
    """Deformable attention over ``levels`` feature maps with ``points`` samples per head."""

    def __init__(self, dim: int, levels: int, heads: int, points: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.levels, self.heads, self.points = levels, heads, points
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.heads, dtype=torch.float32) * (2.0 * math.pi / self.heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.heads, 1, 1, 2)
        grid = grid.repeat(1, self.levels, self.points, 1)
        for i in range(self.points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        for layer in (self.attention_weights,):
            nn.init.constant_(layer.weight, 0.0)
            nn.init.constant_(layer.bias, 0.0)
        for layer in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.constant_(layer.bias, 0.0)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value_input: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """query (N, Lq, C); reference_points (N, Lq, L, 2) in [0, 1] (x, y);
        value_input (N, S, C) -> (N, Lq, C)."""
        n, lq, c = query.shape
        value = self.value_proj(value_input).view(
            n, value_input.shape[1], self.heads, c // self.heads
        )
        offsets = self.sampling_offsets(query).view(n, lq, self.heads, self.levels, self.points, 2)
        weights = self.attention_weights(query).view(n, lq, self.heads, self.levels * self.points)
        weights = weights.softmax(-1).view(n, lq, self.heads, self.levels, self.points)
        normalizer = torch.tensor(
            [[w, h] for h, w in spatial_shapes], dtype=query.dtype, device=query.device
        )
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / normalizer[None, None, None, :, None, :]
        )
        return self.output_proj(ms_deform_attn_core(value, spatial_shapes, locations, weights))
