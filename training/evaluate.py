"""NoC evaluation of a checkpoint (or the random-walker baseline) on a dataset split.

``python -m training.evaluate --dataset sstem --data ../shared/data --split test
--checkpoint runs/x/final.pt --out runs/x/eval_sstem`` simulates up to ``--max-clicks`` clicks
per object (SPEC.md section 4) and writes to ``--out``:

- ``metrics.json``: NoC@80/85/90, NoF@85/90, the mIoU@k curve, the settings, checkpoint,
  device and versions. Everything is deterministic except the ``timing`` entry.
- ``per_object.csv``: name, group, area, IoU after each click, NoC@85, NoC@90.
- ``miou_curve.png``: mIoU against the number of clicks.

``python -m training.evaluate --compare RUN1 RUN2 ...`` prints runs (folders or metrics.json
files) side by side with the paper's figures for their dataset. Bad input exits with code 2
and a message. This is the command line over
:func:`napari_adaptiveclick.learning.evaluation_run.run_evaluation`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from napari_adaptiveclick.evaluation.noc import FIRST_PROMPTS
from napari_adaptiveclick.evaluation.report import EvaluationError, format_comparison, load_run
from napari_adaptiveclick.interactive.focus import BOX_MARGIN, ZOOM_MIN_SIZE
from napari_adaptiveclick.learning.datasets import DATASET_NAMES
from napari_adaptiveclick.learning.evaluation_run import (
    RANDOM_WALKER,
    EvaluationSettings,
    run_evaluation,
)
from napari_adaptiveclick.models.registry import model_names

# command-line flag -> build_dataset option; only flags that were given are passed on.
DATASET_FLAGS = {
    "kind": "kind",
    "target": "target",
    "modality": "modality",
    "object_mode": "objects",
    "labels": "labels",
    "split_file": "split_file",
    "test_fraction": "test_fraction",
    "axis": "axis",
    "min_area": "min_area",
    "only": "only",
    "exclude": "exclude",
}


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.evaluate", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--dataset", choices=DATASET_NAMES)
    p.add_argument("--data", help="dataset folder or the shared data root")
    p.add_argument("--split", default="test", choices=("train", "test", "all"))
    data = p.add_argument_group("dataset options (passed to learning.datasets.build_dataset)")
    data.add_argument("--kind", help="sstem: mitochondria, cells or synapses")
    data.add_argument("--target", help="brats: wt, tc or et")
    data.add_argument("--modality", help="brats: flair, t1, t1ce or t2")
    data.add_argument("--object-mode", help="brats: 'slice' (one object per slice) or 'components'")
    data.add_argument("--labels", type=_int_list, help="oaizib: label values, e.g. 1,2")
    data.add_argument("--split-file", help='oaizib/folder: JSON {"train": [...], "test": [...]}')
    data.add_argument("--test-fraction", type=float, help="oaizib/folder: test share of files")
    data.add_argument("--axis", type=int, help="slicing axis of 3D volumes (napari order)")
    data.add_argument("--min-area", type=int, help="drop objects with fewer pixels")
    data.add_argument("--only", help="keep objects whose names match these patterns (a|b)")
    data.add_argument("--exclude", help="drop objects whose names match these patterns (a|b)")
    p.add_argument(
        "--checkpoint", help="checkpoint path, or 'default' / 'default-mri' for the shipped weights"
    )
    p.add_argument(
        "--model",
        help=f"architecture the checkpoint must hold ({', '.join(model_names())}; default: read from "
        f"the checkpoint), or '{RANDOM_WALKER}' for the non-learned baseline",
    )
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--stop-at", type=float, help="stop clicking an object at this IoU (faster)")
    p.add_argument("--objects", type=int, help="evaluate a random subset of N objects")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the --objects subset and the box jitter"
    )
    p.add_argument(
        "--protocol",
        choices=("plugin", "release"),
        default="plugin",
        help="plugin (default): exactly what the napari plugin does (first-click window of the "
        "model's input size, no flips); release: the authors' inference path (whole-image "
        "first click, their zoom-in rules, flip test-time augmentation)",
    )
    p.add_argument("--no-zoom-in", action="store_true", help="no zoom-in focus crop")
    flips = p.add_mutually_exclusive_group()
    flips.add_argument(
        "--flip",
        dest="flip",
        action="store_true",
        default=None,
        help="flip test-time augmentation on (default: the protocol's)",
    )
    flips.add_argument(
        "--no-flip", dest="flip", action="store_false", help="flip test-time augmentation off"
    )
    p.add_argument(
        "--first-click-window",
        type=lambda v: v if v == "auto" else int(v),
        help="plugin protocol: N or 'auto' (the default): the first click sees an N-pixel "
        "window around it",
    )
    p.add_argument(
        "--stretch-crops",
        action="store_true",
        help="stretch each crop to the square input (the release's way) instead of squaring it",
    )
    p.add_argument(
        "--no-first-click-grow",
        action="store_true",
        help="keep the first-click window even when the first mask touches its edge",
    )
    p.add_argument(
        "--zoom-min-size",
        type=int,
        default=ZOOM_MIN_SIZE,
        help="smallest side of the zoom-in crop in pixels (default 200, the release's)",
    )
    p.add_argument(
        "--object-crop",
        type=float,
        help="F: crop every image to its object's box grown F times (at least 32 px): small "
        "images as users crop them",
    )
    p.add_argument(
        "--first-prompt",
        choices=FIRST_PROMPTS,
        default="click",
        help="how each object starts: a click (default), its ground-truth box with jittered "
        "edges (seeded by --seed), or a scribble along its skeleton; clicks follow, and the "
        "first prompt counts as one",
    )
    p.add_argument(
        "--box-margin",
        type=_box_margin,
        default=BOX_MARGIN,
        help=f"a box keeps the mask inside it grown by this fraction of its sides + 2 px until "
        f"a positive click outside (default {BOX_MARGIN}); 'none': no limit",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="output folder")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the evaluation an existing --out holds (refused without it)",
    )
    p.add_argument("--compare", nargs="+", metavar="RUN", help="print runs side by side and exit")
    return p


def _box_margin(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if not 0.0 <= value <= 10.0:
        raise argparse.ArgumentTypeError(f"a margin in [0, 10] or 'none', got {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (argparse exits with code 2 on a bad one)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.compare:
        return args
    missing = [f"--{name}" for name in ("dataset", "out") if getattr(args, name) is None]
    if args.model != RANDOM_WALKER and args.checkpoint is None:
        missing.append("--checkpoint (a path, or 'default')")
    if missing:
        parser.error(f"missing {', '.join(missing)}")
    if args.model == RANDOM_WALKER and args.checkpoint is not None:
        parser.error(f"--checkpoint does not apply to --model {RANDOM_WALKER}")
    if (Path(args.out) / "metrics.json").exists() and not args.overwrite:
        parser.error(
            f"--out {args.out} already holds an evaluation (metrics.json); pass --overwrite "
            "to replace it, or choose another folder"
        )
    if args.max_clicks < 1:
        parser.error("--max-clicks must be at least 1")
    if args.objects is not None and args.objects < 1:
        parser.error("--objects must be at least 1")
    if args.stop_at is not None and not 0.0 < args.stop_at <= 1.0:
        parser.error("--stop-at must be an IoU in (0, 1]")
    return args


def settings_from_args(args: argparse.Namespace) -> EvaluationSettings:
    """The :class:`EvaluationSettings` of a command line from :func:`parse_args`; only the
    dataset flags that were given become dataset options."""
    options = {
        key: getattr(args, flag)
        for flag, key in DATASET_FLAGS.items()
        if getattr(args, flag) is not None
    }
    return EvaluationSettings(
        dataset=args.dataset,
        out=args.out,
        data=args.data,
        split=args.split,
        dataset_options=options,
        objects=args.objects,
        seed=args.seed,
        checkpoint=args.checkpoint,
        model=args.model,
        max_clicks=args.max_clicks,
        stop_at=args.stop_at,
        zoom_in=not args.no_zoom_in,
        protocol=args.protocol,
        flip_tta=args.flip,
        first_click_window=args.first_click_window,
        first_click_grow=not args.no_first_click_grow,
        stretch_crops=args.stretch_crops,
        zoom_min_size=args.zoom_min_size,
        device=args.device,
        object_crop=args.object_crop,
        first_prompt=args.first_prompt,
        box_margin=args.box_margin,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.compare:
            print(format_comparison([load_run(p) for p in args.compare]))
        else:
            run_evaluation(settings_from_args(args))
    except EvaluationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
