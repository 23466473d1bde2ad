"""Editing with an unchanged diffusion model (chapter 14): inpainting and image-to-image.

Both work on any of the course's generators: a VP (DDPM) model, a flow-matching model on the linear path,
and a latent model (the edit runs on its autoencoder's latents). Every path writes x_t = a_t x_0 + b_t eps
(VP: a = sqrt(ab_t), b = sqrt(1 - ab_t); linear: a = 1 - t, b = t; paths.py), so one walk serves all.

Inpainting, RePaint (Lugmayr et al. 2022, https://arxiv.org/abs/2201.09865, Alg. 1). Walk the reverse
process; after each step to the noise level s, put back the known pixels, noised to that same s:

    x_s <- m * (a_s x_known + b_s eps) + (1 - m) * x_s^model        (m = 1: known)

The model's step is ancestral: the posterior q(x_s | x_t, x_0 = x0_hat) of the jump t -> s (DDIM with
eta = 1 on the VP path; Ho et al. 2020, eq. 7),

    x_s = a_s x0_hat + sqrt(b_s^2 - c^2) eps_hat + c z,   c^2 = (b_s^2 / b_t^2) (b_t^2 - (a_t / a_s)^2 b_s^2)

on a grid of `steps` noise levels. Resampling: every `jump_length` steps, go back up `jump_length` steps by
forward noising, q(x_t | x_s) = N((a_t / a_s) x_s, (b_t^2 - (a_t / a_s)^2 b_s^2) I), and walk down again;
`jumps` times. That gives the generated part time to agree with the known part (Lugmayr et al., sec. 4.2).
A latent model inpaints latent cells whose pixels are all known; the decoded image then gets the known
pixels back, so they are the input's exactly there too.

Image-to-image, SDEdit (Meng et al. 2022, https://arxiv.org/abs/2108.01073): noise the input to the level
`strength` of the way from the data to pure noise (VP: t0 = strength (T - 1); linear: t0 = strength) and walk
the deterministic sampler (DDIM / Euler) from there to the clean image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import paths
from .forward import prediction_of
from .paths import path_of
from .samplers import _noise, model_eps, model_output
from .schedules import Schedule
from .timesteps import ddim_timesteps

# The settings inpainting was measured with (scripts/sde_compare.py inpaint: 65 model calls per image).
EDIT_DEFAULTS = {"steps": 25, "jumps": 2, "jump_length": 5}


def check_images(model, images: torch.Tensor, autoencoder=None) -> torch.Tensor:
    """Images in [-1, 1] of the shape the model makes (N, C, H, W): its own, or its autoencoder's pixels."""
    net = autoencoder if autoencoder is not None else model
    want = (net.in_channels, net.image_size, net.image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != want:
        raise ValueError(f"images of shape {tuple(images.shape)} do not fit this model, which makes images of "
                         f"shape (N, {', '.join(map(str, want))}).")
    if not torch.is_floating_point(images) or images.min() < -1 or images.max() > 1:
        raise ValueError("images must be floats in [-1, 1] (data.from_uint8 converts uint8 pixels).")
    return images


def check_mask(mask: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """A mask of 1 (keep) and 0 (generate), (H, W), (N, H, W) or (N or 1, 1, H, W), as (N or 1, 1, H, W)."""
    n, _, h, w = images.shape
    m = torch.as_tensor(mask)
    if m.ndim == 2:
        m = m[None]
    if m.ndim == 3:
        m = m[:, None]
    if m.ndim != 4 or m.shape[1] != 1 or tuple(m.shape[2:]) != (h, w) or m.shape[0] not in (1, n):
        raise ValueError(f"a mask of shape {tuple(torch.as_tensor(mask).shape)} does not fit {n} images of "
                         f"{h}x{w}: give (H, W) = ({h}, {w}) for all images or (N, H, W) = ({n}, {h}, {w}).")
    m = m.to(images.device, torch.float32)
    if not ((m == 0) | (m == 1)).all():
        raise ValueError("the mask must hold only 0 (generate) and 1 (keep).")
    if bool((m == 1).all(dim=(1, 2, 3)).any()):
        raise ValueError("the mask keeps every pixel of an image, so there is nothing to inpaint: mark the "
                         "pixels to generate with 0.")
    return m


def check_strength(strength) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1] (0.3: cleaned up, 1: a new image), got {strength!r}.")
    return float(strength)


def repaint_positions(steps: int, jumps: int, jump_length: int) -> list[int]:
    """The walk over grid positions 0 (the noisiest step) .. steps (the clean image): down one position at a
    time, and after every jump_length of them (but at the end) `jumps` times up jump_length at once and down
    again. A move down is one model call; a move up is forward noise."""
    for name, value, low in (("steps", steps, 1), ("jumps", jumps, 0), ("jump_length", jump_length, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    walk, i = [0], 0
    while i < steps:
        k = min(jump_length, steps - i)
        walk += list(range(i + 1, i + k + 1))
        i += k
        if i < steps:
            for _ in range(jumps):
                walk += [i - k, *range(i - k + 1, i + 1)]
    return walk


def inpaint_model_calls(steps: int, jumps: int, jump_length: int) -> int:
    """Network evaluations per image of inpaint (CFG's two halves are one batched call)."""
    walk = repaint_positions(steps, jumps, jump_length)
    return sum(b > a for a, b in zip(walk, walk[1:]))


# ------------------------------------------------------------------ one grid and one prediction for every path


def noise_grid(model, schedule: Schedule, steps: int, start: float = 1.0) -> list[tuple[float, float, float]]:
    """(a, b, the network's time) at steps + 1 noise levels, from `start` of the way to pure noise down to the
    clean image (a = 1, b = 0). VP: DDIM's trailing timesteps below start * (T - 1); linear: equal steps in t."""
    if path_of(model) == "linear":
        return [(1 - t, t, t * paths.TIME_SCALE) for t in (start * (steps - k) / steps for k in range(steps + 1))]
    t0 = round(start * (schedule.T - 1))
    ts = ddim_timesteps(schedule.T, steps, "trailing") if t0 == schedule.T - 1 else \
        sorted({round(t0 * (steps - k) / steps) for k in range(steps)}, reverse=True)
    grid = [(float(schedule.alpha_bar[t]) ** 0.5, (1 - float(schedule.alpha_bar[t])) ** 0.5, t) for t in ts]
    return grid + [(1.0, 0.0, -1)]


def predict(model, x, level, y=None, guidance=None):
    """(x0_hat, eps_hat) of the network at one grid level (a, b, time), whatever it predicts."""
    a, b, t = level
    if path_of(model) == "linear":
        u = model_output(model, x, torch.full((len(x),), t, device=x.device, dtype=torch.float64), y, guidance)
        return paths.to_x0_eps(u, "velocity", x, *paths.linear_coefficients(t / paths.TIME_SCALE))
    tt = torch.full((len(x),), t, device=x.device, dtype=torch.long)
    eps = model_eps(model, x, tt, a * a, y, guidance, prediction_of(model))
    return (x - b * eps) / a, eps


def ancestral_step(x0, eps, level, level_next, noise):
    """x_s from the posterior q(x_s | x_t, x0_hat) of the jump t -> s (the module's docstring)."""
    (a_t, b_t, _), (a_s, b_s, _) = level, level_next
    if b_s == 0:
        return x0
    c2 = max(b_s**2 / b_t**2 * (b_t**2 - (a_t / a_s) ** 2 * b_s**2), 0.0)
    return a_s * x0 + math.sqrt(max(b_s**2 - c2, 0.0)) * eps + math.sqrt(c2) * noise


def noise_up(x, level, level_up, noise):
    """Forward noise from a level to a noisier one: q(x_t | x_s) = N((a_t/a_s) x_s, (b_t^2 - (a_t/a_s)^2 b_s^2) I)."""
    (a_s, b_s, _), (a_t, b_t, _) = level, level_up
    r = a_t / a_s
    return r * x + math.sqrt(max(b_t**2 - r**2 * b_s**2, 0.0)) * noise


# ------------------------------------------------------------------ the two edits


def _latent_mask(m: torch.Tensor, size: int) -> torch.Tensor:
    """A latent cell is known only when every pixel it covers is (min-pooling the pixel mask)."""
    return -F.adaptive_max_pool2d(-m, size)


@torch.no_grad()
def inpaint(model, schedule: Schedule, images: torch.Tensor, mask, *, y=None, guidance=None,
            steps: int = EDIT_DEFAULTS["steps"], jumps: int = EDIT_DEFAULTS["jumps"],
            jump_length: int = EDIT_DEFAULTS["jump_length"], seed: int = 0, autoencoder=None) -> torch.Tensor:
    """Complete the pixels where mask = 0 (RePaint). Returns images in [-1, 1]; where mask = 1 they are the
    input's, exactly. autoencoder: a latent model's (autoencoder.autoencoder_of), to edit its latents."""
    images = check_images(model, images, autoencoder)
    m_pixels = check_mask(mask, images)
    known = autoencoder.encode(images) if autoencoder is not None else images
    m = _latent_mask(m_pixels, known.shape[-1]) if autoencoder is not None else m_pixels
    grid, walk = noise_grid(model, schedule, steps), repaint_positions(steps, jumps, jump_length)
    gen, dev = torch.Generator().manual_seed(seed), images.device
    was_training = model.training
    model.eval()
    x = _noise(known.shape, gen, dev)
    for p, q in zip(walk, walk[1:]):
        if q < p:  # back up: forward noise from position p to the noisier q
            x = noise_up(x, grid[p], grid[q], _noise(x.shape, gen, dev))
            continue
        x0, eps = predict(model, x, grid[p], y, guidance)
        unknown = ancestral_step(x0, eps, grid[p], grid[q], _noise(x.shape, gen, dev))
        a_s, b_s, _ = grid[q]
        x = m * (a_s * known + b_s * _noise(x.shape, gen, dev)) + (1 - m) * unknown
    model.train(was_training)
    out = autoencoder.decode(x) if autoencoder is not None else x
    return torch.where(m_pixels.bool(), images, out.clamp(-1, 1))


@torch.no_grad()
def image_to_image(model, schedule: Schedule, images: torch.Tensor, strength: float, *, y=None, guidance=None,
                   steps: int = EDIT_DEFAULTS["steps"], seed: int = 0, autoencoder=None) -> torch.Tensor:
    """Redraw images from their copy noised `strength` of the way to pure noise (SDEdit), with about
    strength * steps deterministic steps (DDIM / Euler) to the clean image. strength in (0, 1]: near 0 keeps
    the input, 1 starts from (almost) pure noise. autoencoder: a latent model's, to edit its latents."""
    images = check_images(model, images, autoencoder)
    strength = check_strength(strength)
    z = autoencoder.encode(images) if autoencoder is not None else images
    grid = noise_grid(model, schedule, max(1, round(strength * steps)), start=strength)
    gen, dev = torch.Generator().manual_seed(seed), images.device
    was_training = model.training
    model.eval()
    a, b, _ = grid[0]
    x = a * z + b * _noise(z.shape, gen, dev)  # q(x_t0 | x_0), DDPM eq. 4 (or the linear path's x_t)
    for level, level_next in zip(grid, grid[1:]):
        x0, eps = predict(model, x, level, y, guidance)
        x = paths.step_to(x0, eps, *level_next[:2])  # DDIM (eta = 0) / Euler: a_s x0_hat + b_s eps_hat
    model.train(was_training)
    return (autoencoder.decode(x) if autoencoder is not None else x).clamp(-1, 1)
