"""The prompts layer: a Shapes layer over the annotated image on which each drawn shape is a
prompt beside the clicks. It knows where the annotated volume sits (a
:class:`~.placement.VolumePlacement`), nothing of the annotator or the model.

What a shape becomes (:mod:`napari_adaptiveclick.interactive.prompts`):

- a rectangle: a box around the object (its edges in pixel coordinates);
- a path or a line: a stroke (scribble) through its vertices, in drawing order;
- a polygon (also drawn with the lasso): a mask prompt, the pixels whose centres lie inside
  it (clipped to the image), which the next clicks refine.

Each shape is consumed: taken off the layer as soon as it is drawn, so the layer stays
empty and the annotator's records are the one account of the prompts. A shape must lie on
one plane of the slicing axis (the one scrolled: a Shapes layer of a volume holds (N, 3)
vertices) and on the image; one that spans planes, lies outside the image or is an
ellipse is discarded with a status message, and nothing else happens.

:class:`PromptInput`'s interface:

- ``PromptInput(viewer, keys)``: ``keys`` maps napari key names to actions bound on the
  prompts layer (those of the click layer, so that C, Ctrl-Z... work on either), except the
  keys napari's Shapes layer uses (:func:`~.input_layer.bind_free_keys`: T and Shift-P
  stay its add-path and polygon-lasso modes there).
- :meth:`~PromptInput.attach` ``(placement)`` / :meth:`~PromptInput.detach`
  (:class:`~.input_layer.InputLayer`): create the layer over ``placement.image`` (not made
  active: clicks stay the first tool) and follow it / stop following it (the layer stays).
  A removed prompts layer is created again while attached.
- :meth:`~PromptInput.set_polarity`: the polarity of the next strokes (the caller keeps it
  that of the clicks), shown as the colour of the next shapes; :attr:`~PromptInput.layer`.
- Signals: ``boxed(plane, top, left, bottom, right)``, ``scribbled(plane, points, positive)``
  and ``lassoed(plane, vertices)`` (points: (row, col) pairs on the plane), ``status(str)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from napari.layers import Shapes
from psygnal import Signal
from qtpy.QtCore import QTimer

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick._napari.input_layer import InputLayer
from napari_adaptiveclick.interactive.prompts import BoxPrompt, Scribble, check_prompt

KINDS = {"rectangle": "box", "line": "stroke", "path": "stroke", "polygon": "lasso"}


class PromptInput(InputLayer):
    """The prompts layer of one annotated image in ``viewer`` (see the module docstring)."""

    boxed = Signal(int, float, float, float, float)  # plane, top, left, bottom, right
    scribbled = Signal(int, object, bool)  # plane, ((row, col), ...) in drawing order, positive
    lassoed = Signal(int, object)  # plane, ((row, col), ...) the polygon's vertices
    RESTORED = "The prompts layer was removed; here it is again."

    def __init__(self, viewer, keys: Mapping[str, Callable[[], None]]) -> None:
        super().__init__(viewer, keys)
        self._positive = True
        self._taken = 0  # shapes at the start of the layer already turned into prompts

    def set_polarity(self, positive: bool) -> None:
        """The polarity of the next strokes, shown as the colour of the next shapes."""
        self._positive = positive
        if self._layer is not None:
            L.set_shape_polarity(self._layer, positive)

    def _new_layer(self, image) -> Shapes:
        return L.new_prompt_layer(image)

    def _layer_made(self) -> None:
        self._taken = 0
        L.set_shape_polarity(self._layer, self._positive)

    # ------------------------------------------------------------------ shapes
    def _on_data(self, event) -> None:
        """Finished shapes (napari emits "added" when a drawing ends, or for shapes added by
        code): turn each new one into a prompt, and take them off the layer right after."""
        if self._placement is None or event.action != "added":
            return
        layer = self._layer
        new = range(self._taken, len(layer.data))
        if not new:
            return
        if not self._taken:  # not now: napari is still finishing the drawing
            QTimer.singleShot(0, self._clear)
        self._taken = len(layer.data)
        for index in new:
            self._take(np.asarray(layer.data[index], dtype=float), str(layer.shape_type[index]))

    def _clear(self) -> None:
        """Take the shapes turned into prompts off the layer (later, while one is drawn)."""
        layer = self._layer
        if layer is None or not self._taken:
            return
        if getattr(layer, "_is_creating", False):  # napari's flag: the next shape is drawn
            QTimer.singleShot(50, self._clear)
            return
        layer.selected_data = set()
        layer.remove(list(range(min(self._taken, len(layer.data)))))
        self._taken = 0

    def _take(self, vertices: np.ndarray, shape_type: str) -> None:
        kind = KINDS.get(shape_type)
        if kind is None:
            self.status.emit(
                f"An {shape_type} is not a prompt (discarded): draw a rectangle (a box), a "
                "path or line (a stroke) or a polygon (a lasso)."
            )
            return
        if self.viewer.dims.ndisplay != 2:
            self.status.emit("Prompts are drawn in the 2D view: switch off 3D (Ctrl-Y).")
            return
        on_plane = self._on_plane(vertices, kind)
        if on_plane is None:
            return
        plane, points = on_plane
        rows, cols = points[:, 0], points[:, 1]
        edges = (rows.min(), cols.min(), rows.max(), cols.max())
        shape = self._placement.geometry.slice_shape
        try:  # a stroke inside the image, a box or lasso that overlaps it (clipped)
            check_prompt(Scribble(points) if kind == "stroke" else BoxPrompt(*edges), shape)
        except ValueError as error:
            self.status.emit(f"The {kind} on plane {plane} was discarded: {error}")
            return
        flat = np.linalg.matrix_rank(points - points.mean(axis=0), tol=1e-6) < 2
        if kind == "lasso" and flat:  # its points lie on one line (or are one point)
            self.status.emit(
                f"The lasso on plane {plane} was discarded: it encloses no area; draw it around "
                "the object."
            )
            return
        if kind == "box":
            self.boxed.emit(plane, *(float(v) for v in edges))
        elif kind == "stroke":
            self.scribbled.emit(plane, tuple(map(tuple, points.tolist())), self._positive)
        else:
            self.lassoed.emit(plane, tuple(map(tuple, points.tolist())))

    def _on_plane(self, vertices: np.ndarray, kind: str) -> tuple[int, np.ndarray] | None:
        """The plane of ``vertices`` (layer data points) and their (row, col) there, or None
        (said in the status) when they are not all on one plane of the annotated volume."""
        placement = self._placement
        image = placement.image
        image_points = [L.map_point(vertex, self._layer, image) for vertex in vertices]
        selection = placement.selection
        extras = {selection.extra_of(point) for point in image_points}
        if extras - {None, selection.extra_index}:
            self.status.emit(
                f"You are annotating index {selection.extra_index} of axis "
                f"{selection.extra_axis}; the {kind} was drawn on another (discarded)."
            )
            return None
        sliced = [placement.to_slice(point) for point in image_points]
        planes = sorted({plane for plane, _, _ in sliced})
        if len(planes) > 1:
            self.status.emit(
                f"The {kind} spans planes {planes[0]} to {planes[-1]} (discarded): draw it on "
                "one slice, in the view that scrolls through the slicing axis."
            )
            return None
        (plane,) = planes
        if not 0 <= plane < placement.geometry.planes:
            self.status.emit(
                f"The {kind} lies on plane {plane}, outside image '{image.name}' "
                f"({placement.geometry.planes} planes): discarded."
            )
            return None
        return plane, np.array([(row, col) for _, row, col in sliced])
