"""Find, verify and safely load checkpoints; the released AdaptiveClick key mapping.

Two formats are read:

* this project's: ``{"format": FORMAT, "version": int, "config": dict, "state_dict": ...}``,
  written atomically by :func:`save_checkpoint` and read with ``torch.load(weights_only=True)``;
* the authors' released ``.pth``: ``{"state_dict": ..., "config": EasyDict(...)}``. Its config
  is a pickled object, so it is read with a restricted unpickler that never calls anything
  outside an allowlist of tensor/data constructors (unknown classes become inert
  placeholders; a pickle that would *call* an unknown function is refused).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_adaptiveclick.models.config import ModelConfig
from napari_adaptiveclick.models.errors import CheckpointError
from napari_adaptiveclick.models.unpickle import read_restricted

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

FORMAT = "napari-adaptiveclick"
VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
# The shipped trained weights, by name: the default (EM and general use) and the MRI
# specialist; each has a manifest ``weights/<name>.json`` naming its file and SHA-256.
SHIPPED_MODELS: tuple[str, ...] = ("default", "default-mri")

# Released-checkpoint entries that our model does not have: unused heads and saved buffers,
# and Mask2Former's duplicate registrations of the FPN step (SPEC.md 1, "Traps").
IGNORED_RELEASE_KEYS = ("backbone.cls_token", "criterion.empty_weight")
IGNORED_RELEASE_PREFIXES = (
    "backbone.fc_norm.",
    "backbone.head.",
    "pixel_decoder.adapter_1.",
    "pixel_decoder.layer_1.",
)


def sha256sum(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> None:
    """Raise :class:`CheckpointError` if ``path``'s SHA-256 differs from ``expected``."""
    actual = sha256sum(path)
    if actual != expected.lower():
        raise CheckpointError(
            f"{path} is corrupt or was replaced: SHA-256 {actual} != expected {expected}. "
            "Reinstall the package or download the file again."
        )


def shipped_manifest(name: str = "default") -> Path:
    """The manifest file of the shipped weights ``name`` (one of :data:`SHIPPED_MODELS`)."""
    if name not in SHIPPED_MODELS:
        raise ValueError(f"Unknown shipped weights {name!r}; choose one of {SHIPPED_MODELS}.")
    return WEIGHTS_DIR / f"{name}.json"


def _read_manifest(name: str) -> tuple[Path, str] | None:
    """The weights file and SHA-256 the manifest of ``name`` names, or None when the manifest
    or the file is missing (not verified)."""
    manifest_path = shipped_manifest(name)
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        path, digest = WEIGHTS_DIR / manifest["file"], str(manifest["sha256"])
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{manifest_path} is damaged ({err}): reinstall the package."
        ) from None
    return (path, digest) if path.is_file() else None


def shipped_weights_installed(name: str) -> bool:
    """True when the shipped weights ``name`` are installed (without hashing them; loading
    them verifies the SHA-256, and a damaged manifest counts as present so loading says so)."""
    try:
        return _read_manifest(name) is not None
    except CheckpointError:
        return True


def default_checkpoint(name: str = "default") -> Path | None:
    """Path of the shipped weights ``name`` (default: the ``tiny`` default weights), verified
    by SHA-256, or None if they are not shipped."""
    found = _read_manifest(name)
    if found is None:
        return None
    verify_sha256(*found)
    return found[0]


def new_file_mode() -> int:
    """The mode ``open`` gives a new file: 0o666 less the process's umask (read without
    changing it, from /proc on Linux; 0o022 assumed elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``:
    a crash never leaves a half-written file at ``path``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            try:  # mkstemp's 0600 would hide the checkpoint from other users
                os.fchmod(handle.fileno(), mode)
            except (OSError, AttributeError):  # a file system without modes, or Windows
                pass
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def checkpoint_dict(model: nn.Module, *, half: bool = False, extra: dict | None = None) -> dict:
    """This project's checkpoint layout for ``model`` (weights only, plain types)."""
    import torch

    state = OrderedDict(
        (
            k,
            v.detach()
            .to("cpu", torch.float16 if half and v.is_floating_point() else v.dtype)
            .clone(),
        )
        for k, v in model.state_dict().items()
    )
    out = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": state,
    }
    out.update(extra or {})
    return out


def save_checkpoint(
    path: str | Path, model: nn.Module, *, half: bool = False, extra: dict | None = None
) -> None:
    """Write ``model`` in this project's format, atomically. ``extra`` must hold plain types."""
    atomic_torch_save(checkpoint_dict(model, half=half, extra=extra), path)


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file safely into a dict (no code from the file is executed).

    Raises :class:`CheckpointError` if missing, corrupt or not a checkpoint, and
    :class:`UnsafeCheckpointError` if its pickle would call a function.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint not found: {path}")
    data = path.read_bytes()
    _check_archive(data, path)
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        obj = read_restricted(data, path)
    except Exception as exc:  # zip/pickle framing errors: truncated or not a torch file
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}): the "
            "file is damaged or is not a model file. Use the checkpoint file itself (.pt/.pth)."
        ) from None
    if (
        isinstance(obj, dict)
        and "state_dict" not in obj
        and obj
        and all(hasattr(v, "shape") for v in obj.values())
    ):
        obj = {"state_dict": obj}
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        raise CheckpointError(f"{path} holds no 'state_dict': it is not a model checkpoint.")
    return obj


MAX_RECORD_BYTES = 8 << 30  # the released ViT-H file is 2.6 GB
MAX_EXPANSION = 64  # tensors compress poorly: a record that would grow more is a bomb


def _check_archive(data: bytes, path: Path) -> None:
    """Refuse a zip checkpoint (``data``, the whole file) whose records declare more than
    :data:`MAX_RECORD_BYTES` or would expand far beyond their stored size (checked first,
    before anything is decompressed), or whose records do not match their CRC-32
    (:func:`_reads_back`): bytes changed after writing (a bad copy or disk) would otherwise
    load as NaN or random weights, and torch itself does not check them. Other files (legacy
    pickles) pass unchecked."""
    import zipfile

    if not zipfile.is_zipfile(io.BytesIO(data)):
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({err}).") from None
    with archive:
        records = archive.infolist()
        total = sum(r.file_size for r in records)
        inflating = [
            r.filename
            for r in records
            if r.compress_type != zipfile.ZIP_STORED
            and r.file_size > 1 << 20
            and r.file_size > MAX_EXPANSION * max(r.compress_size, 1)
        ]
        if total > MAX_RECORD_BYTES or inflating:
            what = f"records {', '.join(inflating[:3])} that expand" if inflating else "records"
            raise CheckpointError(
                f"{path} declares {what} to {total / 2**30:.1f} GiB: refused before reading "
                "(not a checkpoint this project or the release wrote)."
            )
        bad = next((r for r in records if r.CRC and not _reads_back(archive, r, path)), None)
    if bad is not None:
        raise CheckpointError(
            f"{path} is damaged: its record {bad.filename} does not match the checksum written "
            "with it (the file was changed or cut after it was saved). Copy or download it "
            "again, or use another checkpoint."
        )


def _reads_back(archive, record, path: Path) -> bool:
    """True when ``record`` of the zip ``archive`` decompresses to its CRC-32; False when it
    does not (or its header is broken). A record that cannot be read at all (bad deflate data,
    encrypted, an unknown compression) is a :class:`CheckpointError`. Records with CRC 0 are
    not checked: torch writes 0 when saving with ``compute_crc32`` off."""
    import zipfile

    try:
        with archive.open(record) as stream:
            while stream.read(1 << 22):
                pass
    except zipfile.BadZipFile:  # "Bad CRC-32 for file ...", "Bad magic number ..."
        return False
    except Exception as err:  # zlib.error, RuntimeError (encrypted), NotImplementedError, ...
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint: its record {record.filename} cannot "
            f"be read ({type(err).__name__}: {err}). Copy or download it again, or use another "
            "checkpoint."
        ) from None
    return True


def check_weights(state: dict, path: str | Path) -> None:
    """Every entry of a state dict is a tensor with finite values; else
    :class:`CheckpointError` naming the entries (a NaN weight would make every mask empty)."""
    import torch

    malformed = [
        f"{k} ({type(v).__name__})"
        for k, v in state.items()
        if not isinstance(k, str) or not isinstance(v, torch.Tensor)
    ]
    if malformed:
        raise CheckpointError(
            f"{path} is malformed: state_dict entries that are not tensors: "
            f"{_summarise(malformed)}."
        )
    broken = [
        k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]
    if broken:
        raise CheckpointError(
            f"{path} holds NaN or infinite weights in {_summarise(broken)}: the training that "
            "wrote it diverged. Use an earlier checkpoint."
        )


def map_release_state_dict(state: dict) -> dict:
    """Released AdaptiveClick key names -> ours (drops the unused and duplicate entries)."""
    return OrderedDict(
        (k, v)
        for k, v in state.items()
        if k not in IGNORED_RELEASE_KEYS and not k.startswith(IGNORED_RELEASE_PREFIXES)
    )


def release_width(state: dict) -> int:
    """The ViT width of a released state dict (its click patch embedding's output channels)."""
    weight = state.get("patch_embed_coords.proj.weight")
    if weight is None:
        raise CheckpointError(
            "The state dict has no 'patch_embed_coords.proj.weight': not an AdaptiveClick checkpoint."
        )
    return int(weight.shape[0])


def _summarise(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_state_into(model: nn.Module, state: dict, source: str) -> None:
    """Strictly load ``state`` into ``model``; errors name missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {_summarise(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_summarise(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches (checkpoint vs model): {_summarise(shapes)}")
        raise CheckpointError(
            f"{source} does not fit the '{model.config.name}' architecture: "
            + "; ".join(parts)
            + ". Pick the model name the checkpoint was trained with."
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def read_model_weights(
    path: str | Path, expected_name: str | None = None
) -> tuple[ModelConfig | None, dict]:
    """The architecture and the weights a checkpoint holds, without building a model.

    Returns ``(config, state_dict)`` for this project's checkpoints (they carry their
    config) and ``(None, state_dict)`` for released ``.pth`` files, whose state dict is
    mapped to this project's key names (their architecture is the registry's to tell:
    :func:`napari_adaptiveclick.models.registry.load_model`). ``expected_name``, if given,
    must match a project checkpoint's architecture.
    """
    ckpt = read_checkpoint(path)
    check_weights(ckpt["state_dict"], path)
    if ckpt.get("format") == FORMAT:
        try:
            config = ModelConfig.from_dict(ckpt.get("config"))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path} has a malformed model config: {err}") from None
        if expected_name and expected_name != config.name:
            raise CheckpointError(f"{path} holds a '{config.name}' model, not '{expected_name}'.")
        return config, ckpt["state_dict"]
    return None, map_release_state_dict(ckpt["state_dict"])


def average_models(models: list[nn.Module]) -> nn.Module:
    """A uniform weight soup: the first of ``models`` (and its config) with every floating-point
    weight the mean over all (in float64). They must share one architecture (the config, except
    ``box_prior``); it makes sense for runs fine-tuned from the same weights."""
    import torch

    if not models:
        raise ValueError("average_models needs at least one model.")
    first = models[0]
    for other in models[1:]:
        if {**other.config.to_dict(), "box_prior": 0} != {**first.config.to_dict(), "box_prior": 0}:
            raise CheckpointError(
                f"Cannot average a '{other.config.name}' model {other.config.to_dict()} with a "
                f"'{first.config.name}' model {first.config.to_dict()}: the architectures differ."
            )
    states = [m.state_dict() for m in models]
    mean = {
        k: torch.stack([s[k].double() for s in states]).mean(0).to(v.dtype)
        if v.is_floating_point()
        else v
        for k, v in states[0].items()
    }
    first.load_state_dict(mean, strict=True)
    return first
