"""Training the noise predictor (DDPM, Algorithm 1), with what makes it work in practice.

    repeat:  x_0 ~ data, t ~ Uniform{0..T-1}, eps ~ N(0, I)
             loss = || eps - eps_theta(sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, t, y) ||^2   (eq. 14)

Extras, each standard: label dropout (p_uncond) so one network also learns the unconditional
eps(x_t, null) for classifier-free guidance; an EMA of the weights (sampled from, it gives cleaner
images); gradient-norm clipping; learning-rate warm-up then cosine decay; bfloat16 autocast where
it is safe; periodic atomic checkpoints and resume; a budget in steps and/or minutes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoints import (
    load_checkpoint,
    load_into,
    load_train_state,
    read_config,
    save_checkpoint,
)
from .data import ImageData, load_data
from .forward import q_sample, v_target
from .models import build_model
from .schedules import make_schedule
from .settings import autocast_dtype, pick_device

UNET_WIDTH = 16  # channels at the top level of our U-Net: the measured winner on a CPU (scripts/recipe_sweep.py)
MINIMAL_WIDTH = 64  # the paper uses 128; 64 keeps it trainable on a CPU
DEFAULT_WIDTH = {"unet": UNET_WIDTH, "minimal": MINIMAL_WIDTH}


@dataclass
class TrainConfig:
    dataset: str = "mnist"
    model: str = "unet"  # "unet" (default) or "minimal" (the paper's)
    base_channels: int | None = None  # None: DEFAULT_WIDTH[model]
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention: bool = True
    time_embedding: str = "every"  # "middle": the paper's choice, for the ablation
    conditional: bool = True
    p_uncond: float = 0.1  # label dropout for classifier-free guidance
    schedule: str = "linear"
    T: int = 1000
    prediction: str = "eps"  # "eps" (DDPM) or "v" (Salimans & Ho 2022)
    loss_weighting: str = "min_snr"  # or "simple" (eq. 14, every t alike); min_snr: Hang et al. 2023, gamma 5
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 100
    steps: int | None = 1000
    minutes: float | None = None
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    amp: bool = True  # bf16 autocast where native: CUDA and CPUs with AVX512-BF16/AMX (settings.autocast_dtype)
    checkpoint_every: int = 500
    data_limit: int | None = None

    def model_kwargs(self, info) -> dict:
        kw = {
            "image_size": info.size,
            "in_channels": info.channels,
            "base_channels": self.base_channels or DEFAULT_WIDTH[self.model],
            "num_classes": info.num_classes if self.conditional else None,
        }
        if self.model == "unet":
            kw |= {
                "channel_mults": list(self.channel_mults),
                "num_res_blocks": self.num_res_blocks,
                "attention": self.attention,
                "time_embedding": self.time_embedding,
            }
        return kw

    def validate(self) -> None:
        if self.steps is None and self.minutes is None:
            raise ValueError("give a training budget: steps and/or minutes.")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}.")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}.")
        if not 0.0 <= self.p_uncond < 1.0:
            raise ValueError(f"p_uncond must be in [0, 1), got {self.p_uncond}.")
        if self.prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', got {self.prediction!r}.")
        if self.loss_weighting not in ("simple", "min_snr"):
            raise ValueError(f"loss_weighting must be 'simple' or 'min_snr', got {self.loss_weighting!r}.")


@dataclass
class TrainResult:
    model: torch.nn.Module  # the EMA model, in eval mode: sample from this one
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


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def loss_weight(t: torch.Tensor, schedule, cfg: TrainConfig, gamma: float = 5.0) -> torch.Tensor:
    """Per-image weight of the squared error. "simple": 1 (eq. 14). "min_snr": min(SNR_t, gamma) / SNR_t
    for an eps target, min(SNR_t, gamma) / (SNR_t + 1) for v (Hang et al. 2023, eq. 9-10): the
    nearly clean t, whose huge SNR would dominate an x_0 loss, count no more than SNR = gamma."""
    if cfg.loss_weighting == "simple":
        return torch.ones(len(t), device=t.device)
    snr = schedule.snr.to(t.device)[t].float()
    return snr.clamp(max=gamma) / (snr if cfg.prediction == "eps" else snr + 1)


def _checkpoint_config(cfg: TrainConfig, model, data: ImageData, step: int, seconds: float) -> dict:
    return {
        "model": model.build_config,
        "schedule": {"name": cfg.schedule, "T": cfg.T},
        "dataset": data.info.name,
        "image_shape": [data.info.channels, data.info.size, data.info.size],
        "classes": list(data.info.class_names) if cfg.conditional else None,
        "training": {
            **{k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("dataset",)},
            "base_channels": model.build_config["kwargs"]["base_channels"],  # the width used, not None
            "steps_done": step,
            "seconds": round(seconds, 1),
            "data_source": data.source,
        },
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
    """Train a noise predictor. `out` is the checkpoint path (None: keep in memory only).

    resume=True continues from `out` (its config wins over `cfg`, except the budget).
    on_step(step, loss) is called after every step (the notebooks draw a live loss curve with it).
    """
    cfg.validate()
    device = pick_device(device) if not isinstance(device, torch.device) else device
    torch.manual_seed(cfg.seed)
    start, losses, seconds_before = 0, [], 0.0
    if resume:
        if out is None:
            raise ValueError("resume=True needs the checkpoint path `out` to resume from.")
        saved = read_config(out)
        budget = {"steps": cfg.steps, "minutes": cfg.minutes}
        cfg = TrainConfig(**_only_fields(saved["training"]), **budget)
        start = saved["training"]["steps_done"]
        seconds_before = saved["training"].get("seconds", 0.0)
    data = data if data is not None else load_data(cfg.dataset, "train", limit=cfg.data_limit)
    schedule = make_schedule(cfg.schedule, cfg.T)
    model = build_model(cfg.model, **cfg.model_kwargs(data.info)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    if resume:
        ema_model, _, _ = load_checkpoint(out, device=device)
        ema.load_state_dict(ema_model.state_dict())
        _restore_train_state(load_train_state(out), model, opt, source=str(out))

    images, labels = data.images, data.labels
    num_classes = data.info.num_classes
    amp = autocast_dtype(device) if cfg.amp else None
    total = cfg.steps + start if (cfg.steps is not None and resume) else cfg.steps
    gen = torch.Generator().manual_seed(cfg.seed + start)  # resume continues a fresh stream
    t0 = time.perf_counter()
    step = start
    bar = tqdm(total=total, initial=start, desc="train", disable=not progress, leave=False)
    model.train()
    while True:
        elapsed = time.perf_counter() - t0
        progress_frac = max(
            (step - start) / (total - start) if total else 0.0,
            elapsed / (60 * cfg.minutes) if cfg.minutes else 0.0,
        )
        if progress_frac >= 1.0:
            break
        idx = torch.randint(len(images), (cfg.batch_size,), generator=gen)
        x0 = images[idx].to(device)
        y = None
        if cfg.conditional:
            y = labels[idx].clone()
            drop = torch.rand(cfg.batch_size, generator=gen) < cfg.p_uncond
            y[drop] = num_classes  # the null label: learn eps(x_t) without a class
            y = y.to(device)
        t = torch.randint(cfg.T, (cfg.batch_size,), generator=gen).to(device)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        x_t = q_sample(x0, t, schedule, noise)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            pred = model(x_t, t, y)
        target = noise if cfg.prediction == "eps" else v_target(x0, noise, t, schedule)
        per_image = (pred.float() - target).pow(2).mean(dim=(1, 2, 3))  # eq. 14, in float32
        loss = (loss_weight(t, schedule, cfg) * per_image).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower --lr.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, progress_frac, cfg)
        opt.step()
        ema_update(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
        step += 1
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        if on_step is not None:
            on_step(step, losses[-1])
        if out is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            _save(out, cfg, model, ema, opt, data, step, seconds_before + time.perf_counter() - t0)
    bar.close()
    seconds = time.perf_counter() - t0
    ckpt = None
    if out is not None:
        ckpt = _save(out, cfg, model, ema, opt, data, step, seconds_before + seconds)
    ema.prediction_type = model.prediction_type = cfg.prediction  # the samplers convert v to eps
    return TrainResult(
        model=ema.eval(),
        raw_model=model,
        losses=losses,
        step=step,
        seconds=seconds,
        images_per_second=(step - start) * cfg.batch_size / max(seconds, 1e-9),
        checkpoint=ckpt,
    )


def _only_fields(d: dict) -> dict:
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"steps", "minutes"}
    return {k: (tuple(v) if k == "channel_mults" else v) for k, v in d.items() if k in names}


def _save(out, cfg, model, ema, opt, data, step, seconds) -> Path:
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        for k, v in opt.state.get(p, {}).items():
            state[f"opt.{i}.{k}"] = torch.as_tensor(v)
    return save_checkpoint(out, ema, _checkpoint_config(cfg, ema, data, step, seconds), state)


def _restore_train_state(state: dict, model, opt, source: str) -> None:
    load_into(model, {k[6:]: v for k, v in state.items() if k.startswith("model.")}, source)
    for i, p in enumerate(model.parameters()):
        entries = {k.split(".", 2)[2]: v for k, v in state.items() if k.startswith(f"opt.{i}.")}
        if entries:
            opt.state[p] = {k: v.to(p.device) if k != "step" else v for k, v in entries.items()}
