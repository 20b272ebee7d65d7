"""The training loop: iterative click training with the previous mask (RITM / SPEC.md section 3).

One step: for every sample of the batch, pick an object from the dataset mix, augment image and
mask together, draw initial clicks (multi-point sampler), then add 0..max_extra_clicks clicks
without gradient at the error regions of the model's own prediction (the shared click
simulator), feeding the previous probability back; finally one forward with gradient and the
set criterion. All randomness of step ``k`` on rank ``r`` comes from ``seed, k, r``, so a run
resumed from a checkpoint replays exactly what an uninterrupted run would have done. The run
folder (log, checkpoints, crash safety) is :mod:`.run_folder`'s.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from napari_adaptiveclick.evaluation.simulator import next_click, next_scribble
from napari_adaptiveclick.interactive.predict import (
    PREDICTION_THRESHOLD,
    predict_probability,
    prompt_maps,
)
from napari_adaptiveclick.interactive.prompts import Click, disk_maps
from napari_adaptiveclick.learning.config import DatasetSpec, TrainConfig
from napari_adaptiveclick.learning.criterion import SetCriterion
from napari_adaptiveclick.learning.datasets import ObjectDataset, build_dataset
from napari_adaptiveclick.learning.first_prompts import draw_sample
from napari_adaptiveclick.learning.run_folder import CHECKPOINT, FINAL, RunFolder
from napari_adaptiveclick.models.checkpoint import (
    FORMAT,
    VERSION,
    checkpoint_dict,
    read_checkpoint,
)
from napari_adaptiveclick.models.registry import MODELS, build_from_config, build_model, get_config


class Trainer:
    """Builds data, model, optimiser and criterion from a :class:`TrainConfig` and runs it.

    ``resume``: continue from RUN_DIR/last.pt; a folder without one (stopped before its first
    checkpoint) starts over from step 0. Raises :class:`.run_folder.RunFolderError` when the
    folder cannot be created or written.
    """

    def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg.out)
        self.folder = RunFolder(self.run_dir)
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        if self.rank == 0:
            self.folder.create()  # an unusable --out fails now, not after loading the data
        self.device = _device(cfg.device, self.rank)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        keep_freed_memory()
        self.specs = [DatasetSpec.parse(s) for s in cfg.datasets]
        datasets = [build_dataset(s.name, cfg.data, "train", **s.options) for s in self.specs]
        self._prepare(datasets, [s.weight for s in self.specs], self._build_model())
        self.ddp_model = self.model
        if self.world > 1:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if resume and self.folder.checkpoint.is_file():
            self._load_state(self.folder.checkpoint)
        elif resume and self.rank == 0:
            print(
                f"note: {self.run_dir} has no checkpoint yet: the run starts over from step 0",
                file=sys.stderr,
            )
        self._stop = False

    @classmethod
    def for_objects(
        cls, cfg: TrainConfig, datasets: list[ObjectDataset], model: torch.nn.Module
    ) -> Trainer:
        """A single-process trainer over ``datasets`` already in memory and ``model`` already
        built (adaptation, :mod:`.adapt`): no run folder, no dataset names, no signal
        handlers; ``cfg.datasets``, ``data``, ``out`` and ``init`` are not used. The caller
        drives :meth:`train_step` itself."""
        trainer = cls.__new__(cls)
        trainer.cfg = cfg
        trainer.run_dir = trainer.folder = None
        trainer.rank, trainer.world = 0, 1
        trainer.device = _device(cfg.device, 0)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        trainer.specs = []
        trainer._prepare(datasets, [1.0] * len(datasets), model.train())
        trainer.ddp_model = trainer.model
        trainer._stop = False
        return trainer

    # ------------------------------------------------------------------ setup
    def _prepare(
        self, datasets: list[ObjectDataset], weights: list[float], model: torch.nn.Module
    ) -> None:
        """Data mix, model on the device, criterion, optimiser and the step count."""
        cfg = self.cfg
        cfg.check()
        self.datasets: list[ObjectDataset] = list(datasets)
        mix = np.array(weights, dtype=np.float64)
        self.mix = mix / mix.sum()
        self.model = model.to(self.device)
        if cfg.box_prob > 0:  # trained with boxes: the weights say how to feed one
            self.model.config = replace(self.model.config, box_prior=cfg.box_prior)
            self.model.config.validate()
        self.input_size = self.model.config.input_size
        self.criterion = SetCriterion(mask_loss=cfg.loss, fused_weight=cfg.fused_weight)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            weight_decay=cfg.weight_decay,
            foreach=True,
        )
        self.steps_per_epoch = max(
            1, math.ceil(sum(len(d) for d in self.datasets) / (cfg.batch_size * self.world))
        )
        self.max_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.step = 0

    def _build_model(self):
        if self.cfg.init:
            model = build_model(None, self.cfg.init)
            if model.config.name != self.cfg.model and self.cfg.model in MODELS:
                raise ValueError(
                    f"--init holds a '{model.config.name}' model but --model is '{self.cfg.model}'."
                )
            return model.train()
        torch.manual_seed(self.cfg.seed)
        return build_from_config(get_config(self.cfg.model)).train()

    def lr_at(self, step: int) -> float:
        """Paper schedule: x0.1 after ``lr_drop_epoch`` epochs (as a fraction of the run when
        ``max_steps`` shortens it); optional linear warm-up."""
        drop_fraction = self.cfg.lr_drop_epoch / self.cfg.epochs
        lr = self.cfg.lr * (0.1 if step >= drop_fraction * self.max_steps else 1.0)
        if self.cfg.warmup_steps and step < self.cfg.warmup_steps:
            lr *= (step + 1) / self.cfg.warmup_steps
        return lr

    # ------------------------------------------------------------------ batches
    def _draw_sample(self, rng: np.random.Generator):
        """One sample of the mix (:func:`.first_prompts.draw_sample`)."""
        return draw_sample(self.cfg, self.datasets, self.mix, self.input_size, rng)

    def make_batch(self, rng: np.random.Generator):
        """(images (B,3,S,S), masks (B,S,S) bool numpy, prompts per sample, box-first boxes
        per sample (None for the others), propagation priors (S,S) bool per sample (None for
        the others))."""
        drawn = [self._draw_sample(rng) for _ in range(self.cfg.batch_size)]
        images = torch.from_numpy(np.stack([d[0] for d in drawn]))[:, None].expand(-1, 3, -1, -1)
        return (
            images.contiguous().to(self.device),
            np.stack([d[1] for d in drawn]),
            [d[2] for d in drawn],
            [d[3] for d in drawn],
            [d[4] for d in drawn],
        )

    def _click_maps(self, clicks: list[list[Click]]) -> torch.Tensor:
        return prompt_maps(clicks, self.input_size, self.model.config.click_radius, self.device)

    def add_error_clicks(self, images, masks, clicks, rng, boxes=None, priors=None) -> torch.Tensor:
        """0..max_extra_clicks rounds (drawn per batch) of no-grad prediction + a simulated click
        (or, with ``stroke_prob``, a stroke) on each sample's largest error; returns the
        previous probability (B, 1, S, S): zero at first, ``box_prior`` inside the boxes, 1
        on a propagation sample's prior mask (as ``ClickSession.set_previous_mask`` feeds
        it)."""
        b, s = images.shape[0], self.input_size
        prev = torch.zeros(b, 1, s, s, device=self.device)
        for i, box in enumerate(boxes or []):
            if box is not None:
                prev[i, 0, box.top : box.bottom, box.left : box.right] = self.cfg.box_prior
        for i, prior in enumerate(priors or []):
            if prior is not None:
                prev[i, 0] = torch.from_numpy(prior.astype(np.float32)).to(self.device)
        rounds = int(rng.integers(0, self.cfg.max_extra_clicks + 1))
        for _ in range(rounds):
            prev = predict_probability(
                self.model, images, prev, self._click_maps(clicks), inference=False
            )
            preds = (prev[:, 0] > PREDICTION_THRESHOLD).cpu().numpy()
            for i in range(b):
                clicked = disk_maps(clicks[i], (s, s), 1.0).max(0) > 0 if clicks[i] else None
                if self.cfg.stroke_prob > 0 and rng.random() < self.cfg.stroke_prob:
                    click = next_scribble(masks[i], preds[i], clicked)
                else:
                    click = next_click(masks[i], preds[i], clicked)
                if click is not None:
                    clicks[i] = [*clicks[i], click]
        return prev

    # ------------------------------------------------------------------ loop
    def train_step(self, step: int) -> dict[str, float]:
        rng = np.random.default_rng([self.cfg.seed, step, self.rank])
        images, masks, clicks, boxes, priors = self.make_batch(rng)
        prev = self.add_error_clicks(images, masks, clicks, rng, boxes, priors)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        outputs = self.ddp_model(images, prev, self._click_maps(clicks))
        targets = [torch.from_numpy(m[None].astype(np.float32)).to(self.device) for m in masks]
        terms = self.criterion(outputs, targets)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if self.cfg.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
        self.optimizer.step()
        with torch.no_grad():
            pred = outputs["mask_logits"].detach()[:, 0] > 0
            gt = torch.from_numpy(masks).to(self.device)
            iou = ((pred & gt).sum((1, 2)) / (pred | gt).sum((1, 2)).clamp(min=1)).mean()
        keys = ("loss", "loss_class", "loss_mask", "loss_dice")
        return {k: float(terms[k].detach()) for k in keys} | {
            "iou": float(iou),
            "lr": self.lr_at(step),
        }

    def run(self) -> None:
        """Train until ``max_steps``, then write RUN_DIR/final.pt. Each step is logged, and
        its line fsynced before the checkpoint that holds it (every ``save_every`` steps or
        ``save_every_seconds``, atomically); SIGINT/SIGTERM save and stop."""
        from tqdm import tqdm

        is_main = self.rank == 0
        if is_main:
            for note in self.folder.open(asdict(self.cfg), self.step):
                print(f"note: {note}", file=sys.stderr)
        self._install_signal_handlers()
        bar = tqdm(
            total=self.max_steps,
            initial=self.step,
            disable=not is_main,
            desc="train",
            dynamic_ncols=True,
        )
        last_save = time.monotonic()
        try:
            while self.step < self.max_steps and not self._stop:
                start = time.perf_counter()
                metrics = self.train_step(self.step)
                self.step += 1
                rate = self.cfg.batch_size * self.world / (time.perf_counter() - start)
                if is_main:
                    self.folder.log(
                        {"step": self.step, **metrics, "samples_per_s": rate, "time": time.time()}
                    )
                due = (
                    self.step % self.cfg.save_every == 0
                    or time.monotonic() - last_save > self.cfg.save_every_seconds
                )
                if due or self.step == self.max_steps or self._stop:
                    self.save_state()
                    last_save = time.monotonic()
                bar.update(1)
                bar.set_postfix(
                    loss=f"{metrics['loss']:.3f}", iou=f"{metrics['iou']:.2f}", sps=f"{rate:.2f}"
                )
            if self.world > 1:
                self.check_ranks_in_sync()
            if is_main and self.step >= self.max_steps:
                extra = {"train_steps": self.step, "loss": self.cfg.loss}
                self.folder.save(FINAL, checkpoint_dict(self.model, extra=extra))
        finally:
            bar.close()
            self.folder.close()

    def check_ranks_in_sync(self) -> None:
        """Compare a checksum of the parameters across ranks (DDP must keep them identical);
        rank 0 writes RUN_DIR/ddp_sync.json and every rank raises if they differ."""
        checksum = torch.stack([p.detach().double().sum() for p in self.model.parameters()]).sum()
        gathered = [torch.zeros_like(checksum) for _ in range(self.world)]
        dist.all_gather(gathered, checksum)
        values = [float(v) for v in gathered]
        if self.rank == 0:
            self.folder.write_text(
                "ddp_sync.json", json.dumps({"step": self.step, "checksums": values})
            )
        if max(values) - min(values) > 1e-6 * max(1.0, abs(values[0])):
            raise RuntimeError(f"DDP ranks diverged: parameter checksums {values}")

    def _install_signal_handlers(self) -> None:
        def handler(signum, frame):  # noqa: ARG001
            self._stop = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread (e.g. inside a test runner thread)
                pass

    # ------------------------------------------------------------------ checkpoints
    def save_state(self) -> None:
        """Write RUN_DIR/last.pt (weights, optimiser, step, config) after the log; rank 0."""
        if self.rank == 0:
            state = {
                "format": FORMAT,
                "version": VERSION,
                "config": self.model.config.to_dict(),
                "state_dict": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "step": self.step,
                "train_config": asdict(self.cfg),
            }
            self.folder.save(CHECKPOINT, state)
        if self.world > 1:
            dist.barrier()

    def _load_state(self, path: Path) -> None:
        state = read_checkpoint(path)
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])  # run() cuts the log back to this step


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of returning large blocks to the OS.

    Training allocates and frees the same large activation buffers every step; with glibc's
    defaults each one is a fresh ``mmap`` whose pages are faulted in and zeroed again, which
    doubled the time of memory-bound ops on the 2-core VMs here. No-op off glibc.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, 1 << 32)
        libc.mallopt(m_top_pad, 1 << 28)
    except (OSError, AttributeError):
        pass


def _device(name: str, rank: int) -> torch.device:
    from napari_adaptiveclick.models.device import pick_device

    chosen = pick_device(name)
    if chosen == "cuda":
        return torch.device(
            "cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count()
        )
    return torch.device(chosen)
