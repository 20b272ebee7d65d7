"""Staging folders of outputs: a process killed while it writes a labels store leaves its
hidden staging folder (new-user trial 2: forever); the next write to the same path removes
it, and never the folder of a writer that still runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
pytestmark = pytest.mark.skipif(os.name == "nt", reason="stale folders are kept on Windows")

from napari_adaptiveclick.io.labels import write_labels  # noqa: E402
from napari_adaptiveclick.io.staging import OWNER, remove_stale, staging_dir  # noqa: E402
from napari_adaptiveclick.io.stores import new_labels_store, write_labels_store  # noqa: E402

WRITER = r"""
import sys, time
from pathlib import Path
import numpy as np
from napari_adaptiveclick.io.stores import new_labels_store

out = Path(sys.argv[1])
with new_labels_store(out, (4, 16, 16), np.uint16) as target:
    target[0] = 1
    (out.parent / "started").write_text("")
    time.sleep(600)  # killed here, half written
"""


def _writer(out):
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(out)])
    deadline = time.monotonic() + 60
    while not (out.parent / "started").exists():
        assert child.poll() is None and time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.05)
    (out.parent / "started").unlink()
    return child


def _staged(out):
    return sorted(out.parent.glob(f".{out.name}.*"))


def test_a_killed_writers_staging_folder_is_removed_by_the_next_write(tmp_path):
    out = tmp_path / "labels.zarr"
    child = _writer(out)
    (running,) = _staged(out)
    assert (running / OWNER).is_file() and (running / out.name).is_dir()
    assert remove_stale(out) == [] and running.is_dir()  # its writer still runs: kept
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert _staged(out) == [running] and not out.exists()  # left behind by the kill
    foreign = tmp_path / f".{out.name}.older"  # no owner file (another version): kept
    foreign.mkdir()
    labels = np.zeros((4, 16, 16), np.uint16)
    labels[1, 2:5, 2:5] = 3
    write_labels_store(out, labels)
    assert _staged(out) == [foreign]
    np.testing.assert_array_equal(np.asarray(zarr.open_array(str(out), mode="r")), labels)


def test_staging_leaves_nothing_beside_a_written_file(tmp_path):
    labels = np.zeros((3, 8, 8), np.uint8)
    labels[1, 2:4, 2:4] = 1
    write_labels(tmp_path / "labels.mhd", labels)  # a header and its compressed .zraw
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.mhd", "labels.zraw"]
    with pytest.raises(RuntimeError):
        with new_labels_store(tmp_path / "s.zarr", (2, 4, 4), np.uint8):
            raise RuntimeError("the replay failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.mhd", "labels.zraw"]


def test_a_staging_folder_of_another_host_is_kept(tmp_path):
    out = tmp_path / "labels.zarr"
    other = staging_dir(out)
    (other / OWNER).write_text("some-other-host 999999999\n")  # no such process here
    assert remove_stale(out) == [] and other.is_dir()  # but it may run on that host
    (other / OWNER).write_text(f"{socket.gethostname()} 999999999\n")
    assert remove_stale(out) == [other] and not other.exists()


def test_ctrl_c_in_segment_leaves_no_output_and_says_so(tmp_path):
    # new-user trial 3: Ctrl-C printed a raw KeyboardInterrupt traceback
    import tifffile

    from napari_adaptiveclick.volume.clicks_file import write_click_records
    from napari_adaptiveclick.volume.records import ClickRecord
    from synthetic import disk_volume

    planes = 40
    image = tmp_path / "stack.tif"
    tifffile.imwrite(image, disk_volume(planes, 64).astype(np.uint8), photometric="minisblack")
    clicks = tmp_path / "clicks.csv"
    write_click_records(clicks, [ClickRecord(p, 32.0, 32.0, True, 1, p) for p in range(planes)])
    out = tmp_path / "labels.zarr"
    command = [sys.executable, "-m", "napari_adaptiveclick", "segment", "--image", str(image),
               "--clicks", str(clicks), "--out", str(out), "--model", "tiny"]  # fmt: skip
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in child.stderr:  # interrupted while it replays
        seen.append(line)
        if "replayed 2/" in line:
            child.send_signal(signal.SIGINT)
            break
    rest = child.stderr.read()
    assert child.wait(timeout=120) == 130, "".join(seen) + rest
    assert "cancelled: no output was left half written" in rest and "Traceback" not in rest
    assert not out.exists() and _staged(out) == []
