"""The propagation's stop rule (#13 item 1): where the model keeps predicting a mask past the
object's end, the calibrated rule stops the propagation and flags doubtful slices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_adaptiveclick.interactive.boxed import bounding_box, box_slices
from napari_adaptiveclick.interactive.session import Prediction
from napari_adaptiveclick.volume.edits import Run, Step, replace_object
from napari_adaptiveclick.volume.propagation import Propagation, PropagationSettings
from napari_adaptiveclick.volume.records import ClickRecord
from napari_adaptiveclick.volume.slicing import SliceGeometry
from napari_adaptiveclick.volume.stopping import (
    FEATURES,
    STOP_RULE_FILE,
    StopRule,
    appearance,
    default_stop_rule,
    evidence_window,
    read_stop_rule,
    slice_evidence,
)

PLANES, SIZE, FIRST, LAST = 20, 96, 5, 12  # the object is on planes 5..12


def _volume(seed: int = 0, dark: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Textured background with a disk of contrast on planes FIRST..LAST (radius varies)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.5, 0.05, (PLANES, SIZE, SIZE)).astype(np.float32)
    truth = np.zeros(image.shape, bool)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for plane in range(FIRST, LAST + 1):
        radius = 22 - 2.5 * abs(plane - 8.5)
        truth[plane] = (yy - 48) ** 2 + (xx - 46) ** 2 < radius**2
    image[truth] += -0.3 if dark else 0.3
    return image, truth


class _StubbornModel:
    """A propagation target whose "model" returns the previous slice's mask wherever it is
    asked: the failure mode of a real model past the object's end (it nearly always predicts
    something where the derived click lands). Like the real one it is less sure where the
    image no longer shows the object (calibration logs of the shipped model: confidence
    |2p - 1| on object slices 0.62 / 0.74 / 0.82 at the 10th / 50th / 90th percentile, past the
    end 0.24 / 0.44 / 0.70; this one gives 0.76 on the object and 0.24 off it)."""

    def __init__(self, image: np.ndarray, start: np.ndarray, start_plane: int) -> None:
        self.geometry = SliceGeometry(image.shape, 0)
        self.image, self.stats = image, (0.0, 1.0)
        self.labels = np.zeros(image.shape, np.int32)
        self.labels[start_plane][start] = 1
        self.last: np.ndarray | None = None
        self.object_id = 1

    def mask(self, plane: int, object_id: int | None = None) -> np.ndarray:
        return self.labels[plane] == 1

    def anchor_planes(self, object_id: int | None = None) -> set[int]:
        return set()

    def start_mask(self, plane: int) -> np.ndarray | None:
        return None

    def predict_click(self, plane: int, click):
        previous = self.mask(plane - 1) if self.mask(plane - 1).any() else self.mask(plane + 1)
        supported = np.abs(self.image[plane] - 0.5) > 0.15  # the disk differs from the tissue
        probability = np.where(previous, np.where(supported, 0.88, 0.62), 0.1).astype(np.float32)
        return Run.starting_from(1, plane, previous), Prediction(probability, previous), 0.0

    def written_mask(self, plane: int, mask: np.ndarray, box=None) -> np.ndarray:
        return mask  # (the mask inside ``box``, the prediction's: here the whole slice)

    def accept_click(self, run: Run, click, mask: np.ndarray, step: Step, box=None):
        replace_object(self.labels[run.plane], run.plane, 1, mask, box=box)
        return ClickRecord(
            plane=run.plane, row=click.row, col=click.col, positive=True, object_id=1
        )


def _written(target: _StubbornModel) -> set[int]:
    return {p for p in range(PLANES) if target.mask(p).any()}


@pytest.mark.parametrize("dark", [False, True])
def test_the_shipped_rule_stops_where_the_object_ends(dark):
    rule = default_stop_rule()
    assert rule is not None, f"the calibrated rule {STOP_RULE_FILE} is not installed"
    image, truth = _volume(dark=dark)
    target = _StubbornModel(image, truth[8], 8)
    job = Propagation(target, 8, PropagationSettings())
    results = list(job)
    report = job.report()
    written = _written(target)
    assert written <= set(range(FIRST - 1, LAST + 2)), written  # at most one slice too far
    assert set(range(FIRST + 1, LAST)) <= written  # and none missed inside
    assert any("seems to end" in reason for reason in report.stops.values()), report.stops
    stopped = [r for r in results if not r.accepted]
    assert all(r.presence < rule.stop_below for r in stopped)


def test_without_the_rule_the_same_propagation_runs_through_the_volume():
    image, truth = _volume()
    target = _StubbornModel(image, truth[8], 8)
    lenient = PropagationSettings(
        min_area_ratio=0, max_area_ratio=np.inf, min_iou=0, stop_rule=None
    )
    list(Propagation(target, 8, lenient))
    assert _written(target) == set(range(PLANES))


def test_doubtful_slices_are_reported():
    image, truth = _volume()
    target = _StubbornModel(image, truth[8], 8)
    rule = StopRule.from_json({**default_stop_rule().to_json(), "doubtful_below": 1.0})
    job = Propagation(target, 8, PropagationSettings(stop_rule=rule))
    list(job)
    report = job.report()
    assert report.doubtful == tuple(sorted(p for p in report.written))  # every one below 1.0


def test_evidence_measures_contrast_against_the_source_slice():
    image, truth = _volume()
    source = appearance(image[8], truth[8])
    same = slice_evidence(image[9], truth[9], truth[9] * 0.9, truth[8], source)
    past = slice_evidence(image[15], truth[8], truth[8] * 0.9, truth[8], source)
    assert set(same) == set(FEATURES)
    assert same["contrast"] == pytest.approx(1.0, abs=0.15)
    assert abs(past["contrast"]) < 0.2 and past["shift"] > 0.8
    assert same["iou_prev"] > 0.8 and past["iou_prev"] == pytest.approx(1.0)


@pytest.mark.parametrize("shift", [(0, 0), (-40, -42)], ids=["inside", "at-the-corner"])
def test_evidence_on_its_window_equals_the_whole_slice(shift):
    """What the propagation passes (the arrays' parts in evidence_window) gives the same
    evidence as whole slices, also where the window is clipped at the plane's edge."""
    image, truth = _volume()
    image, truth = np.roll(image, shift, axis=(1, 2)), np.roll(truth, shift, axis=(1, 2))
    probability = np.where(truth[9], 0.8, 0.2).astype(np.float32)
    shape = truth.shape[1:]
    for plane, previous in [(9, 8), (13, 12)]:  # the object, then past its end
        window = evidence_window([bounding_box(truth[plane]), bounding_box(truth[previous])], shape)
        part = box_slices(window)
        look = appearance(image[previous], truth[previous])
        assert appearance(image[previous][part], truth[previous][part]) == look
        whole = slice_evidence(image[plane], truth[plane], probability, truth[previous], look)
        cut = slice_evidence(
            image[plane][part], truth[plane][part], probability[part], truth[previous][part], look
        )
        assert cut == whole


def test_stop_rule_files_are_checked(tmp_path):
    good = default_stop_rule().to_json()
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(good))
    assert read_stop_rule(path) == default_stop_rule()
    for broken, match in [
        ("not json", "Cannot read"),
        (json.dumps({**good, "features": ["contrast"]}), "must list the features"),
        (json.dumps({**good, "coef": [1.0]}), "finite numbers"),
        (json.dumps({**good, "scale": [0.0] * len(FEATURES)}), "positive"),
        (json.dumps({**good, "stop_below": 0.9, "doubtful_below": 0.5}), "stop_below"),
        (json.dumps({**good, "unexpected": 1, "intercept": "x"}), "Malformed|Cannot read"),
    ]:
        path.write_text(broken)
        with pytest.raises(ValueError, match=match):
            read_stop_rule(path)


def test_calibration_sessions_use_the_weights_the_plugin_picks_per_kind():
    from napari_adaptiveclick.learning.propagation_calibration import SessionsByKind

    auto = SessionsByKind()
    assert auto.model_for("brats/Brats18_2013_2_1/wt") == "default-mri"
    assert auto.model_for("brats2015/brats_2013_pat0001_1/tc") == "default-mri"
    assert auto.model_for("sstem/stack1/mito3@4") == "default"
    fixed = SessionsByKind("runs/some.pt")
    assert {fixed.model_for(n) for n in ("brats/x/wt", "sstem/stack1/m")} == {"runs/some.pt"}
