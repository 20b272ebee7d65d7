"""Reading images and writing labels with their geometry (TIFF, PNG, NIfTI, MetaImage,
NRRD; zarr, OME-Zarr, N5 and HDF5 stores lazily), in napari data order.

Owns: :mod:`.images` (:func:`~.images.read_image`), :mod:`.volume` (:class:`~.volume.ImageVolume`),
:mod:`.labels` (:func:`~.labels.write_labels`), :mod:`.geometry` (the voxel-to-world
convention: napari axis order, LPS world), :mod:`.metaimage` (header checks),
:mod:`.lazy` (:class:`~.lazy.LazyArray` views that read only what is indexed, bounded
samples), :mod:`.chunked` (opening zarr / OME-Zarr / N5 / HDF5 stores) and :mod:`.stores`
(labels on disk: zarr and OME-Zarr labels stores, edited in place).

May import: nothing else of this package (lowest layer, beside ``models``).
"""
