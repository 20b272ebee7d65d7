"""Command-line entry points over :mod:`napari_adaptiveclick.learning` (not part of the
installed package: the package never imports ``training``): ``python -m training.finetune``,
``python -m training.evaluate`` and ``python -m training.export``."""
