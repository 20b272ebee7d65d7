"""The options of the propagation benchmark and calibration: which weights each kind of 3D
object gets (:class:`SessionsByKind`), and the :class:`PropagationSettings` fields the two
commands set (:func:`add_propagation_options`)."""

from __future__ import annotations

import argparse

from napari_adaptiveclick.interactive.focus import ZOOM_MIN_SIZE
from napari_adaptiveclick.volume.propagation import PROPAGATION_PROMPTS, PropagationSettings

AUTO = "auto"  # --intensity-quantile: the trim of the shipped rule for the object's weights

__all__ = [
    "SessionsByKind",
    "add_propagation_options",
    "add_session_options",
    "propagation_options",
]


class SessionsByKind:
    """One :class:`ClickSession` per model for the 3D objects of ``learning.objects3d``:
    ``checkpoint`` "auto" gives each object the shipped weights the plugin picks for its kind
    (``default-mri`` for BraTS volumes, ``default`` for EM stacks); anything else (a shipped
    name, a registry name or a checkpoint file) is used for every object.
    ``mri_checkpoint``: with "auto", the weights for BraTS objects in place of
    ``default-mri`` (a candidate before it is installed). ``flip_tta``: the sessions' flip
    test-time augmentation (None: :class:`ClickSession`'s default, on for released ``.pth``
    weights, off for the project's). ``zoom_min_size``: the sessions' smallest zoom-in crop
    side (pixels); ``mri_zoom_min_size``, when given, replaces it for BraTS objects."""

    def __init__(
        self,
        checkpoint: str = "auto",
        device: str = "cpu",
        flip_tta: bool | None = None,
        mri_checkpoint: str | None = None,
        zoom_min_size: int = ZOOM_MIN_SIZE,
        mri_zoom_min_size: int | None = None,
    ) -> None:
        self.checkpoint, self.device, self.flip_tta = checkpoint, device, flip_tta
        self.mri_checkpoint, self.zoom_min_size = mri_checkpoint, zoom_min_size
        self.mri_zoom_min_size = mri_zoom_min_size
        self.sessions: dict[tuple[str, int], object] = {}

    @classmethod
    def from_options(cls, args, device: str = "cpu") -> SessionsByKind:
        """The sessions the options of :func:`add_session_options` (and ``--checkpoint``)
        ask for."""
        return cls(
            args.checkpoint,
            device,
            flip_tta=args.flip,
            mri_checkpoint=args.mri_checkpoint,
            zoom_min_size=args.zoom_min_size,
            mri_zoom_min_size=args.mri_zoom_min_size,
        )

    def model_for(self, name: str) -> str:
        from napari_adaptiveclick.models.registry import default_for_image

        if self.checkpoint != "auto":
            return self.checkpoint
        if self.mri_checkpoint and is_mri_object(name):
            return self.mri_checkpoint
        return default_for_image("scan.nii.gz" if is_mri_object(name) else "stack.tif")

    def __call__(self, name: str):
        from napari_adaptiveclick.interactive.session import ClickSession

        model, zoom = self.model_for(name), self.zoom_min_size
        if self.mri_zoom_min_size is not None and is_mri_object(name):
            zoom = self.mri_zoom_min_size
        if (model, zoom) not in self.sessions:
            self.sessions[model, zoom] = ClickSession(
                model, self.device, flip_tta=self.flip_tta, zoom_min_size=zoom
            )
            kind = name.split("/")[0]
            print(f"model for {kind} objects: {model} (zoom-in >= {zoom} px)", flush=True)
        return self.sessions[model, zoom]


def is_mri_object(name: str) -> bool:
    """True for the objects of MRI volumes (``learning.objects3d`` names them brats*/...)."""
    return name.startswith("brats")


def add_session_options(p) -> None:
    """The options of :class:`SessionsByKind` on an argparse parser (``--flip``,
    ``--zoom-min-size``, ``--mri-zoom-min-size``, ``--mri-checkpoint``); see
    :meth:`SessionsByKind.from_options`."""
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation on")
    p.add_argument(
        "--zoom-min-size",
        type=int,
        default=ZOOM_MIN_SIZE,
        help=f"smallest side of the sessions' zoom-in crop in pixels (default {ZOOM_MIN_SIZE}, "
        "the plugin's)",
    )
    p.add_argument(
        "--mri-zoom-min-size",
        type=int,
        help="the same for the BraTS objects only (default: --zoom-min-size)",
    )
    p.add_argument(
        "--mri-checkpoint",
        help="with --checkpoint auto: the weights for BraTS objects in place of default-mri "
        "(a candidate before it is installed)",
    )


def add_propagation_options(p) -> None:
    """The :class:`PropagationSettings` options of the propagation benchmark and calibration
    on an argparse parser (``--prompt``, ``--intensity-quantile``); see
    :func:`propagation_options`."""
    p.add_argument(
        "--prompt",
        choices=PROPAGATION_PROMPTS,
        default=PropagationSettings.prompt,
        help="what each next slice is prompted with (PropagationSettings.prompt)",
    )
    p.add_argument(
        "--intensity-quantile",
        type=_quantile,
        default=AUTO,
        metavar="Q|none|auto",
        help="trim each propagated mask to the annotated slice's intensities from this quantile "
        "('none': no trim; 'auto', the default: as the stop rule shipped for each object's "
        "weights was fitted, 0.02 for default-mri, none for default; "
        "PropagationSettings.intensity_quantile)",
    )


def propagation_options(args, model: str = "default") -> dict:
    """The :class:`PropagationSettings` fields that :func:`add_propagation_options` set, for
    an object annotated with the weights ``model`` (``--intensity-quantile auto``: the trim
    of the rule shipped for them, :meth:`PropagationSettings.for_model`)."""
    quantile = args.intensity_quantile
    if quantile == AUTO:
        quantile = PropagationSettings.for_model(model).intensity_quantile
    return {"prompt": args.prompt, "intensity_quantile": quantile}


def _quantile(text: str) -> float | str | None:
    if text.strip().lower() in ("none", AUTO):
        return None if text.strip().lower() == "none" else AUTO
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 0.5) or 'none', not {text!r}")
    return value
