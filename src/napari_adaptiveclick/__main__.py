"""Command line: ``python -m napari_adaptiveclick {segment,adapt,demo} ...``.

``segment`` replays clicks (CSV/JSON: plane,row,col,positive,object_id[,order,model,axis]) on a
2D image or the planes of a volume (TIFF, PNG, NIfTI, MetaImage, NRRD; zarr, OME-Zarr, N5 and
HDF5 stores read lazily) and writes the labels in the input's format and geometry (or into a
zarr / OME-Zarr labels store, written in place); ``segment --batch JOBS.csv`` runs many such
replays on dask.distributed (:mod:`._segment_batch`). All is checked before the model loads:
``--labels`` keep their dtype and ids exactly (new ids that do not fit are refused; float
labels only when all are whole numbers, with a note); a model without trained weights is
refused unless ``--allow-random-weights``. ``adapt`` fine-tunes a model on a labels file's
objects (:mod:`._adapt_command`). ``demo`` opens napari with the sample EM volume and the
widget (``--headless --out DIR``: a scripted click session; it saves labels, a screenshot).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_adaptiveclick._adapt_command import add_adapt_parser, run_adapt
from napari_adaptiveclick._cli_types import threshold_argument
from napari_adaptiveclick.interactive.predict import PREDICTION_THRESHOLD
from napari_adaptiveclick.io.writable import check_writable, writes_over
from napari_adaptiveclick.models.registry import model_names

if TYPE_CHECKING:  # pragma: no cover
    from napari_adaptiveclick.volume.records import ClickRecord


def _segment_parser(sub) -> None:
    p = sub.add_parser("segment", help="replay clicks on an image or volume and write the labels")
    p.add_argument(
        "--image",
        help="input image or volume: a file, or a zarr / OME-Zarr / N5 / HDF5 store (read "
        "lazily: only the crops the clicks need)",
    )
    p.add_argument("--clicks", help="click records, CSV or JSON")
    p.add_argument(
        "--out",
        help="output labels (format from its extension; NAME.zarr, NAME.ome.zarr or "
        "IMAGE.ome.zarr/labels/NAME: a chunked store, written in place, never held in memory)",
    )
    p.add_argument(
        "--checkpoint",
        help="checkpoint path, or shipped weights: 'default' (EM) or 'default-mri' (MRI); "
        "without it (and --model) the shipped weights for the image's kind",
    )
    p.add_argument(
        "--model",
        help=f"registry name ({', '.join(model_names())}) when no checkpoint (default: the "
        "model column of --clicks, else the shipped weights)",
    )
    p.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="run a model that has no trained weights installed, with a warning (its masks "
        "are noise); without it such a model is refused",
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--threshold",
        type=threshold_argument,
        default=PREDICTION_THRESHOLD,
        help="mask threshold of records that do not hold their own (files from before it was "
        "recorded); every other record replays at the threshold it was made with",
    )
    p.add_argument(
        "--no-zoom-in", action="store_true", help="predict on the whole slice at every click"
    )
    p.add_argument(
        "--flip-tta", action="store_true", help="average with the horizontally flipped slice"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--labels", default=None, help="labels the annotation started from (same shape)")
    p.add_argument(
        "--overwrite-objects", action="store_true", help="let objects overwrite earlier ones"
    )
    from napari_adaptiveclick._segment_batch import add_batch_arguments

    add_batch_arguments(p)


def segment(args: argparse.Namespace) -> int:
    """Replay the clicks and write the labels. Every input is checked before the model loads."""
    from napari_adaptiveclick.interactive.session import ClickSession
    from napari_adaptiveclick.io.images import read_image
    from napari_adaptiveclick.io.labels import write_labels
    from napari_adaptiveclick.io.lazy import is_lazy
    from napari_adaptiveclick.io.stores import copy_into, is_store_path, new_labels_store
    from napari_adaptiveclick.volume import replay_records
    from napari_adaptiveclick.volume.clicks_file import read_click_records
    from napari_adaptiveclick.volume.replay import labels_dtype_for
    from napari_adaptiveclick.volume.replay_checks import check_records

    if getattr(args, "batch", None):
        from napari_adaptiveclick._segment_batch import run_batch

        return run_batch(args, segment)
    missing = [f"--{name}" for name in ("image", "clicks", "out") if not getattr(args, name)]
    if missing:
        raise ValueError(f"segment needs {', '.join(missing)} (or --batch JOBS.csv).")
    out = Path(args.out)
    for flag in ("image", "clicks", "labels"):  # inputs are never written over
        given = getattr(args, flag, None)
        if given and writes_over(out, given):  # a store holds its arrays: never write
            raise ValueError(
                f"--out {out} is, holds or lies in the --{flag} {given}; change --out."
            )
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it or choose another --out.")
    volume = read_image(args.image)
    if "t" in volume.axes or len(volume.spatial_shape) > 3:
        raise ValueError(
            f"{args.image} holds {len(volume.spatial_shape)}D data (axes {volume.axes!r}): segment "
            "works on a 2D image or a 3D volume. Save the time point or channel you annotated "
            "as its own file first."
        )
    records = read_click_records(args.clicks)
    if not records:
        raise ValueError(f"{args.clicks} holds no clicks.")
    if unset := sum(r.threshold is None for r in records):
        print(
            f"{unset} of {len(records)} records hold no threshold (an older file): they replay "
            f"at --threshold {args.threshold}",
            file=sys.stderr,
        )
    max_id = max(r.object_id for r in records)
    start_labels = None  # zeros of labels_dtype_for(max_id)
    if args.labels:
        start = read_image(args.labels).data
        start_labels = (
            _lazy_start_labels(start, volume.spatial_shape)
            if is_lazy(start)
            else _start_labels(start, volume.spatial_shape, max_id)
        )
    dtype = labels_dtype_for(max_id) if start_labels is None else start_labels.dtype
    try:
        check_records(records, volume.spatial_shape, dtype, _start_ids(start_labels, records))
    except ValueError as err:
        if volume.is_rgb and len(volume.spatial_shape) == 2 and any(r.plane for r in records):
            raise ValueError(  # e.g. a 3-slice stack that tifffile stored as RGB
                f"{err} {args.image} was read as one RGB image; if it is a stack of slices, "
                "save it with one grey channel per page (tifffile: photometric='minisblack')."
            ) from None
        raise
    to_store = is_store_path(out)
    if not to_store:
        known = 0 if start_labels is None else int(np.asarray(start_labels).max(initial=0))
        _check_output(out, volume.spatial_shape, max(max_id, known))
    elif out.parent.is_dir():
        check_writable(out)
    elif out.parent.name != "labels":
        raise FileNotFoundError(f"Cannot write {out}: folder {out.parent} does not exist.")
    load_model, model_label = _replay_model(args, records)
    session = ClickSession(
        load_model(),
        device=args.device,
        zoom_in=not args.no_zoom_in,
        flip_tta=True if args.flip_tta else None,
        threshold=args.threshold,
    )
    replay = functools.partial(
        replay_records,
        volume.data,
        records,
        session,
        rgb=volume.is_rgb,
        overwrite=args.overwrite_objects,
        progress=lambda done, total: print(
            f"\rreplayed {done}/{total} clicks", end="", file=sys.stderr
        ),
    )
    if to_store:  # labels on disk: filled in place under a temporary name, renamed at the end
        with new_labels_store(
            out, volume.spatial_shape, dtype, volume, overwrite=args.overwrite
        ) as target:
            if start_labels is not None:
                copy_into(target, start_labels)
            labels = replay(labels=target, in_place=True)
    else:
        labels = replay(labels=start_labels)
    print(file=sys.stderr)
    if not to_store:
        kept = None if start_labels is None else dtype  # the dtype of the user's labels
        write_labels(out, labels, like=volume, overwrite=args.overwrite, dtype=kept)
    objects = sorted({r.object_id for r in records})
    empty = "" if to_store else _without_pixels(labels, objects)
    print(
        f"wrote {out}: {len(objects)} object(s), {len(records)} click(s), model {model_label}, "
        f"shape {labels.shape}{empty}"
    )
    return 0


def _without_pixels(labels: np.ndarray, objects: list[int]) -> str:
    """A note naming the clicked objects that got no pixels (e.g. only negative clicks)."""
    present = set(np.unique(np.asarray(labels)).tolist())
    missing = [o for o in objects if o not in present]
    if not missing:
        return ""
    shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
    return f"; no pixels for object(s) {shown} (only negative clicks, or all overwritten)"


def _start_ids(start_labels: Any, records: list) -> Any:
    """The label-mask ids of ``records`` that the labels the replay starts from hold, for
    checking label masks before any prediction (:func:`check_records`): none without
    ``--labels``; None (not checked) for a store, whose values are not scanned."""
    from napari_adaptiveclick.io.lazy import is_lazy

    if start_labels is None:
        return ()
    if is_lazy(start_labels):
        return None
    return [i for i in {r.mask_label for r in records if r.mask_label} if (start_labels == i).any()]


def _lazy_start_labels(data: Any, shape: tuple[int, ...]) -> Any:
    """A ``--labels`` store to start from: integer ids of the image's shape (its values are
    not scanned: a store of any size is copied into the output chunk by chunk)."""
    if tuple(data.shape) != tuple(shape):
        raise ValueError(f"--labels shape {tuple(data.shape)} does not match the image {shape}.")
    if not np.issubdtype(data.dtype, np.integer):
        raise ValueError(f"--labels store must hold integer ids, got dtype {data.dtype}.")
    return data


def _check_output(out: Path, shape: tuple[int, ...], max_label: int) -> None:
    """Refuse now, not after the replay, an output the labels writer could not write."""
    from napari_adaptiveclick.io.images import WRITE_EXTENSIONS, file_format, split_image_name

    if not split_image_name(out)[1]:  # what labels can be written to, not every image read
        raise ValueError(
            f"Cannot write labels to {out}: unsupported file type; use one of "
            f"{', '.join(WRITE_EXTENSIONS)} (or a .zarr store)."
        )
    fmt = file_format(out)
    if fmt == "jpeg":
        problem = "JPEG is lossy"
    elif fmt == "png" and (len(shape) != 2 or max_label > 65535):
        problem = f"PNG holds 2D labels up to 65535, these are {shape} with ids up to {max_label}"
    else:
        problem = ""
    if problem:
        raise ValueError(f"Cannot write labels to {out}: {problem}; use .tif, .nii.gz or .mha.")
    check_writable(out)  # the folder exists and takes a new file, before the replay


# Whole numbers up to these are exact in each float dtype (2**mantissa bits): beyond them, ids
# may already have merged when the labels were saved.
_EXACT_IN_FLOAT = {np.dtype(np.float16): 2**11, np.dtype(np.float32): 2**24}


def _start_labels(data: np.ndarray, shape: tuple[int, ...], max_id: int) -> np.ndarray:
    """The ``--labels`` array to start from, ids and integer dtype kept exactly. Negative ids
    are refused (label files hold none). A bool mask becomes 0/1 (uint8 unless the clicks file's
    ids need more). Float labels whose
    values are all exact whole numbers become integers (:func:`labels_dtype_for` their largest
    value and ``max_id``), with a note; any other float labels are refused."""
    from napari_adaptiveclick.volume.replay import labels_dtype_for

    if data.shape != shape:
        rgb = data.ndim == len(shape) + 1 and data.shape[-1] in (3, 4)
        raise ValueError(
            f"--labels shape {data.shape} does not match the image {shape}."
            + (" It was read as RGB: save a stack of label slices with photometric='minisblack'"
               " (tifffile), one grey page per slice." if rgb else "")
        )  # fmt: skip
    if data.dtype == bool:  # uint8, or wider when the clicks file's ids need it
        return data.astype(np.uint8 if max_id <= 255 else labels_dtype_for(max_id))
    if np.issubdtype(data.dtype, np.floating):
        fix = "; save the labels as integers (e.g. uint16 or uint32)."
        bad = data[~(np.isfinite(data) & (data == np.round(data)))]
        if bad.size:
            raise ValueError(
                f"--labels holds values that are not whole numbers (e.g. {float(bad[0]):g}), "
                f"so they are not label ids{fix}"
            )
        limit = _EXACT_IN_FLOAT.get(data.dtype, 2**53)
        if data.size and data.max() > limit:
            raise ValueError(
                f"--labels is {data.dtype.name}: {data.dtype.name} cannot hold every id above "
                f"{limit} exactly (found {float(data.max()):.0f}){fix}"
            )
    elif not np.issubdtype(data.dtype, np.integer):
        raise ValueError(f"--labels must hold integer ids, got dtype {data.dtype}.")
    if data.size and data.min() < 0:
        raise ValueError(
            f"--labels holds negative ids (e.g. {data.min().item():g}); label ids are 0 "
            "(background) or more."
        )
    if np.issubdtype(data.dtype, np.integer):
        return data
    dtype = labels_dtype_for(max(int(data.max()) if data.size else 0, max_id))
    print(
        f"note: --labels {data.dtype.name} values are all whole numbers: used as {dtype.name} ids.",
        file=sys.stderr,
    )
    return data.astype(dtype)


def _replay_model(
    args: argparse.Namespace, records: Sequence[ClickRecord]
) -> tuple[Callable[[], Any], str]:
    """How to load the model of the replay, decided before any work: ``--checkpoint`` (with
    ``--model`` as its expected architecture), else ``--model``, else the one model the clicks
    name (a registry name or a checkpoint path), else the shipped weights for the image's kind
    (``default-mri`` for NIfTI, MetaImage and NRRD files, else ``default``). A model without
    trained weights is refused, unless ``--allow-random-weights``, which warns. Returns the
    loader and the model's name for the report."""
    from napari_adaptiveclick.models import registry

    named = sorted({r.model for r in records if r.model})
    if args.checkpoint and args.checkpoint not in registry.SHIPPED_MODELS:
        if not Path(args.checkpoint).is_file():
            raise FileNotFoundError(f"--checkpoint {args.checkpoint}: no such file.")
        expected = None if args.model in (None, registry.DEFAULT_MODEL) else args.model
        return functools.partial(registry.load_model, args.checkpoint, expected), args.checkpoint
    if args.checkpoint or args.model:
        name = args.checkpoint or args.model
        source = "named by --checkpoint" if args.checkpoint else "named by --model"
        if set(named) - {name}:
            print(
                f"note: the clicks name {', '.join(named)}; replaying with {name}.", file=sys.stderr
            )
    elif len(named) > 1:
        raise ValueError(
            f"{args.clicks}: the clicks were made with several models ({', '.join(named)}); a "
            "replay uses one: pass --checkpoint FILE or --model NAME."
        )
    elif named:
        name, source = named[0], f"named by the model column of {args.clicks}"
    else:
        name = registry.default_for_image(args.image)
        source = "used for this image when no --checkpoint or --model is given"
    proceed = "pass --checkpoint FILE (the trained weights the clicks were made with)"
    if name not in registry.MODEL_CHOICES:
        if Path(name).is_file():
            return functools.partial(registry.load_model, name), name
        raise ValueError(
            f"model {name!r} ({source}) is neither a registered model "
            f"({', '.join(registry.MODEL_CHOICES)}) nor an existing checkpoint file; {proceed}."
        )
    if name in registry.SHIPPED_MODELS and name != registry.DEFAULT_MODEL:
        if not registry.shipped_weights_installed(name):
            raise ValueError(f"model {name!r} ({source}) is not installed; {proceed}.")
        return functools.partial(registry.resolve_model, name), name
    architecture = registry.DEFAULT_ARCHITECTURE if name == registry.DEFAULT_MODEL else name
    if registry.MODELS[architecture].weights_installed:
        return functools.partial(registry.resolve_model, name), name
    if not args.allow_random_weights:
        raise ValueError(
            f"model {name!r} has no trained weights installed ({source}): its random weights "
            f"would predict noise; {proceed}, or --allow-random-weights to run them anyway."
        )
    print(
        f"WARNING: replaying with RANDOM weights for model {architecture!r} "
        "(--allow-random-weights): the labels are meaningless.",
        file=sys.stderr,
    )
    return functools.partial(registry.build_model, architecture), f"{architecture} (random)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="napari-adaptiveclick", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _segment_parser(sub)
    add_adapt_parser(sub)
    sub.add_parser(
        "demo", help="open napari with the sample EM volume and the widget", add_help=False
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from napari_adaptiveclick._napari.demo import main as demo_main

        return demo_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    try:
        return run_adapt(args) if args.command == "adapt" else segment(args)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outputs are renamed into place only once complete
        print("\ncancelled: no output was left half written.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
