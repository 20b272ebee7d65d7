"""Regression guard for the shipped default weights on real ssTEM / BraTS test objects.

The reference figures live in ``weights/default.json`` under ``"regression"``; they were
measured with :func:`regression_figures` when the weights were exported (see MODEL_CARD.md).
A change in the model code, the session or the simulator that moves NoC beyond the margin
fails here.
"""

from __future__ import annotations

import json

import pytest

from napari_adaptiveclick.models.checkpoint import DEFAULT_MANIFEST, default_checkpoint

MARGIN_NOC = 0.75  # clicks
SUBSETS = {
    "sstem_mitochondria": ("sstem", {"kind": "mitochondria"}),
    "brats_wt": ("brats", {}),
}


def regression_figures(data_root, objects: int = 8, seed: int = 0) -> dict[str, dict[str, float]]:
    """NoC@85/90 of the default weights on fixed test subsets (flip TTA off, 20 clicks max)."""
    from napari_adaptiveclick.evaluation.noc import evaluate_dataset, summarize
    from napari_adaptiveclick.interactive.session import ClickSession
    from napari_adaptiveclick.learning.datasets import build_dataset

    session = ClickSession(None, device="cpu", flip_tta=False)
    out = {}
    for key, (name, options) in SUBSETS.items():
        samples = build_dataset(name, data_root, "test", **options).random_subset(
            objects, seed=seed
        )
        summary = summarize(
            evaluate_dataset(session, samples, max_clicks=20, stop_at=0.9, stats=(0.0, 1.0)), 20
        )
        out[key] = {"NoC@85": summary["NoC@85"], "NoC@90": summary["NoC@90"]}
    return out


@pytest.mark.data
def test_default_weights_keep_their_noc(shared_data):
    if default_checkpoint() is None:
        pytest.skip("no default weights are shipped in this checkout")
    reference = json.loads(DEFAULT_MANIFEST.read_text()).get("regression")
    assert reference, "weights/default.json lacks the 'regression' figures (see MODEL_CARD.md)"
    measured = regression_figures(shared_data)
    for key, figures in reference.items():
        for metric, value in figures.items():
            assert abs(measured[key][metric] - value) <= MARGIN_NOC, (
                key,
                metric,
                measured[key][metric],
                value,
            )
