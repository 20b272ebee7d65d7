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
