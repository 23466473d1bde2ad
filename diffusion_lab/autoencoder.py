"""The autoencoder's training, its checkpoint files and the link from a latent diffusion checkpoint
to the autoencoder it was trained with (chapter 10; Rombach et al. 2022, https://arxiv.org/abs/2112.10752,
with the KL-regularised loss of a variational autoencoder, Kingma & Welling 2014,
https://arxiv.org/abs/1312.6114). The network itself and its pure encode/decode
helpers are in autoencoder_net.py (re-exported here), so the model registry can build it without
reaching the file code that in turn needs the registry.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import checkpoints  # PRETRAINED_DIR read at call time: tests and users may repoint it
from .autoencoder_net import (  # noqa: F401  (re-exported: chapters, scripts and tests import them from here)
    Autoencoder,
    check_images,
    decode_all,
    encode_all,
    gaussian_kl,
    reconstruction_error,
    set_latent_scale,
)
from .checkpoints import (
    CheckpointError,
    checkpoint_paths,
    load_checkpoint,
    pretrained_path,
    read_config,
    save_checkpoint,
)
from .data import DataNotFoundError, load_data
from .models import build_model
from .settings import autocast_dtype, pick_device, progress_bar

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
    result = {"steps_done": step, "seconds": round(seconds, 1), "data_source": data.record,
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
    return build_model("autoencoder", **kwargs)


def load_autoencoder(path, device=None) -> Autoencoder:
    """An autoencoder checkpoint (a path, or a shipped name like "mnist_ae")."""
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
    weights, _ = checkpoint_paths(autoencoder)
    config = read_config(weights)
    where = os.path.relpath(weights.resolve(), Path(out).resolve().parent) if out is not None else str(weights)
    return {"autoencoder": where, "autoencoder_sha256": config["weights_sha256"],
            "latent_shape": config["latent_shape"]}


def autoencoder_of(checkpoint, config: dict, device=None) -> Autoencoder | None:
    """The autoencoder a latent diffusion checkpoint was trained with (None for a pixel-space one),
    checked by sha256: latents of another autoencoder would decode to noise."""
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
    name = Path(reference).name  # moved together: the autoencoder sits beside the checkpoint
    for candidate in (checkpoint_dir / reference, Path(reference), checkpoint_dir / name,
                      checkpoints.PRETRAINED_DIR / name):
        weights, _ = checkpoint_paths(candidate)
        if weights.exists():
            return weights
    return checkpoint_paths(checkpoint_dir / reference)[0]
