"""napari integration: dock widget, controller, readers/writers, sample data and the demo.

The only part of the package that imports napari, qtpy or magicgui.

May import: every other layer of the package (it is the top one, beside ``__main__``).
"""
