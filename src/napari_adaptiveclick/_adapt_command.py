"""``python -m napari_adaptiveclick adapt``: fine-tune a model on the objects of your labels.

A thin command line over :mod:`napari_adaptiveclick.learning.adapt_job`: it checks every input
before training, prints progress on stderr and the held-out before / after table on stdout,
and writes the adapted checkpoint with its provenance, or nothing when the held-out objects
got worse (unless ``--keep-worse``). Exit status: 0 written, 1 not written (worse, or
cancelled with Ctrl-C), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_adapt_parser(sub: Any) -> None:
    """The ``adapt`` subcommand's options."""
    from napari_adaptiveclick.learning.adapt import AdaptSettings

    d = AdaptSettings()
    p = sub.add_parser(
        "adapt",
        help="fine-tune a model on the objects of a labels file (held-out NoC before/after)",
        description="Adapt a model to your data: train on the objects of LABELS (each "
        "4-connected component of an id on a slice is one object, 0 is background), holding "
        "part of them out to measure NoC@85/90 before and after.",
    )
    p.add_argument(
        "--image",
        required=True,
        help="2D image or grey 3D volume (TIFF, PNG, NIfTI, MetaImage, NRRD)",
    )
    p.add_argument("--labels", required=True, help="instance labels of the same shape")
    p.add_argument("--out", required=True, help="adapted checkpoint to write (e.g. model.pt)")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="model to start from: 'default' or 'default-mri' (shipped weights) or a checkpoint "
        "file (default: the shipped weights for the image's kind, default-mri for NIfTI, "
        "MetaImage and NRRD files, as the plugin picks them)",
    )
    p.add_argument(
        "--minutes", type=float, default=d.minutes, help="wall-time budget (default %(default)s)"
    )
    p.add_argument(
        "--axis", type=int, default=0, help="slicing axis of a 3D volume, napari order (default 0)"
    )
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or mps (default auto)")
    p.add_argument(
        "--keep-worse",
        action="store_true",
        help="write the model even when the held-out objects got worse",
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default %(default)s)")
    p.add_argument(
        "--batch-size", type=int, default=d.batch_size, help="crops per step (default %(default)s)"
    )
    p.add_argument(
        "--first-click-prob",
        type=float,
        default=d.first_click_prob,
        help="share of samples starting from one centred click (default %(default)s)",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=d.holdout,
        help="share of objects (or planes) held out (default %(default)s)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=d.patience,
        help="checks without improvement before stopping (default %(default)s)",
    )
    p.add_argument(
        "--checks",
        type=int,
        default=d.checks,
        help="held-out checks in the budget (default %(default)s)",
    )
    p.add_argument("--check-every", type=int, default=None, help="check every N steps instead")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps at the latest")
    p.add_argument(
        "--max-clicks",
        type=int,
        default=d.max_clicks,
        help="clicks per held-out object (default %(default)s)",
    )
    p.add_argument(
        "--min-area",
        type=int,
        default=d.min_area,
        help="smaller components are not objects (default %(default)s px)",
    )
    p.add_argument(
        "--freeze-blocks",
        type=int,
        default=d.freeze_blocks,
        help="do not train the patch embeddings and the first N ViT blocks (default "
        "%(default)s: train every weight)",
    )
    p.add_argument(
        "--freeze-pixel-decoder",
        action="store_true",
        help="do not train the pixel decoder either (with --freeze-blocks 8, the whole "
        "backbone: only the click-aware decoder trains, about twice the steps in the budget)",
    )
    p.add_argument(
        "--average-checks",
        action="store_true",
        help="keep the mean of the weights at every check instead of the best check's",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")  # fmt: skip


def run_adapt(args: argparse.Namespace) -> int:
    """Check, adapt, print the table, write (or not). Bad input raises ``ValueError``."""
    from napari_adaptiveclick.learning.adapt import AdaptSettings, format_table
    from napari_adaptiveclick.learning.adapt_data import read_grey
    from napari_adaptiveclick.learning.adapt_job import check_output, prepare, run_job, save_adapted
    from napari_adaptiveclick.learning.trainer import keep_freed_memory

    settings = AdaptSettings(
        minutes=args.minutes,
        lr=args.lr,
        batch_size=args.batch_size,
        first_click_prob=args.first_click_prob,
        holdout=args.holdout,
        patience=args.patience,
        checks=args.checks,
        check_every=args.check_every,
        max_steps=args.max_steps,
        max_clicks=args.max_clicks,
        min_area=args.min_area,
        seed=args.seed,
        freeze_blocks=args.freeze_blocks,
        freeze_pixel_decoder=args.freeze_pixel_decoder,
        average_checks=args.average_checks,
        device=args.device,
        threads=args.threads,
    )
    settings.check()
    check_output(args.out, None, args.overwrite, (args.image, args.labels))  # before reading
    image = read_grey(args.image, "--image")
    labels = read_grey(args.labels, "--labels")
    from napari_adaptiveclick.models.registry import default_for_image

    checkpoint = args.checkpoint or default_for_image(args.image)
    job = prepare(image, labels, checkpoint=checkpoint, settings=settings, axis=args.axis)
    check_output(args.out, job.source["file"], args.overwrite, job.input_files)
    split = job.split
    print(
        f"{len(job.objects.objects)} objects on {len(job.objects.planes)} plane(s) "
        f"({job.objects.too_small} smaller than {settings.min_area} px left out): "
        f"{len(split.train)} to train on, {len(split.held_out)} held out by {split.by} "
        f"({len(split.measured)} measured); source {job.source['checkpoint']} "
        f"({job.source['model']}); up to {settings.minutes:g} min",
        file=sys.stderr,
    )
    keep_freed_memory()  # a process of its own: keep freed memory for the next step
    try:
        result = run_job(job, progress=_print_progress)
    except KeyboardInterrupt:
        print("\ncancelled: nothing written.", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    print(format_table(result, len(split.measured), split.by))
    print(
        f"{result.steps} steps in {result.seconds / 60:.1f} min, stopped: {result.stopped}; "
        f"kept the weights of step {result.best_step}."
    )
    if note := over_budget_note(result, settings.minutes):
        print(note)
    if result.worse and not args.keep_worse:
        print(
            "Adaptation made the held-out objects WORSE (mean of NoC@85 and NoC@90 "
            f"{result.before['score']:.2f} -> {result.after['score']:.2f}): nothing written. "
            "Pass --keep-worse to write it anyway, label more objects, or lower --lr."
        )
        return 1
    if result.worse:
        print("WARNING: the held-out objects got worse; writing anyway (--keep-worse).")
    elif not result.improved:
        print("Adaptation did not improve the held-out objects (no change in NoC).")
    path = save_adapted(args.out, job, result, args.overwrite)
    print(f"wrote {path} (provenance under 'adaptation')")
    return 0


def over_budget_note(result: Any, minutes: float) -> str:
    """Why a run took clearly longer than its ``--minutes`` (empty when it did not): at least
    one step is trained, and the held-out objects are measured before it and after it."""
    over = result.seconds - minutes * 60
    if over <= 1.0 + 0.05 * minutes * 60:
        return ""
    return (
        f"Note: this took {over:.0f} s more than --minutes {minutes:g}: at least one step is "
        f"trained, and the held-out objects are measured before and after it "
        f"({result.before['check_seconds']:.0f} s a check). Give more minutes, or fewer "
        "--max-clicks for a quicker check."
    )


def _print_progress(update: Any) -> None:
    minutes, seconds = divmod(int(update.seconds_left), 60)
    if update.phase == "before":
        c = update.check
        print(
            f"source model on the held-out objects: NoC@85 {c['NoC@85']:.2f}, NoC@90 "
            f"{c['NoC@90']:.2f} ({c['check_seconds']:.0f} s)",
            file=sys.stderr,
        )
    elif update.phase == "train":
        if not sys.stderr.isatty():
            return  # a log gets the checks only
        print(
            f"\rstep {update.step}  loss {update.loss:.3f}  {minutes}:{seconds:02d} left  ",
            end="",
            file=sys.stderr,
        )
    else:
        c = update.check
        print(
            f"\rcheck at step {update.step}: held-out NoC@85 {c['NoC@85']:.2f}, NoC@90 "
            f"{c['NoC@90']:.2f} (mean loss {c['loss']:.3f}, {c['check_seconds']:.0f} s)",
            file=sys.stderr,
        )
