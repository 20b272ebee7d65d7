"""Generate the sample data bundled with the napari plugin (no real data is copied).

Writes into ``src/napari_adaptiveclick/sample_data/``:

- ``em_stack.tif``: a synthetic serial-section EM stack, 16 x 256 x 256 uint8, ImageJ TIFF
  with spacing 50 x 4.6 x 4.6 nm (cell membranes from a drifting Voronoi tessellation,
  mitochondria as textured ellipses that move and shrink through the sections, noise).
- ``em_stack_clicks.csv``: the scripted click session of the demo, in the click-record
  format (``plane,row,col,positive,object_id,order,model``).
- ``mri_volume.nii.gz``: a synthetic T1-like brain MRI with a tumour, 24 x 128 x 128 int16
  (plane, row, col), voxel 5 x 1 x 1 mm (thick axial slices, as clinical scans).

Deterministic (seeded); run ``python sample_data/make_samples.py`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile
from scipy import ndimage

from napari_adaptiveclick.volume.clicks_file import write_click_records
from napari_adaptiveclick.volume.records import ClickRecord

OUT = Path(__file__).resolve().parents[1] / "src" / "napari_adaptiveclick" / "sample_data"
EM_SHAPE = (16, 256, 256)
EM_SPACING = (50.0, 4.6, 4.6)
MRI_SHAPE = (24, 128, 128)
MRI_SPACING = (5.0, 1.0, 1.0)

# Mitochondria: centre (row, col) at the middle plane, drift per plane, semi-axes, angle,
# first and last plane.
MITOCHONDRIA = [
    ((70.0, 80.0), (0.6, -0.4), (22.0, 11.0), 0.5, 2, 13),
    ((170.0, 150.0), (-0.5, 0.8), (16.0, 13.0), -0.9, 0, 15),
    ((60.0, 190.0), (0.3, 0.3), (26.0, 9.0), 1.3, 4, 11),
    ((200.0, 60.0), (0.0, 0.6), (13.0, 10.0), 0.0, 5, 15),
    ((130.0, 210.0), (0.4, 0.0), (18.0, 8.0), 2.0, 0, 9),
]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return field / field.std()


def em_stack(rng: np.random.Generator) -> np.ndarray:
    planes, rows, cols = EM_SHAPE
    mid = planes // 2
    seeds = rng.uniform(0, rows, (45, 2))
    drift = rng.normal(0, 0.8, (45, 2))
    grid = np.stack(np.mgrid[:rows, :cols], axis=-1).astype(np.float64)
    texture = smooth_noise(rng, EM_SHAPE, (0.5, 3.0, 3.0))
    stack = np.empty(EM_SHAPE, np.float64)
    for z in range(planes):
        points = seeds + drift * (z - mid)
        dist = np.linalg.norm(grid[:, :, None, :] - points[None, None], axis=-1)
        nearest = np.sort(dist, axis=-1)
        membrane = np.exp(-(((nearest[..., 1] - nearest[..., 0]) / 1.6) ** 2))
        image = 165.0 + 12.0 * texture[z] - 95.0 * membrane
        for (r0, c0), (dr, dc), (a, b), angle, first, last in MITOCHONDRIA:
            if not first <= z <= last:
                continue
            shrink = np.sqrt(
                max(0.0, 1.0 - ((z - (first + last) / 2) / ((last - first) / 2 + 1.5)) ** 2)
            )
            r, c = r0 + dr * (z - mid), c0 + dc * (z - mid)
            u = (grid[..., 0] - r) * np.cos(angle) + (grid[..., 1] - c) * np.sin(angle)
            v = -(grid[..., 0] - r) * np.sin(angle) + (grid[..., 1] - c) * np.cos(angle)
            radius = np.sqrt((u / (a * shrink + 1e-6)) ** 2 + (v / (b * shrink + 1e-6)) ** 2)
            inside = radius < 1.0
            cristae = 0.5 + 0.5 * np.cos(u / 2.2)
            image[inside] = 105.0 - 35.0 * cristae[inside]
            image[np.abs(radius - 1.0) < 0.12] = 45.0  # outer membrane
        stack[z] = ndimage.gaussian_filter(image, 0.8)
    stack += rng.normal(0, 9.0, EM_SHAPE)
    return np.clip(stack, 0, 255).astype(np.uint8)


def em_clicks() -> list[ClickRecord]:
    """The demo's click session: two mitochondria on the middle plane, one negative click."""
    mid = EM_SHAPE[0] // 2
    (r1, c1), _, (a1, _), angle1, *_ = MITOCHONDRIA[0]
    (r2, c2), *_ = MITOCHONDRIA[1]
    outside = (r1 + 1.6 * a1 * np.sin(angle1), c1 + 1.6 * a1 * np.cos(angle1))
    rows = [
        (mid, r1, c1, True, 1),
        (mid, round(outside[0], 1), round(outside[1], 1), False, 1),
        (mid, r2, c2, True, 2),
    ]
    return [ClickRecord(p, r, c, pos, obj, order=i) for i, (p, r, c, pos, obj) in enumerate(rows)]


def mri_volume(rng: np.random.Generator) -> np.ndarray:
    planes, rows, cols = MRI_SHAPE
    z, y, x = np.meshgrid(
        (np.arange(planes) - planes / 2 + 0.5) * MRI_SPACING[0],
        (np.arange(rows) - rows / 2) * MRI_SPACING[1],
        (np.arange(cols) - cols / 2) * MRI_SPACING[2],
        indexing="ij",
    )
    wobble = 3.0 * smooth_noise(rng, MRI_SHAPE, (1.0, 6.0, 6.0))
    head = np.sqrt((z / 62.0) ** 2 + (y / 58.0) ** 2 + (x / 48.0) ** 2) * 55.0
    image = np.zeros(MRI_SHAPE)
    image[head < 55.0] = 750.0  # scalp fat
    image[head < 50.0] = 80.0  # skull
    image[head < 46.0] = 180.0  # CSF
    brain = head + wobble < 43.0
    image[brain] = 480.0  # grey matter
    image[brain & (head + 1.5 * wobble < 34.0)] = 640.0  # white matter
    ventricles = ((np.abs(x) - 8.0) / 5.0) ** 2 + (y / 16.0) ** 2 + (z / 20.0) ** 2 < 1.0
    image[ventricles] = 170.0
    tumour = np.sqrt((z - 10.0) ** 2 + (y + 18.0) ** 2 + (x - 20.0) ** 2) + 2.0 * wobble
    image[tumour < 15.0] = 900.0
    image[tumour < 7.0] = 260.0  # necrotic core
    image = ndimage.gaussian_filter(image, (0.4, 0.8, 0.8))
    image *= 1.0 + 0.15 * smooth_noise(rng, MRI_SHAPE, (4.0, 30.0, 30.0))  # bias field
    image = np.hypot(image + rng.normal(0, 18.0, MRI_SHAPE), rng.normal(0, 18.0, MRI_SHAPE))
    return np.clip(image, 0, 32767).astype(np.int16)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    em = em_stack(np.random.default_rng(0))
    tifffile.imwrite(
        OUT / "em_stack.tif",
        em,
        imagej=True,
        resolution=(1.0 / EM_SPACING[2], 1.0 / EM_SPACING[1]),
        metadata={"axes": "ZYX", "spacing": EM_SPACING[0], "unit": "nm"},
        compression="zlib",
    )
    write_click_records(OUT / "em_stack_clicks.csv", em_clicks())
    mri = mri_volume(np.random.default_rng(1))
    affine = np.diag([MRI_SPACING[2], MRI_SPACING[1], MRI_SPACING[0], 1.0])
    nifti = nib.Nifti1Image(mri.transpose(), affine)  # NIfTI arrays are (x, y, z)
    nifti.header.set_xyzt_units(xyz="mm")
    nifti.set_qform(affine, code=1)
    nifti.set_sform(affine, code=1)
    nib.save(nifti, OUT / "mri_volume.nii.gz")
    for path in sorted(OUT.iterdir()):
        print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
