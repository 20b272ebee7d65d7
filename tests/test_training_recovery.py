"""``python -m training.finetune`` survives kills, broken logs and unwritable folders (#13.7).

Real subprocesses on tiny synthetic runs, killed with SIGKILL at exact moments: a small
wrapper (``_KILL_AT``) runs the command line and kills its own process right before or after
a chosen ``os.replace`` (a checkpoint landing) or in the middle of a chosen ``os.write`` (a
log line cut off). After each kill, ``--resume`` must finish the run with every step logged
exactly once and no temporary file left.
"""

from __future__ import annotations

import errno
import json
import os
import resource
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
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]),
    "OMP_NUM_THREADS": "1",
}
SYNTHETIC = "synthetic:kind=organelles:size=64"

# argv[1] = MOMENT:FILE_NAME:N; MOMENT is before-replace, after-replace, mid-write or never.
_KILL_AT = r"""
import os, runpy, signal, sys
moment, name, nth = sys.argv.pop(1).split(":")
seen = [0]
def hit(path):
    if os.path.basename(os.fspath(path)) != name:
        return False
    seen[0] += 1
    return seen[0] == int(nth)
def die():
    os.kill(os.getpid(), signal.SIGKILL)
real_replace, real_write = os.replace, os.write
def replace(src, dst, *args, **kwargs):
    if moment == "before-replace" and hit(dst):
        die()
    real_replace(src, dst, *args, **kwargs)
    if moment == "after-replace" and hit(dst):
        die()
def write(fd, data):
    if moment == "mid-write" and hit(os.readlink(f"/proc/self/fd/{fd}")):
        real_write(fd, bytes(data)[: len(data) // 2])
        die()
    return real_write(fd, data)
os.replace, os.write = replace, write
sys.argv[0] = "finetune"
runpy.run_module("training.finetune", run_name="__main__", alter_sys=True)
"""


def _args(run: Path, *extra: str, dataset: str = SYNTHETIC, data: Path | None = None) -> list[str]:
    return [
        "--dataset", dataset, *(["--data", str(data)] if data else []), "--model", "tiny",
        "--batch-size", "1", "--max-extra-clicks", "0", "--num-threads", "1", "--out", str(run),
        *extra,
    ]  # fmt: skip


def _finetune(*args: str, kill_at: str = "never:-:0", max_file_size: int | None = None):
    def limit_file_size() -> None:  # RLIMIT_FSIZE stops root too: writes fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_size, max_file_size))

    return subprocess.run(
        [sys.executable, "-c", _KILL_AT, kill_at, *args],
        env=ENV,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit_file_size if max_file_size else None,
    )


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _checkpoint_step(run: Path) -> int:
    return torch.load(run / "last.pt", weights_only=True)["step"]


def _temporaries(run: Path) -> list[str]:
    return sorted(p.name for p in run.glob(".*.tmp"))


def _resume_and_check(run: Path, steps: int, *extra: str) -> subprocess.CompletedProcess:
    result = _finetune("--resume", str(run), *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _steps(run) == list(range(1, steps + 1))
    assert _checkpoint_step(run) == steps and (run / "final.pt").is_file()
    assert _temporaries(run) == []
    return result


def _assert_killed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]


def _assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and all(w in last for w in words), last
    return last


# ---------------------------------------------------------------------------- kills
def test_kill_right_after_a_checkpoint_keeps_its_steps_logged(tmp_path):
    run = tmp_path / "run"
    _assert_killed(
        _finetune(
            *_args(run, "--max-steps", "4", "--save-every", "2", "--no-eval"),
            kill_at="after-replace:last.pt:1",
        )  # fmt: skip
    )
    assert _checkpoint_step(run) == 2
    assert _steps(run) == [1, 2]  # the log line of a step lands before its checkpoint
    _resume_and_check(run, 4)


def test_kill_while_a_checkpoint_is_written_leaves_no_temporary_file(tmp_path):
    run = tmp_path / "run"
    _assert_killed(
        _finetune(
            *_args(run, "--max-steps", "5", "--save-every", "2", "--no-eval"),
            kill_at="before-replace:last.pt:2",
        )  # fmt: skip
    )
    assert _checkpoint_step(run) == 2 and _temporaries(run)  # step 4's file never landed
    result = _resume_and_check(run, 5)
    assert "temporary file" in result.stderr


@pytest.mark.parametrize("how", ["resume", "same-out"])
def test_kill_before_the_first_checkpoint_starts_the_run_over(tmp_path, how):
    run = tmp_path / "run"
    args = _args(run, "--max-steps", "3", "--save-every", "100", "--no-eval")
    _assert_killed(_finetune(*args, kill_at="before-replace:last.pt:1"))
    assert not (run / "last.pt").exists() and _temporaries(run)
    assert (run / "metrics.jsonl").read_text()  # steps logged, none checkpointed
    if how == "resume":
        result = _resume_and_check(run, 3)
        assert "starts over from step 0" in result.stderr
    else:
        result = _finetune(*args)
        assert result.returncode == 0, result.stderr[-3000:]
        assert _steps(run) == [1, 2, 3] and _temporaries(run) == []
    assert "dropped" in result.stderr  # the old log lines are said to be dropped


@pytest.mark.parametrize("cut", ["kill-mid-line", "appended-half-line"])
def test_a_line_cut_off_in_the_log_is_repaired_on_resume(tmp_path, cut):
    run = tmp_path / "run"
    args = _args(run, "--max-steps", "4", "--save-every", "2", "--no-eval")
    if cut == "kill-mid-line":  # the kill lands in the middle of step 3's line
        _assert_killed(_finetune(*args, kill_at="mid-write:metrics.jsonl:3"))
    else:  # the same, made by hand after a kill at step 2
        _assert_killed(_finetune(*args, kill_at="after-replace:last.pt:1"))
        with (run / "metrics.jsonl").open("a") as log:
            log.write('{"step": 3, "loss": 0.5, "lo')
    assert not (run / "metrics.jsonl").read_text().endswith("\n")
    result = _resume_and_check(run, 4)
    assert "unreadable line" in result.stderr


def test_a_second_process_cannot_write_into_a_running_run(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "training.finetune",
         *_args(run, "--max-steps", "200", "--save-every", "1", "--no-eval")],
        env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (run / "last.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        second = _finetune("--resume", str(run))
        _assert_one_line_error(second, "in use by another training process")
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()
        first.wait()


# ---------------------------------------------------------------------------- unwritable folders
def test_an_out_folder_that_cannot_be_created_is_one_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _finetune(*_args(blocker / "run", "--max-steps", "1", "--no-eval"))
    _assert_one_line_error(result, "cannot create the run folder", str(blocker / "run"))


def test_a_full_disk_at_the_first_checkpoint_is_one_clear_error(tmp_path):
    run = tmp_path / "run"
    args = _args(run, "--max-steps", "3", "--save-every", "2", "--no-eval")
    result = _finetune(*args, max_file_size=1 << 20)  # the log fits, a checkpoint does not
    _assert_one_line_error(result, "cannot write", "last.pt", os.strerror(errno.EFBIG))
    assert not (run / "last.pt").exists() and _temporaries(run) == []
    _resume_and_check(run, 3)


def test_a_full_disk_after_a_checkpoint_keeps_it_and_resumes(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    real_write = os.write

    def write(fd, data):  # the disk is full as soon as the first checkpoint has landed
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.startswith(os.path.realpath(run)) and (run / "last.pt").exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    assert main(_args(run, "--max-steps", "4", "--save-every", "2", "--no-eval")) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: cannot write") and os.strerror(errno.ENOSPC) in error
    assert "is intact" in error
    assert _checkpoint_step(run) == 2 and _temporaries(run) == []
    monkeypatch.undo()
    assert main(["--resume", str(run)]) == 0
    assert _steps(run) == [1, 2, 3, 4] and _checkpoint_step(run) == 4


# ---------------------------------------------------------------------------- evaluation at the end
@pytest.fixture(scope="module")
def many_objects(tmp_path_factory) -> Path:
    """A `folder` dataset of 10 images with 12 disks each: 2 test images, 24 test objects."""
    import tifffile

    root = tmp_path_factory.mktemp("disks")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    for i in range(10):
        image = rng.normal(60, 10, (128, 128))
        labels = np.zeros((128, 128), np.uint16)
        for k in range(12):
            r, c = 20 + 30 * (k // 4), 20 + 30 * (k % 4)
            disk = (yy - r) ** 2 + (xx - c) ** 2 <= rng.integers(6, 11) ** 2
            image[disk] += 100
            labels[disk] = k + 1
        tifffile.imwrite(root / "images" / f"img{i:02d}.tif", image.astype(np.uint16))
        tifffile.imwrite(root / "labels" / f"img{i:02d}.tif", labels)
    return root


def test_resume_keeps_no_eval_and_eval_brings_it_back(tmp_path, many_objects):
    run = tmp_path / "run"
    args = _args(run, "--max-steps", "3", "--save-every", "2", "--no-eval", "--eval-objects",
                 "1", "--eval-max-clicks", "1", dataset="folder", data=many_objects)  # fmt: skip
    _assert_killed(_finetune(*args, kill_at="after-replace:last.pt:1"))
    result = _finetune("--resume", str(run))  # no --no-eval: the saved choice holds
    assert not list(run.glob("eval_*")) and "no NoC evaluation" in result.stderr
    assert result.returncode == 0 and _steps(run) == [1, 2, 3], result.stderr[-3000:]
    result = _finetune("--resume", str(run), "--eval")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list(run.glob("eval_folder*/metrics.json"))) == 1


def test_end_of_run_evaluation_is_bounded_and_says_so(tmp_path, many_objects, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "default 20; 0 = all" in " ".join(capsys.readouterr().out.split())
    run = tmp_path / "run"
    args = _args(run, "--max-steps", "1", "--eval-max-clicks", "1",
                 dataset=f"folder,{SYNTHETIC}", data=many_objects)  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "on 20 of 24 test objects of folder" in err
    assert f"no NoC evaluation on {SYNTHETIC}" in err  # training.evaluate has no synthetic data
    metrics = json.loads(next(run.glob("eval_folder*/metrics.json")).read_text())
    assert metrics["metrics"]["objects"] == 20
