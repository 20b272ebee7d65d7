"""The autosave store alone (napari-free): atomic writes, a writer killed mid-write, damaged
stores refused with a clear message, another image never matched, where stores live; a write
costs the tiles an edit changed, whatever the image's size; compaction; background writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_adaptiveclick.interactive.transforms import Box
from napari_adaptiveclick.volume import autosave_format
from napari_adaptiveclick.volume.autosave import AutosaveError, AutosaveStore
from napari_adaptiveclick.volume.autosave_state import open_state
from napari_adaptiveclick.volume.image_key import ImageKey, store_folders
from napari_adaptiveclick.volume.records import ClickRecord


def click(plane: int, order: int, object_id: int = 1) -> ClickRecord:
    return ClickRecord(plane, 10.0 + order, 12.5, True, object_id, order, "tiny", 0)


@pytest.fixture
def image_file(tmp_path) -> tuple[Path, np.ndarray]:
    image = np.random.default_rng(0).integers(0, 255, (6, 24, 20), dtype=np.uint8)
    path = tmp_path / "stack.tif"
    path.write_bytes(image.tobytes())  # the store only needs the file's size and path
    return path, image


def new_store(image_file) -> AutosaveStore:
    path, image = image_file
    key = ImageKey.of(image, path)
    return AutosaveStore(store_folders(key)[0], key)


def test_write_read_apply_and_undo(image_file):
    store = new_store(image_file)
    assert store.folder == Path(f"{image_file[0]}.adaptiveclick") / "autosave"
    labels = np.zeros((6, 24, 20), np.int32)
    labels[2, 3:9, 4:10] = 1
    assert store.write(labels, 0, [click(2, 0)], 1, touched=[2], info={"model": "tiny"})
    assert not store.write(labels, 0, [click(2, 0)], 1, touched=[2])  # nothing changed
    labels[4, :5, :5] = 2
    records = [click(2, 0), click(4, 1, 2)]
    assert store.write(labels, 0, records, 2, touched=[4])
    before_undo = labels.copy()
    labels[4] = 0  # the undo of the last click restores plane 4
    assert store.write(labels, 0, records[:1], 2, touched=[4])

    snapshot = AutosaveStore(store.folder, store.key).read()
    assert snapshot.generation == 3 and snapshot.object_id == 2 and snapshot.info["model"] == "tiny"
    assert snapshot.records == records[:1] and snapshot.planes == [2, 4] and not snapshot.torn
    restored = np.zeros_like(labels)
    assert snapshot.apply(restored) == []  # every plane as saved
    np.testing.assert_array_equal(restored, labels)
    assert not np.array_equal(restored, before_undo)

    names = sorted(p.relative_to(store.folder).as_posix() for p in store.folder.rglob("*"))
    assert names == [
        "base-g000001.npz",
        "journal-g000001.log",
        "manifest.json",
    ]  # no temporary files


def test_restore_onto_other_labels_names_the_planes_that_differ(image_file):
    store = new_store(image_file)
    base = np.zeros((6, 24, 20), np.uint16)
    base[0] = 7  # the labels the annotation started from
    labels = base.copy()
    labels[3, 1:4, 1:4] = 300
    store.write(labels, 0, [click(3, 0, 300)], 300, touched=[3])
    snapshot = store.read()
    onto_base = base.astype(np.int32)  # another dtype that holds the ids is fine
    assert snapshot.apply(onto_base) == []
    np.testing.assert_array_equal(onto_base, labels)
    onto_zeros = np.zeros((6, 24, 20), np.int32)
    assert snapshot.apply(onto_zeros) == [0]  # plane 0 of the base is not in the store
    with pytest.raises(AutosaveError, match="do not fit uint8"):
        snapshot.apply(np.zeros((6, 24, 20), np.uint8))
    with pytest.raises(AutosaveError, match="shape"):
        snapshot.apply(np.zeros((6, 24, 21), np.int32))


def test_another_axis_saves_every_labelled_plane(image_file):
    store = new_store(image_file)
    labels = np.zeros((6, 24, 20), np.int32)
    labels[1, 2:5, 2:5] = 1
    store.write(labels, 0, [click(1, 0)], 1, touched=[1])
    labels[:, 10, 3:6] = 2  # a click on plane 10 along axis 1
    record = ClickRecord(10, 2.0, 4.0, True, 2, 1, "tiny", 1)
    store.write(labels, 1, [click(1, 0), record], 2, touched=[10])
    snapshot = store.read()
    assert snapshot.axis == 1 and sorted(snapshot.planes) == [2, 3, 4, 10]
    restored = np.zeros_like(labels)
    assert snapshot.apply(restored) == []
    np.testing.assert_array_equal(restored, labels)


def damage(path: Path, at: int = -20) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_and_partial_stores_are_refused(image_file):
    store = new_store(image_file)
    labels = np.zeros((6, 24, 20), np.int32)
    labels[2, :4, :4] = 1
    store.write(labels, 0, [click(2, 0)], 1, touched=[2])
    manifest = store.folder / "manifest.json"
    good = manifest.read_bytes()
    plane = next(store.folder.glob("base-*.npz"))
    plane_bytes = plane.read_bytes()

    manifest.write_bytes(good.replace(b'"generation": 1', b'"generation": 3'))
    with pytest.raises(AutosaveError, match="checksum of manifest.json does not match"):
        store.read()
    manifest.write_bytes(good[: len(good) // 2])  # torn by hand
    with pytest.raises(AutosaveError, match="not valid JSON"):
        store.read()
    manifest.write_bytes(good)
    damage(plane)
    with pytest.raises(AutosaveError, match=rf"damaged: {plane.name} does not match"):
        store.read()
    plane.unlink()
    with pytest.raises(AutosaveError, match="partial: base-.* is missing"):
        store.read()
    plane.write_bytes(plane_bytes)
    assert store.read().tiles[(2, 0, 0)].sum() == 16

    for order in range(1, 4):  # three more writes: three journal segments
        labels[2, order, 10] = order
        store.write(labels, 0, [click(2, 0)], 1, touched={2: Box(order, 10, order + 1, 11)})
    journal = next(store.folder.glob("journal-*.log"))
    log = journal.read_bytes()
    journal.write_bytes(log[:-7])  # the last write cut short by a kill: left out
    snapshot = store.read()
    assert snapshot.torn and snapshot.generation == 3 and snapshot.tiles[(2, 0, 0)][3, 10] == 0
    middle = bytearray(log)
    middle[len(log) // 2] ^= 0xFF  # a segment with more after it: damage, not a kill
    journal.write_bytes(bytes(middle))
    with pytest.raises(AutosaveError, match="damaged: journal-.*does not match its checksum"):
        store.read()
    journal.write_bytes(log)
    assert store.read().tiles[(2, 0, 0)][3, 10] == 3
    with pytest.raises(AutosaveError, match="holds an autosave already"):
        AutosaveStore(store.folder, store.key).write(labels, 0, [], 1, touched=[])


def test_another_image_is_never_matched(image_file, tmp_path):
    path, image = image_file
    store = new_store(image_file)
    store.write(np.ones((6, 24, 20), np.int32), 0, [click(0, 0)], 1, touched=[0])
    changed = image.copy()
    changed[5, 0, 0] ^= 1  # the last plane is always in the sample
    other_keys = {
        "sample_sha256": ImageKey.of(changed, path),
        "shape": ImageKey.of(image[:5], path),
        "dtype": ImageKey.of(image.astype(np.uint16), path),
        "selection": ImageKey.of(image, path, selection="axis0-1"),
    }
    for field, key in other_keys.items():
        with pytest.raises(AutosaveError, match=f"made for a different image.*{field}"):
            AutosaveStore(store.folder, key).read()
    path.write_bytes(path.read_bytes() + b"x")  # the file itself changed
    with pytest.raises(AutosaveError, match="file_size"):
        AutosaveStore(store.folder, ImageKey.of(image, path)).read()

    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / path.name).write_bytes(path.read_bytes()[:-1])
    key = ImageKey.of(image, moved / path.name)
    assert key.path != store.key.path  # same image elsewhere: its sidecar still matches
    assert AutosaveStore(store.folder, key).read().object_id == 1


def test_where_stores_live(image_file, tmp_path, monkeypatch):
    path, image = image_file
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ADAPTIVECLICK_AUTOSAVE_DIR")  # conftest's per-test folder
    in_memory = ImageKey.of(image)  # no file: the per-user cache
    (folder,) = store_folders(in_memory)
    assert folder.parent == tmp_path / "cache" / "napari-adaptiveclick" / "autosave"
    key = ImageKey.of(image, path)
    beside, cache = store_folders(key)
    assert beside.parent.name == "stack.tif.adaptiveclick" and cache.name.startswith("stack-")
    assert cache != folder  # the path is part of the name
    (chosen,) = store_folders(key, root=tmp_path / "mine")
    assert chosen.parent == tmp_path / "mine"
    time_point = ImageKey.of(image, path, selection="axis0-1")
    assert store_folders(time_point)[0].name == "autosave-axis0-1"
    from napari_adaptiveclick.volume.image_key import PACKAGE

    sample = ImageKey.of(image, PACKAGE / "sample_data" / "em_stack.tif")
    (only,) = store_folders(sample)  # never into the installed package: the per-user cache
    assert only.parent == tmp_path / "cache" / "napari-adaptiveclick" / "autosave"


def test_set_aside_keeps_everything_and_clear_removes(image_file):
    store = new_store(image_file)
    store.write(np.ones((6, 24, 20), np.int32), 0, [click(0, 0)], 1, touched=[0])
    aside = store.set_aside("discarded")
    assert aside.parent == store.folder.parent and aside.name.startswith("autosave.discarded-")
    assert AutosaveStore(aside, store.key).read().records == [click(0, 0)]
    assert not store.exists
    store.write(np.ones((6, 24, 20), np.int32), 0, [], 2, touched=[1])  # a new store
    assert store.read().generation == 1
    store.clear()
    assert not store.folder.exists() and aside.exists()
    AutosaveStore(aside, store.key).clear()
    assert not store.folder.parent.exists()  # the empty sidecar folder goes too


WRITER = r"""
import sys
import numpy as np
from napari_adaptiveclick.volume.autosave import AutosaveStore
from napari_adaptiveclick.volume.image_key import ImageKey
from napari_adaptiveclick.volume.records import ClickRecord

folder, generation = sys.argv[1], 0
store = AutosaveStore(folder, ImageKey("", 0, (8, 96, 96), "|u1", "x"))
store.compact_bytes = int(sys.argv[2])  # 1: every write also compacts the journal
rng = np.random.default_rng(0)
labels = np.zeros((8, 96, 96), np.int32)
while True:  # generation g: every plane holds g (plus noise, to make writes slower)
    generation += 1
    labels[:] = generation
    labels += rng.integers(0, 2, labels.shape, dtype=np.int32) * 1000
    records = [ClickRecord(p, 1.0, 1.0, True, 1, p) for p in range(generation % 7 + 1)]
    store.write(labels, 0, records, generation, touched=range(8))
"""


def test_a_writer_killed_at_any_moment_leaves_a_whole_store(tmp_path):
    """SIGKILL a process that writes generations in a loop, at several moments, appending to
    the journal or compacting it at each write: the store always reads back one whole
    generation, and a new writer continues it."""
    key = ImageKey("", 0, (8, 96, 96), "|u1", "x")
    seen = set()
    for attempt in range(6):
        folder = tmp_path / f"store{attempt}"
        compact = "1" if attempt % 2 else str(1 << 30)
        command = [sys.executable, "-c", WRITER, str(folder), compact]
        child = subprocess.Popen(command, env=os.environ)
        try:
            deadline = time.monotonic() + 60
            while not (folder / "manifest.json").exists():
                assert time.monotonic() < deadline and child.poll() is None, "writer failed"
                time.sleep(0.01)
            time.sleep(0.05 + 0.05 * attempt)  # some moments later, mid-write or not
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        snapshot = AutosaveStore(folder, key).read()
        generation = snapshot.generation
        assert snapshot.object_id == generation and len(snapshot.records) == generation % 7 + 1
        assert snapshot.planes == list(range(8))
        for values in snapshot.tiles.values():
            assert set(np.unique(values)) <= {generation, generation + 1000}
        seen.add(generation)
        store = AutosaveStore(folder, key)
        store.continue_from(snapshot)
        labels = np.zeros((8, 96, 96), np.int32)
        snapshot.apply(labels)
        labels[0] = -1
        assert store.write(labels, 0, snapshot.records, 99, touched=[0])
        assert not list(folder.rglob("*.tmp"))  # leftovers of the killed writer removed
        assert store.read().object_id == 99
    assert len(seen) > 1 or max(seen) > 1  # the kills came at different moments


def test_a_write_costs_the_changed_tiles_not_the_image(tmp_path):
    """On an 8000 x 8000 image, after the first write (which also takes the fingerprints),
    each click's write appends one segment holding only the tiles its box overlaps, and
    rewrites nothing else."""
    key = ImageKey("", 0, (1, 8000, 8000), "|u1", "x")
    store = AutosaveStore(tmp_path / "big", key)
    labels = np.zeros((1, 8000, 8000), np.uint16)
    rng = np.random.default_rng(0)
    records = []
    for order in range(12):
        top, left = (int(v) for v in rng.integers(3000, 3400, 2))
        box = Box(top, left, top + 120, left + 150)  # a click's changed box
        labels[0, box.top : box.bottom, box.left : box.right] = order % 3 + 1
        records = [*records, click(0, order)]
        before = {p.name: p.stat().st_size for p in store.folder.glob("*")}
        assert store.write(labels, 0, records, 1, touched={0: box})
        after = {p.name: p.stat().st_size for p in store.folder.glob("*")}
        if order == 0:
            continue
        (journal,) = (name for name in after if name.startswith("journal-"))
        assert set(after) == set(before)  # no new file: one journal segment
        assert {n: s for n, s in after.items() if n != journal} == {
            n: s for n, s in before.items() if n != journal
        }
        tiles = len(list(autosave_format.tiles_of(_geometry(labels), 0, box)))
        assert tiles <= 4
        raw = tiles * autosave_format.TILE**2 * labels.itemsize
        assert after[journal] - before[journal] < raw // 4  # compressed tiles of the box only
    state = open_state(store.folder, key)
    assert len(state.members) <= 9  # the tiles the clicks touched, of 32 x 32
    snapshot = store.read()
    restored = np.zeros_like(labels)
    assert snapshot.apply(restored) == []
    np.testing.assert_array_equal(restored, labels)


def _geometry(labels):
    from napari_adaptiveclick.volume.slicing import SliceGeometry

    return SliceGeometry(labels.shape, 0)


def test_compaction_keeps_the_state_and_removes_old_files(image_file):
    store = new_store(image_file)
    store.compact_bytes = 1  # compact as soon as the journal outgrows the base
    labels = np.zeros((6, 24, 20), np.int32)
    records = []
    for order in range(6):
        labels[order, : order + 2, 3] = order + 1
        records.append(click(order, order, order + 1))
        store.write(labels, 0, records, order + 1, touched={order: Box(0, 3, order + 2, 4)})
    names = sorted(p.name for p in store.folder.iterdir())
    assert len(names) == 3 and names[0].startswith("base-") and names[2] == "manifest.json"
    snapshot = AutosaveStore(store.folder, store.key).read()
    assert snapshot.records == records and snapshot.object_id == 6
    restored = np.zeros_like(labels)
    assert snapshot.apply(restored) == []
    np.testing.assert_array_equal(restored, labels)


def test_background_writes_are_merged_flushed_and_retried(image_file, monkeypatch):
    store = new_store(image_file)
    labels = np.zeros((6, 24, 20), np.int32)
    labels[1, :3, :3] = 1
    store.write(labels, 0, [click(1, 0)], 1, touched=[1])  # the first write, at once
    real = autosave_format.append_durably
    calls = []

    def failing_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return real(*args)

    monkeypatch.setattr(autosave_format, "append_durably", failing_once)
    labels[2, :3, :3] = 2
    assert store.save_later(labels, 0, [click(1, 0), click(2, 1, 2)], 2, {2: Box(0, 0, 3, 3)})
    deadline = time.monotonic() + 30
    while store._queue._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(store.error, OSError) and store.busy  # kept, to be tried again
    labels[3, :3, :3] = 3
    records = [click(1, 0), click(2, 1, 2), click(3, 2, 3)]
    store.save_later(labels, 0, records, 3, {3: Box(0, 0, 3, 3)})  # joins the failed one
    assert store.flush() and not store.busy and store.error is None
    snapshot = AutosaveStore(store.folder, store.key).read()
    assert snapshot.records == records and snapshot.object_id == 3 and snapshot.planes == [1, 2, 3]
    restored = np.zeros_like(labels)
    snapshot.apply(restored)
    np.testing.assert_array_equal(restored, labels)
