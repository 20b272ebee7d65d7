"""``python -m training.calibrate_propagation``: fit the propagation stop rule on training cases.

Runs the propagation protocol of ``benchmarks/bench_propagation.py`` on the 3D objects of the
training split only (BraTS whole tumour and tumour core of every training case, ssTEM
mitochondria of planes 00-15 that span several planes) with the stop rule off, logs each
slice's evidence as far as ``--margin`` slices past the object's ends, and fits
:class:`~napari_adaptiveclick.volume.stopping.StopRule` (see
:mod:`napari_adaptiveclick.learning.propagation_calibration`)::

    python -m training.calibrate_propagation --data ../shared/data \\
        --out src/napari_adaptiveclick/weights/propagation_stop.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

import napari_adaptiveclick  # noqa: F401  (sets OMP_WAIT_POLICY before torch starts)
from napari_adaptiveclick.interactive.focus import ZOOM_MIN_SIZE
from napari_adaptiveclick.learning.datasets import default_data_root
from napari_adaptiveclick.learning.objects3d import brats_objects, sstem_objects
from napari_adaptiveclick.learning.propagation_calibration import (
    fit_stop_rule,
    logging_settings,
    read_log,
    run_object,
)
from napari_adaptiveclick.learning.propagation_guard import guard_failures
from napari_adaptiveclick.learning.propagation_options import (
    SessionsByKind,
    add_propagation_options,
    add_session_options,
    propagation_options,
)
from napari_adaptiveclick.learning.run_folder import atomic_write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.calibrate_propagation", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data", type=Path, default=None, help="data root (default ../shared/data)")
    p.add_argument(
        "--checkpoint",
        default="auto",
        help="'auto' (the default, which the shipped rule was fitted with since session 12): "
        "the shipped weights the plugin picks for each object's kind (default-mri for BraTS, "
        "default for EM); or one model for every object: a shipped name or a checkpoint file",
    )
    p.add_argument("--out", type=Path, required=True, help="the stop rule JSON to write")
    p.add_argument("--log", type=Path, help="also save every object's slice log (JSON)")
    p.add_argument(
        "--from-log",
        type=Path,
        metavar="LOG",
        help="fit on a saved --log instead of running the propagations (a refit of the same "
        "evidence, with the settings the log records)",
    )
    p.add_argument("--margin", type=int, default=12, help="slices logged past each end")
    p.add_argument("--sstem-objects", type=int, default=30, help="largest mitochondria used")
    p.add_argument("--device", default="cpu")
    add_session_options(p)
    add_propagation_options(p)  # the propagation settings the rule is for
    args = p.parse_args(argv)
    files = [("--out", args.out), ("--log", args.log), ("--from-log", args.from_log)]
    given = [(flag, path.resolve()) for flag, path in files if path is not None]
    for i, (flag, path) in enumerate(given):
        for other, same in given[i + 1 :]:
            if path == same:
                p.error(f"{flag} and {other} must be different files (both are {path})")
    settings = {
        "margin": args.margin,
        "checkpoint": args.checkpoint,
        **propagation_options(args),
        "flip": args.flip,
        "mri_checkpoint": args.mri_checkpoint,
        "zoom_min_size": args.zoom_min_size,
        "mri_zoom_min_size": args.mri_zoom_min_size,
    }
    if args.from_log:
        try:
            logged, results = read_log(args.from_log)
        except ValueError as err:
            p.error(str(err))
        what = f"{len(results)} objects of {args.from_log}"
        return _fit_and_write(args.out, results, what, logged or None)
    root = args.data or default_data_root()
    session_for = SessionsByKind.from_options(args, args.device)
    objects = brats_objects(root, "train") + sstem_objects(
        root, "train", min_planes=3, limit=args.sstem_objects
    )
    results = []
    for i, obj in enumerate(objects, 1):
        result = run_object(
            obj,
            session_for(obj.name),
            logging_settings(obj, args.margin, **propagation_options(args)),
        )
        results.append(result)
        print(
            f"[{i}/{len(objects)}] {obj.name}: {len(result.slices)} slices logged, "
            f"{result.seconds:.1f} s",
            flush=True,
        )
    if args.log:  # kept before the fit, whatever the fit says
        log = {"settings": settings, "objects": [asdict(r) for r in results]}
        atomic_write(args.log, json.dumps(log).encode())
    return _fit_and_write(args.out, results, f"{len(objects)} objects", settings)


def _fit_and_write(out: Path, results: list, what: str, settings: dict | None) -> int:
    """Fit the rule on ``results`` and write it to ``out``; its source names what it was
    fitted on and the ``settings`` the evidence was logged with (None: not recorded)."""
    if settings is None:
        how = "logging settings not recorded"
    else:
        how = (
            f"margin {settings.get('margin')}, checkpoint {settings.get('checkpoint')}, "
            f"prompt {settings.get('prompt')}{', flip' if settings.get('flip') else ''}"
        )
        if settings.get("intensity_quantile") is not None:
            how += f", trimmed to the source slice's intensities from q {settings['intensity_quantile']}"
        if settings.get("mri_checkpoint"):
            how += f", BraTS with {settings['mri_checkpoint']}"
        if settings.get("zoom_min_size", ZOOM_MIN_SIZE) != ZOOM_MIN_SIZE:
            how += f", zoom-in at least {settings['zoom_min_size']} px"
        if settings.get("mri_zoom_min_size") is not None:
            how += f", BraTS zoom-in at least {settings['mri_zoom_min_size']} px"
    source = f"training.calibrate_propagation on the training split ({what}, {how})"
    quantile = (settings or {}).get("intensity_quantile")
    try:  # the guard propagates as the logs did: trimmed when they were
        rule = fit_stop_rule(
            results, source=source, guard=partial(guard_failures, intensity_quantile=quantile)
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    atomic_write(out, (json.dumps(rule.to_json(), indent=1) + "\n").encode())
    print(f"wrote {out}: stop below {rule.stop_below}, doubtful below {rule.doubtful_below}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
