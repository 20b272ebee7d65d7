"""Per-click latency and peak memory of ClickSession on a 1024 x 1024 slice with zoom-in.

    python benchmarks/bench_click.py --models tiny vit_b --clicks 12

Each model runs in its own subprocess so its peak resident memory (VmHWM) is its own. The
first click predicts on the whole slice; later clicks use the zoom-in focus crop (SPEC.md 4).
Reported: the one-off warm-up forward (``ClickSession.warmup``), the first click (whole slice)
and the median of the later clicks (zoom-in), in ms; peak RSS above the
process's footprint after imports, in MiB. Uses an ssTEM slice when ../shared/data is there,
else a synthetic EM-like image. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _slice():
    import numpy as np

    root = Path(
        os.environ.get(
            "ADAPTIVECLICK_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
        )
    )
    path = root / "sstem-drosophila-vnc" / "stack1" / "raw" / "16.tif"
    if path.is_file():
        import tifffile

        return tifffile.imread(path), "ssTEM stack1/16.tif"
    rng = np.random.default_rng(0)
    image = rng.normal(120, 20, (1024, 1024))
    yy, xx = np.mgrid[:1024, :1024]
    image[(yy - 500) ** 2 + (xx - 480) ** 2 < 40**2] -= 60
    return np.clip(image, 0, 255).astype(np.uint8), "synthetic 1024 x 1024"


def run_one(model: str, clicks: int, device: str) -> dict:
    import numpy as np
    import torch

    from napari_adaptiveclick import ClickSession

    image, source = _slice()
    session = ClickSession(model, device=device, zoom_in=True)
    base_rss = _rss_mib()
    start = time.perf_counter()
    session.warmup()
    warmup_s = time.perf_counter() - start
    session.set_image(image)
    rng = np.random.default_rng(0)
    points = [(500, 480)] + [
        (500 + rng.integers(-30, 30), 480 + rng.integers(-30, 30)) for _ in range(clicks - 1)
    ]
    times = []
    for i, (r, c) in enumerate(points):
        if i == 1 and not (session.probability > 0.5).any():
            # untrained weights may predict nothing: give the zoom-in a mask to focus on
            prob = np.zeros(image.shape, np.float32)
            prob[460:540, 440:520] = 1
            session.set_previous_mask(prob)
            session.add_click(500, 480)
        start = time.perf_counter()
        session.add_click(float(r), float(c), positive=i % 4 != 3)
        times.append(time.perf_counter() - start)
    return {
        "model": model,
        "weights": "default"
        if model == "tiny" and session.config.name == "tiny"
        else "random init",
        "input_size": session.config.input_size,
        "params_m": sum(p.numel() for p in session.model.parameters()) / 1e6,
        "warmup_ms": warmup_s * 1000,
        "first_click_ms": times[0] * 1000,
        "median_click_ms": statistics.median(times[1:]) * 1000,
        "peak_rss_mib_above_imports": _peak_rss_mib() - base_rss,
        "threads": torch.get_num_threads(),
        "image": source,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["tiny", "vit_b"])
    p.add_argument("--clicks", type=int, default=12)
    p.add_argument("--device", default="cpu")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.clicks, args.device)))
        return 0
    rows = []
    for model in args.models:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                model,
                "--clicks",
                str(args.clicks),
                "--device",
                args.device,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"{'model':7} {'input':>5} {'params M':>8} {'warm-up ms':>10} {'first ms':>9} {'median ms':>10} {'peak MiB':>9}  threads  image"
    )
    for r in rows:
        print(
            f"{r['model']:7} {r['input_size']:5d} {r['params_m']:8.2f} {r['warmup_ms']:10.0f} {r['first_click_ms']:9.0f} "
            f"{r['median_click_ms']:10.0f} {r['peak_rss_mib_above_imports']:9.0f}  {r['threads']:7d}  {r['image']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
