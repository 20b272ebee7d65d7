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
and a message.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick.evaluation.noc import (
    PAPER_RESULTS,
    ObjectResult,
    Predictor,
    evaluate_dataset,
    summarize,
)
from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.models.registry import model_names
from training.datasets import DATASET_NAMES, DatasetError, ObjectDataset, build_dataset

RANDOM_WALKER = "random_walker"
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
}
SHOWN_MIOU_CLICKS = (1, 5, 10, 20)


class EvaluationError(Exception):
    """Bad input to the evaluation (dataset, checkpoint, model or run folder)."""


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
    data = p.add_argument_group("dataset options (passed to training.datasets.build_dataset)")
    data.add_argument("--kind", help="sstem: mitochondria, cells or synapses")
    data.add_argument("--target", help="brats: wt, tc or et")
    data.add_argument("--modality", help="brats: flair, t1, t1ce or t2")
    data.add_argument("--object-mode", help="brats: 'slice' (one object per slice) or 'components'")
    data.add_argument("--labels", type=_int_list, help="oaizib: label values, e.g. 1,2")
    data.add_argument("--split-file", help='oaizib/folder: JSON {"train": [...], "test": [...]}')
    data.add_argument("--test-fraction", type=float, help="oaizib/folder: test share of files")
    data.add_argument("--axis", type=int, help="slicing axis of 3D volumes (napari order)")
    data.add_argument("--min-area", type=int, help="drop objects with fewer pixels")
    p.add_argument("--checkpoint", help="checkpoint path, or 'default' for the shipped weights")
    p.add_argument(
        "--model",
        help=f"architecture the checkpoint must hold ({', '.join(model_names())}; default: read from "
        f"the checkpoint), or '{RANDOM_WALKER}' for the non-learned baseline",
    )
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--stop-at", type=float, help="stop clicking an object at this IoU (faster)")
    p.add_argument("--objects", type=int, help="evaluate a random subset of N objects")
    p.add_argument("--seed", type=int, default=0, help="seed of the --objects subset")
    p.add_argument("--no-zoom-in", action="store_true", help="no zoom-in focus crop")
    p.add_argument(
        "--no-flip", action="store_true", help="no horizontal-flip test-time augmentation"
    )
    p.add_argument(
        "--first-click-window",
        type=lambda v: v if v == "auto" else int(v),
        help="N or 'auto': the first click sees an N-pixel window around it (default: the whole "
        "image, as the release's protocol does)",
    )
    p.add_argument(
        "--no-first-click-grow",
        action="store_true",
        help="keep the first-click window even when the first mask touches its edge",
    )
    p.add_argument(
        "--zoom-min-size",
        type=int,
        default=200,
        help="smallest side of the zoom-in crop in pixels (default 200, the release's)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="output folder")
    p.add_argument("--compare", nargs="+", metavar="RUN", help="print runs side by side and exit")
    return p


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
    if args.max_clicks < 1:
        parser.error("--max-clicks must be at least 1")
    if args.objects is not None and args.objects < 1:
        parser.error("--objects must be at least 1")
    if args.stop_at is not None and not 0.0 < args.stop_at <= 1.0:
        parser.error("--stop-at must be an IoU in (0, 1]")
    return args


def load_samples(args: argparse.Namespace) -> tuple[ObjectDataset, dict[str, Any]]:
    """The dataset split of ``args``, reduced to ``--objects`` random objects if asked, and
    the options passed to ``build_dataset``."""
    options = {
        key: getattr(args, flag)
        for flag, key in DATASET_FLAGS.items()
        if getattr(args, flag) is not None
    }
    try:
        samples = build_dataset(args.dataset, args.data, args.split, **options)
    except DatasetError as err:
        raise EvaluationError(str(err)) from err
    if args.objects is not None:
        samples = samples.random_subset(args.objects, seed=args.seed)
    return samples, options


def build_predictor(args: argparse.Namespace) -> tuple[Predictor, dict[str, Any]]:
    """The predictor ``args`` ask for, and what to record about it in metrics.json."""
    import napari_adaptiveclick

    versions = {"napari_adaptiveclick": napari_adaptiveclick.__version__, "numpy": np.__version__}
    if args.model == RANDOM_WALKER:
        import skimage

        from napari_adaptiveclick.evaluation.baseline import RandomWalkerPredictor

        versions["scikit-image"] = skimage.__version__
        info = {"model": RANDOM_WALKER, "checkpoint": None, "device": "cpu", "versions": versions}
        return RandomWalkerPredictor(), info

    import torch

    from napari_adaptiveclick.interactive.session import ClickSession
    from napari_adaptiveclick.models.checkpoint import CheckpointError
    from napari_adaptiveclick.models.registry import CONFIGS, build_model

    if args.model is not None and args.model not in CONFIGS:
        raise EvaluationError(
            f"Unknown model {args.model!r}; choose one of {', '.join(sorted(CONFIGS))} or {RANDOM_WALKER}."
        )
    try:
        model = build_model(args.model, args.checkpoint)
    except (CheckpointError, OSError) as err:
        raise EvaluationError(f"Cannot load checkpoint {args.checkpoint}: {err}") from err
    try:
        session = ClickSession(
            model,
            device=args.device,
            zoom_in=not args.no_zoom_in,
            flip_tta=not args.no_flip,
            threshold=PREDICTION_THRESHOLD,
            first_click_window=args.first_click_window,
            first_click_grow=not args.no_first_click_grow,
            zoom_min_size=args.zoom_min_size,
        )
    except ValueError as err:  # an unusable device
        raise EvaluationError(str(err)) from err
    versions["torch"] = torch.__version__
    info = {
        "model": session.model_name,
        "checkpoint": str(args.checkpoint),
        "device": session.device,
        "versions": versions,
    }
    return session, info


def run_evaluation(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate as ``args`` (from :func:`parse_args`) say, write the outputs, print the
    table and return the metrics.json content. Raises :class:`EvaluationError` on bad input."""
    from tqdm import tqdm

    samples, options = load_samples(args)
    predictor, info = build_predictor(args)
    stop_at = args.stop_at
    with tqdm(total=len(samples), desc="objects", unit="obj", file=sys.stderr) as bar:
        results = evaluate_dataset(
            predictor,
            samples,
            max_clicks=args.max_clicks,
            threshold=PREDICTION_THRESHOLD,
            stop_at=stop_at,
            stats=(0.0, 1.0),  # samples are normalised to [0, 1] with their volume's statistics
            progress=lambda done, result: bar.update(1),
        )
    summary = summarize(results, args.max_clicks)
    timing = summary.pop("timing")
    learned = info["model"] != RANDOM_WALKER  # the baseline has no zoom-in, TTA or window
    zoom_in = learned and not args.no_zoom_in
    window = predictor.first_click_window if zoom_in else None  # used only with zoom-in
    metrics = {
        "dataset": args.dataset,
        "data": args.data,
        "split": args.split,
        "dataset_options": options,
        "selection": {"objects": args.objects, "seed": args.seed if args.objects else None},
        **info,
        "protocol": {
            "max_clicks": args.max_clicks,
            "threshold": PREDICTION_THRESHOLD,
            "stop_at": stop_at,
            "zoom_in": zoom_in,
            "zoom_min_size": args.zoom_min_size if zoom_in else None,
            "flip_tta": learned and not args.no_flip,
            # the window in pixels ("auto" resolved), and whether it may grow
            "first_click_window": window,
            "first_click_grow": window is not None and predictor.first_click_grow,
        },
        "metrics": summary,
        "timing": timing,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_per_object(out / "per_object.csv", results, args.max_clicks)
    plot_miou_curve(out / "miou_curve.png", [(info["model"], metrics)])
    print(format_comparison([(out.name, metrics)], paper=False))
    print(f"wrote metrics.json, per_object.csv and miou_curve.png to {out}", file=sys.stderr)
    return metrics


def write_per_object(path: Path, results: Sequence[ObjectResult], max_clicks: int) -> None:
    """One row per object; IoU cells after an early stop are left empty."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "name",
                "group",
                "area",
                *(f"iou_{k}" for k in range(1, max_clicks + 1)),
                "noc85",
                "noc90",
            ]
        )
        for r in results:
            ious = [f"{v:.6f}" for v in r.ious] + [""] * (max_clicks - len(r.ious))
            writer.writerow(
                [r.name, r.group, r.area, *ious, r.noc(0.85, max_clicks), r.noc(0.90, max_clicks)]
            )


def plot_miou_curve(path: Path, runs: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """mIoU against clicks for each (label, metrics) run, with the 0.85/0.90 levels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, metrics in runs:
        curve = metrics["metrics"]["mIoU"]
        axes.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
    for level in (0.85, 0.90):
        axes.axhline(level, color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="number of clicks", ylabel="mIoU", ylim=(0.0, 1.0))
    axes.set_title(f"{runs[0][1]['dataset']} [{runs[0][1]['split']}]")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)


# --- tables ---------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    cells = [list(header), *map(list, rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        first = row[0].ljust(widths[0])
        lines.append(
            "  ".join([first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))])
        )
        if n == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def _figure_rows(runs: Sequence[tuple[str, dict[str, Any]]]) -> list[list[str]]:
    def miou(metrics: dict[str, Any], k: int) -> str:
        curve = metrics["metrics"]["mIoU"]
        return f"{curve[k - 1]:.4f}" if k <= len(curve) else "-"

    rows = [
        ["model", *(m["model"] for _, m in runs)],
        ["dataset [split]", *(f"{m['dataset']} [{m['split']}]" for _, m in runs)],
        ["objects", *(str(m["metrics"]["objects"]) for _, m in runs)],
    ]
    rows += [
        [key, *(f"{m['metrics'][key]:.2f}" for _, m in runs)]
        for key in ("NoC@80", "NoC@85", "NoC@90")
    ]
    rows += [[key, *(str(m["metrics"][key]) for _, m in runs)] for key in ("NoF@85", "NoF@90")]
    rows += [[f"mIoU@{k}", *(miou(m, k) for _, m in runs)] for k in SHOWN_MIOU_CLICKS]
    rows.append(["SPC (s)", *(f"{m['timing']['seconds_per_click']:.3f}" for _, m in runs)])
    return rows


def _paper_table(dataset: str) -> str:
    rows = [[model, f"{a:.2f}", f"{b:.2f}"] for model, (a, b) in PAPER_RESULTS[dataset].items()]
    return (
        f"Paper (AdaptiveClick, TNNLS; natural-image training, all objects of the dataset), {dataset}:\n"
        + _table(["model", "NoC@85", "NoC@90"], rows)
    )


def format_comparison(runs: Sequence[tuple[str, dict[str, Any]]], paper: bool = True) -> str:
    """Runs side by side (one column per (label, metrics.json content)), then, if ``paper``,
    the paper's NoC for each of their datasets that it reports."""
    parts = [_table(["run", *(label for label, _ in runs)], _figure_rows(runs))]
    if paper:
        datasets = dict.fromkeys(m["dataset"] for _, m in runs)
        parts += [_paper_table(d) for d in datasets if d in PAPER_RESULTS]
        parts += [
            f"(no paper figures for dataset {d!r})" for d in datasets if d not in PAPER_RESULTS
        ]
    return "\n\n".join(parts)


def load_run(path: str | Path) -> tuple[str, dict[str, Any]]:
    """(label, metrics) from a run folder or its metrics.json; the label is the folder name."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    try:
        metrics = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise EvaluationError(f"Cannot read run {path}: {err}") from None
    if not (
        isinstance(metrics, dict) and {"dataset", "model", "metrics", "timing"} <= metrics.keys()
    ):
        raise EvaluationError(f"{file} is not a metrics.json written by training.evaluate.")
    return file.parent.name, metrics


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.compare:
            print(format_comparison([load_run(p) for p in args.compare]))
        else:
            run_evaluation(args)
    except EvaluationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
