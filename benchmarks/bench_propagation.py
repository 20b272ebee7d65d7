"""Propagation from one annotated slice: 3D Dice, false and missed slices, seconds (#13 item 1).

    python benchmarks/bench_propagation.py --split test            # BRATS2012_HG0015, ssTEM 16-19
    python benchmarks/bench_propagation.py --split train --sstem-objects 20
    python benchmarks/bench_propagation.py --split test --sstem-stack whole --no-brats --compare

For each 3D object (BraTS whole tumour and tumour core, the largest connected part of each;
ssTEM mitochondria spanning at least two planes of the split's planes, or with
``--sstem-stack whole`` at least three of all 20 planes, train and test, as one image
stack: the test split has only four planes) the object's largest slice is
clicked with the NoC simulator until IoU 0.9 (at most 5 clicks), then propagated both ways
through the volume with the settings the plugin uses for the object's weights (the stop
rule shipped for them and its intensity trim). Reported per object: 3D Dice of the
object against the truth, slices written where the object is absent ("false"), slices of the
object left empty ("missed"), the propagation's seconds, and which written slices it flagged
as doubtful. ``--compare`` also runs the propagation without the calibrated stop rule (the
behaviour before it) on the same objects. Needs ../shared/data (or --data).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from napari_adaptiveclick.learning.propagation_calibration import (
    run_object,
)
from napari_adaptiveclick.learning.propagation_options import (
    SessionsByKind,
    add_propagation_options,
    add_session_options,
    propagation_options,
)
from napari_adaptiveclick.volume.propagation import PropagationSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _row(label: str, r) -> str:
    doubt = ",".join(map(str, r.doubtful)) or "-"
    return (
        f"{label:9s} {r.name:44s} {r.clicks:2d} {r.source_iou:5.3f} {r.dice:6.3f} "
        f"{r.false_slices:5d} {r.missed_slices:6d} {r.seconds:7.1f}  {doubt}"
    )


def _summary(label: str, results) -> str:
    return (
        f"{label:9s} {'mean of ' + str(len(results)) + ' objects':44s}    "
        f"{'':5s} {statistics.mean(r.dice for r in results):6.3f} "
        f"{statistics.mean(r.false_slices for r in results):5.2f} "
        f"{statistics.mean(r.missed_slices for r in results):6.2f} "
        f"{statistics.mean(r.seconds for r in results):7.1f}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument(
        "--checkpoint",
        default="auto",
        help="'auto': the shipped weights for each object's kind, as the plugin picks them "
        "(default-mri for BraTS when installed, default for ssTEM); a shipped name or a file",
    )
    p.add_argument("--sstem-objects", type=int, default=20, help="largest mitochondria used")
    p.add_argument("--sstem-stack", choices=("split", "whole"), default="split")
    p.add_argument("--no-brats", action="store_true", help="only the ssTEM objects")
    p.add_argument("--compare", action="store_true", help="also run without the stop rule")
    add_session_options(p)
    add_propagation_options(p)
    p.add_argument("--stop-rule", type=Path, help="a stop rule JSON in place of the shipped one")
    args = p.parse_args()

    from napari_adaptiveclick.learning.datasets import default_data_root
    from napari_adaptiveclick.learning.objects3d import brats_objects, sstem_objects
    from napari_adaptiveclick.volume.stopping import read_stop_rule

    root = args.data or default_data_root()
    session_for = SessionsByKind.from_options(args)

    whole = args.sstem_stack == "whole"
    objects = [] if args.no_brats else brats_objects(root, args.split)
    objects += sstem_objects(
        root, "all" if whole else args.split, min_planes=3 if whole else 2, limit=args.sstem_objects
    )
    rule = None
    if args.stop_rule:
        try:
            rule = read_stop_rule(args.stop_rule)
        except ValueError as err:
            p.error(str(err))

    def arms_for(name: str) -> list[tuple[str, PropagationSettings]]:
        """The plugin's settings for the object's weights (their shipped rule and trim),
        with the options' changes; and without a rule (--compare)."""
        model = session_for.model_for(name)
        settings = PropagationSettings.for_model(model, **propagation_options(args, model))
        if rule is not None:
            settings = replace(settings, stop_rule=rule)
        if settings.stop_rule is None:
            return [("no rule", settings)]
        if args.compare:
            return [("rule", settings), ("no rule", replace(settings, stop_rule=None))]
        return [("rule", settings)]

    print(f"{'arm':9s} {'object':44s} cl srcIoU   Dice false missed seconds  doubtful slices")
    results: dict[tuple[str, str], list] = {}
    for obj in objects:
        group = obj.name.split("/")[0] + (
            "/" + obj.name.rsplit("/", 1)[1] if "brats" in obj.name else ""
        )
        arms = arms_for(obj.name)
        if arms[0][0] == "no rule" and not args.compare:
            print(f"note: no calibrated stop rule is installed for {obj.name}; running without it")
        for label, settings in arms:
            r = run_object(obj, session_for(obj.name), settings)
            results.setdefault((label, group), []).append(r)
            print(_row(label, r), flush=True)
    print()
    for (label, group), rs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(_summary(label, rs).replace("mean of", f"{group}: mean of"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
