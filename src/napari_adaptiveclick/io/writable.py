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


def replace_problem(out: str | os.PathLike) -> str:
    """Why the existing ``out`` may not be replaced by an output ("" when it may): a folder
    is replaced only when it is a zarr store; any other folder holds what a file name or a
    store's name cannot tell (a trailing ``/``, a folder named like a file or a store)."""
    from napari_adaptiveclick.io.chunked import is_zarr_store

    out = Path(out)
    if not out.is_dir() or is_zarr_store(out):
        return ""
    return (
        f"{out} is a folder, not a labels file or zarr store, so it is not replaced; give a "
        "file name (e.g. labels.tif) or the name of a new store (e.g. labels.zarr)."
    )


def check_writable(out: str | os.PathLike, flag: str = "--out") -> Path:
    """``out`` as a Path once its folder is known to take a new file and ``out`` is not a
    folder that may not be replaced (:func:`replace_problem`); raises
    :class:`OutputNotWritableError` naming ``flag`` otherwise. Writes nothing that stays."""
    out = Path(out)
    problem = replace_problem(out)
    if problem:
        raise OutputNotWritableError(f"Cannot write {flag}: {problem}")
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


def writes_over(out: str | os.PathLike, given: str | os.PathLike) -> bool:
    """True when writing ``out`` would replace part of the input ``given``: the same path, a
    folder or store that holds it, or a path inside it (one of a zarr store's arrays or
    levels), except an OME-Zarr labels group ``<given>/labels/<name>``, where that format keeps
    the labels of its image."""
    out, given = Path(out).resolve(), Path(given).resolve()
    if out == given or given.is_relative_to(out):
        return True
    if not out.is_relative_to(given):
        return False
    parts = out.relative_to(given).parts
    return not (len(parts) == 2 and parts[0] == "labels")
