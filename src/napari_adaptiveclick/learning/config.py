"""What a training run is made of: the dataset mix (:class:`DatasetSpec`, written
``name[:key=value:...]``) and every option of the run (:class:`TrainConfig`, saved as
RUN_DIR/train_config.json and read back to resume the run)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DatasetSpec:
    """One dataset of the mix: ``name[:key=value:...]`` on the command line."""

    name: str
    options: dict = field(default_factory=dict)
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        name, *pairs = text.strip().split(":")
        options, weight = {}, 1.0
        for pair in pairs:
            if "=" not in pair:
                raise ValueError(f"Dataset option {pair!r} in {text!r} must look like key=value.")
            key, value = pair.split("=", 1)
            key = key.replace("-", "_")
            if key == "weight":
                weight = float(value)
            else:
                options[key] = int(value) if value.isdigit() else value
        return cls(name, options, weight)

    def __str__(self) -> str:
        return ":".join([self.name, *(f"{k}={v}" for k, v in self.options.items())])


@dataclass
class TrainConfig:
    """Every option of a training run (saved as RUN_DIR/train_config.json)."""

    datasets: list[str]
    data: str
    out: str
    model: str = "tiny"
    init: str | None = None
    loss: str = "afl"
    batch_size: int = 8
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    epochs: int = 60
    lr_drop_epoch: int = 40
    max_steps: int | None = None
    warmup_steps: int = 0
    clip_grad: float = 0.0
    max_extra_clicks: int = 3
    # Share of samples that start from the click simulator's first click (one positive at the
    # object's centre, as NoC evaluation and users start) instead of the multi-point sampler;
    # 0 (training runs) draws no extra random number, so runs replay as before. Adaptation.
    first_click_prob: float = 0.0
    # Other first prompts (issue #16): the share of samples that start from a jittered box
    # (its seed click at the box's centre and ``box_prior`` inside the box as the previous
    # mask, as ClickSession.add_box feeds a model trained with it) and from a stroke along the
    # object's skeleton (drawn for the samples that did not start from a box: (1 - box_prob)
    # * stroke_prob of all); ``stroke_prob`` is also the chance that a simulated corrective
    # prompt is a stroke along the error region instead of a click. 0 draws no random number.
    box_prob: float = 0.0
    stroke_prob: float = 0.0
    box_prior: float = 0.4
    # Propagation (issue #13): the share of samples with a neighbour on an adjacent slice
    # (``ObjectSample.neighbours``) that are prompted as propagation prompts a slice: that
    # neighbour's mask as the previous mask and the click propagation derives from it (the
    # deepest point of the neighbour's mask). 0 draws no random number.
    neighbour_prob: float = 0.0
    scale_min: float = 0.75
    scale_max: float = 1.25
    fused_weight: float = 0.0
    # Domain randomisation (augment.randomize_domain) of each crop: 0 = off, 1 = full rates.
    domain_randomization: float = 0.0
    # Share of crops zoomed in beyond scale_max (up to zoom_max), as the session shows small
    # images and small zoom-in crops: upscaled to the model's input.
    zoom_prob: float = 0.0
    zoom_max: float = 4.0
    seed: int = 0
    save_every: int = 50
    save_every_seconds: float = 300.0
    # NoC evaluation of final.pt on each dataset's test split when the run ends (training's
    # ``--no-eval``: False; a resumed run keeps it). eval_objects: a seeded subset of that many
    # test objects per dataset; 0 or None (run folders written before the bound) = all.
    evaluate: bool = True
    eval_objects: int | None = 20
    eval_max_clicks: int = 20
    device: str = "auto"
    num_threads: int | None = None

    def check(self) -> None:
        """Raise ValueError, saying which, for a share outside [0, 1], a box prior the
        saved weights could not be loaded with, or an unknown mask loss (before any data,
        model or run folder is made)."""
        from napari_adaptiveclick.learning.losses import get_mask_loss

        get_mask_loss(self.loss)  # its message lists the known names
        for name in ("first_click_prob", "box_prob", "stroke_prob", "zoom_prob", "neighbour_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        if self.box_prob > 0 and not 0.0 < self.box_prior < 0.5:
            raise ValueError(
                f"box_prior must be in (0, 0.5) (below the mask threshold), got {self.box_prior}."
            )
