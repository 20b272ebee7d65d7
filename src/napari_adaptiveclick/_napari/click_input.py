"""The click layer: a Points layer over the annotated image on which each added point is a
click. It knows where the annotated volume sits (a :class:`~.placement.VolumePlacement`),
nothing of the annotator or the model.

:class:`ClickInput`'s interface:

- ``ClickInput(viewer, keys, others_pending)``: ``keys`` maps napari key names to actions
  bound on the click layer besides T (polarity); ``others_pending()``: how many prompts of
  other kinds (boxes, strokes, lassos) wait for their prediction: while any do, deleting
  the last click is refused (its undo would take the newer prompt).
- :meth:`~ClickInput.attach` ``(placement)`` / :meth:`~ClickInput.detach`
  (:class:`~.input_layer.InputLayer`): create the layer over ``placement.image`` and follow
  it / stop following it (the layer stays). A removed click layer is created again while
  attached.
- :meth:`~ClickInput.show` ``(clicks, last="click")``: the current object's clicks, ``(plane,
  row, col, positive)`` each, shown as green discs (positive) and red crosses (negative),
  followed by the clicks still waiting for their prediction (*pending*: each emitted click is
  pending until :meth:`~ClickInput.settle_oldest` or :meth:`~ClickInput.clear_pending`);
  ``last``: the kind of the object's last step (another prompt: deleting the last click
  does not undo it).
- :meth:`~ClickInput.add_click` (as a user would), :meth:`~ClickInput.toggle_polarity`,
  :attr:`~ClickInput.positive`, :attr:`~ClickInput.layer`.
- Signals: ``clicked(plane, row, col, positive)`` for each point the user adds inside the
  volume, ``undo_requested()`` when the user deletes the last click and it is the last step,
  ``polarity_changed(bool)``
  and ``status(str)`` (what the user should know: a refused point, the new polarity).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from napari.layers import Points
from psygnal import Signal

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick._napari.input_layer import InputLayer


class ClickInput(InputLayer):
    """The click layer of one annotated image in ``viewer`` (see the module docstring)."""

    clicked = Signal(int, float, float, bool)  # plane, row, col (of a slice), positive
    undo_requested = Signal()
    polarity_changed = Signal(bool)
    RESTORED = "The click layer was removed; here it is again with the current object's clicks."

    def __init__(
        self,
        viewer,
        keys: Mapping[str, Callable[[], None]],
        others_pending: Callable[[], int] = lambda: 0,
    ) -> None:
        super().__init__(viewer, {"t": self.toggle_polarity, **keys})
        self.positive = True  # the polarity of the next click
        self._others_pending = others_pending
        self._clicks: list[tuple[int, float, float, bool]] = []  # shown, predicted
        self._last = "click"  # the kind of the object's last step
        self._pending: list[tuple[np.ndarray, bool]] = []  # shown, waiting: point, polarity
        self._syncing = False  # set while the layer is edited here

    @property
    def pending(self) -> int:
        """How many clicks wait for their prediction."""
        return len(self._pending)

    # ------------------------------------------------------------------ attach / detach
    def detach(self, remove: bool = False) -> None:
        """Stop following the click layer (it stays in the viewer unless ``remove``); pending
        clicks are dropped."""
        super().detach(remove)
        self._clicks, self._pending = [], []

    def _new_layer(self, image) -> Points:
        return L.new_click_layer(image)

    def _layer_made(self) -> None:
        L.set_polarity(self._layer, self.positive)
        self.viewer.layers.selection.active = self._layer
        self._layer.mode = "add"
        self._redraw()

    # ------------------------------------------------------------------ clicks
    def add_click(self, plane: int, row: float, col: float, positive: bool | None = None) -> None:
        """Add a click as a user would: a point on the click layer at (plane, row, col)."""
        if positive is not None and positive != self.positive:
            self.toggle_polarity()
        self._layer.add(self._layer_point(plane, row, col))

    def toggle_polarity(self) -> None:
        """Switch the polarity of the next clicks."""
        self.positive = not self.positive
        if self._layer is not None:
            L.set_polarity(self._layer, self.positive)
        self.status.emit(
            f"Next clicks are {'positive (object)' if self.positive else 'negative (background)'}."
        )
        self.polarity_changed.emit(self.positive)

    def show(self, clicks: Sequence[tuple[int, float, float, bool]], last: str = "click") -> None:
        """Show ``clicks`` ((plane, row, col, positive) each, oldest first) and the pending
        ones; ``last``: the kind of the object's last step (a click, or another prompt)."""
        self._clicks, self._last = [tuple(click) for click in clicks], last
        self._redraw()

    def settle_oldest(self) -> None:
        """The oldest pending click got its prediction (or lost it): it is no longer pending
        (shown again by the next :meth:`show`, if the caller lists it)."""
        self._pending[:1] = []

    def clear_pending(self) -> None:
        """Forget every pending click (shown no more from the next :meth:`show`)."""
        self._pending.clear()

    def _layer_point(self, plane: int, row: float, col: float) -> np.ndarray:
        image = self._placement.image
        return L.map_point(self._placement.to_image(plane, row, col), image, self._layer)

    def _on_data(self, event) -> None:
        if self._syncing or self._placement is None:
            return
        if event.action == "added":  # napari's ActionType is a string enum
            added = [self._layer.data[i] for i in event.data_indices]
            for point in added:
                self._add_point(point)
            self._redraw()
        elif event.action in ("removed", "changed"):
            shown = len(self._clicks) + len(self._pending)
            last = event.action == "removed" and tuple(event.data_indices) == (shown - 1,)
            if last and self._others_pending():  # the undo would take the newer prompt
                self.status.emit(
                    "A box, stroke or lasso is still being predicted: wait for it before "
                    "deleting this click (Ctrl-Z then undoes the last step)."
                )
            elif last and (self._pending or self._last == "click"):
                self.undo_requested.emit()
            elif last:
                self.status.emit(
                    f"The last step is a {self._last}, not this click: Ctrl-Z undoes it."
                )
            else:
                self.status.emit("Clicks cannot be moved or deleted one by one: use Ctrl-Z (undo).")
            self._redraw()

    def _add_point(self, point: np.ndarray) -> None:
        if self.viewer.dims.ndisplay != 2:
            self.status.emit(
                "Clicks work in the 2D view: switch off 3D (Ctrl-Y) and click on a slice."
            )
            return
        placement = self._placement
        image_point = L.map_point(point, self._layer, placement.image)
        selection = placement.selection
        extra = selection.extra_of(image_point)
        if extra is not None and extra != selection.extra_index:
            self.status.emit(
                f"You are annotating index {selection.extra_index} of axis "
                f"{selection.extra_axis}; press Start to annotate index {extra}."
            )
            return
        plane, row, col = placement.to_slice(image_point)
        if not placement.geometry.contains(plane, row, col):
            self.status.emit(
                f"The click at {np.round(image_point, 1).tolist()} is outside image "
                f"'{placement.image.name}'."
            )
            return
        self._pending.append((point, self.positive))
        self.clicked.emit(plane, row, col, self.positive)

    def _redraw(self) -> None:
        if self._layer is None or self._placement is None:
            return
        points = [self._layer_point(plane, row, col) for plane, row, col, _ in self._clicks]
        points += [point for point, _ in self._pending]
        positive = [click[3] for click in self._clicks] + [p for _, p in self._pending]
        self._syncing = True
        try:
            L.show_clicks(self._layer, np.array(points).reshape(-1, self._layer.ndim), positive)
            L.set_polarity(self._layer, self.positive)
        finally:
            self._syncing = False
