"""Which image an autosave belongs to (:class:`ImageKey`), and where its store lives
(:func:`store_folders`): beside the image file, in a folder the user chose, or in the
per-user cache for images without a (writable) folder of their own. napari is never imported
here; the store itself is :mod:`napari_adaptiveclick.volume.autosave`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

SIDECAR_SUFFIX = ".adaptiveclick"  # <image file>.adaptiveclick/ holds the image's stores
SAMPLE_PLANES = 16  # planes of the image hashed for its fingerprint


@dataclass(frozen=True)
class ImageKey:
    """Which image a store belongs to: its file (``path``, absolute, "" without one) and a
    content fingerprint (file size, shape, dtype, SHA-256 of :data:`SAMPLE_PLANES` planes
    spread through the volume), and ``selection``, the part of the file annotated (e.g. one
    time point of 4D data; "" for all of it)."""

    path: str
    file_size: int
    shape: tuple[int, ...]
    dtype: str
    sample_sha256: str
    selection: str = ""

    @classmethod
    def of(
        cls, volume: Any, path: str | os.PathLike | None = None, selection: str = ""
    ) -> ImageKey:
        """The key of ``volume`` (``(P, R, C[, 3])``, any array that numpy can index) read from
        ``path``."""
        shape, dtype = tuple(int(n) for n in volume.shape), np.dtype(volume.dtype).str
        count = min(shape[0], SAMPLE_PLANES) if shape else 0
        planes = np.unique(np.linspace(0, max(shape[0] - 1, 0), count).round().astype(int))
        if not count:
            sample = np.asarray(volume)
        else:  # plane by plane: a lazy volume (a store) reads only these planes
            sample = np.stack([np.asarray(volume[int(p)]) for p in planes])
        sample = np.ascontiguousarray(sample)
        digest = hashlib.sha256(repr((shape, dtype)).encode() + sample.tobytes()).hexdigest()
        where = os.path.abspath(os.fspath(path)) if path else ""
        size = os.path.getsize(where) if where and os.path.isfile(where) else 0
        return cls(where, size, shape, dtype, digest, selection)

    def differences(self, other: ImageKey) -> list[str]:
        """What tells ``other`` apart from this image (the path does not: a sidecar moves with
        its image)."""
        return [
            f"{f.name} {getattr(other, f.name)!r} instead of {getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name != "path" and getattr(other, f.name) != getattr(self, f.name)
        ]

    @property
    def folder_name(self) -> str:
        """A folder name unique to this key, for stores kept away from the image."""
        text = json.dumps(asdict(self), sort_keys=True).encode()
        stem = Path(self.path).name.split(".")[0] if self.path else "image"
        return f"{stem or 'image'}-{hashlib.sha256(text).hexdigest()[:16]}"

    @classmethod
    def from_json(cls, item: dict) -> ImageKey:
        return cls(**{**item, "shape": tuple(item["shape"])})


PACKAGE = Path(__file__).resolve().parents[1]  # the installed package: never written into


def user_cache_dir() -> Path:
    """The per-user folder for stores of images without a (writable) folder of their own
    (``$ADAPTIVECLICK_AUTOSAVE_DIR`` when set, e.g. to keep test runs apart)."""
    if os.environ.get("ADAPTIVECLICK_AUTOSAVE_DIR"):
        return Path(os.environ["ADAPTIVECLICK_AUTOSAVE_DIR"])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "napari-adaptiveclick" / "autosave"


def store_folders(key: ImageKey, root: str | os.PathLike | None = None) -> list[Path]:
    """Where the store of ``key`` may be, in order: in ``root`` (a folder the user chose), or
    beside the image file (not for the package's own sample data) and then in the per-user
    cache (:func:`user_cache_dir`)."""
    if root is not None:
        return [Path(root) / key.folder_name]
    name = "autosave" + (f"-{key.selection}" if key.selection else "")
    own = key.path and not Path(key.path).resolve().is_relative_to(PACKAGE)  # not sample data
    beside = [Path(key.path + SIDECAR_SUFFIX) / name] if own else []
    return [*beside, user_cache_dir() / key.folder_name]
