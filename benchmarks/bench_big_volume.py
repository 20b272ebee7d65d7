"""Big volumes (issue #14): a 1000 x 4096 x 4096 uint8 volume (16 GiB) annotated lazily.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_big_volume.py --store /tmp/big.zarr
    xvfb-run -a env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_big_volume.py \
        --store /tmp/big.zarr --only widget

The volume is a chunked zarr store (chunks of 1 x 1024 x 1024, as bioformats2raw writes
planes; zstd, the zarr default), written once (``--store``; kept for the next run) from a
synthetic EM-like 1024 x 1024 tile: dark discs (membrane-bounded "cells") on noise, tiled
4 x 4 in each plane and shifted by a fraction of a pixel a plane, so objects run through
the planes. Each
scenario runs in its own subprocess (its peak RSS, VmHWM, is its own, the model included):

- ``slice``: the reference, the same clicks on a 1024 x 1024 slice in memory (the tile the
  big plane's clicks fall in: identical pixels around each click);
- ``api``: :class:`VolumeAnnotator` on the lazy store with labels in a zarr store on disk:
  start time (open + intensity sample + annotator; model load apart), per-click latency,
  propagation time per slice, peak RSS;
- ``widget``: headless napari: the store opened with this plugin's reader, *Start* (labels
  above 1 GiB go to disk), the same clicks through the controller, each timed until its
  labels are written, a propagation, peak RSS;
- ``segment``: ``napari-adaptiveclick segment --image big.zarr --clicks clicks.csv --out
  labels.zarr``: wall time and peak RSS of the command.

Every scenario uses the shipped default weights on the CPU and the same click sequence
(per object: a positive click at its centre, a second positive, one negative outside).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _qt import wait_until

ROOT = Path(__file__).resolve().parents[1]
TILE = 1024
CENTRES = [(200, 260), (520, 700), (760, 330), (400, 520)]  # discs of the tile (row, col)
RADIUS = 40
ORIGIN = 1024  # the big plane's clicks fall in its tile at (1024, 1024)


def origin(size: int) -> int:
    """Where the clicks' tile starts: (1024, 1024) on the big plane, (0, 0) on a plane of
    one tile (``--size 1024``: the widget's reference run on a 1024 x 1024 store)."""
    return min(ORIGIN, size - TILE)


def tile() -> np.ndarray:
    """The synthetic EM-like tile: dark discs with a bright rim on noise, uint8."""
    rng = np.random.default_rng(0)
    image = rng.normal(150, 18, (TILE, TILE))
    yy, xx = np.mgrid[:TILE, :TILE]
    for r, c in [*CENTRES, *rng.uniform(60, TILE - 60, (30, 2))]:
        d2 = (yy - r) ** 2 + (xx - c) ** 2
        image[d2 < RADIUS**2] -= 60
        image[(d2 >= RADIUS**2) & (d2 < (RADIUS + 4) ** 2)] += 40
    return np.clip(image, 0, 255).astype(np.uint8)


def shift(plane: int) -> tuple[int, int]:
    """How far the tile is rolled on ``plane``: a quarter / half pixel a plane."""
    return (plane // 4) % TILE, (plane // 2) % TILE


def plane_image(base: np.ndarray, plane: int, size: int) -> np.ndarray:
    rolled = np.roll(base, shift(plane), axis=(0, 1))
    reps = -(-size // TILE)
    return np.tile(rolled, (reps, reps))[:size, :size]


def clicks(plane: int, origin: int) -> list[tuple[float, float, bool]]:
    """(row, col, positive) for the objects of ``plane``, in a slice starting at ``origin``."""
    dr, dc = shift(plane)
    out = []
    for r, c in CENTRES:
        r, c = (r + dr) % TILE + origin, (c + dc) % TILE + origin
        out += [(r, c, True), (r + 10, c - 10, True), (r + RADIUS + 25, c, False)]
    return out


def make_store(path: Path, planes: int, size: int) -> float:
    import zarr

    if path.exists():
        return 0.0
    start = time.perf_counter()
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    z = zarr.create_array(
        str(tmp), shape=(planes, size, size), chunks=(1, 1024, 1024), dtype=np.uint8
    )
    base = tile()
    for p in range(planes):
        z[p] = plane_image(base, p, size)
        if p % 50 == 0:
            print(f"\rwriting plane {p}/{planes}", end="", file=sys.stderr)
    os.replace(tmp, path)
    print(file=sys.stderr)
    return time.perf_counter() - start


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------- scenarios
def _session():
    from napari_adaptiveclick.interactive.session import ClickSession

    t = time.perf_counter()
    session = ClickSession(None, "cpu")
    session.warmup()
    return session, time.perf_counter() - t


def _click_all(annotator, plane, points) -> list[float]:
    """Each click timed; a new object every three clicks."""
    times = []
    for i, (row, col, positive) in enumerate(points):
        if i and i % 3 == 0:
            annotator.commit()
        start = time.perf_counter()
        annotator.add_click(plane, row, col, positive)
        times.append(time.perf_counter() - start)
    return times


def _propagate(annotator, plane, slices: int) -> dict:
    """Propagate the last object ``slices`` planes each way (no stop rule: a fixed count)."""
    from napari_adaptiveclick.volume import PropagationSettings

    settings = PropagationSettings(max_slices=slices, stop_rule=None)
    report = annotator.propagate(plane, settings)
    n = max(1, len(report.written))
    return {"slices": len(report.written), "seconds_per_slice": report.seconds / n}


def run_slice(args) -> dict:
    from napari_adaptiveclick.volume import VolumeAnnotator

    session, load = _session()
    base = tile()
    stack = np.stack([plane_image(base, p, TILE) for p in range(args.plane - 8, args.plane + 9)])
    labels = np.zeros(stack.shape, np.uint32)
    annotator = VolumeAnnotator(stack, labels, session)
    times = _click_all(annotator, 8, clicks(args.plane, 0))
    prop = _propagate(annotator, 8, 8)
    return {"model_load_s": load, "click_s": times, "propagation": prop, "peak_mib": peak_mib()}


def run_api(args) -> dict:
    from napari_adaptiveclick.io import stores
    from napari_adaptiveclick.io.images import read_image
    from napari_adaptiveclick.volume import VolumeAnnotator

    session, load = _session()
    start = time.perf_counter()
    volume = read_image(args.store)
    out = Path(tempfile.mkdtemp(prefix="bench-labels-")) / "labels.zarr"
    labels = stores.create_labels_store(out, volume.spatial_shape, np.uint32, like=volume)
    annotator = VolumeAnnotator(volume.data, labels, session)
    startup = time.perf_counter() - start
    paired = _paired_clicks(annotator, session, args.plane)
    times = _click_all(annotator, args.plane, clicks(args.plane, ORIGIN))
    prop = _propagate(annotator, args.plane, 8)
    shutil.rmtree(out.parent, ignore_errors=True)
    return {
        "model_load_s": load,
        "start_s": startup,
        "click_s": times,
        "paired": paired,
        "propagation": prop,
        "peak_mib": peak_mib(),
    }


def _paired_clicks(big, session, plane: int) -> dict:
    """The same clicks alternately on the big plane and on a 1024 x 1024 slice in memory (a
    second annotator on the same model), so that a busy machine slows both alike: the ratio
    of the median click times. The big annotator's clicks are undone after."""
    from napari_adaptiveclick.interactive.session import ClickSession
    from napari_adaptiveclick.volume import VolumeAnnotator

    stack = np.stack([plane_image(tile(), p, TILE) for p in range(plane - 1, plane + 2)])
    small = VolumeAnnotator(
        stack, np.zeros(stack.shape, np.uint32), ClickSession(session.model, "cpu")
    )
    on_big, on_small = [], []
    for i, ((r, c, p), (r0, c0, _)) in enumerate(
        zip(clicks(plane, ORIGIN), clicks(plane, 0), strict=True)
    ):
        if i and i % 3 == 0:
            big.commit(), small.commit()
        on_small.append(_timed(small.add_click, 1, r0, c0, p))
        on_big.append(_timed(big.add_click, plane, r, c, p))
    while big.undo():
        pass
    return {
        "big_s": on_big,
        "slice_s": on_small,
        "ratio": float(np.median(on_big) / np.median(on_small)),
    }


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def run_widget(args) -> dict:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_adaptiveclick._napari.loading import AnnotationSettings
    from napari_adaptiveclick._napari.widget import AdaptiveClickWidget

    viewer = napari.Viewer(show=False)
    app = QApplication.instance()
    start = time.perf_counter()
    (image,) = viewer.open(str(args.store), plugin="napari-adaptiveclick")
    widget = AdaptiveClickWidget(viewer)
    controller = widget.controller
    controller.start(image, None, AnnotationSettings(device="cpu"))
    wait_until(lambda: controller.ready, what="Start")
    startup = time.perf_counter() - start

    def settle():
        wait_until(lambda: not controller.busy)
        app.processEvents()

    times = []
    for i, (row, col, positive) in enumerate(clicks(args.plane, origin(args.size))):
        if i and i % 3 == 0:
            controller.commit()
            settle()
        t = time.perf_counter()
        controller.add_click(args.plane, row, col, positive)
        app.processEvents()
        settle()
        times.append(time.perf_counter() - t)
    from napari_adaptiveclick.volume import PropagationSettings

    controller.go_to_plane(args.plane)
    controller.propagation_settings = PropagationSettings(max_slices=8, stop_rule=None)
    t = time.perf_counter()
    controller.propagate()
    settle()
    report = controller.last_report
    written = len(report.written) if report else 0
    store = controller.labels.metadata.get("adaptiveclick_store")
    result = {
        "start_s": startup,
        "click_s": times,
        "propagation": {
            "slices": written,
            "seconds_per_slice": (time.perf_counter() - t) / max(1, written),
        },
        "labels_on_disk": store,
        "peak_mib": peak_mib(),
    }
    controller.stop()
    viewer.close()
    if store:
        shutil.rmtree(store, ignore_errors=True)
    return result


def run_segment(args) -> dict:
    import resource

    from napari_adaptiveclick.volume.clicks_file import write_click_records
    from napari_adaptiveclick.volume.records import ClickRecord

    folder = Path(tempfile.mkdtemp(prefix="bench-segment-"))
    records = [
        ClickRecord(args.plane, r, c, p, object_id=i // 3 + 1, order=i)
        for i, (r, c, p) in enumerate(clicks(args.plane, ORIGIN))
    ]
    write_click_records(folder / "clicks.csv", records)
    command = [
        sys.executable,
        "-m",
        "napari_adaptiveclick",
        "segment",
        "--image",
        str(args.store),
        "--clicks",
        str(folder / "clicks.csv"),
        "--out",
        str(folder / "labels.zarr"),
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    shutil.rmtree(folder, ignore_errors=True)
    return {"wall_s": seconds, "clicks": len(records), "peak_mib": peak}


SCENARIOS = {"slice": run_slice, "api": run_api, "widget": run_widget, "segment": run_segment}


def summary(name: str, result: dict) -> str:
    parts = [f"{name:8s}"]
    if "click_s" in result:
        parts.append(f"click median {np.median(result['click_s']) * 1000:.0f} ms")
    if "start_s" in result:
        parts.append(f"start {result['start_s']:.2f} s")
    if "propagation" in result:
        p = result["propagation"]
        parts.append(f"propagation {p['seconds_per_slice'] * 1000:.0f} ms/slice ({p['slices']})")
    if "paired" in result:
        parts.append(f"paired with the slice: {result['paired']['ratio']:.2f}x")
    if "wall_s" in result:
        parts.append(f"wall {result['wall_s']:.1f} s for {result['clicks']} clicks")
    parts.append(f"peak RSS {result['peak_mib']:.0f} MiB")
    return ", ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, default=Path(tempfile.gettempdir()) / "big.zarr")
    parser.add_argument("--planes", type=int, default=1000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--plane", type=int, default=500)
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.scenario:  # the child process
        print(json.dumps(SCENARIOS[args.scenario](args)))
        return 0
    written = make_store(args.store, args.planes, args.size)
    if written:
        print(f"wrote {args.store} in {written:.0f} s")
    results = {}
    for name in args.only or list(SCENARIOS):
        command = [
            sys.executable,
            __file__,
            "--scenario",
            name,
            "--store",
            str(args.store),
            "--plane",
            str(args.plane),
            "--size",
            str(args.size),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(f"{name}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(summary(name, results[name]))
    if "slice" in results:
        ref = np.median(results["slice"]["click_s"])
        for name in ("api", "widget"):
            if name in results:
                print(
                    f"{name}: per-click latency {np.median(results[name]['click_s']) / ref:.2f}x the slice's"
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
