"""A prediction whose result is not kept (its image layer removed, the session stopped, Cancel
pressed) never touches the labels, nor the undo history. Headless (run under xvfb-run).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from synthetic import disk_volume
from test_napari_widget import _quiet_random_model, dock_widget, idle  # noqa: F401

pytestmark = pytest.mark.gui


def started_with_one_click(make_napari_viewer, qtbot):
    """A widget on a 5-plane volume whose object 1 has one click on plane 2."""
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(5, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    c.go_to_plane(2)
    c.add_click(2, 20, 20)
    idle(qtbot, c)
    assert (c.labels.data[2] == 1).any()
    return viewer, image, widget


def snapshot(annotator) -> tuple:
    """What an edit changes: the labels, the click records, the undo state, the object."""
    return (
        annotator.labels.copy(),
        list(annotator.records),
        annotator.can_undo,
        annotator.object_id,
    )


def assert_unchanged(annotator, before: tuple) -> None:
    labels, records, can_undo, object_id = before
    np.testing.assert_array_equal(annotator.labels, labels)
    assert annotator.records == records
    assert (annotator.can_undo, annotator.object_id) == (can_undo, object_id)


def test_removing_the_image_during_a_click_leaves_the_labels(make_napari_viewer, qtbot):
    viewer, image, widget = started_with_one_click(make_napari_viewer, qtbot)
    c = widget.controller
    annotator, labels = c.annotator, c.labels
    before = snapshot(annotator)
    c.add_click(3, 20, 20)  # a click on another plane: it would label plane 3
    assert c.jobs.running
    viewer.layers.remove(image)
    idle(qtbot, c)
    assert not c.ready and "discarded" in widget.status.text()
    assert_unchanged(annotator, before)
    np.testing.assert_array_equal(labels.data, before[0])
    assert not (labels.data[3]).any()


def test_stop_and_cancel_during_a_click_leave_the_labels(make_napari_viewer, qtbot):
    viewer, image, widget = started_with_one_click(make_napari_viewer, qtbot)
    c = widget.controller
    annotator = c.annotator
    before = snapshot(annotator)
    c.add_click(2, 10, 10, positive=False)  # continues the run on plane 2
    c.cancel()
    idle(qtbot, c)
    assert c.ready and "discarded" in widget.status.text()
    assert_unchanged(annotator, before)
    assert len(c.points.data) == 1  # the cancelled click is not shown

    c.add_click(3, 20, 20, positive=True)  # the session still predicts, from before
    idle(qtbot, c)
    assert (c.labels.data[3] == 1).any() and len(annotator.records) == 2
    c.undo()
    idle(qtbot, c)
    assert_unchanged(annotator, before)

    c.add_click(4, 20, 20, positive=True)
    c.stop()
    idle(qtbot, c)
    assert not c.ready
    assert_unchanged(annotator, before)


def test_removing_the_image_during_a_propagation_undoes_it(make_napari_viewer, qtbot):
    from napari_adaptiveclick.volume import PropagationSettings

    viewer, image, widget = started_with_one_click(make_napari_viewer, qtbot)
    c = widget.controller
    c.propagation_settings = PropagationSettings(  # runs through the volume: no stop rule
        min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0, stop_rule=None
    )
    annotator, labels = c.annotator, c.labels
    before = snapshot(annotator)
    predict = annotator.predict_click

    def slow_predict(*args):  # keeps the propagation running while the layer goes
        time.sleep(0.3)
        return predict(*args)

    annotator.predict_click = slow_predict
    c.propagate()
    qtbot.waitUntil(lambda: len(annotator.records) > 1, timeout=60_000)  # a slice written
    viewer.layers.remove(image)
    idle(qtbot, c)
    assert not c.ready
    assert_unchanged(annotator, before)
    np.testing.assert_array_equal(labels.data, before[0])
