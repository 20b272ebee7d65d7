"""The propagation's stop rule (#13 item 1): where the model keeps predicting a mask past the
object's end, the calibrated rule stops the propagation and flags doubtful slices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_adaptiveclick.interactive.boxed import bounding_box, box_slices
from napari_adaptiveclick.learning.propagation_guard import (
    FIRST,
    LAST,
    PLANES,
    StubbornModel,
    guard_failures,
    guard_volume,
)
from napari_adaptiveclick.volume.propagation import Propagation, PropagationSettings
from napari_adaptiveclick.volume.stopping import (
    FEATURES,
    STOP_RULE_FILE,
    TRIM_FEATURES,
    StopRule,
    appearance,
    default_stop_rule,
    evidence_window,
    read_stop_rule,
    slice_evidence,
)


def _written(target: StubbornModel) -> set[int]:
    return target.written()


@pytest.mark.parametrize("dark", [False, True])
def test_the_shipped_rule_stops_where_the_object_ends(dark):
    rule = default_stop_rule()
    assert rule is not None, f"the calibrated rule {STOP_RULE_FILE} is not installed"
    image, truth = guard_volume(dark=dark)
    target = StubbornModel(image, truth[8], 8)
    job = Propagation(target, 8, PropagationSettings(intensity_quantile=None))  # the rule alone
    results = list(job)
    report = job.report()
    written = _written(target)
    assert written <= set(range(FIRST - 1, LAST + 2)), written  # at most one slice too far
    assert set(range(FIRST + 1, LAST)) <= written  # and none missed inside
    assert any("seems to end" in reason for reason in report.stops.values()), report.stops
    stopped = [r for r in results if not r.accepted]
    assert all(r.presence < rule.stop_below for r in stopped)


def test_without_the_rule_the_same_propagation_runs_through_theguard_volume():
    image, truth = guard_volume()
    target = StubbornModel(image, truth[8], 8)
    lenient = PropagationSettings(
        min_area_ratio=0, max_area_ratio=np.inf, min_iou=0, stop_rule=None, intensity_quantile=None
    )
    list(Propagation(target, 8, lenient))
    assert _written(target) == set(range(PLANES))


def test_doubtful_slices_are_reported():
    image, truth = guard_volume()
    target = StubbornModel(image, truth[8], 8)
    rule = StopRule.from_json({**default_stop_rule().to_json(), "doubtful_below": 1.0})
    job = Propagation(target, 8, PropagationSettings(stop_rule=rule, intensity_quantile=None))
    list(job)
    report = job.report()
    assert report.doubtful == tuple(sorted(p for p in report.written))  # every one below 1.0


def test_evidence_measures_contrast_against_the_source_slice():
    image, truth = guard_volume()
    source = appearance(image[8], truth[8])
    same = slice_evidence(image[9], truth[9], truth[9] * 0.9, truth[8], source)
    past = slice_evidence(image[15], truth[8], truth[8] * 0.9, truth[8], source)
    assert set(same) == set(TRIM_FEATURES) and same["kept"] == 1.0
    assert same["contrast"] == pytest.approx(1.0, abs=0.15)
    assert abs(past["contrast"]) < 0.2 and past["shift"] > 0.8
    assert same["iou_prev"] > 0.8 and past["iou_prev"] == pytest.approx(1.0)


@pytest.mark.parametrize("shift", [(0, 0), (-40, -42)], ids=["inside", "at-the-corner"])
def test_evidence_on_its_window_equals_the_whole_slice(shift):
    """What the propagation passes (the arrays' parts in evidence_window) gives the same
    evidence as whole slices, also where the window is clipped at the plane's edge."""
    image, truth = guard_volume()
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
    from napari_adaptiveclick.learning.propagation_options import SessionsByKind

    auto = SessionsByKind()
    assert auto.model_for("brats/Brats18_2013_2_1/wt") == "default-mri"
    assert auto.model_for("brats2015/brats_2013_pat0001_1/tc") == "default-mri"
    assert auto.model_for("sstem/stack1/mito3@4") == "default"
    fixed = SessionsByKind("runs/some.pt")
    assert {fixed.model_for(n) for n in ("brats/x/wt", "sstem/stack1/m")} == {"runs/some.pt"}
    candidate = SessionsByKind(mri_checkpoint="runs/mri.pt")  # before it is installed
    assert candidate.model_for("brats2015/brats_2013_pat0001_1/wt") == "runs/mri.pt"
    assert candidate.model_for("sstem/stack1/mito3@4") == "default"
    assert auto("sstem/stack1/mito3@4").zoom_min_size == 200  # the plugin's
    smaller = SessionsByKind("tiny", zoom_min_size=80)  # an experiment (MODEL_CARD, session 14)
    assert smaller("brats/x/wt").zoom_min_size == 80
    mri_only = SessionsByKind("tiny", mri_zoom_min_size=80)  # the same weights, one per zoom
    assert mri_only("brats/x/wt").zoom_min_size == 80
    assert mri_only("sstem/stack1/m").zoom_min_size == 200
    assert mri_only("brats/y/tc") is mri_only("brats/x/wt") and len(mri_only.sessions) == 2


def _logged_objects(n: int = 12, seed: int = 0):
    """Calibration logs of ``n`` objects: slices inside look like the source (contrast, sure),
    slices past the end are a copied-looking mask without contrast and less sure."""
    from napari_adaptiveclick.learning.propagation_calibration import ObjectResult, SliceLog

    rng = np.random.default_rng(seed)
    results = []
    for i in range(n):
        slices = []
        for direction in (1, -1):
            inside = int(rng.integers(3, 8))
            for distance in range(1, inside + 6):
                present = distance <= inside
                base = (
                    (1.0, 0.2, 0.0, -0.3, 0.85, 0.75)
                    if present
                    else (0.05, 1.0, 0.0, -1.0, 0.9, 0.3)
                )
                values = np.array(base) + rng.normal(0, 0.08, 6)
                evidence = dict(zip(FEATURES, map(float, values), strict=True))
                slices.append(
                    SliceLog(
                        direction, distance, evidence, present, 0.8 if present else float("nan")
                    )
                )
        results.append(ObjectResult(f"o{i}", 3, 0.9, 0.8, 0, 0, 1.0, {}, (), slices))
    return results


def test_the_fitted_rule_stops_at_the_ends_and_passes_the_copied_mask_guard():
    from napari_adaptiveclick.learning.propagation_calibration import (
        _sequence_errors,
        fit_stop_rule,
    )

    results = _logged_objects()
    rule = fit_stop_rule(results, source="synthetic")
    assert _sequence_errors(results, rule, rule.stop_below) == 0
    assert guard_failures(rule) == [] and rule.stop_below <= rule.doubtful_below
    strict = fit_stop_rule(results, guard=lambda r: [] if r.stop_below >= 0.6 else ["low"])
    assert strict.stop_below >= 0.6 and strict.coef == rule.coef
    with pytest.raises(ValueError, match="copies the previous mask"):
        fit_stop_rule(results, guard=lambda r: ["always"])


def test_a_rule_for_trimmed_propagations_also_weighs_the_share_the_trim_kept(tmp_path):
    from napari_adaptiveclick.learning.propagation_calibration import fit_stop_rule

    plain = _logged_objects()
    assert fit_stop_rule(plain).features == FEATURES  # nothing trimmed: the shipped layout
    trimmed = _logged_objects(seed=1)
    for result in trimmed:  # past the end most of the model's mask is outside the range
        for s in result.slices:
            s.evidence["kept"] = 0.95 if s.present else 0.3
    rule = fit_stop_rule(trimmed)
    assert rule.features == TRIM_FEATURES and rule.coef[-1] > 0
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(rule.to_json()))
    assert read_stop_rule(path) == rule
    inside = {**trimmed[0].slices[0].evidence, "kept": 0.95}
    assert rule.presence({**inside, "kept": 0.3}) < rule.presence(inside)
    assert rule.presence({k: v for k, v in inside.items() if k != "kept"}) >= rule.presence(inside)
    with pytest.raises(ValueError, match="must list the features"):
        StopRule.from_json({**rule.to_json(), "features": [*FEATURES, "colour"]})


def test_the_guard_catches_a_rule_that_never_stops():
    assert guard_failures(default_stop_rule()) == []
    never = StopRule.from_json(
        {**default_stop_rule().to_json(), "stop_below": 0.0, "doubtful_below": 0.0}
    )
    failures = guard_failures(never)
    assert failures and all("written past its ends" in f for f in failures)


def test_calibration_refits_from_a_saved_log_and_refuses_a_malformed_one(tmp_path, capsys):
    from dataclasses import asdict

    from training.calibrate_propagation import main

    log, out = tmp_path / "log.json", tmp_path / "rule.json"
    log.write_text(json.dumps([asdict(r) for r in _logged_objects()]))
    assert main(["--from-log", str(log), "--out", str(out)]) == 0
    rule = read_stop_rule(out)
    assert guard_failures(rule) == [] and "12 objects of" in rule.source
    bad = json.loads(log.read_text())
    del bad[3]["slices"][0]["evidence"]["contrast"]
    log.write_text(json.dumps(bad))
    before = out.read_text()
    with pytest.raises(SystemExit):
        main(["--from-log", str(log), "--out", str(out)])
    assert "Entry 3" in capsys.readouterr().err and out.read_text() == before
    settings = {"margin": 9, "checkpoint": "auto", "prompt": "box", "flip": True}
    good = {"settings": settings, "objects": [asdict(r) for r in _logged_objects()]}
    log.write_text(json.dumps(good))
    text = log.read_text()
    assert main(["--from-log", str(log), "--out", str(out), "--checkpoint", "x"]) == 0
    assert "margin 9, checkpoint auto, prompt box, flip)" in read_stop_rule(out).source
    log.write_text(json.dumps({**good, "settings": {**settings, "zoom_min_size": 80}}))
    assert main(["--from-log", str(log), "--out", str(out)]) == 0
    assert "flip, zoom-in at least 80 px)" in read_stop_rule(out).source
    log.write_text(text)
    for clash in (
        ["--from-log", str(log), "--out", str(log)],
        ["--log", str(out), "--out", str(out)],
    ):
        with pytest.raises(SystemExit):
            main(clash)
        assert "must be different files" in capsys.readouterr().err
    assert log.read_text() == text  # the log was not overwritten


def test_each_shipped_weights_file_propagates_with_its_own_rule_and_trim():
    from napari_adaptiveclick.volume.stopping import STOP_RULE_FILES, shipped_stop_rule

    em, mri = PropagationSettings.for_model("default"), PropagationSettings.for_model("default-mri")
    assert em.stop_rule == default_stop_rule() and em.intensity_quantile is None
    assert mri.stop_rule == read_stop_rule(STOP_RULE_FILES["default-mri"]) != em.stop_rule
    assert mri.intensity_quantile == mri.stop_rule.intensity_quantile == 0.02
    assert PropagationSettings.for_model("/my/adapted.pt") == em  # any other model: default's
    assert (
        PropagationSettings.for_model("default-mri", intensity_quantile=None).intensity_quantile
        is None
    )
    for model in ("default", "default-mri"):  # each passes the guard as it propagates
        rule = shipped_stop_rule(model)
        assert guard_failures(rule, rule.intensity_quantile) == [], model


def test_an_annotator_propagates_with_the_settings_of_its_model():
    from napari_adaptiveclick.volume.annotator import VolumeAnnotator

    image, truth = guard_volume()
    labels = np.zeros(image.shape, np.uint8)
    labels[8][truth[8]] = 1
    for model, quantile in (("default-mri", 0.02), ("default", None), ("", None)):
        annotator = VolumeAnnotator(image, labels, session=None, model_name=model)
        annotator.select_object(1)
        job = annotator.propagation(8)
        assert job.settings == PropagationSettings.for_model(model or "default")
        assert job.settings.intensity_quantile == quantile


def test_a_rule_records_the_trim_it_was_fitted_with_and_refuses_a_bad_one(tmp_path):
    from napari_adaptiveclick.learning.propagation_calibration import fit_stop_rule

    rule = fit_stop_rule(_logged_objects(), intensity_quantile=0.05)
    assert rule.intensity_quantile == 0.05
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(rule.to_json()))
    assert read_stop_rule(path) == rule
    for bad in (0.7, -0.1, "0.02", True):
        path.write_text(json.dumps({**rule.to_json(), "intensity_quantile": bad}))
        with pytest.raises(ValueError, match="intensity_quantile"):
            read_stop_rule(path)


def test_cross_validation_fits_each_fold_without_its_own_objects(monkeypatch):
    from napari_adaptiveclick.learning import propagation_calibration as pc

    results = _logged_objects(n=14)
    for i, r in enumerate(results[:4]):  # two BraTS cases, whole tumour and core each
        r.name = f"brats/case{i // 2}/{'wt' if i % 2 == 0 else 'tc'}"
    fold = pc.case_folds(results)
    assert fold(results[0]) == fold(results[1]) == "brats/case0" != fold(results[2])
    assert [fold(r) for r in results[4:9]] == [f"sstem fold {i}" for i in range(5)]
    assert fold(results[9]) == "sstem fold 0"
    fitted_on, real_fit = [], pc.fit_stop_rule

    def recording_fit(rest, **options):
        fitted_on.append({r.name for r in rest})
        return real_fit(rest, **options)

    monkeypatch.setattr(pc, "fit_stop_rule", recording_fit)
    errors = pc.cross_validated_errors(results, fold, guard=None)
    assert set(errors) == {r.name for r in results} and len(fitted_on) == 7
    for rest in fitted_on:  # every fold's rule saw all objects but its own fold's
        held = {r.name for r in results} - rest
        assert len({fold(r) for r in results if r.name in held}) == 1
    monkeypatch.setattr(
        pc, "fit_stop_rule", lambda rest, **o: real_fit(rest, guard=lambda r: ["x"])
    )
    with pytest.raises(ValueError, match="Fold brats/case0"):
        pc.cross_validated_errors(results, fold)


def test_calibration_cross_validates_and_fits_one_kind_from_several_logs(tmp_path, capsys):
    from dataclasses import asdict

    from training.calibrate_propagation import main

    objects = _logged_objects(n=12)
    for i, r in enumerate(objects[:6]):
        r.name = f"brats/case{i // 2}/{'wt' if i % 2 == 0 else 'tc'}"
    brats, em, out = tmp_path / "brats.json", tmp_path / "em.json", tmp_path / "rule.json"
    trimmed = {"margin": 12, "prompt": "scribble", "intensity_quantile": 0.02}
    brats.write_text(json.dumps({"settings": trimmed, "objects": [asdict(r) for r in objects]}))
    untrimmed = {**trimmed, "intensity_quantile": None}
    em.write_text(json.dumps({"settings": untrimmed, "objects": [asdict(r) for r in objects[6:]]}))
    assert main(["--objects", "brats", "--from-log", str(brats), str(em), "--out", str(out)]) == 0
    rule = read_stop_rule(out)  # the BraTS entries of the first log only
    assert "6 objects of" in rule.source and rule.intensity_quantile == 0.02
    assert main(["--objects", "sstem", "--from-log", str(brats), "--cross-validate"]) == 0
    printed = capsys.readouterr().out
    assert "cross-validated false + missed slices per object" in printed
    assert "all (6):" in printed and "ssTEM (6):" in printed
    with pytest.raises(SystemExit):  # one rule for evidence logged with two trims
        main(["--from-log", str(brats), str(em), "--out", str(out)])
    assert "another intensity trim" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--from-log", str(brats)])
    assert "--out" in capsys.readouterr().err and read_stop_rule(out) == rule
