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
    case_folds,
    cross_validated_errors,
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
    is_mri_object,
    propagation_options,
)
from napari_adaptiveclick.learning.run_folder import atomic_write

KINDS = {"brats": ("brats",), "sstem": ("sstem",), "both": ("brats", "sstem")}


def _kind(name: str) -> str:
    return "brats" if is_mri_object(name) else "sstem"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.calibrate_propagation", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data", type=Path, default=None, help="data root (default ../shared/data)")
    p.add_argument(
        "--checkpoint",
        default="auto",
        help="'auto' (the default, which the shipped rules were fitted with since session 12): "
        "the shipped weights the plugin picks for each object's kind (default-mri for BraTS, "
        "default for EM); or one model for every object: a shipped name or a checkpoint file",
    )
    p.add_argument(
        "--objects",
        choices=tuple(KINDS),
        default="both",
        help="which training objects: BraTS tumours (the rule of default-mri), ssTEM "
        "mitochondria (the rule of default) or both (one rule; default)",
    )
    p.add_argument("--out", type=Path, help="the stop rule JSON to write")
    p.add_argument("--log", type=Path, help="also save every object's slice log (JSON)")
    p.add_argument(
        "--from-log",
        type=Path,
        nargs="+",
        metavar="LOG",
        help="fit on saved --log files instead of running the propagations (a refit of the "
        "same evidence, with the settings the logs record; their --objects entries)",
    )
    p.add_argument(
        "--cross-validate",
        action="store_true",
        help="print the false + missed slices per object of rules fitted without each fold "
        "(a BraTS case, or a fifth of the ssTEM objects) instead of writing a rule",
    )
    p.add_argument("--margin", type=int, default=12, help="slices logged past each end")
    p.add_argument("--sstem-objects", type=int, default=30, help="largest mitochondria used")
    p.add_argument("--device", default="cpu")
    add_session_options(p)
    add_propagation_options(p)  # the propagation settings the rule is for
    args = p.parse_args(argv)
    if args.out is None and not args.cross_validate:
        p.error("give --out (the rule to write) or --cross-validate")
    files = [("--out", args.out), ("--log", args.log)]
    files += [("--from-log", path) for path in args.from_log or ()]
    given = [(flag, path.resolve()) for flag, path in files if path is not None]
    for i, (flag, path) in enumerate(given):
        for other, same in given[i + 1 :]:
            if path == same:
                p.error(f"{flag} and {other} must be different files (both are {path})")
    kinds = KINDS[args.objects]
    if args.from_log:
        logged, results = {}, []
        for path in args.from_log:
            try:
                settings, found = read_log(path)
            except ValueError as err:
                p.error(str(err))
            found = [r for r in found if _kind(r.name) in kinds]
            trims = {settings.get("intensity_quantile"), logged.get("intensity_quantile")}
            if found and results and len(trims) > 1:
                p.error(
                    f"{path} was logged with another intensity trim than the logs before it "
                    f"({' and '.join(map(str, trims))}); refit objects logged with the same "
                    "trim together (--objects)"
                )
            results += found
            logged = (logged or settings) if found else logged
        if not results:
            p.error(f"the logs hold no {args.objects} objects")
        what = f"{len(results)} objects of {', '.join(str(f) for f in args.from_log)}"
        return _fit_and_write(args, results, what, logged or None)
    root = args.data or default_data_root()
    session_for = SessionsByKind.from_options(args, args.device)
    objects = (brats_objects(root, "train") if "brats" in kinds else []) + (
        sstem_objects(root, "train", min_planes=3, limit=args.sstem_objects)
        if "sstem" in kinds
        else []
    )
    options = {o.name: propagation_options(args, session_for.model_for(o.name)) for o in objects}
    if len({json.dumps(v, sort_keys=True) for v in options.values()}) > 1:
        p.error(
            "the two kinds' shipped rules trim differently (--intensity-quantile auto): fit "
            "one kind at a time (--objects brats, --objects sstem) or give --intensity-quantile"
        )
    settings = {
        "margin": args.margin,
        "checkpoint": args.checkpoint,
        **next(iter(options.values()), propagation_options(args)),
        "flip": args.flip,
        "mri_checkpoint": args.mri_checkpoint,
        "zoom_min_size": args.zoom_min_size,
        "mri_zoom_min_size": args.mri_zoom_min_size,
    }
    results = []
    for i, obj in enumerate(objects, 1):
        result = run_object(
            obj,
            session_for(obj.name),
            logging_settings(obj, args.margin, **options[obj.name]),
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
    return _fit_and_write(args, results, f"{len(objects)} objects", settings)


def _fit_and_write(args, results: list, what: str, settings: dict | None) -> int:
    """Fit the rule on ``results`` and write it to ``args.out`` (or with ``--cross-validate``
    print its cross-validated errors); its source names what it was fitted on and the
    ``settings`` the evidence was logged with (None: not recorded)."""
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
    # the guard propagates as the logs did: trimmed when they were
    fit = {
        "guard": partial(guard_failures, intensity_quantile=quantile),
        "intensity_quantile": quantile,
    }
    try:
        if args.cross_validate:
            _print_errors(cross_validated_errors(results, case_folds(results), **fit), what)
            return 0
        rule = fit_stop_rule(results, source=source, **fit)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out = args.out
    atomic_write(out, (json.dumps(rule.to_json(), indent=1) + "\n").encode())
    print(f"wrote {out}: stop below {rule.stop_below}, doubtful below {rule.doubtful_below}")
    return 0


def _print_errors(errors: dict[str, int], what: str) -> None:
    """The cross-validated false + missed slices per object, over all and per group."""
    groups: dict[str, list[int]] = {}
    for name, cost in errors.items():
        group = "ssTEM" if _kind(name) == "sstem" else "BraTS " + name.rsplit("/", 1)[1]
        groups.setdefault(group, []).append(cost)
    print(f"cross-validated false + missed slices per object ({what}):")
    print(f"  all ({len(errors)}): {sum(errors.values()) / len(errors):.2f}")
    for group, costs in sorted(groups.items()):
        print(f"  {group} ({len(costs)}): {sum(costs) / len(costs):.2f}")


if __name__ == "__main__":
    sys.exit(main())
