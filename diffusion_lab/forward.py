"""The forward (noising) process q.

Equation numbers are DDPM's (Ho et al. 2020, https://arxiv.org/abs/2006.11239).
One step, DDPM eq. 2:     q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)
Closed-form jump, eq. 4:  q(x_t | x_0)     = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
Its inverse (used by every sampler, eq. 15):  x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
The "velocity" v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho 2022, sec. 4,
https://arxiv.org/abs/2202.00512), an
alternative training target; eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v turns it back.
The score of the noisy data, grad log p_t(x_t) = -eps / sqrt(1 - alpha_bar_t) (score_from_eps): a noise
predictor is a score model (Song et al. 2021, https://arxiv.org/abs/2011.13456).
"""

from __future__ import annotations

import torch

from . import paths
from .schedules import Schedule

PREDICTION_TYPES = ("eps", "v")  # what a VP network can be trained to predict: the noise, or v (below)
PATH_PREDICTIONS = {"vp": PREDICTION_TYPES, "linear": ("velocity",)}  # a linear-path network: dx_t/dt


def q_step(x_prev: torch.Tensor, t, schedule: Schedule, noise: torch.Tensor | None = None):
    """Sample x_t ~ q(x_t | x_{t-1}) (eq. 2): one small step of noise."""
    noise = torch.randn_like(x_prev) if noise is None else noise
    beta = schedule.at(schedule.betas, t, x_prev)
    return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise


def q_sample(x0: torch.Tensor, t, schedule: Schedule, noise: torch.Tensor | None = None):
    """Sample x_t ~ q(x_t | x_0) in one jump (eq. 4): x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps."""
    noise = torch.randn_like(x0) if noise is None else noise
    if noise.shape != x0.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} must equal x0 shape {tuple(x0.shape)}.")
    signal = schedule.at(schedule.sqrt_alpha_bar, t, x0)
    sigma = schedule.at(schedule.sqrt_one_minus_alpha_bar, t, x0)
    return signal * x0 + sigma * noise


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """Invert eq. 4 given the noise: x_0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)."""
    signal = schedule.at(schedule.sqrt_alpha_bar, t, x_t)
    sigma = schedule.at(schedule.sqrt_one_minus_alpha_bar, t, x_t)
    return (x_t - sigma * eps) / signal


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """The noise that eq. 4 implies for a given x_0: eps = (x_t - sqrt(ab_t) x_0) / sqrt(1 - ab_t)."""
    signal = schedule.at(schedule.sqrt_alpha_bar, t, x_t)
    sigma = schedule.at(schedule.sqrt_one_minus_alpha_bar, t, x_t)
    return (x_t - signal * x0) / sigma


def score_from_eps(eps: torch.Tensor, alpha_bar) -> torch.Tensor:
    """The score grad_{x_t} log p_t(x_t) that a noise prediction implies: -eps / sqrt(1 - ab_t).

    q(x_t | x_0) is N(sqrt(ab_t) x_0, (1 - ab_t) I), whose score is -eps / sqrt(1 - ab_t); the best noise
    prediction E[eps | x_t] turns that into the score of p_t itself (denoising score matching, Vincent 2011;
    Song et al. 2021, https://arxiv.org/abs/2011.13456, sec. 3.3 and appendix B). In the sigma coordinates of
    solvers.py, x~ = x_t / sqrt(ab_t) and sigma = sqrt((1 - ab_t) / ab_t), the same fact reads
    eps = -sigma * grad_{x~} log p(x~)."""
    return -eps / (1 - torch.as_tensor(alpha_bar, dtype=eps.dtype, device=eps.device)).sqrt()


def eps_from_score(score: torch.Tensor, alpha_bar) -> torch.Tensor:
    """The inverse of score_from_eps: eps = -sqrt(1 - ab_t) * score."""
    return -score * (1 - torch.as_tensor(alpha_bar, dtype=score.dtype, device=score.device)).sqrt()


def posterior(x0: torch.Tensor, x_t: torch.Tensor, t, schedule: Schedule):
    """Mean and variance of q(x_{t-1} | x_t, x_0) (eq. 6-7)."""
    mean = schedule.at(schedule.posterior_mean_coef_x0, t, x_t) * x0 + schedule.at(
        schedule.posterior_mean_coef_xt, t, x_t
    ) * x_t
    return mean, schedule.at(schedule.posterior_variance, t, x_t)


def v_target(x0: torch.Tensor, eps: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """The v-prediction target: v = sqrt(ab_t) eps - sqrt(1 - ab_t) x_0 (Salimans & Ho 2022)."""
    signal = schedule.at(schedule.sqrt_alpha_bar, t, x0)
    sigma = schedule.at(schedule.sqrt_one_minus_alpha_bar, t, x0)
    return paths.target("v", x0, eps, signal, sigma)


def eps_from_v(x_t: torch.Tensor, v: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """Noise from a v prediction: eps = sqrt(1 - ab_t) x_t + sqrt(ab_t) v (because ab_t + (1 - ab_t) = 1)."""
    return eps_from_prediction(v, x_t, schedule.at(schedule.alpha_bar, t, x_t), "v")


def check_prediction(prediction: str, path: str = "vp") -> str:
    """The one check of a prediction type, made where a network records it (UNet, MinimalUNet, DiT):
    eps or v on the VP path, the velocity on the linear path (flow matching)."""
    allowed = PATH_PREDICTIONS[paths.check_path(path)]
    if prediction not in allowed:
        known = prediction in PATH_PREDICTIONS["vp"] + PATH_PREDICTIONS["linear"]
        raise ValueError((f"prediction {prediction!r} does not go with the {path} path" if known else
                          f"unknown prediction type {prediction!r}") + f"; choose {' or '.join(map(repr, allowed))}"
                         + (" (a linear-path model predicts the velocity)." if path == "linear" else "."))
    return prediction


def prediction_of(model) -> str:
    """What `model` outputs, from its recorded config ("prediction"); a network of your own without one
    predicts eps (pass prediction_type= to the samplers otherwise)."""
    config = getattr(model, "config", {})
    return check_prediction(config.get("prediction", "eps"), config.get("path", "vp"))


def eps_from_prediction(output: torch.Tensor, x_t: torch.Tensor, alpha_bar, prediction: str = "eps"):
    """The noise a network's output stands for at noise level alpha_bar (a number, or a tensor that
    broadcasts against x_t): "eps" is the noise itself; "v" gives eps = sqrt(1 - ab) x_t + sqrt(ab) v.

    Every sampler works with eps, so this is the one place where a v-predicting model is translated
    (samplers.sample reads the model's recorded `prediction`, prediction_of below).
    """
    if prediction == "eps":
        return output
    if prediction == "v":  # paths.to_x0_eps's row for v, with a = sqrt(ab), b = sqrt(1 - ab), a^2 + b^2 = 1
        alpha_bar = torch.as_tensor(alpha_bar, dtype=x_t.dtype, device=x_t.device)
        return (1 - alpha_bar).sqrt() * x_t + alpha_bar.sqrt() * output
    raise ValueError(f"unknown prediction type {prediction!r}; choose one of {', '.join(PREDICTION_TYPES)}.")
