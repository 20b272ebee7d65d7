"""The registry: a model's identity (the one place hyperparameters live).

For every name: its :class:`ModelConfig`, its family (``"release"``: the authors' released
architectures, loaded from their ``.pth``; ``"project"``: this project's CPU models) and
whether trained weights for it are installed with the package. The widget, the command
lines and the trainer list models from here (:func:`model_names`, :data:`MODEL_CHOICES`).
Checkpoint files are read by :mod:`.checkpoint`; the models are built here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_adaptiveclick.models.checkpoint import (
    SHIPPED_MODELS,
    default_checkpoint,
    read_model_weights,
    release_width,
    shipped_weights_installed,
)
from napari_adaptiveclick.models.config import (
    DecoderConfig,
    ModelConfig,
    NeckConfig,
    PixelDecoderConfig,
    ViTConfig,
)
from napari_adaptiveclick.models.errors import CheckpointError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from napari_adaptiveclick.models.network.adaptiveclick import AdaptiveClick

DEFAULT_MODEL = "default"  # the shipped trained weights (of DEFAULT_ARCHITECTURE)
DEFAULT_MRI_MODEL = "default-mri"  # the shipped MRI specialist (same architecture)
# Image formats of medical scanners: their images get the MRI weights by default.
MEDICAL_FORMATS = frozenset({".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".dcm"})
DEFAULT_ARCHITECTURE = "tiny"

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


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of one model name."""

    name: str
    config: ModelConfig
    family: str  # "release" (the authors' architectures) or "project" (this project's)

    @property
    def weights_installed(self) -> bool:
        """True when trained weights for this architecture ship with the package."""
        return self.name == DEFAULT_ARCHITECTURE and default_checkpoint() is not None


MODELS: dict[str, ModelEntry] = {
    name: ModelEntry(name, config, "project" if name == DEFAULT_ARCHITECTURE else "release")
    for name, config in CONFIGS.items()
}
# What a user may pick: the shipped weights first, then every registered architecture.
MODEL_CHOICES: tuple[str, ...] = (*SHIPPED_MODELS, *MODELS)


def default_for_image(path: str | Path | None) -> str:
    """The shipped weights for an image read from ``path``: the MRI specialist for the
    formats of medical scanners (NIfTI, MetaImage, NRRD, DICOM) when it is installed, else
    the default weights (EM, and anything the file type does not tell)."""
    name = Path(path).name.lower() if path else ""
    medical = any(name.endswith(ext) for ext in MEDICAL_FORMATS)
    if medical and shipped_weights_installed(DEFAULT_MRI_MODEL):
        return DEFAULT_MRI_MODEL
    return DEFAULT_MODEL


RELEASE_WEIGHTS = "release_weights"  # attribute set on models loaded from a released .pth


def protocol_for(model: Any) -> str:
    """The inference protocol a model uses by default: "release" for weights loaded from the
    authors' released checkpoints (trained and measured with it), "project" otherwise (this
    project's checkpoints, of any architecture, and random initialisations)."""
    return "release" if getattr(model, RELEASE_WEIGHTS, False) else "project"


def model_names(family: str | None = None) -> list[str]:
    """Registered architecture names, optionally of one family."""
    return [n for n, e in MODELS.items() if family is None or e.family == family]


def get_config(name: str) -> ModelConfig:
    """The registered :class:`ModelConfig` called ``name``."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"Unknown model name {name!r}; choose one of {sorted(CONFIGS)}.") from None


def build_from_config(config: ModelConfig) -> AdaptiveClick:
    """Assemble an :class:`AdaptiveClick` with random initialisation from ``config``."""
    from napari_adaptiveclick.models.network.adaptiveclick import AdaptiveClick
    from napari_adaptiveclick.models.network.click_decoder import ClickAwareDecoder
    from napari_adaptiveclick.models.network.feature_pyramid import SimpleFeaturePyramid
    from napari_adaptiveclick.models.network.patch_embed import PatchEmbed
    from napari_adaptiveclick.models.network.pixel_decoder import PixelDecoder
    from napari_adaptiveclick.models.network.vit import VisionTransformer

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


def load_model(path: str | Path, expected_name: str | None = None) -> AdaptiveClick:
    """Build the model a checkpoint describes and load its weights (strictly).

    ``path="default"`` loads the shipped default weights. ``expected_name``, if given, must
    match the checkpoint's architecture.
    """
    from napari_adaptiveclick.models.checkpoint import load_state_into

    if str(path) in SHIPPED_MODELS:
        found = default_checkpoint(str(path))
        if found is None:
            raise CheckpointError(f"No '{path}' weights are shipped with this installation.")
        path = found
    config, state = read_model_weights(path, expected_name)
    released = config is None
    if released:  # a released .pth: the architecture from the name or the weights
        config = get_config(expected_name or _release_name(state, path))
    try:
        model = build_from_config(config)
    except (ValueError, TypeError, AssertionError, OverflowError, RuntimeError) as err:
        raise CheckpointError(f"{path}: its config cannot be built ({err}).") from None
    load_state_into(model, state, str(path))
    setattr(model, RELEASE_WEIGHTS, released)
    return model.eval()


def _release_name(state: dict, path: str | Path) -> str:
    width = release_width(state)
    names = [n for n in model_names("release") if MODELS[n].config.vit.embed_dim == width]
    if len(names) != 1:
        raise CheckpointError(
            f"{path}: cannot tell the architecture of a {width}-wide release checkpoint; "
            f"pass a model name ({', '.join(model_names('release'))})."
        )
    return names[0]


def build_model(
    name: str | None = DEFAULT_ARCHITECTURE, checkpoint: str | Path | None = None
) -> AdaptiveClick:
    """Build a registered model, optionally loading ``checkpoint``.

    ``checkpoint`` may be this project's checkpoint (which carries its own config: ``name`` may
    then be None) or a released AdaptiveClick ``.pth`` (state dict plus a pickled config,
    loaded without unpickling code). ``"default"`` means the shipped default weights.
    """
    if checkpoint is None:
        return build_from_config(get_config(name or DEFAULT_ARCHITECTURE))
    return load_model(checkpoint, expected_name=name)


def resolve_model(model: Any) -> nn.Module:
    """A model object, a registry name, a checkpoint path, or None (shipped default weights)."""
    from torch import nn

    if isinstance(model, nn.Module):
        return model
    if model is None or model in (DEFAULT_MODEL, DEFAULT_ARCHITECTURE):
        path = default_checkpoint()  # verified by SHA-256: call it once
        if path is not None:
            return load_model(path)
        if model == DEFAULT_MODEL:
            return load_model(DEFAULT_MODEL)  # raises: no default weights shipped
        if model is None:
            warnings.warn(
                "No default weights are installed: using a randomly initialised 'tiny' model, "
                "whose masks are meaningless. Pass a checkpoint.",
                stacklevel=3,
            )
        return build_model(DEFAULT_ARCHITECTURE)
    if isinstance(model, str) and model in SHIPPED_MODELS:
        return load_model(model)  # the other shipped weights; raises when not installed
    if isinstance(model, str) and model in MODELS:
        warnings.warn(
            f"{model!r} names an architecture without weights here: using a randomly "
            "initialised model, whose masks are meaningless. Pass its checkpoint file (a "
            "released .pth or one of this project's) to use trained weights.",
            stacklevel=3,
        )
        return build_model(model)
    if isinstance(model, str | Path):
        if not Path(model).is_file():
            raise ValueError(
                f"Unknown model name {str(model)!r}: neither a registered model "
                f"({', '.join(sorted(MODELS))}) nor an existing checkpoint file."
            )
        return load_model(model)
    raise TypeError(
        f"model must be None, a name in {sorted(MODELS)}, a checkpoint path or a module, not {type(model).__name__}."
    )
