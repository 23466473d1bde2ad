"""ODE samplers: deterministic DDIM read as an ODE solver, and two better solvers of the same ODE.

Sampling without noise follows the probability-flow ODE (Song et al. 2021, arXiv 2011.13456, eq. 13).
Karras et al. (2022, "Elucidating the Design Space of Diffusion-Based Generative Models",
arXiv 2206.00364, sec. 2-3) write it in the simplest variables. With the noise level

    sigma_t = sqrt((1 - ab_t) / ab_t)                     (ab = alpha_bar; sigma grows with t)

and the image rescaled to "sigma space", x~ = x_t / sqrt(ab_t) = x_0 + sigma_t eps, the ODE is

    dx~ / dsigma = eps_theta(x~ / sqrt(1 + sigma^2), t(sigma))       (the slope is the predicted noise)

and D(x~; sigma) = x~ - sigma eps_theta is the denoised image (the predicted x_0).

    Euler       x~' = x~ + (sigma' - sigma) eps                                   Karras Alg. 1, first order
                This *is* deterministic DDIM (Song et al. 2021, eq. 12, eta = 0) in sigma space:
                x~' = x_0_hat + sigma' eps. Same grid, same images.
    Heun        Euler to x~e, then eps' = eps_theta(x~e, sigma') and
                x~' = x~ + (sigma' - sigma) (eps + eps') / 2                      Karras Alg. 1, 2nd order
                (no correction on a step that ends at sigma' = 0: 2N - 1 model calls for N steps).
    DPM-Solver++ 2M (Lu et al. 2022, arXiv 2211.01095, Alg. 2): an exponential integrator in the
                log-SNR lambda = -log sigma, with the data prediction D extrapolated from the last two:
                h = lambda' - lambda,  r = h_prev / h,  D = (1 + 1/(2r)) D_now - 1/(2r) D_prev
                x~' = (sigma'/sigma) x~ + (1 - sigma'/sigma) D
                (the paper's x' = (s'/s) x - a'(e^-h - 1) D with a = sqrt(ab), s = sqrt(1 - ab), divided by a').
                With D = D_now (first step, and the last step to sigma = 0) it is DDIM again.

One stochastic sampler walks the same grid (chapter 14):

    Euler ancestral (diffusers' EulerAncestralDiscreteScheduler; Karras et al. 2022, sec. 4): split the
                step to sigma' into a deterministic part down to sigma_down and fresh noise of std sigma_up,
                sigma_up = sigma' sqrt(1 - sigma'^2 / sigma^2),  sigma_down = sqrt(sigma'^2 - sigma_up^2),
                x~' = x~ + (sigma_down - sigma) eps + sigma_up z.  The variance of the jump sigma -> sigma'
                is then that of the DDPM posterior (in sigma space), as DDIM with eta = 1.

The grids (which sigmas, at which t) follow diffusers' EulerDiscrete/HeunDiscrete and
DPMSolverMultistep schedulers exactly, so tests/test_solvers_diffusers.py can compare whole chains.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .schedules import Schedule
from .timesteps import (  # noqa: F401  (re-exported: chapters and tests import them from here)
    KARRAS_RHO,
    SPACINGS,
    ddim_timesteps,
    karras_sigmas,
    sigmas_of,
    t_of_sigma,
)

ODE_SAMPLERS = ("euler", "heun", "dpmpp2m")
STOCHASTIC_SAMPLERS = ("euler_ancestral",)  # noise at every step but the last
SIGMA_SAMPLERS = ODE_SAMPLERS + STOCHASTIC_SAMPLERS  # the samplers that walk sigma_grid
FINAL_SIGMAS = ("zero", "sigma_min")


def sigma_grid(schedule: Schedule, steps: int, sampler: str = "euler", spacing: str = "leading",
               karras: bool = False, final_sigma: str = "zero") -> tuple[np.ndarray, np.ndarray]:
    """(timesteps (N,), sigmas (N + 1,)): where each step asks the network, and the noise levels it
    walks through (the last one is the final sigma), as diffusers builds them.

    euler, heun (EulerDiscreteScheduler, HeunDiscreteScheduler): the DDIM grid for leading/trailing;
        linspace is not rounded, so t may be fractional. karras=True: sigmas by eq. 5 between the
        grid's two ends, each asked at t(sigma) (fractional).
    dpmpp2m (DPMSolverMultistepScheduler): leading/linspace divide T into N + 1 parts and leave out
        t = 0 (the last step goes to sigma = 0 anyway); karras=True spans sigma_0..sigma_{T-1} and
        rounds t(sigma) to an integer for the network, keeping the exact sigma in the update.
    final_sigma: "zero" (end on the clean image) or "sigma_min" (end at sigma_0, t = 0).
    """
    check_ode_sampler(sampler)
    if final_sigma not in FINAL_SIGMAS:
        raise ValueError(f"unknown final_sigma {final_sigma!r}; choose one of {', '.join(FINAL_SIGMAS)}.")
    T, table = schedule.T, sigmas_of(schedule)
    if not isinstance(steps, (int, np.integer)) or not 1 <= steps <= T:
        raise ValueError(f"steps must be an integer in 1..T={T}, got {steps!r}.")
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; choose one of {SPACINGS}.")
    if sampler == "dpmpp2m":
        if spacing == "linspace":
            ts = np.linspace(0, T - 1, steps + 1).round()[::-1][:-1]
        elif spacing == "leading":
            ts = (np.arange(steps + 1) * (T // (steps + 1))).round()[::-1][:-1]
        else:
            ts = np.array(ddim_timesteps(T, steps, spacing), dtype=np.float64)
        sigmas = np.interp(ts, np.arange(T), table)
        if karras:
            sigmas = karras_sigmas(table[0], table[-1], steps)
            ts = t_of_sigma(sigmas, schedule).round()
    else:
        if spacing == "linspace":
            ts = np.linspace(0, T - 1, steps)[::-1].copy()
        else:
            ts = np.array(ddim_timesteps(T, steps, spacing), dtype=np.float64)
        sigmas = np.interp(ts, np.arange(T), table)
        if karras:
            sigmas = karras_sigmas(sigmas[-1], sigmas[0], steps)
            ts = t_of_sigma(sigmas, schedule)
    if np.any(np.diff(sigmas) >= 0):
        raise ValueError(f"{steps} steps with {spacing!r} spacing visit a noise level twice; use fewer steps.")
    last = table[0] if final_sigma == "sigma_min" else 0.0
    return ts.astype(np.float64), np.append(sigmas, last)


def check_ode_sampler(sampler: str) -> str:
    if sampler not in SIGMA_SAMPLERS:
        raise ValueError(f"unknown sigma-space sampler {sampler!r}; choose one of {', '.join(SIGMA_SAMPLERS)}.")
    return sampler


def model_calls(sampler: str, steps: int, T: int = 1000, final_sigma: str = "zero") -> int:
    """Network evaluations (NFE) of one sampling run; a guided call is one batched call over 2B images."""
    if sampler == "ddpm":
        return T
    if sampler == "heun":  # two per step, but no correction on a step that ends at sigma = 0
        return 2 * steps - (final_sigma == "zero")
    return steps


def steps_for_calls(sampler: str, calls: int, final_sigma: str = "zero") -> int:
    """The most steps whose model_calls fit in a budget of `calls` (Heun: (calls + 1) // 2)."""
    if sampler == "heun":
        return (calls + (final_sigma == "zero")) // 2
    return calls


# ------------------------------------------------------------------ the step formulas (sigma space)


def x0_and_eps(x: torch.Tensor, eps: torch.Tensor, sigma: float, clip_x0: bool = False):
    """D = x~ - sigma eps (the predicted x_0). With clip_x0, D is clipped to the image range [-1, 1]
    and the step uses the eps it implies, (x~ - D) / sigma, so the pair stays consistent (as DDIM)."""
    x0 = x - sigma * eps
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps = (x - x0) / sigma
    return x0, eps


def euler_step(x: torch.Tensor, eps: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """One Euler step of dx~/dsigma = eps from sigma to sigma_next (Karras et al. 2022, Alg. 1 line 5)."""
    return x + (sigma_next - sigma) * eps


def heun_step(x: torch.Tensor, eps: torch.Tensor, eps_next: torch.Tensor, sigma: float, sigma_next: float):
    """Heun's correction (Karras et al. 2022, Alg. 1 line 8): step with the mean of the slope at the
    start (eps) and the slope at the Euler step's end (eps_next, the network asked there)."""
    return x + (sigma_next - sigma) * (eps + eps_next) / 2


def dpmpp_2m_step(x: torch.Tensor, x0: torch.Tensor, x0_prev: torch.Tensor | None, sigma_prev: float | None,
                  sigma: float, sigma_next: float) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) from sigma to sigma_next, in sigma space.

    x0 is the data prediction now, x0_prev the one at sigma_prev (None: first order, i.e. DDIM).
    The second-order term extrapolates D linearly in lambda = -log sigma: r = h_prev / h.
    """
    if x0_prev is not None:
        h = math.log(sigma / sigma_next)  # lambda_next - lambda
        h_prev = math.log(sigma_prev / sigma)
        x0 = x0 + (h / (2 * h_prev)) * (x0 - x0_prev)  # (1 + 1/(2r)) x0 - 1/(2r) x0_prev, r = h_prev / h
    ratio = sigma_next / sigma
    return ratio * x + (1 - ratio) * x0


def ancestral_sigmas(sigma: float, sigma_next: float) -> tuple[float, float]:
    """(sigma_down, sigma_up) of an ancestral step sigma -> sigma_next: sigma_down^2 + sigma_up^2 = sigma_next^2,
    and sigma_up^2 = sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2."""
    up = math.sqrt(max(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2, 0.0))
    return math.sqrt(max(sigma_next**2 - up**2, 0.0)), up


def euler_ancestral_step(x: torch.Tensor, eps: torch.Tensor, sigma: float, sigma_next: float,
                         noise: torch.Tensor | None) -> torch.Tensor:
    """Euler down to sigma_down, then fresh noise of std sigma_up (none is needed when sigma_next = 0)."""
    down, up = ancestral_sigmas(sigma, sigma_next)
    x = euler_step(x, eps, sigma, down)
    return x + up * noise if up > 0 else x


def dpmpp_first_order(i: int, steps: int, final_sigma: str) -> bool:
    """Which DPM-Solver++ 2M steps are first order (diffusers' lower_order_final): the first (no
    history yet), and the last when it goes to sigma = 0 or when there are fewer than 15 steps."""
    return i == 0 or (i == steps - 1 and (final_sigma == "zero" or steps < 15))


# ------------------------------------------------------------------ the loop


def ode_sample(eps_at, x_T: torch.Tensor, timesteps, sigmas, sampler: str, clip_x0: bool = False,
               final_sigma: str = "zero", on_step=None, noise=None) -> torch.Tensor:
    """Solve the ODE from x_T (a VP sample at sigmas[0], i.e. N(0, I) noise) down the sigma grid.

    eps_at(x_t, t, sigma) -> the network's noise prediction for the VP image x_t = x~ / sqrt(1 + sigma^2)
    at timestep t. Returns x~ at the final sigma: the image (x_0 itself when the final sigma is zero).
    on_step(i, x_t, x0) is called after every step with the new VP state and the x_0 predicted on the way.
    noise(shape) -> fresh standard normal noise, for the stochastic samplers (drawn from their seed).
    """
    check_ode_sampler(sampler)
    sig = [float(s) for s in sigmas]
    ts = [float(t) for t in timesteps] + [0.0]  # + the end point's t (only Heun asks there, at sigma_min)
    steps = len(sig) - 1

    def slope(x, i):  # (x_0 prediction, eps) at grid point i, in sigma space
        return x0_and_eps(x, eps_at(x / math.sqrt(1 + sig[i] ** 2), ts[i], sig[i]), sig[i], clip_x0)

    x = x_T * math.sqrt(1 + sig[0] ** 2)  # the same noise, in sigma space
    x0_prev = None
    for i in range(steps):
        x0, eps = slope(x, i)
        if sampler == "euler":
            x = euler_step(x, eps, sig[i], sig[i + 1])
        elif sampler == "euler_ancestral":
            x = euler_ancestral_step(x, eps, sig[i], sig[i + 1], noise(x.shape) if sig[i + 1] > 0 else None)
        elif sampler == "heun":
            x_euler = euler_step(x, eps, sig[i], sig[i + 1])
            if sig[i + 1] > 0:
                _, eps_next = slope(x_euler, i + 1)
                x = heun_step(x, eps, eps_next, sig[i], sig[i + 1])
            else:
                x = x_euler
        else:
            first = dpmpp_first_order(i, steps, final_sigma)
            x = dpmpp_2m_step(x, x0, None if first else x0_prev, None if first else sig[i - 1], sig[i], sig[i + 1])
            x0_prev = x0
        if on_step is not None:
            on_step(i, x / math.sqrt(1 + sig[i + 1] ** 2), x0)
    return x
