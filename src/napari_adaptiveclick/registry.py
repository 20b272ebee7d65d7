"""Named model configurations and the model builder (the one place hyperparameters live)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .config import DecoderConfig, ModelConfig, NeckConfig, PixelDecoderConfig, ViTConfig

if TYPE_CHECKING:  # pragma: no cover
    from .model.adaptiveclick import AdaptiveClick

CONFIGS: dict[str, ModelConfig] = {
    # The released AdaptiveClick ViT-B/448 (SPEC.md 1).
    "vit_b": ModelConfig(name="vit_b"),
    # The released ViT-H/448: patch 14, global blocks 8/16/24/32 (SimpleClick's huge neck).
    "vit_h": ModelConfig(
        name="vit_h",
        vit=ViTConfig(
            patch_size=14,
            embed_dim=1280,
            depth=32,
            num_heads=16,
            window_tokens=16,
            global_blocks=(7, 15, 23, 31),
            pretrain_img_size=448,
        ),
        neck=NeckConfig(out_dims=(240, 480, 960, 1920)),
    ),
    # CPU default: same architecture, ViT-Ti width, 256 px input (global attention at that size),
    # slimmer pyramid and decoders. Sizes chosen from benchmarks/bench_click.py (BENCHMARKS.md).
    "tiny": ModelConfig(
        name="tiny",
        input_size=256,
        vit=ViTConfig(
            patch_size=16,
            embed_dim=192,
            depth=8,
            num_heads=3,
            window_tokens=14,
            global_blocks=(3, 7),
            pretrain_img_size=256,
        ),
        neck=NeckConfig(out_dims=(64, 128, 192, 256)),
        pixel_decoder=PixelDecoderConfig(
            conv_dim=128, mask_dim=128, num_layers=2, num_heads=4, ffn_dim=512
        ),
        decoder=DecoderConfig(
            hidden_dim=128, num_queries=10, num_layers=6, num_heads=4, ffn_dim=512
        ),
    ),
}


def get_config(name: str) -> ModelConfig:
    """The registered :class:`ModelConfig` called ``name``."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"Unknown model name {name!r}; choose one of {sorted(CONFIGS)}.") from None


def build_from_config(config: ModelConfig) -> AdaptiveClick:
    """Assemble an :class:`AdaptiveClick` with random initialisation from ``config``."""
    from .model.adaptiveclick import AdaptiveClick
    from .model.click_decoder import ClickAwareDecoder
    from .model.feature_pyramid import SimpleFeaturePyramid
    from .model.patch_embed import PatchEmbed
    from .model.pixel_decoder import PixelDecoder
    from .model.vit import VisionTransformer

    if (
        config.pixel_decoder.conv_dim != config.decoder.hidden_dim
        or config.pixel_decoder.mask_dim != config.decoder.hidden_dim
    ):
        raise ValueError("pixel_decoder.conv_dim and mask_dim must equal decoder.hidden_dim")
    neck = SimpleFeaturePyramid(config.vit.embed_dim, config.neck.out_dims)
    return AdaptiveClick(
        config,
        patch_embed_coords=PatchEmbed(3, config.vit.embed_dim, config.vit.patch_size),
        backbone=VisionTransformer(config.vit),
        pixel_decoder=PixelDecoder(neck, config.neck.out_dims, config.pixel_decoder),
        click_aware_decoder=ClickAwareDecoder(config.decoder),
    )


def build_model(name: str | None = "tiny", checkpoint: str | Path | None = None) -> AdaptiveClick:
    """Build a registered model, optionally loading ``checkpoint``.

    ``checkpoint`` may be this project's checkpoint (which carries its own config: ``name`` may
    then be None) or a released AdaptiveClick ``.pth`` (state dict plus a pickled config,
    loaded without unpickling code). ``"default"`` means the shipped default weights.
    """
    from .weights import load_checkpoint

    if checkpoint is None:
        return build_from_config(get_config(name or "tiny"))
    return load_checkpoint(checkpoint, expected_name=name)
