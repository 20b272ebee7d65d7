"""``segment --batch --scheduler ADDRESS`` on an existing dask cluster (issue #14 item 4): a
real scheduler and a separate worker process on 127.0.0.1, the batch command as a third
process started from another folder; every job runs on that worker and writes its own
store, progress is printed per job, and a job whose input is unreadable fails with a clear
message while the others' results are kept. The processes are ended whatever happens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
pytest.importorskip("distributed")

from napari_adaptiveclick.io.images import read_image  # noqa: E402
from napari_adaptiveclick.volume.clicks_file import write_click_records  # noqa: E402
from napari_adaptiveclick.volume.records import ClickRecord  # noqa: E402

SHAPE = (3, 64, 72)
DASK = str(Path(sys.executable).with_name("dask"))


def _volume(seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).normal(100, 5, SHAPE)
    pixels[:, 20:44, 24:50] += 70
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _start(args: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    """A process in its own session (ended with its children), output to ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as handle:
        return subprocess.Popen(
            args, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def _end(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait_for(condition, what: str, logs: list[Path], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in logs)
            raise AssertionError(f"timed out waiting for {what}\n{text}")
        time.sleep(0.2)


def test_batch_on_an_existing_cluster(tmp_path):
    from distributed import Client

    jobs_dir, elsewhere = tmp_path / "jobs", tmp_path / "worker-cwd"
    jobs_dir.mkdir()
    elsewhere.mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        zarr.create_array(
            str(jobs_dir / f"{name}.zarr"), shape=SHAPE, chunks=(1, 32, 32), dtype=np.uint8
        )[:] = _volume(seed)
    broken = jobs_dir / "broken.zarr"  # exists, so the batch starts; unreadable on the worker
    broken.mkdir()
    (broken / "zarr.json").write_text("{")
    write_click_records(jobs_dir / "clicks.csv", [ClickRecord(1, 32, 36, True, object_id=2)])
    (jobs_dir / "jobs.csv").write_text(
        "image,clicks,out\na.zarr,clicks.csv,\nbroken.zarr,clicks.csv,\nb.zarr,clicks.csv,b.ome.zarr\n"
    )
    (jobs_dir / "other.csv").write_text("image,clicks,out\na.zarr,clicks.csv,\n")
    scheduler_file = tmp_path / "scheduler.json"
    logs = [tmp_path / f"{name}.log" for name in ("scheduler", "worker", "batch", "other")]
    started: list[subprocess.Popen] = []
    try:
        started.append(
            _start(
                [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
                + ["--scheduler-file", str(scheduler_file)],
                logs[0],
                tmp_path,
            )
        )
        _wait_for(scheduler_file.exists, "the scheduler", logs)
        time.sleep(0.2)  # the file is written whole, then read
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = _start(
            [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-nanny"]
            + ["--no-dashboard", "--host", "127.0.0.1", "--name", "adaptiveclick-test"],
            logs[1],
            elsewhere,  # another working folder than the batch's: paths must be absolute
        )
        started.append(worker)
        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=40)
            (worker_address, info), *others = client.scheduler_info()["workers"].items()
            assert not others and info["name"] == "adaptiveclick-test"
            assert info.get("pid", worker.pid) == worker.pid  # the process started here
            batch = _start(
                [sys.executable, "-m", "napari_adaptiveclick", "segment", "--batch", "jobs.csv"]
                + ["--out-dir", "results", "--scheduler", address, "--model", "tiny"],
                logs[2],
                jobs_dir,
            )
            started.append(batch)
            other = _start(  # a second batch at the same time: its tasks are its own
                [sys.executable, "-m", "napari_adaptiveclick", "segment", "--batch", "other.csv"]
                + ["--out-dir", "other", "--scheduler", address, "--model", "tiny"],
                logs[3],
                jobs_dir,
            )
            started.append(other)
            try:
                batch.wait(timeout=120)
                other.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError(logs[2].read_text()[-3000:]) from None
            labels = np.asarray(read_image(jobs_dir / "other" / "a-clicks.zarr").data)
            assert labels[1, 32, 36] == 2, logs[3].read_text()[-3000:]
            output = logs[2].read_text()
            assert batch.returncode == 1, output  # one job failed
            assert f"3 job(s) on {address}" in output  # the existing cluster, no local one
            assert "2 of 3 job(s) done, 1 failed." in output
            for done in ("[1/3]", "[2/3]", "[3/3]"):
                assert done in output
            for written in (jobs_dir / "results" / "a-clicks.zarr", jobs_dir / "b.ome.zarr"):
                line = next(x for x in output.splitlines() if f"wrote {written}" in x)
                assert f"on {worker_address}" in line  # run by that worker
                labels = np.asarray(read_image(written).data)
                assert labels.shape == SHAPE and labels[1, 32, 36] == 2
            failed = next(x for x in output.splitlines() if "FAILED" in x)
            assert str(broken) in failed and "Cannot read" in failed, failed
            assert not (jobs_dir / "results" / "broken-clicks.zarr").exists()
            assert list(client.scheduler_info()["workers"]) == [worker_address]  # still up
    finally:
        for process in reversed(started):
            _end(process)
