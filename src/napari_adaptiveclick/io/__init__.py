"""Reading images and writing labels with their geometry (TIFF, PNG, NIfTI, MetaImage,
NRRD), in napari data order.

Owns: :mod:`.images` (:func:`~.images.read_image`, :func:`~.images.write_labels`,
:class:`~.images.ImageVolume`).

May import: nothing else of this package (lowest layer, beside ``models``).
"""
