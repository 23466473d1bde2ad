"""One interpolant, two paths: diffusion and flow matching are one family.

Every model here noises an image x_0 the same way (Albergo & Vanden-Eijnden 2023, stochastic
interpolants, https://arxiv.org/abs/2209.15571):

    x_t = a_t x_0 + b_t eps,   eps ~ N(0, I)

    "vp"      a_t = sqrt(ab_t),  b_t = sqrt(1 - ab_t),  t = 0..T-1    DDPM's variance-preserving path
                                                                      (Ho et al. 2020, eq. 4)
    "linear"  a_t = 1 - t,       b_t = t,               t in [0, 1]   rectified flow / conditional flow
                                                                      matching (Liu et al. 2022,
              https://arxiv.org/abs/2209.03003; Lipman et al. 2023, https://arxiv.org/abs/2210.02747)

A network may predict any of four targets; with x_t known, each one gives the pair (x_0, eps), and the
pair gives every other target (TARGETS, to_x0_eps, target):

    eps        the noise                                   (DDPM)
    x0         the clean image
    v          a_t eps - b_t x_0                           (Salimans & Ho 2022, https://arxiv.org/abs/2202.00512)
    velocity   dx_t/dt = a'_t x_0 + b'_t eps               (flow matching; eps - x_0 on the linear path)

A deterministic step from t to s keeps the predicted pair and re-mixes it with the coefficients of s:

    x_s = a_s x0_hat + b_s eps_hat                                                     (step_to)

On the VP path that is DDIM (Song et al. 2021, eq. 12 with eta = 0); on the linear path it is the Euler
step x_s = x_t + (s - t) v_theta of the flow's ODE dx/dt = v_theta(x_t, t). One line of code for both.
"""

from __future__ import annotations

import math

import numpy as np
import torch

PATHS = ("vp", "linear")
TARGETS = ("eps", "x0", "v", "velocity")
TIME_SCALE = 1000  # a linear-path network is told t * 1000, as Stable Diffusion 3 and diffusers do
TIME_SAMPLINGS = ("uniform", "logit_normal")  # how training draws t on the linear path


def check_path(path: str) -> str:
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; choose one of {', '.join(PATHS)}.")
    return path


def path_of(model) -> str:
    """The path a network was trained on, from its recorded config; "vp" for one without a config."""
    return check_path(getattr(model, "config", {}).get("path", "vp"))


def linear_coefficients(t):
    """(a_t, b_t, a'_t, b'_t) of the linear path: x_t = (1 - t) x_0 + t eps."""
    return 1 - t, t, -torch.ones_like(torch.as_tensor(t)), torch.ones_like(torch.as_tensor(t))


def to_x0_eps(pred: torch.Tensor, kind: str, x_t: torch.Tensor, a, b, da=None, db=None):
    """The (x_0, eps) pair a prediction of `kind` stands for, given x_t = a x_0 + b eps.

    Each row solves the two linear equations {x_t = a x_0 + b eps, pred = ...} for x_0 and eps:
        eps       x_0 = (x_t - b eps) / a
        x0        eps = (x_t - a x_0) / b
        v         x_0 = (a x_t - b v) / (a^2 + b^2),    eps = (b x_t + a v) / (a^2 + b^2)
        velocity  x_0 = (b' x_t - b u) / (a b' - b a'), eps = (a u - a' x_t) / (a b' - b a')
    (VP: a^2 + b^2 = 1; linear: a b' - b a' = 1, so x_0 = x_t - t u and eps = x_t + (1 - t) u.)
    """
    if kind == "eps":
        return (x_t - b * pred) / a, pred
    if kind == "x0":
        return pred, (x_t - a * pred) / b
    if kind == "v":
        norm = a * a + b * b
        return (a * x_t - b * pred) / norm, (b * x_t + a * pred) / norm
    if kind == "velocity":
        det = a * db - b * da
        return (db * x_t - b * pred) / det, (a * pred - da * x_t) / det
    raise ValueError(f"unknown prediction target {kind!r}; choose one of {', '.join(TARGETS)}.")


def target(kind: str, x0: torch.Tensor, eps: torch.Tensor, a, b, da=None, db=None) -> torch.Tensor:
    """What a network of `kind` is trained to output for this (x_0, eps) at (a, b): the table's other way."""
    if kind == "eps":
        return eps
    if kind == "x0":
        return x0
    if kind == "v":
        return a * eps - b * x0
    if kind == "velocity":
        return da * x0 + db * eps
    raise ValueError(f"unknown prediction target {kind!r}; choose one of {', '.join(TARGETS)}.")


def step_to(x0: torch.Tensor, eps: torch.Tensor, a_next, b_next) -> torch.Tensor:
    """The deterministic step of both paths: x_s = a_s x0_hat + b_s eps_hat (DDIM eq. 12, eta = 0; the
    Euler step of the flow on the linear path)."""
    return a_next * x0 + b_next * eps


# ------------------------------------------------------------------ the linear path: training and sampling


def linear_interpolate(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t eps, with t (B,) broadcast over the image dimensions."""
    t = t.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1 - t) * x0 + t * eps


def sample_time(n: int, how: str = "uniform", generator=None) -> torch.Tensor:
    """Training times t in (0, 1) for the linear path, drawn on the CPU from `generator`.

    uniform       t ~ U(0, 1)                                 (Liu et al. 2022; Lipman et al. 2023)
    logit_normal  t = sigmoid(z), z ~ N(0, 1): more weight on the middle times, where predicting the
                  velocity is hardest (Esser et al. 2024, Stable Diffusion 3, https://arxiv.org/abs/2403.03206,
                  sec. 3.1, "lognorm(0.00, 1.00)")
    """
    if how == "uniform":
        return torch.rand(n, generator=generator, dtype=torch.float64)
    if how == "logit_normal":
        return torch.sigmoid(torch.randn(n, generator=generator, dtype=torch.float64))
    raise ValueError(f"unknown time sampling {how!r}; choose one of {', '.join(TIME_SAMPLINGS)}.")


def shift_time(t, shift: float = 1.0):
    """Time shifting (Esser et al. 2024, eq. 23): t' = shift t / (1 + (shift - 1) t). shift > 1 spends
    more of the steps at high noise (t near 1), where the image's layout is decided."""
    if not (math.isfinite(shift) and shift > 0):
        raise ValueError(f"shift must be a positive number (1 = no shift; SD3 uses 3), got {shift}.")
    return shift * t / (1 + (shift - 1) * t)


def flow_grid(steps: int, shift: float = 1.0) -> np.ndarray:
    """The times a linear-path sampler visits, from noise (t = 1) to data (t = 0): `steps` equal steps,
    1, 1 - 1/N, ..., 1/N, 0 (Liu et al. 2022's t_i = i/N), shifted (shift_time). Returns steps + 1 times
    (float64, decreasing).

    diffusers' FlowMatchEulerDiscreteScheduler, asked for N steps, puts its N times evenly from 1 down to
    1/1000 instead and then steps to 0: its last step is a wasted 0.001, and with 2 steps its first step
    goes from 1 to 0.001, so 2 steps sample like 1. Given these times (`set_timesteps(sigmas=...)`) it walks
    exactly this grid, which tests/test_flow_matching.py checks step for step."""
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    return np.append(shift_time(np.linspace(1.0, 0.0, steps + 1)[:-1], shift), 0.0)


# ------------------------------------------------------------------ how straight is a sampled path


def vp_to_linear(x_t: torch.Tensor, alpha_bar) -> tuple[torch.Tensor, float]:
    """A VP state at noise level alpha_bar, written on the linear path with the same signal-to-noise
    ratio: x_t = a x_0 + b eps  ->  x_t / (a + b) = (1 - s) x_0 + s eps at s = b / (a + b)."""
    a, b = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
    return x_t / (a + b), b / (a + b)


def straightness(times, states: torch.Tensor) -> float:
    """Liu et al. 2022 (eq. 4 of the rectified-flow paper), on a sampled trajectory in linear-path time:

        S = integral over t of  E || (x_1 - x_0) - dx_t/dt ||^2  dt

    with x_1 the starting noise (t = 1), x_0 the generated image (t = 0) and dx/dt the finite difference
    between visited states. times: (N + 1,) decreasing from 1 to 0; states: (N + 1, B, ...). Squared norms
    are averaged over pixels and images. S = 0 exactly when every path is a straight line walked at
    constant speed; one Euler step is then exact."""
    times = torch.as_tensor(np.asarray(times, dtype=np.float64))
    states = states.double()
    if len(times) != len(states) or len(times) < 2:
        raise ValueError(f"need one time per state (at least two); got {len(times)} times, {len(states)} states.")
    dt = times[:-1] - times[1:]  # positive: time runs from 1 to 0
    if torch.any(dt <= 0):
        raise ValueError("times must decrease strictly (from noise at t = 1 to data at t = 0).")
    displacement = states[0] - states[-1]  # x_1 - x_0
    velocity = (states[:-1] - states[1:]) / dt.reshape(-1, *([1] * (states.ndim - 1)))
    gap = (velocity - displacement).pow(2).flatten(1).mean(1)  # per step: mean over images and pixels
    return float((gap * dt).sum() / (times[0] - times[-1]))
