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

Three stochastic samplers walk the same grids (chapter 14):

    Euler ancestral (diffusers' EulerAncestralDiscreteScheduler; Karras et al. 2022, sec. 4): split the
                step to sigma' into a deterministic part down to sigma_down and fresh noise of std sigma_up,
                sigma_up = sigma' sqrt(1 - sigma'^2 / sigma^2),  sigma_down = sqrt(sigma'^2 - sigma_up^2),
                x~' = x~ + (sigma_down - sigma) eps + sigma_up z.  The variance of the jump sigma -> sigma'
                is then that of the DDPM posterior (in sigma space), as DDIM with eta = 1.
    DPM-Solver++ 2M SDE (Lu et al. 2022, arXiv 2211.01095, sec. 5 and app. B; diffusers'
                DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")): the exponential integrator of
                the reverse SDE instead of the ODE. With r = sigma'/sigma and D extrapolated as in 2M,
                x~' = r^2 x~ + (1 - r^2) D + sigma' sqrt(1 - r^2) z
                (the ODE's r x~ + (1 - r) D pulls half as hard towards D and adds no noise).
    EDM (Karras et al. 2022, Alg. 2, "churn"): before each Heun step raise the noise level from sigma to
                sigma^ = (1 + gamma) sigma by adding fresh noise of std sqrt(sigma^2 - sigma^2), then take the
                Heun step from sigma^ to sigma'.  gamma = min(S_churn / N, sqrt(2) - 1); we set S_noise = 1,
                S_tmin = 0 and S_tmax so that sigma^ never exceeds the grid's first level (the noisiest
                level the walk starts at). churn = 0 is Heun exactly.

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
STOCHASTIC_SAMPLERS = ("euler_ancestral", "dpmpp2m_sde", "edm")  # fresh noise on the way
SIGMA_SAMPLERS = ODE_SAMPLERS + STOCHASTIC_SAMPLERS  # the samplers that walk sigma_grid
FINAL_SIGMAS = ("zero", "sigma_min")


def sigma_grid(schedule: Schedule, steps: int, sampler: str = "euler", spacing: str = "leading",
               karras: bool = False, final_sigma: str = "zero") -> tuple[np.ndarray, np.ndarray]:
    """(timesteps (N,), sigmas (N + 1,)): where each step asks the network, and the noise levels it
    walks through (the last one is the final sigma), as diffusers builds them.

    euler, heun, euler_ancestral, edm (EulerDiscreteScheduler, HeunDiscreteScheduler, ...): the DDIM
        grid for leading/trailing; linspace is not rounded, so t may be fractional. karras=True: sigmas
        by eq. 5 between the grid's two ends, each asked at t(sigma) (fractional).
    dpmpp2m, dpmpp2m_sde (DPMSolverMultistepScheduler): leading/linspace divide T into N + 1 parts and leave out
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
    if sampler in ("dpmpp2m", "dpmpp2m_sde"):
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
    if sampler in ("heun", "edm"):  # two per step, but no correction on a step that ends at sigma = 0
        return 2 * steps - (final_sigma == "zero")
    return steps


def steps_for_calls(sampler: str, calls: int, final_sigma: str = "zero") -> int:
    """The most steps whose model_calls fit in a budget of `calls` (Heun, EDM: (calls + 1) // 2)."""
    if sampler in ("heun", "edm"):
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


def dpmpp_2m_sde_step(x: torch.Tensor, x0: torch.Tensor, x0_prev: torch.Tensor | None, sigma_prev: float | None,
                      sigma: float, sigma_next: float, noise: torch.Tensor | None) -> torch.Tensor:
    """SDE-DPM-Solver++(2M) from sigma to sigma_next, in sigma space:
    x~' = r^2 x~ + (1 - r^2) D + sigma' sqrt(1 - r^2) z, with r = sigma_next / sigma and D extrapolated
    from x0_prev as in dpmpp_2m_step (the midpoint form)."""
    if x0_prev is not None:
        h, h_prev = math.log(sigma / sigma_next), math.log(sigma_prev / sigma)
        x0 = x0 + (h / (2 * h_prev)) * (x0 - x0_prev)
    r2 = (sigma_next / sigma) ** 2
    x = r2 * x + (1 - r2) * x0
    return x + sigma_next * math.sqrt(1 - r2) * noise if sigma_next > 0 else x


def churn_gamma(churn: float, steps: int, sigma: float, sigma_max: float) -> float:
    """Karras et al. 2022, Alg. 2 line 4: gamma_i = min(S_churn / N, sqrt(2) - 1) where the raised level
    (1 + gamma) sigma stays at or below sigma_max (our S_tmax), else 0."""
    gamma = min(churn / steps, math.sqrt(2) - 1)
    return gamma if gamma > 0 and (1 + gamma) * sigma <= sigma_max else 0.0


def check_churn(churn) -> float:
    if isinstance(churn, bool) or not isinstance(churn, (int, float)) or not math.isfinite(churn) or churn < 0:
        raise ValueError(f"churn must be a finite number >= 0 (Karras et al.'s S_churn; 0 is Heun), got {churn!r}.")
    return float(churn)


def dpmpp_first_order(i: int, steps: int, final_sigma: str) -> bool:
    """Which DPM-Solver++ 2M steps are first order (diffusers' lower_order_final): the first (no
    history yet), and the last when it goes to sigma = 0 or when there are fewer than 15 steps."""
    return i == 0 or (i == steps - 1 and (final_sigma == "zero" or steps < 15))


# ------------------------------------------------------------------ the loop


def ode_sample(eps_at, x_T: torch.Tensor, timesteps, sigmas, sampler: str, clip_x0: bool = False,
               final_sigma: str = "zero", on_step=None, noise=None, churn: float = 0.0, t_of=None) -> torch.Tensor:
    """Solve the ODE (or, for the stochastic samplers, the SDE) from x_T (a VP sample at sigmas[0], i.e.
    N(0, I) noise) down the sigma grid.

    eps_at(x_t, t, sigma) -> the network's noise prediction for the VP image x_t = x~ / sqrt(1 + sigma^2)
    at timestep t. Returns x~ at the final sigma: the image (x_0 itself when the final sigma is zero).
    on_step(i, x_t, x0) is called after every step with the new VP state and the x_0 predicted on the way.
    noise(shape) -> fresh standard normal noise, for the stochastic samplers (drawn from their seed).
    churn, t_of: EDM's S_churn, and t_of(sigma) -> the timestep of a raised noise level (churn > 0 only).
    """
    check_ode_sampler(sampler)
    check_churn(churn)
    sig = [float(s) for s in sigmas]
    ts = [float(t) for t in timesteps] + [0.0]  # + the end point's t (only Heun asks there, at sigma_min)
    steps = len(sig) - 1

    def slope(x, t, sigma):  # (x_0 prediction, eps) at noise level sigma, in sigma space
        return x0_and_eps(x, eps_at(x / math.sqrt(1 + sigma**2), t, sigma), sigma, clip_x0)

    x = x_T * math.sqrt(1 + sig[0] ** 2)  # the same noise, in sigma space
    x0_prev = None
    for i in range(steps):
        t, sigma, sigma_next = ts[i], sig[i], sig[i + 1]
        gamma = churn_gamma(churn, steps, sigma, sig[0]) if sampler == "edm" else 0.0
        if gamma > 0:  # Alg. 2 lines 5-6: up to sigma^ = (1 + gamma) sigma with fresh noise
            sigma_hat = (1 + gamma) * sigma
            x = x + math.sqrt(sigma_hat**2 - sigma**2) * noise(x.shape)
            t, sigma = float(t_of(sigma_hat)), sigma_hat
        x0, eps = slope(x, t, sigma)
        last = sigma_next == 0
        if sampler == "euler":
            x = euler_step(x, eps, sigma, sigma_next)
        elif sampler == "euler_ancestral":
            x = euler_ancestral_step(x, eps, sigma, sigma_next, None if last else noise(x.shape))
        elif sampler in ("heun", "edm"):
            x_euler = euler_step(x, eps, sigma, sigma_next)
            if not last:
                _, eps_next = slope(x_euler, ts[i + 1], sigma_next)
                x = heun_step(x, eps, eps_next, sigma, sigma_next)
            else:
                x = x_euler
        else:
            first = dpmpp_first_order(i, steps, final_sigma)
            prev = (None, None) if first else (x0_prev, sig[i - 1])
            if sampler == "dpmpp2m":
                x = dpmpp_2m_step(x, x0, *prev, sigma, sigma_next)
            else:
                x = dpmpp_2m_sde_step(x, x0, *prev, sigma, sigma_next, None if last else noise(x.shape))
            x0_prev = x0
        if on_step is not None:
            on_step(i, x / math.sqrt(1 + sigma_next**2), x0)
    return x
