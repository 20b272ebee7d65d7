"""Training with boxes and strokes as prompts (issue #16 item 1): what a box-first or a
stroke-first sample feeds the model, strokes as corrective prompts, the box prior carried by
the weights, and the session feeding a box the way the weights were trained."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_adaptiveclick.interactive.prompts import BoxPrompt, Click, Scribble
from napari_adaptiveclick.learning.config import TrainConfig
from napari_adaptiveclick.learning.datasets.synthetic import SyntheticDataset
from napari_adaptiveclick.learning.trainer import Trainer
from napari_adaptiveclick.models.config import ModelConfig
from napari_adaptiveclick.models.registry import build_from_config, get_config


def _trainer(**options) -> Trainer:
    cfg = TrainConfig(datasets=[], data="", out="", batch_size=3, num_threads=1, **options)
    torch.manual_seed(0)
    model = build_from_config(get_config("tiny"))
    return Trainer.for_objects(cfg, [SyntheticDataset(kind="organelles", size=128)], model)


def test_a_box_first_sample_is_the_seed_click_and_the_prior_inside_the_box():
    trainer = _trainer(box_prob=1.0, max_extra_clicks=0, box_prior=0.3)
    assert trainer.model.config.box_prior == 0.3  # the weights will say how to feed a box
    rng = np.random.default_rng(1)
    images, masks, prompts, boxes, _ = trainer.make_batch(rng)
    prev = trainer.add_error_clicks(images, masks, prompts, rng, boxes)
    for mask, given, box, prior in zip(masks, prompts, boxes, prev[:, 0], strict=True):
        assert box is not None and len(given) == 1
        click = given[0]
        assert isinstance(click, Click) and click.positive
        assert box.top <= click.row < box.bottom and box.left <= click.col < box.right
        assert click.row == (box.top + box.bottom - 1) // 2  # the box's seed, as add_box
        inside = torch.zeros_like(prior, dtype=torch.bool)
        inside[box.top : box.bottom, box.left : box.right] = True
        assert torch.all(prior[inside] == 0.3) and torch.all(prior[~inside] == 0)
        rows, cols = np.nonzero(mask)  # the jittered box stays near the object's box
        assert abs(box.top - rows.min()) <= 20 and abs(box.right - 1 - cols.max()) <= 20


def test_a_stroke_first_sample_runs_inside_the_object_and_corrections_can_be_strokes():
    trainer = _trainer(stroke_prob=1.0, max_extra_clicks=2)
    rng = np.random.default_rng(2)
    images, masks, prompts, boxes, _ = trainer.make_batch(rng)
    assert boxes == [None] * 3
    for mask, given in zip(masks, prompts, strict=True):
        assert len(given) == 1 and isinstance(given[0], Scribble) and given[0].positive
        assert all(mask[int(r), int(c)] for r, c in given[0].points)
    before = [len(p) for p in prompts]
    rounds = []
    for seed in range(3, 12):  # until a batch draws error rounds
        trainer.add_error_clicks(images, masks, prompts, np.random.default_rng(seed), boxes)
        rounds = [p[b:] for p, b in zip(prompts, before, strict=True)]
        if any(rounds):
            break
    added = [q for r in rounds for q in r]
    assert added and all(isinstance(q, Scribble) for q in added)


def test_plain_training_draws_no_box_and_keeps_the_weights_box_free():
    trainer = _trainer()
    assert trainer.model.config.box_prior == 0.0
    _, _, prompts, boxes, priors = trainer.make_batch(np.random.default_rng(0))
    assert boxes == [None] * 3 and all(isinstance(p, Click) for g in prompts for p in g)
    assert priors == [None] * 3


def test_the_box_prior_is_part_of_the_model_config():
    old = get_config("tiny").to_dict()
    assert "box_prior" not in old  # 0 is not written: older versions load the weights too
    assert ModelConfig.from_dict(old).box_prior == 0.0
    trained = replace(get_config("tiny"), box_prior=0.4).to_dict()
    assert ModelConfig.from_dict(trained).box_prior == 0.4
    with pytest.raises(ValueError, match="box_prior must be in"):
        ModelConfig.from_dict({**old, "box_prior": 0.6})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"box_prob": 1.5}, r"box_prob must be in \[0, 1\]"),
        ({"stroke_prob": -0.1}, r"stroke_prob must be in \[0, 1\]"),
        ({"box_prob": 0.2, "box_prior": 0.6}, r"box_prior must be in \(0, 0.5\)"),
    ],
)
def test_bad_prompt_shares_are_refused_before_training(options, message):
    with pytest.raises(ValueError, match=message):
        _trainer(**options)


def test_finetune_refuses_a_box_prior_it_could_not_load(tmp_path, capsys):
    from training.finetune import main

    args = ["--dataset", "synthetic", "--out", str(tmp_path / "run"), "--box-prob", "0.2"]
    with pytest.raises(SystemExit, match="box_prior must be in"):
        main([*args, "--box-prior", "0.5"])
    assert not (tmp_path / "run").exists()  # nothing was started


@pytest.mark.parametrize("box_prior", [0.0, 0.4])
def test_the_session_feeds_a_box_as_the_weights_were_trained(monkeypatch, box_prior):
    from napari_adaptiveclick.interactive.session import ClickSession

    torch.manual_seed(0)
    model = build_from_config(replace(get_config("tiny"), box_prior=box_prior))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = ClickSession(model, device="cpu")
    image = np.random.default_rng(0).normal(100, 10, (300, 260)).astype(np.float32)
    session.set_image(image)
    priors = []
    real = session._predict
    monkeypatch.setattr(
        session,
        "_predict",
        lambda p, prior, roi, limit: priors.append(prior.window(roi)) or real(p, prior, roi, limit),
    )
    boxed = session.add_box(100, 80, 160, 150).probability
    box = BoxPrompt(100, 80, 160, 150).pixel_box()
    roi = session.focus_box
    inside = np.zeros((roi.height, roi.width), bool)
    inside[box.top - roi.top : box.bottom - roi.top, box.left - roi.left : box.right - roi.left] = (
        True
    )
    np.testing.assert_array_equal(priors[0][inside], np.float32(box_prior))
    np.testing.assert_array_equal(priors[0][~inside], 0.0)
    session.add_click(130, 110)  # later prompts: the prediction is the prior, not the box
    second = session.focus_box
    np.testing.assert_array_equal(
        priors[1], boxed[second.top : second.bottom, second.left : second.right]
    )


def _disc_volume(planes: int = 5, size: int = 64):
    """A disc drifting 3 px per plane (radius 12 + plane) on noise, labelled 1 on every plane."""
    from napari_adaptiveclick.io.volume import ImageVolume

    rng = np.random.default_rng(0)
    image = rng.normal(0.3, 0.05, (planes, size, size)).astype(np.float32)
    labels = np.zeros(image.shape, np.uint8)
    rows, cols = np.mgrid[:size, :size]
    for z in range(planes):
        labels[z][(rows - 32) ** 2 + (cols - 20 - 3 * z) ** 2 < (12 + z) ** 2] = 1
    image[labels > 0] += 0.5
    return ImageVolume(image, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), labels


def _discs(volume, labels: np.ndarray, follow: bool):
    """A collector holding the disc volume's objects (followed across planes or not)."""
    from napari_adaptiveclick.learning.datasets.base import Collector

    collector = Collector()
    collector.add_volume(
        volume,
        labels,
        lambda plane: plane.astype(np.uint8),
        axis=0,
        source="v",
        group="v",
        tag="wt",
        min_area=1,
        stats=(0.0, 1.0),
        follow=follow,
    )
    return collector


def _disc_trainer(dataset, **options) -> Trainer:
    cfg = TrainConfig(datasets=[], data="", out="", batch_size=4, num_threads=1, **options)
    torch.manual_seed(0)
    return Trainer.for_objects(cfg, [dataset], build_from_config(get_config("tiny")))


@pytest.mark.parametrize("follow", [True, False])
def test_objects_followed_across_planes_keep_their_neighbours(follow):

    volume, labels = _disc_volume()
    collector = _discs(volume, labels, follow)
    dataset = collector.build("discs")
    assert len(dataset) == 5
    for z, sample in enumerate(dataset):
        np.testing.assert_array_equal(sample.mask, labels[z] > 0)
        expected = [labels[j] > 0 for j in (z - 1, z + 1) if follow and 0 <= j < 5]
        assert len(sample.neighbours) == len(expected)
        for got, want in zip(sample.neighbours, expected, strict=True):
            np.testing.assert_array_equal(got, want)
    assert len(dataset[1:3]) == 2 and len(dataset[1:3][0].neighbours) == (2 if follow else 0)


def test_a_propagation_sample_is_prompted_from_the_neighbour_mask():
    from scipy.ndimage import distance_transform_edt

    volume, labels = _disc_volume()
    dataset = _discs(volume, labels, True).build("discs")
    trainer = _disc_trainer(
        dataset, neighbour_prob=1.0, max_extra_clicks=0, scale_min=1.0, scale_max=1.0
    )
    rng = np.random.default_rng(3)
    images, masks, prompts, boxes, priors = trainer.make_batch(rng)
    prev = trainer.add_error_clicks(images, masks, prompts, rng, boxes, priors)
    for mask, given, prior, fed in zip(masks, prompts, priors, prev[:, 0], strict=True):
        assert prior is not None and prior.shape == mask.shape
        iou = (prior & mask).sum() / (prior | mask).sum()
        assert 0.4 < iou < 0.95  # the disc one plane away: near, not the same
        np.testing.assert_array_equal(fed.numpy(), prior.astype(np.float32))
        (click,) = given  # propagation's click: positive at the neighbour's deepest point
        depth = distance_transform_edt(np.pad(prior, 1))[1:-1, 1:-1]
        assert click.positive and depth[int(click.row), int(click.col)] == depth.max()
    plain = _trainer()  # without the option nothing changes: no priors, no extra draws
    assert plain.make_batch(np.random.default_rng(0))[4] == [None] * 3
    with pytest.raises(ValueError, match="neighbour_prob"):
        TrainConfig(datasets=[], data="", out="", neighbour_prob=1.5).check()


def test_without_propagation_samples_followed_objects_train_exactly_as_before():
    """neighbour_prob 0 (every older recipe): a dataset whose objects have neighbours gives the
    same batches and draws the same random numbers as one without them."""

    volume, labels = _disc_volume()
    datasets = []
    for follow in (True, False):
        collector = _discs(volume, labels, follow)
        datasets.append(collector.build("discs"))
    assert datasets[0][2].neighbours and not datasets[1][2].neighbours
    options = dict(
        box_prob=0.3, stroke_prob=0.3, zoom_prob=0.3, domain_randomization=0.5, max_extra_clicks=2
    )
    outputs = []
    for dataset in datasets:
        trainer = _disc_trainer(dataset, **options)
        steps = []
        for step in range(3):
            rng = np.random.default_rng([0, step])
            images, masks, prompts, boxes, priors = trainer.make_batch(rng)
            prev = trainer.add_error_clicks(images, masks, prompts, rng, boxes, priors)
            steps.append(
                (images.numpy(), masks, prompts, boxes, priors, prev.numpy(), rng.random())
            )
        outputs.append(steps)
    for followed, plain in zip(*outputs, strict=True):
        for a, b in zip(followed, plain, strict=True):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b)
            else:
                assert a == b
