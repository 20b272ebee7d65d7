"""``python -m training.finetune``: quick runs, config files, resume after SIGKILL, DDP, errors."""

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
import torch

from training.finetune import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def blob_folder(tmp_path_factory) -> Path:
    """A `folder` dataset: 6 noisy 96 x 96 images with bright disks, instance labels."""
    import tifffile

    root = tmp_path_factory.mktemp("blobs")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    for i in range(6):
        image = rng.normal(60, 10, (96, 96))
        labels = np.zeros((96, 96), np.uint16)
        for obj in range(1, 3):
            r, c, rad = rng.integers(20, 76), rng.integers(20, 76), rng.integers(6, 14)
            disk = (yy - r) ** 2 + (xx - c) ** 2 <= rad**2
            image[disk] += 100
            labels[disk & (labels == 0)] = obj
        tifffile.imwrite(root / "images" / f"img{i}.tif", image.astype(np.uint16))
        tifffile.imwrite(root / "labels" / f"img{i}.tif", labels)
    return root


def _args(folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--dataset", "folder", "--data", str(folder), "--model", "tiny", "--batch-size", "2",
        "--lr", "1e-4", "--max-extra-clicks", "1", "--out", str(out), "--num-threads", "1", *extra,
    ]  # fmt: skip


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_quick_run_trains_logs_checkpoints_and_evaluates(blob_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            _args(
                blob_folder,
                run,
                "--max-steps",
                "3",
                "--eval-objects",
                "2",
                "--eval-max-clicks",
                "2",
            )
        )
        == 0
    )
    assert _steps(run) == [1, 2, 3]
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss", "loss_mask", "loss_dice", "loss_class", "iou", "lr", "samples_per_s"} <= set(
        record
    )
    assert np.isfinite(record["loss"])
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["step"] == 3 and "optimizer" in last
    final = torch.load(run / "final.pt", weights_only=True)
    assert final["format"] == "napari-adaptiveclick"
    (evaluation,) = run.glob("eval_folder*")
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["metrics"]["objects"] == 2 and "NoC@85" in metrics["metrics"]
    assert "NoC@85" in capsys.readouterr().out
    # trained further without an evaluation, it is kept and said to be stale (new-user trial 2)
    before = (evaluation / "metrics.json").read_bytes()
    assert main(["--resume", str(run), "--max-steps", "4", "--no-eval"]) == 0
    assert (evaluation / "metrics.json").read_bytes() == before
    assert "final.pt of step 3 or before" in (evaluation / "STALE.txt").read_text()
    assert "is stale" in capsys.readouterr().err
    from napari_adaptiveclick.evaluation.report import load_run

    assert load_run(evaluation)[0] == f"{evaluation.name} (stale)"  # as --compare shows it
    assert main(["--resume", str(run), "--eval"]) == 0  # measures the new final.pt
    assert not (evaluation / "STALE.txt").exists()
    assert (evaluation / "metrics.json").read_bytes() != before


def test_weights_change_and_loss_is_selectable(blob_folder, tmp_path):
    run = tmp_path / "run"
    assert main(_args(blob_folder, run, "--max-steps", "1", "--loss", "nfl", "--no-eval")) == 0
    cfg = json.loads((run / "train_config.json").read_text())
    assert cfg["loss"] == "nfl"
    from napari_adaptiveclick.models.registry import build_from_config, get_config

    torch.manual_seed(0)
    initial = build_from_config(get_config("tiny")).state_dict()
    trained = torch.load(run / "final.pt", weights_only=True)["state_dict"]
    assert any(not torch.equal(initial[k], trained[k]) for k in initial)


def test_config_file_and_cli_override(blob_folder, tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"dataset": "folder", "data": str(blob_folder), "model": "tiny", "max_steps": 5,
                                  "batch_size": 2, "max_extra_clicks": 0, "num_threads": 1}))  # fmt: skip
    run = tmp_path / "run"
    assert main(["--config", str(config), "--max-steps", "1", "--out", str(run), "--no-eval"]) == 0
    assert _steps(run) == [1]
    assert json.loads((run / "train_config.json").read_text())["batch_size"] == 2


def test_existing_run_is_never_overwritten(blob_folder, tmp_path):
    run = tmp_path / "run"
    assert main(_args(blob_folder, run, "--max-steps", "1", "--no-eval")) == 0
    before = (run / "last.pt").read_bytes()
    with pytest.raises(SystemExit, match="already holds a run"):
        main(_args(blob_folder, run, "--max-steps", "1", "--no-eval"))
    assert (run / "last.pt").read_bytes() == before


def test_an_unknown_loss_is_refused_before_anything_is_made(blob_folder, tmp_path):
    # new-user trial 2: a traceback after loading the data and model, and an empty run folder
    run = tmp_path / "run"
    with pytest.raises(SystemExit, match="Unknown mask loss 'focal'. Choose one of: afl, "):
        main(_args(blob_folder, run, "--loss", "focal"))
    assert not run.exists()


@pytest.mark.parametrize(
    ("dataset", "data", "message"),
    [
        ("folder", "missing", "missing"),
        ("nosuch", None, "nosuch"),
    ],
)
def test_bad_data_is_reported_before_training(tmp_path, capsys, dataset, data, message):
    run = tmp_path / "run"
    args = [
        "--dataset",
        dataset,
        "--data",
        str(tmp_path / (data or "x")),
        "--out",
        str(run),
        "--max-steps",
        "1",
    ]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (run / "last.pt").exists()


def test_resume_after_sigkill_loses_no_finished_step(blob_folder, tmp_path):
    """Kill -9 mid-run; the resumed run ends bit-identical to an uninterrupted one."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "training.finetune"]
    reference = tmp_path / "reference"
    subprocess.run(
        [*cmd, *_args(blob_folder, reference, "--max-steps", "6", "--no-eval")],
        env=env,
        check=True,
        capture_output=True,
    )

    run = tmp_path / "run"
    proc = subprocess.Popen([*cmd, *_args(blob_folder, run, "--max-steps", "6", "--save-every", "1", "--no-eval")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if (run / "metrics.jsonl").exists() and len(_steps(run)) >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(run / "last.pt", weights_only=True)["step"]
    # The log line of a step lands before its checkpoint: every checkpointed step is logged.
    assert saved >= 2 and _steps(run)[:saved] == list(range(1, saved + 1))
    subprocess.run(
        [*cmd, "--resume", str(run), "--no-eval"], env=env, check=True, capture_output=True
    )
    assert _steps(run) == [1, 2, 3, 4, 5, 6]
    a = torch.load(reference / "final.pt", weights_only=True)["state_dict"]
    b = torch.load(run / "final.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def _free_port() -> str:
    """A TCP port nothing listens on now (a fixed one can still be held by an earlier run)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def test_torchrun_two_processes_stay_in_sync(blob_folder, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", _free_port(),
           "-m", "training.finetune", *_args(blob_folder, run, "--max-steps", "2", "--no-eval", "--device", "cpu")]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-6000:]  # a rank's own error comes first
    sync = json.loads((run / "ddp_sync.json").read_text())
    assert sync["step"] == 2 and len(sync["checksums"]) == 2
    assert sync["checksums"][0] == sync["checksums"][1]
    assert _steps(run) == [1, 2]
