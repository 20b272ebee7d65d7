"""Argument types of the command lines: a value is refused by argparse, with what was wrong,
before any file is read."""

from __future__ import annotations

import argparse
from pathlib import Path


def threshold_argument(text: str) -> float:
    """A mask threshold option (``segment --threshold``): a number in (0, 1)."""
    from napari_adaptiveclick.volume.records import checked_threshold

    try:
        return checked_threshold(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def overlapping(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are the same path or one lies inside the other (a zarr
    store and one of its arrays): writing either would replace part of the other."""
    a, b = a.resolve(), b.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)
