"""``python -m training.export``: half-precision weights from a training checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

from napari_adaptiveclick.models import checkpoint, registry
from napari_adaptiveclick.models.checkpoint import atomic_torch_save, checkpoint_dict, sha256sum
from napari_adaptiveclick.models.registry import build_model
from training import export
from training.export import main


def test_export_half_precision_weights(tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model("tiny")
    state = checkpoint_dict(
        model, extra={"optimizer": {"state": {}, "param_groups": []}, "step": 7}
    )
    atomic_torch_save(state, tmp_path / "last.pt")
    out = tmp_path / "tiny.pt"
    assert (
        main(
            [
                "--checkpoint",
                str(tmp_path / "last.pt"),
                "--out",
                str(out),
                "--half",
                "--note",
                "test",
            ]
        )
        == 0
    )
    raw = torch.load(out, weights_only=True)
    assert "optimizer" not in raw and raw["note"] == "test"
    assert raw["state_dict"]["backbone.pos_embed"].dtype == torch.float16
    loaded = build_model(None, out)
    torch.testing.assert_close(
        loaded.state_dict()["backbone.pos_embed"],
        model.state_dict()["backbone.pos_embed"],
        atol=1e-3,
        rtol=1e-3,
    )
    assert out.stat().st_size < (tmp_path / "last.pt").stat().st_size * 0.6
    assert (
        main(["--checkpoint", str(tmp_path / "last.pt"), "--out", str(out)]) == 2
    )  # never overwrites
    assert "exists" in capsys.readouterr().err


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """An empty weights folder of its own, so that exporting never touches the installed one."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(export, "WEIGHTS_DIR", folder)
    torch.manual_seed(1)
    atomic_torch_save(checkpoint_dict(build_model("tiny")), tmp_path / "final.pt")
    return folder


def test_export_as_shipped_mri_weights_writes_their_manifest(weights_dir, tmp_path):
    out = weights_dir / "tiny_mri.pt"
    args = ["--checkpoint", str(tmp_path / "final.pt"), "--out", str(out), "--half"]
    assert main([*args, "--shipped", "default-mri"]) == 0
    manifest = json.loads((weights_dir / "default-mri.json").read_text())
    assert manifest == {"file": "tiny_mri.pt", "sha256": sha256sum(out), "model": "tiny"}
    assert not (weights_dir / "default.json").exists()  # the default weights are untouched
    assert checkpoint.default_checkpoint("default-mri") == out
    assert checkpoint.default_checkpoint() is None
    assert registry.shipped_weights_installed("default-mri")
    mri = registry.resolve_model("default-mri")  # what ClickSession("default-mri") loads
    assert registry.default_for_image("case/flair.nii.gz") == "default-mri"
    for path in ("stack/em.tif", "scan.zarr", None, "case/flair.NII"):
        expected = "default-mri" if path == "case/flair.NII" else "default"
        assert registry.default_for_image(path) == expected
    torch.testing.assert_close(
        mri.state_dict()["backbone.pos_embed"],
        build_model(None, tmp_path / "final.pt").state_dict()["backbone.pos_embed"],
        atol=1e-3,
        rtol=1e-3,
    )


def test_shipped_export_refuses_a_file_outside_the_weights_folder(weights_dir, tmp_path, capsys):
    out = tmp_path / "elsewhere.pt"
    args = [
        "--checkpoint",
        str(tmp_path / "final.pt"),
        "--out",
        str(out),
        "--shipped",
        "default-mri",
    ]
    assert main(args) == 2
    assert "inside" in capsys.readouterr().err and not out.exists()
    assert not (weights_dir / "default-mri.json").exists()


def test_missing_mri_weights_give_the_default_and_a_clear_error(weights_dir):
    assert registry.default_for_image("case/flair.nii.gz") == "default"  # nothing installed
    with pytest.raises(checkpoint.CheckpointError, match="No 'default-mri' weights are shipped"):
        registry.resolve_model("default-mri")


def test_export_average_is_the_mean_of_the_weights(tmp_path, capsys):
    """``--average``: a uniform weight soup, every float weight the mean of the inputs."""
    paths, models = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_model("tiny"))
        if seed == 1:  # trained with boxes: how a box is fed is no part of the architecture
            models[-1].config = dataclasses.replace(models[-1].config, box_prior=0.4)
        paths.append(tmp_path / f"run{seed}.pt")
        atomic_torch_save(checkpoint_dict(models[-1]), paths[-1])
    out = tmp_path / "soup.pt"
    args = ["--checkpoint", str(paths[0]), "--average", str(paths[1]), str(paths[2])]
    assert main([*args, "--out", str(out)]) == 0
    soup = build_model(None, out).state_dict()
    for key in ("backbone.pos_embed", "backbone.blocks.0.attn.qkv.weight"):
        expected = sum(m.state_dict()[key] for m in models) / 3
        torch.testing.assert_close(soup[key], expected)
        assert not torch.equal(soup[key], models[0].state_dict()[key])
    raw = torch.load(out, weights_only=True)
    assert raw["averaged"] == [str(p) for p in paths]
    # another architecture is refused with a clear error, and nothing is written
    tiny = registry.get_config("tiny")
    shallow = dataclasses.replace(
        tiny, vit=dataclasses.replace(tiny.vit, depth=4, global_blocks=(3,))
    )
    other = registry.build_from_config(shallow)
    atomic_torch_save(checkpoint_dict(other), tmp_path / "other.pt")
    bad = tmp_path / "bad.pt"
    args = ["--checkpoint", str(paths[0]), "--average", str(tmp_path / "other.pt")]
    assert main([*args, "--out", str(bad)]) == 2
    assert "architectures differ" in capsys.readouterr().err and not bad.exists()


def test_export_records_how_a_box_is_fed(tmp_path, capsys):
    """``--box-prior``: the config of the written weights says how a box is fed; the weights
    themselves are unchanged, and a value at or above the mask threshold is refused."""
    torch.manual_seed(0)
    source = tmp_path / "final.pt"
    atomic_torch_save(checkpoint_dict(build_model("tiny")), source)
    out = tmp_path / "boxed.pt"
    assert main(["--checkpoint", str(source), "--out", str(out), "--box-prior", "0.4"]) == 0
    exported, original = build_model(None, out), build_model(None, source)
    assert exported.config.box_prior == 0.4 and original.config.box_prior == 0.0
    for key, value in original.state_dict().items():
        assert torch.equal(exported.state_dict()[key], value)
    again = tmp_path / "again.pt"  # exported again without the option, it keeps the value
    assert main(["--checkpoint", str(out), "--out", str(again)]) == 0
    assert build_model(None, again).config.box_prior == 0.4
    bad = tmp_path / "bad.pt"
    capsys.readouterr()
    assert main(["--checkpoint", str(source), "--out", str(bad), "--box-prior", "0.5"]) == 2
    assert "box_prior must be in [0, 0.5)" in capsys.readouterr().err and not bad.exists()


def test_checkpoints_are_readable_by_others_like_any_other_output(tmp_path):
    path = tmp_path / "model.pt"
    atomic_torch_save({"x": torch.zeros(2)}, path)
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # as open() would, not mkstemp's 0600
    path.chmod(0o600)  # a file the user made private stays private when rewritten
    atomic_torch_save({"x": torch.ones(2)}, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
