"""Command line: ``python -m napari_adaptiveclick {segment,demo} ...``.

``segment`` replays clicks (CSV/JSON: plane,row,col,positive,object_id[,order,model,axis]) on a
2D image or the planes of a volume (TIFF, PNG, NIfTI, MetaImage, NRRD) and writes the labels in
the input's format and geometry. ``demo`` opens napari with the sample EM volume and the widget
(``--headless --out DIR`` runs a scripted click session and saves labels and a screenshot).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.models.registry import model_names


def _segment_parser(sub) -> None:
    p = sub.add_parser("segment", help="replay clicks on an image or volume and write the labels")
    p.add_argument("--image", required=True, help="input image or volume file")
    p.add_argument("--clicks", required=True, help="click records, CSV or JSON")
    p.add_argument("--out", required=True, help="output labels file (format from its extension)")
    p.add_argument(
        "--checkpoint", default=None, help="checkpoint path or 'default' (shipped weights)"
    )
    p.add_argument(
        "--model",
        default=None,
        help=f"registry name ({', '.join(model_names())}) when no checkpoint",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--threshold", type=float, default=PREDICTION_THRESHOLD)
    p.add_argument(
        "--no-zoom-in", action="store_true", help="predict on the whole slice at every click"
    )
    p.add_argument(
        "--flip-tta", action="store_true", help="average with the horizontally flipped slice"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--labels", default=None, help="labels the annotation started from (same shape)")
    p.add_argument(
        "--overwrite-objects", action="store_true", help="let objects overwrite earlier ones"
    )


def segment(args: argparse.Namespace) -> int:
    from napari_adaptiveclick.interactive.session import ClickSession
    from napari_adaptiveclick.io.images import read_image
    from napari_adaptiveclick.io.labels import write_labels
    from napari_adaptiveclick.volume import replay_records
    from napari_adaptiveclick.volume.records import read_click_records

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it or choose another --out.")
    volume = read_image(args.image)
    records = read_click_records(args.clicks)
    if not records:
        raise ValueError(f"{args.clicks} holds no clicks.")
    start_labels = None
    if args.labels:
        start_labels = read_image(args.labels).data
        if start_labels.shape != volume.spatial_shape:
            raise ValueError(
                f"--labels shape {start_labels.shape} does not match the image {volume.spatial_shape}."
            )
    model = args.checkpoint or args.model or records[0].model or None
    session = ClickSession(
        None if model == "default" else model,
        device=args.device,
        zoom_in=not args.no_zoom_in,
        flip_tta=True if args.flip_tta else None,
        threshold=args.threshold,
    )
    labels = replay_records(
        volume.data,
        records,
        session,
        rgb=volume.is_rgb,
        labels=start_labels,
        overwrite=args.overwrite_objects,
        progress=lambda done, total: print(
            f"\rreplayed {done}/{total} clicks", end="", file=sys.stderr
        ),
    )
    print(file=sys.stderr)
    write_labels(out, labels, like=volume, overwrite=args.overwrite)
    objects = sorted({r.object_id for r in records})
    print(
        f"wrote {out}: {len(objects)} object(s), {len(records)} click(s), model {session.model_name}, shape {labels.shape}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="napari-adaptiveclick", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _segment_parser(sub)
    sub.add_parser(
        "demo", help="open napari with the sample EM volume and the widget", add_help=False
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from napari_adaptiveclick._napari.demo import main as demo_main

        return demo_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    try:
        return segment(args)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
