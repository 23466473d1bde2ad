"""The VP stochastic differential equation, its reverse, and its probability-flow ODE, stepped by
Euler-Maruyama (Song et al. 2021, "Score-Based Generative Modeling through SDEs",
https://arxiv.org/abs/2011.13456). Chapter 14 walks both roads on the 2-D toy.

DDPM's noising, with infinitely many tiny steps, is the VP SDE (eq. 11; beta(t) dt is DDPM's beta_t
when one step is one unit of time):

    dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw                        f(x, t) = -1/2 beta x,  g = sqrt(beta)

Anderson (1982) gives the same marginals p_t run backwards in time, if we know the score s = grad log p_t:

    reverse SDE (eq. 6):          dx = [f - g^2 s] dt + g dw_bar
    probability-flow ODE (eq. 13): dx = [f - 1/2 g^2 s] dt            (no noise, the same p_t)

One Euler-Maruyama step of size dt > 0 backwards (from t to t - dt), with z ~ N(0, I):

    SDE:  x <- x + (1/2 beta x + beta s) dt + sqrt(beta dt) z
    ODE:  x <- x + (1/2 beta x + 1/2 beta s) dt

The score comes from the noise predictor: s = -eps / sqrt(1 - ab_t) (forward.score_from_eps). DDPM's
ancestral step (samplers.ddpm_step) is the SDE step to first order in beta; DDIM (eta = 0) is an exact
step of the ODE for a fixed prediction.
"""

from __future__ import annotations

import torch


def reverse_sde_step(x: torch.Tensor, score: torch.Tensor, beta_dt, noise: torch.Tensor | None) -> torch.Tensor:
    """One Euler-Maruyama step of the reverse VP SDE (eq. 6 with eq. 11's f and g), beta_dt = beta(t) dt.
    noise=None takes no noise: the last step, whose fresh noise nothing would remove."""
    x = x + (0.5 * beta_dt * x + beta_dt * score)  # the drift -[f - g^2 s] dt, walked backwards
    if noise is not None:
        x = x + beta_dt**0.5 * noise  # g sqrt(dt) z
    return x


def probability_flow_step(x: torch.Tensor, score: torch.Tensor, beta_dt) -> torch.Tensor:
    """One Euler step of the probability-flow ODE (eq. 13): half the score term, and no noise."""
    return x + (0.5 * beta_dt * x + 0.5 * beta_dt * score)


def walk(score_at, x_T: torch.Tensor, betas: torch.Tensor, stochastic: bool, generator=None,
         keep_every: int = 0):
    """Walk x_T from t = T - 1 down to 0 with one step per DDPM timestep (dt = one step, beta_t dt = betas[t]).

    score_at(x, t) -> the score at timestep t. stochastic: the reverse SDE (fresh noise at every step but
    the last), else the probability-flow ODE. Returns the end points, and with keep_every = k every k-th
    state as well (a list, x_T first)."""
    x, kept = x_T, [x_T]
    for t in range(len(betas) - 1, -1, -1):
        s, beta = score_at(x, t), float(betas[t])
        if stochastic:
            z = torch.randn(x.shape, generator=generator) if t > 0 else None
            x = reverse_sde_step(x, s, beta, z)
        else:
            x = probability_flow_step(x, s, beta)
        if keep_every and t % keep_every == 0:
            kept.append(x)
    return (x, kept) if keep_every else x
