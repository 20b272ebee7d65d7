"""Frozen model configurations. Only :mod:`registry` chooses the numbers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class ViTConfig:
    """Plain ViT backbone (MAE style) with windowed and global blocks (SPEC.md 1.3).

    ``window_tokens``: window side in tokens (224 / patch in the release).
    ``global_blocks``: 0-based indices of the blocks that attend globally.
    ``pretrain_img_size``: grid size of the stored absolute position embedding.
    """

    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    window_tokens: int = 14
    global_blocks: tuple[int, ...] = (5, 11)
    pretrain_img_size: int = 448


@dataclass(frozen=True)
class NeckConfig:
    """Simple feature pyramid output channels at 1/4, 1/8, 1/16, 1/32 (SPEC.md 1.4)."""

    out_dims: tuple[int, int, int, int] = (256, 512, 1024, 2048)


@dataclass(frozen=True)
class PixelDecoderConfig:
    """Multi-scale deformable-attention pixel decoder (SPEC.md 1.5)."""

    conv_dim: int = 256
    mask_dim: int = 256
    num_layers: int = 4
    num_heads: int = 8
    num_points: int = 4
    ffn_dim: int = 1024
    norm_groups: int = 32


@dataclass(frozen=True)
class DecoderConfig:
    """Click-aware masked-attention decoder (SPEC.md 1.6)."""

    hidden_dim: int = 256
    num_queries: int = 10
    num_layers: int = 9
    num_heads: int = 8
    ffn_dim: int = 2048


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build an AdaptiveClick model and feed it."""

    name: str = "vit_b"
    input_size: int = 448
    click_radius: float = 5.0
    vit: ViTConfig = field(default_factory=ViTConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    pixel_decoder: PixelDecoderConfig = field(default_factory=PixelDecoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of builtins (lists for tuples), safe for ``torch.save`` + weights_only."""

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            return value

        return plain(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        parts = {
            "vit": ViTConfig,
            "neck": NeckConfig,
            "pixel_decoder": PixelDecoderConfig,
            "decoder": DecoderConfig,
        }
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown model config keys: {sorted(unknown)}")
        for key, value in data.items():
            if key in parts:
                sub = parts[key]
                sub_known = {f.name for f in fields(sub)}
                bad = set(value) - sub_known
                if bad:
                    raise ValueError(f"Unknown keys in model config '{key}': {sorted(bad)}")
                kwargs[key] = sub(
                    **{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
                )
            else:
                kwargs[key] = value
        return cls(**kwargs)
