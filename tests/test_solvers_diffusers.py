"""The ODE samplers (solvers.py) against diffusers' EulerDiscreteScheduler, HeunDiscreteScheduler and
DPMSolverMultistepScheduler, step for step over whole chains, and the bridge (bridge.py) both ways.

Float64: diffusers builds its tables in float32 and its Euler and DPM-Solver steps cast the sample to
float32, so their chains cannot be compared below float32 rounding (amplified by sigma_max ~ 157 in
sigma space). The float64 tests therefore run the scheduler modules with float32 *meaning* float64
(`float64_diffusers`: `torch` and `numpy` inside those modules resolve float32 to float64). No formula
changes, only the rounding; every chain then agrees to <= 1e-9. Float32 runs (diffusers untouched)
check the two stay within 1e-2 of each other, as in test_reference_diffusers.py (measured over 3 samplers
x 3 spacings x Karras on/off x 10/20/50 steps: at most 2.4e-4 without Karras sigmas, 4.2e-3 with them,
where sigma_min = sqrt((1 - ab_0) / ab_0) inherits float32's cancellation in 1 - ab_0 ~ 1e-4).
"""

import numpy as np
import pytest
import torch
from torch import nn

diffusers = pytest.importorskip("diffusers")

from diffusers.schedulers import (  # noqa: E402
    scheduling_ddim,
    scheduling_dpmsolver_multistep,
    scheduling_euler_discrete,
    scheduling_heun_discrete,
)

from diffusion_lab import UNet, make_schedule, sample  # noqa: E402
from diffusion_lab.bridge import from_diffusers, sample_with_scheduler, to_diffusers  # noqa: E402
from diffusion_lab.solvers import model_calls, sigma_grid, steps_for_calls  # noqa: E402

T = 1000
SHAPE = (4, 1, 8, 8)
TOL = {torch.float64: 1e-9, torch.float32: 1e-2}


class _As64:
    """Stands in for `torch` or `numpy` inside a diffusers module: the same, except float32 is float64."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, "float64" if name == "float32" else name)


@pytest.fixture
def float64_diffusers(monkeypatch):
    modules = (scheduling_ddim, scheduling_euler_discrete, scheduling_heun_discrete, scheduling_dpmsolver_multistep)
    for module in modules:
        monkeypatch.setattr(module, "torch", _As64(torch))
        monkeypatch.setattr(module, "np", _As64(np))


class Toy(nn.Module):
    """A deterministic stand-in for a trained network: bounded, depends on x and (real) t."""

    in_channels, image_size, num_classes = 1, 8, None

    def __init__(self, prediction_type="eps"):
        super().__init__()
        self.config = {"prediction": prediction_type}  # what sample() reads, as a UNet records it
        self.calls = 0
        self.anchor = nn.Parameter(torch.zeros(()))  # sample() finds the device through the parameters

    def forward(self, x, t, y=None):
        self.calls += 1
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1, 1, 1)
        return torch.tanh(0.7 * x + 0.001 * t) + 0.1 * torch.sin(3 * x)


def _x_T(dtype, wide=False):
    return (3 if wide else 1) * torch.randn(SHAPE, generator=torch.Generator().manual_seed(0), dtype=dtype)


GRID = [(sampler, spacing, karras, final, steps)
        for sampler in ("euler", "heun", "dpmpp2m")
        for spacing in ("leading", "trailing", "linspace")
        for karras in (False, True)
        for final in (("zero",) if sampler == "heun" else ("zero", "sigma_min"))
        for steps in (7, 20)]


@pytest.mark.parametrize("sampler,spacing,karras,final,steps", GRID)
def test_grid_matches_diffusers(float64_diffusers, sampler, spacing, karras, final, steps):
    schedule = make_schedule("linear", T)
    ref = to_diffusers(schedule, sampler, spacing=spacing, karras=karras, final_sigma=final)
    ref.set_timesteps(steps)
    ts, sigmas = sigma_grid(schedule, steps, sampler, spacing, karras, final)
    ref_t, ref_s = ref.timesteps.double().numpy(), ref.sigmas.double().numpy()
    if sampler == "heun":  # diffusers lists each inner point twice (predictor, then corrector)
        ref_t, ref_s = np.append(ref_t[:1], ref_t[1::2]), np.append(ref_s[:1], ref_s[1::2])
    np.testing.assert_allclose(ts, ref_t, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sigmas, ref_s, rtol=1e-12, atol=0)


def _theirs(scheduler, model, x_T, steps):
    """diffusers' loop, recording the state after each step (in sigma space, like ours)."""
    scheduler.set_timesteps(steps)
    sigma_space = not isinstance(scheduler, diffusers.DPMSolverMultistepScheduler)
    x = x_T * (1 + scheduler.sigmas[0] ** 2).sqrt() if sigma_space else x_T.clone()
    states = []
    for t in scheduler.timesteps:
        x = scheduler.step(model(scheduler.scale_model_input(x, t), t), t, x).prev_sample
        states.append(x)
    return x if sigma_space else x * (1 + scheduler.sigmas[-1] ** 2).sqrt(), states


@pytest.mark.parametrize("sampler,spacing,karras,final,steps", GRID)
def test_chain_matches_diffusers_float64(float64_diffusers, sampler, spacing, karras, final, steps):
    schedule, x_T = make_schedule("linear", T), _x_T(torch.float64)
    ours, traj = sample(Toy(), schedule, sampler=sampler, steps=steps, spacing=spacing, karras=karras,
                        final_sigma=final, x_T=x_T, return_trajectory=True, progress=False)
    ref = to_diffusers(schedule, sampler, spacing=spacing, karras=karras, final_sigma=final)
    theirs, states = _theirs(ref, Toy(), x_T, steps)
    if sampler != "heun":  # step for step: each of our states against theirs (ours in VP, theirs in sigma space)
        for i, state in enumerate(states):
            s = ref.sigmas[i + 1]
            vp = state / (1 + s**2).sqrt() if sampler == "euler" else state
            assert (traj["x_t"][i + 1] - vp).abs().max() < 1e-9, f"step {i}"
    diff = (ours - theirs).abs().max().item()
    assert ours.dtype == torch.float64 and torch.isfinite(ours).all()
    assert diff < TOL[torch.float64], f"{steps}-step {sampler} chain differs from diffusers by {diff:.2e}"


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp2m"])
@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("clip", [False, True])
def test_prediction_type_and_clipping_match_diffusers(float64_diffusers, sampler, prediction, clip):
    if sampler == "euler" and clip:
        pytest.skip("diffusers' Euler has no clipping (ours: see test_euler_is_ddim in test_samplers.py)")
    schedule, x_T = make_schedule("linear", T), _x_T(torch.float64, wide=clip)
    ours = sample(Toy(prediction), schedule, sampler=sampler, steps=10, spacing="trailing", clip_x0=clip,
                  x_T=x_T, progress=False)
    unclipped = sample(Toy(prediction), schedule, sampler=sampler, steps=10, spacing="trailing", x_T=x_T,
                       progress=False)
    ref = to_diffusers(schedule, sampler, spacing="trailing", prediction_type=prediction, clip_x0=clip)
    theirs, _ = _theirs(ref, Toy(), x_T, 10)
    assert (ours - theirs).abs().max() < 1e-9
    if clip:
        assert (ours - unclipped).abs().max() > 0.1, "the test must exercise clipping"


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp2m"])
@pytest.mark.parametrize("karras", [False, True])
def test_chain_matches_diffusers_float32(sampler, karras):
    schedule, x_T = make_schedule("linear", T), _x_T(torch.float32)
    ours = sample(Toy(), schedule, sampler=sampler, steps=20, karras=karras, x_T=x_T, progress=False)
    theirs, _ = _theirs(to_diffusers(schedule, sampler, karras=karras), Toy(), x_T, 20)
    diff = (ours - theirs).abs().max().item()
    assert diff < TOL[torch.float32], f"float32 {sampler} chain differs from diffusers by {diff:.2e}"


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "euler", "heun", "dpmpp2m"])
@pytest.mark.parametrize("steps", [1, 4, 10])
def test_model_calls_are_counted(sampler, steps):
    schedule = make_schedule("linear", 50)
    toy = Toy()
    sample(toy, schedule, 2, sampler=sampler, steps=None if sampler == "ddpm" else steps, progress=False)
    assert toy.calls == model_calls(sampler, steps, 50), sampler
    expected = {"ddpm": 50, "heun": 2 * steps - 1}.get(sampler, steps)
    assert toy.calls == expected
    if sampler != "ddpm":
        assert steps_for_calls(sampler, expected) == steps and steps_for_calls(sampler, expected + 1) >= steps
    if sampler in ("euler", "heun", "dpmpp2m"):  # diffusers asks the network as often
        ref, toy = to_diffusers(schedule, sampler), Toy()
        _theirs(ref, toy, _x_T(torch.float32)[:2], steps)
        assert toy.calls == expected


# ------------------------------------------------------------------ the bridge, with our U-Net


@pytest.fixture(scope="module")
def unet64():
    torch.manual_seed(0)
    model = UNet(image_size=8, in_channels=1, base_channels=8, channel_mults=(1, 2), num_classes=3)
    for p in model.parameters():  # give the zero-initialised output layer something to say
        torch.nn.init.normal_(p, std=0.05)
    return model.double().eval()


@pytest.mark.parametrize("sampler,spacing,karras", [
    ("ddim", "leading", False), ("ddim", "trailing", False),
    ("euler", "leading", False), ("euler", "linspace", True),
    ("heun", "trailing", False), ("heun", "leading", True),
    ("dpmpp2m", "leading", False), ("dpmpp2m", "trailing", True),
])
def test_our_model_through_a_diffusers_scheduler_gives_our_images(float64_diffusers, unet64, sampler, spacing, karras):
    schedule = make_schedule("linear", T)
    labels, x_T = [0, 1, 2, 1], torch.randn(SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = sample(unet64, schedule, sampler=sampler, steps=8, spacing=spacing, karras=karras, y=labels,
                  guidance=2.5, x_T=x_T, progress=False)
    scheduler = to_diffusers(schedule, sampler, spacing=spacing, karras=karras)
    theirs = sample_with_scheduler(unet64, scheduler, steps=8, y=labels, guidance=2.5, x_T=x_T)
    assert (ours - theirs).abs().max() < 1e-9


def test_bridge_seeds_draw_the_same_noise_and_schedules_round_trip(unet64):
    schedule = make_schedule("cosine", T)
    back = from_diffusers(to_diffusers(schedule, "dpmpp2m"))
    torch.testing.assert_close(back.alpha_bar, schedule.alpha_bar, rtol=1e-5, atol=1e-7)  # float32 inside diffusers
    model = unet64.float()
    try:
        a = sample(model, schedule, sampler="dpmpp2m", steps=6, y=[0, 1], seed=4, progress=False)
        b = sample_with_scheduler(model, to_diffusers(schedule, "dpmpp2m"), steps=6, y=[0, 1], seed=4)
        assert (a - b).abs().max() < TOL[torch.float32]
    finally:
        unet64.double()


def test_bridge_refuses_what_diffusers_cannot_do():
    schedule = make_schedule("linear", T)
    with pytest.raises(ValueError, match="no equivalent"):
        to_diffusers(schedule, "euler", clip_x0=True)
    with pytest.raises(ValueError, match="no equivalent"):
        to_diffusers(schedule, "heun", final_sigma="sigma_min")
    with pytest.raises(ValueError, match="no diffusers scheduler"):
        to_diffusers(schedule, "ddpm")
