"""The plugin manifest, its reader and writer, and its sample data (no display needed)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("napari")

from napari_adaptiveclick._napari import sample_data  # noqa: E402
from napari_adaptiveclick._napari.files import get_reader, write_labels_layer  # noqa: E402
from napari_adaptiveclick.io.images import read_image  # noqa: E402

DATA = Path(
    os.environ.get(
        "ADAPTIVECLICK_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
)


def test_manifest_is_valid_and_importable():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-adaptiveclick")
    manifest.validate_imports()
    contributions = manifest.contributions
    assert [w.display_name for w in contributions.widgets] == ["AdaptiveClick"]
    assert {s.key for s in contributions.sample_data} == {"em", "mri", "sstem"}
    assert (
        contributions.menus["napari/layers/segment"][0].command
        == "napari-adaptiveclick.make_widget"
    )
    assert "*.nii.gz" in contributions.readers[0].filename_patterns


def write_nifti(path: Path, data: np.ndarray, spacing, origin) -> None:
    """``data`` is (plane, row, col); NIfTI stores (x, y, z)."""
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    affine[:3, 3] = origin[::-1]
    nib.save(nib.Nifti1Image(data.transpose(), affine), path)


def write_itk(path: Path, data: np.ndarray, spacing, origin) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(data)
    image.SetSpacing([float(s) for s in spacing[::-1]])
    image.SetOrigin([float(o) for o in origin[::-1]])
    image.SetDirection([0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # a flipped frame
    sitk.WriteImage(image, str(path))


@pytest.mark.parametrize(
    ("name", "writer"),
    [
        ("scan.nii.gz", write_nifti),
        ("scan.nii", write_nifti),
        ("scan.mha", write_itk),
        ("scan.mhd", write_itk),
        ("scan.nrrd", write_itk),
    ],
)
def test_reader_sets_scale_and_writer_keeps_geometry(tmp_path, name, writer):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 1000, (6, 9, 8)).astype(np.int16)
    spacing, origin = (2.5, 0.8, 0.7), (-10.0, 4.0, 3.5)
    writer(tmp_path / name, data, spacing, origin)
    reader = get_reader(str(tmp_path / name))
    assert reader is not None and get_reader(str(tmp_path / "scan.png")) is None
    [(array, kwargs, kind)] = reader(str(tmp_path / name))
    assert kind == "image" and array.shape == (6, 9, 8)
    np.testing.assert_allclose(kwargs["scale"], spacing)
    np.testing.assert_array_equal(array, data)

    labels = (array > 500).astype(np.int32) * 3
    out = tmp_path / ("labels_" + name)
    attributes = {"metadata": kwargs["metadata"], "scale": kwargs["scale"]}
    assert write_labels_layer(str(out), labels, attributes) == [str(out)]
    source, written = read_image(tmp_path / name), read_image(out)
    np.testing.assert_array_equal(written.data, labels)
    np.testing.assert_allclose(written.spacing, source.spacing)
    np.testing.assert_allclose(written.origin, source.origin)
    np.testing.assert_allclose(written.affine, source.affine)


def _oblique_nifti(path: Path) -> np.ndarray:
    """A flipped, rotated, anisotropic NIfTI volume; returns its RAS affine (file axes)."""
    c, s = np.cos(0.5), np.sin(0.5)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ np.diag([-0.8, 0.9, 2.5])
    affine[:3, 3] = [-12.5, 30.0, 7.25]
    data = np.random.default_rng(1).integers(0, 100, (5, 6, 7)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, affine), path)
    return affine


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing")
def test_layer_maps_a_voxel_to_its_lps_world_point(tmp_path):
    from napari.layers import Image, Labels, Points

    from napari_adaptiveclick._napari.layers import geometry_kwargs

    ras = _oblique_nifti(tmp_path / "scan.nii.gz")
    [(array, kwargs, _)] = get_reader(str(tmp_path / "scan.nii.gz"))(str(tmp_path / "scan.nii.gz"))
    image = Image(array, **kwargs)
    assert "translate" not in kwargs and not np.signbit(image.translate).any()
    np.testing.assert_allclose(image.scale, np.linalg.norm(ras[:3, :3], axis=0)[::-1], rtol=1e-6)
    index = np.array([6.0, 5.0, 4.0])  # napari (plane, row, col) = NIfTI voxel (4, 5, 6)
    x, y, z = nib.affines.apply_affine(ras, index[::-1])
    np.testing.assert_allclose(image.data_to_world(index), (z, -y, -x), atol=1e-5)  # LPS
    for layer in (
        Labels(np.zeros(array.shape, int), **geometry_kwargs(image)),
        Points(ndim=3, **geometry_kwargs(image)),
    ):
        np.testing.assert_allclose(layer.data_to_world(index), (z, -y, -x), atol=1e-5)


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing")
def test_writer_without_source_uses_the_layers_transform(tmp_path):
    from napari.layers import Labels

    layer = Labels(
        np.ones((3, 4, 5), np.uint8),
        scale=(2.0, 0.5, 0.7),
        translate=(1.0, -2.0, 3.0),
        rotate=np.array([[0, 1.0, 0], [1.0, 0, 0], [0, 0, 1.0]]),
        affine=np.diag([1.0, -1.0, 1.0, 1.0]),
    )
    data, state, _ = layer.as_layer_data_tuple()
    out = write_labels_layer(str(tmp_path / "labels.mha"), data, state)[0]
    written = read_image(out)
    for index in ((0, 0, 0), (2, 3, 4), (1, 0, 2)):
        point = np.append(np.asarray(index, dtype=float), 1.0)
        np.testing.assert_allclose(
            (written.affine @ point)[:3], layer.data_to_world(index), atol=1e-9
        )


@pytest.mark.parametrize("name", ["labels.tif", "labels.nii.gz", "labels.mha", "labels.png"])
def test_writer_keeps_the_layers_integer_type_when_the_ids_fit(tmp_path, name):
    shape = (6, 7) if name.endswith(".png") else (3, 6, 7)
    labels = np.zeros(shape, np.int32)  # napari's usual Labels dtype, ids that fit a byte
    labels[..., 1:3, 2:5] = 7
    out = write_labels_layer(str(tmp_path / name), labels, {"metadata": {}})[0]
    back = read_image(out)
    np.testing.assert_array_equal(back.data, labels)
    # PNG holds only uint8 / uint16, so there the smallest of those that fits is used
    assert back.data.dtype == (np.uint8 if name.endswith(".png") else np.int32)
    wide = np.zeros(shape, np.uint16)
    wide[..., 0, 0] = 300
    out = write_labels_layer(str(tmp_path / f"wide_{name}"), wide, {"metadata": {}})[0]
    assert read_image(out).data.dtype == np.uint16 and read_image(out).data.max() == 300


def test_multichannel_metaimage_gives_each_channel_the_geometry(tmp_path):
    import SimpleITK as sitk
    from napari.layers.utils.stack_utils import split_channels

    image = sitk.GetImageFromArray(np.zeros((4, 5, 6, 2), np.uint8), isVector=True)
    image.SetSpacing((0.5, 0.5, 2.0))
    image.SetDirection((1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))
    sitk.WriteImage(image, str(tmp_path / "two.mha"))
    [(array, kwargs, kind)] = get_reader(str(tmp_path / "two.mha"))(str(tmp_path / "two.mha"))
    assert kind == "image" and kwargs["channel_axis"] == 3
    layers = split_channels(array, **kwargs)
    assert len(layers) == 2
    for _, layer_kwargs, _ in layers:
        np.testing.assert_allclose(layer_kwargs["affine"], np.diag([1.0, -1.0, 1.0, 1.0]))


def test_manifest_reader_and_writer_through_napari(tmp_path):
    import napari
    from napari.layers import Labels

    write_nifti(
        tmp_path / "brain_seg.nii.gz",
        np.eye(4, dtype=np.uint8)[None].repeat(3, 0),
        (3.0, 1.0, 1.0),
        (0.0, 0.0, 0.0),
    )
    import npe2

    npe2.PluginManager.instance().discover(include_npe1=False)
    [(data, kwargs, kind)] = npe2.read(
        [str(tmp_path / "brain_seg.nii.gz")], stack=False, plugin_name="napari-adaptiveclick"
    )
    assert kind == "labels"  # integer files named like a segmentation open as Labels
    layer = Labels(data, **kwargs)
    paths = napari.save_layers(str(tmp_path / "copy.nrrd"), [layer], plugin="napari-adaptiveclick")
    assert paths == [str(tmp_path / "copy.nrrd")]
    assert read_image(tmp_path / "copy.nrrd").spacing == pytest.approx((3.0, 1.0, 1.0))


def test_bundled_samples_work_offline():
    [(em, em_kwargs, em_kind)] = sample_data.em_sample()
    assert em_kind == "image" and em.shape == (16, 256, 256) and em.dtype == np.uint8
    assert em_kwargs["scale"] == pytest.approx((50.0, 4.6, 4.6))
    [(mri, mri_kwargs, _)] = sample_data.mri_sample()
    assert mri.shape == (24, 128, 128) and mri_kwargs["scale"] == pytest.approx((5.0, 1.0, 1.0))
    total = sum(p.stat().st_size for p in sample_data.SAMPLE_DIR.iterdir())
    assert total < 3_000_000


class _Counting(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    """Serve a folder on 127.0.0.1; yields (start(folder) -> base URL, request log)."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_Counting, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    _Counting.requests = []
    yield start, _Counting.requests
    for server in servers:
        server.shutdown()
        server.server_close()


def test_download_checks_sums_and_caches(tmp_path, local_server):
    start, requests = local_server
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(0)
    sums = {}
    for name in ("00.tif", "01.tif"):
        payload = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
        (served / name).write_bytes(payload)
        sums[name] = hashlib.sha256(payload).hexdigest()
    url = start(served)
    paths = sample_data.fetch_files(url, sums, tmp_path / "cache")
    assert [p.read_bytes() for p in paths] == [(served / n).read_bytes() for n in sums]
    assert len(requests) == 2
    sample_data.fetch_files(url, sums, tmp_path / "cache")
    assert len(requests) == 2  # cached files are checked, not downloaded again

    (served / "01.tif").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="SHA-256"):
        sample_data.fetch_files(url, sums, tmp_path / "fresh")
    assert not (tmp_path / "fresh" / "01.tif").exists()
    with pytest.raises(ConnectionError, match="Cannot download"):
        sample_data.fetch_files(url, {"missing.tif": "0" * 64}, tmp_path / "fresh")


@pytest.mark.data
def test_sstem_sample_downloads_the_pinned_stack(tmp_path, local_server, monkeypatch):
    raw = DATA / "sstem-drosophila-vnc" / "stack1" / "raw"
    if not raw.is_dir():
        pytest.skip(f"{raw} is not available")
    start, _ = local_server
    monkeypatch.setenv("ADAPTIVECLICK_SSTEM_URL", start(raw))
    monkeypatch.setenv("ADAPTIVECLICK_CACHE", str(tmp_path))
    [(stack, kwargs, kind)] = sample_data.sstem_sample()
    assert kind == "image" and stack.shape == (20, 1024, 1024) and stack.dtype == np.uint8
    assert kwargs["scale"] == sample_data.SSTEM_SPACING


@pytest.mark.parametrize("suffix", [".zarr", ".ome.zarr"])
def test_a_labels_store_reopens_as_labels_whatever_its_name(tmp_path, suffix):
    pytest.importorskip("zarr")
    from napari_adaptiveclick.io.stores import write_labels_store

    labels = np.zeros((3, 8, 9), np.uint16)
    labels[1, 2:5, 3:6] = 4
    path = write_labels_store(tmp_path / f"lesion{suffix}", labels)  # no "label" in the name
    [(data, _, kind)] = get_reader(str(path))(str(path))
    assert kind == "labels"
    np.testing.assert_array_equal(np.asarray(data), labels)
    image = np.zeros((3, 8, 9), np.uint16)  # a plain integer array stays an image
    import zarr

    zarr.create_array(str(tmp_path / "stack.zarr"), shape=image.shape, dtype=image.dtype)
    [(_, _, kind)] = get_reader(str(tmp_path / "stack.zarr"))(str(tmp_path / "stack.zarr"))
    assert kind == "image"
