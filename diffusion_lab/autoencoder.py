"""A small convolutional autoencoder, so diffusion can run in its latent space (chapter 10).

Latent diffusion (Rombach et al. 2022, arXiv 2112.10752, sec. 3) splits image generation in two:
an autoencoder compresses each image x to a smaller latent z = E(x) and back, x ~ D(z); the
diffusion model then learns the distribution of z instead of x. Here 1x28x28 images become 4x7x7
latents (f = 4: each latent position stands for a 4x4 patch; 196 numbers instead of 784).

    encoder:  x -> (mean, log_var) of q(z | x)                  a diagonal Gaussian (their "KL-reg")
    training: z = mean + exp(log_var / 2) * noise               the reparameterisation trick
              loss = ||D(z) - x||_1 + kl_weight * KL(q(z | x) || N(0, I))
    scaling:  z_scaled = scale * mean(x),  scale = 1 / std(latents of the training set)   (sec. 4.3.2)

The KL term is tiny (kl_weight 1e-6 per element, as in their KL-f models): it keeps the latents
from drifting to huge or wildly varying values without blurring the reconstructions. Diffusion's
forward process assumes data of roughly unit variance, so the latents are rescaled by one number
measured after training (Stable Diffusion's 0.18215 is that number for its autoencoder).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .layers import group_norm, register_to_config
from .settings import progress_bar
from .unet import GROUPS, ResBlock


class Autoencoder(nn.Module):
    """E: (B, C, 28, 28) -> (B, latent_channels, 7, 7) and D: back. Two stride-2 convolutions down,
    two nearest-neighbour upsamplings up, a residual block (our U-Net's, without t) at every size."""

    @register_to_config
    def __init__(self, image_size: int = 28, in_channels: int = 1, latent_channels: int = 4,
                 base_channels: int = 16):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"the autoencoder halves the size twice, so image_size must be a multiple of 4; "
                             f"got {image_size}.")
        self.image_size, self.in_channels, self.latent_channels = image_size, in_channels, latent_channels
        self.latent_size = image_size // 4
        c1, c2 = base_channels, 2 * base_channels
        self.encoder = nn.ModuleList([
            nn.Conv2d(in_channels, c1, 3, padding=1), ResBlock(c1, c1, None),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), ResBlock(c2, c2, None),   # 28 -> 14
            nn.Conv2d(c2, c2, 3, stride=2, padding=1), ResBlock(c2, c2, None),   # 14 -> 7
            group_norm(c2, GROUPS), nn.SiLU(), nn.Conv2d(c2, 2 * latent_channels, 3, padding=1),
        ])
        self.decoder = nn.ModuleList([
            nn.Conv2d(latent_channels, c2, 3, padding=1), ResBlock(c2, c2, None),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c2, 3, padding=1), ResBlock(c2, c2, None),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c1, 3, padding=1), ResBlock(c1, c1, None),
            group_norm(c1, GROUPS), nn.SiLU(), nn.Conv2d(c1, in_channels, 3, padding=1),
        ])
        # 1 / std of the training latents; 1.0 until measured (set_latent_scale). A buffer, so it
        # travels with the weights: latents of one autoencoder mean nothing to another.
        self.register_buffer("latent_scale", torch.tensor(1.0))

    @staticmethod
    def _run(layers, h):
        for layer in layers:
            h = layer(h, None) if isinstance(layer, ResBlock) else layer(h)
        return h

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_var) of q(z | x), each (B, latent_channels, size/4, size/4), unscaled."""
        check_images(self, x)
        mean, log_var = self._run(self.encoder, x).chunk(2, dim=1)
        return mean, log_var.clamp(-30.0, 20.0)  # exp() stays finite (as in the LDM code)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> scaled latents (the posterior mean times latent_scale): what the
        diffusion model is trained on."""
        return self.posterior(x)[0] * self.latent_scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> images (about [-1, 1]; not clipped)."""
        shape = (self.latent_channels, self.latent_size, self.latent_size)
        if z.ndim != 4 or tuple(z.shape[1:]) != shape:
            raise ValueError(f"decode expects latents of shape (B, {', '.join(map(str, shape))}), got "
                             f"{tuple(z.shape)}; did you pass images instead of latents?")
        return self._run(self.decoder, z / self.latent_scale)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None):
        """Training pass: (reconstruction, KL per image). noise=None samples it (reparameterisation)."""
        mean, log_var = self.posterior(x)
        std = (0.5 * log_var).exp()
        z = mean + std * (torch.randn_like(mean) if noise is None else noise)
        return self._run(self.decoder, z), gaussian_kl(mean, log_var)


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, 1)) per image, summed over the latent numbers (independent, so
    their KLs add): 1/2 (mu^2 + sigma^2 - 1 - log sigma^2) for each (Kingma & Welling 2014, appendix B)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).flatten(1).sum(1)


def check_images(ae: Autoencoder, x: torch.Tensor) -> None:
    shape = (ae.in_channels, ae.image_size, ae.image_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"the autoencoder expects images of shape (B, {', '.join(map(str, shape))}), "
                         f"got {tuple(x.shape)}.")


@torch.no_grad()
def encode_all(ae: Autoencoder, images: torch.Tensor, batch: int = 1000, progress: bool = False) -> torch.Tensor:
    """Scaled latents of a whole dataset, batch by batch, on the autoencoder's device (CPU result)."""
    device = next(ae.parameters()).device
    ae.eval()
    chunks = [ae.encode(images[i : i + batch].to(device)).cpu()
              for i in progress_bar(range(0, len(images), batch), desc="encode", disable=not progress, leave=False)]
    return torch.cat(chunks)


@torch.no_grad()
def decode_all(ae: Autoencoder, latents: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    device = next(ae.parameters()).device
    ae.eval()
    return torch.cat([ae.decode(latents[i : i + batch].to(device)).cpu() for i in range(0, len(latents), batch)])


@torch.no_grad()
def set_latent_scale(ae: Autoencoder, images: torch.Tensor) -> float:
    """Measure 1 / std of the unscaled latents of `images` and store it in the autoencoder."""
    ae.latent_scale.fill_(1.0)
    z = encode_all(ae, images)
    ae.latent_scale.fill_(1.0 / float(z.std()))
    return float(ae.latent_scale)


@torch.no_grad()
def reconstruction_error(ae: Autoencoder, images: torch.Tensor) -> dict:
    """Mean squared error and PSNR (peak-to-peak 2 on the [-1, 1] scale) of D(E(x)), clipped to [-1, 1]."""
    recon = decode_all(ae, encode_all(ae, images)).clamp(-1, 1)
    mse = float((recon - images).pow(2).mean())
    return {"mse": round(mse, 5), "psnr_db": round(10 * math.log10(4.0 / mse), 2),
            "mae": round(float((recon - images).abs().mean()), 5), "num": len(images)}


# --------------------------------------------------------------------------- training


@dataclass
class AutoencoderConfig:
    dataset: str = "mnist"
    latent_channels: int = 4
    base_channels: int = 16  # 16 at 28x28, 32 at 14 and 7: 3x faster to train than 32 and 64
    kl_weight: float = 1e-6  # per latent element, against the per-pixel L1 (LDM's KL-f models)
    batch_size: int = 64
    lr: float = 1e-3
    steps: int | None = 2000
    minutes: float | None = None
    seed: int = 0
    data_limit: int | None = None

    def validate(self) -> None:
        if self.steps is None and self.minutes is None:
            raise ValueError("give a training budget: steps and/or minutes.")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}.")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}.")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}.")
        if self.latent_channels < 1 or self.base_channels < 1:
            raise ValueError("latent_channels and base_channels must be positive.")


def train_autoencoder(cfg: AutoencoderConfig, out=None, data=None, device=None, progress=True):
    """Train on cfg.dataset's training split; measure the latent scale and the test reconstruction
    error; write a checkpoint to `out` (None: keep in memory). Returns (autoencoder, info dict)."""
    from .checkpoints import save_checkpoint
    from .data import DataNotFoundError, load_data
    from .settings import autocast_dtype, pick_device

    cfg.validate()
    device = device if isinstance(device, torch.device) else pick_device(device)
    torch.manual_seed(cfg.seed)
    data = data if data is not None else load_data(cfg.dataset, "train", limit=cfg.data_limit)
    info = data.info
    ae = build_autoencoder(image_size=info.size, in_channels=info.channels,
                           latent_channels=cfg.latent_channels, base_channels=cfg.base_channels).to(device)
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    amp = autocast_dtype(device)  # bf16 where native, as in train()
    images, losses, step, t0 = data.images, [], 0, time.perf_counter()
    latent_elements = cfg.latent_channels * ae.latent_size**2
    bar = progress_bar(total=cfg.steps, desc="autoencoder", disable=not progress, leave=False)
    ae.train()
    while True:
        done = max(step / cfg.steps if cfg.steps else 0.0,
                   (time.perf_counter() - t0) / (60 * cfg.minutes) if cfg.minutes else 0.0)
        if done >= 1.0:
            break
        x = images[torch.randint(len(images), (cfg.batch_size,), generator=gen)].to(device)
        noise = torch.randn((len(x), cfg.latent_channels, ae.latent_size, ae.latent_size), generator=gen)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            recon, kl = ae(x, noise.to(device))
        loss = (recon.float() - x).abs().mean() + cfg.kl_weight * kl.mean() / latent_elements
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:  # cosine decay to 10% over the budget
            group["lr"] = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))
        opt.step()
        step += 1
        losses.append(loss.item())
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t0
    ae.eval()
    scale = set_latent_scale(ae, images[:5000])  # 5000 x 196 values: plenty for one std
    try:
        test = reconstruction_error(ae, load_data(cfg.dataset, "test", verbose=False).images[:5000])
    except DataNotFoundError:  # the offline MNIST subset has no test split: say so, measure nothing
        test = None
    result = {"steps_done": step, "seconds": round(seconds, 1), "data_source": data.source,
              "final_loss_mean_100": round(sum(losses[-100:]) / max(1, len(losses[-100:])), 5),
              "latent_scale": round(scale, 5),
              "test_reconstruction": test}
    if out is not None:
        config = {"dataset": info.name,
                  "image_shape": [info.channels, info.size, info.size],
                  "latent_shape": [cfg.latent_channels, ae.latent_size, ae.latent_size],
                  "training": {**asdict(cfg), **result}}
        result["checkpoint"] = str(save_checkpoint(out, ae, config))
    return ae, result


def build_autoencoder(**kwargs) -> Autoencoder:
    from .models import build_model

    return build_model("autoencoder", **kwargs)


def load_autoencoder(path, device=None) -> Autoencoder:
    """An autoencoder checkpoint (a path, or a shipped name like "mnist_ae")."""
    from .checkpoints import CheckpointError, load_checkpoint, pretrained_path

    if not Path(path).with_suffix(".json").exists() and Path(str(path)).parent == Path("."):
        path = pretrained_path(str(path))
    model, _, config = load_checkpoint(path, device=device)
    if config["model"]["name"] != "autoencoder":
        raise CheckpointError(f"{path} holds a {config['model']['name']!r} model, not an autoencoder; train one "
                              "with `python -m diffusion_lab train-autoencoder`.")
    return model


def latent_entry(autoencoder, out) -> dict:
    """What a latent diffusion checkpoint records about its autoencoder: where it is (relative to the
    checkpoint's folder, so the two can move together), its sha256 and its latent shape."""
    import os

    from .checkpoints import checkpoint_paths, read_config

    weights, _ = checkpoint_paths(autoencoder)
    config = read_config(weights)
    where = os.path.relpath(weights.resolve(), Path(out).resolve().parent) if out is not None else str(weights)
    return {"autoencoder": where, "autoencoder_sha256": config["weights_sha256"],
            "latent_shape": config["latent_shape"]}


def autoencoder_of(checkpoint, config: dict, device=None) -> Autoencoder | None:
    """The autoencoder a latent diffusion checkpoint was trained with (None for a pixel-space one),
    checked by sha256: latents of another autoencoder would decode to noise."""
    from .checkpoints import CheckpointError, checkpoint_paths, read_config

    entry = config.get("latent")
    if entry is None:
        return None
    where = resolve_autoencoder(entry["autoencoder"], checkpoint_paths(checkpoint)[0].parent)
    if not where.exists():
        raise CheckpointError(f"{checkpoint} is a latent diffusion model; its autoencoder {entry['autoencoder']} "
                              f"(looked for {where}) is missing. Put it beside the checkpoint.")
    if read_config(where)["weights_sha256"] != entry["autoencoder_sha256"]:
        raise CheckpointError(f"{where} is not the autoencoder {checkpoint} was trained with (sha256 differs); "
                              "its latents would decode to noise. Use the one it names, or retrain.")
    return load_autoencoder(where, device=device)


def resolve_autoencoder(reference: str, checkpoint_dir: Path) -> Path:
    """Where a latent checkpoint's autoencoder is: the path `train` recorded (relative to the
    checkpoint's folder), else a file of that name beside the checkpoint or among the shipped ones.
    (autoencoder_of then checks its sha256, so a wrong file is never used.)"""
    from .checkpoints import PRETRAINED_DIR, checkpoint_paths

    name = Path(reference).name  # moved together: the autoencoder sits beside the checkpoint
    for candidate in (checkpoint_dir / reference, Path(reference), checkpoint_dir / name, PRETRAINED_DIR / name):
        weights, _ = checkpoint_paths(candidate)
        if weights.exists():
            return weights
    return checkpoint_paths(checkpoint_dir / reference)[0]
