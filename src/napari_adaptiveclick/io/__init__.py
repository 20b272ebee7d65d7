"""Reading images and writing labels with their geometry (TIFF, PNG, NIfTI, MetaImage,
NRRD), in napari data order.

Owns: :mod:`.images` (:func:`~.images.read_image`, :class:`~.images.ImageVolume`),
:mod:`.labels` (:func:`~.labels.write_labels`), :mod:`.geometry` (the voxel-to-world
convention: napari axis order, LPS world), :mod:`.metaimage` (header checks).

May import: nothing else of this package (lowest layer, beside ``models``).
"""
