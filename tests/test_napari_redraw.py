"""The widget redraws only what an edit changed (issue #13, item 8), and the screen then shows
exactly what a full refresh shows: clicks, negative clicks, undo, a propagation, on a 2D
image and a volume; the autosave is told the changed boxes only. Headless (run under
xvfb-run -a)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_adaptiveclick.interactive.results import Prediction
from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.volume import PropagationSettings
from napari_adaptiveclick.volume.autosave import AutosaveStore
from synthetic import disk_volume
from test_napari_widget import _quiet_random_model, dock_widget, idle  # noqa: F401

pytestmark = pytest.mark.gui


def _disk_predictions(annotator, radius: int = 9) -> None:
    """Make every prediction a disk around its click (a stroke: the mean of its points,
    as propagation prompts with), in a crop around it (the model's own run state is kept):
    what is drawn is known, whatever the random weights predict."""
    real = annotator.predict_click
    rows, cols = annotator.geometry.slice_shape

    def predict_click(plane, click):
        run, _, seconds = real(plane, click)
        r, c = (round(v) for v in np.mean(click.points, axis=0))
        box = Box(max(r - 20, 0), max(c - 20, 0), min(r + 21, rows), min(c + 21, cols))
        yy, xx = np.mgrid[box.top : box.bottom, box.left : box.right]
        size = radius + 3 * len(run.records)  # each click grows the object
        inside = (yy - r) ** 2 + (xx - c) ** 2 < size**2
        crop = np.where(inside, 0.9, 0.05).astype(np.float32)
        if not click.positive:  # a negative click removes a band through the object
            crop[np.abs(yy - r) < 3] = 0.05
        prediction = Prediction(crop, crop > 0.5, seconds, box=box, shape=(rows, cols))
        return run, prediction, seconds

    annotator.predict_click = predict_click


def _shown(viewer, layer) -> tuple[np.ndarray, np.ndarray]:
    """The Labels layer's texture cache and the canvas drawn now (from the textures as they
    are on the GPU; a hidden viewer's screenshot would give its last frame)."""
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    return layer._slice.image.view.copy(), canvas.render()


def _assert_as_full_refresh(viewer, layer, qtbot) -> None:
    qtbot.wait(20)
    texture, screen = _shown(viewer, layer)
    layer.refresh()
    qtbot.wait(20)
    full_texture, full_screen = _shown(viewer, layer)
    np.testing.assert_array_equal(texture, full_texture)
    np.testing.assert_array_equal(screen, full_screen)


@pytest.mark.parametrize("volume", [False, True], ids=["2d", "volume"])
def test_partial_redraw_shows_what_a_full_refresh_shows(
    make_napari_viewer, qtbot, volume, monkeypatch
):
    saved = []  # what each autosave was told changed: (plane, box) pairs
    prepare = AutosaveStore.prepare

    def recorded(store, labels, axis, records, object_id, touched, info=None):
        saved.extend(dict(touched).items())
        return prepare(store, labels, axis, records, object_id, touched, info)

    monkeypatch.setattr(AutosaveStore, "prepare", recorded)
    data = disk_volume(5, 300) if volume else disk_volume(1, 300)[0]
    viewer = make_napari_viewer()
    image = viewer.add_image(data, name="cells")
    widget = dock_widget(viewer, qtbot, image)
    c = widget.controller
    _disk_predictions(c.annotator)
    c.propagation_settings = PropagationSettings(
        min_area_ratio=0.0, max_area_ratio=np.inf, min_iou=0.0, stop_rule=None, max_slices=1
    )
    plane = 2 if volume else 0
    c.go_to_plane(plane)
    layer, refreshed = c.labels, []
    _shown(viewer, layer)  # drawn once, as a shown viewer is (napari refreshes a layer it has
    # not drawn yet instead of updating part of its texture)
    full_refresh = layer.refresh

    def counted_refresh(*args, **kwargs):
        refreshed.append(1)
        return full_refresh(*args, **kwargs)

    layer.refresh = counted_refresh
    for row, col, positive in [(150, 150, True), (156, 148, True), (150, 150, False)]:
        c.add_click(plane, row, col, positive)
        idle(qtbot, c)
        assert not refreshed  # drawn by the partial redraw
        assert (layer.data[plane] if volume else layer.data).any()
        _assert_as_full_refresh(viewer, layer, qtbot)
        refreshed.clear()
    c.commit()
    idle(qtbot, c)
    c.add_click(plane, 60, 240)  # a second object, elsewhere on the plane
    idle(qtbot, c)
    assert not refreshed
    _assert_as_full_refresh(viewer, layer, qtbot)
    refreshed.clear()
    for _ in range(2):  # undo the second object, then reopen the first
        c.undo()
        idle(qtbot, c)
        assert not refreshed
        _assert_as_full_refresh(viewer, layer, qtbot)
        refreshed.clear()
    assert (layer.data == 1).any() and not (layer.data == 2).any()
    if volume:  # planes written off screen are drawn when the viewer goes there
        c.propagate()
        idle(qtbot, c)
        assert layer.data[3].any() and not refreshed
        c.go_to_plane(3)
        _assert_as_full_refresh(viewer, layer, qtbot)
    # the autosave was given the changed boxes (the disks' crops), never whole planes
    assert saved and all(box is not None and box.height <= 41 >= box.width for _, box in saved)
