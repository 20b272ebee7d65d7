"""Scribbles, boxes and masks as prompts beside clicks (issue #16): rasterisation, the box's
focus crop and its inverse, undo and replay of every kind in a session and in a volume
annotation, the records' ``kind`` column (old click files still load), and bad input.

The model is a randomly initialised ``tiny``: its masks are meaningless, so the assertions are
about encodings, geometry, what undo restores and what replay reproduces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_adaptiveclick.interactive.focus import box_focus
from napari_adaptiveclick.interactive.prompts import (
    BoxPrompt,
    Click,
    MaskPrompt,
    Scribble,
    disk_maps,
    polygon_mask,
    strokes,
)
from napari_adaptiveclick.interactive.transforms import Box, CropResize
from napari_adaptiveclick.volume import VolumeAnnotator, replay_records
from napari_adaptiveclick.volume.clicks_file import read_click_records, write_click_records
from napari_adaptiveclick.volume.records import ClickRecord
from synthetic import disk_volume


@pytest.fixture(scope="module")
def session(random_tiny_session):
    return random_tiny_session


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    img = rng.normal(100, 10, (300, 260)).astype(np.float32)
    img[100:160, 80:150] += 80
    return img


def _on(maps: np.ndarray) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(maps), strict=True)}


# ---------------------------------------------------------------------------- rasterisation
def test_a_straight_stroke_is_a_capsule_of_the_click_radius():
    maps = disk_maps([Scribble([(5, 2), (5, 8)], True)], (11, 11), radius=1.0)
    # hand values: the segment's row and its ends +-1 column; rows 4 and 6 only above the
    # segment itself (the corners (4, 1), (6, 9) are sqrt(2) from the end points)
    expected = {(5, c) for c in range(1, 10)} | {(r, c) for r in (4, 6) for c in range(2, 9)}
    assert _on(maps[0]) == expected
    assert not maps[1].any()


def test_a_diagonal_stroke_marks_only_pixels_within_the_radius():
    maps = disk_maps([Scribble([(0, 0), (4, 4)], False)], (6, 6), radius=0.5)
    assert _on(maps[1]) == {(i, i) for i in range(5)}  # (0, 1) is 0.707 px from the line
    assert not maps[0].any()


def test_a_polyline_marks_every_segment_and_a_one_point_stroke_is_a_click():
    maps = disk_maps([Scribble([(2, 2), (2, 6), (6, 6)], True)], (9, 9), radius=0.0)
    assert _on(maps[0]) == {(2, c) for c in range(2, 7)} | {(r, 6) for r in range(2, 7)}
    point = disk_maps([Scribble([(4.5, 3.0)])], (9, 9), radius=2.0)
    np.testing.assert_array_equal(point, disk_maps([Click(4.5, 3.0)], (9, 9), radius=2.0))


def test_strokes_are_what_the_disk_maps_encode():
    shape = (100, 100)
    mask = MaskPrompt.of(np.ones((2, 2)), shape, Box(5, 5, 7, 7))
    stroke = Scribble([(1, 1), (3, 3)], False)
    prompts = (Click(1, 1), mask, BoxPrompt(10, 20, 30, 40), stroke)
    assert strokes(prompts, shape) == (Click(19.0, 29.0, True), stroke)


def test_polygon_mask_holds_the_pixel_centres_inside():
    mask = polygon_mask([(1.5, 1.5), (1.5, 4.5), (4.5, 4.5), (4.5, 1.5)], (7, 7))
    assert _on(mask) == {(r, c) for r in range(2, 5) for c in range(2, 5)}


# ---------------------------------------------------------------------------- box geometry
def test_box_pixels_seed_and_corner_order():
    assert BoxPrompt(10, 20, 30, 40).pixel_box() == Box(10, 20, 30, 40)
    assert BoxPrompt(9.5, 19.5, 29.5, 39.5).pixel_box() == Box(10, 20, 30, 40)  # napari edges
    assert BoxPrompt(30, 40, 10, 20) == BoxPrompt(10, 20, 30, 40)
    assert BoxPrompt(10, 20, 30, 40).seed((100, 100)) == Click(19.0, 29.0, True)
    # over the image's edge: the seed is the centre of the part inside
    assert BoxPrompt(-50, -50, 10, 10).pixel_box((100, 100)) == Box(0, 0, 10, 10)
    assert BoxPrompt(-50, -50, 10, 10).seed((100, 100)) == Click(4.0, 4.0, True)


def test_box_focus_crop_and_its_inverse():
    shape = (300, 260)
    box = BoxPrompt(100, 80, 160, 150)
    crop = box_focus(box, shape, expand=1.4, min_size=200)
    assert crop == Box(30, 15, 230, 215)  # 200 x 200 (the minimum) about the box's centre
    transform = CropResize(shape, crop, (256, 256))
    corners = np.array([[100, 80], [159, 149]], dtype=float)
    net = transform.forward_points(corners)
    np.testing.assert_allclose(net, [[89.74, 83.34], [165.26, 171.66]], atol=1e-9)
    np.testing.assert_allclose(transform.inverse_points(net), corners, atol=1e-9)
    big = box_focus(BoxPrompt(0, 0, 250, 200), shape, expand=1.4, min_size=200)
    assert big == Box(0, 0, 300, 260)  # grown 1.4 times, clamped to the image
    near_edge = box_focus(BoxPrompt(280, 240, 300, 260), shape, expand=1.4, min_size=200)
    assert near_edge == Box(100, 60, 300, 260)  # shifted inside, never cut


# ---------------------------------------------------------------------------- session
def test_every_prompt_kind_is_one_undo_step(session, image):
    session.set_image(image)
    results = [session.add_click(130, 110).probability]
    results.append(session.add_scribble([(105, 85), (120, 100), (150, 140)], True).probability)
    results.append(session.add_box(90, 70, 170, 160).probability)
    mask = np.zeros(image.shape, bool)
    mask[100:160, 80:150] = True
    set_result = session.set_mask(mask)
    np.testing.assert_array_equal(set_result.mask, mask)  # a mask prompt is the result as given
    results.append(set_result.probability)
    results.append(session.add_scribble([(110, 200), (150, 200)], False).probability)
    kinds = [type(p).__name__ for p in session.prompts]
    assert kinds == ["Click", "Scribble", "BoxPrompt", "MaskPrompt", "Scribble"]
    assert session.clicks == [Click(130.0, 110.0, True)]
    for expected in reversed(results[:-1]):
        np.testing.assert_array_equal(session.undo().probability, expected)
    assert session.undo() is None and session.prompts == []


@pytest.mark.parametrize(
    "prompts",
    [
        [BoxPrompt(95, 75, 165, 155), Scribble([(120, 100), (140, 130)]), Click(200, 200, False)],
        [Scribble([(110, 90), (150, 140)]), BoxPrompt(95, 75, 165, 155), Click(130, 110)],
    ],
)
def test_prompts_replay_to_the_same_result(session, image, prompts):
    session.set_image(image)
    first = [session.add_prompt(p).probability for p in prompts]
    session.reset()
    again = [session.add_prompt(p).probability for p in prompts]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_box_chooses_the_focus_crop_and_a_mask_is_the_previous_mask(session, image):
    session.set_image(image)
    session.add_box(100, 80, 160, 150)
    assert session.focus_box == box_focus(BoxPrompt(100, 80, 160, 150), image.shape, 1.4, 200)
    session.reset()
    mask = np.zeros(image.shape, bool)
    mask[100:160, 80:150] = True
    session.set_mask(mask[90:170, 70:160], box=Box(90, 70, 170, 160))  # a crop and its box
    np.testing.assert_array_equal(session.prediction.mask, mask)
    session.add_click(130, 110)
    assert session.focus_box == Box(30, 15, 230, 215)  # the zoom-in box around the mask
    session.undo()
    np.testing.assert_array_equal(session.prediction.mask, mask)


def test_float_and_label_masks_are_taken(session, image):
    session.set_image(image)
    mask = np.zeros((300, 260))
    mask[100:140, 100:150] = 1.0  # floats that are 0 or 1
    assert session.set_mask(mask).mask[120, 120]
    assert session.set_mask((mask * 7).astype(np.uint16)).mask[120, 120]  # a label id
    session.reset()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s: s.add_scribble([(10, 10), (10, 400)]),
            r"Stroke point \(10.0, 400.0\) is outside",
        ),
        (lambda s: s.add_scribble([]), "at least one"),
        (lambda s: s.add_scribble([1, 2, 3]), r"\(row, col\) pairs"),
        (lambda s: s.add_box(10, 10, 10, 50), "empty"),
        (lambda s: s.add_box(400, 400, 500, 500), "outside the image"),
        (lambda s: s.add_box(0, 0, np.nan, 5), "non-finite"),
        (lambda s: s.add_click(np.nan, 5), r"Click \(nan, 5.0\) must be finite"),
        (lambda s: s.set_mask(np.ones((30, 30), bool)), "must match the image"),
        (lambda s: s.set_mask(np.zeros((300, 260), bool)), "no pixels"),
        (lambda s: s.set_mask(np.full((300, 260), 0.3)), "other than 0 and 1.*set_previous_mask"),
        (lambda s: s.set_mask(np.full((300, 260), np.nan)), "other than 0 and 1"),
        (lambda s: s.set_mask(np.full((300, 260), "a")), "must be bool or numbers"),
        (lambda s: s.set_mask(np.ones((5, 5)), box=Box(298, 0, 303, 5)), "not inside the image"),
    ],
)
def test_bad_prompts_are_explained(session, image, call, message):
    session.set_image(image)
    with pytest.raises(ValueError, match=message):
        call(session)
    assert session.prompts == []


# ---------------------------------------------------------------------------- records
def _all_kinds() -> list[ClickRecord]:
    sha = "a" * 64
    return [
        ClickRecord(1, 5.5, 6.0, True, 2, order=0, model="tiny"),
        ClickRecord(1, 5.0, 6.0, False, 2, order=1, kind="scribble", points=[(5, 6), (7.25, 8)]),
        ClickRecord(2, 10.0, 11.0, True, 3, order=2, kind="box", points=((1, 2), (20.5, 21))),
        ClickRecord(2, 4.0, 4.0, True, 3, order=3, kind="mask", mask_label=7, mask_sha256=sha),
        ClickRecord(3, 2.0, 2.0, True, 3, 4, kind="mask", points=((0, 0), (0, 4), (4, 4))),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_records_of_every_kind_round_trip(tmp_path, suffix):
    records = _all_kinds()
    path = tmp_path / f"clicks{suffix}"
    write_click_records(path, records)
    assert read_click_records(path) == records
    assert records[1].prompt == Scribble([(5, 6), (7.25, 8)], False)
    assert records[2].prompt == BoxPrompt(1, 2, 20.5, 21)


def test_old_clicks_files_load_as_clicks(tmp_path):
    import napari_adaptiveclick

    sample = Path(napari_adaptiveclick.__file__).parent / "sample_data" / "em_stack_clicks.csv"
    records = read_click_records(sample)  # written before the kind column existed
    assert records and all(r.kind == "click" and r.points == () for r in records)
    path = tmp_path / "old.json"
    path.write_text('[{"plane": 0, "row": 1, "col": 2, "positive": true, "object_id": 1}]')
    [record] = read_click_records(path)
    assert record.prompt == Click(1.0, 2.0, True)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ("box,1 2", "a box needs 2 points"),
        ("lasso,", "kind must be one of"),
        ("mask,", "either mask_label"),
        ("scribble,", "a scribble needs its points"),
        ("scribble,1 2;x 3", "points must be"),
        ("box,1 2;3", r"pairs of numbers, got \[\[1.0, 2.0\], \[3.0\]\]"),
        ("box,1 2;3 4,0", "has 1 more value"),
    ],
)
def test_bad_prompt_records_are_explained(tmp_path, columns, message):
    path = tmp_path / "bad.csv"
    path.write_text(f"plane,row,col,positive,object_id,kind,points\n0,1,2,1,1,{columns}\n")
    with pytest.raises(ValueError, match=message):
        read_click_records(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plane,row,col,positive,object_id,kindd\n0,1,2,1,1,box\n", "unknown column.*'kindd'"),
        (
            "plane,row,col,positive,object_id,kind,points\n0,1,2,0,1,box,1 2;3 4\n",
            "always positive",
        ),
    ],
)
def test_misspelt_columns_and_negative_boxes_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)  # a misspelt kind column would have replayed the box as a click
    with pytest.raises(ValueError, match=message):
        read_click_records(path)


# ---------------------------------------------------------------------------- volume
def test_volume_prompts_undo_and_replay(session, tmp_path):
    image = disk_volume(4, 40)
    initial = np.zeros((4, 40, 40), np.int32)
    initial[1, 5:15, 5:15] = 9  # a label from another tool
    labels = initial.copy()
    annotator = VolumeAnnotator(image, labels, session, model_name="tiny")
    annotator.add_box(2, 8, 8, 32, 32)
    annotator.add_scribble(2, [(12, 20), (28, 20)], True)
    annotator.add_scribble(2, [(2, 2), (2, 10)], False)
    annotator.add_click(2, 20, 20)
    annotator.commit()
    before = labels.copy()
    annotator.set_mask(3, polygon=[(10, 10), (10, 30), (30, 30), (30, 10)])
    square = polygon_mask([(10, 10), (10, 30), (30, 30), (30, 10)], (40, 40))
    np.testing.assert_array_equal(labels[3] == annotator.object_id, square)
    annotator.undo()
    np.testing.assert_array_equal(labels, before)  # the mask prompt was one undo step
    annotator.set_mask(3, polygon=[(10, 10), (10, 30), (30, 30), (30, 10)])
    annotator.add_click(3, 20, 20, False)  # refines the mask: the same run
    annotator.refine_label(1, 9)
    assert annotator.object_id == 9
    annotator.add_click(1, 10, 10)
    kinds = [r.kind for r in annotator.records]
    assert kinds == ["box", "scribble", "scribble", "click", "mask", "click", "mask", "click"]
    mask_record = annotator.records[6]
    assert (mask_record.mask_label, len(mask_record.mask_sha256)) == (9, 64)

    replayed = replay_records(image, annotator.records, session, labels=initial)
    np.testing.assert_array_equal(replayed, labels)

    path_csv = tmp_path / "prompts.csv"
    write_click_records(path_csv, annotator.records)
    again = replay_records(image, read_click_records(path_csv), session, labels=initial)
    np.testing.assert_array_equal(again, labels)

    for _ in range(len(annotator.records)):
        assert annotator.undo()
    np.testing.assert_array_equal(labels, initial)


def test_replay_refuses_a_mask_that_differs_and_prompts_outside_the_volume(session):
    image = disk_volume(3, 32)
    initial = np.zeros((3, 32, 32), np.int32)
    initial[1, 4:12, 4:12] = 5
    annotator = VolumeAnnotator(image, initial.copy(), session)
    annotator.refine_label(1, 5)
    changed = initial.copy()
    changed[1, 4, 4] = 0  # painted by hand since: not the recorded mask
    with pytest.raises(ValueError, match="SHA-256 differs"):
        replay_records(image, annotator.records, session, labels=changed)
    with pytest.raises(ValueError, match="label 5 is in no labels the replay starts from"):
        replay_records(image, annotator.records, session)  # refused before any prediction
    elsewhere = np.zeros_like(initial)
    elsewhere[0, 4:12, 4:12] = 5  # label 5, but not on the record's plane
    with pytest.raises(ValueError, match="Label 5 has no pixels on plane 1"):
        replay_records(image, annotator.records, session, labels=elsewhere)
    outside = ClickRecord(0, 5.0, 5.0, True, 1, kind="scribble", points=((5, 5), (5, 40)))
    with pytest.raises(
        ValueError, match=r"The record of order 0 \(scribble, plane 0\): Stroke point"
    ):
        replay_records(image, [outside], session)
    empty_box = ClickRecord(0, 5.0, 5.0, True, 1, kind="box", points=((5, 5), (5, 9)))
    with pytest.raises(ValueError, match="empty"):
        replay_records(image, [empty_box], session)


def test_volume_prompt_bad_input(session):
    image = disk_volume(2, 32)
    annotator = VolumeAnnotator(image, np.zeros((2, 32, 32), np.int32), session)
    with pytest.raises(ValueError, match="outside the image"):
        annotator.add_scribble(0, [(5, 5), (5, 50)])
    with pytest.raises(ValueError, match="Plane 2 is outside"):
        annotator.add_box(2, 0, 0, 10, 10)
    with pytest.raises(ValueError, match="either a label id or a polygon"):
        annotator.set_mask(0)
    with pytest.raises(ValueError, match="no pixel centre"):
        annotator.set_mask(0, polygon=[(100, 100), (100, 120), (120, 120)])
    assert annotator.records == [] and not annotator.can_undo


# ---------------------------------------------------------------------------- evaluation
def test_jittered_box_is_the_object_box_moved_a_little():
    from napari_adaptiveclick.evaluation.simulator import jittered_box

    gt = np.zeros((100, 120), bool)
    gt[20:60, 30:50] = True
    assert jittered_box(gt).pixel_box() == Box(20, 30, 60, 50)
    boxes = [jittered_box(gt, np.random.default_rng(seed)) for seed in range(50)]
    for box in boxes:
        exact = (20, 30, 60, 50)
        assert all(
            abs(v - e) <= 20
            for v, e in zip((box.top, box.left, box.bottom, box.right), exact, strict=True)
        )
        assert box.pixel_box((100, 120)).height > 0
    assert len({b.points for b in boxes}) == 50
    assert jittered_box(gt, np.random.default_rng(3)) == boxes[3]  # seeded


def test_simulated_strokes_run_along_the_middle_of_the_error():
    from napari_adaptiveclick.evaluation.simulator import next_scribble, stroke_along

    bar = np.zeros((30, 50), bool)
    bar[10:15, 5:45] = True
    stroke = stroke_along(bar)
    rows = {r for r, _ in stroke.points}
    cols = [c for _, c in stroke.points]
    assert stroke.positive and rows <= {11.0, 12.0, 13.0}  # along the middle row
    assert 6 <= min(cols) <= 10 and 39 <= max(cols) <= 43  # the thin ends are left out
    assert max(cols) - min(cols) >= 30
    assert stroke_along(np.pad(np.ones((1, 1), bool), 3)).points == ((3.0, 3.0),)

    first = next_scribble(bar, np.zeros_like(bar))
    assert first == stroke
    pred = bar.copy()
    pred[20:28, 10:40] = True  # a false positive larger than any miss
    negative = next_scribble(bar, pred)
    assert not negative.positive and all(20 <= r < 28 for r, _ in negative.points)
    assert next_scribble(bar, bar) is None


@pytest.mark.parametrize("first_prompt", ["box", "scribble", "click"])
def test_noc_can_start_from_a_box_or_a_scribble(session, image, first_prompt):
    from napari_adaptiveclick.evaluation.noc import evaluate_object

    gt = np.zeros(image.shape, bool)
    gt[100:160, 80:150] = True
    result = evaluate_object(session, image, gt, max_clicks=3, first_prompt=first_prompt)
    kind = {"box": BoxPrompt, "scribble": Scribble, "click": Click}[first_prompt]
    assert isinstance(result.clicks[0], kind) and len(result.ious) == 3
    assert all(isinstance(c, Click) for c in result.clicks[1:])
    again = evaluate_object(session, image, gt, max_clicks=3, first_prompt=first_prompt)
    assert again.ious == result.ious and again.clicks == result.clicks  # seeded, deterministic


def test_first_prompt_options_and_refusals(session, image):
    from napari_adaptiveclick.evaluation.baseline import RandomWalkerPredictor
    from napari_adaptiveclick.evaluation.noc import evaluate_object
    from training.evaluate import parse_args, settings_from_args

    gt = np.zeros(image.shape, bool)
    gt[100:160, 80:150] = True
    with pytest.raises(ValueError, match="first_prompt must be one of"):
        evaluate_object(session, image, gt, first_prompt="lasso")
    with pytest.raises(ValueError, match="clicks only"):
        evaluate_object(RandomWalkerPredictor(), image, gt, first_prompt="box")
    argv = ["--dataset", "sstem", "--out", "x", "--checkpoint", "default", "--first-prompt", "box"]
    assert settings_from_args(parse_args(argv)).first_prompt == "box"
    assert settings_from_args(parse_args(argv[:-2])).first_prompt == "click"
