"""The click layer: a Points layer over the annotated image on which each added point is a
click. It shows the current object's clicks (green discs positive, red crosses negative),
then the clicks still waiting for their prediction, and carries the key bindings.
"""

from __future__ import annotations

import numpy as np

from napari_adaptiveclick._napari import layers as L


class ClickInput:
    """The click layer of :class:`~.controller.AnnotationController` (a base class of it),
    which provides the viewer, the layers, the annotator and its ``placement``, ``positive``
    (the polarity of the next click), ``_pending`` (points added but not predicted yet, with
    their polarity), ``_syncing`` (set while the controller edits layers itself) and the
    actions that the keys and point events trigger."""

    def _ensure_points(self) -> None:
        if self.points is None:
            self.points = L.unwrap(self.viewer.add_layer(L.new_click_layer(self.image)))
            self.points.events.data.connect(self._on_points_data)
            for key, action in (
                ("t", self.toggle_polarity),
                ("c", self.commit),
                ("Shift-C", self.reset),
                ("Control-Z", self.undo),
                ("Shift-P", self.propagate),
            ):
                self.points.bind_key(key, lambda _layer, action=action: action(), overwrite=True)
        L.set_polarity(self.points, self.positive)
        self.viewer.layers.selection.active = self.points
        self.points.mode = "add"
        self._show_points()

    def _restore_points(self) -> None:
        if self.ready and self.points is None and self.image in self.viewer.layers:
            self._ensure_points()
            self._say(
                "The click layer was removed; here it is again with the current object's clicks."
            )

    def _points_point(self, plane: int, row: float, col: float) -> np.ndarray:
        return L.map_point(self.placement.to_image(plane, row, col), self.image, self.points)

    def _on_points_data(self, event) -> None:
        if self._syncing or not self.ready:
            return
        if event.action == "added":  # napari's ActionType is a string enum
            added = [self.points.data[i] for i in event.data_indices]
            for point in added:
                self._add_point(point)
            self._show_points()
        elif event.action in ("removed", "changed"):
            shown = len(self.annotator.object_records()) + len(self._pending)
            if event.action == "removed" and tuple(event.data_indices) == (shown - 1,):
                self.undo()
            else:
                self._say("Clicks cannot be moved or deleted one by one: use Ctrl-Z (undo).")
            self._show_points()

    def _add_point(self, point: np.ndarray) -> None:
        if self.viewer.dims.ndisplay != 2:
            self._say("Clicks work in the 2D view: switch off 3D (Ctrl-Y) and click on a slice.")
            return
        image_point = L.map_point(point, self.points, self.image)
        extra = self.selection.extra_of(image_point)
        if extra is not None and extra != self.selection.extra_index:
            self._say(
                f"You are annotating index {self.selection.extra_index} of axis "
                f"{self.selection.extra_axis}; press Start to annotate index {extra}."
            )
            return
        plane, row, col = self.placement.to_slice(image_point)
        if not self.annotator.geometry.contains(plane, row, col):
            self._say(
                f"The click at {np.round(image_point, 1).tolist()} is outside image '{self.image.name}'."
            )
            return
        self._pending.append((point, self.positive))
        self._enqueue("click", plane, row, col, self.positive)

    def add_click(self, plane: int, row: float, col: float, positive: bool | None = None) -> None:
        """Add a click as a user would: a point on the click layer at (plane, row, col)."""
        if positive is not None and positive != self.positive:
            self.toggle_polarity()
        self.points.add(self._points_point(plane, row, col))

    def toggle_polarity(self) -> None:
        self.positive = not self.positive
        if self.points is not None:
            L.set_polarity(self.points, self.positive)
        self._say(
            f"Next clicks are {'positive (object)' if self.positive else 'negative (background)'}."
        )
        self.changed.emit()

    def _show_points(self) -> None:
        if self.points is None or not self.ready:
            return
        records = self.annotator.object_records()
        points = [self._points_point(r.plane, r.row, r.col) for r in records]
        points += [p for p, _ in self._pending]
        positive = [r.positive for r in records] + [p for _, p in self._pending]
        self._syncing = True
        try:
            L.show_clicks(self.points, np.array(points).reshape(-1, self.points.ndim), positive)
            L.set_polarity(self.points, self.positive)
        finally:
            self._syncing = False
