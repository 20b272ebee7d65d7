"""Click-aware mask-adaptive transformer decoder (paper: CAMD with CAAM).

Provenance: Mask2Former ``MultiScaleMaskedTransformerDecoder`` (masked attention, post-norm
layers, prediction heads before layer 0 and after every layer) with AdaptiveClick's
click-aware attention: for queries currently classified as object, positions covered by
the (dilated) positive click map are never blocked (SPEC.md 1.6).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from napari_adaptiveclick.models.config import DecoderConfig
from napari_adaptiveclick.models.network.position import sine_position_encoding


class CrossAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt, memory, attn_mask, pos, query_pos):
        out = self.multihead_attn(
            tgt + query_pos, memory + pos, memory, attn_mask=attn_mask, need_weights=False
        )[0]
        return self.norm(tgt + out)


class SelfAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt, query_pos):
        q = tgt + query_pos
        return self.norm(tgt + self.self_attn(q, q, tgt, need_weights=False)[0])


class FFNLayer(nn.Module):
    def __init__(self, dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt):
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MLP(nn.Module):
    """``layers`` Linear layers with ReLU between them (Mask2Former's mask embedding)."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


def click_attention_maps(
    pos_disks: torch.Tensor, input_width: int, sizes: list[tuple[int, int]]
) -> list[torch.Tensor]:
    """Positive click map per decoder level, ``(B, h*w)`` each (detached).

    Dilated by floor(log2(input_w / level_w)) rounds of 3x3 stride-2 max pooling (padding 1),
    then resized bilinearly to the level (SPEC.md 1.6, CAAM).
    """
    maps = []
    with torch.no_grad():
        for h, w in sizes:
            m = pos_disks
            for _ in range(int(math.floor(math.log2(input_width / w)))):
                m = F.max_pool2d(m, kernel_size=3, stride=2, padding=1)
            m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
            maps.append(m.flatten(1))
    return maps


class ClickAwareDecoder(nn.Module):
    """``forward(features [1/32, 1/16, 1/8] (B, C, h, w), mask_features (B, C, H/4, W/4),
    pos_disks (B, 1, H, W)) -> list of (class_logits (B, Q, 2), mask_logits (B, Q, H/4, W/4))``,
    one per stage (1 + num_layers)."""

    def __init__(self, cfg: DecoderConfig, levels: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        dim, heads = cfg.hidden_dim, cfg.num_heads
        self.levels = levels
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(dim, heads) for _ in range(cfg.num_layers)
        )
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(dim, heads) for _ in range(cfg.num_layers)
        )
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(dim, cfg.ffn_dim) for _ in range(cfg.num_layers)
        )
        self.decoder_norm = nn.LayerNorm(dim)
        self.query_feat = nn.Embedding(cfg.num_queries, dim)
        self.query_embed = nn.Embedding(cfg.num_queries, dim)
        self.level_embed = nn.Embedding(levels, dim)
        self.class_embed = nn.Linear(dim, 2)
        self.mask_embed = MLP(dim, 3)
        for layer in self.modules():
            if isinstance(layer, nn.Linear | nn.MultiheadAttention):
                for p in layer.parameters():
                    if p.dim() > 1:
                        nn.init.xavier_uniform_(p)

    def _heads(self, queries, mask_features, size, click_map):
        """Prediction heads and the attention mask for the next layer (True = blocked)."""
        decoded = self.decoder_norm(queries)
        class_logits = self.class_embed(decoded)
        mask_logits = torch.einsum("bqc,bchw->bqhw", self.mask_embed(decoded), mask_features)
        with torch.no_grad():
            attn = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
            blocked = attn.sigmoid().flatten(2) < 0.5  # (B, Q, h*w)
            is_object = (class_logits.argmax(-1) == 1)[..., None]  # (B, Q, 1)
            blocked = blocked & ~(is_object & (click_map[:, None, :] >= 0.5))
            blocked[blocked.all(-1)] = False
            blocked = blocked.repeat_interleave(self.cfg.num_heads, dim=0)
        return class_logits, mask_logits, blocked

    def forward(self, features, mask_features, pos_disks):
        sizes = [tuple(f.shape[-2:]) for f in features]
        srcs, pos = [], []
        for lvl, f in enumerate(features):
            pe = sine_position_encoding(*sizes[lvl], f.shape[1], f.device, f.dtype)
            pos.append(pe.flatten(2).transpose(1, 2))
            srcs.append(f.flatten(2).transpose(1, 2) + self.level_embed.weight[lvl][None, None, :])
        click_maps = click_attention_maps(pos_disks, pos_disks.shape[-1], sizes)
        b = mask_features.shape[0]
        query_pos = self.query_embed.weight[None].expand(b, -1, -1)
        queries = self.query_feat.weight[None].expand(b, -1, -1)
        cls, msk, blocked = self._heads(queries, mask_features, sizes[0], click_maps[0])
        stages = [(cls, msk)]
        for i in range(self.cfg.num_layers):
            lvl = i % self.levels
            queries = self.transformer_cross_attention_layers[i](
                queries, srcs[lvl], blocked, pos[lvl], query_pos
            )
            queries = self.transformer_self_attention_layers[i](queries, query_pos)
            queries = self.transformer_ffn_layers[i](queries)
            nxt = (i + 1) % self.levels
            cls, msk, blocked = self._heads(queries, mask_features, sizes[nxt], click_maps[nxt])
            stages.append((cls, msk))
        return stages
