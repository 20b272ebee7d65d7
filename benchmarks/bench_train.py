"""Training throughput (samples/s) of `tiny` with 1 process and with 2 DDP processes.

    python benchmarks/bench_train.py --steps 12

Runs ``python -m training.finetune`` (1 process, 2 threads) and ``torchrun --nproc_per_node 2``
(1 thread each, gloo) on ssTEM mitochondria (``../shared/data``) for ``--steps`` steps each,
and prints the median samples/s over the steps after the first two (warm-up). Run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _median_rate(run: Path) -> float:
    rates = [
        json.loads(line)["samples_per_s"]
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    return statistics.median(rates[2:] if len(rates) > 3 else rates)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=8, help="per process")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = p.parse_args()
    common = ["--dataset", "sstem:kind=mitochondria", "--data", args.data, "--model", "tiny",
              "--max-steps", str(args.steps), "--no-eval", "--save-every", "100000", "--save-every-seconds", "1e9"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one"
        subprocess.run([sys.executable, "-m", "training.finetune", *common, "--batch-size", str(args.batch_size),
                        "--out", str(one)], env=env, check=True, capture_output=True)  # fmt: skip
        results["1 process x 2 threads"] = _median_rate(one)
        two = Path(tmp) / "two"
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "training.finetune",
                        *common, "--batch-size", str(args.batch_size), "--num-threads", "1", "--device", "cpu",
                        "--out", str(two)], env={**env, "OMP_NUM_THREADS": "1"}, check=True, capture_output=True)  # fmt: skip
        results["2 processes x 1 thread (DDP, gloo)"] = _median_rate(two)
    print(
        f"tiny, 256 px crops, batch {args.batch_size} per process, {args.steps} steps, median after warm-up:"
    )
    for name, rate in results.items():
        print(f"  {name:36s} {rate:6.2f} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
