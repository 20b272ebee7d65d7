"""Switching the widget to another model (the adapted checkpoint, or the shipped default)."""

from __future__ import annotations


def switch_model(widget, model: str) -> str | None:
    """Choose ``model`` in ``widget``'s model choice and, while annotating, restart on the same
    layers (the labels and their stored clicks stay; undo starts anew). Returns what to tell
    the user, or None when the restart reported a problem itself (in the status)."""
    combo, controller = widget.model_combo, widget.controller
    if combo.findText(model) < 0:
        combo.addItem(model)
    combo.setCurrentText(model)
    if not controller.ready:
        return f"Model set to '{model}': press Start to annotate with it."
    widget.image_combo.setCurrentText(controller.image.name)
    widget.labels_combo.setCurrentText(controller.labels.name)
    widget.start()  # a problem goes to the status
    if controller.busy:  # loading the model
        return f"Restarting with model '{model}'; your labels stay as they are."
    return None
