"""Does a click cost more on a bigger image? Click-to-screen latency, Start time and peak
memory for 30 clicks in napari on a 20-plane and a 500-plane 1024 x 1024 volume and on an
8000 x 8000 image (issue #13, item 8).

    xvfb-run -a env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scaling.py

Each scenario runs in its own subprocess (its peak memory is its own) with the shipped
default weights on the CPU, through the widget as a user would: *Start* with a new Labels
layer, then 30 clicks on the middle plane, each added to the click layer and timed until the
Labels layer shows the mask (the edit is drawn: the canvas's next draw after the labels were
refreshed; with ``--hidden`` the refresh itself). The clicks are the same for every scenario
(one object, two positive then one negative, on the same image content: the 8000 x 8000
image tiles the 1024 x 1024 slice and is clicked on the tile at (3072, 3072)). Images: ssTEM
stack 1 from ``$ADAPTIVECLICK_DATA`` (default ``../shared/data``) tiled along the planes,
else a synthetic EM-like slice. Peak memory is the process's VmHWM after Start and over the
clicks alone (reset with ``/proc/self/clear_refs`` before the first click). Autosave is on, as
for a user, in a temporary folder: the bytes it wrote per click after the first (which makes
the store) are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _qt import wait_until

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "20 x 1024 x 1024": (20, 1024),
    "500 x 1024 x 1024": (500, 1024),
    "8000 x 8000": (0, 8000),
}
TILE_ORIGIN = 3072  # where the 8000 x 8000 image is clicked: a copy of the slice starts there


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux, or not allowed: the peak then includes Start
        pass


def _stack() -> tuple[np.ndarray, str]:
    """(planes, 1024, 1024) uint8 EM planes and where they come from."""
    raw = Path(os.environ.get("ADAPTIVECLICK_DATA", ROOT / ".." / "shared" / "data"))
    raw = raw / "sstem-drosophila-vnc" / "stack1" / "raw"
    if raw.is_dir():
        import tifffile

        return np.stack([tifffile.imread(p) for p in sorted(raw.glob("*.tif"))]), "ssTEM stack 1"
    rng = np.random.default_rng(0)
    image = rng.normal(120, 20, (1024, 1024))
    yy, xx = np.mgrid[:1024, :1024]
    for r, c in rng.uniform(100, 924, (40, 2)):
        image[(yy - r) ** 2 + (xx - c) ** 2 < 35**2] -= 60
    return np.clip(image, 0, 255).astype(np.uint8)[None], "synthetic EM-like slice"


def make_image(planes: int, size: int) -> tuple[np.ndarray, str]:
    stack, source = _stack()
    if planes:
        return np.resize(stack, (planes, *stack.shape[1:])), f"{source}, tiled to {planes} planes"
    middle = stack[len(stack) // 2]
    reps = -(-size // middle.shape[0])
    return np.tile(middle, (reps, reps))[:size, :size], f"{source}, middle slice tiled"


def click_points(count: int) -> list[tuple[float, float, bool]]:
    """``count`` clicks on one object of the slice: (row, col, positive), seeded."""
    rng = np.random.default_rng(0)
    centre = np.array([512.0, 512.0])
    return [(*(centre + rng.uniform(-40, 40, 2)), i % 3 != 2) for i in range(count)]


def _folder_bytes(folder: Path | None) -> int:
    if folder is None or not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def run_one(name: str, clicks: int, show: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-scaling-autosave-") as folder:
        os.environ["ADAPTIVECLICK_AUTOSAVE_DIR"] = folder  # not the user's cache
        return _run_one(name, clicks, show)


def _run_one(name: str, clicks: int, show: bool) -> dict:
    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    planes, size = SCENARIOS[name]
    image_data, source = make_image(planes, size)
    viewer = napari.Viewer(show=show)
    viewer.window.resize(1400, 900)
    image = viewer.add_image(image_data, name="EM")
    _, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
    widget.model_combo.setCurrentText("default")
    widget.device_combo.setCurrentText("cpu")
    widget.image_combo.setCurrentText(image.name)
    controller = widget.controller
    app = QApplication.instance()
    drawn = []
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    canvas.events.draw.connect(lambda _event: drawn.append(time.perf_counter()))
    rss_before = _status_mib("VmRSS")
    start = time.perf_counter()
    widget.start()
    wait_until(lambda: controller.ready and not controller.busy)
    app.processEvents()
    start_s = time.perf_counter() - start
    peak_start = _status_mib("VmHWM")
    plane = len(image_data) // 2 if planes else 0
    controller.go_to_plane(plane)
    wait_until(lambda: not controller.busy)
    offset = 0.0 if planes else float(TILE_ORIGIN)
    rss_clicks = _status_mib("VmRSS")
    _reset_peak()
    latencies, predicted, edits, threads = [], [], [], set()
    predict = controller.annotator.predict_click

    def predict_click(*args):  # records the worker's torch threads, for the report
        threads.add(torch.get_num_threads())
        return predict(*args)

    controller.annotator.predict_click = predict_click
    controller.actions.edited.connect(lambda: edits.append(time.perf_counter()))
    store_bytes = []  # the autosave store's size after the first click, and at the end
    for row, col, positive in click_points(clicks):
        drawn.clear()
        edits.clear()
        begin = time.perf_counter()
        controller.add_click(plane, row + offset, col + offset, positive=positive)
        wait_until(lambda: not controller.busy and edits)
        shown = edits[-1]  # the labels were refreshed (the controller's slot ran first)
        if show:
            wait_until(lambda: any(t >= edits[-1] for t in drawn), timeout=30)
            shown = next(t for t in drawn if t >= edits[-1])
        latencies.append(shown - begin)
        predicted.append(controller.last_outcome.seconds)
        if len(latencies) == 1:
            wait_until(lambda: not controller.recovery.pending)
            store_bytes.append(_folder_bytes(controller.recovery.folder))
    wait_until(lambda: not controller.recovery.pending)
    store_bytes.append(_folder_bytes(controller.recovery.folder))
    area = controller.last_outcome.area
    result = {
        "scenario": name,
        "image": source,
        "labels_dtype": str(controller.labels.data.dtype),
        "start_s": start_s,
        "first_ms": latencies[0] * 1000,
        "median_ms": float(np.median(latencies[1:])) * 1000,
        "p90_ms": float(np.percentile(latencies[1:], 90)) * 1000,
        "predict_median_ms": float(np.median(predicted[1:])) * 1000,
        "area": area,
        "rss_before_start_mib": rss_before,
        "peak_after_start_mib": peak_start,
        "rss_before_clicks_mib": rss_clicks,
        "peak_during_clicks_mib": _status_mib("VmHWM"),
        "rss_after_clicks_mib": _status_mib("VmRSS"),
        "threads": sorted(threads),
        "autosave_first_kib": store_bytes[0] / 1024,
        "autosave_per_click_kib": (store_bytes[1] - store_bytes[0]) / max(clicks - 1, 1) / 1024,
    }
    controller.stop()
    viewer.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--hidden", action="store_true", help="no window: time to the refresh")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No default weights")
    if args.one:
        print(json.dumps(run_one(args.one, args.clicks, not args.hidden)))
        return 0
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"{os.cpu_count()} CPUs, load average {load}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}"
    )
    rows = []
    for name in args.scenarios:
        command = [sys.executable, __file__, "--one", name, "--clicks", str(args.clicks)]
        out = subprocess.run(command + ["--hidden"] * args.hidden, capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-3000:])
            return out.returncode
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["median_ms"]
    print(
        "| image | labels | Start (s) | first click (ms) | median click-to-screen (ms) | p90 (ms) "
        "| ratio to first row | prediction median (ms) | peak RSS after Start (MiB) "
        "| peak RSS over the clicks (MiB) | RSS growth over the clicks (MiB) "
        "| autosave: first click, then per click (KiB) |"
    )
    print("|---" * 12 + "|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['labels_dtype']} | {r['start_s']:.1f} | {r['first_ms']:.0f} "
            f"| {r['median_ms']:.0f} | {r['p90_ms']:.0f} | {r['median_ms'] / base:.2f} "
            f"| {r['predict_median_ms']:.0f} | {r['peak_after_start_mib']:.0f} "
            f"| {r['peak_during_clicks_mib']:.0f} "
            f"| {r['rss_after_clicks_mib'] - r['rss_before_clicks_mib']:.0f} "
            f"| {r['autosave_first_kib']:.0f}, {r['autosave_per_click_kib']:.1f} |"
        )
    print(
        f"images: {rows[0]['image']}; torch threads {rows[0]['threads']}; final areas "
        + ", ".join(str(r["area"]) for r in rows)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
