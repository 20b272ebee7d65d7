"""Autosave of a volume annotation: a crash-safe store of its click records and of the labels
its edits changed, keyed by the image, so that an annotation cut short by a crash (or a kill)
can be restored exactly. What an edit costs is what it changed, whatever the volume's size.

A store is a folder (by default ``<image file>.adaptiveclick/autosave`` beside the image; see
:func:`~napari_adaptiveclick.volume.image_key.store_folders` for a folder the user chose and
the per-user cache)::

    manifest.json            the commit point: the image, the labels' shape, dtype and
                             slicing axis, the base file (with its SHA-256) and the journal
    base-g000012.npz         the state at generation 12: click records, object id, settings,
                             the labels of the tiles held (256 x 256 px of a plane along the
                             axis) and the fingerprints of the labels the annotation started from
    journal-g000012.log      one segment per later write: the tiles that changed, the records
                             added after those kept, the object id (each with its SHA-256)

A write appends one segment and fsyncs the journal: a kill leaves every earlier segment
whole, and at most the segment being written torn, which reading leaves out
(:attr:`AutosaveSnapshot.torn`) and the next write cuts off. When the journal outgrows the
base (and :attr:`AutosaveStore.compact_bytes`), the next write makes a new base (a new
file, fsynced, then a new manifest renamed over the old one): a kill leaves the old or the
new manifest, each naming complete files. Reading checks the manifest's checksum, each
file's and segment's SHA-256, shapes, dtypes and the image key, and raises
:class:`AutosaveError` rather than load part of a store. Tiles are read and written only
where an edit changed the labels (``changes``: plane -> box); restoring writes the stored
tiles into the labels the annotation started from, and the base's sampled fingerprints
(:func:`~.autosave_format.fingerprints`) name the planes where those labels look different.
:meth:`AutosaveStore.save_later` hands the writing to a background thread
(:class:`~.autosave_queue.CommitQueue`); napari is never imported here.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.volume import autosave_format as F
from napari_adaptiveclick.volume.autosave_queue import CommitQueue
from napari_adaptiveclick.volume.autosave_state import (
    MANIFEST,
    AutosaveError,
    AutosaveSnapshot,
    PendingWrite,
    StoredState,
    kept_records,
    new_manifest,
    open_state,
    same_records,
    write_manifest,
)
from napari_adaptiveclick.volume.image_key import SIDECAR_SUFFIX, ImageKey
from napari_adaptiveclick.volume.records import ClickRecord, record_dict
from napari_adaptiveclick.volume.slicing import SliceGeometry

__all__ = ["AutosaveError", "AutosaveSnapshot", "AutosaveStore"]

Changes = Mapping[int, Box | None] | Iterable[int]  # plane -> changed box (None: all), or planes


class AutosaveStore:
    """The store in ``folder`` of the image ``key``: :meth:`write` (or :meth:`save_later`)
    after each edit, :meth:`read` to restore, :meth:`set_aside` or :meth:`clear` when it is
    no longer wanted. One writer per store; it starts a new store, or continues the one it
    read (:meth:`continue_from`)."""

    compact_bytes = 32 << 20  # a journal this long (and longer than the base) is compacted

    def __init__(self, folder: str | Path, key: ImageKey) -> None:
        self.folder, self.key = Path(folder), key
        self._queue = CommitQueue(self.commit)
        self._reset()

    def _reset(self) -> None:
        # what the files hold (used by commit, which may run in the queue's thread)
        self._manifest: dict | None = None
        self._generation, self._journal_length, self._base_bytes = 0, 0, 0
        self._records: list[ClickRecord] = []
        self._object_id, self._info = 0, {}
        self._broken = False  # the journal's end is unknown: the next write makes a base
        # what the writes prepared so far will hold (used by prepare, on the caller's thread)
        self._spec: dict | None = None
        self._fingerprints: np.ndarray | None = None
        self._digests: dict[F.TileKey, str] = {}
        self._prepared: tuple[list[ClickRecord], int, dict] = ([], 0, {})

    @property
    def exists(self) -> bool:
        return (self.folder / MANIFEST).is_file()

    @property
    def generation(self) -> int:
        """Generation of the last write made (0 before the first)."""
        return self._generation

    @property
    def started(self) -> bool:
        """True once a write was prepared (or the store continued): the next ones go on."""
        return self._spec is not None

    @property
    def busy(self) -> bool:
        """True while a write handed to :meth:`save_later` is not yet made."""
        return self._queue.busy

    @property
    def error(self) -> Exception | None:
        """Why the last background write failed (None: it did not); it is tried again."""
        return self._queue.error

    def flush(self) -> bool:
        """Make the writes handed to :meth:`save_later`; False when one failed."""
        return self._queue.flush()

    # ------------------------------------------------------------------ writing
    def continue_from(self, snapshot: AutosaveSnapshot) -> None:
        """Write on from ``snapshot`` (read from this store) instead of starting a new store."""
        self.flush()
        self._reset()
        state = snapshot.state
        self._manifest, self._generation = dict(state.manifest), state.generation
        self._journal_length, self._base_bytes = state.journal_length, state.base_bytes
        self._records, self._object_id = list(state.records), state.object_id
        self._info = dict(state.info)
        self._spec = dict(state.manifest["labels"])
        self._fingerprints = snapshot.fingerprints
        self._digests = {key: F.tile_digest(v) for key, v in snapshot.tiles.items()}
        self._prepared = (list(state.records), state.object_id, dict(state.info))
        self._remove_unlisted()

    def write(
        self,
        labels,
        axis: int,
        records: Sequence[ClickRecord],
        object_id: int,
        touched: Changes,
        info: dict | None = None,
    ) -> bool:
        """Save the state after an edit now: see :meth:`prepare`. False when nothing changed."""
        self.flush()
        new = self._spec is None
        pending = self.prepare(labels, axis, records, object_id, touched, info)
        if pending is None:
            return False
        try:
            self.commit(pending)
        except BaseException:
            if new:  # a first write that failed leaves nothing behind
                self._reset()
            raise
        return True

    def save_later(self, labels, axis, records, object_id, touched: Changes, info=None) -> bool:
        """:meth:`prepare` now (the changed tiles are copied), write in the background
        (writes waiting behind one in progress are made as one). False: nothing changed."""
        pending = self.prepare(labels, axis, records, object_id, touched, info)
        if pending is not None:
            self._queue.submit(pending)
        return pending is not None

    def prepare(
        self,
        labels,
        axis: int,
        records: Sequence[ClickRecord],
        object_id: int,
        touched: Changes,
        info: dict | None = None,
    ) -> PendingWrite | None:
        """The write of the state after an edit: the click ``records``, the current
        ``object_id``, the tiles of ``labels`` (``(P, R, C)`` integers, numpy or lazy; planes
        along ``axis``) that ``touched`` says changed (plane -> changed box, None or a bare
        plane number: anything on it may have changed) and differ from what is stored, and
        ``info`` (JSON; default: the last one). None when nothing changed. The first write
        of a store (or one with another axis or shape) also takes the fingerprints of every
        tile (1/256 of the pixels); one with another axis or shape saves every plane that
        holds labels."""
        geometry = SliceGeometry(tuple(int(n) for n in labels.shape), axis)
        dtype = np.dtype(labels.dtype).str
        spec = {"axis": axis, "shape": list(geometry.shape), "dtype": dtype, "tile": F.TILE}
        base = self._spec != spec
        if base and self._spec is None and self.exists and self._manifest is None:
            raise AutosaveError(f"{self.folder} holds an autosave already: set it aside first.")
        changes = dict(touched) if isinstance(touched, Mapping) else dict.fromkeys(touched)
        if base and self._spec is not None:  # a new base for an annotation in progress
            held = (p for p in range(geometry.planes) if np.any(labels[geometry.index(p)]))
            changes.update(dict.fromkeys(held))
        fingerprints = F.fingerprints(labels, geometry) if base else self._fingerprints
        digests = {} if base else self._digests
        tiles = {}
        for key, whole in self._candidate_tiles(geometry, changes):
            values = F.read_tile(labels, geometry, key)
            digest = F.tile_digest(values)
            if digests.get(key) == digest:
                continue
            if whole and key not in digests and not values.any():  # nothing there: skipped,
                if fingerprints is None or base:  # unless the start had labels there
                    continue
                if int(fingerprints[key]) == F.tile_fingerprint(values, geometry, key):
                    continue
            tiles[key], digests[key] = values, digest
        records = list(records)
        old_records, old_object, old_info = self._prepared
        info = old_info if info is None else dict(info)
        if (
            not base
            and not tiles
            and same_records(old_records, records)
            and object_id == old_object
            and info == old_info
        ):
            return None
        self._spec, self._fingerprints, self._digests = spec, fingerprints, digests
        self._prepared = (records, int(object_id), info)
        given = info if base or info != old_info else None
        return PendingWrite(
            base, geometry, dtype, tiles, records, int(object_id), given, fingerprints, time.time()
        )

    @staticmethod
    def _candidate_tiles(geometry: SliceGeometry, changes: dict) -> Iterator[tuple]:
        for plane, box in sorted(changes.items()):
            if 0 <= plane < geometry.planes:
                for key in F.tiles_of(geometry, plane, box):
                    yield key, box is None

    def commit(self, pending: PendingWrite) -> None:
        """Make ``pending`` (from :meth:`prepare`, in order): a journal segment, or a new base
        when it is one, the journal's end is unknown, or the journal outgrew the base."""
        if pending.base:
            self._write_base(pending, None)
            return
        if self._manifest is None:
            raise AutosaveError("A write of this store came before its first one.")
        if self._broken:
            self._write_base(pending, self._stored())
            return
        generation = self._generation + 1
        keep = kept_records(self._records, pending.records)
        meta = {
            "generation": generation,
            "saved": pending.saved,
            "object_id": pending.object_id,
            "keep": keep,
            "records": [record_dict(r) for r in pending.records[keep:]],
            "tiles": [list(key) for key in pending.tiles],
        }
        if pending.info is not None:
            meta["info"] = pending.info
        arrays = ((F.tile_name(k), v) for k, v in pending.tiles.items())
        data = F.segment(F.pack_bytes(meta, arrays))
        journal = self.folder / self._manifest["journal"]
        try:
            self._journal_length = F.append_durably(journal, data, self._journal_length)
        except BaseException:
            self._broken = True
            raise
        self._generation, self._records = generation, list(pending.records)
        self._object_id = pending.object_id
        self._info = pending.info if pending.info is not None else self._info
        if self._journal_length >= max(self._base_bytes, self.compact_bytes):
            try:
                self._write_base(None, self._stored())
            except (OSError, AutosaveError):  # the segment is written: compact another time
                pass

    def _stored(self) -> StoredState:
        return open_state(self.folder, None, self._journal_length)

    def _write_base(self, pending: PendingWrite | None, stored: StoredState | None) -> None:
        """A new base: the state of ``stored`` (the files so far; None: nothing) with
        ``pending`` (None: nothing more, the same generation) over it, then a new manifest."""
        generation = self._generation + (pending is not None)
        geometry = pending.geometry if pending is not None else stored.geometry
        records = list(pending.records) if pending else self._records
        object_id = pending.object_id if pending else self._object_id
        info = pending.info if pending and pending.info is not None else self._info
        if pending is not None and pending.base:
            fingerprints = pending.fingerprints
        else:
            fingerprints = stored.fingerprints
        new = dict(pending.tiles) if pending is not None else {}
        carried = [] if stored is None else [k for k in stored.members if k not in new]
        meta = {
            "generation": generation,
            "saved": pending.saved if pending else time.time(),
            "object_id": object_id,
            "records": [record_dict(r) for r in records],
            "info": info,
            "tiles": [list(k) for k in [*new, *carried]],
        }

        def arrays() -> Iterator[tuple[str, np.ndarray]]:
            if fingerprints is not None:
                yield "fingerprints.npy", fingerprints
            yield from ((F.tile_name(k), v) for k, v in new.items())
            yield from ((F.tile_name(k), stored.tile(k)) for k in carried)

        self.folder.mkdir(parents=True, exist_ok=True)
        base_name, journal_name = f"base-g{generation:06d}.npz", f"journal-g{generation:06d}.log"
        base_sha = F.write_atomic(self.folder / base_name, lambda s: F.pack(meta, arrays(), s))
        F.write_atomic(self.folder / journal_name, lambda s: None)
        dtype = pending.dtype if pending is not None else stored.dtype.str
        manifest = new_manifest(self.key, generation, geometry, dtype, base_name, base_sha)
        manifest["journal"] = journal_name
        F.fsync_folder(self.folder)
        write_manifest(self.folder, manifest)
        self._manifest, self._generation, self._broken = manifest, generation, False
        self._journal_length = 0
        self._base_bytes = (self.folder / base_name).stat().st_size
        self._records, self._object_id, self._info = records, object_id, info
        self._remove_unlisted()

    def _remove_unlisted(self) -> None:
        """Remove what the manifest does not name: older generations, temporary files left
        by a writer that was killed."""
        listed = {MANIFEST, self._manifest["base"]["file"], self._manifest["journal"]}
        for path in self.folder.iterdir():
            if path.is_file() and path.name not in listed:
                path.unlink(missing_ok=True)
            elif path.is_dir() and path.name == "planes":  # the layout of version 1
                shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------------ reading
    def read(self) -> AutosaveSnapshot:
        """The store, checked whole. FileNotFoundError when there is none; AutosaveError
        (saying what is wrong; nothing is loaded) when it is damaged, partial or of another
        image."""
        self.flush()
        state = open_state(self.folder, self.key)
        tiles = {key: state.tile(key) for key in sorted(state.members)}
        geometry = state.geometry
        return AutosaveSnapshot(
            self.folder,
            state.saved,
            state.generation,
            geometry.axis,
            geometry.shape,
            state.dtype,
            state.object_id,
            list(state.records),
            tiles,
            state.fingerprints,
            dict(state.info),
            state.torn,
            state,
        )

    # ------------------------------------------------------------------ ending
    def set_aside(self, reason: str) -> Path:
        """Rename the store out of the way (nothing is deleted) and return where it went; a
        new store can then start in :attr:`folder`."""
        self.flush()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.folder.with_name(f"{self.folder.name}.{reason}-{stamp}")
        count = 1
        while target.exists():
            count += 1
            target = self.folder.with_name(f"{self.folder.name}.{reason}-{stamp}-{count}")
        self.folder.rename(target)
        self._reset()
        return target

    def clear(self) -> None:
        """Delete the store (the labels are saved elsewhere), and the sidecar folder of the
        image if nothing else is left in it."""
        self.flush()
        shutil.rmtree(self.folder, ignore_errors=True)
        self._reset()
        if self.folder.parent.name.endswith(SIDECAR_SUFFIX):
            try:
                self.folder.parent.rmdir()
            except OSError:
                pass
