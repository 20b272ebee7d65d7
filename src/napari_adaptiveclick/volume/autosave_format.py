"""The parts an autosave store is made of (:mod:`napari_adaptiveclick.volume.autosave`):
tiles, sampled fingerprints, packed files, journal segments and atomic file writes.

- A plane (``(rows, cols)`` along the slicing axis) is cut into :data:`TILE` x :data:`TILE`
  tiles (clipped at its edges); a tile is keyed ``(plane, tile_row, tile_col)``.
- :func:`fingerprints`: one 64-bit number per tile from the values on a grid of every
  :data:`SAMPLE`-th row and column (1/256 of the pixels), weighted by seeded random numbers:
  cheap for a whole volume, so that a restore onto other labels is noticed, but a difference
  of a few pixels between the sample points may go unnoticed.
- :func:`pack` / :func:`unpack`: a zip of ``meta.json`` and ``.npy`` members (deflated), the
  format of both a store's base file and its journal segments' payloads.
- A journal is a file of segments appended one per write: :data:`MAGIC`, the payload's
  length (8 bytes, little endian), its SHA-256, then the payload. :func:`read_segments` tells
  a torn last segment (a write cut short by a kill: left out) from damage (refused).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.volume.slicing import SliceGeometry

TILE = 256  # tile side in pixels (a multiple of SAMPLE)
SAMPLE = 16  # fingerprints read every SAMPLE-th row and column
MAGIC = b"ACJ1"
_HEADER = struct.Struct("<4sQ32s")  # magic, payload length, payload SHA-256

TileKey = tuple[int, int, int]  # (plane, tile row, tile col)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tile_digest(values: np.ndarray) -> str:
    """A digest of a tile's values (to skip writing a tile that did not change)."""
    return hashlib.blake2b(np.ascontiguousarray(values).tobytes(), digest_size=16).hexdigest()


def tile_grid(geometry: SliceGeometry) -> tuple[int, int]:
    """Tiles per plane: (tile rows, tile cols)."""
    rows, cols = geometry.slice_shape
    return -(-rows // TILE), -(-cols // TILE)


def tile_box(geometry: SliceGeometry, key: TileKey) -> Box:
    """The pixels of tile ``key`` on its plane."""
    rows, cols = geometry.slice_shape
    _, r, c = key
    return Box(r * TILE, c * TILE, min((r + 1) * TILE, rows), min((c + 1) * TILE, cols))


def tiles_of(geometry: SliceGeometry, plane: int, box: Box | None = None) -> Iterator[TileKey]:
    """Keys of the tiles of ``plane`` that ``box`` overlaps (None: all of them)."""
    grid_rows, grid_cols = tile_grid(geometry)
    if box is None:
        rows, cols = range(grid_rows), range(grid_cols)
    else:
        if box.height <= 0 or box.width <= 0:
            return
        rows = range(max(box.top, 0) // TILE, min(-(-box.bottom // TILE), grid_rows))
        cols = range(max(box.left, 0) // TILE, min(-(-box.right // TILE), grid_cols))
    for r in rows:
        for c in cols:
            yield plane, r, c


def read_tile(labels, geometry: SliceGeometry, key: TileKey) -> np.ndarray:
    """A copy of the labels of tile ``key`` (``labels``: numpy or a lazy array)."""
    b = tile_box(geometry, key)
    return np.array(labels[geometry.index(key[0])][b.top : b.bottom, b.left : b.right])


def write_tile(labels, geometry: SliceGeometry, key: TileKey, values: np.ndarray) -> None:
    b = tile_box(geometry, key)
    labels[geometry.index(key[0])][b.top : b.bottom, b.left : b.right] = values


# ---------------------------------------------------------------------- fingerprints
@lru_cache(maxsize=4)
def _weights(rows: int, cols: int) -> np.ndarray:
    """Odd 64-bit weights of a plane's sample grid (seeded: the same in every run)."""
    rng = np.random.default_rng(20261202)
    return rng.integers(0, 2**62, (rows, cols), dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def _weighted(samples: np.ndarray, geometry: SliceGeometry, origin: tuple[int, int]):
    """(value + 1) * weight of ``samples`` (P, r, c), taken on the sample grid from
    ``origin`` (its row, col there), wrapping at 2**64."""
    per = TILE // SAMPLE
    grid_rows, grid_cols = tile_grid(geometry)
    top, left = origin
    _, rows, cols = samples.shape
    weights = _weights(grid_rows * per, grid_cols * per)[top : top + rows, left : left + cols]
    with np.errstate(over="ignore"):
        return (samples.astype(np.uint64) + np.uint64(1)) * weights


def fingerprints(labels, geometry: SliceGeometry) -> np.ndarray | None:
    """(planes, tile rows, tile cols) uint64 fingerprints of every tile (see the module);
    None for labels not in memory (their sample would be read chunk by chunk, all of it)."""
    if not isinstance(labels, np.ndarray):
        return None
    step = [slice(None)] * 3
    for axis in range(3):
        if axis != geometry.axis:
            step[axis] = slice(None, None, SAMPLE)
    values = _weighted(np.moveaxis(labels[tuple(step)], geometry.axis, 0), geometry, (0, 0))
    per, (grid_rows, grid_cols) = TILE // SAMPLE, tile_grid(geometry)
    planes, rows, cols = values.shape
    padded = np.zeros((planes, grid_rows * per, grid_cols * per), np.uint64)
    padded[:, :rows, :cols] = values
    folded = padded.reshape(planes, grid_rows, per, grid_cols, per)
    return folded.sum(axis=(2, 4), dtype=np.uint64)


def tile_fingerprint(values: np.ndarray, geometry: SliceGeometry, key: TileKey) -> int:
    """The fingerprint of tile ``key`` holding ``values``, as :func:`fingerprints` has it."""
    per = TILE // SAMPLE
    sampled = values[None, ::SAMPLE, ::SAMPLE]
    return int(_weighted(sampled, geometry, (key[1] * per, key[2] * per)).sum(dtype=np.uint64))


# ---------------------------------------------------------------------- packed files
def tile_name(key: TileKey) -> str:
    return f"t{key[0]}_{key[1]}_{key[2]}.npy"


def pack(meta: dict, arrays: Iterable[tuple[str, np.ndarray]], stream) -> None:
    """Write ``meta`` (JSON) and ``arrays`` ((name, values) pairs: ``name`` ends in .npy,
    taken one at a time) as a zip to ``stream``."""
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("meta.json", json.dumps(meta))
        for name, values in arrays:
            with archive.open(name, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(values), allow_pickle=False)


def pack_bytes(meta: dict, arrays: Iterable[tuple[str, np.ndarray]]) -> bytes:
    stream = io.BytesIO()
    pack(meta, arrays, stream)
    return stream.getvalue()


def unpack(archive: zipfile.ZipFile) -> dict:
    """The ``meta.json`` of a packed file."""
    return json.loads(archive.read("meta.json").decode("utf-8"))


def read_array(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with archive.open(name) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


# ---------------------------------------------------------------------- journal
def segment(payload: bytes) -> bytes:
    """A journal segment holding ``payload``."""
    return _HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest()) + payload


def read_segments(data: bytes) -> tuple[list[bytes], int, bool]:
    """The payloads of the whole segments of a journal's ``data``, the length they span, and
    whether a torn segment follows: a write cut short, which ends the journal (incomplete,
    zeros, or the last segment not matching its checksum). Raises ValueError for damage
    (a bad segment that more data follows, a header that is not one)."""
    payloads, at = [], 0
    while at < len(data):
        header = data[at : at + _HEADER.size]
        if len(header) < _HEADER.size:
            return payloads, at, True
        magic, length, digest = _HEADER.unpack(header)
        if magic != MAGIC:
            if not data[at:].strip(b"\0"):  # zeros where a write was cut short
                return payloads, at, True
            raise ValueError(f"segment {len(payloads) + 1} has no valid header")
        end = at + _HEADER.size + length
        body = data[at + _HEADER.size : end]
        if len(body) < length:
            return payloads, at, True
        if hashlib.sha256(body).digest() != digest:
            if end == len(data):
                return payloads, at, True
            raise ValueError(f"segment {len(payloads) + 1} does not match its checksum")
        payloads.append(body)
        at = end
    return payloads, at, False


# ---------------------------------------------------------------------- files
def fsync_folder(folder: Path) -> None:
    if os.name == "posix":
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def write_atomic(path: Path, write: Callable[[object], None]) -> str:
    """Write ``path`` through a temporary file in its folder (``write(stream)``, fsync, rename
    over ``path``); returns the SHA-256 of its contents."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb+") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
            stream.seek(0)
            digest = hashlib.sha256()
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def append_durably(path: Path, data: bytes, length: int) -> int:
    """Append ``data`` to ``path`` at ``length`` (what is after it, a torn write, is cut off
    first) and fsync; returns the new length. On failure the file is cut back to
    ``length`` where possible, and the error raised."""
    with path.open("r+b") as stream:
        try:
            stream.truncate(length)
            stream.seek(length)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        except BaseException:
            try:
                stream.truncate(length)
            except OSError:
                pass
            raise
    return length + len(data)


def remove_all(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
