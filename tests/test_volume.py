"""Slice-by-slice annotation, undo, object ids, propagation and replay (volume.py and the
modules it gathers).

The model is a randomly initialised ``tiny`` (its masks are meaningless): the assertions are
about which planes and ids are written, what undo restores and what replay reproduces.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from napari_adaptiveclick.volume import (
    PropagationSettings,
    SliceGeometry,
    VolumeAnnotator,
    default_slicing_axis,
    derived_click,
    replay_records,
)
from napari_adaptiveclick.volume.records import ClickRecord
from synthetic import disk_volume

# Stops only where the written mask is empty, at the volume's end or at clicked planes, so the
# outcome does not depend on what the random model predicts.
LENIENT = PropagationSettings(min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0)


@pytest.fixture(scope="module")
def session():
    from napari_adaptiveclick.interactive.session import ClickSession

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no default weights": random tiny is fine here
        return ClickSession(model="tiny", device="cpu")


def test_default_slicing_axis_is_the_coarsest():
    assert default_slicing_axis((50.0, 4.6, 4.6)) == 0
    assert default_slicing_axis((1.0, 1.0, 3.0)) == 2
    assert default_slicing_axis((1.0, 1.0, 1.0)) == 0
    with pytest.raises(ValueError, match="positive"):
        default_slicing_axis((1.0, 0.0, 1.0))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_geometry_round_trip(axis):
    geometry = SliceGeometry((3, 5, 7), axis)
    volume = np.arange(3 * 5 * 7).reshape(3, 5, 7)
    assert volume[geometry.index(1)].shape == geometry.slice_shape
    rng = np.random.default_rng(axis)
    for _ in range(10):
        point = [int(rng.integers(n)) for n in volume.shape]
        plane, row, col = geometry.to_slice(point)
        assert geometry.to_volume(plane, row, col) == tuple(float(v) for v in point)
        assert volume[geometry.index(plane)][int(row), int(col)] == volume[tuple(point)]
        assert geometry.contains(plane, row, col)
    assert not geometry.contains(geometry.planes, 0, 0)
    assert not geometry.contains(0, -0.6, 0)


def test_derived_click_on_the_bounding_box_equals_the_whole_slice():
    from scipy import ndimage

    from napari_adaptiveclick.evaluation.simulator import next_click

    rng = np.random.default_rng(3)
    for _ in range(20):
        source = ndimage.binary_opening(rng.random((40, 50)) > 0.6, iterations=2)
        source[rng.integers(40), rng.integers(50)] = True  # never empty
        start = (
            None
            if rng.random() < 0.3
            else ndimage.binary_dilation(source, iterations=int(rng.integers(0, 3)))
        )
        expected = next_click(source, np.zeros_like(source) if start is None else start)
        if expected is None:
            expected = next_click(source, np.zeros_like(source))
        assert derived_click(source, start) == expected


def test_a_label_patch_undoes_an_edit_and_a_run_keeps_its_prior():
    from napari_adaptiveclick.volume.edits import Run, replace_object

    rng = np.random.default_rng(5)
    view = rng.integers(0, 4, (20, 30)).astype(np.int32)
    before = view.copy()
    mask = rng.random((20, 30)) > 0.7
    patch = replace_object(view, 3, 2, mask)
    np.testing.assert_array_equal(view == 2, mask)  # object 2 has exactly the mask's pixels
    untouched = ~mask & (before != 2)
    np.testing.assert_array_equal(view[untouched], before[untouched])
    patch.restore(view)
    np.testing.assert_array_equal(view, before)
    assert patch.plane == 3 and replace_object(view, 3, 2, before == 2) is None  # no change
    prior = rng.random((7, 9)) > 0.5
    np.testing.assert_array_equal(Run.starting_from(1, 0, prior).prior_mask((7, 9)), prior)
    assert Run.starting_from(1, 0, None).prior_mask((7, 9)) is None


def test_click_writes_its_plane_and_never_other_objects(session):
    labels = np.zeros((4, 32, 32), np.int32)
    labels[2, :12, :12] = 7
    annotator = VolumeAnnotator(disk_volume(4, 32), labels, session, model_name="tiny")
    assert annotator.object_id == 8  # a new object gets a free id
    outcome = annotator.add_click(2, 16, 16, positive=True)
    assert outcome.record.plane == 2 and outcome.record.object_id == 8
    assert outcome.record.model == "tiny" and outcome.record.order == 0
    assert (labels[[0, 1, 3]] == 0).all()
    assert (labels[2, :12, :12] == 7).all()
    assert outcome.area == int((labels[2] == 8).sum())

    annotator.overwrite = True
    annotator.add_click(2, 5, 5, positive=True)
    annotator.undo()
    assert (labels[2, :12, :12] == 7).all()


def test_undo_restores_labels_and_the_next_click(session):
    labels = np.zeros((4, 32, 32), np.int32)
    annotator = VolumeAnnotator(disk_volume(4, 32), labels, session)
    annotator.add_click(1, 16, 16, positive=True)
    after_first = labels.copy()
    annotator.add_click(1, 20, 20, positive=False)
    after_second = labels.copy()
    assert annotator.undo()
    np.testing.assert_array_equal(labels, after_first)
    assert [r.positive for r in annotator.records] == [True]
    annotator.add_click(1, 20, 20, positive=False)  # the session was rolled back too
    np.testing.assert_array_equal(labels, after_second)
    assert annotator.undo() and annotator.undo() and not annotator.undo()
    assert not labels.any() and annotator.records == []


def test_commit_and_refining_an_existing_object(session):
    labels = np.zeros((4, 32, 32), np.int32)
    labels[0, 8:20, 8:20] = 5
    original = labels.copy()
    annotator = VolumeAnnotator(disk_volume(4, 32), labels, session)
    assert annotator.commit() == annotator.object_id == 6  # nothing drawn yet: keeps its id
    annotator.select_object(5)
    annotator.add_click(0, 14, 14, positive=True)
    assert annotator.commit() == 6
    assert annotator.reset() == 0  # nothing done to object 6 yet
    annotator.select_object(5)
    annotator.add_click(0, 25, 25, positive=False)
    assert annotator.reset() == 1
    assert annotator.undo() and annotator.object_id == 5
    np.testing.assert_array_equal(labels, original)
    with pytest.raises(ValueError, match="out of range"):
        VolumeAnnotator(disk_volume(4, 32), labels.astype(np.uint8), session).select_object(300)


def test_uint8_labels_holding_255_take_the_smallest_free_id(session):
    # a 0/255 mask (new-user trial 2) was refused with "Label id 256 is out of range"
    mask = np.zeros((4, 32, 32), np.uint8)
    mask[1, 2:6, 2:6] = 255
    mask[2, 2:6, 2:6] = 1
    annotator = VolumeAnnotator(disk_volume(4, 32), mask, session)
    assert annotator.object_id == 2
    annotator.add_click(0, 16, 16, positive=True)
    assert annotator.commit() == 3  # 2 now has pixels (and a record)
    assert (mask[1, 2:6, 2:6] == 255).all() and (mask[2, 2:6, 2:6] == 1).all()
    full = np.arange(256, dtype=np.uint8).repeat(16).reshape(4, 32, 32)  # every id in use
    with pytest.raises(ValueError, match=r"\(1..255\) and none is free; convert.*uint16 or int32"):
        VolumeAnnotator(disk_volume(4, 32), full, session)


def test_propagation_stops_at_clicked_planes_and_undoes_at_once(session):
    labels = np.zeros((6, 32, 32), np.int32)
    annotator = VolumeAnnotator(disk_volume(6, 32), labels, session)
    annotator.add_click(4, 16, 16)
    annotator.add_click(1, 16, 16)
    before = labels.copy()
    seen = []
    report = annotator.propagate(1, LENIENT, progress=seen.append)
    assert [r.plane for r in seen] == [2, 3, 0]
    assert set(report.written) == {0, 2, 3}
    assert report.stops == {
        1: "reached plane 4, which has your clicks",
        -1: "reached the end of the volume",
    }
    assert sorted(u for _, u in report.least_sure) == sorted(
        (u for _, u in report.least_sure), reverse=False
    )
    assert [u for _, u in report.least_sure] == sorted(
        (u for _, u in report.least_sure), reverse=True
    )
    for plane in (0, 2, 3):
        assert (labels[plane] == annotator.object_id).any()
    np.testing.assert_array_equal(labels[5], before[5])
    assert annotator.undo()
    np.testing.assert_array_equal(labels, before)


def test_propagation_ends_with_the_object_and_can_be_cancelled(session):
    labels = np.zeros((4, 32, 32), np.int32)
    labels[3] = 9  # plane 3 belongs to another object: nothing is left for ours there
    annotator = VolumeAnnotator(disk_volume(4, 32), labels, session)
    annotator.add_click(1, 16, 16)
    report = annotator.propagate(
        1,
        PropagationSettings(
            min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0, directions=(1,)
        ),
    )
    assert report.written == (2,)
    assert report.stops[1] == "the object ends at plane 3"
    assert (labels[3] == 9).all()

    cancelled = annotator.propagate(2, LENIENT, cancelled=lambda: True)
    assert len(cancelled.written) <= 1
    assert "cancelled" in cancelled.stops.values()
    with pytest.raises(ValueError, match="no pixels on plane 0"):
        VolumeAnnotator(disk_volume(4, 32), np.zeros((4, 32, 32), np.int32), session).propagation(0)


def _propagated_prompt(kind: str, previous: np.ndarray):
    """What propagation of ``kind`` prompts the slice after the one whose mask is ``previous``
    with: the box grown around that mask, or the stroke along its middle."""
    from napari_adaptiveclick.interactive.boxed import bounding_box, box_slices
    from napari_adaptiveclick.volume.propagation_prompts import grown_box, stroke_near

    box = bounding_box(previous)
    if kind == "box":
        return grown_box(box, 0.1, previous.shape)
    return stroke_near(previous[box_slices(box)], box)


@pytest.mark.parametrize("kind", ["box", "scribble"])
def test_propagation_prompts_each_slice_from_the_previous_mask_and_replays(session, kind):
    from dataclasses import replace

    image = disk_volume(5, 32)
    labels = np.zeros((5, 32, 32), np.int32)
    annotator = VolumeAnnotator(image, labels, session, model_name="tiny")
    annotator.add_click(2, 16, 16, True)
    report = annotator.propagate(2, replace(LENIENT, prompt=kind, directions=(1,)))
    written = list(report.written)
    assert written, report.stops
    prompts = [r for r in annotator.records if r.plane != 2]
    assert [r.plane for r in prompts] == written and {r.kind for r in prompts} == {kind}
    for record in prompts:  # made from the neighbour's mask; a stroke lies inside it
        previous = labels[record.plane - 1] == annotator.object_id
        assert record.prompt == _propagated_prompt(kind, previous)
        if kind == "scribble":
            assert record.positive and all(previous[int(r), int(c)] for r, c in record.points)
    replayed = replay_records(image, annotator.records, session)
    np.testing.assert_array_equal(replayed, labels)


def test_propagation_settings_refuse_an_unknown_prompt_or_growth():
    with pytest.raises(ValueError, match="'click', 'box' or 'scribble'"):
        PropagationSettings(prompt="points")
    with pytest.raises(ValueError, match="box_grow"):
        PropagationSettings(box_grow=-1.0)


def test_the_propagation_stroke_follows_the_largest_part_of_the_mask():
    from napari_adaptiveclick.interactive.transforms import Box
    from napari_adaptiveclick.volume.propagation_prompts import stroke_near

    crop = np.zeros((20, 40), bool)
    crop[5:15, 3:37] = True  # a bar along the columns, in plane rows 105-114
    crop[0:2, 0:2] = True  # a speck, left alone
    stroke = stroke_near(crop, Box(100, 200, 120, 240))
    rows = [r for r, _ in stroke.points]
    cols = [c for _, c in stroke.points]
    assert stroke.positive and len(stroke.points) > 3
    assert all(108 <= r <= 111 for r in rows)  # the bar's middle rows, in plane pixels
    assert 203 < min(cols) and max(cols) < 237 and max(cols) - min(cols) > 15


def test_grown_box_moves_each_side_out_and_stays_on_the_plane():
    from napari_adaptiveclick.interactive.transforms import Box
    from napari_adaptiveclick.volume.propagation_prompts import grown_box

    box = grown_box(Box(10, 20, 30, 60), 0.1, (100, 100))
    assert box.points == ((6.0, 14.0), (34.0, 66.0))
    assert grown_box(Box(0, 0, 10, 100), 0.5, (50, 100)).points == ((0.0, 0.0), (17.0, 100.0))


def test_replay_of_the_records_gives_the_same_labels(session):
    image = disk_volume(5, 32)
    initial = np.zeros((5, 32, 32), np.int32)
    initial[4, :6, :6] = 3
    labels = initial.copy()
    annotator = VolumeAnnotator(image, labels, session, model_name="tiny")
    annotator.add_click(2, 16, 16, True)
    annotator.add_click(2, 4, 4, False)
    annotator.add_click(2, 28, 28, False)
    annotator.undo()  # the session rolls back inside a run
    annotator.add_click(3, 16, 16, True)  # an empty plane next to the object: carried prior
    annotator.undo()  # the run on plane 3 is gone: a click on plane 2 continues that run
    annotator.add_click(2, 20, 10, True)
    annotator.commit()
    annotator.add_click(0, 10, 10, True)
    annotator.propagate(0, LENIENT)
    calls = []
    replayed = replay_records(
        image, annotator.records, session, labels=initial, progress=lambda *a: calls.append(a)
    )
    np.testing.assert_array_equal(replayed, labels)
    assert calls[-1] == (len(annotator.records), len(annotator.records))
    np.testing.assert_array_equal(initial[4, :6, :6], 3)  # the start labels are not modified


def test_bad_input_says_what_to_do(session):
    with pytest.raises(ValueError, match="do not match"):
        VolumeAnnotator(disk_volume(4, 32), np.zeros((4, 32, 31), np.int32), session)
    with pytest.raises(ValueError, match="choose one time point"):
        VolumeAnnotator(np.zeros((2, 4, 32, 32)), np.zeros((2, 4, 32), np.int32), session)
    annotator = VolumeAnnotator(disk_volume(4, 32), np.zeros((4, 32, 32), np.int32), session)
    with pytest.raises(ValueError, match="outside the volume"):
        annotator.add_click(1, 40, 3)
    with pytest.raises(ValueError, match="outside the volume"):
        annotator.add_click(4, 3, 3)
    assert annotator.records == [] and not annotator.can_undo


def test_replay_along_another_axis_and_of_a_2d_image(session):
    image = disk_volume(5, 32)
    labels = np.zeros((5, 32, 32), np.int32)
    annotator = VolumeAnnotator(image, labels, session, axis=2)
    annotator.add_click(16, 2, 16)  # plane 16 along axis 2: (row, col) index axes 0 and 1
    assert annotator.records[0].axis == 2
    assert labels[:, :, 16].any() and not labels[:, :, 15].any()
    np.testing.assert_array_equal(replay_records(image, annotator.records, session), labels)

    flat = np.zeros((1, 32, 32), np.int32)
    annotator = VolumeAnnotator(image[2:3], flat, session)
    annotator.add_click(0, 16, 16)
    np.testing.assert_array_equal(replay_records(image[2], annotator.records, session), flat[0])
    other_axis = VolumeAnnotator(image, np.zeros((5, 32, 32), np.int32), session, axis=1)
    with pytest.raises(ValueError, match="along axis 0"):
        next(other_axis.replay(annotator.records))


def test_a_replay_with_a_bad_record_changes_nothing(session):
    # A clicks file whose third record lies outside the volume: before, the first two were
    # applied (a partial replay in the widget); now the replay is refused before any.
    image = disk_volume(4, 32)
    source = VolumeAnnotator(image, np.zeros((4, 32, 32), np.int32), session)
    source.add_click(1, 16, 16)
    source.add_click(2, 16, 16)
    bad = replace(source.records[-1], plane=9, order=source.records[-1].order + 1)
    labels = np.zeros((4, 32, 32), np.int32)
    annotator = VolumeAnnotator(image, labels, session)
    with pytest.raises(ValueError, match="click of order 2 at plane 9.*outside the volume"):
        list(annotator.replay([*source.records, bad]))
    assert not labels.any() and annotator.records == [] and not annotator.can_undo
    wrong_axis = [replace(r, axis=1) for r in source.records]
    with pytest.raises(ValueError, match="along axis 1.*nothing was replayed"):
        list(annotator.replay(wrong_axis))
    assert not labels.any() and annotator.records == []


def test_a_replay_whose_label_mask_is_in_no_labels_changes_nothing(session):
    image = disk_volume(4, 32)
    good = ClickRecord(1, 16, 16, True, object_id=1, order=0)
    refine = ClickRecord(2, 5, 5, True, 7, order=1, kind="mask", mask_label=7)
    labels = np.zeros((4, 32, 32), np.int32)
    annotator = VolumeAnnotator(image, labels, session)
    with pytest.raises(ValueError, match="label 7 is in no labels"):
        list(annotator.replay([good, refine]))
    assert not labels.any() and annotator.records == []


def test_no_threshold_rewrite_of_a_record_trimmed_to_an_intensity_range(session):
    # A replayed record with an intensity range wrote a trimmed mask; after a later click on
    # its plane is undone, a changed threshold must not write the untrimmed probability.
    image = disk_volume(4, 32)
    labels = np.zeros((4, 32, 32), np.int32)
    annotator = VolumeAnnotator(image, labels, session)
    trimmed = ClickRecord(1, 16, 16, True, object_id=1, order=0, intensity_min=150.0)
    list(annotator.replay([trimmed]))
    annotator.add_click(1, 4, 4, False)
    annotator.undo()
    assert annotator.records[-1].keep.limits and annotator.held_prediction() is None
    plain = VolumeAnnotator(image, np.zeros((4, 32, 32), np.int32), session)
    plain.add_click(1, 16, 16)
    plain.add_click(1, 4, 4, False)
    plain.undo()
    record, prediction = plain.held_prediction()
    assert record is plain.records[-1] and prediction.box is not None
