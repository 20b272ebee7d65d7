"""Read images and volumes (TIFF, PNG/JPEG, NIfTI, MetaImage, NRRD) with their geometry.

Arrays are returned in napari order: ``(plane, row, col)`` for 3D, ``(row, col)`` for 2D and
``(row, col, 3)`` for RGB, the voxels exactly as stored. Each :class:`ImageVolume` carries its
voxel-to-world ``affine`` in the one convention of :mod:`.geometry` (napari axis order, LPS
world), its per-axis ``spacing`` and ``origin``, and what a labels file with the source
geometry needs (:mod:`.labels`): the NIfTI header, the TIFF unit.

Axis conventions of the files: nibabel returns NIfTI arrays in file order ``(x, y, z[, t])``;
they are reversed here to ``([t,] z, y, x)``, so planes are axial for the usual orientations.
SimpleITK's ``GetArrayFromImage`` already gives ``(z, y, x)`` while its spacing, origin and
direction are in ``(x, y, z)`` order. Reading and writing are exact inverses of each other.

Heavy readers (tifffile, nibabel, SimpleITK, PIL) are imported inside the functions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_adaptiveclick.io import geometry
from napari_adaptiveclick.io.metaimage import MetaImageError, check_data_files
from napari_adaptiveclick.io.volume import ImageIOError, ImageVolume

__all__ = ["ImageIOError", "ImageVolume", "file_format", "read_image", "split_image_name"]

# Extension (lower case) -> format name. ".nii.gz" is matched before single suffixes.
FORMATS: dict[str, str] = {
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".mha": "metaimage",
    ".mhd": "metaimage",
    ".nrrd": "nrrd",
}
READ_EXTENSIONS: tuple[str, ...] = tuple(FORMATS)
# JPEG is lossy: label files are never written as JPEG.
WRITE_EXTENSIONS: tuple[str, ...] = tuple(e for e, f in FORMATS.items() if f != "jpeg")

_TIFF_AXES = {"Y": "y", "X": "x", "Z": "z", "T": "t", "C": "c", "S": "c", "Q": "z", "I": "z"}
_TIFF_RESUNIT_INCH, _TIFF_RESUNIT_CM = 2, 3
_NIFTI_UNITS = ("mm", "micron", "meter")


def split_image_name(path: str | os.PathLike) -> tuple[str, str]:
    """``(stem, extension)`` of an image file name, e.g. ``("case_seg", ".nii.gz")``; the
    extension is "" when it is not one of :data:`READ_EXTENSIONS`."""
    name = Path(path).name
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.lower().endswith(ext):
            return name[: -len(ext)], name[-len(ext) :]
    return name, ""


def file_format(path: str | os.PathLike) -> str:
    """Format name for ``path`` from its extension; raises ImageIOError if unsupported."""
    ext = split_image_name(path)[1].lower()
    if not ext:
        raise ImageIOError(
            f"Unsupported file type: {Path(path).name!r}. Supported extensions: "
            f"{', '.join(READ_EXTENSIONS)}."
        )
    return FORMATS[ext]


def read_image(path: str | os.PathLike) -> ImageVolume:
    """Read a 2D image or a volume; see the module docstring for the axis order. zarr,
    OME-Zarr, N5 and HDF5 stores are opened lazily (:func:`~.chunked.read_chunked`).

    Raises FileNotFoundError for a missing file, ImageIOError for an unsupported extension or a
    file its reader cannot open (the message names the file and gives the reader's error).
    """
    from napari_adaptiveclick.io.chunked import is_chunked, read_chunked

    if is_chunked(path):
        return read_chunked(path)
    path = Path(path)
    fmt = file_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such image file: {path}")
    if fmt in ("metaimage", "nrrd"):
        try:
            check_data_files(path)
        except (MetaImageError, OSError) as err:
            raise ImageIOError(f"Cannot read {path}: {err}") from None
    reader = {
        "tiff": _read_tiff,
        "png": _read_pil,
        "jpeg": _read_pil,
        "nifti": _read_nifti,
        "metaimage": _read_sitk,
        "nrrd": _read_sitk,
    }[fmt]
    try:
        volume = reader(path)
    except Exception as err:  # each reader library raises its own exception types
        raise ImageIOError(f"Cannot read {path}: {type(err).__name__}: {err}") from err
    volume.path, volume.format = path, fmt
    return volume


def _read_tiff(path: Path) -> ImageVolume:
    """Row/col spacing from the resolution tags, plane spacing from ImageJ (or tifffile JSON)
    metadata. Contiguous RGB(A) samples become a last axis of 3 (alpha dropped). Planar
    samples (``...SYX``) stay an axis where they are, read as planes: tifffile writes any
    (..., 3 or 4, H, W) stack that way by default (as RGB with separate planes), and napari
    opens such a file as that many planes of grey, so the reader does too: no plane is dropped
    as alpha and a clicks file made in napari replays on the same planes. A resolution in
    inches without a stated unit is the desktop-publishing default (e.g. 72 dpi), not a
    calibration, and is ignored."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        data = tif.asarray()
        series_axes = tif.series[0].axes
        meta = tif.imagej_metadata or (tif.shaped_metadata or [{}])[0] or {}
        tags = tif.pages[0].tags
        unit = meta.get("unit") or None
        res_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else None
        if res_unit == _TIFF_RESUNIT_CM and unit is None:
            unit = "cm"
        calibrated = "XResolution" in tags and (unit is not None or res_unit != _TIFF_RESUNIT_INCH)
        per_letter = {"z": float(meta.get("spacing", 1.0))}
        if calibrated:
            per_letter["x"] = _rational_spacing(tags["XResolution"].value)
            per_letter["y"] = _rational_spacing(tags["YResolution"].value)
    if series_axes.endswith("SYX"):  # planar samples: planes, as napari shows such a file
        series_axes = series_axes[:-3] + "ZYX"
    if "S" in series_axes:  # samples (RGB/RGBA) go last, alpha is dropped
        data = np.moveaxis(data, series_axes.index("S"), -1)
        series_axes = series_axes.replace("S", "") + "S"
        if data.shape[-1] == 4:
            data = data[..., :3]
    axes = "".join(_TIFF_AXES.get(a, a.lower()) for a in series_axes)
    while axes.count("z") > 1:  # unnamed leading axes (tifffile's Q): the first ones are time
        axes = axes.replace("z", "t", 1)
    spacing = tuple(per_letter.get(a, 1.0) for a in axes)
    return ImageVolume(data, spacing, (0.0,) * data.ndim, axes=axes, unit=unit)


def _rational_spacing(resolution: tuple[int, int]) -> float:
    """TIFF resolution (pixels per unit, as numerator/denominator) -> pixel size."""
    numerator, denominator = resolution
    return float(denominator) / float(numerator) if numerator else 1.0


def _read_pil(path: Path) -> ImageVolume:
    """PNG/JPEG: grey, 1-bit and palette images give (H, W) (palette indices are kept, as
    label PNGs need); RGB/RGBA/CMYK give (H, W, 3)."""
    from PIL import Image

    with Image.open(path) as img:
        if img.mode in ("RGBA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
            img = img.convert("RGB")
        elif img.mode in ("LA", "PA"):
            img = img.getchannel(0)
        data = np.array(img)
    axes = "yxc" if data.ndim == 3 else "yx"
    return ImageVolume(data, (1.0,) * data.ndim, (0.0,) * data.ndim, axes=axes)


def _read_nifti(path: Path) -> ImageVolume:
    import nibabel as nib

    img = nib.squeeze_image(nib.load(path))  # X x Y x Z x 1 (as FSL writes): a 3D volume
    data = np.ascontiguousarray(np.asanyarray(img.dataobj).transpose())  # keeps on-disk dtype
    affine = geometry.from_nifti(img.affine, data.ndim, img.header.get_zooms())
    unit = img.header.get_xyzt_units()[0]
    axes = {1: "x", 2: "yx", 3: "zyx"}.get(data.ndim, "t" * (data.ndim - 3) + "zyx")
    return ImageVolume.with_affine(
        data,
        affine,
        axes,
        unit=None if unit == "unknown" else unit,
        header=img.header.copy(),
    )


def _read_sitk(path: Path) -> ImageVolume:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    data = sitk.GetArrayFromImage(img)
    dim = img.GetDimension()
    axes = {2: "yx", 3: "zyx", 4: "tzyx"}.get(dim, "q" * (dim - 3) + "zyx")
    if img.GetNumberOfComponentsPerPixel() > 1:
        axes += "c"
    affine = geometry.from_itk(img.GetSpacing(), img.GetOrigin(), img.GetDirection())
    # The spacing exactly as stored (the column lengths may differ from it in the last bit).
    spacing = tuple(float(s) for s in img.GetSpacing()[::-1])
    return ImageVolume.with_affine(data, affine, axes, spacing, unit="mm")
