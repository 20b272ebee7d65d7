"""Check before any work that an output file can be written: its folder exists and really
takes a new file (a probe file is created there and removed), so a read-only folder, a full
or read-only disk, or a folder of the wrong owner fails now with a clear message instead of
after minutes of prediction or training with an OS error about a temporary file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputNotWritableError(ValueError):
    """The output's folder is missing or cannot take a new file."""


def check_writable(out: str | os.PathLike, flag: str = "--out") -> Path:
    """``out`` as a Path once its folder is known to take a new file; raises
    :class:`OutputNotWritableError` naming ``flag`` otherwise. Writes nothing that stays."""
    out = Path(out)
    folder = out.parent
    if not folder.is_dir():
        raise OutputNotWritableError(
            f"Cannot write {flag} {out}: folder {folder} does not exist; create it or choose "
            "another path."
        )
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".adaptiveclick-", suffix=".probe"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OutputNotWritableError(
            f"Cannot write {flag} {out}: folder {folder} does not take new files ({reason}). "
            "Choose a folder you can write to, or free disk space."
        ) from None
    return out


def overlapping(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` are the same path or one lies inside the other (a zarr
    store and one of its arrays): writing either would replace part of the other."""
    a, b = Path(a).resolve(), Path(b).resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)
