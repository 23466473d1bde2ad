"""Reverse-process samplers: DDPM (ancestral) and DDIM, one step function each, and `sample()`, the
loop that runs them and the ODE solvers of solvers.py (Euler, Heun, DPM-Solver++ 2M).

DDPM step (Ho et al. 2020, https://arxiv.org/abs/2006.11239, eq. 11 written through the predicted x_0,
eq. 15 and 6-7):
    x0_hat  = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)
    mean    = coef_x0 * x0_hat + coef_xt * x_t               (posterior mean, eq. 7)
    x_{t-1} = mean + sigma_t z,  sigma_t^2 = beta_tilde_t ("posterior") or beta_t ("beta")

DDIM step (Song et al. 2021, https://arxiv.org/abs/2010.02502, eq. 12 and 16), from t to an earlier s on a sub-grid:
    sigma   = eta * sqrt((1 - ab_s) / (1 - ab_t)) * sqrt(1 - ab_t / ab_s)
    x_s     = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sigma^2) eps + sigma z
eta = 0 is deterministic; eta = 1 has the DDPM posterior variance for the jump t -> s.
With eta = 0 it is paths.step_to, the same line as the Euler step of a flow on the linear path.

Flow matching (linear path, paths.py; diffusers' FlowMatchEulerDiscreteScheduler / FlowMatchHeunDiscreteScheduler):
    Euler   x_s = x_t + (s - t) v_theta(x_t, t)                      (= a_s x0_hat + b_s eps_hat)
    Heun    Euler to x_e, then x_s = x_t + (s - t) (v_theta(x_t, t) + v_theta(x_e, s)) / 2   (not when s = 0)
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from . import paths, solvers
from .forward import check_prediction, eps_from_prediction, eps_from_x0, posterior, predict_x0, prediction_of
from .guidance import check_guidance, check_guidance_interval, guided_eps, scale_at
from .schedules import Schedule
from .settings import autocast_dtype, progress_bar
from .timesteps import SPACINGS, ddim_timesteps  # noqa: F401  (re-exported: chapters import them from here)

VARIANCES = ("posterior", "beta")
SAMPLERS = ("ddpm", "ddim", *solvers.SIGMA_SAMPLERS)  # all but the first two: solvers.py
# which samplers walk which path; the first is the path's default
PATH_SAMPLERS = {"vp": ("ddim", "ddpm", *solvers.SIGMA_SAMPLERS), "linear": ("euler", "heun")}


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
    x_prev = paths.step_to(x0, eps, ab_s**0.5, max(1 - ab_s - sigma**2, 0.0) ** 0.5)  # a_s x0 + b_s eps
    if sigma > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev, x0


def _noise(shape, generator, device):
    # Draw on the CPU from a seeded generator, so a seed gives the same images on any device.
    return torch.randn(shape, generator=generator).to(device)


def model_output(model: nn.Module, x, t, y=None, guidance=None, amp_dtype=None):
    """The network's prediction (under bf16 autocast when amp_dtype is set), classifier-free guided.
    Guidance is linear, so it applies to eps, v or a velocity alike."""
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        return guided_eps(model, x, t, y, guidance).to(x.dtype)


def model_eps(model: nn.Module, x, t, alpha_bar, y=None, guidance=None, prediction="eps", amp_dtype=None):
    """The noise prediction a VP sampler steps with: model_output converted to eps when the network predicts v."""
    return eps_from_prediction(model_output(model, x, t, y, guidance, amp_dtype), x, alpha_bar, prediction)


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample, in one object: the command line, `evaluate`, `sample()` and the bridge to
    diffusers all read this one. Which option goes with which sampler is said once, in ONLY_FOR."""

    sampler: str | None = None  # None: the path's default (ddim on the VP path, euler on the linear one)
    steps: int | None = None  # None: DEFAULT_STEPS; DDPM always walks all T
    eta: float = 0.0  # DDIM's fresh noise per step (eq. 16): 0 deterministic, 1 DDPM-like
    spacing: str = "leading"  # which timesteps the steps visit (timesteps.ddim_timesteps)
    karras: bool = False  # Karras et al.'s noise levels (https://arxiv.org/abs/2206.00364, eq. 5)
    final_sigma: str = "zero"  # end on the clean image, or at sigma_min (t = 0)
    variance: str = "posterior"  # DDPM's sigma_t^2: beta_tilde_t or beta_t (eq. 6-7, sec. 3.2)
    clip_x0: bool = False  # clip each predicted x_0 to [-1, 1] (diffusers' clip_sample)
    guidance: float | None = None  # classifier-free guidance scale s (https://arxiv.org/abs/2207.12598)
    guidance_interval: tuple[float, float] | None = None  # guide only for sigma in [lo, hi] (arXiv 2404.07724)
    churn: float = 0.0  # edm: S_churn, the fresh noise added before each Heun step (arXiv 2206.00364, Alg. 2)
    amp: bool = False  # bf16 autocast in the network where native (settings.autocast_dtype)
    shift: float = 1.0  # linear path: time shifting (Esser et al. 2024, https://arxiv.org/abs/2403.03206, eq. 23)

    def __post_init__(self):
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}.")
        for name, (samplers, why) in ONLY_FOR.items():
            if self.sampler is not None and self.sampler not in samplers \
                    and getattr(self, name) != SAMPLING_DEFAULTS[name]:
                raise ValueError(f"{name} does not apply to {self.sampler}: {why}; leave it out or pick another "
                                 "sampler.")
        check_eta(self.eta)
        check_guidance(self.guidance)
        solvers.check_churn(self.churn)
        object.__setattr__(self, "guidance_interval", check_guidance_interval(self.guidance_interval))
        if self.guidance_interval is not None and self.guidance is None:
            raise ValueError("a guidance interval limits classifier-free guidance: give a guidance scale too, "
                             "e.g. guidance=3.")
        paths.shift_time(0.5, self.shift)  # checks the shift
        for name, choices in (("spacing", SPACINGS), ("final_sigma", solvers.FINAL_SIGMAS),
                              ("variance", VARIANCES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(choices)}.")

    @property
    def num_steps(self) -> int:
        return DEFAULT_STEPS if self.steps is None else self.steps

    def for_path(self, path: str) -> SamplingConfig:
        """This config for a model trained on `path`: the path's default sampler filled in, and a
        sampler or option of the other path refused with what to use instead."""
        sampler = self.sampler or PATH_SAMPLERS[paths.check_path(path)][0]
        if sampler not in PATH_SAMPLERS[path]:
            raise ValueError(f"sampler {sampler} walks the VP path; this model was trained on the linear path "
                             "(flow matching): use euler or heun.")
        for name in (VP_ONLY if path == "linear" else LINEAR_ONLY):
            if getattr(self, name) != SAMPLING_DEFAULTS[name]:
                other = "VP" if path == "linear" else "linear"
                raise ValueError(f"{name} is an option of the {other} path's samplers; this model was trained on "
                                 f"the {path} path: leave it out.")
        return replace(self, sampler=sampler)


DEFAULT_STEPS = 50
_STEPPED = ("ddim", *solvers.SIGMA_SAMPLERS)
# option -> (the samplers it goes with, why the others have none of it)
ONLY_FOR = {
    "steps": (_STEPPED, "DDPM always walks all T steps"),
    "eta": (("ddim",), "eta is DDIM's fresh noise; the other samplers add none"),
    "spacing": (_STEPPED, "DDPM always walks all T steps"),
    "karras": (solvers.SIGMA_SAMPLERS, "they set the noise levels of " + ", ".join(solvers.SIGMA_SAMPLERS)),
    "final_sigma": (solvers.SIGMA_SAMPLERS, "they set the noise levels of " + ", ".join(solvers.SIGMA_SAMPLERS)),
    "churn": (("edm",), "churn is the fresh noise of EDM's stochastic Heun sampler"),
    "variance": (("ddpm",), "the choice of variance is DDPM's"),
    "shift": (("euler", "heun"), "time shifting moves the steps of euler and heun on the linear path"),
}
SAMPLING_DEFAULTS = {f.name: f.default for f in fields(SamplingConfig)}
VP_ONLY = ("eta", "spacing", "karras", "final_sigma", "variance")  # options of the VP path's timestep grid
LINEAR_ONLY = ("shift",)


def sample(
    model: nn.Module,
    schedule: Schedule,
    num: int | None = None,
    config: SamplingConfig | None = None,
    *,
    y=None,
    seed: int | None = 0,
    x_T: torch.Tensor | None = None,
    prediction_type: str | None = None,
    return_trajectory: bool = False,
    progress: bool = True,
    **options,
):
    """Generate images in [-1, 1] (shape (num, C, H, W)) by walking the reverse process from x_T ~ N(0, I).

    config: a SamplingConfig; keyword options (sampler="ddim", steps=20, guidance=3, ...) set or
        replace its fields. "ddpm" walks all T steps; "ddim", "euler", "heun" and "dpmpp2m" walk
        `steps`. Heun asks the network 2 * steps - 1 times, the others once per step. A model trained
        on the linear path (flow matching; its config says "path": "linear") takes euler (its default)
        or heun, and shift.
    y: labels (int or list/tensor of length num) for a conditional model; None = unconditional.
        A text model takes prompt tokens (num or 1, L) (text.Tokenizer.encode) instead. A latent model
        runs through here unchanged: it returns latents, which its autoencoder decodes.
    prediction_type: what the network outputs, "eps" or "v"; None = the one the model records
        (model.config["prediction"]; forward.prediction_of), "eps" for a network without a config.
    return_trajectory: also return {"t": [...], "x_t": (S+1, N, C, H, W), "x0": (S, N, C, H, W)}.
    The same seed gives the same x_T for every sampler, so their images compare.
    """
    path = paths.path_of(model)
    cfg = replace(config or SamplingConfig(), **options).for_path(path)
    x, y, gen = _start_noise(model, num, y, seed, x_T)
    prediction = check_prediction(prediction_type, path) if prediction_type else prediction_of(model)
    amp_dtype = autocast_dtype(x.device) if cfg.amp else None
    trajectory = {"x_t": [x.cpu()], "x0": []}

    def eps_at(x_t, t, alpha_bar):  # eps_theta(x_t, t, y), guided and converted from v when needed
        tt = torch.full((len(x_t),), t, device=x.device, dtype=torch.long if float(t).is_integer() else torch.float64)
        sigma = float(((1 - alpha_bar) / alpha_bar) ** 0.5)  # for the guidance interval
        guidance = scale_at(cfg.guidance, sigma, cfg.guidance_interval)
        return model_eps(model, x_t, tt, alpha_bar, y, guidance, prediction, amp_dtype)

    def keep(x_t, x0):
        if return_trajectory:
            trajectory["x_t"].append(x_t.cpu())
            trajectory["x0"].append(x0.cpu())

    was_training = model.training
    model.eval()
    with torch.inference_mode():
        if path == "linear":  # the flow's ODE dx/dt = v_theta(x_t, t), from t = 1 to 0
            ts = paths.flow_grid(cfg.num_steps, cfg.shift)
            bar = progress_bar(total=cfg.num_steps, desc=cfg.sampler, disable=not progress, leave=False)
            x = flow_sample(lambda x_t, t: model_output(model, x_t, torch.full((len(x_t),), t * paths.TIME_SCALE,
                                                                              device=x.device, dtype=torch.float64),
                                                        y, scale_at(cfg.guidance, t / max(1 - t, 1e-12),
                                                                    cfg.guidance_interval), amp_dtype),
                            x, ts, cfg.sampler, cfg.clip_x0, lambda i, x_t, x0: (bar.update(1), keep(x_t, x0)))
            bar.close()
            ts = [float(t) for t in ts[:-1]]
        elif cfg.sampler in ("ddpm", "ddim"):  # Algorithm 2 (DDPM) or eq. 12 (DDIM), one step per t
            ts = list(range(schedule.T - 1, -1, -1)) if cfg.sampler == "ddpm" else \
                ddim_timesteps(schedule.T, cfg.num_steps, cfg.spacing)
            for t, t_prev in progress_bar(list(zip(ts, ts[1:] + [-1])), desc=cfg.sampler, disable=not progress,
                                          leave=False):
                eps = eps_at(x, t, schedule.at(schedule.alpha_bar, t, x))
                if cfg.sampler == "ddpm":
                    x, x0 = ddpm_step(x, eps, t, schedule, cfg.variance, cfg.clip_x0, _noise(x.shape, gen, x.device))
                else:  # deterministic DDIM (eta = 0) draws no noise: it would never be used
                    noise = _noise(x.shape, gen, x.device) if cfg.eta > 0 else None
                    x, x0 = ddim_step(x, eps, t, t_prev, schedule, cfg.eta, cfg.clip_x0, noise)
                keep(x, x0)
        else:  # in sigma (solvers.py): the probability-flow ODE (Euler, Heun, DPM-Solver++ 2M) or Euler ancestral
            ts, sigmas = solvers.sigma_grid(schedule, cfg.num_steps, cfg.sampler, cfg.spacing, cfg.karras,
                                            cfg.final_sigma)
            bar = progress_bar(total=len(ts), desc=cfg.sampler, disable=not progress, leave=False)
            x = solvers.ode_sample(lambda x_t, t, sigma: eps_at(x_t, t, 1 / (1 + sigma**2)), x, ts, sigmas,
                                   cfg.sampler, cfg.clip_x0, cfg.final_sigma,
                                   lambda i, x_t, x0: (bar.update(1), keep(x_t, x0)),
                                   noise=lambda shape: _noise(shape, gen, x.device), churn=cfg.churn,
                                   t_of=lambda sigma: solvers.t_of_sigma(sigma, schedule))
            bar.close()
            ts = [int(t) if float(t).is_integer() else float(t) for t in ts]
    model.train(was_training)
    x = x.clone()  # a normal tensor again (inference-mode tensors refuse in-place edits and autograd)
    if return_trajectory:
        return x, {"t": ts, "x_t": torch.stack(trajectory["x_t"]).clone(),
                   "x0": torch.stack(trajectory["x0"]).clone()}
    return x


def flow_sample(velocity_at, x: torch.Tensor, ts, sampler: str = "euler", clip_x0: bool = False, on_step=None):
    """Solve dx/dt = v_theta(x_t, t) from x_1 = noise down the times `ts` (paths.flow_grid).

    velocity_at(x_t, t) -> the network's velocity. Each step turns it into the pair (x0_hat, eps_hat)
    (paths.to_x0_eps) and re-mixes the pair at the next time (paths.step_to): Euler, the same line as
    DDIM. Heun (not on a step that ends at t = 0) steps again with the mean of the velocity at both
    ends. clip_x0 clips x0_hat to [-1, 1] and steps with the eps it implies, as DDIM does.
    on_step(i, x_t, x0_hat) is called after every step."""
    def pair(x_t, t):  # (x0_hat, eps_hat) at time t
        x0, eps = paths.to_x0_eps(velocity_at(x_t, t), "velocity", x_t, *paths.linear_coefficients(t))
        if clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = (x_t - (1 - t) * x0) / t  # t > 0 at the start of every step
        return x0, eps

    for i, (t, s) in enumerate(zip(ts[:-1], ts[1:])):
        t, s = float(t), float(s)
        x0, eps = pair(x, t)
        x_next = paths.step_to(x0, eps, 1 - s, s)  # Euler: x_t + (s - t) v
        if sampler == "heun" and s > 0:
            x0_e, eps_e = pair(x_next, s)
            x_next = x + (s - t) * ((eps - x0) + (eps_e - x0_e)) / 2  # the velocity is eps - x_0
        x = x_next
        if on_step is not None:
            on_step(i, x, x0)
    return x


def _start_noise(model, num, y, seed, x_T):
    """Check the labels against num and draw x_T ~ N(0, I) from `seed` (on the CPU, so a seed gives the
    same images on every device). Returns (x_T, y on the model's device, the generator)."""
    device = next(model.parameters()).device
    if y is not None:  # a label per image, or (text models) a row of prompt tokens per image
        y = torch.as_tensor(y, dtype=torch.long)
        y = y if y.ndim == 2 else y.reshape(-1)
        num = len(y) if num is None else num
        if len(y) == 1:
            y = y.expand(num, *y.shape[1:])
        if len(y) != num:
            raise ValueError(f"got {len(y)} labels for num={num} images; give one label per image.")
        y = y.to(device)
    if num is None and x_T is not None:
        num = len(x_T)
    if num is None or num < 1:
        raise ValueError("num (the number of images) must be a positive integer.")
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    shape = (num, model.in_channels, model.image_size, model.image_size)
    x = _noise(shape, gen, device) if x_T is None else x_T.to(device)
    if x.shape != shape:
        raise ValueError(f"x_T has shape {tuple(x.shape)}, expected {shape}.")
    return x, y, gen
