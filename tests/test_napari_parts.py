"""The controller's parts on their own, headless (run under xvfb-run): the job queue, the
click layer and the actions, each without the others and without a model.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui
if sys.platform.startswith("linux") and not (
    os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
):
    pytest.skip("napari's canvas needs a display: run under xvfb-run -a", allow_module_level=True)

TIMEOUT_MS = 60_000


def test_job_queue_on_its_own(qtbot):
    """Callables in order, one worker at a time; stale results and cancel."""
    from napari_adaptiveclick._napari.jobs import JobQueue

    jobs = JobQueue()
    fresh, stale, ran = [], [], []
    for numbers in ([1, 2, 3], [4]):  # the second is queued while the first runs
        jobs.submit(
            "sum",
            lambda numbers=numbers: jobs.run(
                sum, numbers, on_return=fresh.append, on_stale=stale.append
            ),
        )
    assert jobs.busy and jobs.running and jobs.is_queued("sum")
    qtbot.waitUntil(lambda: not jobs.busy, timeout=TIMEOUT_MS)
    assert stale == [6] and fresh == [4]

    def count_forever():
        i = 0
        while True:
            yield i
            i += 1
            time.sleep(0.005)

    steps, finished = [], []
    jobs.submit(
        "long",
        lambda: jobs.run(
            count_forever, on_yield=steps.append, on_finish=lambda: finished.append(1)
        ),
    )
    jobs.submit("later", lambda: ran.append("later"))
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=TIMEOUT_MS)
    jobs.cancel()  # drops "later", stops the generator after its current step
    qtbot.waitUntil(lambda: not jobs.busy, timeout=TIMEOUT_MS)
    assert finished == [1] and ran == []
    jobs.submit("now", lambda: ran.append("now"))  # no worker: runs at once
    assert ran == ["now"] and not jobs.busy


def test_click_input_on_its_own(make_napari_viewer, qtbot):
    """The click layer emits clicks in slice coordinates, shows what it is told, restores itself."""
    from napari_adaptiveclick._napari.click_input import ClickInput
    from napari_adaptiveclick._napari.layers import VolumeSelection
    from napari_adaptiveclick._napari.placement import VolumePlacement
    from napari_adaptiveclick.volume.slicing import SliceGeometry

    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((4, 20, 30), np.float32), name="vol", scale=(2.0, 1.0, 1.0))
    placement = VolumePlacement(
        viewer, image, VolumeSelection.of(image, None), SliceGeometry((4, 20, 30), 0)
    )
    commits = []
    click_input = ClickInput(viewer, keys={"c": lambda: commits.append(1)})
    clicks, undos = [], []
    click_input.clicked.connect(lambda *click: clicks.append(click))
    click_input.undo_requested.connect(lambda: undos.append(1))
    click_input.attach(placement)
    layer = click_input.layer
    assert layer in viewer.layers and viewer.layers.selection.active is layer

    layer.add([1, 5, 7])  # as a user click
    click_input.add_click(2, 3, 4, positive=False)
    layer.add([1, 50, 7])  # outside the volume: refused, not shown
    assert clicks == [(1, 5.0, 7.0, True), (2, 3.0, 4.0, False)] and not click_input.positive
    assert click_input.pending == 2 and len(layer.data) == 2

    click_input.settle_oldest()  # the first click was predicted ...
    click_input.show([(1, 5.0, 7.0, True)])  # ... and is now one of the object's clicks
    assert click_input.pending == 1 and len(layer.data) == 2
    from napari.utils.key_bindings import KeyBinding

    layer.keymap[KeyBinding.from_str("C")](layer)
    assert commits == [1]
    layer.remove([1])  # deleting the last click asks for an undo
    assert undos == [1]

    viewer.layers.remove(layer)  # the click layer comes back with the same clicks
    qtbot.waitUntil(lambda: click_input.layer is not None, timeout=TIMEOUT_MS)
    assert click_input.layer in viewer.layers and len(click_input.layer.data) == 2
    click_input.detach()
    assert click_input.layer is None


def test_actions_on_their_own():
    """The actions use the queue and the annotator's public methods only (here a stand-in)."""
    from napari_adaptiveclick._napari.actions import AnnotationActions
    from napari_adaptiveclick._napari.jobs import JobQueue

    class Annotator:
        object_id = 3
        records: list = []

        def commit(self) -> int:
            self.object_id = 4
            return 4

        def select_object(self, object_id: int) -> int:
            self.object_id = object_id
            return object_id

        def undo(self) -> bool:
            return False

        def propagation(self, plane, settings):
            raise ValueError(f"Object {self.object_id} has no pixels on plane {plane}.")

    actions = AnnotationActions(JobQueue())
    said, failed, edits = [], [], []
    actions.status.connect(said.append)
    actions.failed.connect(failed.append)
    actions.edited.connect(lambda: edits.append(1))
    actions.commit()
    assert said == ["Press Start first to load the model."] and not edits
    annotator = Annotator()
    actions.attach(annotator)
    actions.commit()
    actions.undo()  # undoes the commit alone: object 3 again
    actions.undo()
    actions.propagate(2)
    assert said[1:] == [
        "Object 3 committed; now segmenting object 4.",
        "Commit undone: segmenting object 3 again.",
        "Nothing to undo.",
    ]
    assert failed == ["Object 3 has no pixels on plane 2."] and edits == [1, 1, 1]
    assert annotator.object_id == 3


def test_brief_errors_for_the_status():
    """Worker errors shown in the status: one line, the first sentence when long."""
    from napari_adaptiveclick._napari.jobs import brief

    assert brief("Short: kept whole. With advice.") == "Short: kept whole. With advice."
    long = "Could not run it. " + "Backend list, " * 40 + "\nCPU: registered at ...\n" * 50
    assert brief(long) == "Could not run it."
    assert len(brief("x" * 500)) <= 200 and "\n" not in brief("a\nb")
