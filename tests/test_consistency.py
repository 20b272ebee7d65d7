"""Propagation trims each propagated mask to the annotated slice's intensities (#13 item 1):
hand values of the range and the trim, a leaking model held to the object, the records that
carry the range, and their replay."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from napari_adaptiveclick.interactive.session import Prediction
from napari_adaptiveclick.learning.propagation_guard import StubbornModel
from napari_adaptiveclick.volume import VolumeAnnotator
from napari_adaptiveclick.volume.clicks_file import read_click_records, write_click_records
from napari_adaptiveclick.volume.consistency import (
    EVERY_VALUE,
    IntensityRange,
    separability,
    source_range,
    trim_to_range,
)
from napari_adaptiveclick.volume.edits import Run
from napari_adaptiveclick.volume.propagation import Propagation, PropagationSettings
from napari_adaptiveclick.volume.records import ClickRecord, record_dict
from napari_adaptiveclick.volume.replay import replay_records

LENIENT = PropagationSettings(  # the trim on, no stop rule, forwards only
    min_area_ratio=0.0,
    max_area_ratio=np.inf,
    min_iou=0.0,
    stop_rule=None,
    directions=(1,),
    intensity_quantile=0.05,
)


def test_separability_and_the_source_range_by_hand():
    image = np.full((9, 9), 10.0)
    mask = np.zeros((9, 9), bool)
    mask[3:6, 3:6] = True
    image[mask] = np.arange(20.0, 29.0)  # 20..28 inside, 10 around
    assert separability(image, mask) == 1.0
    assert separability(-image, mask) == 0.0
    assert separability(np.ones((9, 9)), mask) == 0.5  # ties count half
    bright = source_range(image, mask, 0.25)
    assert bright == IntensityRange(low=22.0)  # the 25 % quantile of 20..28
    dark = source_range(-image, mask, 0.25)
    assert dark == IntensityRange(high=-22.0)
    noisy = np.random.default_rng(0).normal(0, 1, (9, 9))
    assert source_range(noisy, mask, 0.05) is None  # the ring does not separate it
    with pytest.raises(ValueError, match=r"quantile must be in \(0, 0.5\)"):
        source_range(image, mask, 0.5)
    with pytest.raises(ValueError, match="low <= high"):
        IntensityRange(2.0, 1.0)
    with pytest.raises(ValueError, match="low <= high"):
        IntensityRange(math.nan)
    assert not EVERY_VALUE.limits and bright.limits


def test_the_trim_takes_what_is_outside_the_range_and_gives_back_holes():
    image = np.zeros((7, 9))
    image[1:6, 1:6] = 5.0  # the object
    image[3, 3] = 0.0  # a dark spot inside it: a hole once trimmed, given back
    mask = np.zeros((7, 9), bool)
    mask[1:6, 1:8] = True  # leaks 2 columns into the dark tissue on the right
    trimmed = trim_to_range(mask, image, IntensityRange(low=1.0))
    expected = np.zeros_like(mask)
    expected[1:6, 1:6] = True
    np.testing.assert_array_equal(trimmed, expected)
    np.testing.assert_array_equal(trim_to_range(mask, image, EVERY_VALUE), mask)


class LeakyModel(StubbornModel):
    """A target whose "model" returns the previous slice's mask grown by 2 px: it leaks into
    the tissue around the object on every slice, as a drifting real model does."""

    def predict_click(self, plane: int, click):
        previous = self.mask(plane - 1)
        grown = binary_dilation(previous, iterations=2)
        probability = np.where(grown, 0.9, 0.1).astype(np.float32)
        return Run.starting_from(1, plane, previous), Prediction(probability, grown), 0.0


def _bright_cylinder(noise_inside: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(6, 48, 48) tissue (0.3 +- 0.02) with a bright disk (0.8; + the noise if asked) of
    radius 10 on every plane, and the disk."""
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 0.02, (6, 48, 48)).astype(np.float32)
    image = 0.3 + noise
    rows, cols = np.mgrid[:48, :48]
    disk = (rows - 24) ** 2 + (cols - 24) ** 2 < 10**2
    image[:, disk] = 0.8 + (noise[:, disk] if noise_inside else 0.0)
    return image, disk


def test_a_leaking_model_is_held_to_the_objects_intensities():
    image, disk = _bright_cylinder()
    trimmed = LeakyModel(image, disk, 0)
    list(Propagation(trimmed, 0, LENIENT))
    untrimmed = LeakyModel(image, disk, 0)
    list(Propagation(untrimmed, 0, replace(LENIENT, intensity_quantile=None)))
    for plane in range(1, 6):
        np.testing.assert_array_equal(trimmed.mask(plane), disk)  # the leak is taken off
    grown = untrimmed.mask(5)
    assert grown.sum() > disk.sum() * 1.8 and (grown >= disk).all()  # 10 px of leak by then


def test_a_trim_that_would_take_most_of_the_mask_is_not_made():
    image, disk = _bright_cylinder()
    image[3:] = 0.3  # the object ends after plane 2: the copied mask there is all tissue
    target = LeakyModel(image, disk, 0)
    list(Propagation(target, 0, LENIENT))
    assert (target.mask(3) >= disk).all()  # written as predicted, left to the stop rule


@pytest.fixture(scope="module")
def session():
    from napari_adaptiveclick.interactive.session import ClickSession

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ClickSession(model="tiny", device="cpu")


def test_a_trimmed_record_replays_with_its_trim(session):
    image, _ = _bright_cylinder(noise_inside=True)
    image = image * 1000  # image values, not the display range
    plain = ClickRecord(1, 24.0, 24.0, True, 1, model="tiny")
    untrimmed = replay_records(image, [plain], session)[1] == 1
    assert untrimmed.any()
    keep = IntensityRange(low=float(np.median(image[1][untrimmed])))
    expected = trim_to_range(untrimmed, image[1], keep)
    assert 0 < expected.sum() < untrimmed.sum()  # the trim takes something here
    replayed = replay_records(image, [replace(plain, intensity_min=keep.low)], session)
    np.testing.assert_array_equal(replayed[1] == 1, expected)


@pytest.mark.parametrize("prompt", ["scribble", "click"])
def test_propagation_records_carry_the_trim_and_replay_to_the_same_labels(session, prompt):
    image, disk = _bright_cylinder()
    image[:, binary_dilation(disk, iterations=4) & ~disk] = 0.45  # a halo the model takes in
    start = np.zeros(image.shape, np.int32)
    start[0][disk] = 1  # the annotated slice: the object's own mask, so its range is known
    start[2, 20:28, 30:40] = 7  # another object across the disk's edge, inside the crops
    settings = replace(LENIENT, prompt=prompt, max_trim=0.95)
    propagated = {}
    for quantile in (None, 0.05):
        labels = start.copy()
        annotator = VolumeAnnotator(image, labels, session, model_name="tiny")
        annotator.select_object(1)
        annotator.propagate(0, replace(settings, intensity_quantile=quantile))
        propagated[quantile] = labels
    assert (propagated[None] == 1).sum() > (labels == 1).sum()  # the trim took the halo
    records = annotator.records
    assert records and {r.plane for r in records} <= set(range(1, 6))
    assert any(r.keep.limits for r in records), "no slice was trimmed: the test tests nothing"
    for r in records:  # one range, the source's: from its 5 % quantile up (a bright object)
        assert r.keep in (EVERY_VALUE, IntensityRange(low=float(np.float32(0.8))))
    np.testing.assert_array_equal((labels == 7), (start == 7))  # the other object is kept
    np.testing.assert_array_equal(replay_records(image, records, session, labels=start), labels)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_intensity_ranges_round_trip_through_click_files(tmp_path, suffix):
    records = [
        ClickRecord(1, 2.0, 3.0, True, 4, order=0, intensity_min=0.25),
        ClickRecord(1, 2.0, 3.0, True, 4, order=1, intensity_max=-3.5),
        ClickRecord(1, 2.0, 3.0, True, 4, order=2),
    ]
    for record in records:  # the autosave and the layer metadata keep plain JSON too
        json.loads(json.dumps(record_dict(record), allow_nan=False))
        assert ClickRecord(**record_dict(record)) == record
    path = tmp_path / f"clicks{suffix}"
    write_click_records(path, records)
    assert "Infinity" not in path.read_text() and "inf" not in path.read_text()
    assert read_click_records(path) == records


def test_bad_intensity_bounds_are_refused(tmp_path):
    with pytest.raises(ValueError, match="low <= high"):
        ClickRecord(1, 2.0, 3.0, True, 4, intensity_min=math.nan)
    with pytest.raises(ValueError, match="must keep some values"):
        ClickRecord(1, 2.0, 3.0, True, 4, intensity_min=math.inf)
    with pytest.raises(ValueError, match="low <= high"):
        ClickRecord(1, 2.0, 3.0, True, 4, intensity_min=2.0, intensity_max=1.0)
    with pytest.raises(ValueError, match="a mask record keeps its mask"):
        ClickRecord(1, 2.0, 3.0, True, 4, kind="mask", mask_label=2, intensity_min=0.0)
    path = tmp_path / "clicks.csv"
    path.write_text("plane,row,col,positive,object_id,intensity_min\n1,2,3,true,4,bright\n")
    with pytest.raises(ValueError, match=r"click 1 \(line 2\) is not valid"):
        read_click_records(path)
    with pytest.raises(ValueError, match="intensity_quantile"):
        PropagationSettings(intensity_quantile=0.7)
    with pytest.raises(ValueError, match="max_trim"):
        PropagationSettings(max_trim=1.0)
    assert PropagationSettings().intensity_quantile is None  # off unless asked (BENCHMARKS.md)
