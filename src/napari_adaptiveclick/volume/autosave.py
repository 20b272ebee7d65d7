"""Autosave of a volume annotation: a crash-safe store of its click records and of the labels
of the planes its edits touched, keyed by the image, so that an annotation cut short by a
crash (or a kill) can be restored exactly.

A store is a folder (by default ``<image file>.adaptiveclick/autosave`` beside the image; see
:func:`~napari_adaptiveclick.volume.image_key.store_folders` for a folder the user chose and the per-user cache)::

    manifest.json                the commit point: what the store holds, with checksums
    clicks-g000012.csv           the click records (the format of ``volume.records``, so
                                 ``napari-adaptiveclick segment --clicks`` replays them)
    planes/p00002-g000012.npz    the labels of plane 2 along ``axis``: key "labels", (rows, cols)

A write puts every new file under a new name (its generation), each written to a temporary
file, fsynced and renamed, and only then replaces ``manifest.json`` the same way; the files
the new manifest no longer names are removed after. A kill at any moment therefore leaves the
previous or the new manifest, each naming complete files. Reading checks the manifest's own
checksum, each file's SHA-256, shapes, dtypes and the image key, and raises
:class:`AutosaveError` rather than load part of a store.

Restoring writes the stored planes into the labels the annotation started from (the Labels
it was made on, or zeros). The manifest keeps a digest of every plane, so that
:meth:`AutosaveSnapshot.apply` names the planes where the result is not the saved state.
napari is never imported here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from napari_adaptiveclick.volume.image_key import SIDECAR_SUFFIX, ImageKey
from napari_adaptiveclick.volume.records import ClickRecord, read_click_records, write_click_records
from napari_adaptiveclick.volume.slicing import SliceGeometry

FORMAT = "napari-adaptiveclick autosave"
VERSION = 1
MANIFEST = "manifest.json"


class AutosaveError(ValueError):
    """A store that cannot be loaded as it is: damaged, partial, or of another image."""


def plane_digest(plane: np.ndarray) -> str:
    """SHA-256 of a plane's values (C order, its own dtype)."""
    return hashlib.sha256(np.ascontiguousarray(plane).tobytes()).hexdigest()


@dataclass
class AutosaveSnapshot:
    """A store as read (all checked): ``saved`` (seconds since the epoch), the click
    ``records``, the current ``object_id``, and ``planes``: plane -> (rows, cols) labels along
    ``axis`` of a ``shape`` labels volume of ``dtype``; ``digests``: of every plane as saved."""

    folder: Path
    saved: float
    generation: int
    axis: int
    shape: tuple[int, int, int]
    dtype: np.dtype
    object_id: int
    records: list[ClickRecord]
    planes: dict[int, np.ndarray]
    digests: list[str]
    info: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict, repr=False)

    def apply(self, labels: np.ndarray) -> list[int]:
        """Write the stored planes into ``labels`` (``shape``, any integer dtype that holds
        the stored ids; edited in place) and return the planes that then differ from the
        saved state (none when ``labels`` held the labels the annotation started from)."""
        if tuple(labels.shape) != self.shape:
            raise AutosaveError(
                f"The autosave holds labels of shape {self.shape}, the labels are {labels.shape}."
            )
        limits = np.iinfo(labels.dtype)
        for values in self.planes.values():
            if values.size and (values.min() < limits.min or values.max() > limits.max):
                raise AutosaveError(
                    f"The autosaved ids do not fit {labels.dtype} labels: choose '<new>' or "
                    f"Labels of dtype {self.dtype}."
                )
        geometry = SliceGeometry(self.shape, self.axis)
        for plane, values in sorted(self.planes.items()):
            labels[geometry.index(plane)] = values
        return [
            p
            for p in range(geometry.planes)
            if plane_digest(labels[geometry.index(p)].astype(self.dtype)) != self.digests[p]
        ]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checksum(manifest: dict) -> str:
    return _sha256(json.dumps(manifest, sort_keys=True).encode())


def _fsync_folder(folder: Path) -> None:
    if os.name == "posix":
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _write_atomic(path: Path, write: Callable[[Path], None], unless: str = "") -> str:
    """Write ``path`` through a temporary file in its folder (``write(temporary)``, fsync,
    rename over ``path``) and return the SHA-256 of its contents; when that is ``unless``,
    nothing is renamed (the file would be the same)."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        with temporary.open("rb+") as stream:
            os.fsync(stream.fileno())
        digest = _sha256(temporary.read_bytes())
        if digest == unless:
            temporary.unlink()
        else:
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return digest


def _npz_writer(values: np.ndarray) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as stream:  # a file object: numpy would add ".npz" to a name
            np.savez_compressed(stream, labels=values)

    return write


class AutosaveStore:
    """The store in ``folder`` of the image ``key``: :meth:`write` after each edit, :meth:`read`
    to restore, :meth:`set_aside` or :meth:`clear` when it is no longer wanted. One writer per
    store; it starts a new store, or continues the one it read (:meth:`continue_from`)."""

    def __init__(self, folder: str | os.PathLike, key: ImageKey) -> None:
        self.folder, self.key = Path(folder), key
        self._manifest: dict | None = None  # what the last write (or the continued read) left
        self._records: list[ClickRecord] | None = None  # the records in its clicks file

    @property
    def exists(self) -> bool:
        return (self.folder / MANIFEST).is_file()

    @property
    def generation(self) -> int:
        """Generation of the last write (0 before the first)."""
        return 0 if self._manifest is None else int(self._manifest["generation"])

    # ------------------------------------------------------------------ writing
    def continue_from(self, snapshot: AutosaveSnapshot) -> None:
        """Write on from ``snapshot`` (read from this store) instead of starting a new store."""
        self._manifest, self._records = dict(snapshot.manifest), list(snapshot.records)

    def write(
        self,
        labels: np.ndarray,
        axis: int,
        records: Sequence[ClickRecord],
        object_id: int,
        touched: Iterable[int],
        info: dict | None = None,
    ) -> bool:
        """Save the state after an edit: the click ``records``, the current ``object_id``
        and the labels of the ``touched`` planes along ``axis`` of ``labels`` (``(P, R, C)``
        integers) that changed since the last write, and ``info`` (JSON; default: the last
        one). False when nothing changed. The first
        write of a store (or one with another axis or shape) digests every plane; one with
        another axis or shape also saves every plane that holds labels."""
        geometry = SliceGeometry(tuple(labels.shape), axis)
        old = self._manifest
        if old is None and self.exists:
            raise AutosaveError(f"{self.folder} holds an autosave already: set it aside first.")
        shape, dtype = list(labels.shape), np.dtype(labels.dtype).str
        base = {"axis": axis, "shape": shape, "dtype": dtype}
        same_base = old is not None and all(old["labels"][k] == v for k, v in base.items())
        if same_base:
            digests, entries = list(old["labels"]["planes"]), dict(old["planes"])
            touched = sorted({int(p) for p in touched})
        else:
            digests = [plane_digest(labels[geometry.index(p)]) for p in range(geometry.planes)]
            entries, held = {}, set(touched)
            if old is not None:  # a new base for an annotation in progress: keep all of it
                held |= {p for p in range(geometry.planes) if labels[geometry.index(p)].any()}
            touched = sorted(held)
        generation = (0 if old is None else int(old["generation"])) + 1
        (self.folder / "planes").mkdir(parents=True, exist_ok=True)
        written = False
        for plane in touched:
            values = np.ascontiguousarray(labels[geometry.index(plane)])
            digest = plane_digest(values)
            if same_base and digest == digests[plane]:
                continue
            name = f"planes/p{plane:05d}-g{generation:06d}.npz"
            entries[str(plane)] = {"file": name, "sha256": "", "generation": generation}
            entries[str(plane)]["sha256"] = _write_atomic(self.folder / name, _npz_writer(values))
            digests[plane], written = digest, True
        clicks = old["clicks"] if old is not None else {"sha256": ""}
        if old is None or list(records) != self._records:
            name = f"clicks-g{generation:06d}.csv"
            sha = _write_atomic(
                self.folder / name,
                lambda path: write_click_records(path, records),
                clicks["sha256"],
            )
            if sha != clicks["sha256"]:
                clicks, written = {"file": name, "sha256": sha, "count": len(records)}, True
        if same_base and not written and int(old["object_id"]) == int(object_id):
            return False
        now = time.time()
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "generation": generation,
            "saved": now,
            "saved_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
            "image": {**asdict(self.key), "shape": list(self.key.shape)},
            "labels": {**base, "planes": digests},
            "object_id": int(object_id),
            "clicks": clicks,
            "planes": entries,
            "info": dict(info if info is not None else (old or {}).get("info", {})),
        }
        _fsync_folder(self.folder / "planes")
        text = json.dumps({**manifest, "checksum": _checksum(manifest)}, indent=1).encode()
        _write_atomic(self.folder / MANIFEST, lambda path: path.write_bytes(text))
        _fsync_folder(self.folder)
        self._manifest, self._records = manifest, list(records)
        self._remove_unlisted(manifest)
        return True

    def _remove_unlisted(self, manifest: dict) -> None:
        """Remove what the manifest does not name: older generations, temporary files left
        by a writer that was killed."""
        listed = {MANIFEST, manifest["clicks"]["file"]}
        listed |= {entry["file"] for entry in manifest["planes"].values()}
        for path in [*self.folder.glob("*"), *self.folder.glob("planes/*")]:
            name = path.relative_to(self.folder).as_posix()
            if path.is_file() and name not in listed:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading
    def read(self) -> AutosaveSnapshot:
        """The store, checked whole. FileNotFoundError when there is none; AutosaveError
        (saying what is wrong; nothing is loaded) when it is damaged, partial or of another
        image."""
        path = self.folder / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"No autosave in {self.folder}.")
        where = f"The autosave in {self.folder}"
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
        if manifest.pop("checksum", None) != _checksum(manifest):
            raise AutosaveError(
                f"{where} is damaged: the checksum of {MANIFEST} does not match its contents."
            )
        try:
            key = ImageKey.from_json(manifest["image"])
            spec = manifest["labels"]
            shape, dtype = tuple(int(n) for n in spec["shape"]), np.dtype(spec["dtype"])
            geometry = SliceGeometry(shape, int(spec["axis"]))
            digests = [str(d) for d in spec["planes"]]
            entries = {int(p): entry for p, entry in manifest["planes"].items()}
            clicks = manifest["clicks"]
        except (KeyError, TypeError, ValueError) as error:
            raise AutosaveError(f"{where} is incomplete: {MANIFEST} lacks {error}.") from None
        differences = self.key.differences(key)
        if differences:
            raise AutosaveError(
                f"{where} was made for a different image ({'; '.join(differences)})."
            )
        if len(digests) != geometry.planes:
            raise AutosaveError(f"{where} is damaged: it lists {len(digests)} plane digests.")
        self._verified(clicks["file"], clicks["sha256"])
        planes = {}
        try:
            records = read_click_records(self.folder / clicks["file"])
            for plane, entry in sorted(entries.items()):
                data = self._verified(entry["file"], entry["sha256"])
                with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                    planes[plane] = archive["labels"]
        except AutosaveError:
            raise
        except (KeyError, OSError, ValueError, zipfile.BadZipFile) as error:
            raise AutosaveError(f"{where} is damaged: {error}") from None
        for plane, entry in sorted(entries.items()):
            values = planes[plane]
            if values.shape != geometry.slice_shape or values.dtype != dtype:
                raise AutosaveError(
                    f"{where} is damaged: {entry['file']} holds {values.dtype} {values.shape}, "
                    f"not {dtype} {geometry.slice_shape}."
                )
            if not 0 <= plane < geometry.planes or plane_digest(values) != digests[plane]:
                raise AutosaveError(f"{where} is damaged: {entry['file']} is not plane {plane}.")
        return AutosaveSnapshot(
            self.folder,
            float(manifest["saved"]),
            int(manifest["generation"]),
            geometry.axis,
            shape,
            dtype,
            int(manifest["object_id"]),
            records,
            planes,
            digests,
            dict(manifest.get("info") or {}),
            manifest,
        )

    def _verified(self, name: str, sha256: str) -> bytes:
        path = self.folder / name
        if not path.is_file():
            raise AutosaveError(
                f"The autosave in {self.folder} is partial: {name}, listed in its manifest, "
                "is missing."
            )
        data = path.read_bytes()
        if _sha256(data) != sha256:
            raise AutosaveError(
                f"The autosave in {self.folder} is damaged: {name} does not match the "
                "checksum in its manifest."
            )
        return data

    # ------------------------------------------------------------------ ending
    def set_aside(self, reason: str) -> Path:
        """Rename the store out of the way (nothing is deleted) and return where it went; a
        new store can then start in :attr:`folder`."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.folder.with_name(f"{self.folder.name}.{reason}-{stamp}")
        count = 1
        while target.exists():
            count += 1
            target = self.folder.with_name(f"{self.folder.name}.{reason}-{stamp}-{count}")
        self.folder.rename(target)
        self._manifest = self._records = None
        return target

    def clear(self) -> None:
        """Delete the store (the labels are saved elsewhere), and the sidecar folder of the
        image if nothing else is left in it."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._manifest = self._records = None
        if self.folder.parent.name.endswith(SIDECAR_SUFFIX):
            try:
                self.folder.parent.rmdir()
            except OSError:
                pass
