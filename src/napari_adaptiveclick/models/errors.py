"""Errors of checkpoint reading."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, unsafe or of the wrong architecture."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint's pickle would execute code; it was not loaded."""


__all__ = ["CheckpointError", "UnsafeCheckpointError"]
