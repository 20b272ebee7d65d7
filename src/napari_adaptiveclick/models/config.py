"""Frozen model configurations. Only :mod:`registry` chooses the numbers."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
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
    # How a box prompt is fed (issue #16): the previous-mask value inside the box before any
    # mask exists. Set by training with boxes, or chosen for the weights on training data
    # (``training.export --box-prior``); fine-tuning without boxes keeps the starting
    # weights' value. 0 feeds only the box's seed click.
    box_prior: float = 0.0
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

        out = plain(asdict(self))
        if not out["box_prior"]:  # weights without a box prior load in older versions too
            del out["box_prior"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        parts = {
            "vit": ViTConfig,
            "neck": NeckConfig,
            "pixel_decoder": PixelDecoderConfig,
            "decoder": DecoderConfig,
        }
        if not isinstance(data, dict):
            raise ValueError(f"A model config must be a dict, got {type(data).__name__}.")
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown model config keys: {sorted(unknown)}")
        for key, value in data.items():
            if key in parts:
                sub = parts[key]
                if not isinstance(value, dict):
                    raise ValueError(f"Model config '{key}' must be a dict, got {value!r}.")
                sub_known = {f.name for f in fields(sub)}
                bad = set(value) - sub_known
                if bad:
                    raise ValueError(f"Unknown keys in model config '{key}': {sorted(bad)}")
                kwargs[key] = sub(
                    **{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
                )
            else:
                kwargs[key] = value
        config = cls(**kwargs)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ``ValueError`` for a field of the wrong type, a size out of range, or an
        architecture too large to build (checked before any memory is allocated)."""
        _check_types(self)
        for part in (self.vit, self.neck, self.pixel_decoder, self.decoder):
            _check_types(part)
        v = self.vit
        if not 32 <= self.input_size <= 4096 or not 0 < self.click_radius <= 256:
            raise ValueError(
                f"input_size must be 32..4096 and click_radius 0..256, got {self.input_size} "
                f"and {self.click_radius}."
            )
        if not 0.0 <= self.box_prior < 0.5:
            raise ValueError(
                f"box_prior must be in [0, 0.5) (below the mask threshold), got {self.box_prior}."
            )
        if not all(0 <= b < v.depth for b in v.global_blocks):
            raise ValueError(f"global_blocks {v.global_blocks} must index blocks 0..{v.depth - 1}.")
        # A ViT block holds about 12 d^2 weights: refuse what could not be built in memory
        # (the released ViT-H has 0.63 G of them).
        backbone = 12 * v.depth * v.embed_dim**2
        if backbone > MAX_BACKBONE_PARAMETERS:
            raise ValueError(
                f"The config describes a {backbone / 1e9:.1f} G-parameter backbone (depth "
                f"{v.depth}, width {v.embed_dim}); at most {MAX_BACKBONE_PARAMETERS / 1e9:.0f} G "
                "are accepted."
            )


MAX_BACKBONE_PARAMETERS = 2_000_000_000
_LIMIT = 16384  # no width, depth, head count or size of any config is larger


def _check_types(part: Any) -> None:
    """Every field has the type of its default (ints where floats are expected too) and every
    whole number lies in 0..``_LIMIT`` (counts and sizes are positive, except indices)."""
    for f in fields(part):
        value, default = getattr(part, f.name), f.default
        if default is MISSING:
            continue
        expected = type(default)
        if isinstance(default, tuple):
            ok = isinstance(value, tuple) and all(
                isinstance(x, int) and not isinstance(x, bool) for x in value
            )
            numbers = value if ok else ()
        elif expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            numbers = ()
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
            numbers = (value,) if ok else ()
        else:
            ok = isinstance(value, expected)
            numbers = ()
        if not ok:
            raise ValueError(
                f"Model config field {type(part).__name__}.{f.name} must be "
                f"{expected.__name__}, got {type(value).__name__} {value!r}."
            )
        low = 0 if isinstance(default, tuple) else 1
        if any(not low <= x <= _LIMIT for x in numbers):
            raise ValueError(
                f"Model config field {type(part).__name__}.{f.name} = {value!r} is out of "
                f"range {low}..{_LIMIT}."
            )
