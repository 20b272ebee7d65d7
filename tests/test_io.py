"""Round trips and errors of napari_adaptiveclick.io.images on small generated files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
from PIL import Image

from napari_adaptiveclick.io.images import (
    ImageIOError,
    ImageVolume,
    read_image,
    split_image_name,
)
from napari_adaptiveclick.io.labels import label_dtype, write_labels


def _labels(shape: tuple[int, ...], max_label: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, max_label + 1, size=shape).astype(np.int64)


def _rotated_affine() -> np.ndarray:
    """A non-trivial NIfTI voxel-to-world matrix: rotation, anisotropic zooms, translation."""
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.8, 0.9, 2.5])
    affine[:3, 3] = [-12.5, 30.0, 7.25]
    return affine


def _sitk_image(array_zyx: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(array_zyx)
    img.SetSpacing((0.7, 0.8, 3.0))
    img.SetOrigin((1.5, -2.0, 40.0))
    c, s = np.cos(0.2), np.sin(0.2)
    img.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    return img


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- TIFF -------------------------------------------------------------------------------


def test_tiff_stack_round_trip_keeps_spacing(tmp_path):
    image = np.random.default_rng(1).integers(0, 255, size=(4, 6, 7), dtype=np.uint8)
    src = tmp_path / "stack.tif"
    tifffile.imwrite(
        src,
        image,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.5),
        metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"},
    )
    vol = read_image(src)
    assert vol.format == "tiff" and vol.axes == "zyx" and vol.path == src
    np.testing.assert_array_equal(vol.data, image)
    np.testing.assert_allclose(vol.spacing, (2.0, 0.5, 0.25))
    assert vol.unit == "micron"

    labels = _labels(image.shape)
    out = write_labels(tmp_path / "labels.tif", labels, like=vol)
    back = read_image(out)
    np.testing.assert_array_equal(back.data, labels)
    assert back.data.dtype == np.uint8
    np.testing.assert_allclose(back.spacing, vol.spacing)
    assert back.unit == "micron" and back.axes == "zyx"


def test_tiff_wide_labels_keep_spacing_without_imagej(tmp_path):
    like = ImageVolume(np.zeros((3, 4, 5)), (3.0, 0.5, 0.25), (0.0, 0.0, 0.0), unit="um")
    labels = _labels(like.data.shape, max_label=70_000)
    back = read_image(write_labels(tmp_path / "wide.tiff", labels, like=like))
    assert back.data.dtype == np.uint32
    np.testing.assert_array_equal(back.data, labels)
    np.testing.assert_allclose(back.spacing, like.spacing)
    assert back.unit == "um"


def test_tiff_2d_without_calibration_and_72_dpi_default(tmp_path):
    image = np.arange(20, dtype=np.uint16).reshape(4, 5)
    tifffile.imwrite(tmp_path / "plain.tif", image)
    tifffile.imwrite(tmp_path / "dpi.tif", image, resolution=(72.0, 72.0), resolutionunit="INCH")
    for name in ("plain.tif", "dpi.tif"):
        vol = read_image(tmp_path / name)
        assert vol.axes == "yx" and vol.spacing == (1.0, 1.0) and vol.unit is None
        np.testing.assert_array_equal(vol.data, image)


def test_tiff_rgb_reads_as_rows_cols_channels_without_alpha(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 255, size=(5, 6, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    rgba = np.concatenate([rgb, np.full((5, 6, 1), 255, np.uint8)], axis=-1)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    for name in ("rgb.tif", "rgba.tif"):
        vol = read_image(tmp_path / name)
        assert vol.axes == "yxc" and vol.is_rgb and vol.spatial_shape == (5, 6)
        np.testing.assert_array_equal(vol.data, rgb)


@pytest.mark.parametrize("planes", [3, 4])
def test_tiff_stack_of_3_or_4_planes_in_tifffile_defaults_reads_as_planes(tmp_path, planes):
    # tifffile tags a (3 or 4, H, W) array as RGB with separate planes unless told otherwise;
    # napari opens it as planes, so the reader does too (a clicks file made in napari then
    # replays on the same planes), and the planes are not merged into one grey image.
    stack = np.random.default_rng(planes).integers(0, 255, size=(planes, 5, 6), dtype=np.uint8)
    # what tifffile's imwrite does by default for such an array (with a DeprecationWarning)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="rgb", planarconfig="separate")
    with tifffile.TiffFile(tmp_path / "stack.tif") as tif:
        assert tif.series[0].axes == "SYX"  # the file really is tagged that way
    vol = read_image(tmp_path / "stack.tif")
    assert vol.axes == "zyx" and not vol.is_rgb and vol.spatial_shape == (planes, 5, 6)
    np.testing.assert_array_equal(vol.data, stack)
    builtins = pytest.importorskip("napari_builtins.io")  # what napari opens: the same planes
    (napari_data, *_), *_ = builtins.napari_get_reader(str(tmp_path / "stack.tif"))(
        str(tmp_path / "stack.tif")
    )
    np.testing.assert_array_equal(napari_data, vol.data)


@pytest.mark.parametrize("samples", [3, 4])
def test_a_4d_stack_with_planar_samples_reads_as_napari_shows_it(tmp_path, samples):
    # tifffile writes any (..., 3 or 4, H, W) array as planar RGB by default; napari opens it
    # as that many grey planes, so no plane may be dropped as alpha or merged into colours
    stack = np.random.default_rng(samples).integers(0, 255, (2, samples, 5, 6), dtype=np.uint8)
    path = tmp_path / "stack4d.tif"
    tifffile.imwrite(path, stack, photometric="rgb", planarconfig="separate")
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "QSYX"
    vol = read_image(path)
    assert vol.axes == "tzyx" and not vol.is_rgb and vol.data.shape == (2, samples, 5, 6)
    np.testing.assert_array_equal(vol.data, stack)  # the 4th plane is kept, not taken as alpha
    builtins = pytest.importorskip("napari_builtins.io")
    (napari_data, *_), *_ = builtins.napari_get_reader(str(path))(str(path))
    np.testing.assert_array_equal(napari_data, vol.data)


# --- PNG / JPEG ------------------------------------------------------------------------


def test_png_grey_rgb_and_bilevel(tmp_path):
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 255, size=(6, 8), dtype=np.uint8)
    rgba = rng.integers(0, 255, size=(6, 8, 4), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(grey > 100).convert("1").save(tmp_path / "bits.png")

    vol = read_image(tmp_path / "grey.png")
    assert vol.axes == "yx" and vol.spacing == (1.0, 1.0)
    np.testing.assert_array_equal(vol.data, grey)
    vol = read_image(tmp_path / "rgba.png")
    assert vol.axes == "yxc" and vol.data.shape == (6, 8, 3)
    np.testing.assert_array_equal(vol.data, rgba[..., :3])
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png").data > 0, grey > 100)


@pytest.mark.parametrize("max_label, dtype", [(7, np.uint8), (1000, np.uint16)])
def test_png_labels_round_trip(tmp_path, max_label, dtype):
    labels = _labels((9, 11), max_label=max_label)
    back = read_image(write_labels(tmp_path / "labels.png", labels))
    assert back.data.dtype == dtype
    np.testing.assert_array_equal(back.data, labels)


def test_png_refuses_what_it_cannot_hold(tmp_path):
    with pytest.raises(ImageIOError, match="up to 65535"):
        write_labels(tmp_path / "many.png", np.full((3, 3), 70_000))
    with pytest.raises(ImageIOError, match="2D labels only"):
        write_labels(tmp_path / "stack.png", np.zeros((2, 3, 3), np.uint8))


def test_jpeg_reads_rgb_and_is_never_written(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(tmp_path / "photo.jpg", quality=95)
    vol = read_image(tmp_path / "photo.jpg")
    assert vol.format == "jpeg" and vol.data.shape == (8, 8, 3)
    assert abs(int(vol.data.mean()) - 120) <= 2
    with pytest.raises(ImageIOError, match="lossy"):
        write_labels(tmp_path / "labels.jpg", np.zeros((8, 8), np.uint8))


# --- NIfTI -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_round_trip_keeps_affine_and_header(tmp_path, suffix):
    xyz = np.random.default_rng(4).normal(size=(5, 6, 7)).astype(np.float32)
    affine = _rotated_affine()
    src_img = nib.Nifti1Image(xyz, affine)
    src_img.set_qform(affine, code=1)
    src_img.header.set_xyzt_units(xyz="mm")
    nib.save(src_img, tmp_path / f"image{suffix}")

    vol = read_image(tmp_path / f"image{suffix}")
    assert vol.format == "nifti" and vol.axes == "zyx" and vol.unit == "mm"
    np.testing.assert_array_equal(vol.data, xyz.transpose(2, 1, 0))
    np.testing.assert_allclose(vol.spacing, (2.5, 0.9, 0.8), rtol=1e-6)
    np.testing.assert_allclose(vol.origin, (7.25, -30.0, 12.5))  # LPS, (z, y, x) order

    labels = _labels(vol.data.shape, max_label=300)
    out = write_labels(tmp_path / f"labels{suffix}", labels, like=vol)
    written = nib.load(out)
    assert written.get_data_dtype() == np.uint16
    np.testing.assert_allclose(written.affine, affine, atol=1e-6)
    np.testing.assert_allclose(written.header.get_qform(), affine, atol=1e-6)
    assert int(written.header["qform_code"]) == 1
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), labels.transpose(2, 1, 0))
    np.testing.assert_array_equal(read_image(out).data, labels)


def test_nifti_4d_keeps_all_axes(tmp_path):
    xyzt = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    img = nib.Nifti1Image(xyzt, np.diag([1.0, 2.0, 3.0, 1.0]))
    img.header.set_zooms((1.0, 2.0, 3.0, 0.5))
    nib.save(img, tmp_path / "series.nii.gz")
    vol = read_image(tmp_path / "series.nii.gz")
    assert vol.axes == "tzyx" and vol.data.shape == (5, 4, 3, 2)
    assert vol.spacing == (0.5, 3.0, 2.0, 1.0)
    np.testing.assert_array_equal(vol.data, xyzt.transpose(3, 2, 1, 0))


# --- MetaImage / NRRD ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mha", ".mhd", ".nrrd"])
def test_sitk_round_trip_keeps_spacing_origin_direction(tmp_path, suffix):
    zyx = np.random.default_rng(5).integers(-100, 100, size=(4, 5, 6)).astype(np.int16)
    src = _sitk_image(zyx)
    sitk.WriteImage(src, str(tmp_path / f"image{suffix}"))

    vol = read_image(tmp_path / f"image{suffix}")
    assert vol.axes == "zyx"
    np.testing.assert_array_equal(vol.data, zyx)
    np.testing.assert_allclose(vol.spacing, (3.0, 0.8, 0.7))
    np.testing.assert_allclose(vol.origin, (40.0, -2.0, 1.5))

    labels = _labels(zyx.shape)
    (tmp_path / "out").mkdir()
    out = write_labels(tmp_path / "out" / f"labels{suffix}", labels, like=vol)
    written = sitk.ReadImage(str(out))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), labels)
    assert written.GetPixelIDValue() == sitk.sitkUInt8
    np.testing.assert_allclose(written.GetSpacing(), src.GetSpacing())
    np.testing.assert_allclose(written.GetOrigin(), src.GetOrigin())
    np.testing.assert_allclose(written.GetDirection(), src.GetDirection(), atol=1e-12)
    expected = {".mhd": ["labels.mhd", "labels.zraw"]}.get(suffix, [f"labels{suffix}"])
    assert _files(tmp_path / "out") == expected  # no temporary leftovers


def test_tiff_spacing_carries_into_metaimage(tmp_path):
    like = ImageVolume(np.zeros((2, 3, 4), np.uint8), (4.0, 0.5, 0.25), (0.0, 0.0, 0.0))
    back = read_image(write_labels(tmp_path / "l.mha", np.ones((2, 3, 4), int), like))
    assert back.spacing == like.spacing


# --- labels dtype, overwrite, errors ---------------------------------------------------


@pytest.mark.parametrize(
    "max_label, dtype",
    [(0, np.uint8), (255, np.uint8), (256, np.uint16), (65536, np.uint32), (2**32, np.uint64)],
)
def test_label_dtype_is_smallest_unsigned(max_label, dtype):
    assert label_dtype(max_label) == dtype


def test_overwrite_is_refused_unless_asked(tmp_path):
    target = tmp_path / "labels.nii.gz"
    write_labels(target, np.ones((2, 3, 4), np.uint8))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_labels(target, np.zeros((2, 3, 4), np.uint8))
    np.testing.assert_array_equal(read_image(target).data, 1)
    write_labels(target, np.full((2, 3, 4), 2, np.uint8), overwrite=True)
    np.testing.assert_array_equal(read_image(target).data, 2)
    assert _files(tmp_path) == ["labels.nii.gz"]


def test_split_image_name():
    assert split_image_name("/d/Case_SEG.NII.GZ") == ("Case_SEG", ".NII.GZ")
    assert split_image_name("9001.segmentation_masks.mhd") == ("9001.segmentation_masks", ".mhd")
    assert split_image_name("scan.raw") == ("scan.raw", "")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.tif"):
        read_image(tmp_path / "nothing.tif")


def test_unsupported_extension_lists_supported(tmp_path):
    (tmp_path / "scan.dcm").write_bytes(b"x")
    with pytest.raises(ImageIOError, match=r"scan\.dcm.*\.nii\.gz.*\.mha"):
        read_image(tmp_path / "scan.dcm")
    with pytest.raises(ImageIOError, match="Supported extensions"):
        write_labels(tmp_path / "labels.bmp", np.zeros((2, 2), np.uint8))


@pytest.mark.parametrize("name", ["broken.tif", "broken.nii.gz", "broken.mha", "broken.png"])
def test_unreadable_file_names_file_and_reason(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not an image")
    with pytest.raises(ImageIOError, match=rf"Cannot read .*{name}: \w+"):
        read_image(tmp_path / name)


def test_labels_must_match_like_and_be_non_negative_integers(tmp_path):
    like = ImageVolume(np.zeros((2, 3, 4, 3), np.uint8), (1.0,) * 4, (0.0,) * 4, axes="zyxc")
    with pytest.raises(
        ImageIOError, match=r"\(2, 3, 5\) does not match the image shape \(2, 3, 4\)"
    ):
        write_labels(tmp_path / "l.tif", np.zeros((2, 3, 5), np.uint8), like=like)
    with pytest.raises(ImageIOError, match="integer or bool"):
        write_labels(tmp_path / "l.tif", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ImageIOError, match=">= 0"):
        write_labels(tmp_path / "l.tif", np.full((2, 3, 4), -1))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_labels(tmp_path / "missing" / "l.tif", np.zeros((2, 3), np.uint8))
    assert _files(tmp_path) == []


def _mhd(folder: Path, data_file: str, name: str = "vol.mhd") -> Path:
    header = folder / name
    header.write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 4 4 2\nElementType = MET_UCHAR\n"
        f"ElementSpacing = 1 1 1\nElementDataFile = {data_file}\n"
    )
    return header


def test_metaimage_with_its_data_beside_it_reads(tmp_path):
    (tmp_path / "vol.raw").write_bytes(bytes(range(32)))
    volume = read_image(_mhd(tmp_path, "vol.raw"))
    assert volume.data.shape == (2, 4, 4) and volume.data[1, 3, 3] == 31


@pytest.mark.parametrize(
    ("data_file", "problem"),
    [
        ("../outside.raw", "outside the header's folder"),
        ("/dev/urandom", "an absolute path"),
        ("ABSOLUTE", "an absolute path"),
        ("missing.raw", "does not exist"),
        ("subdir", "not a regular file"),
        ("link.raw", "outside the header's folder"),
        ("LIST\n../outside.raw", "outside the header's folder"),
        ("../slice%d.raw 0 1 1", "outside the header's folder"),
    ],
)
def test_metaimage_data_files_outside_the_folder_are_refused(tmp_path, data_file, problem):
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "outside.raw").write_bytes(bytes(32))
    for k in (0, 1):
        (tmp_path / f"slice{k}.raw").write_bytes(bytes(16))
    (inner / "subdir").mkdir()
    (inner / "link.raw").symlink_to(tmp_path / "outside.raw")
    if data_file == "ABSOLUTE":
        data_file = str(tmp_path / "outside.raw")
    with pytest.raises(ImageIOError, match=problem):
        read_image(_mhd(inner, data_file))


def test_detached_nrrd_pointing_outside_is_refused(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "outside.raw").write_bytes(bytes(32))
    header = inner / "vol.nrrd"
    header.write_text(
        "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 2\nencoding: raw\n"
        "data file: ../outside.raw\n"
    )
    with pytest.raises(ImageIOError, match="outside the header's folder"):
        read_image(header)
    volume = np.arange(32, dtype=np.uint8).reshape(2, 4, 4)
    attached = tmp_path / "attached.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(attached))
    assert np.array_equal(read_image(attached).data, volume)  # attached data still read


def test_segment_refuses_a_metaimage_pointing_outside(tmp_path):
    import subprocess
    import sys

    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "outside.raw").write_bytes(bytes(32))
    header = _mhd(inner, "../outside.raw")
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("plane,row,col,positive,object_id\n0,1,1,1,1\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_adaptiveclick",
            "segment",
            "--image",
            str(header),
            "--clicks",
            str(clicks),
            "--out",
            str(tmp_path / "out.tif"),
            "--model",
            "tiny",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "outside the header's folder" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.tif").exists()


def test_a_nifti_with_a_trailing_axis_of_one_is_a_3d_volume(tmp_path):
    affine = np.array([[-1.0, 0, 0, 50], [0, 1, 0, -40], [0, 0, 3, 12], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(np.zeros((6, 7, 5, 1), np.int16), affine), tmp_path / "t1.nii.gz")
    volume = read_image(tmp_path / "t1.nii.gz")  # X x Y x Z x 1, as FSL writes
    assert (volume.axes, volume.data.shape) == ("zyx", (5, 7, 6))
    back = write_labels(tmp_path / "labels.nii.gz", np.zeros((5, 7, 6), np.uint8), like=volume)
    saved = nib.load(back)
    assert saved.shape == (6, 7, 5)
    np.testing.assert_allclose(saved.affine, affine)


def test_a_4d_tiff_without_axis_names_reads_as_time_then_zyx(tmp_path):
    path = tmp_path / "four.tif"
    tifffile.imwrite(path, np.zeros((2, 3, 8, 8), np.uint8), photometric="minisblack")
    volume = read_image(path)
    assert volume.axes == "tzyx" and volume.data.shape == (2, 3, 8, 8)
