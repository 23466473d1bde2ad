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
"""

from __future__ import annotations

import torch
from torch import nn

from . import solvers
from .forward import check_prediction, eps_from_prediction, eps_from_x0, posterior, predict_x0, prediction_of
from .guidance import check_guidance, guided_eps
from .schedules import Schedule
from .settings import autocast_dtype, progress_bar
from .timesteps import SPACINGS, ddim_timesteps  # noqa: F401  (re-exported: chapters import them from here)

VARIANCES = ("posterior", "beta")
SAMPLERS = ("ddpm", "ddim", "euler", "heun", "dpmpp2m")  # the last three: solvers.py


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
    x_prev = ab_s**0.5 * x0 + max(1 - ab_s - sigma**2, 0.0) ** 0.5 * eps
    if sigma > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev, x0


def _noise(shape, generator, device):
    # Draw on the CPU from a seeded generator, so a seed gives the same images on any device.
    return torch.randn(shape, generator=generator).to(device)


def model_eps(model: nn.Module, x, t, alpha_bar, y=None, guidance=None, prediction="eps", amp_dtype=None):
    """The noise prediction a sampler steps with: the network (under bf16 autocast when amp_dtype is
    set), classifier-free guided, and converted to eps when the network predicts v."""
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        out = guided_eps(model, x, t, y, guidance)
    return eps_from_prediction(out.to(x.dtype), x, alpha_bar, prediction)


def sample(
    model: nn.Module,
    schedule: Schedule,
    num: int | None = None,
    *,
    sampler: str = "ddim",
    steps: int | None = None,
    eta: float = 0.0,
    spacing: str = "leading",
    karras: bool = False,
    final_sigma: str = "zero",
    variance: str = "posterior",
    clip_x0: bool = False,
    y=None,
    guidance: float | None = None,
    seed: int | None = 0,
    x_T: torch.Tensor | None = None,
    prediction_type: str | None = None,
    amp: bool = False,
    return_trajectory: bool = False,
    progress: bool = True,
):
    """Generate images in [-1, 1] (shape (num, C, H, W)).

    sampler: "ddpm" walks all T steps; "ddim" (eta, spacing), "euler", "heun" and "dpmpp2m" (spacing,
        karras, final_sigma: see solvers.sigma_grid) walk `steps` (default 50). Heun asks the network
        2 * steps - 1 times, the others once per step (solvers.model_calls).
    y: labels (int or list/tensor of length num) for a conditional model; None = unconditional.
        A text model takes prompt tokens (num or 1, L) (text.Tokenizer.encode) instead.
    A latent diffusion model (chapter 10) runs through here unchanged: it returns latents, which the
    autoencoder decodes.
    guidance: classifier-free guidance scale s (None = no guidance; s = 1 needs no unconditional pass).
    clip_x0: clip each predicted x_0 to the image range [-1, 1] (diffusers' clip_sample; DDIM then
        steps with the eps the clipped x_0 implies). Off by default, so the plain equations run
        unaltered; short-trained models need it (their unclipped x_0 at large t is far out of range).
    prediction_type: what the network outputs, "eps" or "v"; None = the one the model records
        (model.config["prediction"]; forward.prediction_of), "eps" for a network without a config.
    amp: run the network under bf16 autocast where the hardware has it natively (settings.autocast_dtype;
        the step arithmetic stays float32). Off by default so results match float32 references exactly.
    return_trajectory: also return {"t": [...], "x_t": (S+1, N, C, H, W), "x0": (S, N, C, H, W)}.

    The starting noise x_T is the same N(0, I) draw for every sampler, so one seed gives comparable images.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")
    if sampler not in solvers.ODE_SAMPLERS and (karras or final_sigma != "zero"):
        raise ValueError(f"karras and final_sigma set the noise levels of euler, heun and dpmpp2m; {sampler} "
                         "walks the timesteps themselves: drop them or pick one of those samplers.")
    if sampler != "ddim" and eta != 0:
        raise ValueError(f"eta (fresh noise per step) is DDIM's; {sampler} has none: drop eta or use ddim.")
    device = next(model.parameters()).device
    guidance = check_guidance(guidance)
    check_eta(eta)  # before the loop, not at its first step
    prediction = check_prediction(prediction_type) if prediction_type else prediction_of(model)
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
    steps = 50 if steps is None else steps
    amp_dtype = autocast_dtype(device) if amp else None

    def eps_at(x_t, t, alpha_bar):
        tt = torch.full((num,), t, device=device, dtype=torch.long if float(t).is_integer() else torch.float64)
        return model_eps(model, x_t, tt, alpha_bar, y, guidance, prediction, amp_dtype)

    was_training = model.training
    model.eval()
    traj_x, traj_x0 = [x.cpu()], []
    with torch.inference_mode():
        if sampler in solvers.ODE_SAMPLERS:
            ts, sigmas = solvers.sigma_grid(schedule, steps, sampler, spacing, karras, final_sigma)
            bar = progress_bar(total=len(ts), desc=sampler, disable=not progress, leave=False)

            def on_step(i, x_t, x0):
                bar.update(1)
                if return_trajectory:
                    traj_x.append(x_t.cpu())
                    traj_x0.append(x0.cpu())

            x = solvers.ode_sample(lambda x_t, t, sigma: eps_at(x_t, t, 1 / (1 + sigma**2)), x, ts, sigmas,
                                   sampler, clip_x0, final_sigma, on_step)
            bar.close()
            ts = [int(t) if float(t).is_integer() else float(t) for t in ts]
        else:
            if sampler == "ddpm":
                ts = list(range(schedule.T - 1, -1, -1))
                prevs = [t - 1 for t in ts]
            else:
                ts = ddim_timesteps(schedule.T, steps, spacing)
                prevs = ts[1:] + [-1]
            for t, t_prev in progress_bar(list(zip(ts, prevs)), desc=sampler, disable=not progress, leave=False):
                eps = eps_at(x, t, schedule.at(schedule.alpha_bar, t, x))
                if sampler == "ddpm":
                    x, x0 = ddpm_step(x, eps, t, schedule, variance, clip_x0, _noise(shape, gen, device))
                else:  # deterministic DDIM (eta = 0) draws no noise: it would never be used
                    noise = _noise(shape, gen, device) if eta > 0 else None
                    x, x0 = ddim_step(x, eps, t, t_prev, schedule, eta, clip_x0, noise)
                if return_trajectory:
                    traj_x.append(x.cpu())
                    traj_x0.append(x0.cpu())
    model.train(was_training)
    x = x.clone()  # a normal tensor again (inference-mode tensors refuse in-place edits and autograd)
    if return_trajectory:
        return x, {"t": ts, "x_t": torch.stack(traj_x).clone(), "x0": torch.stack(traj_x0).clone()}
    return x
