"""What the click layer (:mod:`.click_input`) and the prompts layer (:mod:`.prompt_input`)
share: :class:`InputLayer`, one layer over the annotated image that is made on
:meth:`~InputLayer.attach`, followed (its data events) until :meth:`~InputLayer.detach`, and
made again when the user removes it while attached; and :func:`bind_free_keys`, the
plugin's keys on it.

A key that napari's own bindings of the layer's type use keeps napari's meaning there
(napari's shortcuts as the user set them: on a Shapes layer T is add-path mode and Shift-P
polygon-lasso mode), so the plugin binds only the others on that layer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

from napari.utils.key_bindings import coerce_keybinding
from psygnal import Signal
from qtpy.QtCore import QTimer

from napari_adaptiveclick._napari import layers as L
from napari_adaptiveclick._napari.placement import VolumePlacement


def bind_free_keys(layer, keys: Mapping[str, Callable[[], None]]) -> list[str]:
    """Bind each of ``keys`` (napari key name -> action) on ``layer``, except the keys that
    napari binds on its layer type (they stay napari's); returns the keys bound."""
    taken = set()
    for cls in type(layer).__mro__:
        taken.update(getattr(cls, "class_keymap", {}))
    bound = [key for key in keys if coerce_keybinding(key) not in taken]
    for key in bound:
        layer.bind_key(key, lambda _layer, action=keys[key]: action(), overwrite=True)
    return bound


class InputLayer(ABC):
    """One input layer of an annotated image in ``viewer``, with ``keys`` bound on it (see
    the module docstring). Subclasses make the layer (:meth:`_new_layer`), set it up once
    made (:meth:`_layer_made`) and read its data events (:meth:`_on_data`)."""

    status = Signal(str)
    RESTORED = "The layer was removed; here it is again."  # said when it is made again

    def __init__(self, viewer, keys: Mapping[str, Callable[[], None]]) -> None:
        self.viewer = viewer
        self._keys = dict(keys)
        self._layer = None
        self._placement: VolumePlacement | None = None
        viewer.layers.events.removed.connect(self._on_layer_removed)

    @property
    def layer(self):
        """The input layer (None when detached)."""
        return self._layer

    def attach(self, placement: VolumePlacement) -> None:
        """Follow a new input layer over ``placement.image``."""
        self.detach()
        self._placement = placement
        self._create_layer()

    def detach(self, remove: bool = False) -> None:
        """Stop following the input layer; it stays in the viewer unless ``remove`` (it is
        removed just after: the viewer may be emitting another layer's removal)."""
        layer = self._layer
        if layer is not None:
            layer.events.data.disconnect(self._on_data)
        self._layer = self._placement = None
        if remove and layer is not None:
            QTimer.singleShot(0, lambda: layer in self.viewer.layers and self.viewer.layers.remove(layer))  # fmt: skip

    @abstractmethod
    def _new_layer(self, image):
        """A new input layer over ``image`` (not yet in the viewer)."""

    @abstractmethod
    def _layer_made(self) -> None:
        """Set up the layer just made (and added to the viewer)."""

    @abstractmethod
    def _on_data(self, event) -> None:
        """A data event of the layer."""

    def _create_layer(self) -> None:
        self._layer = L.unwrap(self.viewer.add_layer(self._new_layer(self._placement.image)))
        self._layer.events.data.connect(self._on_data)
        bind_free_keys(self._layer, self._keys)
        self._layer_made()

    def _on_layer_removed(self, event) -> None:
        if self._layer is not None and L.unwrap(event.value) is self._layer:
            self._layer.events.data.disconnect(self._on_data)
            self._layer = None
            QTimer.singleShot(0, self._restore)  # not now: the viewer may be closing

    def _restore(self) -> None:
        placement = self._placement
        if placement is not None and self._layer is None and placement.image in self.viewer.layers:
            self._create_layer()
            self.status.emit(self.RESTORED)
