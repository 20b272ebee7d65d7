"""Adaptation as a user runs it (issue #12 item 5): `adapt` on a few labelled slices of the
test split, then NoC on the other slices, beside the unadapted model and the random walker.

    python benchmarks/bench_adapt.py --data ../shared/data --minutes 5 [--case sstem brats]

Cases (SPEC.md section 5: the shipped weights never saw the first two):

- ``sstem``: the test slices 16-19 of stack 1 as one 4-plane stack; the labels of slices 16
  and 17 are the 4-connected components of the mitochondria ground truth (one id each);
  evaluated on every mitochondrion of slices 18 and 19.
- ``brats``: the FLAIR volume of BRATS2012_HG0015; labels (whole tumour, label > 0, as id 1)
  on 20 of its tumour slices (at least 50 px), evenly spaced; evaluated on its other tumour
  slices, the whole tumour of a slice as one object (the ``brats`` dataset's objects).

For each case the script writes the stack and label files to a temporary folder (never into
the repository), runs ``python -m napari_adaptiveclick adapt`` as a separate process (its wall
and CPU time are measured) and evaluates on the same objects the shipped default weights, the
adapted checkpoint (when the command wrote one) and the random-walker baseline, with the
plugin's session, the standard click simulator, 20 clicks, stopping an object at IoU 0.90
(NoC@85/90 exact). Each adapted model is also evaluated on the other cases' objects (how
much it forgot; ``--no-forgetting`` skips that). Prints Markdown tables; ``--json FILE`` also
writes the figures. ``--case brats2015`` is the case the settings were first chosen on (a
training case the ``default`` weights never saw; ``default-mri``, which adapt picks for it,
was trained on it); ``--case brats2015-fold`` is the training case held out of
``default-mri``'s training, where they are chosen since session 11; never the test split.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MAX_CLICKS, STOP_AT = 20, 0.90


def sstem_case(data: Path, work: Path) -> tuple[list[str], object]:
    """The 4-plane test stack, the labels of slices 16-17, the objects of slices 18-19."""
    import tifffile

    from napari_adaptiveclick.io.images import read_image
    from napari_adaptiveclick.learning.adapt_data import collect_objects
    from napari_adaptiveclick.learning.datasets.base import components

    stack = data / "sstem-drosophila-vnc" / "stack1"
    slices = range(16, 20)
    raw = np.stack([read_image(stack / "raw" / f"{i:02d}.tif").data for i in slices])
    mito = np.stack([read_image(stack / "mitochondria" / f"{i:02d}.png").data > 0 for i in slices])
    ids = np.stack([components(m) for m in mito]).astype(np.uint16)
    train, held = ids.copy(), ids.copy()
    train[2:] = 0
    held[:2] = 0
    paths = {name: work / f"sstem_{name}.tif" for name in ("image", "labels", "eval_labels")}
    tifffile.imwrite(paths["image"], raw, photometric="minisblack")  # 4 planes, not RGBA
    tifffile.imwrite(paths["labels"], train, photometric="minisblack")
    tifffile.imwrite(paths["eval_labels"], held, photometric="minisblack")
    image = read_image(paths["image"])
    samples = collect_objects(image, read_image(paths["eval_labels"]), min_area=1).dataset
    return ["--image", str(paths["image"]), "--labels", str(paths["labels"])], samples


def mri_case(
    image_path: Path, truth_path: Path, work: Path, n_train: int = 20
) -> tuple[list[str], object]:
    """Whole tumour (label > 0, as id 1) on ``n_train`` evenly spaced tumour slices (at least
    50 px, the brats dataset's min_area) of an MRI volume; the other tumour slices as objects,
    the whole tumour of a slice as one object (the brats datasets' objects), normalised with
    the whole volume's statistics as the adapt command does."""
    from napari_adaptiveclick.io.images import read_image, split_image_name
    from napari_adaptiveclick.io.labels import write_labels
    from napari_adaptiveclick.learning.datasets.base import Collector

    truth = read_image(truth_path)
    tumour = truth.data > 0
    slices = np.flatnonzero(tumour.sum((1, 2)) >= 50)
    chosen = slices[np.linspace(0, len(slices) - 1, n_train).round().astype(int)]
    labels = np.zeros(tumour.shape, np.uint8)
    labels[chosen] = tumour[chosen]
    stem, ext = split_image_name(truth_path)
    path = work / f"{stem}_labels{ext}"  # the truth's format and geometry
    write_labels(path, labels, like=truth)
    evaluated = tumour.copy()
    evaluated[chosen] = False
    collector = Collector()
    collector.add_volume(read_image(image_path), evaluated, lambda plane: plane.astype(np.uint8),
                         axis=0, source=image_path.name, group="eval", tag="wt", min_area=50)  # fmt: skip
    return ["--image", str(image_path), "--labels", str(path)], collector.build("evaluated")


def brats_case(data: Path, work: Path) -> tuple[list[str], object]:
    """The test case: FLAIR of BRATS2012_HG0015 (80 tumour slices: 20 labelled, 60 evaluated)."""
    case = data / "brats" / "BRATS2012_HG0015"
    return mri_case(case / "BRATS_HG0015_FLAIR.mha", case / "BRATS_HG0015_truth.mha", work)


def brats2015_case(data: Path, work: Path) -> tuple[list[str], object]:
    """For choosing settings (never the test split): FLAIR of the training case
    brats_2013_pat0001_1, which the ``default`` weights did not see (``default-mri`` did)."""
    case = data / "brats2015-deepmedic" / "brats_2013_pat0001_1"
    return mri_case(case / "Flair_subtrMeanDivStd.nii.gz", case / "OTMultiClass.nii.gz", work)


def run_adapt(inputs: list[str], out: Path, minutes: float, extra: list[str]) -> dict:
    """Run the command as a user would; wall and CPU seconds of the child process."""
    command = [sys.executable, "-m", "napari_adaptiveclick", "adapt", *inputs, "--out", str(out),
               "--minutes", str(minutes), *extra]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    load = os.getloadavg()[1]  # over the last 5 minutes: how busy the machine was meanwhile
    print(done.stdout, done.stderr[-3000:], sep="\n", file=sys.stderr)
    return {
        "rc": done.returncode,
        "wall_s": wall,
        "cpu_s": cpu,
        "load_5min": load,
        "stdout": done.stdout,
    }


def evaluate(predictor, samples) -> dict:
    from napari_adaptiveclick.evaluation.noc import evaluate_dataset, summarize

    results = evaluate_dataset(predictor, samples, MAX_CLICKS, stop_at=STOP_AT, stats=(0.0, 1.0))
    s = summarize(results, MAX_CLICKS)
    return {k: s[k] for k in ("NoC@85", "NoC@90", "NoF@85", "NoF@90", "objects")}


def session(checkpoint: str):
    from napari_adaptiveclick.learning.evaluation_run import EvaluationSettings, make_session
    from napari_adaptiveclick.models.registry import load_model

    return make_session(load_model(checkpoint), EvaluationSettings("adapt", "", device="cpu"))


def _held_out(model: Path) -> dict:
    """What the command recorded: held-out objects, steps, before / after NoC@85."""
    from napari_adaptiveclick.models.checkpoint import read_checkpoint

    prov = read_checkpoint(model)["adaptation"]
    return {
        "objects": prov["before"]["objects"],
        "steps": prov["steps"],
        "best_step": prov["best_step"],
        "stopped": prov["stopped"],
        "NoC@85 before": prov["before"]["NoC@85"],
        "NoC@85 after": prov["after"]["NoC@85"],
    }


def brats2015_fold_case(data: Path, work: Path) -> tuple[list[str], object]:
    """For choosing settings (never the test split): FLAIR of the training case
    brats_2013_pat0005_1, the validation fold held out of the training of ``default-mri``
    (scripts/train_stage7.sh, scripts/train_stage12.sh), so unseen by the weights it adapts."""
    case = data / "brats2015-deepmedic" / "brats_2013_pat0005_1"
    return mri_case(case / "Flair_subtrMeanDivStd.nii.gz", case / "OTMultiClass.nii.gz", work)


CASES = {
    "sstem": sstem_case,
    "brats": brats_case,
    "brats2015": brats2015_case,
    "brats2015-fold": brats2015_fold_case,
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--case", nargs="+", choices=tuple(CASES), default=["sstem", "brats"])
    p.add_argument("--adapt-args", default="", help="more options for adapt, e.g. '--lr 3e-5'")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--no-forgetting", action="store_true", help="skip the cross-case rows")
    args = p.parse_args()
    from napari_adaptiveclick.evaluation.baseline import RandomWalkerPredictor
    from napari_adaptiveclick.models.registry import default_for_image

    figures, samples, models = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench_adapt_") as tmp:
        work = Path(tmp)
        for name in args.case:
            inputs, samples[name] = CASES[name](args.data, work)
            model = work / f"{name}_adapted.pt"
            run = run_adapt(inputs, model, args.minutes, args.adapt_args.split())
            shipped = default_for_image(inputs[inputs.index("--image") + 1])  # as adapt picks
            print(f"{name}: shipped weights {shipped}", file=sys.stderr)
            rows = {"default weights": evaluate(session(shipped), samples[name])}
            if model.is_file():
                models[name] = model
                rows["adapted"] = evaluate(session(str(model)), samples[name])
                run["held_out"] = _held_out(model)
            rows["random walker"] = evaluate(RandomWalkerPredictor(), samples[name])
            figures[name] = {"adapt": run, "rows": rows}
        if not args.no_forgetting:  # each adapted model on the other cases' objects
            for name, model in models.items():
                for other in samples.keys() - {name}:
                    row = f"adapted on {name} (forgetting)"
                    figures[other]["rows"][row] = evaluate(session(str(model)), samples[other])
    for name, result in figures.items():
        run, rows = result["adapt"], result["rows"]
        objects = rows["default weights"]["objects"]
        print(f"\n{name}: {objects} evaluated objects; adapt rc {run['rc']}, "
              f"{run['wall_s'] / 60:.1f} min wall, {run['cpu_s'] / 60:.1f} CPU-min, load {run['load_5min']:.1f}")  # fmt: skip
        if "held_out" in run:
            print("held out by the command:", run["held_out"])
        print("| predictor | NoC@85 | NoC@90 | NoF@85 | NoF@90 |\n|---|---|---|---|---|")
        for row, f in rows.items():
            print(
                f"| {row} | {f['NoC@85']:.2f} | {f['NoC@90']:.2f} | {f['NoF@85']} | {f['NoF@90']} |"
            )
        if "adapted" in rows:
            change = rows["adapted"]["NoC@85"] / rows["default weights"]["NoC@85"] - 1
            print(f"NoC@85 change vs the default weights: {100 * change:+.0f} %")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
