"""Reverse-process samplers: DDPM (ancestral) and DDIM, one step function each plus a loop.

DDPM step (Ho et al. 2020, https://arxiv.org/abs/2006.11239, eq. 11 written through the predicted x_0,
eq. 15 and 6-7):
    x0_hat  = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)
    mean    = coef_x0 * x0_hat + coef_xt * x_t               (posterior mean, eq. 7)
    x_{t-1} = mean + sigma_t z,  sigma_t^2 = beta_tilde_t ("posterior") or beta_t ("beta")

DDIM step (Song et al. 2021, https://arxiv.org/abs/2010.02502, eq. 12 and 16), from t to an earlier s on a sub-grid:
    sigma   = eta * sqrt((1 - ab_s) / (1 - ab_t)) * sqrt(1 - ab_t / ab_s)
    x_s     = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sigma^2) eps + sigma z
eta = 0 is deterministic; eta = 1 has the DDPM posterior variance for the jump t -> s.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .forward import eps_from_x0, posterior, predict_x0
from .guidance import check_guidance, guided_eps
from .schedules import Schedule
from .settings import progress_bar

VARIANCES = ("posterior", "beta")
SPACINGS = ("leading", "trailing", "linspace")


def ddpm_step(x_t, eps, t: int, schedule: Schedule, variance="posterior", clip_x0=False, noise=None):
    """One ancestral step x_t -> x_{t-1}. Returns (x_{t-1}, x0_hat)."""
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; choose one of {VARIANCES}.")
    x0 = predict_x0(x_t, eps, t, schedule)
    if clip_x0:
        x0 = x0.clamp(-1, 1)  # images live in [-1, 1]; clipping the *prediction* is a choice
    mean, var = posterior(x0, x_t, t, schedule)
    if int(t) == 0:
        return mean, x0  # the last step returns the mean: no noise is added
    if variance == "beta":
        var = schedule.at(schedule.betas, t, x_t)
    noise = torch.randn_like(x_t) if noise is None else noise
    return mean + var.sqrt() * noise, x0


def ddim_timesteps(T: int, steps: int, spacing: str = "leading") -> list[int]:
    """The decreasing sub-grid of 0-based timesteps DDIM visits, as diffusers defines it.

    leading:  0, k, 2k, ... (k = T // steps), reversed      (DDIM paper, diffusers' default)
    trailing: T-1, T-1-T/steps, ...  (always starts at the noisiest step; Lin et al. 2024)
    linspace: round(linspace(0, T-1, steps)), reversed
    """
    if not isinstance(steps, (int, np.integer)) or not 1 <= steps <= T:
        raise ValueError(f"steps must be an integer in 1..T={T}, got {steps!r}.")
    if spacing == "leading":
        ts = np.arange(steps) * (T // steps)
    elif spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / steps)).astype(np.int64)[::-1] - 1
    elif spacing == "linspace":
        ts = np.linspace(0, T - 1, steps).round().astype(np.int64)
    else:
        raise ValueError(f"unknown spacing {spacing!r}; choose one of {SPACINGS}.")
    return [int(t) for t in ts[::-1]]


def ddim_sigma(t: int, t_prev: int, schedule: Schedule, eta: float) -> float:
    """Eq. 16: the noise DDIM adds on the jump t -> t_prev (t_prev = -1 means "to x_0")."""
    ab_t = schedule.alpha_bar[t]
    ab_s = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=torch.float64)
    return float(eta * ((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)).sqrt())


def check_eta(eta: float) -> float:
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1] (0 = deterministic DDIM, 1 = DDPM-like); got {eta}.")
    return eta


def ddim_step(x_t, eps, t: int, t_prev: int, schedule: Schedule, eta=0.0, clip_x0=False, noise=None):
    """One DDIM step x_t -> x_{t_prev} (eq. 12). Returns (x_{t_prev}, x0_hat)."""
    check_eta(eta)
    x0 = predict_x0(x_t, eps, t, schedule)
    if clip_x0:
        # Clip the prediction, then step with the noise the clipped x_0 implies (diffusers'
        # use_clipped_model_output): eq. 12 needs one consistent (x_0, eps) pair. Keeping the raw eps
        # beside a clipped x_0 pushes x_prev off the data at large t and saturates guided samples.
        x0 = x0.clamp(-1, 1)
        eps = eps_from_x0(x_t, x0, t, schedule)
    ab_s = float(schedule.alpha_bar[t_prev]) if t_prev >= 0 else 1.0
    sigma = ddim_sigma(t, t_prev, schedule, eta)
    x_prev = ab_s**0.5 * x0 + max(1 - ab_s - sigma**2, 0.0) ** 0.5 * eps
    if sigma > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev, x0


def _noise(shape, generator, device):
    # Draw on the CPU from a seeded generator, so a seed gives the same images on any device.
    return torch.randn(shape, generator=generator).to(device)


@torch.no_grad()
def sample(
    model: nn.Module,
    schedule: Schedule,
    num: int | None = None,
    *,
    sampler: str = "ddim",
    steps: int | None = None,
    eta: float = 0.0,
    spacing: str = "leading",
    variance: str = "posterior",
    clip_x0: bool = False,
    y=None,
    guidance: float | None = None,
    seed: int | None = 0,
    x_T: torch.Tensor | None = None,
    return_trajectory: bool = False,
    progress: bool = True,
):
    """Generate images in [-1, 1] (shape (num, C, H, W)) with DDPM or DDIM.

    sampler="ddpm" walks all T steps; sampler="ddim" walks `steps` of them (default 50).
    y: labels (int or list/tensor of length num) for a conditional model; None = unconditional.
    guidance: classifier-free guidance scale s (None = no guidance).
    clip_x0: clip each predicted x_0 to the image range [-1, 1] (diffusers' clip_sample; DDIM then
        steps with the eps the clipped x_0 implies). Off by default, so the plain equations run
        unaltered; short-trained models need it (their unclipped x_0 at large t is far out of range).
    return_trajectory: also return {"t": [...], "x_t": (S+1, N, C, H, W), "x0": (S, N, C, H, W)}.
    """
    device = next(model.parameters()).device
    guidance = check_guidance(guidance)
    check_eta(eta)  # before the loop, not at its first step
    if y is not None:
        y = torch.as_tensor(y, dtype=torch.long).reshape(-1)
        num = len(y) if num is None else num
        if len(y) == 1:
            y = y.expand(num)
        if len(y) != num:
            raise ValueError(f"got {len(y)} labels for num={num} images; give one label per image.")
        y = y.to(device)
    if num is None or num < 1:
        raise ValueError("num (the number of images) must be a positive integer.")
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    shape = (num, model.in_channels, model.image_size, model.image_size)
    x = _noise(shape, gen, device) if x_T is None else x_T.to(device)
    if x.shape != shape:
        raise ValueError(f"x_T has shape {tuple(x.shape)}, expected {shape}.")

    if sampler == "ddpm":
        ts = list(range(schedule.T - 1, -1, -1))
        prevs = [t - 1 for t in ts]
    elif sampler == "ddim":
        ts = ddim_timesteps(schedule.T, 50 if steps is None else steps, spacing)
        prevs = ts[1:] + [-1]
    else:
        raise ValueError(f"unknown sampler {sampler!r}; choose 'ddpm' or 'ddim'.")

    was_training = model.training
    model.eval()
    traj_x, traj_x0 = [x.cpu()], []
    for t, t_prev in progress_bar(list(zip(ts, prevs)), desc=sampler, disable=not progress, leave=False):
        eps = guided_eps(model, x, torch.full((num,), t, device=device), y, guidance)
        noise = _noise(shape, gen, device)
        if sampler == "ddpm":
            x, x0 = ddpm_step(x, eps, t, schedule, variance, clip_x0, noise)
        else:
            x, x0 = ddim_step(x, eps, t, t_prev, schedule, eta, clip_x0, noise)
        if return_trajectory:
            traj_x.append(x.cpu())
            traj_x0.append(x0.cpu())
    model.train(was_training)
    if return_trajectory:
        return x, {"t": ts, "x_t": torch.stack(traj_x), "x0": torch.stack(traj_x0)}
    return x
