"""A bridge to diffusers, Hugging Face's library of schedulers, both ways.

    scheduler = to_diffusers(schedule, "dpmpp2m", spacing="trailing", karras=True)  # our Schedule -> theirs
    images = sample_with_scheduler(model, scheduler, steps=10, y=labels, guidance=3)  # our model, their loop
    # == sample(model, schedule, sampler="dpmpp2m", steps=10, spacing="trailing", karras=True, ...)
    schedule = from_diffusers(scheduler)                                              # theirs -> ours

The course never needs diffusers (it is a test-only reference, in the dev extras); this module lets a
learner check any of our samplers against the library the field uses, and move a model between the two.
tests/test_solvers_diffusers.py shows the images agree to 1e-9 in float64.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .guidance import guided_eps
from .samplers import SamplingConfig, _noise
from .schedules import Schedule, schedule_from_betas

DIFFUSERS_CLASSES = {
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "heun": "HeunDiscreteScheduler",
    "dpmpp2m": "DPMSolverMultistepScheduler",
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "dpmpp2m_sde": "DPMSolverMultistepScheduler",  # algorithm_type="sde-dpmsolver++"
}
_PREDICTION = {"eps": "epsilon", "v": "v_prediction"}


def _diffusers():
    try:
        import diffusers
    except ImportError:
        raise ImportError("the diffusers bridge needs diffusers: pip install diffusers "
                          "(it is in this project's dev extras)") from None
    return diffusers


def to_diffusers(schedule: Schedule, sampler="dpmpp2m", *, spacing: str = "leading", karras: bool = False,
                 final_sigma: str = "zero", prediction_type: str = "eps", clip_x0: bool = False):
    """The diffusers scheduler, configured with our betas (`trained_betas=`), that does what
    `sample(model, schedule, config)` does. `sampler` is a sampler's name (then the keywords say the
    rest) or a samplers.SamplingConfig, whose sampler, spacing, karras, final_sigma and clip_x0 are used.

    Raises ValueError for a combination diffusers' scheduler does not offer (e.g. Euler with clipping).
    """
    if isinstance(sampler, SamplingConfig):
        sampler, spacing, karras, final_sigma, clip_x0 = (sampler.sampler, sampler.spacing, sampler.karras,
                                                          sampler.final_sigma, sampler.clip_x0)
    if sampler not in DIFFUSERS_CLASSES:
        raise ValueError(f"no diffusers scheduler for {sampler!r} here; choose one of {', '.join(DIFFUSERS_CLASSES)}.")
    if prediction_type not in _PREDICTION:
        raise ValueError(f"unknown prediction type {prediction_type!r}; choose one of {', '.join(_PREDICTION)}.")
    unsupported = {
        "ddim": karras or final_sigma != "zero" or spacing == "linspace",  # diffusers' DDIM steps to t - T//N
        "euler": clip_x0,
        "heun": final_sigma != "zero",
        "dpmpp2m": False,
        "dpmpp2m_sde": False,
        "euler_ancestral": karras or clip_x0 or final_sigma != "zero",
    }
    if unsupported[sampler]:
        raise ValueError(f"diffusers' {DIFFUSERS_CLASSES[sampler]} has no equivalent of {sampler} with spacing="
                         f"{spacing!r}, karras={karras}, final_sigma={final_sigma!r}, clip_x0={clip_x0}.")
    cls = getattr(_diffusers(), DIFFUSERS_CLASSES[sampler])
    common = {"num_train_timesteps": schedule.T, "trained_betas": schedule.betas.numpy(),
              "timestep_spacing": spacing, "prediction_type": _PREDICTION[prediction_type]}
    if sampler == "ddim":
        return cls(**common, clip_sample=clip_x0, set_alpha_to_one=True)
    if sampler == "euler":
        return cls(**common, use_karras_sigmas=karras, final_sigmas_type=final_sigma)
    if sampler == "heun":
        return cls(**common, use_karras_sigmas=karras, clip_sample=clip_x0)
    if sampler == "euler_ancestral":
        return cls(**common)
    algorithm = "sde-dpmsolver++" if sampler == "dpmpp2m_sde" else "dpmsolver++"
    return cls(**common, algorithm_type=algorithm, solver_order=2, solver_type="midpoint",
               lower_order_final=True, use_karras_sigmas=karras, final_sigmas_type=final_sigma,
               thresholding=clip_x0, sample_max_value=1.0)  # thresholding at 1.0 = clipping x_0 to [-1, 1]


def from_diffusers(scheduler) -> Schedule:
    """Our Schedule from a diffusers scheduler's betas (diffusers keeps them in float32)."""
    return schedule_from_betas(scheduler.betas.double(), name=f"from {type(scheduler).__name__}")


@torch.no_grad()
def sample_with_scheduler(model: nn.Module, scheduler, num: int | None = None, *, steps: int, y=None,
                          guidance: float | None = None, seed: int | None = 0, x_T: torch.Tensor | None = None):
    """Sample our model with a diffusers scheduler's loop (scale_model_input, the network, step).

    The starting noise is the N(0, I) draw `sample()` makes for the same seed. Schedulers that work
    in sigma space (Euler, Heun) start from it times sqrt(1 + sigma_max^2), the exact conversion
    (diffusers' pipelines multiply by init_noise_sigma, which is sigma_max for linspace/trailing
    spacing: a 1/(2 sigma_max^2) ~ 2e-5 relative difference). The result is in sigma space like
    `sample()`'s: the image plus final_sigma times noise (the clean image for a final sigma of zero).
    """
    device = next(model.parameters()).device
    if y is not None:
        y = torch.as_tensor(y, dtype=torch.long, device=device).reshape(-1)
        num = len(y) if num is None else num
    if x_T is None:
        x_T = _noise((num, model.in_channels, model.image_size, model.image_size),
                     torch.Generator().manual_seed(seed) if seed is not None else None, device)
    scheduler.set_timesteps(steps)
    sigma_space = type(scheduler).__name__ in ("EulerDiscreteScheduler", "HeunDiscreteScheduler",
                                               "EulerAncestralDiscreteScheduler")
    x = x_T * math.sqrt(1 + float(scheduler.sigmas[0]) ** 2) if sigma_space else x_T.clone()
    is_ddim = type(scheduler).__name__ == "DDIMScheduler"
    model.eval()
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        out = guided_eps(model, x_in, t.expand(len(x)), y, guidance)  # eps or v: the scheduler converts
        kw = {"eta": 0.0, "use_clipped_model_output": True} if is_ddim else {}
        x = scheduler.step(out, t, x, **kw).prev_sample
    if hasattr(scheduler, "sigmas") and not sigma_space:  # DPM-Solver keeps x_t: divide by sqrt(ab) at the end
        x = x * math.sqrt(1 + float(scheduler.sigmas[-1]) ** 2)
    return x
