"""Choosing the torch device: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations


def pick_device(device: str = "auto") -> str:
    """ "auto" -> "cuda" if available, else "mps", else "cpu"; other names are checked."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(
            f"Device {device!r} is not usable here ({exc}); use 'auto' or 'cpu'."
        ) from None
    return device
