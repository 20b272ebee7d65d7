"""Pixel decoder (paper: PMMD): deformable-attention encoder over 1/8..1/32 plus one FPN step.

Provenance: Mask2Former ``MSDeformAttnPixelDecoder`` (Cheng et al. 2022) as configured in the
AdaptiveClick release (4 encoder layers, post-norm). The simple feature pyramid (``neck``)
lives inside this module, as in the released checkpoint's key names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_adaptiveclick.models.config import PixelDecoderConfig
from napari_adaptiveclick.models.network.ms_deform_attn import MSDeformAttn
from napari_adaptiveclick.models.network.position import sine_position_encoding


class DeformableEncoderLayer(nn.Module):
    """Self deformable attention + FFN, each followed by residual add and LayerNorm."""

    def __init__(self, dim: int, ffn_dim: int, levels: int, heads: int, points: int) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(dim, levels, heads, points)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, src, pos, reference_points, spatial_shapes):
        src = self.norm1(src + self.self_attn(src + pos, reference_points, src, spatial_shapes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DeformableEncoder(nn.Module):
    """Stack of :class:`DeformableEncoderLayer` with a learned level embedding."""

    def __init__(self, dim: int, cfg: PixelDecoderConfig, levels: int) -> None:
        super().__init__()
        self.level_embed = nn.Parameter(torch.empty(levels, dim))
        nn.init.normal_(self.level_embed)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(
            DeformableEncoderLayer(dim, cfg.ffn_dim, levels, cfg.num_heads, cfg.num_points)
            for _ in range(cfg.num_layers)
        )

    @staticmethod
    def reference_points(spatial_shapes: list[tuple[int, int]], device) -> torch.Tensor:
        """Pixel centres of every level, normalised to [0, 1], as (1, S, L, 2) (x, y)."""
        refs = []
        for h, w in spatial_shapes:
            ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
            xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
            ref_y, ref_x = torch.meshgrid(ys, xs, indexing="ij")
            refs.append(torch.stack((ref_x.reshape(-1), ref_y.reshape(-1)), -1))
        ref = torch.cat(refs, 0)[None, :, None, :]
        return ref.expand(-1, -1, len(spatial_shapes), -1)

    def forward(self, srcs: list[torch.Tensor]) -> list[torch.Tensor]:
        """srcs: maps (B, C, h_l, w_l), coarsest first -> encoded maps, same shapes."""
        shapes = [tuple(s.shape[-2:]) for s in srcs]
        flat = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], 1)
        pos = torch.cat(
            [
                sine_position_encoding(h, w, s.shape[1], s.device, s.dtype)
                .flatten(2)
                .transpose(1, 2)
                + self.level_embed[lvl].view(1, 1, -1)
                for lvl, (s, (h, w)) in enumerate(zip(srcs, shapes, strict=True))
            ],
            1,
        )
        ref = self.reference_points(shapes, flat.device).to(flat.dtype)
        for layer in self.encoder.layers:
            flat = layer(flat, pos, ref, shapes)
        outs = flat.split([h * w for h, w in shapes], dim=1)
        return [
            o.transpose(1, 2).reshape(o.shape[0], -1, h, w)
            for o, (h, w) in zip(outs, shapes, strict=True)
        ]


def _conv_gn(in_ch: int, out_ch: int, kernel: int, groups: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2),
        nn.GroupNorm(groups, out_ch),
    ]
    if relu:
        layers.append(nn.ReLU())
    nn.init.xavier_uniform_(layers[0].weight)
    nn.init.zeros_(layers[0].bias)
    return nn.Sequential(*layers)


class PixelDecoder(nn.Module):
    """``forward(vit_map (B, D, h, w)) -> (mask_features (B, mask_dim, H/4, W/4),
    [1/32, 1/16, 1/8] maps with conv_dim channels)``."""

    def __init__(
        self, neck: nn.Module, in_dims: tuple[int, int, int, int], cfg: PixelDecoderConfig
    ) -> None:
        super().__init__()
        self.neck = neck
        dim, groups = cfg.conv_dim, cfg.norm_groups
        # input_proj.0 takes the 1/32 map, .1 the 1/16, .2 the 1/8 (coarsest first).
        self.input_proj = nn.ModuleList(
            _conv_gn(ch, dim, 1, groups, relu=False) for ch in (in_dims[3], in_dims[2], in_dims[1])
        )
        self.transformer = DeformableEncoder(dim, cfg, levels=3)
        self.lateral_convs = nn.ModuleList([_conv_gn(in_dims[0], dim, 1, groups, relu=True)])
        self.output_convs = nn.ModuleList([_conv_gn(dim, dim, 3, groups, relu=True)])
        self.mask_features = nn.Conv2d(dim, cfg.mask_dim, 1)
        nn.init.xavier_uniform_(self.mask_features.weight)
        nn.init.zeros_(self.mask_features.bias)

    def forward(self, vit_map: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f4, f8, f16, f32 = self.neck(vit_map)
        srcs = [proj(f) for proj, f in zip(self.input_proj, (f32, f16, f8), strict=True)]
        encoded = self.transformer(srcs)
        lateral = self.lateral_convs[0](f4)
        up = F.interpolate(
            encoded[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False
        )
        fpn = self.output_convs[0](lateral + up)
        return self.mask_features(fpn), encoded
