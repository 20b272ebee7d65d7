"""The pixel decoder's deformable attention: the fast core against Deformable DETR's formulation.

    python benchmarks/bench_deform_attn.py [--threads 2] [--reps 20]

Times, interleaved in one process, :func:`ms_deform_attn_core` and
:func:`ms_deform_attn_reference` (the same values: ``tests/test_model.py``) on the tiny model's
shapes (1344 queries over 8x8, 16x16 and 32x32 maps, 4 heads of 32, 4 points): the core alone
at batch 1 without gradients (a click) and at batch 4 forward + backward (a training step), and
the whole ``tiny`` model (random weights) with each core, batch 1 inference and batch 4 forward
+ backward. Prints the medians in milliseconds and their ratio (fast / reference).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from napari_adaptiveclick.models.network import ms_deform_attn
from napari_adaptiveclick.models.registry import build_model

SHAPES = [(8, 8), (16, 16), (32, 32)]
FAST, REFERENCE = ms_deform_attn.ms_deform_attn_core, ms_deform_attn.ms_deform_attn_reference


def core_case(batch: int, grad: bool):
    tokens = sum(h * w for h, w in SHAPES)
    value = torch.randn(batch, tokens, 4, 32, requires_grad=grad)
    loc = (torch.rand(batch, tokens, 4, 3, 4, 2) * 1.2 - 0.1).requires_grad_(grad)
    weights = torch.rand(batch, tokens, 4, 3, 4).softmax(-1).requires_grad_(grad)

    def run(core) -> None:
        if grad:
            core(value, SHAPES, loc, weights).sum().backward()
        else:
            with torch.inference_mode():
                core(value, SHAPES, loc, weights)

    return run


def model_case(batch: int, grad: bool):
    model = build_model("tiny")
    size = model.config.input_size
    image, prev = torch.rand(batch, 3, size, size), torch.zeros(batch, 1, size, size)
    clicks = torch.zeros(batch, 2, size, size)
    clicks[:, 0, 100:110, 100:110] = 1

    def run(core) -> None:
        ms_deform_attn.ms_deform_attn_core = core  # what MSDeformAttn.forward calls
        try:
            if grad:
                model.train()(image, prev, clicks)["mask_logits"].sum().backward()
            else:
                with torch.inference_mode():
                    model.eval()(image, prev, clicks)
        finally:
            ms_deform_attn.ms_deform_attn_core = FAST

    return run


def timed(run, core) -> float:
    began = time.perf_counter()
    run(core)
    return (time.perf_counter() - began) * 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=20, help="per case and core (models: a third)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [
        ("core, batch 1, no gradients", core_case(1, False), args.reps),
        ("core, batch 4, forward + backward", core_case(4, True), args.reps),
        ("tiny model, batch 1, inference", model_case(1, False), max(args.reps // 3, 3)),
        ("tiny model, batch 4, forward + backward", model_case(4, True), max(args.reps // 3, 3)),
    ]
    print(f"{args.threads} thread(s); medians of interleaved runs")
    print("| case | reference (ms) | fast (ms) | fast / reference |\n|---|---|---|---|")
    for name, run, reps in cases:
        for core in (REFERENCE, FAST):  # warm-up
            run(core)
        times = {REFERENCE: [], FAST: []}
        for _ in range(reps):
            for core in (REFERENCE, FAST):
                times[core].append(timed(run, core))
        ref, fast = (statistics.median(times[c]) for c in (REFERENCE, FAST))
        print(f"| {name} | {ref:.1f} | {fast:.1f} | {fast / ref:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
