"""``python -m napari_adaptiveclick demo``: napari with the sample EM stack, the widget and
the default model. ``--headless --out DIR`` plays a scripted click session through the
widget's controller (each click as the click layer hands a point on), propagates the last
object, writes ``labels.tif``, ``clicks.csv`` and ``screenshot.png`` into DIR and prints
each step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from napari_adaptiveclick.io.labels import write_labels
from napari_adaptiveclick.volume.clicks_file import read_click_records

OUTPUTS = ("labels.tif", "clicks.csv", "screenshot.png")  # what --headless writes to --out


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="napari_adaptiveclick demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--headless", action="store_true", help="play the scripted session without showing a window"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for labels.tif, clicks.csv and screenshot.png (with --headless)",
    )
    parser.add_argument(
        "--model",
        default="default",
        help="'default' (shipped tiny weights), a registry name or a checkpoint",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace those files where --out holds them"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for each step (headless)"
    )
    args = parser.parse_args(argv)
    if args.headless and args.out is None:
        parser.error("--headless needs --out DIR")
    held = [name for name in OUTPUTS if args.out is not None and (args.out / name).exists()]
    if held and not args.overwrite:
        parser.error(
            f"{args.out} already holds {', '.join(held)}; pass --overwrite to replace them, "
            "or choose another --out folder"
        )
    return args


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    """Process Qt events until ``condition()`` holds; TimeoutError after ``timeout`` s."""
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"Gave up after {timeout:.0f} s waiting for the widget.")
        QApplication.processEvents()
        time.sleep(0.005)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if (
        args.headless
        and sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        print(
            "napari needs a display (OpenGL). Run it under a virtual one:\n"
            "  xvfb-run -a python -m napari_adaptiveclick demo --headless --out DIR",
            file=sys.stderr,
        )
        return 2
    import napari

    viewer = napari.Viewer(show=not args.headless, title="AdaptiveClick demo")
    widget = open_demo(viewer, args.model, args.device)
    if not args.headless:
        napari.run()
        return 0
    try:
        return play_script(viewer, widget, args.out, args.timeout)
    finally:
        viewer.close()


def open_demo(viewer, model: str, device: str):
    """Add the sample EM stack and the widget (from the manifest) to ``viewer``; start it."""
    from napari_adaptiveclick._napari.sample_data import em_sample

    data, kwargs, _ = em_sample()[0]
    image = viewer.add_image(data, **kwargs)
    _, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
    widget.model_combo.setCurrentText(model)
    widget.device_combo.setCurrentText(device)
    widget.image_combo.setCurrentText(image.name)
    widget.start()
    return widget


def play_script(viewer, widget, out: Path, timeout: float) -> int:
    """The scripted session of ``sample_data/em_stack_clicks.csv``; see the module docstring."""
    from napari_adaptiveclick._napari.layers import GEOMETRY_KEY
    from napari_adaptiveclick._napari.sample_data import EM_CLICKS_FILE

    controller = widget.controller
    start = time.perf_counter()
    wait_until(lambda: not controller.busy, timeout)
    if not controller.ready:
        print(f"The model did not load: {widget.status.text()}", file=sys.stderr)
        return 1
    print(
        f"model '{controller.settings.model}' loaded on {controller.device} in {time.perf_counter() - start:.1f} s"
    )
    records = read_click_records(EM_CLICKS_FILE)
    for i, record in enumerate(records):
        if record.object_id != controller.object_id and i > 0:
            controller.commit()
            wait_until(lambda: not controller.busy, timeout)
        controller.go_to_plane(record.plane)
        controller.add_click(record.plane, record.row, record.col, record.positive)
        wait_until(lambda: not controller.busy, timeout)
        outcome = controller.last_outcome
        sign = "+" if record.positive else "-"
        print(
            f"click {i + 1}: plane {record.plane} (row {record.row:.0f}, col {record.col:.0f}) {sign} -> "
            f"object {controller.object_id}: {outcome.area} px in {outcome.seconds * 1000:.0f} ms"
        )
    controller.propagate()
    wait_until(lambda: not controller.busy, timeout)
    report = controller.last_report
    stops = "; ".join(f"{'up' if d > 0 else 'down'}: {why}" for d, why in report.stops.items())
    print(
        f"propagated object {controller.object_id} from plane {report.source} to planes {sorted(report.written)} in {report.seconds:.1f} s ({stops})"
    )
    print("least sure planes: " + ", ".join(f"{p} ({u:.2f})" for p, u in report.least_sure))
    controller.commit()
    wait_until(lambda: not controller.busy, timeout)
    out.mkdir(parents=True, exist_ok=True)
    labels = controller.labels
    like = controller.image.metadata.get(GEOMETRY_KEY)
    write_labels(out / "labels.tif", labels.data, like, overwrite=True)
    controller.save_clicks(out / "clicks.csv")
    controller.go_to_plane(records[-1].plane)
    viewer.window.resize(1400, 900)
    viewer.reset_view()
    viewer.screenshot(str(out / "screenshot.png"), canvas_only=False)
    objects = sorted(int(v) for v in set(labels.data.ravel().tolist()) - {0})
    print(
        f"objects {objects}; labelled voxels per object: {[int((labels.data == v).sum()) for v in objects]}"
    )
    print(
        f"wrote {out / 'labels.tif'}, {out / 'clicks.csv'}, {out / 'screenshot.png'} in {time.perf_counter() - start:.1f} s"
    )
    controller.stop()
    return 0
