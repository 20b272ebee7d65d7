"""The ``synthetic`` dataset: seeded scenes, every family, separate train and test streams."""

from __future__ import annotations

import numpy as np
import pytest

from napari_adaptiveclick.learning.datasets import DatasetError, SyntheticDataset, build_dataset
from napari_adaptiveclick.learning.datasets.synthetic import KINDS, synthetic_scene

SIZE = 96


def _same(a, b) -> bool:
    return np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)


def test_same_index_gives_the_same_scene():
    first = build_dataset("synthetic", None, "train", size=SIZE)
    again = build_dataset("synthetic", None, "train", size=SIZE)
    assert _same(first[3], first[3]) and _same(first[3], again[3])
    assert first[3].name == again[3].name
    assert _same(first[-1], first[len(first) - 1])


def test_different_indices_seeds_and_splits_differ():
    train = build_dataset("synthetic", None, "train", size=SIZE)
    test = build_dataset("synthetic", None, "test", size=SIZE)
    other_seed = build_dataset("synthetic", None, "train", size=SIZE, seed=1)
    assert not _same(train[0], train[1])
    assert not any(_same(train[i], test[i]) for i in range(3))  # another seed stream
    assert not _same(train[0], other_seed[0])


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_gives_an_object_on_a_unit_image(kind):
    dataset = build_dataset("synthetic", None, "train", kind=kind, size=SIZE, length=3)
    assert len(dataset) == 3
    for sample in dataset:
        assert sample.image.shape == sample.mask.shape == (SIZE, SIZE)
        assert sample.image.dtype == np.float32 and sample.mask.dtype == bool
        assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0
        assert sample.image.std() > 0.01 and not sample.image.flags.writeable
        assert sample.mask.any() and not sample.mask.all()
        assert sample.name.startswith(f"synthetic/{kind}#") and sample.group == f"synthetic/{kind}"


def test_mix_draws_several_families():
    mix = build_dataset("synthetic", None, "train", size=SIZE)
    kinds = {mix[i].group for i in range(12)}
    assert len(kinds) >= 3 and kinds <= {f"synthetic/{k}" for k in KINDS}


def test_bad_options_raise_dataset_errors():
    with pytest.raises(DatasetError, match="Unknown synthetic kind 'neurons'"):
        build_dataset("synthetic", None, "train", kind="neurons")
    with pytest.raises(DatasetError, match="Unknown synthetic kind 'neurons'"):
        synthetic_scene(np.random.default_rng(0), "neurons", SIZE)
    with pytest.raises(DatasetError, match="Unknown split"):
        SyntheticDataset("val")
    with pytest.raises(DatasetError, match="size must be 32..2048"):
        SyntheticDataset(size=16)
    with pytest.raises(DatasetError, match="do not apply to synthetic"):
        build_dataset("synthetic", None, "train", min_area=10)
    with pytest.raises(IndexError):
        SyntheticDataset(length=2)[2]
