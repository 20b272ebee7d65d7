"""Reading the authors' released ``.pth`` safely: their config is a pickled object, so it
is read with a restricted unpickler that never calls anything outside an allowlist of
tensor / data constructors. Unknown classes become inert placeholders; a pickle that would
*call* an unknown function is refused with :class:`UnsafeCheckpointError`.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from napari_adaptiveclick.models.errors import CheckpointError, UnsafeCheckpointError

_SAFE_CALLABLES = {
    ("collections", "OrderedDict"),
    ("torch", "device"),
    ("torch", "Size"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
    ("pathlib", "PurePosixPath"),
    ("pathlib", "PureWindowsPath"),
    ("pathlib", "Path"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
}


class _Inert(dict):
    """Stands in for an unknown class in a released checkpoint's config.

    Created only through ``NEWOBJ`` (``cls.__new__``, which runs no user code). Calling it, as
    a ``REDUCE`` opcode would, means the pickle wants to run a function: refused.
    """

    _target = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise UnsafeCheckpointError(
            f"The checkpoint's pickle calls {self._target}(...), which could run code: refusing to "
            "load it. Only load checkpoints from sources you trust; re-save the state dict with "
            "torch.save(model.state_dict()) and load it with weights_only=True."
        )

    def __setstate__(self, state: Any) -> None:
        dict.__setitem__(self, "__state__", state)

    def append(self, item: Any) -> None:
        self.setdefault("__items__", []).append(item)

    def extend(self, items: Any) -> None:
        self.setdefault("__items__", []).extend(items)


def _inert_class(module: str, name: str) -> type:
    return type(
        name,
        (_Inert,),
        {"_target": f"{module}.{name}", "__module__": "napari_adaptiveclick._inert"},
    )


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        import torch  # noqa: F401  (storages resolve through torch)

        if (module, name) in _SAFE_CALLABLES or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        if module == "torch" and name in {
            "float16",
            "float32",
            "float64",
            "bfloat16",
            "int64",
            "int32",
            "uint8",
            "bool",
        }:
            return super().find_class(module, name)
        return _inert_class(module, name)


class _RestrictedPickleModule:
    Unpickler = _RestrictedUnpickler
    load = staticmethod(lambda f, **kw: _RestrictedUnpickler(f, **kw).load())
    __name__ = "napari_adaptiveclick_restricted_pickle"


def read_restricted(data: bytes, path: Path) -> dict:
    import torch

    try:
        return torch.load(
            io.BytesIO(data),
            map_location="cpu",
            weights_only=False,
            pickle_module=_RestrictedPickleModule,
        )
    except UnsafeCheckpointError as exc:
        raise UnsafeCheckpointError(f"{path}: {exc}") from None
    except Exception as exc:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})."
        ) from None
