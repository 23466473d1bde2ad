"""Training the noise predictor (DDPM, Algorithm 1: Ho et al. 2020, https://arxiv.org/abs/2006.11239),
with what makes it work in practice.

    repeat:  x_0 ~ data, t ~ Uniform{0..T-1}, eps ~ N(0, I)
             loss = || eps - eps_theta(sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, t, y) ||^2   (eq. 14)

Each extra is standard and is a short function below, which the notebooks call too:
- `drop_labels`: label dropout (p_uncond), so one network also learns the unconditional
  eps(x_t, null) that classifier-free guidance needs (Ho & Salimans 2022);
- `diffusion_loss`: eq. 14, optionally weighted per image by min-SNR (Hang et al. 2023, `loss_weight`)
  and optionally with v as the target instead of eps (Salimans & Ho 2022);
- `flow_matching_loss` (path="linear"): the same loop on the straight path x_t = (1 - t) x_0 + t eps,
  t in (0, 1), with the velocity eps - x_0 as the target (Lipman et al. 2023; Liu et al. 2022; paths.py);
- `ema_update` with `ema_decay_at`: an exponential moving average of the weights, with a warm-up
  (sampled from, it gives cleaner images);
- `lr_at`: learning-rate warm-up then cosine decay; plus gradient-norm clipping, bfloat16 autocast
  where it is safe, periodic atomic checkpoints and resume, a budget in steps and/or minutes.

Conditioning: none, a class label, or a prompt in words (text=True: prompts made from the labels and
the images, dropped to the empty prompt like labels; chapter 11). With autoencoder=..., the images
are encoded once and the model learns their latents (latent diffusion, chapter 10); the loop is the same.

`TrainConfig` is the recipe, in one place: each field's default and help text; the command line's
`train` flags are generated from it (cli.py).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .autoencoder import encode_all, latent_entry, load_autoencoder
from .checkpoints import (
    FLOW_SAMPLING,
    GUIDED_SAMPLING,
    CheckpointError,
    checkpoint_paths,
    load_checkpoint,
    load_into,
    load_train_state,
    read_config,
    save_checkpoint,
)
from .data import DATASETS, ImageData, dataset_info, load_data
from .distributed import accelerate_precision_note, is_main_process, make_accelerator, shard, world_size
from .dit import DIT_WIDTH
from .forward import PATH_PREDICTIONS, PREDICTION_TYPES, q_sample, v_target
from .minimal_unet import MINIMAL_WIDTH
from .models import MODELS, build_model
from .paths import PATHS, TIME_SAMPLINGS, TIME_SCALE, linear_interpolate, sample_time
from .schedules import SCHEDULES, make_schedule
from .settings import autocast_dtype, progress_bar
from .text import MAX_TOKENS, Tokenizer, image_attributes, random_prompts, vocabulary
from .unet import TIME_EMBEDDINGS, UNET_WIDTH

DEFAULT_WIDTH = {"unet": UNET_WIDTH, "minimal": MINIMAL_WIDTH, "dit": DIT_WIDTH}
DEFAULT_STEPS = 1000  # the budget when neither steps nor minutes is given
DROPOUT_SEED_STRIDE = 1_000_003  # a prime: the processes' dropout seeds never meet another run's
LOSS_WEIGHTINGS = ("simple", "min_snr")
UNET_ONLY = ("channel_mults", "num_res_blocks", "attention", "attention_resolutions", "time_embedding", "dropout")
# (the minimal U-Net has none of these)
# The recipe: every setting whose best value depends on the images, one row per dataset, each row complete
# (TrainConfig's fields below default to None and are filled from the dataset's row). The 28x28 grey images
# get the recipe measured on a CPU (scripts/recipe_sweep.py, chapter 04); the 32x32 colour ones (CIFAR-10)
# the literature's settings (Ho et al. 2020, https://arxiv.org/abs/2006.11239, appendix B: 2 residual
# blocks per level, dropout 0.1, horizontal flips, lr 2e-4 at batch 128, EMA 0.9999), at a width that fits
# a shipped checkpoint (1.6M parameters, 6.4 MB; the paper's 128 channels and levels (1, 2, 2, 2) are
# 35.7M). Attention stays in the middle (8x8) only: DDPM's extra attention at 16x16 lowered the held-out
# loss neither at equal steps nor at equal time at small scale on a CPU (scripts/cifar_attention.py,
# data/results/cifar_attention.json); --attention-resolutions 16 adds it. base_channels is the U-Net's
# width; the minimal U-Net and the DiT keep their own (DEFAULT_WIDTH).
_GREY_28 = {"base_channels": UNET_WIDTH, "channel_mults": (1, 2, 2), "num_res_blocks": 1,
            "attention_resolutions": (), "dropout": 0.0, "hflip": False, "batch_size": 64, "lr": 1e-3,
            "warmup": 100, "ema_decay": 0.999}
RECIPES = {
    "mnist": _GREY_28,
    "fashion_mnist": _GREY_28,  # the MNIST recipe as measured; Fashion-MNIST was not swept on its own
    "cifar10": {"base_channels": 32, "channel_mults": (1, 2, 2), "num_res_blocks": 2,
                "attention_resolutions": (), "dropout": 0.1, "hflip": True, "batch_size": 128, "lr": 2e-4,
                "warmup": 1000, "ema_decay": 0.9999},
}
RECIPE_SETTINGS = tuple(_GREY_28)  # the settings the dataset decides
# Checkpoints written before a setting existed trained with these values (their JSON lacks the key).
BEFORE_THE_SETTING = {"loss_weighting": "simple", "prediction": "eps", "path": "vp", "time_sampling": "uniform"}
# What the training target and its weighting default to on each path (paths.py): the VP recipe's measured
# winner, and flow matching's plain velocity loss (Lipman et al. 2023, eq. 23; min-SNR is a VP weighting).
PATH_DEFAULTS = {"vp": {"prediction": "eps", "loss_weighting": "min_snr"},
                 "linear": {"prediction": "velocity", "loss_weighting": "simple"}}


def setting(default, help: str, **cli):
    """A TrainConfig field: its default, its help text, and for the command line optional `choices`,
    `flags` (instead of --field-name) and `metavar`. cli.py makes one `train` flag per field from them."""
    return field(default=default, metadata={"help": help, **cli})


def latent_channel_mults(size: int) -> tuple[int, ...]:
    """The U-Net's levels for latents of this size: the dataset's default levels halve the image twice,
    latents are smaller, so halve only while the size divides (7x7 MNIST latents: one level)."""
    mults = [1]
    while size % 2 == 0 and len(mults) < 3:
        size //= 2
        mults.append(2)
    return tuple(mults)


def default_setting(name: str, dataset: str, model: str = "unet"):
    """The default of a setting that the dataset decides (RECIPES); the width also depends on the
    network (the recipe's is our U-Net's; the others keep DEFAULT_WIDTH)."""
    if name == "base_channels" and model != "unet":
        return DEFAULT_WIDTH.get(model)
    return RECIPES[dataset][name] if dataset in RECIPES else None  # validate() names an unknown dataset


def by_dataset(name: str) -> str:
    """The help text's "(default: ...)" of a dataset-dependent setting: the default dataset's value, then
    each dataset whose row differs."""
    def text(value):
        return (",".join(map(str, value)) or "none") if isinstance(value, tuple) else str(value)
    first, *others = RECIPES.items()
    parts = [text(first[1][name])] + [f"{d}: {text(row[name])}" for d, row in others if row[name] != first[1][name]]
    return " (default: " + "; ".join(parts) + ")"


@dataclass
class TrainConfig:
    """The training recipe. The defaults are the winners of the measured sweep (scripts/recipe_sweep.py)."""

    dataset: str = setting("mnist", "the images to learn", choices=tuple(DATASETS))
    model: str = setting("unet", "the network: our U-Net, Yu 2025's minimal U-Net, or a DiT (Peebles & Xie 2023)",
                         choices=tuple(MODELS))
    path: str = setting("vp", "vp: diffusion (DDPM's noising); linear: flow matching / rectified flow, "
                        "x_t = (1 - t) x_0 + t eps, trained on the velocity", choices=PATHS)
    time_sampling: str = setting("uniform", "linear path: t ~ U(0, 1), or logit-normal (Esser et al. 2024, SD3)",
                                 choices=TIME_SAMPLINGS)
    conditional: bool = setting(True, "class-conditional, with label dropout for classifier-free guidance")
    base_channels: int | None = setting(
        None, "channels at the top level (default: "
        + ", ".join(f"{w} for {m}" for m, w in DEFAULT_WIDTH.items()) + "; cifar10: "
        + f"{RECIPES['cifar10']['base_channels']} for unet)")
    channel_mults: tuple[int, ...] | None = setting(None, "unet only: channel multiplier per resolution level"
                                                    + by_dataset("channel_mults"), metavar="M,M,...")
    num_res_blocks: int | None = setting(None, "unet only: residual blocks per resolution level"
                                         + by_dataset("num_res_blocks"))
    attention: bool = setting(True, "unet only: self-attention at the lowest resolution")
    attention_resolutions: tuple[int, ...] | None = setting(
        None, "unet only: self-attention also after every residual block at these resolutions in pixels "
        "('none' for none; DDPM: 16)" + by_dataset("attention_resolutions"), metavar="R,R,...")
    time_embedding: str = setting("every", "unet only: t and y enter every residual block, or only the middle "
                                  "ones (Yu 2025's choice, for the ablation)", choices=TIME_EMBEDDINGS)
    dropout: float | None = setting(None, "unet only: dropout in the residual blocks" + by_dataset("dropout"))
    hflip: bool | None = setting(None, "flip each training image left-right with probability 1/2"
                                 + by_dataset("hflip"))
    p_uncond: float = setting(0.1, "label dropout: the probability that a label is replaced by the null label")
    schedule: str = setting("linear", "noise schedule (beta_t)", choices=SCHEDULES)
    T: int = setting(1000, "diffusion steps", flags=("-T", "--timesteps"))
    prediction: str | None = setting(None, "training target: the noise eps (DDPM) or v (Salimans & Ho 2022) "
                                     "on the vp path, the velocity on the linear path (default: eps; linear: "
                                     "velocity)", choices=(*PREDICTION_TYPES, "velocity"))
    loss_weighting: str | None = setting(None, "simple: eq. 14, every t alike; min_snr: Hang et al. 2023, gamma 5 "
                                         "(default: min_snr; linear: simple)", choices=LOSS_WEIGHTINGS)
    batch_size: int | None = setting(None, "images per process and micro-batch; effective batch = batch_size "
                                     "x processes x grad_accum" + by_dataset("batch_size"))
    grad_accum: int = setting(1, "micro-batches whose gradients add up to one optimizer step (gradient "
                              "accumulation: a larger effective batch in the same memory)")
    lr: float | None = setting(None, "peak learning rate (AdamW), reached after the warm-up" + by_dataset("lr"))
    warmup: int | None = setting(None, "learning-rate warm-up steps" + by_dataset("warmup"))
    steps: int | None = setting(None, f"optimizer steps (default: {DEFAULT_STEPS} when minutes is not given "
                                "either; with both, whichever budget ends first)")
    minutes: float | None = setting(None, "wall-clock budget in minutes")
    ema_decay: float | None = setting(None, "decay of the moving average of the weights (the model sampled from)"
                                      + by_dataset("ema_decay"))
    grad_clip: float = setting(1.0, "largest gradient norm; larger gradients are scaled down to it")
    seed: int = setting(0, "random seed of the weights, the batches, t, the noise and the label dropout")
    amp: bool = setting(True, "bf16 autocast where native: CUDA and CPUs with AVX512-BF16/AMX "
                        "(settings.autocast_dtype); off: float32 only")
    checkpoint_every: int = setting(500, "save a checkpoint every N steps (0: only at the end)")
    data_limit: int | None = setting(None, "train on the first N images only (default: all)")
    autoencoder: str | None = setting(None, "latent diffusion: an autoencoder checkpoint (train-autoencoder); "
                                      "the model denoises its latents", metavar="PATH")
    text: bool = setting(False, "condition on prompts in words made from the labels (cross-attention) "
                         "instead of the labels")

    def __post_init__(self):
        # The defaults that depend on another setting, resolved here so the config says what runs.
        if self.channel_mults is None and self.autoencoder and self.model == "unet":
            self.channel_mults = latent_channel_mults(read_config(self.autoencoder)["latent_shape"][-1])
        for name in RECIPE_SETTINGS:
            if getattr(self, name) is None:
                setattr(self, name, default_setting(name, self.dataset, self.model))
        for name, value in PATH_DEFAULTS.get(self.path, PATH_DEFAULTS["vp"]).items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.steps is None and self.minutes is None:
            self.steps = DEFAULT_STEPS

    def model_kwargs(self, info, shape=None) -> dict:
        """shape: (C, H, W) of what the model denoises (default: the dataset's images; latents when
        autoencoder is set, from its checkpoint)."""
        if shape is None and self.autoencoder:
            shape = read_config(self.autoencoder)["latent_shape"]
        channels, size = (shape[0], shape[-1]) if shape is not None else (info.channels, info.size)
        kw = {
            "image_size": size,
            "in_channels": channels,
            "base_channels": self.base_channels,
            "num_classes": info.num_classes if self.conditional and not self.text else None,
            "prediction": self.prediction,
            "path": self.path,
        }
        if self.text:
            kw["vocab_size"] = len(vocabulary(info.name))
        if self.model == "unet":
            kw |= {
                "channel_mults": list(self.channel_mults),
                "num_res_blocks": self.num_res_blocks,
                "attention": self.attention,
                "attention_resolutions": list(self.attention_resolutions),
                "time_embedding": self.time_embedding,
                "dropout": self.dropout,
            }
        return kw

    def validate(self) -> None:
        """Raise a ValueError naming the first setting that is out of range (before any work is done)."""
        for f in dataclasses.fields(self):
            if "choices" in f.metadata:
                choices = f.metadata["choices"]
                _need(getattr(self, f.name) in choices, f.name, self, "one of " + ", ".join(map(repr, choices)))
        for name in ("attention", "conditional", "amp", "text", "hflip"):
            _need(isinstance(getattr(self, name), bool), name, self, "True or False")
        for name in ("batch_size", "grad_accum", "num_res_blocks", "T"):
            _need(_is_int(getattr(self, name)) and getattr(self, name) >= 1, name, self, "a positive integer")
        for name in ("warmup", "checkpoint_every"):
            _need(_is_int(getattr(self, name)) and getattr(self, name) >= 0, name, self, "an integer >= 0")
        for name in ("lr", "grad_clip"):
            _need(_is_number(getattr(self, name)) and getattr(self, name) > 0, name, self, "a positive number")
        _need(_is_int(self.base_channels) and self.base_channels >= 2 and self.base_channels % 2 == 0,
              "base_channels", self, "an even positive integer (the timestep embedding splits it in cos and sin)")
        mults = self.channel_mults
        _need(isinstance(mults, (tuple, list)) and len(mults) > 0 and all(_is_int(m) and m >= 1 for m in mults),
              "channel_mults", self, "one or more positive integers, e.g. (1, 2, 2)")
        res = self.attention_resolutions
        _need(isinstance(res, (tuple, list)) and all(_is_int(r) and r >= 1 for r in res), "attention_resolutions",
              self, "zero or more positive integers (pixels), e.g. (16,)")
        if self.model == "unet" and res:  # the dataset was checked among the choices above
            size = DATASETS[self.dataset].size
            levels = [size // 2**level for level in range(len(mults))]
            _need(set(res) <= set(levels), "attention_resolutions", self,
                  f"among this U-Net's levels for {self.dataset} ({', '.join(map(str, levels))} pixels)")
        _need(_is_number(self.dropout) and 0.0 <= self.dropout < 1.0, "dropout", self, "in [0, 1)")
        _need(_is_number(self.p_uncond) and 0.0 <= self.p_uncond < 1.0, "p_uncond", self, "in [0, 1)")
        _need(_is_number(self.ema_decay) and 0.0 <= self.ema_decay < 1.0, "ema_decay", self, "in [0, 1)")
        _need(_is_int(self.seed) and 0 <= self.seed < 2**63, "seed", self, "an integer in 0..2**63-1")
        _need(self.data_limit is None or (_is_int(self.data_limit) and self.data_limit >= 1), "data_limit", self,
              "a positive integer or None")
        if self.steps is None and self.minutes is None:
            raise ValueError("give a training budget: steps and/or minutes.")
        _need(self.steps is None or (_is_int(self.steps) and self.steps >= 1), "steps", self, "a positive integer")
        _need(self.minutes is None or (_is_number(self.minutes) and self.minutes > 0), "minutes", self,
              "a positive number")
        _need(not self.text or self.model == "unet", "model", self, "'unet' for text conditioning (cross-attention)")
        _need(self.prediction in PATH_PREDICTIONS[self.path], "prediction", self,
              f"{' or '.join(map(repr, PATH_PREDICTIONS[self.path]))} on the {self.path} path")
        _need(self.path == "vp" or self.loss_weighting == "simple", "loss_weighting", self,
              "'simple' on the linear path (min-SNR weights the VP path's noise levels)")
        _need(self.path == "linear" or self.time_sampling == "uniform", "time_sampling", self,
              "'uniform' on the vp path (it draws t from 0..T-1); logit_normal is for --path linear")
        _need(self.autoencoder is None or isinstance(self.autoencoder, str), "autoencoder", self,
              "the path of an autoencoder checkpoint, or None")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _need(ok: bool, name: str, cfg: TrainConfig, what: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {what}, got {getattr(cfg, name)!r}.")


@dataclass
class TrainResult:
    model: torch.nn.Module | None  # the EMA model, in eval mode: sample from this one (None but on the main process)
    raw_model: torch.nn.Module
    losses: list[float] = field(default_factory=list)
    step: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0
    checkpoint: Path | None = None


def lr_at(step: int, progress: float, cfg: TrainConfig) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 10% as the budget is used."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup))
    return cfg.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def drop_labels(y: torch.Tensor, p_uncond: float, null_label: int, generator=None) -> torch.Tensor:
    """Label dropout (Ho & Salimans 2022, Algorithm 1): each label becomes the null label with
    probability p_uncond, so the same network learns eps(x_t, y) and the unconditional eps(x_t, null).

    Returns a new tensor; the coin flips are drawn on the CPU from `generator` (one per label).
    """
    drop = torch.rand(len(y), generator=generator) < p_uncond
    return torch.where(drop.to(y.device), torch.full_like(y, null_label), y)


def hflip(x0: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Horizontal flips, DDPM's augmentation for CIFAR-10 (Ho et al. 2020, appendix B): the images
    x0 (B, C, H, W) whose entry in the boolean `flip` (B,) is True come back mirrored left-right (the
    last axis, W, reversed); the others come back as they are. A mirrored photograph is as likely as
    the original, so the model learns from twice the images and favours neither side."""
    return torch.where(flip.to(x0.device)[:, None, None, None], x0.flip(-1), x0)


def ema_decay_at(step: int, decay: float) -> float:
    """The EMA decay for the update after `step` steps: min(decay, (1 + step) / (10 + step)).

    A warm-up (as TensorFlow's ExponentialMovingAverage does with num_updates): 0.1 at the first
    step, 0.5 at step 8, 0.9 at step 80, reaching 0.999 after ~9,000 steps. Without it the average
    would sit near the random initial weights for the first few thousand steps of a short run.
    """
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter (buffers are copied)."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def loss_weight(t: torch.Tensor, schedule, weighting: str = "simple", prediction: str = "eps",
                gamma: float = 5.0) -> torch.Tensor:
    """Per-image weight of the squared error. "simple": 1 (eq. 14). "min_snr": min(SNR_t, gamma) / SNR_t
    for an eps target, min(SNR_t, gamma) / (SNR_t + 1) for v (Hang et al. 2023, eq. 9-10): the
    nearly clean t, whose huge SNR would dominate an x_0 loss, count no more than SNR = gamma."""
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"unknown loss weighting {weighting!r}; choose one of {LOSS_WEIGHTINGS}.")
    if prediction not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction type {prediction!r}; choose one of {PREDICTION_TYPES}.")
    if weighting == "simple":
        return torch.ones(len(t), device=t.device)
    snr = schedule.snr.to(t.device)[t].float()
    return snr.clamp(max=gamma) / (snr if prediction == "eps" else snr + 1)


def diffusion_loss(model, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule, y=None, *,
                   prediction: str = "eps", weighting: str = "simple", gamma: float = 5.0) -> torch.Tensor:
    """The training loss of Algorithm 1 (eq. 14), weighted per image:

        x_t  = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps                    (eq. 4, forward.q_sample)
        loss = mean over images of  w(t) * mean over pixels of (target - model(x_t, t, y))^2

    target = eps (prediction="eps"), or v = sqrt(ab_t) eps - sqrt(1 - ab_t) x_0 ("v"); w = loss_weight.
    With the defaults it is exactly F.mse_loss(model(x_t, t, y), noise); the training recipe
    (TrainConfig) uses weighting="min_snr". The error is computed in float32 even under autocast.
    """
    x_t = q_sample(x0, t, schedule, noise)
    pred = model(x_t, t, y)
    target = noise if prediction == "eps" else v_target(x0, noise, t, schedule)
    per_image = (pred.float() - target).pow(2).mean(dim=tuple(range(1, pred.ndim)))
    return (loss_weight(t, schedule, weighting, prediction, gamma) * per_image).mean()


def flow_matching_loss(model, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, y=None) -> torch.Tensor:
    """Conditional flow matching on the linear path (Lipman et al. 2023, https://arxiv.org/abs/2210.02747,
    eq. 23; rectified flow, Liu et al. 2022, https://arxiv.org/abs/2209.03003, eq. 1):

        x_t  = (1 - t) x_0 + t eps                          (paths.linear_interpolate)
        loss = mean of (eps - x_0 - v_theta(x_t, t, y))^2   (the velocity dx_t/dt of this one straight line)

    t (B,) in [0, 1]; the network is told t * 1000 (paths.TIME_SCALE), as the VP networks are told a
    step in 0..999. The error is computed in float32 even under autocast."""
    x_t = linear_interpolate(x0, noise, t)
    pred = model(x_t, t * TIME_SCALE, y)
    return (pred.float() - (noise - x0)).pow(2).mean()


def _checkpoint_config(cfg: TrainConfig, model, data: ImageData, step: int, seconds: float, out=None) -> dict:
    extra = {}
    if cfg.autoencoder:  # which autoencoder decodes this model's latents
        extra["latent"] = latent_entry(cfg.autoencoder, out)
    if cfg.text:  # the vocabulary its prompts are tokenized with
        extra["text"] = {"vocab": vocabulary(data.info.name), "max_tokens": MAX_TOKENS}
    return {  # the model's own entry (name, constructor arguments) is added by save_checkpoint
        "schedule": {"name": cfg.schedule, "T": cfg.T},
        "dataset": data.info.name,
        "image_shape": [data.info.channels, data.info.size, data.info.size],
        "classes": list(data.info.class_names) if cfg.conditional or cfg.text else None,
        "training": {
            **{k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("dataset",)},
            "steps_done": step,
            "seconds": round(seconds, 1),
            "data_source": data.record,  # no local folder: a checkpoint is shared
        },
        **extra,
        **({"sampling": dict(GUIDED_SAMPLING if cfg.path == "vp" else FLOW_SAMPLING)}
           if cfg.conditional or cfg.text else {}),
    }


def train(
    cfg: TrainConfig,
    out: str | Path | None = None,
    data: ImageData | None = None,
    resume: bool = False,
    device=None,
    progress: bool = True,
    on_step=None,
) -> TrainResult:
    """Train a noise predictor: Algorithm 1 of DDPM (Ho et al. 2020, https://arxiv.org/abs/2006.11239).
    `out` is the checkpoint path (None: keep in memory only).

    One process, or many started by `accelerate launch` / `torchrun` (data parallel, distributed.py):
    every process runs this same function on its own slice of each batch; the main process alone keeps
    the EMA, shows the progress bar and writes the checkpoint. resume=True continues from `out` with the
    settings saved there; only the budget (steps, minutes) comes from `cfg`. on_step(step, loss) is
    called after every step (the notebooks draw a live loss curve with it). Every setting and the
    output path are checked before any data is loaded or any step is taken.
    """
    run = _start_run(cfg, out, data, resume, device, progress)  # model, EMA, optimiser, data; resumed
    cfg, n = run.cfg, run.per_step  # n: the effective batch; every process draws it all, then slices
    while (done := run.fraction_done()) < 1.0:
        idx = torch.randint(len(run.images), (n,), generator=run.gen)  # x_0 ~ q(x_0)
        y = run.condition(idx, run.gen) if run.condition else None  # labels or prompts, some dropped (CFG)
        if cfg.path == "vp":
            t = torch.randint(cfg.T, (n,), generator=run.gen)  # t ~ Uniform({0, ..., T-1})
        else:  # flow matching: t in (0, 1), uniform or logit-normal
            t = sample_time(n, cfg.time_sampling, run.gen)
        flip = torch.rand(n, generator=run.gen) < 0.5 if cfg.hflip else None
        noise = torch.randn((n, *run.images.shape[1:]), generator=run.noise_gen,
                            device=run.noise_gen.device).to(run.device)  # eps ~ N(0, I)
        loss = train_step(run, idx, y, t, flip, noise, lr=lr_at(run.step, done, cfg))  # a step on eq. 14
        _after_step(run, loss, on_step)  # EMA, progress bar, periodic checkpoint
    return _finish_run(run)


def train_step(run, idx, y, t, flip, noise, lr: float) -> torch.Tensor:
    """One optimiser step on the loss of eq. 14, || eps - eps_theta(sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, t) ||^2
    (diffusion_loss), over this process's slice of the batch, in cfg.grad_accum micro-batches whose
    gradients add up. Returns the loss averaged over the micro-batches and processes."""
    cfg, accelerator, device = run.cfg, run.accelerator, run.device
    step_loss = torch.zeros((), device=device)
    for micro in range(cfg.grad_accum):
        mine = shard(cfg.batch_size, micro, accelerator)
        x0 = run.images[idx[mine]]
        if flip is not None:
            x0 = hflip(x0, flip[mine])
        with accelerator.accumulate(run.net):
            with torch.autocast(device.type, dtype=run.amp, enabled=run.amp is not None):
                y_mine = y[mine].to(device) if y is not None else None
                if cfg.path == "vp":
                    loss = diffusion_loss(run.net, x0.to(device), t[mine].to(device), noise[mine], run.schedule,
                                          y_mine, prediction=cfg.prediction, weighting=cfg.loss_weighting)
                else:
                    loss = flow_matching_loss(run.net, x0.to(device), t[mine].to(device), noise[mine], y_mine)
            mean_loss = accelerator.reduce(loss.detach(), "mean") if run.processes > 1 else loss.detach()
            if not torch.isfinite(mean_loss):  # the same verdict in every process: none waits alone
                raise FloatingPointError(f"loss became {mean_loss.item()} at step {run.step}; lower --lr.")
            accelerator.backward(loss)  # divided by grad_accum; DDP averages over processes
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
                for group in run.opt.param_groups:
                    group["lr"] = lr
            run.prepared_opt.step()  # skipped by Accelerate until the last micro-batch
            run.prepared_opt.zero_grad(set_to_none=True)
        step_loss += mean_loss / cfg.grad_accum
    return step_loss


@dataclass
class _Run:
    """What one training run holds between steps (train() reads it top to bottom)."""

    cfg: TrainConfig
    out: str | Path | None
    data: ImageData
    images: torch.Tensor
    condition: object
    schedule: object
    model: torch.nn.Module
    ema: torch.nn.Module | None
    opt: torch.optim.Optimizer
    net: torch.nn.Module
    prepared_opt: object
    accelerator: object
    device: torch.device
    amp: object
    gen: torch.Generator
    noise_gen: torch.Generator
    bar: object
    start: int
    total: int | None
    seconds_before: float
    step: int = 0
    losses: list = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def processes(self) -> int:
        return self.accelerator.num_processes

    @property
    def per_step(self) -> int:  # the effective batch
        return self.cfg.batch_size * self.processes * self.cfg.grad_accum

    def fraction_done(self) -> float:
        """How much of the budget (steps, minutes, whichever ends first) is used."""
        elapsed = time.perf_counter() - self.t0
        if self.cfg.minutes and self.processes > 1:  # every process stops at the same step: the main one's clock
            elapsed = float(self.accelerator.reduce(torch.tensor(elapsed, device=self.device), "max"))
        return max((self.step - self.start) / (self.total - self.start) if self.total else 0.0,
                   elapsed / (60 * self.cfg.minutes) if self.cfg.minutes else 0.0)


def _start_run(cfg, out, data, resume, device, progress) -> _Run:
    """Check the settings, build the model, its EMA and optimiser, load (or encode) the data, and
    restore a resumed run's state."""
    cfg.validate()
    if out is not None:
        checkpoint_paths(out)  # a wrong suffix fails now, not after the training
    start, seconds_before = 0, 0.0
    if resume:
        if out is None:
            raise ValueError("resume=True needs the checkpoint path `out` to resume from.")
        saved = read_config(out)
        cfg = TrainConfig(**saved_settings(saved) | {"steps": cfg.steps, "minutes": cfg.minutes})
        cfg.grad_accum = _resumed_accumulation(saved, cfg, world_size())
        start = saved["training"]["steps_done"]
        seconds_before = saved["training"].get("seconds", 0.0)
    if data is not None and data.info.name != cfg.dataset:
        raise ValueError(f"data holds {data.info.name!r} images but the config says dataset={cfg.dataset!r}.")
    accelerator, device = make_accelerator(device, cfg.grad_accum)
    main = accelerator.is_main_process
    if main and accelerate_precision_note():
        print(accelerate_precision_note())
    data = data if data is not None else load_data(cfg.dataset, "train", limit=cfg.data_limit, verbose=main)
    torch.manual_seed(cfg.seed)
    schedule = make_schedule(cfg.schedule, cfg.T)
    model = build_model(cfg.model, **cfg.model_kwargs(dataset_info(cfg.dataset))).to(device)
    images = data.images
    if cfg.autoencoder:  # latent diffusion: encode the whole set once, then train on the latents
        images = encode_all(load_autoencoder(cfg.autoencoder, device=device), images, progress=progress and main)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    ema = copy.deepcopy(model).eval().requires_grad_(False) if main else None  # the EMA: main process only
    if resume:
        train_file = checkpoint_paths(out)[0].with_suffix(".train.safetensors")
        fix = (f"--resume needs {out} and {train_file.name} from the same run: train anew into another --out "
               "(or delete the file left from another run)")
        if main:
            ema_model, _, _ = load_checkpoint(out, device=device)
            try:  # the weights of a checkpoint rewritten by another run: say which file, not a state_dict dump
                load_into(ema, ema_model.state_dict(), f"the checkpoint {out}")
            except CheckpointError as err:
                raise CheckpointError(f"{str(err).split(' with these settings')[0]}; {fix}.") from None
        try:
            _restore_train_state(load_train_state(out), model, opt, source=f"the train-state file {train_file}")
        except CheckpointError as err:
            if "another architecture" not in str(err):
                raise
            raise CheckpointError(f"{str(err).split(' with these settings')[0]} (the checkpoint differs); {fix}."
                                  ) from None
    net, prepared_opt = accelerator.prepare(model, opt)  # net: DDP-wrapped under a launcher, else model
    if accelerator.num_processes > 1:
        # Dropout draws from torch's global generator, seeded alike in every process for identical
        # initial weights. Reseeded per rank, each process's slice of the batch gets masks of its own,
        # as the slices of one process's batch do; t, the noise and the flips come from `gen`, shared by
        # all processes and sliced. So with dropout = 0, N processes compute what one process with the
        # N-times batch computes, to float rounding; with dropout > 0, the same in distribution only
        # (independent masks, not the same masks).
        torch.manual_seed(cfg.seed + start + DROPOUT_SEED_STRIDE * (accelerator.process_index + 1))
    total = cfg.steps + start if (cfg.steps is not None and resume) else cfg.steps
    gen = torch.Generator().manual_seed(cfg.seed + start)  # resume continues a fresh stream
    # the noise: from the same CPU stream, except on CUDA, where the GPU draws it faster itself
    noise_gen = torch.Generator(device).manual_seed(cfg.seed + start) if device.type == "cuda" else gen
    bar = progress_bar(total=total, initial=start, desc="train", disable=not (progress and main), leave=False)
    model.train()
    return _Run(cfg=cfg, out=out, data=data, images=images, condition=_conditioning(cfg, data),
                schedule=schedule, model=model, ema=ema, opt=opt, net=net,
                prepared_opt=prepared_opt, accelerator=accelerator, device=device,
                amp=autocast_dtype(device) if cfg.amp else None, gen=gen, noise_gen=noise_gen, bar=bar,
                start=start, total=total, seconds_before=seconds_before, step=start)


def _after_step(run: _Run, loss: torch.Tensor, on_step) -> None:
    """The EMA of the weights (the model sampled from), the progress bar, a checkpoint now and then."""
    if run.main:
        ema_update(run.ema, run.model, ema_decay_at(run.step, run.cfg.ema_decay))
    run.step += 1
    run.losses.append(loss.item())
    run.bar.update(1)
    run.bar.set_postfix(loss=f"{run.losses[-1]:.4f}", refresh=False)
    if on_step is not None:
        on_step(run.step, run.losses[-1])
    every = run.cfg.checkpoint_every
    if run.main and run.out is not None and every and run.step % every == 0:
        _save_run(run, run.seconds_before + time.perf_counter() - run.t0)


def _save_run(run: _Run, seconds: float) -> Path:
    return _save(run.out, run.cfg, run.model, run.ema, run.opt, run.data, run.step, seconds, run.processes)


def _finish_run(run: _Run) -> TrainResult:
    """The final checkpoint, written before any process returns."""
    run.bar.close()
    seconds = time.perf_counter() - run.t0
    ckpt = None
    if run.out is not None:
        if run.main:
            _save_run(run, run.seconds_before + seconds)
        ckpt = checkpoint_paths(run.out)[0]
    run.accelerator.wait_for_everyone()  # no process returns before the checkpoint is written
    return TrainResult(
        model=run.ema.eval() if run.main else None,
        raw_model=run.model,
        losses=run.losses,
        step=run.step,
        seconds=seconds,
        images_per_second=(run.step - run.start) * run.per_step / max(seconds, 1e-9),
        checkpoint=ckpt,
    )


def _conditioning(cfg: TrainConfig, data: ImageData):
    """(idx, generator) -> y for a batch: labels, or prompt tokens (cfg.text), each dropped to the null
    condition (the null label, or the empty prompt) with probability p_uncond, for guidance."""
    if cfg.text:
        name, labels = data.info.name, data.labels
        tokenizer, attributes = Tokenizer(vocabulary(name)), image_attributes(data.images, labels, name)

        def prompts(idx, gen):
            words = random_prompts(labels[idx], {k: v[idx] for k, v in attributes.items()}, name, gen)
            drop = torch.rand(len(idx), generator=gen) < cfg.p_uncond
            return tokenizer.encode(["" if d else p for p, d in zip(words, drop.tolist())])
        return prompts
    if cfg.conditional:
        return lambda idx, gen: drop_labels(data.labels[idx], cfg.p_uncond, data.info.num_classes, gen)
    return None


def _resumed_accumulation(saved: dict, cfg: TrainConfig, processes: int) -> int:
    """grad_accum for resuming a run on `processes` processes with the saved effective batch.

    A checkpoint records the effective batch it trained with (batch_size x processes x grad_accum); resumed
    on another number of processes, gradient accumulation makes up the difference, so the run goes on
    with the same recipe. A ValueError names the process counts that can, when none of it fits.
    """
    effective = saved["training"].get("effective_batch", cfg.batch_size * cfg.grad_accum)
    per_micro = cfg.batch_size * processes
    if effective % per_micro:
        fits = [n for n in range(1, effective // cfg.batch_size + 1) if effective % (cfg.batch_size * n) == 0]
        raise ValueError(f"the checkpoint trained with an effective batch of {effective} (batch_size "
                         f"{cfg.batch_size} per process); {processes} processes cannot keep it. Resume with "
                         f"{', '.join(map(str, fits))} processes.")
    accum = effective // per_micro
    if accum != cfg.grad_accum and is_main_process():
        print(f"resuming on {processes} process(es): grad_accum {accum} (was {cfg.grad_accum}) keeps the "
              f"effective batch of {effective}.")
    return accum


def saved_settings(config: dict) -> dict:
    """The TrainConfig settings a checkpoint was trained with, from its JSON config; a setting the
    checkpoint predates gets the value it was trained with (BEFORE_THE_SETTING)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    found = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config["training"].items() if k in names}
    return {**BEFORE_THE_SETTING, **found, "dataset": config["dataset"]}


def _save(out, cfg, model, ema, opt, data, step, seconds, processes=1) -> Path:
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        for k, v in opt.state.get(p, {}).items():
            state[f"opt.{i}.{k}"] = torch.as_tensor(v)
    config = _checkpoint_config(cfg, ema, data, step, seconds, out)
    config["training"] |= {"processes": processes, "effective_batch": cfg.batch_size * processes * cfg.grad_accum,
                           "hardware": _hardware(next(model.parameters()).device, processes)}
    return save_checkpoint(out, ema, config, state)


def _hardware(device: torch.device, processes: int) -> str:
    """What trained it, for the model card: "1 process on CPU (2 threads per process)", "4 processes on NVIDIA H100"."""
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        what = "Apple MPS"
    else:
        threads = torch.get_num_threads()
        what = f"CPU ({threads} thread{'s' if threads > 1 else ''} per process)"
    return f"{processes} process{'es' if processes > 1 else ''} on {what}"


def _restore_train_state(state: dict, model, opt, source: str) -> None:
    load_into(model, {k[6:]: v for k, v in state.items() if k.startswith("model.")}, source)
    for i, p in enumerate(model.parameters()):
        entries = {k.split(".", 2)[2]: v for k, v in state.items() if k.startswith(f"opt.{i}.")}
        if entries:
            opt.state[p] = {k: v.to(p.device) if k != "step" else v for k, v in entries.items()}
