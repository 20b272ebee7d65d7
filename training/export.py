"""``python -m training.export``: turn a training checkpoint into shippable weights.

    python -m training.export --checkpoint runs/default_tiny/last.pt \\
        --out src/napari_adaptiveclick/weights/tiny_default.pt --half --default

Writes the model weights only (no optimiser), optionally in half precision, atomically, and
with ``--default`` records the file and its SHA-256 in ``weights/default.json`` so the plugin,
``ClickSession()`` and ``--checkpoint default`` use it (the hash is verified at load time);
``--shipped default-mri`` does the same for the MRI weights (``weights/default-mri.json``).
``--average A B ...`` writes the mean of the weights of ``--checkpoint`` and of A, B, ... (a
uniform weight soup of runs fine-tuned from the same weights; the architectures must match).
``--box-prior P`` records in the weights' config how a box prompt is fed (the previous-mask
value P inside the box before any mask exists), for weights where it was chosen on training
data rather than set by training with boxes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from napari_adaptiveclick.models.checkpoint import (
    SHIPPED_MODELS,
    WEIGHTS_DIR,
    CheckpointError,
    average_models,
    save_checkpoint,
    sha256sum,
    shipped_manifest,
)
from napari_adaptiveclick.models.registry import build_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.export", description=__doc__.split("\n")[0]
    )
    p.add_argument("--checkpoint", required=True, help="training checkpoint (last.pt / final.pt)")
    p.add_argument("--out", required=True, help="output weights file")
    p.add_argument("--half", action="store_true", help="store floating-point weights as float16")
    p.add_argument(
        "--default", action="store_true", help="make it the shipped default (weights/default.json)"
    )
    p.add_argument(
        "--shipped",
        choices=SHIPPED_MODELS,
        help="make it these shipped weights (weights/NAME.json); --default = --shipped default",
    )
    p.add_argument(
        "--average",
        nargs="+",
        default=[],
        metavar="CHECKPOINT",
        help="average the weights of --checkpoint with these checkpoints (same architecture)",
    )
    p.add_argument(
        "--box-prior",
        type=float,
        help="record in the weights how a box prompt is fed: this previous-mask value inside "
        "the box, in [0, 0.5) (ModelConfig.box_prior; default: keep the checkpoint's)",
    )
    p.add_argument("--note", default="", help="free text stored in the file (data, steps, ...)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = p.parse_args(argv)
    shipped = args.shipped or ("default" if args.default else None)
    out = Path(args.out)
    if shipped and out.resolve().parent != WEIGHTS_DIR.resolve():
        print(f"error: shipped weights need --out inside {WEIGHTS_DIR}", file=sys.stderr)
        return 2
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists; pass --overwrite to replace it.", file=sys.stderr)
        return 2
    sources = [args.checkpoint, *args.average]
    try:
        model = average_models([build_model(None, path) for path in sources])
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.box_prior is not None:
        try:
            model.config = replace(model.config, box_prior=args.box_prior)
            model.config.validate()
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    extra = {"note": args.note, "source": ", ".join(Path(path).name for path in sources)}
    if args.average:
        extra["averaged"] = [str(path) for path in sources]
    save_checkpoint(out, model, half=args.half, extra=extra)
    digest = sha256sum(out)
    if shipped:
        manifest_path = shipped_manifest(shipped)
        old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        manifest = {"file": out.name, "sha256": digest, "model": model.config.name}
        if old.get("sha256") == digest and "regression" in old:
            manifest["regression"] = old["regression"]  # the same file keeps its figures
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    size = out.stat().st_size / 2**20
    print(f"wrote {out} ({size:.1f} MiB, {model.config.name}, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
