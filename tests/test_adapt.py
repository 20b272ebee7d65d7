"""Adaptation (issue #12): ``python -m napari_adaptiveclick adapt`` on a small generated
volume, its provenance, the hold-out split, early stop, cancel, and bad input refused before
any training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from napari_adaptiveclick.__main__ import main
from napari_adaptiveclick.io.images import read_image
from napari_adaptiveclick.learning import adapt as adapt_module
from napari_adaptiveclick.learning import adapt_job
from napari_adaptiveclick.learning.adapt import AdaptCancelled, AdaptResult, AdaptSettings, adapt
from napari_adaptiveclick.learning.adapt_data import (
    AdaptInputError,
    as_volume,
    collect_objects,
    hold_out,
)
from napari_adaptiveclick.models.checkpoint import (
    WEIGHTS_DIR,
    default_checkpoint,
    read_checkpoint,
    sha256sum,
)
from synthetic import disks_with_labels, fake_measure, unwritable_folder

FAST = ["--max-clicks", "3", "--batch-size", "1", "--threads", "1", "--check-every", "1"]


def _write(path: Path, array: np.ndarray) -> Path:
    tifffile.imwrite(path, array, photometric="minisblack")
    return path


@pytest.fixture(scope="module")
def volume(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("adapt")
    image, labels = disks_with_labels(6)
    return _write(folder / "image.tif", image), _write(folder / "labels.tif", labels)


def _cli(image: Path, labels: Path, out: Path, *extra: str) -> int:
    return main(
        ["adapt", "--image", str(image), "--labels", str(labels), "--out", str(out), *extra]
    )


def test_cli_adapts_a_small_volume_and_records_provenance(volume, tmp_path, capsys):
    image, labels = volume
    out = tmp_path / "adapted.pt"
    # one check, after both steps (a model good on these disks would stop at a perfect check)
    args = ("--max-steps", "2", "--keep-worse", *FAST, "--check-every", "2")
    assert _cli(image, labels, out, *args) == 0
    printed = capsys.readouterr().out
    assert "before (source model)" in printed and "after (step" in printed
    assert "standard error over 4 objects" in printed
    state = read_checkpoint(out)
    prov = state["adaptation"]
    source = default_checkpoint()
    assert prov["source"]["checkpoint"] == "default"
    assert prov["source"]["sha256"] == sha256sum(source) and prov["source"]["model"] == "tiny"
    assert prov["image"]["sha256"] == sha256sum(image) and prov["image"]["file"] == str(image)
    assert prov["labels"]["sha256"] == sha256sum(labels)
    assert prov["steps"] == 2 == state["train_steps"]
    assert prov["stopped"] in ("step limit", "held-out objects perfect")
    assert 0 < prov["minutes"] < 5
    used, held = prov["objects_used"], prov["objects_held_out"]
    assert len(used) + len(held) == 12 and prov["held_out_by"] == "planes"
    assert not {o["name"] for o in used} & {o["name"] for o in held}
    assert {o["plane"] for o in held}.isdisjoint({o["plane"] for o in used})
    assert {"plane", "label_id", "area", "box"} <= set(used[0])
    for figures in (prov["before"], prov["after"]):
        assert {"NoC@85", "NoC@90", "NoF@85", "NoF@90", "objects"} <= set(figures)
        assert figures["objects"] == len(held)
    assert [c["step"] for c in prov["checks"]] == [2]  # every check, each with its step
    assert prov["settings"]["lr"] == AdaptSettings().lr
    # float32 weights that load as a model, and the source file is untouched
    assert all(
        v.dtype == torch.float32 for v in state["state_dict"].values() if v.is_floating_point()
    )
    from napari_adaptiveclick.models.registry import load_model

    assert load_model(out).config.name == "tiny"
    assert sha256sum(source) == prov["source"]["sha256"]


def test_worse_is_reported_and_not_written_unless_keep_worse(volume, tmp_path, capsys, monkeypatch):
    image, labels = volume
    out = tmp_path / "worse.pt"
    monkeypatch.setattr(adapt_module, "measure", fake_measure([2.0, 3.0]))
    assert _cli(image, labels, out, "--max-steps", "1", *FAST) == 1
    assert "WORSE" in capsys.readouterr().out and not out.exists()
    monkeypatch.setattr(adapt_module, "measure", fake_measure([2.0, 3.0]))
    assert _cli(image, labels, out, "--max-steps", "1", "--keep-worse", *FAST) == 0
    assert "writing anyway" in capsys.readouterr().out
    assert read_checkpoint(out)["adaptation"]["after"]["NoC@85"] == 3.0


def test_a_run_over_its_budget_says_why():
    from types import SimpleNamespace

    from napari_adaptiveclick._adapt_command import over_budget_note

    def result(seconds: float) -> SimpleNamespace:
        return SimpleNamespace(seconds=seconds, before={"check_seconds": 7.2})

    note = over_budget_note(result(19.0), 0.1)  # 6 s asked, two 7 s checks and a step
    assert "13 s more than --minutes 0.1" in note and "7 s a check" in note
    assert over_budget_note(result(300.5), 5.0) == ""  # within its budget
    assert over_budget_note(result(310.0), 5.0) == ""  # the last step's overrun is expected


def _objects(planes: int = 6):
    image, labels = disks_with_labels(planes)
    return collect_objects(as_volume(image), as_volume(labels), min_area=16)


def test_early_stop_keeps_the_best_check_and_reports_progress(monkeypatch):
    objects = _objects()
    split = hold_out(objects)
    updates = []
    monkeypatch.setattr(adapt_module, "measure", fake_measure([3.0, 2.0, 2.5, 2.0, 2.6]))
    result = adapt(
        _default_model(),
        objects.dataset.subset(split.train),
        objects.dataset.subset(split.measured),
        AdaptSettings(batch_size=1, max_extra_clicks=0, check_every=1, patience=3, threads=1),
        progress=updates.append,
    )
    assert result.stopped == "early stop" and result.steps == 4 and result.best_step == 1
    assert result.after["score"] == 2.0 and result.improved and not result.worse
    assert result.change == (-1.0, 0.0)  # every held-out object 3 -> 2 clicks
    phases = [u.phase for u in updates]
    assert phases[0] == "before" and phases.count("check") == 4 and phases.count("train") == 4
    assert all(u.seconds_left <= 300 for u in updates)
    assert [u.step for u in updates if u.phase == "train"] == [1, 2, 3, 4]


def _default_model():
    from napari_adaptiveclick.models.registry import load_model

    return load_model("default")


def test_cancel_raises_during_training_and_during_a_check():
    objects = _objects()
    split = hold_out(objects)
    train, held = objects.dataset.subset(split.train), objects.dataset.subset(split.measured)
    settings = AdaptSettings(batch_size=1, max_extra_clicks=0, max_clicks=2, threads=1)
    steps = []
    with pytest.raises(AdaptCancelled):
        adapt(_default_model(), train, held, settings, progress=lambda u: steps.append(u.step),
              cancelled=lambda: bool(steps) and steps[-1] >= 1)  # fmt: skip
    assert max(steps) == 1  # stopped before a second step
    with pytest.raises(AdaptCancelled):  # polled between the held-out objects
        adapt(_default_model(), train, held, settings, cancelled=lambda: True)


def test_hold_out_planes_or_objects_and_components_as_objects():
    by_planes = hold_out(_objects(8))
    assert by_planes.by == "planes" and len(by_planes.held_out) == 4  # 2 of 8 planes
    two_planes = _objects(2)
    by_objects = hold_out(two_planes, fraction=0.25, seed=1)
    assert by_objects.by == "objects" and len(by_objects.held_out) == 1
    assert set(by_objects.train) | set(by_objects.held_out) == set(range(4))
    # one id with two separate disks on a plane: two objects with that id
    image, labels = disks_with_labels(1)
    labels[labels == 2] = 1
    objects = collect_objects(as_volume(image[0]), as_volume(labels[0]))
    assert [o.label_id for o in objects.objects] == [1, 1] and objects.objects[0].plane is None
    labels[0, 0, 0] = 7  # a 1-pixel component: too small
    small = collect_objects(as_volume(image[0]), as_volume(labels[0]))
    assert len(small.objects) == 2 and small.too_small == 1


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any training starts."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(adapt_job, "adapt", refuse)


def _bad(tmp_path, name, array):
    return _write(tmp_path / name, array)


@pytest.mark.parametrize(
    "case, message",
    [
        ("no objects", "hold no objects"),
        ("other shape", "differ in shape"),
        ("empty file", "empty file"),
        ("not integers", "whole numbers"),
        ("one object", "at least 2 objects"),
        ("rgb image", "grey"),
    ],
)
def test_bad_input_is_refused_before_training(volume, tmp_path, capsys, no_training, case, message):
    image, labels = volume
    data = read_image(labels).data
    if case == "no objects":
        labels = _bad(tmp_path, "zeros.tif", np.zeros_like(data))
    elif case == "other shape":
        labels = _bad(tmp_path, "small.tif", data[:, :40])
    elif case == "empty file":
        labels = tmp_path / "empty.tif"
        labels.write_bytes(b"")
    elif case == "not integers":
        labels = _bad(tmp_path, "float.tif", data.astype(np.float32) * 0.5)
    elif case == "one object":
        one = np.zeros_like(data)
        one[0][data[0] == 1] = 1
        labels = _bad(tmp_path, "one.tif", one)
    else:
        rgb = np.repeat(read_image(image).data[0][..., None], 3, axis=-1).astype(np.uint8)
        image = tmp_path / "rgb.tif"
        tifffile.imwrite(image, rgb, photometric="rgb")
        labels = _bad(tmp_path, "l2d.tif", data[0])
    out = tmp_path / "out.pt"
    assert _cli(image, labels, out, *FAST) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and "Traceback" not in err
    assert not out.exists()


def test_models_without_weights_are_refused(volume, tmp_path, capsys, no_training):
    image, labels = volume
    no_state = tmp_path / "config_only.pt"
    torch.save({"format": "napari-adaptiveclick", "config": {}}, no_state)
    for checkpoint, message in [
        (str(no_state), "holds no 'state_dict'"),
        ("tiny", "architecture without trained weights"),
        (str(tmp_path / "missing.pt"), "no such file"),
    ]:
        assert _cli(image, labels, tmp_path / "o.pt", "--checkpoint", checkpoint, *FAST) == 2
        assert message in capsys.readouterr().err


def test_outputs_that_may_not_be_written_are_refused(volume, tmp_path, capsys, no_training):
    image, labels = volume
    existing = tmp_path / "exists.pt"
    existing.write_bytes(b"x")
    for out, message in [
        (WEIGHTS_DIR / "tiny_default.pt", "never writes over the default weights"),
        (WEIGHTS_DIR / "new.pt", "weights folder"),
        (existing, "--overwrite"),
        (tmp_path / "missing" / "m.pt", "does not exist"),
    ]:
        assert _cli(image, labels, out, *FAST) == 2
        assert message in capsys.readouterr().err
    assert existing.read_bytes() == b"x" and not (WEIGHTS_DIR / "new.pt").exists()


def test_the_inputs_are_never_written_over_even_with_overwrite(
    volume, tmp_path, capsys, no_training
):
    image, labels = volume
    before = {p: p.read_bytes() for p in (image, labels)}
    for out, message in [
        (labels, "is, holds or lies in one of the inputs"),
        (image, "is, holds or lies in one of the inputs"),
        (image / "m.pt", "is, holds or lies in one of the inputs"),  # as in an image's store
        (tmp_path / "model.tif", "not a checkpoint name"),
    ]:
        assert _cli(image, labels, out, "--overwrite", *FAST) == 2
        assert message in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before and not (tmp_path / "model.tif").exists()


def test_a_folder_that_takes_no_new_file_is_refused_before_training(
    volume, tmp_path, capsys, no_training
):
    image, labels = volume
    folder = unwritable_folder(tmp_path)
    assert _cli(image, labels, folder / "m.pt", *FAST) == 2
    assert "does not take new files" in capsys.readouterr().err


def test_prepare_takes_arrays_as_a_widget_passes_them():
    image, labels = disks_with_labels(6)
    job = adapt_job.prepare(image, labels, settings=AdaptSettings(holdout=0.5))
    assert job.image["file"] is None and job.image["sha256"] is None
    assert len(job.image["data_sha256"]) == 64 and job.labels["shape"] == [6, 80, 80]
    assert len(job.split.held_out) == 6 and job.split.by == "planes"
    assert job.source["model"] == "tiny" and job.source["sha256"] == sha256sum(default_checkpoint())


def _moved_by_one_step(monkeypatch, **frozen) -> tuple[set[str], AdaptResult]:
    """The state-dict keys one adaptation step of the default model moved, with ``frozen``
    settings, and the result."""
    objects = _objects()
    split = hold_out(objects)
    monkeypatch.setattr(adapt_module, "measure", fake_measure([3.0, 2.0, 2.0]))
    model = _default_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = AdaptSettings(
        batch_size=1, max_extra_clicks=0, check_every=1, patience=1, threads=1, **frozen
    )
    result = adapt(
        model, objects.dataset.subset(split.train), objects.dataset.subset(split.measured), settings
    )
    after = result.model.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}, result


def test_frozen_blocks_keep_their_weights_and_the_rest_trains(monkeypatch):
    moved, result = _moved_by_one_step(monkeypatch, freeze_blocks=2)
    assert result.best_step == 1
    frozen = ("patch_embed_coords.", "backbone.patch_embed.", "backbone.pos_embed",
              "backbone.blocks.0.", "backbone.blocks.1.")  # fmt: skip
    assert moved and not {k for k in moved if k.startswith(frozen)}
    assert any(k.startswith("backbone.blocks.2.") for k in moved)  # the third block trains
    assert any(k.startswith("click_aware_decoder.") for k in moved)


def test_with_the_backbone_and_pixel_decoder_frozen_only_the_click_decoder_trains(monkeypatch):
    depth = len(_default_model().backbone.blocks)
    moved, _ = _moved_by_one_step(monkeypatch, freeze_blocks=depth, freeze_pixel_decoder=True)
    assert {k.split(".")[0] for k in moved} == {"click_aware_decoder"}


def test_average_checks_keeps_the_mean_of_the_checked_weights(monkeypatch):
    objects = _objects()
    split = hold_out(objects)
    seen, scores = [], fake_measure([3.0, 2.0, 2.5, 2.8, 2.6])

    def measure(model, samples, **kwargs):  # the weights each check measured
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return scores(model, samples, **kwargs)

    monkeypatch.setattr(adapt_module, "measure", measure)
    settings = AdaptSettings(batch_size=1, max_extra_clicks=0, check_every=1, patience=5,
                             max_steps=3, threads=1, average_checks=True)  # fmt: skip
    result = adapt(
        _default_model(),
        objects.dataset.subset(split.train),
        objects.dataset.subset(split.measured),
        settings,
    )
    assert len(seen) == 5  # before, 3 checks, then the mean
    assert result.after["averaged"] == 3 and result.after["score"] == 2.6
    state = result.model.state_dict()
    key = next(k for k in state if not torch.equal(seen[1][k], seen[3][k]))  # a trained one
    expected = sum(s[key] for s in seen[1:4]) / 3
    torch.testing.assert_close(state[key], expected)
    torch.testing.assert_close(seen[4][key], expected)  # what the last measurement saw


def test_settings_are_checked():
    with pytest.raises(AdaptInputError, match="lr must be > 0"):
        AdaptSettings(lr=0).check()
    with pytest.raises(AdaptInputError, match="freeze blocks must be >= 0"):
        AdaptSettings(freeze_blocks=-1).check()
    with pytest.raises(AdaptInputError, match="held-out fraction"):
        hold_out(_objects(2), fraction=1.0)


def test_cli_adapts_a_scanner_volume_from_the_mri_weights(volume, tmp_path, mri_weights):
    """No --checkpoint: a NIfTI volume starts from the shipped MRI weights, as in the plugin."""
    import SimpleITK as sitk

    from napari_adaptiveclick.models.checkpoint import default_checkpoint as shipped

    paths = []
    for source in volume:
        path = tmp_path / f"{source.stem}.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(tifffile.imread(source)), str(path))
        paths.append(path)
    out = tmp_path / "adapted.pt"
    assert _cli(*paths, out, "--max-steps", "1", "--keep-worse", *FAST) == 0
    prov = read_checkpoint(out)["adaptation"]["source"]
    assert prov["checkpoint"] == "default-mri"
    assert prov["sha256"] == sha256sum(shipped("default-mri"))


@pytest.mark.parametrize("objects", [1, 3])
def test_the_table_gives_a_standard_error_only_with_more_than_one_held_out_object(objects):
    figures = {"NoC@85": 2.0, "NoC@90": 3.0, "NoF@85": 0, "NoF@90": 0}
    before = {**figures, "score": 2.5, "per_object": [2.5] * objects}
    after = {**figures, "score": 2.0, "per_object": [2.0, 2.5, 1.5][:objects]}
    result = adapt_module.AdaptResult(None, before, after, 10, 8, 30.0, "budget")
    text = adapt_module.format_table(result, objects, "object")
    if objects == 1:
        assert "one held-out object: too few to tell" in text and "+-" not in text
    else:
        assert "-0.50 +- 0.29 (standard error over 3 objects" in text


def test_4d_or_rgb_images_are_refused_with_the_fitting_advice():
    from napari_adaptiveclick.io.volume import ImageVolume

    series = ImageVolume(np.zeros((2, 3, 8, 8)), (1.0,) * 4, (0.0,) * 4)  # axes "tzyx"
    with pytest.raises(AdaptInputError, match="save the time point or channel"):
        collect_objects(series, as_volume(np.zeros((2, 3, 8, 8), np.uint8)))
    rgb = ImageVolume(np.zeros((8, 8, 3)), (1.0,) * 3, (0.0,) * 3, axes="yxc")
    with pytest.raises(AdaptInputError, match="convert RGB images to grey"):
        collect_objects(rgb, as_volume(np.zeros((8, 8), np.uint8)))
