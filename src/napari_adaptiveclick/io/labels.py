"""Write label arrays back to files with the geometry of the image they label (NIfTI affine
and header, SimpleITK spacing / origin / direction, TIFF spacing and unit), atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from napari_adaptiveclick.io.images import (
    _LPS_TO_RAS,
    _NIFTI_UNITS,
    WRITE_EXTENSIONS,
    ImageIOError,
    ImageVolume,
    file_format,
)


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
) -> Path:
    """Write an integer label array in the format given by the extension of ``path``.

    ``labels`` is in napari order (same shape as ``like.spatial_shape`` when ``like`` is
    given); the file gets the geometry of ``like`` (NIfTI affine and header, SimpleITK
    spacing/origin/direction, TIFF spacing and unit; converted between formats when they
    differ). Values are stored with the smallest unsigned dtype that fits. The file is written
    to a temporary folder beside ``path`` and moved into place, so a crash never leaves a
    half-written file. Refuses to replace an existing file unless ``overwrite=True``.
    Returns ``path``.
    """
    path = Path(path)
    fmt = file_format(path)
    if fmt == "jpeg":
        raise ImageIOError(
            f"Cannot write labels to {path.name}: JPEG is lossy. Use one of "
            f"{', '.join(WRITE_EXTENSIONS)}."
        )
    labels = _checked_labels(labels, like)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: folder {path.parent} does not exist.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")
    writer = {
        "tiff": _write_tiff,
        "png": _write_png,
        "nifti": _write_nifti,
        "metaimage": _write_sitk,
        "nrrd": _write_sitk,
    }[fmt]
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        writer(tmp_dir / path.name, labels, like)
        # Companion files (e.g. the .raw of a .mhd) first, the requested file last.
        produced = sorted(tmp_dir.iterdir(), key=lambda p: p.name == path.name)
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


def _checked_labels(labels: np.ndarray, like: ImageVolume | None) -> np.ndarray:
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
    return labels.astype(label_dtype(max_label), copy=False)


def _spatial(like: ImageVolume, values: tuple[float, ...]) -> tuple[float, ...]:
    """Entries of per-axis ``values`` for the non-channel axes of ``like``."""
    return tuple(v for v, a in zip(values, like.axes, strict=True) if a != "c")


def _itk_geometry(
    like: ImageVolume | None, ndim: int
) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """Spacing, origin and direction matrix in ITK order (x first, LPS world) for ``ndim``
    axes: the source's own for SimpleITK files, converted from the affine for NIfTI."""
    if like is None:
        return (1.0,) * ndim, (0.0,) * ndim, np.eye(ndim)
    if like.affine is not None and ndim <= 3:
        linear = (_LPS_TO_RAS @ like.affine[:3, :3])[:ndim, :ndim]
        spacing = np.linalg.norm(linear, axis=0)
        origin = (_LPS_TO_RAS @ like.affine[:3, 3])[:ndim]
        return tuple(spacing), tuple(origin), linear / spacing
    spacing = _spatial(like, like.spacing)[::-1]
    origin = _spatial(like, like.origin)[::-1]
    if like.direction is not None and len(like.direction) == ndim * ndim:
        return spacing, origin, np.reshape(like.direction, (ndim, ndim))
    return spacing, origin, np.eye(ndim)


def _write_sitk(path: Path, labels: np.ndarray, like: ImageVolume | None) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(labels)
    spacing, origin, direction = _itk_geometry(like, labels.ndim)
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(o) for o in origin])
    img.SetDirection([float(d) for d in direction.ravel()])
    sitk.WriteImage(img, str(path), useCompression=True)


def _write_nifti(path: Path, labels: np.ndarray, like: ImageVolume | None) -> None:
    """Same-format source: its affine and header (qform/sform codes, units) are kept."""
    import nibabel as nib

    if like is not None and like.affine is not None:
        header = like.header.copy()
        header["cal_min"], header["cal_max"] = 0, 0  # the image's display range
        image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        img = image_class(labels.transpose(), like.affine, header)
    else:
        spacing, origin, direction = _itk_geometry(like, min(labels.ndim, 3))
        n = len(spacing)
        affine = np.eye(4)
        affine[:n, :n] = direction * np.asarray(spacing)
        affine[:n, 3] = origin
        affine[:3] = _LPS_TO_RAS @ affine[:3]
        img = nib.Nifti1Image(labels.transpose(), affine)
        img.set_qform(affine, code=1)
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
