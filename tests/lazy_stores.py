"""Small chunked stores for the big-volume tests: a zarr store that counts its reads, an
OME-Zarr image with two levels, and an N5 dataset written by hand."""

from __future__ import annotations

import json
import struct

import numpy as np
import zarr
from zarr.storage import WrapperStore


class CountingStore(WrapperStore):
    """A zarr store that records the keys read (chunks and metadata)."""

    def __init__(self, store) -> None:
        super().__init__(store)
        self.read: list[str] = []

    async def get(self, key, prototype, byte_range=None):
        self.read.append(key)
        return await self._store.get(key, prototype, byte_range)


def write_ome_zarr(path, data, scale=(2.0, 0.5, 0.5), zarr_format=3, axes="zyx", factors=(2,)):
    """An OME-Zarr image: level 0, and one level per entry of ``factors`` (the factor its
    rows and columns shrink by from level 0; by default one level at half)."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image

    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    fmt = FormatV05() if zarr_format == 3 else FormatV04()
    write_image(
        data,
        group,
        axes=axes,
        fmt=fmt,
        scale_factors=list(factors),
        scale=dict(zip("zyx", scale, strict=True)),
        storage_options={"chunks": (1,) * (data.ndim - 2) + (16, 16)},
    )
    return path


def write_n5(path, data: np.ndarray, block=(2, 16, 16)):
    """A raw-compressed N5 dataset ``raw`` written by hand (N5 lists axes fastest first)."""
    (path / "raw").mkdir(parents=True)
    (path / "attributes.json").write_text(json.dumps({"n5": "2.5.0"}))
    attrs = {
        "dimensions": list(data.shape[::-1]),
        "blockSize": list(block[::-1]),
        "dataType": "uint8",
        "compression": {"type": "raw"},
        "resolution": [0.25, 0.5, 2.0],
    }
    (path / "raw" / "attributes.json").write_text(json.dumps(attrs))
    grid = [range(0, n, b) for n, b in zip(data.shape, block, strict=True)]
    for z0 in grid[0]:
        for y0 in grid[1]:
            for x0 in grid[2]:
                part = data[z0 : z0 + block[0], y0 : y0 + block[1], x0 : x0 + block[2]]
                folder = path / "raw" / str(x0 // block[2]) / str(y0 // block[1])
                folder.mkdir(parents=True, exist_ok=True)
                header = struct.pack(">HH", 0, 3) + struct.pack(">III", *part.shape[::-1])
                (folder / str(z0 // block[0])).write_bytes(header + part.tobytes())
    return path


def start_on_disk(viewer, qtbot, path):
    """Open ``path`` with the plugin's reader in ``viewer`` and Start the widget on it with
    every new Labels layer on disk; returns ``(image layer, widget)`` once ready."""
    (image,) = viewer.open(str(path), plugin="napari-adaptiveclick")
    _, widget = viewer.window.add_plugin_dock_widget("napari-adaptiveclick", "AdaptiveClick")
    widget.device_combo.setCurrentText("cpu")
    widget.image_combo.setCurrentText(image.name)
    widget.disk_spin.setValue(0.0)  # every new Labels layer on disk
    widget.start()
    qtbot.waitUntil(lambda: not widget.controller.busy, timeout=60_000)
    assert widget.controller.ready, viewer.status
    return image, widget
