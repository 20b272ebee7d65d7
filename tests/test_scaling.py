"""What a click costs does not grow with the image or the number of clicks (issue #13,
item 8): undo keeps crops, labels are written in boxes, statistics come from a bounded
sample, ids need no pass over the volume.

The model is a stand-in whose mask is "brighter than mid-grey" (as in ``test_session.py``),
so that crops, boxes and undo can be checked against known answers quickly on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_adaptiveclick.interactive.boxed import BoxedArray, bounding_box, box_union
from napari_adaptiveclick.interactive.prompts import Click
from napari_adaptiveclick.interactive.results import Prediction
from napari_adaptiveclick.interactive.session import ClickSession
from napari_adaptiveclick.interactive.transforms import (
    Box,
    _bounded_sample,
    intensity_stats,
    sampled_intensity_stats,
)
from napari_adaptiveclick.models.registry import CONFIGS
from napari_adaptiveclick.volume import VolumeAnnotator
from napari_adaptiveclick.volume.edits import Step, replace_object

CLICKS = [(600, 600, True), (590, 630, True), (660, 600, False), (610, 570, True)]
CLICKS += [(640, 640, False), (600, 610, True), (570, 600, True), (630, 580, False)]
STATS = (50.0, 250.0)  # the noise maps to 0.25, the disks to 0.65


def _brightness_session(**kwargs) -> ClickSession:
    import torch

    class Brightness(torch.nn.Module):
        def forward(self, image, prev, maps):
            return {"mask_logits": 40.0 * (image[:, :1] - 0.5)}

    model = Brightness()
    model.config = CONFIGS["tiny"]
    return ClickSession(model, device="cpu", **kwargs)


def _disk_image(size: int, radius: int, centre=(600, 600), seed: int = 0) -> np.ndarray:
    """(size, size) float32 noise (mean 100, sd 10) with a bright disk (+80)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(100.0, 10.0, (size, size)).astype(np.float32)
    rows, cols = np.ogrid[:size, :size]
    image[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2] += 80.0
    return image


def _held_bytes(session: ClickSession) -> int:
    """Bytes of every array the session's undo levels hold."""
    return sum(
        value.nbytes
        for state in session._history
        for value in vars(state).values()
        if isinstance(value, np.ndarray)
    )


def test_undo_keeps_crops_whatever_the_image_size():
    """A session holds the image as given and, per click, a crop (or the model's output):
    the same bytes on a 1200 and a 2400 px image, bounded by the model's input size."""
    size = CONFIGS["tiny"].input_size
    held = []
    for side in (1200, 2400):
        image = _disk_image(side, 40)
        session = _brightness_session()
        session.set_image(image, STATS)
        for row, col, positive in CLICKS:
            session.add_click(row, col, positive)
        assert np.shares_memory(session._image, image)  # no normalised copy of the image
        assert session.undo_nbytes == _held_bytes(session)
        held.append(_held_bytes(session))
    assert held[0] == held[1]
    assert held[1] <= len(CLICKS) * 4 * size * size  # old: a whole float32 image per click


def test_undo_remakes_a_compact_level_exactly():
    """Levels whose crop is larger than the model's input keep only the model's output; undo
    gives back exactly the probability the click returned."""
    image = _disk_image(1000, 200, centre=(500, 500))  # the window grows to the whole image
    session = _brightness_session()
    session.set_image(image, STATS)
    results = [session.add_click(r, c, p) for r, c, p in [(500, 400, True), (520, 300, True)]]
    results.append(session.add_click(450, 650, False))
    assert all(state.net is not None and state.values is None for state in session._history[1:-1])
    for expected in reversed(results[:-1]):
        restored = session.undo()
        assert restored.box == expected.box
        np.testing.assert_array_equal(restored.crop, expected.crop)
        np.testing.assert_array_equal(restored.probability, expected.probability)


def test_a_prediction_is_its_crop_and_makes_whole_arrays_on_demand():
    crop = np.array([[0.2, 0.9], [0.7, 0.1]], np.float32)
    boxed = Prediction(crop, crop > 0.5, 0.1, box=Box(3, 4, 5, 6), shape=(8, 9))
    whole = np.zeros((8, 9), np.float32)
    whole[3:5, 4:6] = crop
    np.testing.assert_array_equal(boxed.probability, whole)
    np.testing.assert_array_equal(boxed.mask, whole > 0.5)
    plain = Prediction(whole, whole > 0.5)
    assert plain.box == Box(0, 0, 8, 9) and plain.crop is whole
    assert BoxedArray.of(whole).box == Box(3, 4, 5, 6)


def test_replace_object_works_inside_its_boxes_only():
    """With the mask's box and the object's extent, nothing outside the two is read or
    written (a pixel of the object left outside, against the promise, stays); inside, the
    result is that of the whole-plane write, and the patch undoes it."""
    rng = np.random.default_rng(3)
    view = rng.integers(0, 3, (60, 80)).astype(np.uint16)
    view[view == 2] = 0
    view[10:20, 10:30] = 2  # the object, inside its extent
    view[50, 70] = 2  # outside the extent and the box
    before = view.copy()
    box, extent = Box(15, 20, 35, 45), Box(10, 10, 20, 30)
    mask = rng.random((box.height, box.width)) > 0.5
    whole = np.zeros(view.shape, bool)
    whole[15:35, 20:45] = mask
    expected = view.copy()
    replace_object(expected, 0, 2, whole)
    patch = replace_object(view, 0, 2, mask, box=box, extent=extent)
    assert view[50, 70] == 2  # the region was the two boxes
    expected[50, 70] = 2
    np.testing.assert_array_equal(view, expected)
    region = box_union(box, extent)
    changed = bounding_box(view != before)
    assert box_union(region, changed) == region and patch.box == changed
    patch.restore(view)
    np.testing.assert_array_equal(view, before)


def _click_all(annotator: VolumeAnnotator, offset: int, crops: bool) -> list[Box]:
    """The clicks of :data:`CLICKS` (shifted by ``offset``) through predict / accept, written
    as crops or as whole planes; returns the prediction boxes."""
    boxes = []
    for row, col, positive in CLICKS:
        click = Click(row + offset, col + offset, positive)
        run, prediction, _ = annotator.predict_click(0, click)
        step = Step(annotator.object_id)
        if crops:
            annotator.accept_click(run, click, prediction.crop_mask, step, box=prediction.box)
        else:
            annotator.accept_click(run, click, prediction.mask, step)
        boxes.append(prediction.box)
    return boxes


def test_clicks_on_a_large_plane_write_their_crops_and_undo_exactly():
    image = _disk_image(3000, 40, centre=(2100, 2100))
    labels = np.zeros((1, 3000, 3000), np.uint16)
    labels[0, 2000:2010, 2000:2100] = 7  # another object, never touched
    start = labels.copy()
    annotator = VolumeAnnotator(image[None], labels, _brightness_session(), stats=STATS)
    boxes = _click_all(annotator, 1500, crops=True)
    reference = start.copy()
    whole = VolumeAnnotator(image[None], reference, _brightness_session(), stats=STATS)
    _click_all(whole, 1500, crops=False)
    np.testing.assert_array_equal(labels, reference)  # the same labels as whole-plane writes
    assert annotator.area(0) == int((labels == annotator.object_id).sum()) > 0
    changes = annotator.take_changes()
    union = boxes[0]
    for box in boxes[1:]:
        union = box_union(union, box)
    assert list(changes) == [0] and box_union(union, changes[0]) == union
    patches = [patch for step in annotator._history for patch in step.patches]
    assert sum(p.before.nbytes for p in patches) <= sum(b.height * b.width * 2 for b in boxes)
    while annotator.undo():
        pass
    np.testing.assert_array_equal(labels, start)
    assert box_union(union, annotator.take_changes()[0]) == union


def test_intensity_statistics_come_from_a_bounded_sample():
    """Planes (or rows) read: at most ``min_planes`` evenly spread ones, or as many as the
    samples need; small arrays are read whole, as before."""
    volume = np.broadcast_to(np.arange(500, dtype=np.uint16)[:, None, None], (500, 64, 64))
    sample = _bounded_sample(volume, 100_000, 32)
    planes = np.unique(sample)
    assert len(planes) == 32 and planes[0] == 0 and planes[-1] == 499
    assert sample.size <= 100_000
    image = np.broadcast_to(np.arange(4000, dtype=np.float32)[:, None], (4000, 4000))
    rows = np.unique(_bounded_sample(image, 2_000_000, 32))
    assert len(rows) == 500  # 2e6 samples: 500 whole rows of 4000, 1/8 of the image
    flat = np.broadcast_to(np.arange(4000, dtype=np.float32)[:, None], (1, 4000, 4000))
    assert len(np.unique(_bounded_sample(flat, 2_000_000, 32))) == 500  # one plane: its rows
    small = np.random.default_rng(0).normal(size=(10, 50, 40))  # read whole, as before
    assert sampled_intensity_stats(small) == intensity_stats(small)
    np.testing.assert_array_equal(_bounded_sample(small, 2_000_000, 32), small.reshape(-1))


def test_new_ids_are_tracked_not_searched_for():
    """A new id is one more than the largest in use: at the start, in the records, chosen by
    hand, or left with pixels (here painted by hand under a new id), never reused."""
    labels = np.zeros((2, 32, 32), np.uint16)
    labels[1, :4, :4] = 3
    annotator = VolumeAnnotator(_disk_image(32, 8, (16, 16))[None].repeat(2, 0), labels, None)
    assert annotator.object_id == 4
    labels[0, 10:12, 10:12] = 4  # painted with the current (new) id
    assert annotator.select_object(None) == 5  # 4 is in use now
    assert annotator.select_object(9) == 9 and annotator.select_object(None) == 10
    assert annotator.commit() == 10  # no pixels: keeps its id
    assert annotator.has_pixels(4) and not annotator.has_pixels(10)


def test_new_labels_layers_get_a_fitting_dtype():
    pytest.importorskip("napari")
    from napari.layers import Image

    from napari_adaptiveclick._napari.layers import new_labels_layer

    flat = new_labels_layer(Image(np.zeros((40, 50), np.uint8)))
    stack = new_labels_layer(Image(np.zeros((3, 40, 50), np.uint8)))
    assert flat.data.dtype == np.uint16 and flat.data.shape == (40, 50)
    assert stack.data.dtype == np.uint32 and stack.data.shape == (3, 40, 50)
