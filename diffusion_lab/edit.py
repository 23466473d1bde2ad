"""Editing with an unchanged diffusion model (chapter 14): inpainting and image-to-image.

Inpainting, RePaint (Lugmayr et al. 2022, https://arxiv.org/abs/2201.09865, Alg. 1). Walk the reverse
process; after each step to the noise level s, put back the known pixels, noised to that same s:

    x_s <- m * (sqrt(ab_s) x_known + sqrt(1 - ab_s) eps) + (1 - m) * x_s^model        (m = 1: known)

The model's step is ancestral (DDIM with eta = 1, DDPM's posterior variance for the jump t -> s), on a grid
of `steps` timesteps. Resampling: every `jump_length` steps, go back up `jump_length` steps by forward
noising, q(x_t | x_s) = N(sqrt(ab_t / ab_s) x_s, (1 - ab_t / ab_s) I), and walk down again; `jumps` times.
That gives the generated part time to agree with the known part (Lugmayr et al., sec. 4.2).

Image-to-image, SDEdit (Meng et al. 2022, https://arxiv.org/abs/2108.01073): noise the input to
t0 = strength * (T - 1) with q(x_t0 | x_0) (DDPM eq. 4) and run the reverse process from t0 down.
"""

from __future__ import annotations

import torch

from .forward import prediction_of, q_sample
from .paths import path_of
from .samplers import _noise, ddim_step, model_eps
from .schedules import Schedule
from .timesteps import ddim_timesteps


def check_images(model, images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] of the shape the model makes, (N, C, H, W)."""
    if path_of(model) != "vp":
        raise ValueError("editing walks the VP path here; this model was trained on the linear path (flow "
                         "matching): use a DDPM checkpoint such as mnist_cfg.")
    want = (model.in_channels, model.image_size, model.image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != want:
        raise ValueError(f"images of shape {tuple(images.shape)} do not fit this model, which makes images of "
                         f"shape (N, {', '.join(map(str, want))}); a latent model edits latents: encode first.")
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
    if bool((m == 1).all()):
        raise ValueError("the mask keeps every pixel, so there is nothing to inpaint: mark the pixels to "
                         "generate with 0.")
    return m


def repaint_positions(steps: int, jumps: int, jump_length: int) -> list[int]:
    """The walk over grid positions 0 (the noisiest step) .. steps (the clean image): down one position at a
    time, and after every jump_length of them (but at the end) `jumps` times up jump_length at once and down
    again. A move down is one model call; a move up is forward noise."""
    for name, value, low in (("steps", steps, 1), ("jumps", jumps, 0), ("jump_length", jump_length, 1)):
        if not isinstance(value, int) or value < low:
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


@torch.no_grad()
def inpaint(model, schedule: Schedule, images: torch.Tensor, mask, *, y=None, guidance=None, steps: int = 50,
            jumps: int = 2, jump_length: int = 10, seed: int = 0) -> torch.Tensor:
    """Complete the pixels where mask = 0 (RePaint). Returns images in [-1, 1]; where mask = 1 they are the
    input's, exactly."""
    images = check_images(model, images)
    m = check_mask(mask, images)
    walk = repaint_positions(steps, jumps, jump_length)
    grid = ddim_timesteps(schedule.T, steps, "trailing") + [-1]  # position p -> timestep; -1 = clean
    ab = [float(schedule.alpha_bar[t]) if t >= 0 else 1.0 for t in grid]
    gen, dev, prediction = torch.Generator().manual_seed(seed), images.device, prediction_of(model)
    was_training = model.training
    model.eval()
    x = _noise(images.shape, gen, dev)
    for p, q in zip(walk, walk[1:]):
        if q < p:  # back up: forward noise from position p to the noisier q
            x = (ab[q] / ab[p]) ** 0.5 * x + (1 - ab[q] / ab[p]) ** 0.5 * _noise(x.shape, gen, dev)
            continue
        t, s = grid[p], grid[q]
        tt = torch.full((len(x),), t, device=dev, dtype=torch.long)
        eps = model_eps(model, x, tt, schedule.at(schedule.alpha_bar, t, x), y, guidance, prediction)
        unknown, _ = ddim_step(x, eps, t, s, schedule, eta=1.0, noise=_noise(x.shape, gen, dev))
        known = q_sample(images, s, schedule, _noise(x.shape, gen, dev)) if s >= 0 else images
        x = m * known + (1 - m) * unknown
    model.train(was_training)
    return torch.where(m.bool(), images, x.clamp(-1, 1))


@torch.no_grad()
def image_to_image(model, schedule: Schedule, images: torch.Tensor, strength: float, *, y=None, guidance=None,
                   steps: int = 50, eta: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Redraw images from their copy noised to t0 = strength * (T - 1) (SDEdit), with about strength * steps
    DDIM steps from t0 to the clean image (eta as DDIM's). strength in (0, 1]: near 0 keeps the input,
    1 starts from (almost) pure noise."""
    images = check_images(model, images)
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1] (0.3: cleaned up, 1: a new image), got {strength}.")
    t0 = round(strength * (schedule.T - 1))
    n = max(1, round(strength * steps))
    grid = sorted({round(t0 * (n - k) / n) for k in range(n)}, reverse=True)  # t0 first, all > 0 unless t0 = 0
    gen, dev, prediction = torch.Generator().manual_seed(seed), images.device, prediction_of(model)
    was_training = model.training
    model.eval()
    x = q_sample(images, t0, schedule, _noise(images.shape, gen, dev))
    for t, s in zip(grid, grid[1:] + [-1]):
        tt = torch.full((len(x),), t, device=dev, dtype=torch.long)
        eps = model_eps(model, x, tt, schedule.at(schedule.alpha_bar, t, x), y, guidance, prediction)
        x, _ = ddim_step(x, eps, t, s, schedule, eta=eta, noise=_noise(x.shape, gen, dev) if eta > 0 else None)
    model.train(was_training)
    return x.clamp(-1, 1)
