"""Voxel-to-world geometry shared by every reader, writer and the napari layers.

Convention (one for every format):

* **Voxel axes** are napari data order: the file's axes reversed. NIfTI ``(i, j, k[, t])`` is
  read as ``([t,] k, j, i)``; ITK ``(x, y, z)`` index order as ``(z, y, x)``, which is what
  ``sitk.GetArrayFromImage`` gives. The voxel array is kept exactly as stored (no flips, no
  reorientation).
* **World** is the patient frame **LPS** (DICOM, ITK, MetaImage, NRRD): ``x`` grows toward the
  patient's Left, ``y`` toward Posterior, ``z`` toward Superior, in the file's length unit
  (mm for medical files). Its axes are listed in napari order too, ``(z, y, x)`` = ``(S, P,
  L)``, so napari's default 2D view (last world axis to the right, the one before it
  downwards) shows an axial slice the way radiology viewers do (ITK-SNAP, 3D Slicer): the
  patient's left on the right of the screen, anterior at the top, whatever flips the file
  stores. NIfTI's RAS world is converted with ``x -> -x``, ``y -> -y``.
* The **affine** is the ``(N+1, N+1)`` matrix, ``N`` = number of non-channel data axes, with
  ``world = affine @ (*index, 1)``. Extra axes before the spatial ones (time) get their step
  on the diagonal and no offset. A 2D file keeps the two in-plane world axes ``(y, x)``.
* Files without an orientation (TIFF, PNG, JPEG) get the diagonal affine of their spacing:
  ``world = spacing * index``, no flips, no offset.

NIfTI: the matrix comes from ``img.affine`` (sform if its code is set, else qform, as
nibabel chooses). MetaImage ``TransformMatrix``/``Offset``/``ElementSpacing`` and NRRD ``space
directions``/``space origin`` come through SimpleITK's direction, origin and spacing (ITK
converts an NRRD in RAS space to LPS). The conversions here are permutations and sign changes
of the same numbers, so image -> affine -> labels file gives back the source's numbers.

Provenance: the RAS/LPS sign change is the one of ITK and nibabel (``nib.orientations``); the
radiological display is what ITK-SNAP and 3D Slicer show by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])  # its own inverse


def _clean(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` as float64 with negative zeros made positive (``-0.0 + 0.0 == 0.0``)."""
    return np.asarray(matrix, dtype=np.float64) + 0.0


def _spatial_count(ndim: int) -> int:
    """How many of ``ndim`` non-channel axes are spatial (the last ones, at most 3)."""
    return min(ndim, 3)


def diagonal_affine(spacing: Sequence[float], origin: Sequence[float]) -> np.ndarray:
    """The affine of an axis-aligned grid: ``world[a] = origin[a] + spacing[a] * index[a]``."""
    n = len(spacing)
    affine = np.eye(n + 1)
    affine[:n, :n] = np.diag(np.asarray(spacing, dtype=np.float64))
    affine[:n, n] = np.asarray(origin, dtype=np.float64)
    return _clean(affine)


def from_nifti(nifti_affine: np.ndarray, ndim: int, zooms: Sequence[float]) -> np.ndarray:
    """World affine (napari order, LPS) of a NIfTI image with ``ndim`` data axes.

    ``nifti_affine``: nibabel's 4x4 RAS matrix on file axes ``(i, j, k)``; ``zooms``: the
    header's zooms in file order, used for the extra (time) axes.
    """
    n = _spatial_count(ndim)
    lps = RAS_TO_LPS @ np.asarray(nifti_affine, dtype=np.float64)[:3]
    extra = ndim - n
    affine = np.eye(ndim + 1)
    affine[:extra, :extra] = np.diag([float(z) for z in zooms[n:ndim]][::-1])
    affine[extra:ndim, extra:ndim] = lps[:n, :n][::-1, ::-1]
    affine[extra:ndim, ndim] = lps[:n, 3][::-1]
    return _clean(affine)


def to_nifti(affine: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """The 4x4 NIfTI (RAS, file axis order) matrix of a world ``affine``; inverse of
    :func:`from_nifti`. For 2D and 1D grids the rows and columns the affine lacks come from
    ``base`` (the source file's own matrix; identity when None)."""
    ndim = affine.shape[0] - 1
    n = _spatial_count(ndim)
    extra = ndim - n
    lps = RAS_TO_LPS @ (np.eye(4) if base is None else np.asarray(base, dtype=np.float64))[:3]
    lps[:n, :n] = affine[extra:ndim, extra:ndim][::-1, ::-1]
    lps[:n, 3] = affine[extra:ndim, ndim][::-1]
    result = np.eye(4)
    result[:3] = (RAS_TO_LPS @ lps)[:3]
    return _clean(result)


def extra_steps(affine: np.ndarray) -> tuple[float, ...]:
    """Steps of the extra (time) axes of a world ``affine``, in file order (NIfTI zooms 4..)."""
    ndim = affine.shape[0] - 1
    extra = ndim - _spatial_count(ndim)
    return tuple(float(affine[a, a]) for a in range(extra))[::-1]


def from_itk(
    spacing: Sequence[float], origin: Sequence[float], direction: Sequence[float]
) -> np.ndarray:
    """World affine of a SimpleITK image from its spacing, origin and row-major direction
    (all in ITK ``(x, y, z)`` order, LPS)."""
    n = len(spacing)
    linear = np.reshape(np.asarray(direction, dtype=np.float64), (n, n)) * np.asarray(spacing)
    affine = np.eye(n + 1)
    affine[:n, :n] = linear[::-1, ::-1]
    affine[:n, n] = np.asarray(origin, dtype=np.float64)[::-1]
    return _clean(affine)


def to_itk(
    affine: np.ndarray, spacing: Sequence[float]
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Spacing, origin and row-major direction (ITK order) of a world ``affine``; inverse of
    :func:`from_itk`. ``spacing`` (napari order, as :func:`steps` gives) divides the columns,
    so a source's own spacing comes back unchanged."""
    n = affine.shape[0] - 1
    spacing_xyz = np.asarray(spacing, dtype=np.float64)[::-1]
    linear = affine[:n, :n][::-1, ::-1] / spacing_xyz
    origin = affine[:n, n][::-1]
    return tuple(spacing_xyz.tolist()), tuple(origin.tolist()), tuple(_clean(linear).ravel())


def steps(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel size along each data axis: the lengths of the affine's columns."""
    n = affine.shape[0] - 1
    return tuple(float(v) for v in np.linalg.norm(affine[:n, :n], axis=0))


def offset(affine: np.ndarray) -> tuple[float, ...]:
    """World position of voxel 0 (world axis order)."""
    n = affine.shape[0] - 1
    return tuple(float(v) + 0.0 for v in affine[:n, n])


def per_axis(values: Sequence[float], axes: str, fill: float) -> tuple[float, ...]:
    """``values`` (one per non-channel axis) spread over ``axes``, ``fill`` at channel axes."""
    it = iter(values)
    return tuple(fill if a == "c" else float(next(it)) for a in axes)


def without_scale(affine: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """``affine`` with its columns divided by ``spacing``: what is left of the voxel-to-world
    map once a napari layer's ``scale`` is ``spacing`` (rotation, flips, shear, offset)."""
    n = affine.shape[0] - 1
    result = np.array(affine, dtype=np.float64)
    result[:n, :n] /= np.asarray(spacing, dtype=np.float64)
    return _clean(result)
