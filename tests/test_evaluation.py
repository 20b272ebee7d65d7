"""NoC / NoF / mIoU@k bookkeeping with hand-made predictors, and the random-walker baseline."""

from dataclasses import dataclass

import numpy as np
import pytest

from napari_adaptiveclick.evaluation.baseline import RandomWalkerPredictor
from napari_adaptiveclick.evaluation.noc import (
    evaluate_dataset,
    evaluate_object,
    mask_iou,
    summarize,
)
from napari_adaptiveclick.interactive.prompts import Click


@dataclass
class Result:
    probability: np.ndarray


class ScheduledPredictor:
    """Returns part of the truth so that the IoU after click k is ``schedule[k - 1]``
    (the first ``round(iou * area)`` object pixels in row-major order, a subset of gt).
    With ``schedule=None`` it returns the truth itself (a perfect predictor)."""

    def __init__(self, gt: np.ndarray, schedule: list[float] | None) -> None:
        self.gt, self.schedule = gt, schedule
        self.images_set = 0
        self.calls: list[tuple[float, float, bool]] = []

    def set_image(self, image, stats=None):
        self.images_set += 1

    def reset(self):
        self.calls = []

    def add_click(self, row, col, positive=True):
        self.calls.append((row, col, positive))
        if self.schedule is None:
            return Result(self.gt.astype(np.float32))
        iou = self.schedule[min(len(self.calls), len(self.schedule)) - 1]
        flat = self.gt.ravel().copy()
        keep = np.flatnonzero(flat)[: round(iou * flat.sum())]
        flat[:] = False
        flat[keep] = True
        return Result(flat.reshape(self.gt.shape).astype(np.float32))


@dataclass
class Sample:
    image: np.ndarray
    mask: np.ndarray
    name: str
    group: str


def square(shape=(20, 20), top=5, size=10) -> np.ndarray:
    gt = np.zeros(shape, dtype=bool)
    gt[top : top + size, top : top + size] = True
    return gt


IMAGE = np.zeros((20, 20), dtype=np.float32)


def test_mask_iou():
    a, b = square(), square(top=6)
    assert mask_iou(a, b) == pytest.approx(81 / 119)
    assert mask_iou(a, np.zeros_like(a)) == 0.0
    assert mask_iou(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_perfect_predictor_needs_one_click():
    gt = square()
    result = evaluate_object(ScheduledPredictor(gt, None), IMAGE, gt)
    # The first click goes to the first deepest pixel of the 10x10 square; then no error is left.
    assert result.clicks == (Click(9.0, 9.0, True),)
    assert result.ious == (1.0,)
    summary = summarize([result], max_clicks=20)
    assert summary["NoC@80"] == summary["NoC@85"] == summary["NoC@90"] == 1.0
    assert summary["NoF@85"] == summary["NoF@90"] == 0
    assert summary["mIoU"] == [1.0] * 20


def test_predictor_that_never_reaches_the_threshold():
    gt = square()
    results = [
        evaluate_object(ScheduledPredictor(gt, [0.5]), IMAGE, gt, max_clicks=7) for _ in range(3)
    ]
    assert all(len(r.ious) == 7 and all(c.positive for c in r.clicks) for r in results)
    assert len({c for c in results[0].clicks}) == 7  # clicked pixels are never reused
    summary = summarize(results, max_clicks=7)
    assert summary["NoC@80"] == summary["NoC@85"] == summary["NoC@90"] == 7.0
    assert summary["NoF@85"] == summary["NoF@90"] == 3
    assert summary["objects"] == 3 and summary["clicks"] == 21


SCHEDULE_A = [0.50, 0.70, 0.86, 0.86, 0.91]  # NoC 80/85/90 = 3/3/5, reaches 0.90 on the last click
SCHEDULE_B = [0.81, 0.84]  # NoC 80/85/90 = 1/5/5, never reaches 0.85


def _golden_results(stop_at=None):
    gt = square()  # area 100: IoU values are exact
    return [
        evaluate_object(ScheduledPredictor(gt, schedule), IMAGE, gt, max_clicks=5, stop_at=stop_at)
        for schedule in (SCHEDULE_A, SCHEDULE_B)
    ]


def test_golden_figures():
    results = _golden_results()
    assert results[0].ious == pytest.approx(SCHEDULE_A)
    assert [r.noc(0.85, 5) for r in results] == [3, 5]
    summary = summarize(results, max_clicks=5)
    assert summary["NoC@80"] == pytest.approx(2.0)
    assert summary["NoC@85"] == pytest.approx(4.0)
    assert summary["NoC@90"] == pytest.approx(5.0)
    # A reaches 0.90 on click 5, so only B fails (the release would count A as well).
    assert summary["NoF@85"] == 1 and summary["NoF@90"] == 1
    assert summary["mIoU"] == pytest.approx([0.655, 0.77, 0.85, 0.85, 0.875])
    assert summary["clicks"] == 10 and summary["max_clicks"] == 5
    assert set(summary["timing"]) == {"seconds_per_click", "seconds"}
    timing_free = {k: v for k, v in summary.items() if k != "timing"}
    again = {k: v for k, v in summarize(_golden_results(), max_clicks=5).items() if k != "timing"}
    assert timing_free == again


def test_early_stop_keeps_noc_and_carries_the_last_iou():
    results = _golden_results(stop_at=0.85)
    assert len(results[0].ious) == 3 and len(results[1].ious) == 5
    summary = summarize(results, max_clicks=5)
    assert summary["NoC@85"] == pytest.approx(4.0)
    assert summary["mIoU"] == pytest.approx([0.655, 0.77, 0.85, 0.85, 0.85])


def test_dataset_sets_each_image_once_and_reports_progress():
    gt = square()
    other = IMAGE + 1.0
    samples = [
        Sample(IMAGE, gt, "a", "g1"),
        Sample(IMAGE, gt, "b", "g1"),
        Sample(other, gt, "c", "g2"),
    ]
    predictor = ScheduledPredictor(gt, None)
    seen = []
    results = evaluate_dataset(predictor, samples, progress=lambda n, r: seen.append((n, r.name)))
    assert predictor.images_set == 2
    assert seen == [(1, "a"), (2, "b"), (3, "c")]
    assert [(r.name, r.group, r.area) for r in results] == [
        ("a", "g1", 100),
        ("b", "g1", 100),
        ("c", "g2", 100),
    ]


def test_bad_objects_are_reported():
    predictor = ScheduledPredictor(square(), None)
    with pytest.raises(ValueError, match="empty"):
        evaluate_object(predictor, IMAGE, np.zeros((20, 20), bool))
    with pytest.raises(ValueError, match="match the image"):
        evaluate_object(predictor, IMAGE, square(shape=(10, 20), top=0, size=5))
    with pytest.raises(ValueError, match="No objects"):
        summarize([], max_clicks=20)


def _noisy_disk(size: int, radius: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    gt = (rows - 0.4 * size) ** 2 + (cols - 0.55 * size) ** 2 < radius**2
    image = 0.2 + 0.5 * gt + rng.normal(0.0, 0.08, (size, size))
    return image.astype(np.float32), gt


def test_random_walker_segments_a_bright_disk_with_one_click():
    image, gt = _noisy_disk(96, 15, seed=0)
    result = evaluate_object(RandomWalkerPredictor(), image, gt, max_clicks=1)
    assert result.clicks[0].positive
    assert result.ious[0] > 0.9


def test_random_walker_is_fast_on_a_large_slice_and_zero_outside_its_crop():
    import time

    image, gt = _noisy_disk(1024, 60, seed=1)
    predictor = RandomWalkerPredictor()
    predictor.set_image(image)
    start = time.perf_counter()
    prediction = predictor.add_click(410.0, 563.0)
    assert time.perf_counter() - start < 1.5  # well under a second when the CPU is not shared
    assert mask_iou(gt, prediction.mask) > 0.9
    assert prediction.probability.shape == gt.shape and prediction.probability.dtype == np.float32
    assert prediction.probability[:50].max() == 0.0  # outside the working crop
    predictor.reset()
    assert predictor.clicks == []
    # A negative click alone seeds no object.
    assert not predictor.add_click(10.0, 10.0, positive=False).mask.any()


def test_random_walker_errors():
    predictor = RandomWalkerPredictor()
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.add_click(1, 1)
    with pytest.raises(ValueError, match="image"):
        predictor.set_image(np.zeros((2, 3, 4, 5)))
    predictor.set_image(_noisy_disk(32, 5, seed=2)[0])
    with pytest.raises(ValueError, match="outside the image"):
        predictor.add_click(40, 3)
