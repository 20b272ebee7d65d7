"""Checkpoint loading: released format from the key listing, our format, refusals."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch

from napari_adaptiveclick.models.checkpoint import (
    read_checkpoint,
    save_checkpoint,
    sha256sum,
    verify_sha256,
)
from napari_adaptiveclick.models.errors import CheckpointError, UnsafeCheckpointError
from napari_adaptiveclick.models.registry import build_model, load_model, protocol_for

LISTING = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "reference"
    / "official_vitb448_state_dict.txt"
)


class EasyDict(dict):
    """Stands in for the release's ``easydict.EasyDict`` config (a dict with attributes)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key, value in self.items():
            setattr(self, key, value)


def _release_listing() -> dict[str, tuple[int, ...]]:
    if not LISTING.is_file():
        pytest.skip(f"{LISTING} not found (../shared beside the repository)")
    shapes = {}
    for line in LISTING.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split(" ", 1)
        shapes[key] = tuple(int(n) for n in re.findall(r"\d+", shape))
    return shapes


def test_released_vitb_checkpoint_loads_with_no_missing_or_unexpected_keys(tmp_path):
    shapes = _release_listing()
    assert len(shapes) == 457
    gen = torch.Generator().manual_seed(0)
    state = {
        k: torch.randn(s, generator=gen) * 0.02 if len(s) else torch.tensor(0.5)
        for k, s in shapes.items()
    }
    config = EasyDict(
        {
            "device": torch.device("cuda:0"),
            "EXPS_PATH": Path("/home/user/experiments"),
            "crop_size": (448, 448),
        }
    )
    path = tmp_path / "adaptiveclick_base448_sbd.pth"
    torch.save({"state_dict": state, "config": config}, path)
    with pytest.raises(pickle.UnpicklingError):  # the pickled config defeats weights_only loading
        torch.load(path, weights_only=True)
    model = build_model("vit_b", path)
    own = model.state_dict()
    assert torch.equal(own["backbone.pos_embed"], state["backbone.pos_embed"])
    assert torch.equal(
        own["pixel_decoder.lateral_convs.0.0.weight"],
        state["pixel_decoder.lateral_convs.0.0.weight"],
    )
    assert torch.equal(
        own["click_aware_decoder.query_feat.weight"], state["click_aware_decoder.query_feat.weight"]
    )
    # The name is inferred from the weights when not given.
    released = load_model(path)
    assert released.config.name == "vit_b"
    assert protocol_for(released) == "release"  # released weights use the release's protocol


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_checkpoint_whose_pickle_runs_a_function_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "evil.pth"
    state = build_model("tiny").state_dict()
    torch.save({"state_dict": state, "config": _Exploit()}, path)
    calls = []
    monkeypatch.setattr("os.system", lambda *a: calls.append(a))
    with pytest.raises(UnsafeCheckpointError, match="system"):
        build_model("tiny", path)
    assert calls == []


def test_wrong_architecture_names_the_keys(tmp_path):
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, build_model("tiny"))
    ckpt = torch.load(path, weights_only=True)
    del ckpt["state_dict"]["backbone.pos_embed"]
    ckpt["state_dict"]["decoder.extra.weight"] = torch.zeros(3)
    ckpt["state_dict"]["click_aware_decoder.query_feat.weight"] = torch.zeros(7, 128)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as info:
        build_model(None, path)
    message = str(info.value)
    assert "missing keys: backbone.pos_embed" in message
    assert "unexpected keys: decoder.extra.weight" in message
    assert "click_aware_decoder.query_feat.weight (7, 128) vs (10, 128)" in message


def test_released_checkpoint_of_another_model_is_refused(tmp_path):
    state = {k: v for k, v in build_model("tiny").state_dict().items()}
    path = tmp_path / "release_like.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match="does not fit the 'vit_b' architecture"):
        build_model("vit_b", path)


def test_own_checkpoint_round_trip_with_weights_only(tmp_path):
    model = build_model("tiny")
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, extra={"note": "test"})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "napari-adaptiveclick" and raw["version"] == 1 and raw["note"] == "test"
    loaded = build_model(None, path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    with pytest.raises(CheckpointError, match="holds a 'tiny' model, not 'vit_b'"):
        build_model("vit_b", path)


def test_half_precision_checkpoint_loads_as_float32(tmp_path):
    model = build_model("tiny")
    path = tmp_path / "half.pt"
    save_checkpoint(path, model, half=True)
    loaded = build_model(None, path)
    weight = loaded.state_dict()["backbone.patch_embed.proj.weight"]
    assert weight.dtype == torch.float32
    torch.testing.assert_close(
        weight, model.state_dict()["backbone.patch_embed.proj.weight"], atol=1e-3, rtol=1e-3
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "Checkpoint not found"),
        (b"not a checkpoint at all", "not a readable PyTorch checkpoint"),
    ],
)
def test_missing_or_corrupt_file(tmp_path, content, message):
    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, build_model("tiny"))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        build_model(None, path)


def test_file_without_state_dict(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        read_checkpoint(path)


def test_sha256_verification(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    digest = sha256sum(path)
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    verify_sha256(path, digest)
    with pytest.raises(CheckpointError, match="corrupt or was replaced"):
        verify_sha256(path, "0" * 64)
