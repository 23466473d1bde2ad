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
