"""Regression guard for the shipped weights on real ssTEM / BraTS test objects.

The reference figures live in ``weights/<name>.json`` under ``"regression"``; they were
measured with :func:`regression_figures` when the weights were exported (see MODEL_CARD.md).
A change in the model code, the session or the simulator that moves NoC beyond the margin
fails here.
"""

from __future__ import annotations

import json

import pytest

from napari_adaptiveclick.models.checkpoint import (
    SHIPPED_MODELS,
    default_checkpoint,
    shipped_manifest,
)

MARGIN_NOC = 0.75  # clicks
SUBSETS = {
    "sstem_mitochondria": ("sstem", {"kind": "mitochondria"}),
    "brats_wt": ("brats", {}),
}
# The subsets each shipped file is guarded on: the MRI weights only on MRI.
GUARDED = {"default": tuple(SUBSETS), "default-mri": ("brats_wt",)}


def regression_figures(
    data_root, objects: int = 8, seed: int = 0, weights: str = "default"
) -> dict[str, dict[str, float]]:
    """NoC@85/90 of the shipped ``weights`` on fixed test subsets (flip TTA off, 20 clicks)."""
    from napari_adaptiveclick.evaluation.noc import evaluate_dataset, summarize
    from napari_adaptiveclick.interactive.session import ClickSession
    from napari_adaptiveclick.learning.datasets import build_dataset

    session = ClickSession(weights, device="cpu", flip_tta=False)
    out = {}
    for key in GUARDED[weights]:
        name, options = SUBSETS[key]
        samples = build_dataset(name, data_root, "test", **options).random_subset(
            objects, seed=seed
        )
        summary = summarize(
            evaluate_dataset(session, samples, max_clicks=20, stop_at=0.9, stats=(0.0, 1.0)), 20
        )
        out[key] = {"NoC@85": summary["NoC@85"], "NoC@90": summary["NoC@90"]}
    return out


@pytest.mark.data
@pytest.mark.parametrize("weights", SHIPPED_MODELS)
def test_shipped_weights_keep_their_noc(shared_data, weights):
    if default_checkpoint(weights) is None:
        pytest.skip(f"no {weights!r} weights are shipped in this checkout")
    reference = json.loads(shipped_manifest(weights).read_text()).get("regression")
    assert reference, f"weights/{weights}.json lacks the 'regression' figures (MODEL_CARD.md)"
    measured = regression_figures(shared_data, weights=weights)
    for key, figures in reference.items():
        for metric, value in figures.items():
            assert abs(measured[key][metric] - value) <= MARGIN_NOC, (
                key,
                metric,
                measured[key][metric],
                value,
            )
