"""napari-adaptiveclick: click-based interactive segmentation with AdaptiveClick.

Importing the package is cheap: neither torch nor napari is imported until a function
that needs them is called (napari's plugin discovery imports this module).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# libgomp's default spin-waiting makes PyTorch's CPU threads fight over the cores whenever
# another busy thread or process shares them (napari's Qt loop, a second job): on the 2-core
# machines here an Adam step went from 0.08 s to 11 s. Passive waiting avoids it; this only
# takes effect if torch's OpenMP runtime has not started yet, and never overrides the user.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["build_model", "ClickSession", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from napari_adaptiveclick.interactive.session import ClickSession
    from napari_adaptiveclick.models.registry import build_model


def __getattr__(name: str) -> Any:
    if name == "build_model":
        from napari_adaptiveclick.models.registry import build_model

        return build_model
    if name == "ClickSession":
        from napari_adaptiveclick.interactive.session import ClickSession

        return ClickSession
    raise AttributeError(f"module 'napari_adaptiveclick' has no attribute {name!r}")
