"""Shared pytest fixtures (small and generated; real data only through ``shared_data``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared data (``$ADAPTIVECLICK_DATA`` or ``../shared/data`` from the working directory, i.e. next to the repository when pytest runs from its root);
    skips the test when it is absent. Use with ``@pytest.mark.data``."""
    from napari_adaptiveclick.learning.datasets import default_data_root

    root = default_data_root()
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    return root


@pytest.fixture(autouse=True)
def _autosave_in_tmp(tmp_path_factory, monkeypatch):
    """Autosave stores of images without a file go to a per-test folder, never to the user's
    cache (``~/.cache/napari-adaptiveclick``)."""
    monkeypatch.setenv("ADAPTIVECLICK_AUTOSAVE_DIR", str(tmp_path_factory.mktemp("autosave")))


@pytest.fixture
def mri_weights(tmp_path, monkeypatch):
    """A weights folder of its own holding the installed default weights and, exported by
    ``training.export --shipped default-mri``, a freshly initialised ``tiny`` as the MRI
    weights; returns that model (its weights as stored, float16)."""
    import shutil

    import torch

    from napari_adaptiveclick.models import checkpoint
    from napari_adaptiveclick.models.registry import build_model
    from training import export

    folder = tmp_path / "weights"
    folder.mkdir()
    installed = checkpoint.default_checkpoint()
    if installed is not None:
        for path in (checkpoint.shipped_manifest("default"), installed):
            shutil.copy(path, folder / path.name)
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(export, "WEIGHTS_DIR", folder)
    torch.manual_seed(3)
    checkpoint.atomic_torch_save(checkpoint.checkpoint_dict(build_model("tiny")), tmp_path / "m.pt")
    args = ["--checkpoint", str(tmp_path / "m.pt"), "--out", str(folder / "tiny_mri.pt"), "--half"]
    assert export.main([*args, "--shipped", "default-mri"]) == 0
    return build_model(None, folder / "tiny_mri.pt")


@pytest.fixture(scope="module")
def random_tiny_session():
    """A ``ClickSession`` on a randomly initialised ``tiny`` (seed 0) on the CPU: its masks are
    meaningless, so tests with it assert encodings, geometry, undo and replay."""
    import warnings

    import torch

    from napari_adaptiveclick.interactive.session import ClickSession

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random tiny weights are fine here
        return ClickSession("tiny", device="cpu")
