"""Argument types of the command lines: a value is refused by argparse, with what was wrong,
before any file is read."""

from __future__ import annotations

import argparse


def threshold_argument(text: str) -> float:
    """A mask threshold option (``segment --threshold``): a number in (0, 1)."""
    from napari_adaptiveclick.volume.records import checked_threshold

    try:
        return checked_threshold(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
