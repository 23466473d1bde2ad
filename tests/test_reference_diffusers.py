"""Our schedules and samplers against diffusers' DDPMScheduler / DDIMScheduler, step by step.

A fixed toy noise model (a smooth function of x and t) drives both implementations with the same
per-step noise over whole chains (T = 1000 steps for DDPM).

Precision: in float32 both sides round differently, and diffusers recomputes beta_t as
1 - alpha_bar_t / alpha_bar_{t-1} (cancellation: ~1e-3 relative error where beta ~ 1e-4); the
reverse chain then amplifies rounding by up to 1/sqrt(alpha_bar_T) ~ 160. So the formulas are
compared in float64 (measured: whole chains agree to 4e-12, against a 1e-9 tolerance), and float32
runs check the two stay within 1e-2 over whole chains (measured: 5.3e-3 for 1000-step DDPM without
x0 clipping, 3e-5 with it; 1.5e-3 for 1000-step DDIM, 3.4e-4 for 10 and 50 steps).
"""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from diffusion_lab.samplers import ddim_step, ddim_timesteps, ddpm_step  # noqa: E402
from diffusion_lab.schedules import make_schedule  # noqa: E402

T = 1000
SHAPE = (4, 1, 8, 8)
TOL = {torch.float64: 1e-9, torch.float32: 1e-2}


def toy_eps(x, t):
    """A deterministic stand-in for a trained network: bounded, depends on x and t."""
    return torch.tanh(0.7 * x + 0.001 * float(t)) + 0.1 * torch.sin(3 * x)


def _in_dtype(ref, dtype):
    """Recompute the scheduler's tables in `dtype` (diffusers builds them in float32)."""
    betas = ref.betas.to(torch.float64)
    if ref.config.beta_schedule == "linear":
        c = ref.config
        betas = torch.linspace(c.beta_start, c.beta_end, c.num_train_timesteps, dtype=torch.float64)
    ref.betas = betas.to(dtype)
    ref.alphas = (1 - betas).to(dtype)
    ref.alphas_cumprod = torch.cumprod(1 - betas, 0).to(dtype)
    ref.one = torch.tensor(1.0, dtype=dtype)
    if hasattr(ref, "final_alpha_cumprod"):
        ref.final_alpha_cumprod = torch.tensor(1.0, dtype=dtype)
    return ref


@pytest.mark.parametrize("name,beta_schedule", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_schedule_matches_diffusers(name, beta_schedule):
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule=beta_schedule)
    ours = make_schedule(name, T)
    torch.testing.assert_close(ours.betas.float(), ref.betas, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ours.alpha_bar.float(), ref.alphas_cumprod, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("variance,variance_type", [("posterior", "fixed_small"), ("beta", "fixed_large")])
@pytest.mark.parametrize("clip", [False, True])
def test_ddpm_chain_matches_diffusers(variance, variance_type, clip, dtype):
    ref = diffusers.DDPMScheduler(
        num_train_timesteps=T, beta_schedule="linear", variance_type=variance_type, clip_sample=clip
    )
    ref.set_timesteps(T)
    if dtype == torch.float64:
        _in_dtype(ref, dtype)
    sched = make_schedule("linear", T)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0), dtype=dtype)
    # diffusers draws DDPM noise from a generator (for t > 0 only): replay the same stream.
    ref_gen, replay = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    ours, theirs = x_T.clone(), x_T.clone()
    for t in ref.timesteps.tolist():
        noise = torch.randn(SHAPE, generator=replay, dtype=dtype) if t > 0 else None
        ours, _ = ddpm_step(ours, toy_eps(ours, t), t, sched, variance, clip, noise)
        theirs = ref.step(toy_eps(theirs, t), t, theirs, generator=ref_gen).prev_sample
    diff = (ours - theirs).abs().max().item()
    assert theirs.dtype == dtype and torch.isfinite(ours).all()
    assert diff < TOL[dtype], f"{T}-step DDPM chain differs from diffusers by {diff:.2e}"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [10, 50, 1000])
def test_ddim_chain_matches_diffusers(eta, spacing, steps, dtype):
    ref = diffusers.DDIMScheduler(
        num_train_timesteps=T, beta_schedule="linear", clip_sample=False, timestep_spacing=spacing
    )
    ref.set_timesteps(steps)
    ts = ddim_timesteps(T, steps, spacing)
    assert ts == ref.timesteps.tolist()
    if spacing == "linspace" and steps != T:
        # diffusers' DDIM always steps to t - T//steps; on a linspace grid that is not the next
        # grid point, so there only the grids are compared (ours steps to the next grid point).
        return
    if dtype == torch.float64:
        _in_dtype(ref, dtype)
    sched = make_schedule("linear", T)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(SHAPE, generator=g, dtype=dtype)
    ours, theirs = x_T.clone(), x_T.clone()
    for t, t_prev in zip(ts, ts[1:] + [-1]):
        noise = torch.randn(SHAPE, generator=g, dtype=dtype)
        ours, _ = ddim_step(ours, toy_eps(ours, t), t, t_prev, sched, eta, noise=noise)
        theirs = ref.step(toy_eps(theirs, t), t, theirs, eta=eta, variance_noise=noise).prev_sample
    diff = (ours - theirs).abs().max().item()
    assert torch.isfinite(ours).all()
    assert diff < TOL[dtype], f"{steps}-step DDIM chain differs from diffusers by {diff:.2e}"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("steps", [10, 50])
def test_ddim_with_clipping_matches_diffusers_clipped_model_output(eta, steps, dtype):
    """clip_x0=True: clip x_0, then step with the eps it implies (diffusers' use_clipped_model_output)."""
    ref = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=True)
    ref.set_timesteps(steps)
    ts = ddim_timesteps(T, steps, "leading")
    if dtype == torch.float64:
        _in_dtype(ref, dtype)
    sched = make_schedule("linear", T)
    g = torch.Generator().manual_seed(1)
    x_T = 3 * torch.randn(SHAPE, generator=g, dtype=dtype)  # wide, so that x_0 predictions get clipped
    ours, theirs, unclipped = x_T.clone(), x_T.clone(), x_T.clone()
    for t, t_prev in zip(ts, ts[1:] + [-1]):
        noise = torch.randn(SHAPE, generator=g, dtype=dtype)
        ours, _ = ddim_step(ours, toy_eps(ours, t), t, t_prev, sched, eta, clip_x0=True, noise=noise)
        unclipped, _ = ddim_step(unclipped, toy_eps(unclipped, t), t, t_prev, sched, eta, noise=noise)
        theirs = ref.step(toy_eps(theirs, t), t, theirs, eta=eta, use_clipped_model_output=True,
                          variance_noise=noise).prev_sample
    diff = (ours - theirs).abs().max().item()
    assert (ours - unclipped).abs().max() > 0.1, "the test must exercise clipping"
    assert diff < TOL[dtype], f"{steps}-step clipped DDIM chain differs from diffusers by {diff:.2e}"
