"""``segment --batch JOBS.csv``: replay many clicks files over many volumes on dask.distributed.

``JOBS.csv`` has a header and one job per row: ``image,clicks[,out]`` (paths relative to the
file's folder). A job without ``out`` writes ``--out-dir/<image stem>-<clicks stem>.zarr``.
Each job is one ``segment`` run (same options as a single run: ``--model``, ``--checkpoint``,
``--threshold``, ...), its labels in its own store, written in place as the single run does,
so a worker holds one focus crop and the model, not a volume. The jobs run on a local
cluster (``--workers`` processes, one thread each) unless ``--scheduler ADDRESS`` names an
existing one (then every worker must see the same paths: the jobs get absolute paths, since a
worker runs in a folder of its own); progress is one line per finished job, naming the worker
that ran it. Every job's inputs are checked (files exist, outputs free) before any job starts;
a job that fails is reported with its error and the others go on; the exit status is 1 when
any failed.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from napari_adaptiveclick.io.chunked import is_zarr_store
from napari_adaptiveclick.io.writable import replace_problem


@dataclass(frozen=True)
class Job:
    image: Path
    clicks: Path
    out: Path


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("batch mode (dask.distributed)")
    group.add_argument(
        "--batch",
        metavar="JOBS.csv",
        help="replay many clicks files over many volumes: a CSV with columns image,clicks[,out]",
    )
    group.add_argument("--out-dir", help="where jobs without an 'out' column write (batch)")
    group.add_argument(
        "--scheduler", help="address of an existing dask scheduler (default: a local cluster)"
    )
    group.add_argument(
        "--workers", type=int, default=2, help="worker processes of the local cluster (batch)"
    )


def read_jobs(path: str | Path, out_dir: str | Path | None, overwrite: bool) -> list[Job]:
    """The jobs of ``path``, checked: inputs exist, outputs are distinct and free. Paths are
    made absolute (relative ones: to the file's folder, ``out_dir`` to the current one)."""
    path = Path(path).absolute()
    out_dir = Path(out_dir).absolute() if out_dir else None
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"image", "clicks"} <= set(rows[0]):
        raise ValueError(f"{path}: needs a header with columns image,clicks[,out] and rows.")
    jobs = []
    for number, row in enumerate(rows, start=2):
        image, clicks = path.parent / row["image"].strip(), path.parent / row["clicks"].strip()
        if row.get("out"):
            out = path.parent / row["out"].strip()
        elif out_dir:
            stem = image.name.split(".")[0]
            out = Path(out_dir) / f"{stem}-{clicks.name.split('.')[0]}.zarr"
        else:
            raise ValueError(f"{path} line {number}: no 'out' column value; pass --out-dir.")
        for what, item in (("image", image), ("clicks", clicks)):
            if not item.exists():
                raise FileNotFoundError(f"{path} line {number}: no such {what} {item}.")
        if out.exists() and not overwrite:
            raise ValueError(f"{path} line {number}: {out} exists; pass --overwrite.")
        problem = replace_problem(out) or _folder_problem(out, out_dir)
        if problem:
            raise ValueError(f"{path} line {number}: {problem}")
        jobs.append(Job(image, clicks, out))
    lines: dict[Path, list[int]] = {}
    for number, job in enumerate(jobs, start=2):
        lines.setdefault(job.out.resolve(), []).append(number)
    shared = [(out, numbers) for out, numbers in lines.items() if len(numbers) > 1]
    if shared:
        out, numbers = shared[0]
        raise ValueError(
            f"{path} lines {', '.join(map(str, numbers))} all write {out}; give each job its "
            "own 'out'."
        )
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    return jobs


def _folder_problem(out: Path, out_dir: Path | None) -> str:
    """Why ``out``'s folder cannot take it ("" when it can): it does not exist and is
    neither ``--out-dir`` (created) nor an OME-Zarr image's labels group."""
    folder = out.parent
    if folder.is_dir() or folder == out_dir:
        return ""
    if folder.name == "labels" and is_zarr_store(folder.parent):  # the group is made then
        return ""
    return f"the folder {folder} of {out.name} does not exist; create it first."


def _run_job(segment: Callable[[argparse.Namespace], int], options: dict, job: Job) -> str:
    """One job on a worker: a single ``segment`` run; returns the worker's address."""
    from distributed import get_worker

    args = argparse.Namespace(
        **{**options, "image": str(job.image), "clicks": str(job.clicks), "out": str(job.out)}
    )
    segment(args)
    return get_worker().address


def run_batch(args: argparse.Namespace, segment: Callable[[argparse.Namespace], int]) -> int:
    """Run the jobs of ``args.batch`` on a dask cluster; one progress line per job."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError(
            "--batch needs dask.distributed: pip install 'napari-adaptiveclick[big]'."
        ) from None
    jobs = read_jobs(args.batch, args.out_dir, args.overwrite)
    options = {
        k: v
        for k, v in vars(args).items()
        if k not in ("batch", "out_dir", "scheduler", "workers", "image", "clicks", "out")
    }
    for name in ("checkpoint", "labels"):  # files the workers open: absolute paths
        if options.get(name) and Path(options[name]).exists():
            options[name] = str(Path(options[name]).absolute())
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(
            n_workers=max(1, args.workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    start, failed = time.perf_counter(), 0
    run = uuid.uuid4().hex  # task keys unique to this batch: a scheduler merges equal keys
    try:
        print(f"{len(jobs)} job(s) on {client.scheduler.address}", file=sys.stderr)
        futures = {
            client.submit(
                _run_job, segment, options, job, pure=False, key=f"segment-{run}-{i}"
            ): job
            for i, job in enumerate(jobs)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            job = futures[future]
            elapsed = time.perf_counter() - start
            try:
                worker = future.result()
                print(f"[{done}/{len(jobs)}] {elapsed:.0f} s: wrote {job.out} on {worker}")
            except Exception as error:  # the worker's error, reported with its job
                failed += 1
                print(
                    f"[{done}/{len(jobs)}] {elapsed:.0f} s: FAILED {job.image} + "
                    f"{job.clicks}: {error}",
                    file=sys.stderr,
                )
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"{len(jobs) - failed} of {len(jobs)} job(s) done, {failed} failed.")
    return 1 if failed else 0
