"""A training run's folder, written so that a kill at any moment loses no finished step.

RUN_DIR holds ``train_config.json`` (every option; ``--resume`` reads it back),
``metrics.jsonl`` (one JSON line per step), ``last.pt`` (weights, optimiser and step: where a
resumed run continues), ``final.pt`` (the trained weights) and ``.lock`` (locked by the
process that trains in the folder, so two never write to it at once).

The rules (issue #13, item 7):

- Every file but the log is written whole or not at all: a temporary ``.NAME.*.tmp`` in the
  folder, fsync, ``os.replace``. A temporary file left by a kill is removed when the run
  starts again.
- A step's log line is appended with one ``os.write`` and fsynced before every checkpoint, so
  the log holds every step that ``last.pt`` holds.
- When a run starts, its log is cut back to the steps of its checkpoint (step 0 without one):
  lines of later steps (they are trained again), a line cut off by a kill and repeated steps
  are dropped, and said so. Every step of the run is then logged exactly once.
- A folder without a checkpoint holds no finished work: a run started in it (``--resume`` or
  the same ``--out``) starts over from step 0.

Failures to write (disk full, read-only or missing folder) raise :class:`RunFolderError`
with a one-line message; the last checkpoint stays intact.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory lock
    fcntl = None

CONFIG = "train_config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "last.pt"
FINAL = "final.pt"
LOCK = ".lock"
_WRITTEN = (CONFIG, METRICS, CHECKPOINT, FINAL)  # their temporary files: .NAME.*.tmp


class RunFolderError(Exception):
    """The run folder cannot be created, locked or written (a one-line message)."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not possible everywhere, e.g. on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary file in the same folder,
    fsync, then ``os.replace``. Raises ``OSError``; no temporary file is left behind."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, mode)  # mkstemp's 0600 would hide the run from other users
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


class RunFolder:
    """RUN_DIR of one training process: :meth:`open` it, :meth:`log` steps, :meth:`save`
    checkpoints, :meth:`close` it. Only the main process (rank 0) writes the folder."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._log_fd: int | None = None
        self._lock_fd: int | None = None

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def holds_finished_work(self) -> bool:
        """True when a checkpoint exists: the folder can only be resumed, not started over."""
        return self.checkpoint.is_file() or (self.path / FINAL).is_file()

    def create(self) -> None:
        """Create the folder (and its parents); raises :class:`RunFolderError`."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(
                f"cannot create the run folder {self.path}: {_reason(exc)}"
            ) from exc

    def open(self, config: dict[str, Any], step: int) -> list[str]:
        """Lock the folder, remove temporary files left by a kill, write ``config`` and cut
        the log back to ``step`` (the checkpoint's; 0 without one). Returns notes to show."""
        self.create()
        self._lock()
        try:
            notes = self._remove_temporaries()
            self.write_text(CONFIG, json.dumps(config, indent=1))
            notes += self._cut_log(step)
            with self._writing(self.path / METRICS):
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
                self._log_fd = os.open(self.path / METRICS, flags, 0o644)
        except BaseException:
            self.close()
            raise
        return notes

    def close(self) -> None:
        """Close the log and release the lock (safe to call twice)."""
        for fd in (self._log_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._log_fd = self._lock_fd = None

    # ------------------------------------------------------------------ writing
    def log(self, record: dict[str, Any]) -> None:
        """Append one line to metrics.jsonl (durable at the next :meth:`save`)."""
        with self._writing(self.path / METRICS):
            _write_all(self._log_fd, (json.dumps(record) + "\n").encode())

    def save(self, name: str, state: dict[str, Any]) -> None:
        """fsync the log, then write ``state`` (``torch.save``) as RUN_DIR/``name``,
        atomically: the checkpoint never holds a step the log lacks."""
        import torch

        buffer = io.BytesIO()  # serialised first: writing is then plain OS calls
        torch.save(state, buffer)
        if self._log_fd is not None:
            with self._writing(self.path / METRICS):
                os.fsync(self._log_fd)
        with self._writing(self.path / name):
            atomic_write(self.path / name, buffer.getbuffer())

    def write_text(self, name: str, text: str) -> None:
        """Write RUN_DIR/``name`` atomically."""
        with self._writing(self.path / name):
            atomic_write(self.path / name, text.encode())

    @contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            message = f"cannot write {path}: {_reason(exc)}"
            if self.checkpoint.is_file():
                message += f" (the checkpoint {self.checkpoint} is intact: the run can resume)"
            raise RunFolderError(message) from exc

    # ------------------------------------------------------------------ starting
    def _lock(self) -> None:
        if fcntl is None:
            return
        with self._writing(self.path / LOCK):
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise RunFolderError(
                f"{self.path} is in use by another training process (its {LOCK} is locked)."
            ) from exc
        self._lock_fd = fd

    def _remove_temporaries(self) -> list[str]:
        stale = [p for name in _WRITTEN for p in self.path.glob(f".{name}.*.tmp")]
        for path in stale:
            with self._writing(path):
                path.unlink(missing_ok=True)
        return [f"removed {len(stale)} temporary file(s) left by a kill"] if stale else []

    def _cut_log(self, step: int) -> list[str]:
        """Keep one line per step 1..``step`` of metrics.jsonl (the last of repeated ones)."""
        path = self.path / METRICS
        if not path.is_file():
            return []
        text = path.read_bytes().decode("utf-8", errors="replace")
        kept: dict[int, str] = {}
        unreadable = later = repeated = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                n = int(json.loads(line)["step"])
            except (ValueError, KeyError, TypeError, IndexError):
                unreadable += 1
                continue
            if n > step:
                later += 1
                continue
            repeated += n in kept
            kept[n] = line
        new_text = "".join(kept[n] + "\n" for n in sorted(kept))
        if new_text == text:
            return []
        self.write_text(METRICS, new_text)
        dropped = [
            f"{later} line(s) of steps after step {step} (trained again now)" if later else "",
            f"{unreadable} unreadable line(s) (cut off by a kill)" if unreadable else "",
            f"{repeated} repeated step(s)" if repeated else "",
        ]
        dropped = [d for d in dropped if d]
        notes = [f"{path}: dropped {', '.join(dropped)}"] if dropped else []
        if len(kept) < step:
            notes.append(f"{path}: {step - len(kept)} step(s) of the checkpoint have no line")
        return notes
