"""Training, fine-tuning and evaluation tools for napari-adaptiveclick (not part of the
installed package: the package never imports ``training``)."""
