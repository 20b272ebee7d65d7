"""Hidden staging folders in which an output is made before it is renamed into place.

An output (labels file, labels store) is written into ``.<name>.<random>/`` beside its path
and moved to the path only once complete, so a kill never leaves half an output under the
real name. A killed process cannot remove its staging folder, though, and a store's can be as
big as the labels. Each staging folder therefore holds an owner file (host and process id),
and the next write to the same path removes the folders whose process is gone on this host;
a folder of a process that still runs, or of another host, or without an owner file, is
never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
from pathlib import Path

OWNER = ".owner"  # "<host> <pid>" of the process writing the output


def staging_dir(path: str | os.PathLike) -> Path:
    """A new staging folder for ``path`` beside it, after the stale ones of ``path`` are
    removed (:func:`remove_stale`). The caller removes it when done."""
    path = Path(path)
    remove_stale(path)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    (folder / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    return folder


def remove_stale(path: str | os.PathLike) -> list[Path]:
    """Remove the staging folders of ``path`` left by processes of this host that no longer
    run; returns them."""
    path = Path(path)
    removed = []
    for folder in path.parent.glob(f".{glob.escape(path.name)}.*"):
        if folder.is_dir() and _owner_gone(folder / OWNER):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _owner_gone(owner: Path) -> bool:
    try:
        host, pid = owner.read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return False  # no owner file (yet, or an older version's folder): not ours to judge
    if host != socket.gethostname() or pid == os.getpid() or os.name == "nt":
        return False  # (on Windows os.kill would end the process, not test it)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # another user's process runs with that id
    return False
