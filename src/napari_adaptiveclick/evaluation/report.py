"""What an evaluation run leaves on disk, and runs side by side.

- ``per_object.csv`` (:func:`write_per_object`): name, group, area, IoU after each click,
  NoC@85, NoC@90.
- ``miou_curve.png`` (:func:`plot_miou_curve`): mIoU against the number of clicks.
- ``metrics.json`` read back (:func:`load_run`) and printed as a table, one column per run,
  with the paper's figures for their datasets (:func:`format_comparison`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_adaptiveclick.evaluation.noc import PAPER_RESULTS, ObjectResult
from napari_adaptiveclick.interactive.focus import ZOOM_MIN_SIZE

SHOWN_MIOU_CLICKS = (1, 5, 10, 20)


class EvaluationError(Exception):
    """Bad input to the evaluation (dataset, checkpoint, model or run folder)."""


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
        ["protocol", *(describe_protocol(m.get("protocol", {})) for _, m in runs)],
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


def describe_protocol(protocol: dict[str, Any]) -> str:
    """One short line: the protocol's name, first-click window, zoom-in (with its smallest
    crop when it is not the release's 200 px), flips and the first prompt when it is not a
    click."""
    if not protocol.get("zoom_in") and protocol.get("name") is None:
        return "baseline"
    window = protocol.get("first_click_window")
    first = (
        f"1st {window}px{'+grow' if protocol.get('first_click_grow') else ''}"
        if window
        else "1st whole"
    )
    parts = [protocol.get("name") or "?", first]
    size = protocol.get("zoom_min_size")
    zoom = "zoom" if size in (None, ZOOM_MIN_SIZE) else f"zoom>={size}px"
    parts.append(zoom if protocol.get("zoom_in") else "no zoom")
    parts.append("flip" if protocol.get("flip_tta") else "no flip")
    if protocol.get("square_crops") is False and protocol.get("name") == "plugin":
        parts.append("stretched")
    if protocol.get("first_prompt", "click") != "click":
        parts.append(f"from a {protocol['first_prompt']}")
    if protocol.get("first_prompt") == "box":  # runs before the box limit had none
        margin = protocol.get("box_margin")
        parts.append("unlimited" if margin is None else f"limit +{margin:g}")
    return " ".join(parts)


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


#: Written into an evaluation folder whose checkpoint training has since replaced.
STALE_NOTE = "STALE.txt"


def load_run(path: str | Path) -> tuple[str, dict[str, Any]]:
    """(label, metrics) from a run folder or its metrics.json; the label is the folder name,
    with " (stale)" when training.finetune noted that the run was trained further since."""
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
    stale = (file.parent / STALE_NOTE).exists()
    return file.parent.name + " (stale)" * stale, metrics
