"""``python -m training.finetune``: train or fine-tune AdaptiveClick on EM / MRI data.

Examples::

    python -m training.finetune --dataset sstem --data ../shared/data --model tiny --out runs/mito
    python -m training.finetune --dataset sstem:kind=mitochondria,brats:modality=flair \\
        --data ../shared/data --model tiny --loss afl --max-steps 2000 --out runs/mix
    python -m training.finetune --config run.json          # the same options in a file
    python -m training.finetune --resume runs/mix [--max-steps 4000]
    torchrun --nproc_per_node 2 -m training.finetune ...    # DistributedDataParallel

RUN_DIR holds train_config.json, metrics.jsonl (one line per step), last.pt (the checkpoint
``--resume`` continues from) and final.pt. A kill at any moment loses no checkpointed step and
``--resume`` logs every step exactly once (``learning.run_folder``). A folder with a checkpoint
is only continued with ``--resume``; one stopped before its first checkpoint holds no finished
work and starts over from step 0, with ``--resume`` (its saved options) or with the same
``--out`` (the new options).

At the end, NoC is evaluated on a seeded subset of each dataset's test split (20 objects by
default, ``--eval-objects``; ``training.evaluate``) and the table is saved in
RUN_DIR/eval_<dataset>/. ``--no-eval`` skips it, and a resumed run keeps that choice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields, replace
from pathlib import Path

import napari_adaptiveclick  # noqa: F401  (sets OMP_WAIT_POLICY before torch starts)
from napari_adaptiveclick.evaluation.report import STALE_NOTE
from napari_adaptiveclick.learning.config import DatasetSpec, TrainConfig
from napari_adaptiveclick.learning.run_folder import RunFolder, RunFolderError
from napari_adaptiveclick.learning.trainer import Trainer
from napari_adaptiveclick.models.registry import model_names

_EXAMPLE = "sstem:kind=mitochondria,sstem:kind=cells,brats:modality=flair"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.finetune", description=__doc__.split("\n")[0]
    )
    p.add_argument("--config", help="JSON or YAML file with any of the options below (CLI wins)")
    p.add_argument("--dataset", help=f"dataset name or comma-separated mix, e.g. {_EXAMPLE}")
    p.add_argument("--data", help="data root (default ../shared/data or $ADAPTIVECLICK_DATA)")
    p.add_argument("--model", choices=model_names())
    p.add_argument("--init", help="initial weights: this project's checkpoint or a released .pth")
    p.add_argument("--loss", help="mask loss: afl, bce, wbce, balanced_ce, soft_iou, fl, nfl, pl")
    p.add_argument(
        "--out",
        help="run directory (created; one holding a checkpoint needs --resume; one stopped "
        "before its first checkpoint starts over)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its checkpoint, with its saved options (flags "
        "given here override them)",
    )
    p.add_argument(
        "--lr-drop-epoch",
        type=int,
        help="the learning rate drops to a tenth after this many of --epochs (default 40 of "
        "60); with --max-steps, at that share of the steps (about 2/3)",
    )
    for name, kind in [
        ("batch-size", int),
        ("lr", float),
        ("epochs", int),
        ("max-steps", int),
        ("warmup-steps", int),
        ("clip-grad", float),
        ("max-extra-clicks", int),
        ("scale-min", float),
        ("scale-max", float),
        ("fused-weight", float),
        ("domain-randomization", float),
        ("zoom-prob", float),
        ("zoom-max", float),
        ("box-prob", float),
        ("stroke-prob", float),
        ("box-prior", float),
        ("neighbour-prob", float),
        ("seed", int),
        ("save-every", int),
        ("save-every-seconds", float),
        ("eval-max-clicks", int),
        ("num-threads", int),
    ]:
        p.add_argument(f"--{name}", type=kind)
    p.add_argument("--device", help="auto (default), cpu, cuda, mps")
    p.add_argument(
        "--eval-objects",
        type=int,
        metavar="N",
        help="test objects per dataset (a seeded subset) for the NoC evaluation at the end "
        "(default 20; 0 = all, which can take many minutes)",
    )
    p.add_argument(
        "--no-eval",
        dest="evaluate",
        action="store_false",
        default=None,
        help="skip the NoC evaluation at the end (saved: a resumed run skips it too)",
    )
    p.add_argument(
        "--eval",
        dest="evaluate",
        action="store_true",
        default=None,
        help="evaluate at the end after all (e.g. resuming a --no-eval run)",
    )
    return p


def _read_config_file(path: str) -> dict:
    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)


def build_config(args: argparse.Namespace) -> tuple[TrainConfig, bool]:
    """Merge config file, resume state and CLI flags into a :class:`TrainConfig`."""
    known = {f.name for f in fields(TrainConfig)}
    values: dict = {}
    if args.resume:
        saved = Path(args.resume) / "train_config.json"
        if not saved.is_file():
            raise SystemExit(f"error: {args.resume} is not a run directory (no train_config.json).")
        try:
            values.update(json.loads(saved.read_text()))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"error: cannot read {saved}: {exc}") from exc
        values["out"] = args.resume
    if args.config:
        file_values = _read_config_file(args.config)
        unknown = set(file_values) - known - {"dataset"}
        if unknown:
            raise SystemExit(
                f"error: unknown keys in {args.config}: {sorted(unknown)}; known: {sorted(known)}"
            )
        values.update(file_values)
    cli = {k: v for k, v in vars(args).items() if v is not None and k in known}
    values.update(cli)
    dataset = args.dataset or values.pop("dataset", None)
    if dataset:
        values["datasets"] = [
            s for s in (dataset if isinstance(dataset, list) else dataset.split(",")) if s
        ]
    if not values.get("datasets"):
        raise SystemExit("error: --dataset is required (e.g. --dataset sstem).")
    if not values.get("out"):
        raise SystemExit("error: --out RUN_DIR is required.")
    if not values.get("data"):
        from napari_adaptiveclick.learning.datasets import default_data_root

        values["data"] = str(default_data_root())
    for spec in values["datasets"]:
        DatasetSpec.parse(spec)
    if (values.get("eval_objects") or 0) < 0:
        raise SystemExit("error: --eval-objects must be 0 (all) or more.")
    cfg = TrainConfig(**{k: v for k, v in values.items() if k in known})
    try:
        cfg.check()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
    if not args.resume and RunFolder(cfg.out).holds_finished_work():
        raise SystemExit(
            f"error: {cfg.out} already holds a run; continue it with --resume {cfg.out} or pick another --out."
        )
    return cfg, bool(args.resume)


def evaluate_run(cfg: TrainConfig, checkpoint: Path) -> list[dict]:
    """NoC on the test split of every dataset of the run, with ``training.evaluate``; each
    table is printed and saved in RUN_DIR/eval_<dataset>/."""
    from napari_adaptiveclick.evaluation.report import format_comparison
    from napari_adaptiveclick.learning.datasets import DATASET_NAMES
    from napari_adaptiveclick.learning.evaluation_run import load_samples, run_evaluation
    from training.evaluate import parse_args, settings_from_args

    option_flags = {"objects": "--object-mode"}  # brats' objects=slice|components
    results = []
    specs = {str(spec): spec for spec in map(DatasetSpec.parse, cfg.datasets)}  # weights aside
    for spec in specs.values():
        if spec.name not in DATASET_NAMES:
            print(
                f"no NoC evaluation on {spec}: training.evaluate has no such dataset",
                file=sys.stderr,
            )
            continue
        out = Path(cfg.out) / f"eval_{str(spec).replace(':', '_').replace('=', '-')}"
        argv = [
            "--dataset",
            spec.name,
            "--data",
            cfg.data,
            "--split",
            "test",
            "--checkpoint",
            str(checkpoint),
            "--max-clicks",
            str(cfg.eval_max_clicks),
            "--device",
            cfg.device,
            "--out",
            str(out),
            "--overwrite",  # the evaluation of the run's earlier final.pt
        ]
        for key, value in spec.options.items():
            argv += [option_flags.get(key, f"--{key.replace('_', '-')}"), str(value)]
        if cfg.eval_objects:
            argv += ["--objects", str(cfg.eval_objects), "--seed", str(cfg.seed)]
        settings = settings_from_args(parse_args(argv))
        total = len(load_samples(replace(settings, objects=None)))
        print(
            f"evaluating NoC of final.pt on {min(cfg.eval_objects or total, total)} of {total} "
            f"test objects of {spec}, {cfg.eval_max_clicks} clicks at most (--eval-objects N, "
            "0 = all; --no-eval skips it)",
            file=sys.stderr,
        )
        metrics = run_evaluation(settings)  # (which removes the folder's STALE_NOTE)
        print(format_comparison([(f"{cfg.model} ({spec})", metrics)]))
        results.append(metrics)
    return results


def mark_stale_evaluations(run: Path, step: int) -> None:
    """Note in each ``eval_*`` folder of ``run`` that it measured a final.pt from before
    step ``step``, which training has since replaced (kept, not deleted: the figures are the
    user's; the next evaluation of the folder removes the note)."""
    for folder in sorted(run.glob("eval_*")):
        if (folder / "metrics.json").is_file() and not (folder / STALE_NOTE).exists():
            (folder / STALE_NOTE).write_text(
                f"This evaluation measured a final.pt of step {step} or before; the run was "
                f"trained further since. python -m training.finetune --resume {run} --eval measures "
                "the new final.pt.\n"
            )
            print(f"{folder} is stale: it measured a final.pt of step {step} or before",
                  file=sys.stderr)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from napari_adaptiveclick.learning.datasets import DatasetError
    from napari_adaptiveclick.models.errors import CheckpointError

    try:
        return _main(argv)
    except (DatasetError, CheckpointError, RunFolderError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    cfg, resume = build_config(args)
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1:
        import torch
        import torch.distributed as dist

        dist.init_process_group(
            "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
        )
    try:
        trainer = Trainer(cfg, resume=resume)
        print(
            f"training {cfg.model} on {', '.join(cfg.datasets)}: "
            f"{sum(len(d) for d in trainer.datasets)} objects, {trainer.max_steps} steps from step {trainer.step}, "
            f"batch {cfg.batch_size} x {world} process(es), loss {cfg.loss}, device {trainer.device}",
            file=sys.stderr,
        )
        started_at = trainer.step
        trainer.run()
        finished = trainer.step >= trainer.max_steps
    finally:
        if world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
    if not finished or int(os.environ.get("RANK", 0)) != 0:
        return 0
    if trainer.step > started_at:  # until each is evaluated again (a failed one stays so)
        mark_stale_evaluations(Path(cfg.out), started_at)
    if not cfg.evaluate:
        print("no NoC evaluation (--no-eval; --resume RUN_DIR --eval runs it)", file=sys.stderr)
        return 0
    from napari_adaptiveclick.evaluation.report import EvaluationError

    try:
        evaluate_run(cfg, Path(cfg.out) / "final.pt")
    except EvaluationError as exc:
        print(f"error: evaluation after training failed: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
