"""Plain ViT backbone with windowed and global attention blocks (SPEC.md 1.3).

Provenance: SimpleClick's ``VisionTransformer.forward_backbone`` (windowed attention after
ViTDet, Li et al. 2022). Blocks are timm's ``Block`` so key names match MAE / timm weights.
Windowing is done outside the block: LayerNorm and MLP act per token, so running a whole
block on window-partitioned tokens equals windowed attention.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from napari_adaptiveclick.models.config import ViTConfig
from napari_adaptiveclick.models.network.patch_embed import PatchEmbed


def window_partition(x: torch.Tensor, grid: tuple[int, int], window_tokens: int):
    """Split tokens ``(B, h*w, D)`` into windows ``(B * n_windows, side*side, D)``.

    The number of windows per axis is ``max(1, grid // window_tokens)``; the grid is zero
    padded to a multiple of it. Returns the windows and what :func:`window_unpartition` needs.
    """
    b, _, d = x.shape
    h, w = grid
    nh, nw = max(1, h // window_tokens), max(1, w // window_tokens)
    sh, sw = math.ceil(h / nh), math.ceil(w / nw)
    x = x.view(b, h, w, d)
    if nh * sh != h or nw * sw != w:
        x = F.pad(x, (0, 0, 0, nw * sw - w, 0, nh * sh - h))
    x = x.view(b, nh, sh, nw, sw, d).permute(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, sh * sw, d)
    return x, (b, h, w, nh, nw, sh, sw)


def window_unpartition(x: torch.Tensor, layout: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * n_windows, side*side, D) -> (B, h*w, D)``."""
    b, h, w, nh, nw, sh, sw = layout
    d = x.shape[-1]
    x = x.view(b, nh, nw, sh, sw, d).permute(0, 1, 3, 2, 4, 5).reshape(b, nh * sh, nw * sw, d)
    return x[:, :h, :w].reshape(b, h * w, d)


class VisionTransformer(nn.Module):
    """``forward(image (B,3,H,W) normalised, extra_tokens (B,N,D)) -> (B, D, H/p, W/p)``.

    ``cls_token`` keeps the released position-embedding layout (1 + grid^2 entries) but is not
    used at run time.
    """

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        grid = cfg.pretrain_img_size // cfg.patch_size
        self.pretrain_grid = (grid, grid)
        self.patch_embed = PatchEmbed(3, cfg.embed_dim, cfg.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, cfg.embed_dim))
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.ModuleList(
            Block(
                cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, norm_layer=norm
            )
            for _ in range(cfg.depth)
        )
        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(_init_weights)

    def position_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """Absolute position embedding without the cls entry, resampled to ``grid``: (1, N, D)."""
        pos = self.pos_embed
        if grid != self.pretrain_grid:
            pos = resample_abs_pos_embed(
                pos, list(grid), list(self.pretrain_grid), num_prefix_tokens=1
            )
        return pos[:, 1:]

    def forward(
        self, image: torch.Tensor, extra_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        p = self.cfg.patch_size
        grid = (image.shape[-2] // p, image.shape[-1] // p)
        x = self.patch_embed(image)
        if extra_tokens is not None:
            x = x + extra_tokens
        x = x + self.position_embedding(grid)
        global_blocks = set(self.cfg.global_blocks)
        for index, block in enumerate(self.blocks):
            if index in global_blocks:
                x = block(x)
            else:
                windows, layout = window_partition(x, grid, self.cfg.window_tokens)
                x = window_unpartition(block(windows), layout)
        return x.transpose(1, 2).reshape(x.shape[0], -1, *grid)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
