"""What an autosave store holds, read and checked (:func:`open_state`), what restoring it
gives (:class:`AutosaveSnapshot`), and one write waiting to be made (:class:`PendingWrite`).
The layout is described in :mod:`napari_adaptiveclick.volume.autosave`; napari is never
imported here.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from napari_adaptiveclick.volume import autosave_format as F
from napari_adaptiveclick.volume.image_key import ImageKey
from napari_adaptiveclick.volume.records import ClickRecord
from napari_adaptiveclick.volume.slicing import SliceGeometry

FORMAT = "napari-adaptiveclick autosave"
VERSION = 2
MANIFEST = "manifest.json"


class AutosaveError(ValueError):
    """A store that cannot be loaded as it is: damaged, partial, or of another image."""


def checksum(manifest: dict) -> str:
    return F.sha256(json.dumps(manifest, sort_keys=True).encode())


def new_manifest(
    key: ImageKey, generation: int, geometry: SliceGeometry, dtype: str, base: str, sha256: str
) -> dict:
    """The manifest of a store of the image ``key`` whose base file ``base`` (of that
    SHA-256) holds ``generation`` of labels of ``geometry`` and ``dtype``."""
    now = time.time()
    return {
        "format": FORMAT,
        "version": VERSION,
        "generation": generation,
        "saved": now,
        "saved_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
        "image": {**asdict(key), "shape": list(key.shape)},
        "labels": {
            "axis": geometry.axis,
            "shape": list(geometry.shape),
            "dtype": dtype,
            "tile": F.TILE,
        },
        "base": {"file": base, "sha256": sha256},
    }


def write_manifest(folder: Path, manifest: dict) -> None:
    """Replace the manifest of ``folder`` (with its checksum) atomically, and fsync."""
    text = json.dumps({**manifest, "checksum": checksum(manifest)}, indent=1).encode()
    F.write_atomic(folder / MANIFEST, lambda stream: stream.write(text))
    F.fsync_folder(folder)


def same_records(a: Sequence, b: Sequence) -> bool:
    return len(a) == len(b) and all(x is y or x == y for x, y in zip(a, b, strict=True))


def kept_records(old: Sequence, new: Sequence) -> int:
    """Length of the common start of two record lists (compared by identity first)."""
    count = 0
    for x, y in zip(old, new, strict=False):
        if not (x is y or x == y):
            break
        count += 1
    return count


@dataclass(eq=False)
class PendingWrite:
    """One write of a store, prepared from the labels (its tiles copied), not yet made:
    ``base`` (it replaces all the store holds) or a journal segment; ``info`` None: as
    before. :meth:`merged` joins it with a later one (the later wins)."""

    base: bool
    geometry: SliceGeometry
    dtype: str
    tiles: dict[F.TileKey, np.ndarray]
    records: list[ClickRecord]
    object_id: int
    info: dict | None
    fingerprints: np.ndarray | None
    saved: float

    def merged(self, later: PendingWrite) -> PendingWrite:
        if later.base:
            return later
        return PendingWrite(
            self.base,
            self.geometry,
            self.dtype,
            {**self.tiles, **later.tiles},
            later.records,
            later.object_id,
            later.info if later.info is not None else self.info,
            self.fingerprints,
            later.saved,
        )


def _records(items, where: str) -> list[ClickRecord]:
    try:
        return [ClickRecord(**item) for item in items]
    except (TypeError, ValueError) as error:
        raise AutosaveError(f"{where} is damaged: a click record is not one ({error}).") from None


@dataclass(eq=False)
class StoredState:
    """A store's files, checked: the labels' ``geometry`` and ``dtype``, the state after
    its last whole write (``generation``, ``saved``, ``object_id``, ``records``, ``info``),
    the base's ``fingerprints``, and where each stored tile's latest values are
    (:meth:`tile` reads them). ``torn``: a last write cut short was left out."""

    folder: Path
    manifest: dict
    geometry: SliceGeometry
    dtype: np.dtype
    generation: int
    saved: float
    object_id: int
    records: list[ClickRecord]
    info: dict
    fingerprints: np.ndarray | None
    members: dict[F.TileKey, tuple[zipfile.ZipFile, str]]
    journal_length: int
    base_bytes: int
    torn: bool

    def tile(self, key: F.TileKey) -> np.ndarray:
        archive, name = self.members[key]
        where = f"The autosave in {self.folder} is damaged"
        try:
            values = F.read_array(archive, name)
        except (KeyError, OSError, ValueError, zipfile.BadZipFile) as error:
            raise AutosaveError(f"{where}: tile {key} cannot be read ({error}).") from None
        box = F.tile_box(self.geometry, key)
        if values.shape != (box.height, box.width) or values.dtype != self.dtype:
            raise AutosaveError(
                f"{where}: tile {key} holds {values.dtype} {values.shape}, not "
                f"{self.dtype} {(box.height, box.width)}."
            )
        return values


def _manifest(folder: Path) -> dict:
    path, where = folder / MANIFEST, f"The autosave in {folder}"
    if not path.is_file():
        raise FileNotFoundError(f"No autosave in {folder}.")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AutosaveError(
            f"{where} is damaged: {MANIFEST} is not valid JSON ({error})."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise AutosaveError(f"{where} is not one: {MANIFEST} is not an autosave manifest.")
    if manifest.get("version") != VERSION:
        raise AutosaveError(f"{where} has version {manifest.get('version')!r}, not {VERSION}.")
    if manifest.pop("checksum", None) != checksum(manifest):
        raise AutosaveError(
            f"{where} is damaged: the checksum of {MANIFEST} does not match its contents."
        )
    return manifest


def _verified(folder: Path, name: str, sha256: str) -> bytes:
    path = folder / name
    if not path.is_file():
        raise AutosaveError(
            f"The autosave in {folder} is partial: {name}, listed in its manifest, is missing."
        )
    data = path.read_bytes()
    if F.sha256(data) != sha256:
        raise AutosaveError(
            f"The autosave in {folder} is damaged: {name} does not match the checksum in its "
            "manifest."
        )
    return data


def open_state(folder: Path, key: ImageKey | None, journal_length: int | None = None):
    """The :class:`StoredState` of the store in ``folder``, checked whole (``key``: the image
    it must belong to; None: not checked). ``journal_length``: read the journal only that
    far (its writer knows where its last whole segment ends). FileNotFoundError without a
    store; AutosaveError, saying what is wrong, for a damaged, partial or foreign one."""
    manifest, where = _manifest(folder), f"The autosave in {folder}"
    try:
        spec, base = manifest["labels"], manifest["base"]
        shape = tuple(int(n) for n in spec["shape"])
        geometry, dtype = SliceGeometry(shape, int(spec["axis"])), np.dtype(spec["dtype"])
        if int(spec["tile"]) != F.TILE:
            raise ValueError(f"tiles of {spec['tile']} px")
        image, journal = ImageKey.from_json(manifest["image"]), str(manifest["journal"])
        base_file, base_sha = str(base["file"]), str(base["sha256"])
    except (KeyError, TypeError, ValueError) as error:
        raise AutosaveError(f"{where} is incomplete: {MANIFEST} lacks {error}.") from None
    differences = [] if key is None else key.differences(image)
    if differences:
        raise AutosaveError(f"{where} was made for a different image ({'; '.join(differences)}).")
    data = _verified(folder, base_file, base_sha)
    if not (folder / journal).is_file():
        raise AutosaveError(f"{where} is partial: {journal}, listed in its manifest, is missing.")
    log = (folder / journal).read_bytes()
    try:
        payloads, length, torn = F.read_segments(log[:journal_length])
    except ValueError as error:
        raise AutosaveError(f"{where} is damaged: {journal}: {error}.") from None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        meta = F.unpack(archive)
        names = set(archive.namelist())
        fingerprints = (
            F.read_array(archive, "fingerprints.npy") if "fingerprints.npy" in names else None
        )
        state = StoredState(
            folder,
            manifest,
            geometry,
            dtype,
            int(meta["generation"]),
            float(meta["saved"]),
            int(meta["object_id"]),
            _records(meta["records"], where),
            dict(meta.get("info") or {}),
            fingerprints,
            {},
            length,
            len(data),
            torn,
        )
        if state.generation != int(manifest["generation"]):
            raise ValueError(f"{base_file} is generation {state.generation}")
        grid = (geometry.planes, *F.tile_grid(geometry))
        if fingerprints is not None and fingerprints.shape != grid:
            raise ValueError(f"fingerprints of shape {fingerprints.shape}, not {grid}")
        _add_tiles(state, archive, meta)
        for number, payload in enumerate(payloads, 1):
            segment = zipfile.ZipFile(io.BytesIO(payload))
            meta = F.unpack(segment)
            if int(meta["generation"]) != state.generation + 1:
                raise ValueError(f"journal segment {number} is generation {meta['generation']}")
            keep = int(meta["keep"])
            if not 0 <= keep <= len(state.records):
                raise ValueError(f"journal segment {number} keeps {keep} records")
            state.records[keep:] = _records(meta["records"], where)
            state.generation, state.saved = int(meta["generation"]), float(meta["saved"])
            state.object_id = int(meta["object_id"])
            if meta.get("info") is not None:
                state.info = dict(meta["info"])
            _add_tiles(state, segment, meta)
    except AutosaveError:
        raise
    except (KeyError, TypeError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise AutosaveError(f"{where} is damaged: {error}") from None
    return state


def _add_tiles(state: StoredState, archive: zipfile.ZipFile, meta: dict) -> None:
    grid = F.tile_grid(state.geometry)
    for plane, r, c in meta["tiles"]:
        key = (int(plane), int(r), int(c))
        if not (0 <= key[0] < state.geometry.planes and 0 <= r < grid[0] and 0 <= c < grid[1]):
            raise ValueError(f"tile {key} is outside the labels")
        state.members[key] = (archive, F.tile_name(key))


@dataclass
class AutosaveSnapshot:
    """A store as read (all checked): ``saved`` (seconds since the epoch), the click
    ``records``, the current ``object_id``, and ``tiles``: (plane, tile row, tile col) ->
    labels of that tile (:data:`~.autosave_format.TILE` px, clipped at the edges) of planes
    along ``axis`` of a ``shape`` labels volume of ``dtype``; ``fingerprints`` of the labels
    the annotation started from (None: not kept); ``torn``: a last edit, cut short, was left
    out."""

    folder: Path
    saved: float
    generation: int
    axis: int
    shape: tuple[int, int, int]
    dtype: np.dtype
    object_id: int
    records: list[ClickRecord]
    tiles: dict[F.TileKey, np.ndarray]
    fingerprints: np.ndarray | None
    info: dict = field(default_factory=dict)
    torn: bool = False
    state: StoredState | None = field(default=None, repr=False)

    @property
    def planes(self) -> list[int]:
        """The planes the store holds labels of."""
        return sorted({key[0] for key in self.tiles})

    def apply(self, labels) -> list[int]:
        """Write the stored tiles into ``labels`` (``shape``, any integer dtype that holds the
        stored ids; edited in place) and return the planes whose other tiles do not look like
        those the annotation started from (by their sampled fingerprints: none when
        ``labels`` held the labels the annotation started from)."""
        if tuple(labels.shape) != self.shape:
            raise AutosaveError(
                f"The autosave holds labels of shape {self.shape}, the labels are {labels.shape}."
            )
        limits = np.iinfo(labels.dtype)
        for values in self.tiles.values():
            if values.size and (values.min() < limits.min or values.max() > limits.max):
                raise AutosaveError(
                    f"The autosaved ids do not fit {labels.dtype} labels: choose '<new>' or "
                    f"Labels of dtype {self.dtype}."
                )
        geometry = SliceGeometry(self.shape, self.axis)
        for key, values in sorted(self.tiles.items()):
            F.write_tile(labels, geometry, key, values)
        now = F.fingerprints(labels, geometry)
        if now is None or self.fingerprints is None:
            return []
        differ = now != self.fingerprints
        for key in self.tiles:
            differ[key] = False
        return [int(p) for p in np.flatnonzero(differ.any(axis=(1, 2)))]
