"""Timestep and noise-level grids: which steps a few-step sampler visits. Both the DDIM loop
(samplers.py) and the ODE solvers (solvers.py) walk them, so they live below both.

DDIM sub-grid (Song et al. 2021, https://arxiv.org/abs/2010.02502, sec. 4.2), spacings as diffusers
names them; "trailing" starts at the noisiest step (Lin et al. 2024, https://arxiv.org/abs/2305.08891,
sec. 3.3).

Noise levels of the variance-exploding view (Karras et al. 2022, https://arxiv.org/abs/2206.00364):
    sigma_t = sqrt((1 - ab_t) / ab_t)                                    (x_t / sqrt(ab_t) = x_0 + sigma_t eps)
    sigma_i = (max^(1/rho) + i/(N-1) (min^(1/rho) - max^(1/rho)))^rho    (their eq. 5, rho = 7)
"""

from __future__ import annotations

import numpy as np

from .schedules import Schedule

SPACINGS = ("leading", "trailing", "linspace")
KARRAS_RHO = 7.0  # Karras et al. 2022, eq. 5: the paper's choice, and diffusers'


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



def sigmas_of(schedule: Schedule) -> np.ndarray:
    """sigma_t = sqrt((1 - ab_t) / ab_t) for t = 0..T-1 (float64, increasing)."""
    ab = schedule.alpha_bar.numpy()
    return np.sqrt((1 - ab) / ab)


def t_of_sigma(sigma, schedule: Schedule) -> np.ndarray:
    """The (real) timestep with this noise level: linear interpolation in log sigma between the
    training steps (diffusers' _sigma_to_t), clamped to 0..T-1."""
    log_table = np.log(sigmas_of(schedule))
    return np.interp(np.log(np.maximum(sigma, 1e-10)), log_table, np.arange(len(log_table), dtype=np.float64))


def karras_sigmas(sigma_min: float, sigma_max: float, steps: int, rho: float = KARRAS_RHO) -> np.ndarray:
    """Karras et al. 2022, eq. 5: sigma_i = (max^(1/rho) + i/(N-1) (min^(1/rho) - max^(1/rho)))^rho,
    steps crowded towards small sigma, where the image's details are decided."""
    ramp = np.linspace(0, 1, steps)
    return (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
