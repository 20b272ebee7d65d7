"""Voxel-to-world geometry (io.geometry): flipped, oblique and anisotropic volumes in NIfTI,
MetaImage and NRRD, read into napari order with an LPS world and written back as labels."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from napari_adaptiveclick.io import geometry
from napari_adaptiveclick.io.images import ImageVolume, read_image
from napari_adaptiveclick.io.labels import write_labels

SHAPE_XYZ = (5, 6, 7)  # file order; napari order is (7, 6, 5)
INDICES = [(0, 0, 0), (6, 5, 4), (3, 2, 1), (1, 4, 0)]  # napari order (plane, row, col)


def _rotation(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _affine(linear: np.ndarray, translation) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = linear, translation
    return affine


# NIfTI (RAS) voxel-to-world matrices on file axes (i, j, k); voxels 0.8 x 0.9 x 2.5 mm.
ZOOMS = np.diag([0.8, 0.9, 2.5])
NIFTI_CASES = {
    "ras": _affine(np.eye(3), [0.0, 0.0, 0.0]),
    "flipped": _affine(np.diag([-1.0, 1.0, -1.0]) @ ZOOMS, [40.0, -60.5, 22.0]),
    "oblique": _affine(
        _rotation([1.0, 2.0, 0.5], 0.4) @ np.diag([-1.0, 1.0, 1.0]) @ ZOOMS, [-12.5, 30.0, 7.25]
    ),
    "sagittal": _affine(
        np.array([[0, 0, -1.0], [1.0, 0, 0], [0, -1.0, 0]]) @ ZOOMS, [90.0, -126.0, 72.0]
    ),
}


def _lps_world(nifti_affine: np.ndarray, index) -> np.ndarray:
    """Reference: the napari-order world (z, y, x; LPS) of a napari-order voxel index."""
    ras = nib.affines.apply_affine(nifti_affine, np.asarray(index[::-1], dtype=float))
    return np.array([ras[2], -ras[1], -ras[0]])


def _itk_world(img: sitk.Image, index) -> np.ndarray:
    """Reference from ITK itself: napari-order world of a napari-order voxel index."""
    return np.array(img.TransformContinuousIndexToPhysicalPoint([float(i) for i in index[::-1]]))[
        ::-1
    ]


def _apply(affine: np.ndarray, index) -> np.ndarray:
    return (affine @ np.append(np.asarray(index, dtype=float), 1.0))[:-1]


def _save_nifti(path: Path, affine: np.ndarray, seed: int = 0) -> np.ndarray:
    xyz = np.random.default_rng(seed).integers(0, 500, SHAPE_XYZ).astype(np.int16)
    img = nib.Nifti1Image(xyz, affine)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    nib.save(img, path)
    return xyz


def _itk_image(direction: np.ndarray) -> sitk.Image:
    """An ITK volume (x, y, z) = (5, 6, 7) with 0.7 x 0.8 x 3.0 mm voxels."""
    img = sitk.GetImageFromArray(np.arange(210, dtype=np.int16).reshape(7, 6, 5))
    img.SetSpacing((0.7, 0.8, 3.0))
    img.SetOrigin((1.5, -2.0, 40.0))
    img.SetDirection(tuple(direction.ravel()))
    return img


ITK_DIRECTIONS = {
    "identity": np.eye(3),
    "flipped": np.diag([1.0, -1.0, -1.0]),
    "oblique": _rotation([0.3, -1.0, 2.0], 0.6) @ np.diag([1.0, 1.0, -1.0]),
}


@pytest.mark.parametrize("case", list(NIFTI_CASES))
def test_nifti_affine_maps_voxels_to_the_lps_world(tmp_path, case):
    source = NIFTI_CASES[case]
    xyz = _save_nifti(tmp_path / "image.nii.gz", source)
    vol = read_image(tmp_path / "image.nii.gz")
    np.testing.assert_array_equal(vol.data, xyz.transpose())  # voxels as stored
    assert vol.affine.shape == (4, 4) and vol.axes == "zyx"
    for index in INDICES:
        np.testing.assert_allclose(_apply(vol.affine, index), _lps_world(source, index), atol=1e-5)
    np.testing.assert_allclose(vol.spacing, np.linalg.norm(source[:3, :3], axis=0)[::-1], rtol=1e-6)
    np.testing.assert_allclose(vol.origin, _lps_world(source, (0, 0, 0)), atol=1e-5)
    assert not np.signbit(vol.affine[vol.affine == 0]).any()  # no "-0" anywhere
    assert not np.signbit(np.asarray(vol.origin)[np.asarray(vol.origin) == 0]).any()


def test_ras_identity_is_shown_mirrored_as_radiology_viewers_do(tmp_path):
    """Voxel i grows toward the patient's Right in a RAS file: in LPS world x = -i."""
    _save_nifti(tmp_path / "image.nii", NIFTI_CASES["ras"])
    np.testing.assert_array_equal(
        read_image(tmp_path / "image.nii").affine, np.diag([1.0, -1.0, -1.0, 1.0])
    )


def test_the_same_anatomy_stored_flipped_lands_on_the_same_world_points(tmp_path):
    """An LPS-stored copy (array and affine flipped) puts every voxel value where the RAS one does."""
    affine = NIFTI_CASES["flipped"]
    xyz = _save_nifti(tmp_path / "a.nii.gz", affine)
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:2, 3] = [SHAPE_XYZ[0] - 1, SHAPE_XYZ[1] - 1]  # i -> 4 - i, j -> 5 - j
    nib.save(nib.Nifti1Image(xyz[::-1, ::-1].copy(), affine @ flip), tmp_path / "b.nii.gz")
    a, b = read_image(tmp_path / "a.nii.gz"), read_image(tmp_path / "b.nii.gz")
    for index in INDICES:
        world = _apply(a.affine, index)
        index_b = np.rint(np.linalg.solve(b.affine[:3, :3], world - b.affine[:3, 3])).astype(int)
        assert a.data[index] == b.data[tuple(index_b)]


@pytest.mark.parametrize("case", list(NIFTI_CASES))
@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd"])
def test_nifti_image_to_labels_and_back_keeps_the_affine(tmp_path, case, suffix):
    _save_nifti(tmp_path / "image.nii.gz", NIFTI_CASES[case])
    vol = read_image(tmp_path / "image.nii.gz")
    labels = (vol.data > 250).astype(np.uint8)
    back = read_image(write_labels(tmp_path / f"labels{suffix}", labels, like=vol))
    np.testing.assert_array_equal(back.data, labels)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)
    np.testing.assert_allclose(back.spacing, vol.spacing, rtol=1e-6)
    if suffix == ".nii.gz":  # same format: the header's matrices and codes are the source's
        src, out = nib.load(tmp_path / "image.nii.gz").header, nib.load(back.path).header
        np.testing.assert_array_equal(out.get_sform(), src.get_sform())
        np.testing.assert_array_equal(out.get_qform(), src.get_qform())
        assert [int(out[k]) for k in ("qform_code", "sform_code")] == [
            int(src[k]) for k in ("qform_code", "sform_code")
        ]


def test_nifti_separate_qform_and_sform_both_survive(tmp_path):
    xyz = np.zeros(SHAPE_XYZ, np.int16)
    img = nib.Nifti1Image(xyz, None)
    img.set_qform(NIFTI_CASES["flipped"], code=1)  # scanner
    img.set_sform(NIFTI_CASES["oblique"], code=4)  # MNI
    nib.save(img, tmp_path / "image.nii.gz")
    vol = read_image(tmp_path / "image.nii.gz")  # nibabel prefers the sform
    for index in INDICES:
        np.testing.assert_allclose(
            _apply(vol.affine, index), _lps_world(NIFTI_CASES["oblique"], index), atol=1e-5
        )
    out = nib.load(write_labels(tmp_path / "labels.nii.gz", np.ones(vol.data.shape, int), like=vol))
    np.testing.assert_array_equal(out.header.get_qform(), img.header.get_qform())
    np.testing.assert_array_equal(out.header.get_sform(), img.header.get_sform())
    assert (int(out.header["qform_code"]), int(out.header["sform_code"])) == (1, 4)


@pytest.mark.parametrize("case", list(ITK_DIRECTIONS))
@pytest.mark.parametrize("suffix", [".mha", ".mhd", ".nrrd", ".nii.gz"])
def test_itk_direction_maps_voxels_and_round_trips(tmp_path, case, suffix):
    src = _itk_image(ITK_DIRECTIONS[case])
    sitk.WriteImage(src, str(tmp_path / "image.mha"))
    vol = read_image(tmp_path / "image.mha")
    np.testing.assert_array_equal(vol.data, sitk.GetArrayFromImage(src))
    for index in INDICES:
        np.testing.assert_allclose(_apply(vol.affine, index), _itk_world(src, index), atol=1e-9)
    assert vol.spacing == (3.0, 0.8, 0.7)

    out = write_labels(tmp_path / f"labels{suffix}", np.ones(vol.data.shape, np.uint8), like=vol)
    written = sitk.ReadImage(str(out))
    back = read_image(out)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)
    np.testing.assert_allclose(written.GetSpacing(), src.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(written.GetOrigin(), src.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(written.GetDirection(), src.GetDirection(), atol=1e-6)
    if suffix in (".mha", ".mhd"):  # MetaImage holds the numbers exactly (NRRD: their products)
        assert written.GetSpacing() == src.GetSpacing() and written.GetOrigin() == src.GetOrigin()


def _header_numbers(path: Path, key: str) -> list[float]:
    for line in path.read_text(errors="replace").splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            return [float(v) for v in value.split()]
    raise AssertionError(f"{path.name} has no {key}")


def test_metaimage_transform_matrix_offset_and_spacing(tmp_path):
    """TransformMatrix lists each voxel axis's direction: i -> +P, j -> -L (toward R), k -> +S."""
    (tmp_path / "vol.raw").write_bytes(bytes(range(24)))
    header = tmp_path / "vol.mhd"
    header.write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 4 3 2\nElementType = MET_UCHAR\n"
        "ElementSpacing = 0.5 0.7 2\nOffset = 10 20 30\nTransformMatrix = 0 1 0 -1 0 0 0 0 1\n"
        "ElementDataFile = vol.raw\n"
    )
    vol = read_image(header)
    assert vol.data.shape == (2, 3, 4) and vol.data[1, 2, 1] == 1 * 12 + 2 * 4 + 1
    # napari (plane, row, col) = (k, j, i) = (1, 2, 1): LPS = (10 - 2 * 0.7, 20 + 0.5, 30 + 2)
    np.testing.assert_allclose(_apply(vol.affine, (1, 2, 1)), (32.0, 20.5, 8.6))
    assert vol.spacing == (2.0, 0.7, 0.5)

    out = write_labels(tmp_path / "labels.mhd", np.ones((2, 3, 4), np.uint8), like=vol)
    for key in ("TransformMatrix", "Offset", "ElementSpacing"):
        assert _header_numbers(out, key) == _header_numbers(header, key)


def test_nrrd_in_ras_space_reads_into_lps(tmp_path):
    path = tmp_path / "ras.nrrd"
    path.write_bytes(
        b"NRRD0004\ntype: uint8\ndimension: 3\nspace: right-anterior-superior\nsizes: 4 3 2\n"
        b"space directions: (-0.5,0,0) (0,0.7,0) (0,0,2)\nspace origin: (10,20,30)\n"
        b"encoding: raw\n\n" + bytes(range(24))
    )
    vol = read_image(path)
    # voxel (i, j, k) = (1, 2, 1): RAS (10 - 0.5, 20 + 1.4, 30 + 2) -> LPS (-9.5, -21.4, 32)
    np.testing.assert_allclose(_apply(vol.affine, (1, 2, 1)), (32.0, -21.4, -9.5))
    back = read_image(write_labels(tmp_path / "labels.nii.gz", np.ones((2, 3, 4), np.uint8), vol))
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)
    ras = nib.load(back.path).affine
    np.testing.assert_allclose(
        nib.affines.apply_affine(ras, (1, 2, 1)), (9.5, 21.4, 32.0), atol=1e-5
    )


def test_4d_and_2d_nifti_keep_their_geometry(tmp_path):
    affine = NIFTI_CASES["oblique"]
    img = nib.Nifti1Image(np.zeros((*SHAPE_XYZ, 3), np.int16), affine)
    img.header.set_zooms((*img.header.get_zooms()[:3], 1.5))
    nib.save(img, tmp_path / "series.nii.gz")
    vol = read_image(tmp_path / "series.nii.gz")
    assert vol.axes == "tzyx" and vol.affine.shape == (5, 5) and vol.spacing[0] == 1.5
    np.testing.assert_allclose(
        _apply(vol.affine, (2, 6, 5, 4))[1:], _lps_world(affine, (6, 5, 4)), atol=1e-5
    )
    for suffix in (".nii.gz", ".mha"):
        back = read_image(write_labels(tmp_path / f"l{suffix}", np.ones(vol.data.shape, int), vol))
        np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)

    flat = nib.Nifti1Image(np.zeros(SHAPE_XYZ[:2], np.int16), affine)  # its z row is kept too
    nib.save(flat, tmp_path / "slice.nii.gz")
    vol2 = read_image(tmp_path / "slice.nii.gz")
    assert vol2.affine.shape == (3, 3)
    out = write_labels(tmp_path / "slice_labels.nii.gz", np.ones(vol2.data.shape, int), vol2)
    np.testing.assert_allclose(nib.load(out).affine, affine, atol=1e-6)
    lps = geometry.RAS_TO_LPS @ affine[:3]
    np.testing.assert_allclose(vol2.affine, [[*lps[1, [1, 0, 3]]], [*lps[0, [1, 0, 3]]], [0, 0, 1]])


def test_volume_affine_must_agree_with_its_spacing():
    ImageVolume(
        np.zeros((2, 3, 4)), (2.0, 1.0, 0.5), (0.0,) * 3, affine=np.diag([-2.0, 1.0, 0.5, 1.0])
    )
    with pytest.raises(ValueError, match="column"):
        ImageVolume(
            np.zeros((2, 3, 4)), (2.0, 1.0, 1.0), (0.0,) * 3, affine=np.diag([2.0, 1.0, 0.5, 1.0])
        )
    with pytest.raises(ValueError, match="shape"):
        ImageVolume(np.zeros((2, 3, 4)), (1.0,) * 3, (0.0,) * 3, affine=np.eye(3))


@pytest.mark.parametrize("case", ["flipped", "oblique"])
@pytest.mark.parametrize("suffix", [".zarr", ".ome.zarr"])
def test_labels_stores_keep_a_flipped_or_oblique_affine(tmp_path, case, suffix):
    pytest.importorskip("zarr")
    from napari_adaptiveclick.io.stores import write_labels_store

    _save_nifti(tmp_path / "image.nii.gz", NIFTI_CASES[case])
    vol = read_image(tmp_path / "image.nii.gz")
    labels = (vol.data > 250).astype(np.uint8)
    back = read_image(write_labels_store(tmp_path / f"labels{suffix}", labels, like=vol))
    np.testing.assert_array_equal(np.asarray(back.data), labels)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)  # not just the spacing
    for index in INDICES:  # the labels' voxels land on the image's world points
        np.testing.assert_allclose(_apply(back.affine, index), _apply(vol.affine, index))
