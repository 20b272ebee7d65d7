"""Napari plugin benchmarks: Qt event-loop blocking during predictions, click latency and
propagation time per slice, for a model (default ``tiny``) on a 1024 x 1024 EM stack.

The stack is ssTEM stack 1 (20 x 1024 x 1024) read from ``$ADAPTIVECLICK_DATA`` (default
``../shared/data``) when present, else the bundled synthetic EM sample upsampled to
1024 x 1024. The event loop is probed with a 2 ms QTimer: a gap between two ticks longer than
that is time the loop was blocked (rendering and our slots included). Clicks are added to
the click layer as a user would; propagation runs through the widget (progress, refresh).

Run under a display: ``xvfb-run -a .venv/bin/python benchmarks/bench_napari.py [--hidden]``
(``--hidden``: no canvas drawing, i.e. the plugin's own cost on the Qt thread; ``--threads N``
fixes torch's CPU threads; ``--skip-gui``: propagation only).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from _qt import wait_until

ROOT = Path(__file__).resolve().parents[1]


def load_stack() -> tuple[np.ndarray, tuple[float, float, float], str]:
    """(planes, 1024, 1024) uint8 EM stack, its spacing and a description."""
    import tifffile

    data = Path(os.environ.get("ADAPTIVECLICK_DATA", ROOT / ".." / "shared" / "data"))
    raw = data / "sstem-drosophila-vnc" / "stack1" / "raw"
    if raw.is_dir():
        stack = np.stack([tifffile.imread(p) for p in sorted(raw.glob("*.tif"))])
        return stack, (50.0, 4.6, 4.6), f"ssTEM stack 1 {stack.shape}"
    from napari_adaptiveclick._napari.sample_data import em_sample

    small, kwargs, _ = em_sample()[0]
    stack = np.repeat(np.repeat(small, 4, axis=1), 4, axis=2)
    return stack, (50.0, 1.15, 1.15), f"synthetic EM sample upsampled to {stack.shape}"


class LoopProbe:
    """Records the gaps between ticks of a fast QTimer (the event loop's responsiveness)."""

    def __init__(self, interval_ms: int = 2) -> None:
        from qtpy.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def measure(self, action, done, timeout: float = 900.0) -> np.ndarray:
        """Run ``action()``, process events until ``done()``; returns the blocked times (s)."""
        from qtpy.QtWidgets import QApplication

        app = QApplication.instance()
        self.ticks = [time.perf_counter()]
        self.timer.start()
        action()
        wait_until(done, timeout)
        app.processEvents()
        self.timer.stop()
        return np.maximum(np.diff(self.ticks) - self.interval, 0.0)


def summary(name: str, blocked: np.ndarray) -> str:
    ms = blocked * 1000
    return (
        f"| {name} | {ms.max():.0f} | {np.percentile(ms, 99):.0f} | {np.median(ms):.1f} | "
        f"{int((ms > 50).sum())} |"
    )


SLOTS = {  # the controller's Qt-thread slots, by the part that has them
    "controller": ("_on_loaded",),
    "click_input": ("_on_points_data",),
    "actions": ("_on_click_done", "_on_propagated_slice"),
    "jobs": ("_on_worker_finished",),
}


def time_slots(controller) -> dict[str, list[float]]:
    """Wrap the controller's Qt-thread slots to record how long each call takes (s); call it
    before Start (the parts connect these slots when the model is loaded or a job starts)."""
    times: dict[str, list[float]] = {name: [] for names in SLOTS.values() for name in names}

    def timed(name, method):
        def wrapper(*args):
            start = time.perf_counter()
            try:
                return method(*args)
            finally:
                times[name].append(time.perf_counter() - start)

        return wrapper

    for part_name, names in SLOTS.items():
        part = controller if part_name == "controller" else getattr(controller, part_name)
        for name in names:
            setattr(part, name, timed(name, getattr(part, name)))
    return times


def gui_benchmark(stack, spacing, model: str, clicks: int, slices: int, show: bool) -> None:
    import napari

    from napari_adaptiveclick.volume import PropagationSettings

    viewer = napari.Viewer(show=show)
    viewer.window.resize(1400, 900)
    image = viewer.add_image(stack, scale=spacing, name="EM")
    _, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
    widget.model_combo.setCurrentText(model)
    widget.device_combo.setCurrentText("cpu")
    widget.image_combo.setCurrentText(image.name)
    controller = widget.controller
    slot_times = time_slots(controller)
    probe = LoopProbe()
    rows = [
        summary("load model (worker)", probe.measure(widget.start, lambda: not controller.busy))
    ]
    mid = stack.shape[0] // 2
    controller.go_to_plane(mid)
    rng = np.random.default_rng(0)
    latencies, blocked = [], []
    for i in range(clicks):
        row, col = rng.uniform(200, 824, 2)
        start = time.perf_counter()
        blocked.append(
            probe.measure(
                lambda row=row, col=col, i=i: controller.add_click(
                    mid, row, col, positive=i % 3 != 2
                ),
                lambda: not controller.busy,
            )
        )
        latencies.append(time.perf_counter() - start)
    rows.append(summary(f"{clicks} clicks", np.concatenate(blocked)))
    controller.propagation_settings = PropagationSettings(
        min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0, max_slices=slices
    )
    rows.append(
        summary(
            f"propagate {slices}+{slices} slices",
            probe.measure(controller.propagate, lambda: not controller.busy),
        )
    )
    window = (
        "window shown, canvas drawn by software OpenGL" if show else "window hidden, no drawing"
    )
    print(f"\nEvent loop blocked (ms), {model} on CPU, {stack.shape}, {window}")
    print("| phase | max | p99 | median | gaps > 50 ms |\n|---|---|---|---|---|")
    print("\n".join(rows))
    slots = ", ".join(
        f"{name} max {max(t) * 1000:.0f} ms (n={len(t)})" for name, t in slot_times.items() if t
    )
    print(f"time in the plugin's Qt-thread slots: {slots}")
    median = np.median(latencies) * 1000
    print(f"click latency (point added -> labels drawn): median {median:.0f} ms, {clicks} clicks")
    controller.stop()
    viewer.close()


def propagation_benchmark(stack, model: str) -> None:
    from napari_adaptiveclick.interactive.session import ClickSession
    from napari_adaptiveclick.volume import PropagationSettings, VolumeAnnotator

    session = ClickSession(None if model == "default" else model, "cpu")
    labels = np.zeros(stack.shape, np.int32)
    annotator = VolumeAnnotator(stack, labels, session, model_name=model)
    mid = stack.shape[0] // 2
    first = annotator.add_click(mid, 512, 512)
    lenient = PropagationSettings(min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0)
    start = time.perf_counter()
    results = []
    report = annotator.propagate(mid, lenient, progress=results.append)
    wall = time.perf_counter() - start
    per_slice = np.array([r.seconds for r in results])
    print(f"\nPropagation without the GUI, {model} on CPU, {stack.shape}, {session.device}")
    print(
        f"first click: {first.seconds * 1000:.0f} ms; propagated {len(report.written)} slices in {wall:.1f} s"
    )
    print(
        f"per slice: {wall / max(len(results), 1):.2f} s wall, prediction median {np.median(per_slice):.2f} s "
        f"(min {per_slice.min():.2f}, max {per_slice.max():.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--clicks", type=int, default=6)
    parser.add_argument(
        "--slices", type=int, default=3, help="propagation slices each way in the GUI run"
    )
    parser.add_argument("--skip-gui", action="store_true")
    parser.add_argument(
        "--hidden", action="store_true", help="do not show the window: plugin cost without drawing"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No default weights")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    stack, spacing, description = load_stack()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"stack: {description}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    propagation_benchmark(stack, args.model)
    if not args.skip_gui:
        gui_benchmark(stack, spacing, args.model, args.clicks, args.slices, not args.hidden)


if __name__ == "__main__":
    main()
