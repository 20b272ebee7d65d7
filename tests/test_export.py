"""``python -m training.export``: half-precision weights from a training checkpoint."""

from __future__ import annotations

import torch

from napari_adaptiveclick.models.checkpoint import atomic_torch_save, checkpoint_dict
from napari_adaptiveclick.models.registry import build_model
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
