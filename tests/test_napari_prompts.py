"""Boxes, strokes and lassos drawn on the prompts layer, and "Refine label", headless (run
under xvfb-run): each shape becomes one prompt on its plane (one undo step, one record, kept
with the labels and autosaved), shapes that do not fit are discarded with a message.

Shapes are drawn through napari's own mouse bindings of the Shapes layer where the way a
drawing ends matters (rectangles, paths), else added as code would (polygons, bad shapes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from synthetic import disk_volume
from test_napari_widget import TIMEOUT_MS, _quiet_random_model, dock_widget, idle  # noqa: F401

pytestmark = pytest.mark.gui

from napari.utils.interactions import (  # noqa: E402
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)

from napari_adaptiveclick.interactive.prompts import polygon_mask  # noqa: E402
from napari_adaptiveclick.volume.autosave_state import open_state  # noqa: E402
from napari_adaptiveclick.volume.clicks_file import read_click_records  # noqa: E402


@dataclass
class Mouse:
    """The fields of a vispy mouse event that napari's Shapes bindings read."""

    type: str
    position: tuple  # world coordinates
    pos: np.ndarray  # canvas pixels
    dims_displayed: list
    is_dragging: bool = False
    modifiers: list = field(default_factory=list)
    button: int = 1
    handled: bool = False
    view_direction: None = None
    up_direction: None = None


class Wrapped:
    """An event as napari hands it to drag callbacks: the generator keeps this object while
    napari sets ``__wrapped__`` to each next event (move, release)."""

    def __init__(self, event: Mouse) -> None:
        self.__wrapped__ = event

    def __getattr__(self, name: str):
        return getattr(self.__wrapped__, name)


def drag(viewer, layer, mode: str, points) -> None:
    """Press at the first data point of ``layer``, drag through the others, release at the
    last, in drawing ``mode`` (a rectangle from corner to corner, a path through them)."""
    layer.mode = mode
    displayed = list(viewer.dims.displayed)

    def event(kind: str, point) -> Wrapped:
        world = tuple(layer.data_to_world(np.asarray(point, dtype=float)))
        canvas = 20.0 * np.asarray([world[d] for d in displayed])  # far apart on screen
        return Wrapped(Mouse(kind, world, canvas, displayed, is_dragging=kind == "mouse_move"))

    mouse_press_callbacks(layer, event("mouse_press", points[0]))
    for point in points[1:]:
        mouse_move_callbacks(layer, event("mouse_move", point))
    mouse_release_callbacks(layer, event("mouse_release", points[-1]))


def drained(qtbot, c) -> None:
    """Wait until the prompts are predicted and the drawn shapes are taken off the layer."""
    qtbot.waitUntil(lambda: not c.busy and len(c.prompts.data) == 0, timeout=TIMEOUT_MS)


def kinds(c) -> list[tuple[str, int, bool]]:
    return [(r.kind, r.plane, r.positive) for r in c.annotator.records]


def clicked(make_napari_viewer, qtbot):
    """A viewer annotating a (3, 40, 40) disk volume after a first click on plane 1 (drawn):
    the viewer, the widget and its controller."""
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    widget.controller.add_click(1, 20, 20)
    idle(qtbot, widget.controller)
    return viewer, widget, widget.controller


def test_prompt_input_on_its_own(make_napari_viewer, qtbot):
    """Shapes of a Shapes layer over a volume cut along its last axis become prompts on the
    plane given by that axis; shapes that do not fit are discarded with a message."""
    from napari_adaptiveclick._napari.layers import VolumeSelection
    from napari_adaptiveclick._napari.placement import VolumePlacement
    from napari_adaptiveclick._napari.prompt_input import PromptInput
    from napari_adaptiveclick.volume.slicing import SliceGeometry

    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((20, 30, 4), np.float32), name="vol", rgb=False)
    placement = VolumePlacement(
        viewer, image, VolumeSelection.of(image, None), SliceGeometry((20, 30, 4), 2)
    )
    got, said = [], []
    prompt_input = PromptInput(viewer, keys={"c": lambda: got.append("commit")})
    prompt_input.boxed.connect(lambda *box: got.append(("box", *box)))
    prompt_input.scribbled.connect(lambda *stroke: got.append(("stroke", *stroke)))
    prompt_input.lassoed.connect(lambda plane, points: got.append(("lasso", plane, points)))
    prompt_input.status.connect(said.append)
    prompt_input.attach(placement)
    layer = prompt_input.layer
    assert layer.ndim == 3 and viewer.layers.selection.active is layer  # (no click layer here)

    # vertices are (axis 0, axis 1, axis 2): the plane is the last coordinate
    layer.add(np.array([[2, 3, 1], [2, 9, 1], [8, 9, 1], [8, 3, 1]]), shape_type="rectangle")
    layer.add(np.array([[4, 4, 3], [5, 6, 3], [7, 9, 3]]), shape_type="path")
    layer.add(np.array([[1, 1, 0], [1, 6, 0], [6, 6, 0]]), shape_type="polygon")
    assert got == [
        ("box", 1, 2.0, 3.0, 8.0, 9.0),
        ("stroke", 3, ((4.0, 4.0), (5.0, 6.0), (7.0, 9.0)), True),
        ("lasso", 0, ((1.0, 1.0), (1.0, 6.0), (6.0, 6.0))),
    ]
    qtbot.waitUntil(lambda: len(layer.data) == 0, timeout=TIMEOUT_MS)  # each shape consumed

    got.clear()
    layer.add(np.array([[40, 3, 1], [40, 9, 1], [48, 9, 1], [48, 3, 1]]), shape_type="rectangle")
    layer.add(np.array([[4, 4, 1], [5, 6, 1], [25, 9, 1]]), shape_type="path")  # leaves it
    layer.add(np.array([[1, 1, 0], [1, 6, 2], [6, 6, 2]]), shape_type="polygon")
    layer.add(np.array([[1, 1, 9], [1, 6, 9], [6, 6, 9]]), shape_type="polygon")
    layer.add(np.array([[2, 3, 1], [2, 9, 1], [8, 9, 1], [8, 3, 1]]), shape_type="ellipse")
    layer.add(np.array([[1, 1, 0], [3, 3, 0], [6, 6, 0]]), shape_type="polygon")  # a line
    assert got == []
    eight = np.array([[0, 0, 0], [10, 10, 0], [10, 0, 0], [0, 10, 0]])  # crosses itself
    layer.add(eight, shape_type="polygon")
    assert got == [("lasso", 0, ((0.0, 0.0), (10.0, 10.0), (10.0, 0.0), (0.0, 10.0)))]
    got.clear()
    assert "box on plane 1 was discarded" in said[0] and "outside the image" in said[0]
    assert "stroke on plane 1 was discarded" in said[1] and "(25.0, 9.0)" in said[1]
    assert "spans planes 0 to 2" in said[2] and "plane 9, outside image 'vol'" in said[3]
    assert "ellipse is not a prompt" in said[4]
    assert "lasso on plane 0 was discarded: it encloses no area" in said[5]
    qtbot.waitUntil(lambda: len(layer.data) == 0, timeout=TIMEOUT_MS)

    from napari.utils.key_bindings import KeyBinding

    layer.keymap[KeyBinding.from_str("C")](layer)
    assert got == ["commit"]
    prompt_input.set_polarity(False)  # the next strokes are negative, drawn red
    assert layer.current_edge_color == "red"
    layer.add(np.array([[4, 4, 2], [5, 6, 2]]), shape_type="line")
    assert got[-1] == ("stroke", 2, ((4.0, 4.0), (5.0, 6.0)), False)
    viewer.layers.remove(layer)  # the prompts layer comes back
    qtbot.waitUntil(lambda: prompt_input.layer is not None, timeout=TIMEOUT_MS)
    assert prompt_input.layer in viewer.layers
    prompt_input.detach()
    assert prompt_input.layer is None


def test_a_rectangle_is_a_box_on_its_plane_and_one_undo_step(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    assert c.prompts in viewer.layers and c.prompts.ndim == 3
    assert viewer.layers.selection.active is c.points  # clicks stay the first tool
    assert "vol prompts" in widget.status.text()

    c.go_to_plane(2)
    drag(viewer, c.prompts, "add_rectangle", [(2, 8, 8), (2, 32, 32)])
    drained(qtbot, c)
    data = c.labels.data
    assert (data[2] == 1).any() and not data[[0, 1]].any()
    (record,) = c.annotator.records
    assert (record.kind, record.plane, record.points) == ("box", 2, ((8.0, 8.0), (32.0, 32.0)))
    assert "for the box" in widget.status.text() and len(c.points.data) == 0
    stored = c.labels.metadata["adaptiveclick"]["records"]
    assert [(r["kind"], r["plane"]) for r in stored] == [("box", 2)]
    qtbot.waitUntil(lambda: not c.recovery.pending, timeout=30_000)
    assert [r.kind for r in open_state(c.recovery.folder, None).records] == ["box"]

    corners = [[0, 5, 5], [0, 5, 20], [0, 20, 20], [0, 20, 5]]
    c.prompts.add(np.array(corners), shape_type="rectangle")
    drained(qtbot, c)  # drawn on plane 0 while plane 2 is shown: a box on plane 0
    assert kinds(c) == [("box", 2, True), ("box", 0, True)] and (data[0] == 1).any()
    c.undo()
    idle(qtbot, c)
    assert kinds(c) == [("box", 2, True)] and not data[0].any() and (data[2] == 1).any()
    c.undo()
    idle(qtbot, c)
    assert c.annotator.records == [] and not data.any() and not c.annotator.can_undo
    assert c.labels.metadata["adaptiveclick"]["records"] == []


def test_boxes_map_to_the_plane_of_another_slicing_axis(make_napari_viewer, qtbot):
    """Cut along axis 2 (its spacing is the coarsest): the plane is a shape's last coordinate."""
    viewer = make_napari_viewer()
    volume = np.ascontiguousarray(disk_volume(4, 32).transpose(1, 2, 0))  # (32, 32, 4)
    image = viewer.add_image(volume, name="vol", scale=(1.0, 1.0, 3.0), rgb=False)
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    assert c.annotator.geometry.axis == 2
    c.go_to_plane(3)
    assert c.current_plane() == 3
    drag(viewer, c.prompts, "add_rectangle", [(4, 6, 3), (20, 28, 3)])
    drained(qtbot, c)
    (record,) = c.annotator.records
    assert (record.kind, record.plane, record.points) == ("box", 3, ((4.0, 6.0), (20.0, 28.0)))
    data = c.labels.data
    assert (data[..., 3] == 1).any() and not data[..., :3].any()


def test_a_path_is_a_scribble_of_the_click_polarity(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    c.go_to_plane(1)
    drag(viewer, c.prompts, "add_path", [(1, 14, 14), (1, 18, 20), (1, 22, 26)])
    drained(qtbot, c)
    (record,) = c.annotator.records
    assert (record.kind, record.plane, record.positive) == ("scribble", 1, True)
    assert record.points[0] == (14.0, 14.0) and record.points[-1] == (22.0, 26.0)
    assert len(record.points) >= 3  # a path through the drag, not a line
    assert (c.labels.data[1] == 1).any() and "for the scribble" in widget.status.text()
    stroked = c.labels.data.copy()

    widget.polarity_button.click()  # negative: strokes too, drawn red
    assert not c.positive
    assert c.prompts.current_edge_color == "red"
    c.prompts.add(np.array([[1, 20, 20], [1, 20, 24]]), shape_type="line")
    drained(qtbot, c)
    assert kinds(c) == [("scribble", 1, True), ("scribble", 1, False)]
    assert c.annotator.records[1].points == ((20.0, 20.0), (20.0, 24.0))
    path = c.save_clicks(tmp_path / "prompts.csv")
    assert [(r.kind, r.positive) for r in read_click_records(path)] == [
        ("scribble", True),
        ("scribble", False),
    ]
    c.undo()  # the negative stroke alone
    idle(qtbot, c)
    np.testing.assert_array_equal(c.labels.data, stroked)
    assert kinds(c) == [("scribble", 1, True)]


def test_a_polygon_is_a_mask_prompt_that_clicks_refine(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 40), name="vol")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    c.go_to_plane(1)
    vertices = np.array([[13, 13], [13, 22], [22, 22], [22, 14]], float)  # part of the disk
    c.prompts.add(np.c_[np.ones(4), vertices], shape_type="polygon")
    drained(qtbot, c)
    (record,) = c.annotator.records
    assert (record.kind, record.plane, record.points) == ("mask", 1, tuple(map(tuple, vertices)))
    assert record.mask_sha256 and record.mask_label == 0
    lasso = polygon_mask(vertices, (40, 40))
    np.testing.assert_array_equal(c.labels.data[1] == 1, lasso)  # exactly its inside
    assert not c.labels.data[[0, 2]].any()

    c.add_click(1, 20, 27)  # in the disk, outside the lasso: the object grows
    idle(qtbot, c)
    assert kinds(c) == [("mask", 1, True), ("click", 1, True)]
    assert not np.array_equal(c.labels.data[1] == 1, lasso)
    assert len(c.points.data) == 1  # the click layer shows the click, not the lasso
    c.undo()
    idle(qtbot, c)
    np.testing.assert_array_equal(c.labels.data[1] == 1, lasso)
    c.undo()
    idle(qtbot, c)
    assert c.annotator.records == [] and not c.labels.data.any()


def test_shapes_off_the_image_or_across_planes_change_nothing(make_napari_viewer, qtbot):
    _, widget, c = clicked(make_napari_viewer, qtbot)
    before, records = c.labels.data.copy(), list(c.annotator.records)
    shapes = [
        ("rectangle", [[1, 50, 50], [1, 50, 60], [1, 60, 60], [1, 60, 50]], "outside the image"),
        ("path", [[1, 10, 10], [1, 20, 45]], "outside the image"),
        ("polygon", [[0, 10, 10], [2, 10, 30], [2, 30, 30]], "spans planes 0 to 2"),
        ("rectangle", [[7, 5, 5], [7, 5, 9], [7, 9, 9], [7, 9, 5]], "outside image 'vol'"),
    ]
    for shape_type, vertices, message in shapes:
        c.prompts.add(np.array(vertices, float), shape_type=shape_type)
        assert message in widget.status.text() and "discarded" in widget.status.text()
        drained(qtbot, c)
        assert c.annotator.records == records
        np.testing.assert_array_equal(c.labels.data, before)
    c.prompts.add(
        np.array([[1, 12, 12], [1, 12, 28], [1, 28, 28], [1, 28, 12]]), shape_type="rectangle"
    )
    drained(qtbot, c)
    assert kinds(c) == [("click", 1, True), ("box", 1, True)]
    c.points.remove([0])  # deleting the click does not undo the box, the last step
    assert "The last step is a box, not this click" in widget.status.text()
    assert len(c.points.data) == 1 and len(c.annotator.records) == 2 and not c.busy
    c.undo()
    c.undo()
    idle(qtbot, c)
    assert c.annotator.records == [] and not c.labels.data.any()


def with_labels(make_napari_viewer, qtbot):
    """A viewer annotating a disk volume on Labels 'seg' that hold label 7 on plane 1 (a
    square, part of the disk: an object from another tool) and label 3 on plane 0: the
    widget, its controller, the labels layer and the square."""
    viewer = make_napari_viewer()
    image = viewer.add_image(disk_volume(3, 40), name="vol")
    labels = viewer.add_labels(np.zeros((3, 40, 40), np.int32), name="seg")
    square = np.zeros((40, 40), bool)
    square[12:26, 12:26] = True
    labels.data[1][square] = 7
    labels.data[0, :4, :4] = 3
    widget = dock_widget(viewer, qtbot, image, start=False)
    widget.labels_combo.setCurrentText("seg")
    widget.start()
    idle(qtbot, widget.controller)
    return widget, widget.controller, labels, square


def test_refine_label_takes_an_existing_label_and_commit_keeps_its_id(make_napari_viewer, qtbot):
    widget, c, labels, square = with_labels(make_napari_viewer, qtbot)
    refine = widget.buttons["Refine label"]

    c.go_to_plane(1)
    labels.selected_label = 0
    refine.click()
    assert "0 is background" in widget.status.text() and c.annotator.records == []
    labels.selected_label = 3  # a label of plane 0 only
    idle(qtbot, c)
    refine.click()
    idle(qtbot, c)
    assert "Label 3 has no pixels on plane 1" in widget.status.text()
    assert c.annotator.records == []

    labels.selected_label = 7
    idle(qtbot, c)
    assert c.object_id == 7
    refine.click()
    idle(qtbot, c)
    (record,) = c.annotator.records
    assert (record.kind, record.plane, record.mask_label, record.object_id) == ("mask", 1, 7, 7)
    np.testing.assert_array_equal(labels.data[1] == 7, square)  # the start: the label itself
    c.add_click(1, 20, 30)  # in the disk, right of the square: the object changes
    idle(qtbot, c)
    assert kinds(c) == [("mask", 1, True), ("click", 1, True)]
    refined = labels.data.copy()
    assert not np.array_equal(refined[1] == 7, square)
    assert (refined[0, :4, :4] == 3).all()  # other labels are left alone

    c.commit()
    idle(qtbot, c)
    assert c.object_id == 8 and labels.selected_label == 8
    np.testing.assert_array_equal(labels.data, refined)  # written back under id 7
    c.undo()  # reopens 7
    idle(qtbot, c)
    assert c.object_id == 7
    c.undo()  # the click
    idle(qtbot, c)
    np.testing.assert_array_equal(labels.data[1] == 7, square)
    c.undo()  # the mask prompt: it had changed nothing
    idle(qtbot, c)
    assert c.annotator.records == [] and (labels.data[1] == 7).sum() == square.sum()


def test_napari_shapes_keys_keep_their_meaning_on_the_prompts_layer(make_napari_viewer, qtbot):
    """T and Shift-P are napari's add-path and polygon-lasso modes on a Shapes layer: on the
    prompts layer they switch the drawing mode; the plugin's other keys work on both layers."""
    from napari.utils.key_bindings import KeyBinding

    viewer, widget, c = clicked(make_napari_viewer, qtbot)
    records = list(c.annotator.records)
    keys = viewer.window._qt_viewer._key_map_handler  # what a key press in the canvas reaches
    viewer.layers.selection.active = c.prompts
    for key, mode in (("T", "add_path"), ("Shift-P", "add_polygon_lasso")):
        keys.press_key(key)
        assert c.prompts.mode == mode and not c.busy  # no propagation queued
        keys.release_key(key)
        assert c.positive and c.annotator.records == records  # no polarity switch either
    bound = set(c.prompts.keymap)
    assert {KeyBinding.from_str(k) for k in ("C", "Shift-C", "Control-Z")} <= bound
    assert not {KeyBinding.from_str(k) for k in ("T", "Shift-P")} & bound
    keys.press_key("Control-Z")  # the plugin's undo works on the prompts layer
    keys.release_key("Control-Z")
    idle(qtbot, c)
    assert c.annotator.records == []

    viewer.layers.selection.active = c.points  # on the click layer: polarity and propagate
    keys.press_key("T")
    keys.release_key("T")
    assert not c.positive
    c.add_click(1, 20, 20, positive=True)
    idle(qtbot, c)
    reports = []
    c.propagated.connect(reports.append)
    keys.press_key("Shift-P")
    keys.release_key("Shift-P")
    assert c.busy
    qtbot.waitUntil(lambda: bool(reports) and not c.busy, timeout=TIMEOUT_MS)


def test_deleting_the_last_click_waits_for_a_box_in_progress(make_napari_viewer, qtbot):
    """A box queued after a click is not recorded yet: deleting the click then would undo
    the box (the last step by then), so it is refused until the box is recorded."""
    _, widget, c = clicked(make_napari_viewer, qtbot)
    box = np.array([[1, 10, 10], [1, 10, 30], [1, 30, 30], [1, 30, 10]], float)
    c.prompts.add(box, shape_type="rectangle")  # predicted in a worker
    assert c.busy and c.actions.others_pending() == 1
    c.points.remove([0])
    assert "still being predicted" in widget.status.text()
    drained(qtbot, c)
    assert kinds(c) == [("click", 1, True), ("box", 1, True)]  # nothing undone
    assert c.actions.others_pending() == 0 and len(c.points.data) == 1
    c.prompts.add(box, shape_type="rectangle")
    c.cancel()  # a cancelled prompt is pending no more
    assert c.actions.others_pending() == 0
    drained(qtbot, c)
    assert len(c.annotator.records) == 2


def test_a_refine_that_fails_or_is_cancelled_keeps_the_current_object(make_napari_viewer, qtbot):
    widget, c, labels, _ = with_labels(make_napari_viewer, qtbot)
    current = c.object_id
    assert current == 8 and labels.selected_label == 8

    c.actions.refine_label(1, 3)  # label 3 has no pixels on plane 1: the refine fails
    idle(qtbot, c)
    assert "Label 3 has no pixels on plane 1" in widget.status.text()
    assert c.object_id == current and labels.selected_label == current
    c.actions.refine_label(1, 7)
    c.cancel()  # while it is predicted
    idle(qtbot, c)
    assert c.object_id == current and c.annotator.records == []
    assert labels.selected_label == current
    c.actions.refine_label(1, 7)  # accepted: object 7 is current from its mask on
    idle(qtbot, c)
    assert c.object_id == 7 and labels.selected_label == 7
    (record,) = c.annotator.records
    assert (record.kind, record.object_id, record.mask_label) == ("mask", 7, 7)
