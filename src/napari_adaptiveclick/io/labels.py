"""Write label arrays back to files with the geometry of the image they label, atomically.

The geometry is the image's voxel-to-world affine (:mod:`.geometry`): a NIfTI source's header
(qform and sform with their codes, units) is kept as it was, an ITK source's spacing, origin
and direction come back as read, and between formats the affine is converted (RAS <-> LPS),
so the labels overlay the image in other viewers and read back with the same affine.
TIFF keeps the spacing and unit (it has no orientation).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick.io import geometry
from napari_adaptiveclick.io.images import (
    _NIFTI_UNITS,
    WRITE_EXTENSIONS,
    ImageIOError,
    ImageVolume,
    file_format,
)
from napari_adaptiveclick.io.staging import OWNER, staging_dir
from napari_adaptiveclick.io.writable import replace_problem


def label_dtype(max_label: int) -> np.dtype:
    """Smallest unsigned integer dtype that holds ``max_label``."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if max_label <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ImageIOError(f"Label value {max_label} does not fit in 64 bits.")


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    like: ImageVolume | None = None,
    *,
    overwrite: bool = False,
    dtype: np.dtype | type | None = None,
) -> Path:
    """Write an integer label array in the format given by the extension of ``path``.

    ``labels`` is in napari order (same shape as ``like.spatial_shape`` when ``like`` is
    given); the file gets the geometry of ``like``: its affine (NIfTI: with its header;
    MetaImage/NRRD: as spacing, origin and direction), TIFF its spacing and unit. Values are
    stored as ``dtype`` (an integer dtype that holds them, such as that of the labels the user
    started from; PNG: only uint8 or uint16), else with the smallest unsigned dtype that fits
    (the ids are the same either way). The file is written to a temporary
    folder beside ``path`` and moved into place, so a crash never leaves a half-written file.
    Refuses to replace an existing file unless ``overwrite=True``. Returns ``path``.
    """
    path = Path(path)
    fmt = file_format(path)
    if fmt == "jpeg":
        raise ImageIOError(
            f"Cannot write labels to {path}: JPEG is lossy. Use one of "
            f"{', '.join(WRITE_EXTENSIONS)}."
        )
    labels = _checked_labels(labels, like, dtype, png=fmt == "png")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: folder {path.parent} does not exist.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")
    if problem := replace_problem(path):
        raise FileExistsError(problem)
    writer = {
        "tiff": _write_tiff,
        "png": _write_png,
        "nifti": _write_nifti,
        "metaimage": _write_sitk,
        "nrrd": _write_sitk,
    }[fmt]
    tmp_dir = staging_dir(path)
    try:
        writer(tmp_dir / path.name, labels, like)
        # Companion files (e.g. the .raw of a .mhd) first, the requested file last.
        produced = [p for p in tmp_dir.iterdir() if p.name != OWNER]
        produced.sort(key=lambda p: p.name == path.name)
        clashes = [p.name for p in produced if (path.parent / p.name).exists()]
        if clashes and not overwrite:
            raise FileExistsError(
                f"Writing {path.name} would replace {', '.join(clashes)} in {path.parent}; "
                "pass overwrite=True to replace them."
            )
        for item in produced:
            os.replace(item, path.parent / item.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def _checked_labels(
    labels: np.ndarray, like: ImageVolume | None, dtype=None, png: bool = False
) -> np.ndarray:
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ImageIOError(f"Labels must be an integer or bool array, got dtype {labels.dtype}.")
    if like is not None and labels.shape != like.spatial_shape:
        raise ImageIOError(
            f"Labels shape {labels.shape} does not match the image shape {like.spatial_shape}"
            f"{f' of {like.path}' if like.path else ''}."
        )
    if labels.ndim not in (2, 3, 4):
        raise ImageIOError(f"Labels must be 2D, 3D or 4D, got shape {labels.shape}.")
    if labels.size and labels.min() < 0:
        raise ImageIOError(f"Labels must be >= 0, found {labels.min()}.")
    max_label = int(labels.max()) if labels.size else 0
    fits = dtype is not None and np.issubdtype(dtype, np.integer)
    fits = fits and max_label <= np.iinfo(dtype).max
    if fits and (not png or np.dtype(dtype) in (np.uint8, np.uint16)):  # PNG holds only these
        return labels.astype(dtype, copy=False)
    return labels.astype(label_dtype(max_label), copy=False)


def _spatial(like: ImageVolume, values: tuple[float, ...]) -> tuple[float, ...]:
    """Entries of per-axis ``values`` for the non-channel axes of ``like``."""
    return tuple(v for v, a in zip(values, like.axes, strict=True) if a != "c")


def _affine(like: ImageVolume | None, ndim: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """World affine and spacing (napari order, non-channel axes) of ``like``; identity
    without one."""
    if like is None:
        return np.eye(ndim + 1), (1.0,) * ndim
    return like.affine, _spatial(like, like.spacing)


def _write_sitk(path: Path, labels: np.ndarray, like: ImageVolume | None) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(labels, isVector=False)  # a 4D array is 4D, not vectors
    spacing, origin, direction = geometry.to_itk(*_affine(like, labels.ndim))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    sitk.WriteImage(img, str(path), useCompression=True)


def _write_nifti(path: Path, labels: np.ndarray, like: ImageVolume | None) -> None:
    """A NIfTI source's header (qform/sform and codes, units) is kept; others get the affine
    as sform and qform (scanner) and their unit."""
    import nibabel as nib

    affine, _ = _affine(like, labels.ndim)
    source_header = like.header if like is not None else None
    if isinstance(source_header, nib.Nifti1Header):  # Nifti2Header derives from it
        header = source_header.copy()
        header["cal_min"], header["cal_max"] = 0, 0  # the image's display range
        image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        # Equal to the header's own matrix, so nibabel leaves qform and sform untouched.
        img = image_class(
            labels.transpose(),
            geometry.to_nifti(affine, header.get_best_affine()),
            header,
            dtype=labels.dtype,  # nibabel refuses 64-bit integers without it
        )
    else:
        nifti_affine = geometry.to_nifti(affine)
        img = nib.Nifti1Image(labels.transpose(), nifti_affine, dtype=labels.dtype)
        img.set_qform(nifti_affine, code=1)
        if labels.ndim > 3:
            img.header.set_zooms(img.header.get_zooms()[:3] + geometry.extra_steps(affine))
        img.header.set_xyzt_units(xyz=like.unit if like and like.unit in _NIFTI_UNITS else None)
    img.header.set_data_dtype(labels.dtype)
    nib.save(img, path)


def _write_tiff(path: Path, labels: np.ndarray, like: ImageVolume | None) -> None:
    """ImageJ hyperstack for 8/16-bit labels (Fiji reads its spacing); tifffile's JSON
    metadata for wider labels, which ImageJ TIFF cannot hold."""
    import tifffile

    axes = {2: "YX", 3: "ZYX", 4: "TZYX"}[labels.ndim]
    spacing = dict(zip(axes.lower(), _spatial(like, like.spacing), strict=True)) if like else {}
    metadata: dict[str, Any] = {"axes": axes}
    if "z" in spacing:
        metadata["spacing"] = spacing["z"]
    if like is not None and like.unit:
        metadata["unit"] = like.unit
    tifffile.imwrite(
        path,
        labels,
        imagej=labels.dtype in (np.uint8, np.uint16),
        photometric="minisblack",
        resolution=(1.0 / spacing.get("x", 1.0), 1.0 / spacing.get("y", 1.0)),
        resolutionunit="NONE",
        metadata=metadata,
        compression="zlib",
    )


def _write_png(path: Path, labels: np.ndarray, like: ImageVolume | None) -> None:
    from PIL import Image

    if labels.ndim != 2:
        raise ImageIOError(
            f"PNG holds 2D labels only, got shape {labels.shape}; use .tif, .nii.gz or .mha."
        )
    if labels.dtype not in (np.uint8, np.uint16):
        raise ImageIOError(
            f"PNG holds label values up to 65535, got {int(labels.max())}; use .tif, .nii.gz "
            "or .mha."
        )
    Image.fromarray(labels).save(path, format="PNG")
