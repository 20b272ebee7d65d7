"""napari integration: dock widget, controller, readers/writers, sample data and the demo.

The only part of the package that imports napari, qtpy or magicgui.
"""
