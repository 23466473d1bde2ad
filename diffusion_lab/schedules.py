"""Noise schedules: beta_t and every quantity derived from it.

Notation (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", https://arxiv.org/abs/2006.11239;
t is 0-based, 0..T-1, see notebooks/CONVENTIONS.md):

    alpha_t     = 1 - beta_t
    alpha_bar_t = prod_{s<=t} alpha_s                      (eq. 4 uses it: q(x_t|x_0))
    SNR(t)      = alpha_bar_t / (1 - alpha_bar_t)          (Kingma et al. 2021, https://arxiv.org/abs/2107.00630)

Posterior q(x_{t-1} | x_t, x_0) = N(mean, beta_tilde_t), DDPM eq. 6-7:

    mean          = coef_x0 * x_0 + coef_xt * x_t
    coef_x0       = beta_t * sqrt(alpha_bar_{t-1}) / (1 - alpha_bar_t)
    coef_xt       = (1 - alpha_bar_{t-1}) * sqrt(alpha_t) / (1 - alpha_bar_t)
    beta_tilde_t  = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t

with alpha_bar_{-1} = 1, so beta_tilde_0 = 0: the last reverse step adds no noise.
All tensors are float64 (exact enough to compare with closed forms); samplers cast on use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("linear", "scaled_linear", "cosine", "sigmoid")


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al. 2020, section 4: beta rises linearly from 1e-4 to 0.02 over T = 1000 steps."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def scaled_linear_betas(T: int) -> torch.Tensor:
    """Yu 2025's linear schedule (arXiv:2512.07201, sec. 3.1; its code's `linear_beta_schedule`), rescaled
    so any T ends as noisy as T = 1000: beta from 0.0003 * 1000/T to 0.03 * 1000/T.

    Not diffusers' "scaled_linear" (which is linear in sqrt(beta)): see notebooks/CONVENTIONS.md.
    """
    scale = 1000 / T
    if 0.03 * scale >= 1:
        raise ValueError(
            f"scaled_linear needs T > 30 (beta_end = 0.03*1000/T = {0.03 * scale:.3f} >= 1); "
            "use a larger T or the 'cosine' schedule."
        )
    return torch.linspace(0.0003 * scale, 0.03 * scale, T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021, eq. 17 (https://arxiv.org/abs/2102.09672):
    alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2).

    beta_t = 1 - alpha_bar(t+1)/alpha_bar(t), capped at 0.999 as Nichol & Dhariwal do (the last step
    would otherwise be beta = 1, a division by zero when predicting x_0).
    """
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = 1 - f[1:] / f[:-1]
    return betas.clamp(max=max_beta)


def sigmoid_betas(
    T: int, beta_start: float = 1e-4, beta_end: float = 0.02, width: float = 6.0
) -> torch.Tensor:
    """beta follows a sigmoid from beta_start to beta_end: slow at both ends, fast in the middle.

    The sigmoid *in beta* of the DDIM authors' code (Song et al. 2021, github.com/ermongroup/ddim,
    `get_beta_schedule("sigmoid")`: sigmoid(linspace(-6, 6, T)) scaled to [beta_start, beta_end]).
    Not Jabri et al. 2022's sigmoid schedule (https://arxiv.org/abs/2212.11972), which shapes
    alpha_bar itself, in continuous time.
    """
    x = torch.linspace(-width, width, T, dtype=torch.float64)
    return torch.sigmoid(x) * (beta_end - beta_start) + beta_start


_BETAS = {
    "linear": linear_betas,
    "scaled_linear": scaled_linear_betas,
    "cosine": cosine_betas,
    "sigmoid": sigmoid_betas,
}


@dataclass(frozen=True)
class Schedule:
    """Every per-timestep quantity, indexed by 0-based t (tensors of length T, float64)."""

    name: str
    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bar: torch.Tensor
    alpha_bar_prev: torch.Tensor  # alpha_bar_{t-1}, with alpha_bar_{-1} = 1
    posterior_variance: torch.Tensor  # beta_tilde_t (eq. 7)
    posterior_mean_coef_x0: torch.Tensor
    posterior_mean_coef_xt: torch.Tensor

    @property
    def T(self) -> int:
        return len(self.betas)

    @property
    def sqrt_alpha_bar(self) -> torch.Tensor:
        """Signal scale of x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
        return self.alpha_bar.sqrt()

    @property
    def sqrt_one_minus_alpha_bar(self) -> torch.Tensor:
        """Noise scale of x_t."""
        return (1 - self.alpha_bar).sqrt()

    @property
    def snr(self) -> torch.Tensor:
        return self.alpha_bar / (1 - self.alpha_bar)

    @property
    def log_snr(self) -> torch.Tensor:
        return self.snr.log()

    def check_t(self, t) -> torch.Tensor:
        """Return t as a long tensor, or raise if any t is outside 0..T-1 (never clamped)."""
        t = torch.as_tensor(t)
        if t.is_floating_point():
            if not torch.equal(t, t.round()):
                raise ValueError(f"timesteps must be integers 0..{self.T - 1}; got {t.tolist()}")
            t = t.long()
        if t.numel() and (t.min() < 0 or t.max() >= self.T):
            bad = t[(t < 0) | (t >= self.T)].flatten()[:5].tolist()
            raise ValueError(
                f"timestep {bad} is outside 0..{self.T - 1} (t is 0-based and this schedule has "
                f"T={self.T}); pass t in range(0, {self.T})."
            )
        return t.long()

    def at(self, values: torch.Tensor, t, like: torch.Tensor) -> torch.Tensor:
        """values[t], shaped to broadcast against `like` (B, C, H, W) and in its dtype/device."""
        t = self.check_t(t)
        out = values[t.cpu()].to(device=like.device, dtype=like.dtype)
        return out.reshape(-1, *([1] * (like.ndim - 1))) if out.ndim else out


def make_schedule(name: str = "linear", T: int = 1000) -> Schedule:
    """Build a schedule by name ("linear", "scaled_linear", "cosine", "sigmoid") and length T."""
    if name not in _BETAS:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
    if not isinstance(T, int) or T < 2:
        raise ValueError(f"T must be an integer >= 2, got {T!r}.")
    betas = _BETAS[name](T)
    return schedule_from_betas(betas, name=name)


def schedule_from_betas(betas: torch.Tensor, name: str = "custom") -> Schedule:
    """Derive alpha, alpha_bar and the posterior (eq. 6-7) from any beta sequence in (0, 1)."""
    betas = torch.as_tensor(betas, dtype=torch.float64)
    if betas.ndim != 1 or not ((betas > 0) & (betas < 1)).all():
        raise ValueError("betas must be a 1-D sequence with every value in (0, 1).")
    alphas = 1 - betas
    alpha_bar = torch.cumprod(alphas, dim=0)
    alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
    return Schedule(
        name=name,
        betas=betas,
        alphas=alphas,
        alpha_bar=alpha_bar,
        alpha_bar_prev=alpha_bar_prev,
        posterior_variance=betas * (1 - alpha_bar_prev) / (1 - alpha_bar),
        posterior_mean_coef_x0=betas * alpha_bar_prev.sqrt() / (1 - alpha_bar),
        posterior_mean_coef_xt=(1 - alpha_bar_prev) * alphas.sqrt() / (1 - alpha_bar),
    )
