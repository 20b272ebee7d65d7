"""The selected label of a Labels layer, kept in step with the object being segmented.

Selecting a label in the Labels layer (its label box, the colour picker) chooses that object;
after each edit the controller shows there the object it segments. It knows nothing of the
annotator: ``current()`` says which object that is.

:class:`LabelChoice`'s interface: :meth:`~LabelChoice.attach` ``(labels)`` /
:meth:`~LabelChoice.detach`, :meth:`~LabelChoice.show` (select ``current()`` in the layer,
without a signal), and the signal ``chosen(int)``: the user selected another label.
"""

from __future__ import annotations

from collections.abc import Callable

from napari.layers import Labels
from psygnal import Signal


class LabelChoice:
    """The selected label of one Labels layer and ``current()``, the object segmented."""

    chosen = Signal(int)  # a label id the user selected

    def __init__(self, current: Callable[[], int]) -> None:
        self._current = current
        self._labels: Labels | None = None
        self._syncing = False  # set while the selected label is set here

    def attach(self, labels: Labels) -> None:
        """Follow ``labels`` and select the current object there."""
        self.detach()
        self._labels = labels
        labels.events.selected_label.connect(self._on_selected_label)
        self.show()

    def detach(self) -> None:
        if self._labels is not None:
            self._labels.events.selected_label.disconnect(self._on_selected_label)
        self._labels = None

    def show(self) -> None:
        """Select the current object in the layer (no ``chosen`` signal)."""
        if self._labels is not None and self._labels.selected_label != self._current():
            self._syncing = True
            try:
                self._labels.selected_label = self._current()
            finally:
                self._syncing = False

    def _on_selected_label(self, event) -> None:
        selected = int(self._labels.selected_label)
        if not self._syncing and selected != self._current():
            self.chosen.emit(selected)
