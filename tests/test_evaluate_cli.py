"""``python -m training.evaluate`` end to end on a small generated ``folder`` dataset."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_adaptiveclick.evaluation.report import EvaluationError
from napari_adaptiveclick.learning.evaluation_run import build_predictor
from training.evaluate import main, parse_args, settings_from_args

REPO = Path(__file__).resolve().parents[1]


def _labels() -> dict[str, np.ndarray]:
    """Instance ids of images a and b (48x56): a holds two objects, b one (binary, so the
    dataset numbers it 1)."""
    rows, cols = np.mgrid[:48, :56]
    disk = (rows - 14) ** 2 + (cols - 15) ** 2 < 64
    box = (rows > 26) & (rows < 42) & (cols > 30) & (cols < 50)
    big_disk = (rows - 24) ** 2 + (cols - 30) ** 2 < 100
    return {"a": (disk * 1 + box * 2).astype(np.uint16), "b": (big_disk * 7).astype(np.uint16)}


def _write_folder_dataset(root: Path, seed: int = 0) -> Path:
    """images/{a,b}.tif (uint8, noisy bright shapes on grey) and labels/{a,b}.tif."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name, label in _labels().items():
        image = 80 + 70 * (label > 0) + rng.normal(0, 30, label.shape)
        tifffile.imwrite(root / "images" / f"{name}.tif", np.clip(image, 0, 255).astype(np.uint8))
        tifffile.imwrite(root / "labels" / f"{name}.tif", label)
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return _write_folder_dataset(tmp_path / "data")


def _evaluate(data: Path, out: Path, *extra: str) -> int:
    argv = ["--dataset", "folder", "--data", str(data), "--split", "all", "--out", str(out)]
    return main([*argv, *extra])


def _without_timing(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    del metrics["timing"]
    return metrics


def test_random_walker_run_writes_all_outputs(folder, tmp_path, capsys):
    out = tmp_path / "rw"
    assert _evaluate(folder, out, "--model", "random_walker", "--max-clicks", "4") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "random_walker" and metrics["checkpoint"] is None
    assert metrics["dataset"] == "folder" and metrics["split"] == "all"
    assert metrics["protocol"]["max_clicks"] == 4
    figures = metrics["metrics"]
    assert figures["objects"] == 3 and len(figures["mIoU"]) == 4
    assert 1.0 <= figures["NoC@85"] <= figures["NoC@90"] <= 4.0
    assert figures["mIoU"][0] > 0.5  # bright shapes on a dark background
    assert metrics["timing"]["seconds_per_click"] > 0
    with (out / "per_object.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    names = ["folder/a.tif#obj-001", "folder/a.tif#obj-002", "folder/b.tif#obj-001"]
    assert [r["name"] for r in rows] == names
    before = (out / "metrics.json").read_bytes()
    with pytest.raises(SystemExit):  # an existing evaluation is not replaced unasked
        _evaluate(folder, out, "--model", "random_walker", "--max-clicks", "2")
    assert "already holds an evaluation" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == before
    (out / "STALE.txt").write_text("trained further since")  # as training.finetune notes it
    assert (
        _evaluate(folder, out, "--model", "random_walker", "--max-clicks", "2", "--overwrite") == 0
    )
    assert json.loads((out / "metrics.json").read_text())["protocol"]["max_clicks"] == 2
    assert not (out / "STALE.txt").exists()  # a fresh evaluation is not stale
    assert [r["group"] for r in rows] == ["folder/a", "folder/a", "folder/b"]
    labels = _labels()
    areas = [np.sum(labels["a"] == 1), np.sum(labels["a"] == 2), np.sum(labels["b"] > 0)]
    assert [int(r["area"]) for r in rows] == areas
    columns = ["name", "group", "area", "iou_1", "iou_2", "iou_3", "iou_4", "noc85", "noc90"]
    assert list(rows[0]) == columns
    assert [int(r["noc90"]) for r in rows] == [
        next((k for k in range(1, 5) if float(r[f"iou_{k}"]) >= 0.9), 4) for r in rows
    ]
    assert (out / "miou_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "NoC@90" in printed and "random_walker" in printed


def test_same_command_gives_identical_metrics(folder, tmp_path):
    extra = ("--model", "random_walker", "--max-clicks", "3", "--objects", "2", "--seed", "5")
    assert _evaluate(folder, tmp_path / "one", *extra) == 0
    assert _evaluate(folder, tmp_path / "two", *extra) == 0
    first = _without_timing(tmp_path / "one")
    assert first == _without_timing(tmp_path / "two")
    assert first["metrics"]["objects"] == 2 and first["selection"] == {
        "object_crop": None,
        "objects": 2,
        "seed": 5,
    }


def test_compare_prints_runs_and_the_papers_figures(folder, tmp_path, capsys):
    assert (
        _evaluate(folder, tmp_path / "run_a", "--model", "random_walker", "--max-clicks", "2") == 0
    )
    # A second run, relabelled as ssTEM, to show the paper's rows for that dataset.
    metrics = json.loads((tmp_path / "run_a" / "metrics.json").read_text())
    metrics["dataset"] = "sstem"
    (tmp_path / "run_b").mkdir()
    (tmp_path / "run_b" / "metrics.json").write_text(json.dumps(metrics))
    capsys.readouterr()
    assert (
        main(["--compare", str(tmp_path / "run_a"), str(tmp_path / "run_b" / "metrics.json")]) == 0
    )
    printed = capsys.readouterr().out
    header = printed.splitlines()[0].split()
    assert header == ["run", "run_a", "run_b"]
    noc85 = next(line for line in printed.splitlines() if line.startswith("NoC@85")).split()
    assert noc85[1] == noc85[2] == f"{metrics['metrics']['NoC@85']:.2f}"
    assert "AdaptiveClick ViT-B, SBD" in printed and "3.17" in printed and "4.56" in printed
    assert "no paper figures for dataset 'folder'" in printed


def _assert_fails(capsys, argv_result: int, *phrases: str) -> None:
    assert argv_result == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err


def test_bad_input_exits_2_with_a_message(folder, tmp_path, capsys):
    rw = ("--model", "random_walker")
    _assert_fails(capsys, _evaluate(tmp_path / "nowhere", tmp_path / "o", *rw), "does not exist")
    empty = _write_folder_dataset(tmp_path / "empty")
    for name in ("a", "b"):
        tifffile.imwrite(empty / "labels" / f"{name}.tif", np.zeros((48, 56), np.uint16))
    _assert_fails(capsys, _evaluate(empty, tmp_path / "o", *rw), "No objects")
    _assert_fails(
        capsys, _evaluate(folder, tmp_path / "o", *rw, "--min-area", "100000"), "No objects"
    )
    _assert_fails(
        capsys,
        _evaluate(folder, tmp_path / "o", "--model", "resnet", "--checkpoint", "x.pt"),
        "Unknown model 'resnet'",
    )
    not_a_checkpoint = tmp_path / "junk.pt"
    not_a_checkpoint.write_bytes(b"not a checkpoint")
    _assert_fails(
        capsys,
        _evaluate(folder, tmp_path / "o", "--checkpoint", str(not_a_checkpoint)),
        "Cannot load checkpoint",
    )
    _assert_fails(capsys, main(["--compare", str(tmp_path / "missing")]), "Cannot read run")
    assert not (tmp_path / "o").exists()


def test_usage_errors_exit_2(tmp_path, capsys):
    for argv in (
        ["--dataset", "folder", "--out", str(tmp_path)],  # no checkpoint for a learned model
        [
            "--dataset",
            "folder",
            "--model",
            "random_walker",
            "--checkpoint",
            "x.pt",
            "--out",
            str(tmp_path),
        ],
        [
            "--dataset",
            "folder",
            "--model",
            "random_walker",
            "--out",
            str(tmp_path),
            "--max-clicks",
            "0",
        ],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_command_line_exit_code_without_traceback(tmp_path):
    command = [
        sys.executable,
        "-m",
        "training.evaluate",
        "--dataset",
        "folder",
        "--data",
        str(tmp_path),
    ]
    command += ["--model", "random_walker", "--out", str(tmp_path / "out")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: Expected images/") and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    import torch

    from napari_adaptiveclick.models.checkpoint import save_checkpoint
    from napari_adaptiveclick.models.registry import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model("tiny"))
    return path


def test_learned_model_end_to_end(folder, tmp_path, tiny_checkpoint):
    extra = [
        "--checkpoint",
        str(tiny_checkpoint),
        "--max-clicks",
        "2",
        "--objects",
        "1",
        "--no-flip",
        "--device",
        "cpu",
    ]
    assert _evaluate(folder, tmp_path / "one", *extra) == 0
    metrics = _without_timing(tmp_path / "one")
    assert metrics["model"] == "tiny" and metrics["device"] == "cpu"
    assert metrics["checkpoint"] == str(tiny_checkpoint) and "torch" in metrics["versions"]
    assert metrics["protocol"]["zoom_in"] is True and metrics["protocol"]["flip_tta"] is False
    assert metrics["metrics"]["objects"] == 1 and len(metrics["metrics"]["mIoU"]) == 2
    assert _evaluate(folder, tmp_path / "two", *extra) == 0
    assert _without_timing(tmp_path / "two") == metrics


def test_zoom_min_size_reaches_the_session_and_the_record(folder, tmp_path, tiny_checkpoint):
    extra = ["--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--zoom-min-size", "64"]
    args = parse_args(["--dataset", "folder", "--out", str(tmp_path / "unused"), *extra])
    session, _ = build_predictor(settings_from_args(args))
    assert session.zoom_min_size == 64
    assert _evaluate(folder, tmp_path / "run", *extra, "--max-clicks", "1", "--objects", "1") == 0
    assert _without_timing(tmp_path / "run")["protocol"]["zoom_min_size"] == 64


def test_the_protocol_column_shows_a_zoom_minimum_other_than_the_releases():
    from napari_adaptiveclick.evaluation.report import describe_protocol

    protocol = {"name": "plugin", "zoom_in": True, "first_click_window": 256}
    assert describe_protocol({**protocol, "zoom_min_size": 200}) == "plugin 1st 256px zoom no flip"
    assert describe_protocol({**protocol, "zoom_min_size": 80}).startswith(
        "plugin 1st 256px zoom>=80px no flip"
    )
    assert "zoom>=" not in describe_protocol(protocol)  # runs recorded before the option
    assert "no zoom" in describe_protocol({**protocol, "zoom_in": False, "zoom_min_size": 80})


def test_protocols_reach_the_session_and_the_record(folder, tmp_path, tiny_checkpoint):
    base = ["--dataset", "folder", "--out", str(tmp_path / "unused")]
    base += ["--checkpoint", str(tiny_checkpoint), "--device", "cpu"]
    plugin, _ = build_predictor(settings_from_args(parse_args(base)))
    # the default is exactly the plugin's session: first-click window, growth, no flips
    assert plugin.protocol == "project" and not plugin.flip_tta
    assert plugin.first_click_window == plugin.config.input_size and plugin.first_click_grow
    release, _ = build_predictor(settings_from_args(parse_args([*base, "--protocol", "release"])))
    assert release.protocol == "release" and release.flip_tta
    assert release.first_click_window is None  # the release: the whole image first
    fixed, _ = build_predictor(
        settings_from_args(
            parse_args([*base, "--first-click-window", "96", "--no-first-click-grow", "--flip"])
        )
    )
    assert fixed.first_click_window == 96 and not fixed.first_click_grow and fixed.flip_tta
    assert plugin.square_crops and not release.square_crops  # the release stretches
    stretched, _ = build_predictor(settings_from_args(parse_args([*base, "--stretch-crops"])))
    assert not stretched.square_crops
    with pytest.raises(EvaluationError, match="whole image"):
        build_predictor(
            settings_from_args(
                parse_args([*base, "--protocol", "release", "--first-click-window", "96"])
            )
        )
    run = ["--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--max-clicks", "1"]
    assert _evaluate(folder, tmp_path / "plugin", *run) == 0
    protocol = _without_timing(tmp_path / "plugin")["protocol"]
    assert protocol["name"] == "plugin" and protocol["flip_tta"] is False
    assert protocol["first_click_window"] == plugin.config.input_size
    assert protocol["first_click_grow"] is True and protocol["square_crops"] is True
    assert _evaluate(folder, tmp_path / "release", *run, "--protocol", "release") == 0
    protocol = _without_timing(tmp_path / "release")["protocol"]
    assert protocol["name"] == "release" and protocol["flip_tta"] is True
    assert protocol["first_click_window"] is None and protocol["first_click_grow"] is False


def test_the_table_prints_the_protocol(folder, tmp_path, tiny_checkpoint, capsys):
    run = ["--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--max-clicks", "1"]
    assert _evaluate(folder, tmp_path / "r", *run, "--protocol", "release", "--objects", "1") == 0
    assert "release 1st whole zoom flip" in capsys.readouterr().out
    assert _evaluate(folder, tmp_path / "p", *run, "--objects", "1") == 0
    assert "plugin 1st 256px+grow zoom no flip\n" in capsys.readouterr().out.replace("  ", "")
    assert _evaluate(folder, tmp_path / "s", *run, "--objects", "1", "--stretch-crops") == 0
    assert "plugin 1st 256px+grow zoom no flip stretched" in capsys.readouterr().out


def test_wrong_architecture_checkpoint(folder, tmp_path, tiny_checkpoint, capsys):
    result = _evaluate(
        folder, tmp_path / "o", "--model", "vit_b", "--checkpoint", str(tiny_checkpoint)
    )
    _assert_fails(capsys, result, "Cannot load checkpoint", "'tiny' model, not 'vit_b'")


@pytest.mark.data
def test_random_walker_on_sstem_test_objects(shared_data, tmp_path):
    argv = ["--dataset", "sstem", "--data", str(shared_data), "--model", "random_walker"]
    argv += ["--objects", "2", "--seed", "0", "--max-clicks", "2", "--out", str(tmp_path)]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["metrics"]["objects"] == 2
    assert all(name.startswith("sstem/stack1/1") for name in _column(tmp_path, "name"))


def _column(out: Path, column: str) -> list[str]:
    with (out / "per_object.csv").open() as handle:
        return [row[column] for row in csv.DictReader(handle)]


def test_object_crop_cuts_small_images_around_each_object():
    from napari_adaptiveclick.learning.datasets import ObjectSample
    from napari_adaptiveclick.learning.evaluation_run import crop_to_object

    image = np.arange(100 * 100, dtype=np.float32).reshape(100, 100) / 1e4
    mask = np.zeros((100, 100), bool)
    mask[40:50, 40:60] = True
    cropped = crop_to_object(ObjectSample(image, mask, "a", "g"), 2.0)
    # rows: 10 px -> at least 32, centred on 45: 29..61; cols: 20 px x 2 = 40 about 50: 30..70
    assert cropped.image.shape == (32, 40) and cropped.mask.sum() == mask.sum()
    assert cropped.image[0, 0] == image[29, 30]
    edge = np.zeros((100, 100), bool)
    edge[0:4, 0:4] = True  # clipped at the image's corner
    # 4 px x 3 -> at least 32 about row 2: -14..18, clipped to 0..18
    assert crop_to_object(ObjectSample(image, edge, "b", "g"), 3.0).image.shape == (18, 18)
